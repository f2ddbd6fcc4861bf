/**
 * @module bench/bench-server
 * What every benchmark script needs: a real `stowage serve` in its own
 * process (so its memory is measured alone), its peak RSS, random input
 * files, and child processes run without blocking the benchmark.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Stowage, Volume } from '@stowage/sdk';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { freePort } from '../test/helpers/free-port.js';

/** The compiled CLI entry point. */
export const cliMain = join(dirname(fileURLToPath(import.meta.url)), '..', 'src', 'cli', 'main.js');

/** A running server process and how to reach it. */
export interface ServerProcess {
  url: string;
  token: string;
  child: ChildProcess;
}

/** Starts `stowage serve` (with `extraArgs`) on a fresh data dir; the token is its first start's admin token. */
export async function startServerProcess(dataDir: string, extraArgs: string[] = []): Promise<ServerProcess> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [cliMain, 'serve', '--data', dataDir, '--port', String(port), ...extraArgs], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`${url}/v1/health`)).ok) break;
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const token = (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
  return { url, token, child };
}

/** Stops a server process and waits for it to exit. */
export async function stopServer(s: ServerProcess): Promise<void> {
  s.child.kill('SIGTERM');
  await once(s.child, 'exit');
}

/** Peak resident set of a process so far (the kernel's high-water mark). */
export async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** Writes `size` bytes of random data to a file, 64 MiB at a time. */
export async function randomFile(path: string, size: number): Promise<void> {
  const out = createWriteStream(path);
  const block = Buffer.alloc(Math.min(size, 64 * MiB));
  for (let left = size; left > 0; left -= block.length) {
    randomFillSync(block);
    if (!out.write(left >= block.length ? block : block.subarray(0, left))) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
}

export interface RunResult {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a command without blocking this process (spawn, never spawnSync: a mount's agent may need this process's
 * server to answer); its wall time and output. Killed after `timeoutMs`; a non-zero exit throws unless `check: false`.
 */
export async function run(
  cmd: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; check?: boolean; timeoutMs: number },
): Promise<RunResult> {
  const t0 = performance.now();
  const child = spawn(cmd, args, { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(timer);
  if (options.check !== false && code !== 0)
    throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${stderr.trim().slice(-2000)}`);
  return { ms: performance.now() - t0, code, stdout, stderr };
}

/** A fresh volume mounted by `stowage mount`, and the environment the CLI calls on that mount need. */
export interface MountedVolume {
  vol: Volume;
  mnt: string;
  /** This process's environment minus any STOWAGE_ setting, plus the server's and the mount's state dirs. */
  env: NodeJS.ProcessEnv;
}

/** Creates a volume on `server` and mounts it at `<work>/mnt-<name>` (state under `<work>/state-<name>`), with `mountArgs` added to `stowage mount`. */
export async function mountFreshVolume(
  server: ServerProcess,
  work: string,
  name: string,
  mountArgs: string[] = [],
): Promise<MountedVolume> {
  const client = new Stowage({ url: server.url, token: server.token });
  const vol = await Volume.create(`${name}-${Date.now()}`, { client, cap: '10G' });
  const mnt = join(work, `mnt-${name}`);
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('STOWAGE_')) env[k] = v;
  Object.assign(env, {
    STOWAGE_URL: server.url,
    STOWAGE_TOKEN: server.token,
    STOWAGE_MOUNT_STATE: join(work, `state-${name}`),
    STOWAGE_STATE_DIR: join(work, `state-${name}`, 'cli'),
  });
  await mkdir(mnt, { recursive: true });
  await run(process.execPath, [cliMain, 'mount', vol.name, mnt, ...mountArgs], { env, timeoutMs: 120_000 });
  return { vol, mnt, env };
}

/** Unmounts a mountFreshVolume mount (`--force`), lazily through fusermount when the CLI cannot. */
export async function unmountFreshVolume(m: Pick<MountedVolume, 'mnt' | 'env'>): Promise<void> {
  const r = await run(process.execPath, [cliMain, 'unmount', m.mnt, '--force'], {
    env: m.env,
    check: false,
    timeoutMs: 120_000,
  });
  if (r.code === 0) return;
  process.stderr.write(`  (unmount ${m.mnt} failed: ${r.stderr.trim()}; fusermount -uz)\n`);
  await run('fusermount', ['-uz', m.mnt], { check: false, timeoutMs: 10_000 });
}
