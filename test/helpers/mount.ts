/**
 * @module test/helpers/mount
 * Real FUSE mounts for end-to-end tests: `stowage mount` through the
 * compiled CLI binary (with STOWAGE_URL / STOWAGE_TOKEN / STOWAGE_MOUNT_STATE
 * pointing at the test's server and its own state root), shell commands run
 * inside a mount, and a cleanup that never leaves a mount or an agent behind:
 * `stowage unmount --force`, then `fusermount -uz`, then SIGKILL of the
 * agent pids seen in `mount-status`.
 *
 * Everything here is asynchronous: the test server lives in the test process,
 * and an agent serving a read from a child process needs that server to
 * answer, so the test's event loop must never block on a child.
 */
import { after, before } from 'node:test';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { MountCommitResult, MountStatus } from '@stowage/sdk/common/mount-state.js';
import { Stowage } from '@stowage/sdk';
import { cliEnv, spawnCli, type CliResult } from './cli.js';
import { startTestServer, type TestServer } from './server.js';

/** What a shell command printed and how it ended. */
export interface ShResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `bash -c script` asynchronously, killed after `timeoutMs`. */
export function sh(
  script: string,
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<ShResult> {
  return new Promise((done, fail) => {
    const child = spawn('bash', ['-c', script], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      done({
        status: status ?? (signal ? 128 : null),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8') + (signal ? `\n[killed by ${signal}]` : ''),
      });
    });
  });
}

/** Runs a shell command and asserts it exited 0; returns stdout. */
export async function shOk(
  script: string,
  options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<string> {
  const r = await sh(script, options);
  if (r.status !== 0) throw new Error(`\`${script}\` exited ${r.status}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r.stdout;
}

/** Whether `path` is a mount point now (from /proc, which never touches the FUSE file system). */
export async function isMounted(path: string): Promise<boolean> {
  const abs = resolve(path);
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => line.split(' ')[4] === abs);
}

/** Whether a process runs (an exited one not yet reaped, a zombie, does not). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Asserts a CLI run succeeded; returns stdout. */
export function cliOk(r: CliResult, what = 'stowage'): string {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status} (signal ${r.signal}); stderr: ${r.stderr}`);
  return r.stdout;
}

/**
 * The mounts of one test file: every mount made through it is tracked and
 * torn down by `cleanup()`, whatever state it is in.
 */
export class Mounts {
  /** Mount paths ever mounted here. */
  readonly #paths = new Set<string>();
  /** Agent pids ever seen here. */
  readonly #pids = new Set<number>();

  constructor(
    public server: { url: string; token: string },
    readonly stateRoot: string,
  ) {}

  env(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
    return cliEnv({
      STOWAGE_URL: this.server.url,
      STOWAGE_TOKEN: this.server.token,
      STOWAGE_MOUNT_STATE: this.stateRoot,
      STOWAGE_DATA: this.stateRoot,
      ...extra,
    });
  }

  /** Runs the CLI against the server with this state root. */
  cli(args: string[], extra: Record<string, string | undefined> = {}): Promise<CliResult> {
    return spawnCli(args, { env: this.env(extra) }).done;
  }

  /** `stowage mount VOLUME PATH ...args`, tracked for cleanup whether or not it succeeds. */
  async mount(volume: string, path: string, args: string[] = []): Promise<CliResult> {
    this.#paths.add(resolve(path));
    const r = await this.cli(['mount', volume, path, ...args]);
    if (r.status === 0) await this.status(path).catch(() => undefined); // records the agent pid
    return r;
  }

  /** Mounts and asserts it worked. */
  async mountOk(volume: string, path: string, args: string[] = []): Promise<MountStatus> {
    cliOk(await this.mount(volume, path, args), `stowage mount ${volume} ${path}`);
    return this.status(path);
  }

  /** `stowage mount-status --json PATH`. */
  async status(path: string): Promise<MountStatus> {
    const s = JSON.parse(
      cliOk(await this.cli(['mount-status', path, '--json']), 'stowage mount-status'),
    ) as MountStatus;
    this.#pids.add(s.pid);
    return s;
  }

  /** `stowage commit --json PATH`, asserted to work. */
  async commit(path: string, message?: string): Promise<MountCommitResult> {
    return JSON.parse(
      cliOk(await this.cli(['commit', path, '--json', ...(message ? ['-m', message] : [])]), 'stowage commit'),
    ) as MountCommitResult;
  }

  /** Tracks an agent pid learnt elsewhere. */
  track(path: string, pid?: number): void {
    this.#paths.add(resolve(path));
    if (pid) this.#pids.add(pid);
  }

  /** The agent's state directory of a mount path (as common/mount-state.ts computes it). */
  stateDir(path: string): string {
    return join(this.stateRoot, createHash('sha256').update(resolve(path)).digest('hex').slice(0, 16));
  }

  /** The overlay journal of a mount path, one JSON op per line (for diagnostics). */
  async journal(path: string): Promise<string> {
    const r = await sh(
      `sqlite3 ${JSON.stringify(join(this.stateDir(path), 'overlay', 'overlay.db'))} 'SELECT op FROM journal ORDER BY seq'`,
      { timeoutMs: 10_000 },
    );
    return r.stdout + r.stderr;
  }

  /** Unmounts `path` (asserting success) and waits until the kernel mount is gone. */
  async unmountOk(path: string, force = false): Promise<void> {
    const r = await this.cli(['unmount', path, ...(force ? ['--force'] : [])]);
    if (r.status !== 0)
      throw new Error(`stowage unmount exited ${r.status}; stderr: ${r.stderr}journal:\n${await this.journal(path)}`);
    for (let i = 0; i < 50 && (await isMounted(path)); i++) await sleep(100);
    if (await isMounted(path)) throw new Error(`${path} is still mounted after stowage unmount`);
  }

  /** Tears one path down by every means available. */
  async teardown(path: string): Promise<void> {
    const abs = resolve(path);
    try {
      const s = await this.status(abs);
      this.#pids.add(s.pid);
    } catch {
      // not running (or not answering)
    }
    if (await isMounted(abs)) {
      await this.cli(['unmount', abs, '--force']).catch(() => undefined);
      for (let i = 0; i < 30 && (await isMounted(abs)); i++) await sleep(100);
    }
    if (await isMounted(abs))
      await sh(`fusermount -uz ${JSON.stringify(abs)}`, { timeoutMs: 10_000 }).catch(() => undefined);
  }

  /** Unmounts everything and kills every agent this test file started; safe to call more than once. */
  async cleanup(): Promise<void> {
    for (const path of this.#paths) await this.teardown(path).catch(() => undefined);
    for (const pid of this.#pids) {
      for (let i = 0; i < 20 && alive(pid); i++) await sleep(100);
      if (alive(pid)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    }
    // A killed agent leaves its kernel mount behind.
    for (const path of this.#paths)
      if (await isMounted(path))
        await sh(`fusermount -uz ${JSON.stringify(path)}`, { timeoutMs: 10_000 }).catch(() => undefined);
  }
}

/** sha256 of a file read through a child process (the mount is served by an agent that needs this process's server). */
export async function sha256Of(path: string): Promise<string> {
  return (await shOk(`sha256sum ${JSON.stringify(path)}`)).split(' ')[0]!;
}

/** What a mount test file works with: a server, a client of it, a scratch directory and its mounts. */
export interface MountTestbed {
  readonly srv: TestServer;
  readonly client: Stowage;
  /** A scratch directory removed at the end. */
  readonly work: string;
  readonly mounts: Mounts;
  /** A name no other test of the run uses (volumes, directories). */
  fresh(prefix?: string): string;
  /** A new, empty local directory to mount on. */
  mountPoint(): Promise<string>;
}

/**
 * Registers the file's before/after hooks: a test server, a scratch dir and a
 * `Mounts` whose cleanup runs even when tests fail. Use at module level.
 */
export function mountTestbed(name: string): MountTestbed {
  let srv: TestServer | undefined;
  let client: Stowage | undefined;
  let work: string | undefined;
  let mounts: Mounts | undefined;
  let seq = 0;
  const need = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('the mount testbed is used before its before() hook ran');
    return v;
  };
  before(async () => {
    srv = await startTestServer();
    client = new Stowage({ url: srv.url, token: srv.token });
    work = await mkdtemp(join(tmpdir(), `stowage-${name}-`));
    mounts = new Mounts(srv, join(work, 'state'));
  });
  after(async () => {
    await mounts?.cleanup();
    await srv?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });
  const fresh = (prefix = 'm'): string => `${prefix}-${process.pid}-${++seq}`;
  return {
    get srv() {
      return need(srv);
    },
    get client() {
      return need(client);
    },
    get work() {
      return need(work);
    },
    get mounts() {
      return need(mounts);
    },
    fresh,
    async mountPoint() {
      const dir = join(need(work), fresh('mnt'));
      await mkdir(dir);
      return dir;
    },
  };
}
