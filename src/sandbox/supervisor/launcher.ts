/**
 * @module sandbox/supervisor/launcher
 * Starts a sandbox: its agent, on the host's Node, as the sandbox's root in a
 * user namespace mapped to the subordinate range, inside bubblewrap's
 * namespaces, under the seccomp deny-list, in the sandbox's cgroup, over its
 * overlay root. Returns the agent's link once the agent says it is ready.
 *
 * The host paths the sandbox needs (its root, the agent's compiled files,
 * the Node binary and the libraries it loads) are gathered first by host
 * root in a private mount namespace, on a tmpfs at /mnt: bwrap resolves
 * paths as the sandbox's host uid, which cannot search a 0700 data dir or
 * /root. That first hop also puts itself into the sandbox's cgroup before
 * anything else starts, so no process of the sandbox is ever outside it.
 *
 * Node runs through the host's dynamic loader with the host's libraries
 * (`ld.so --library-path`), so any image works, whatever libc it has, or
 * none (busybox).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, join } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { nativeBuild } from '../../common/package-root.js';
import type { SandboxCgroup } from '../host/cgroups.js';
import { type IdRange, sandboxLaunchArgv } from '../host/launch-args.js';
import { nsAttachPath } from '../host/ns-attach.js';
import { openSeccompFile } from '../host/seccomp.js';
import { AgentClient } from '../protocol/agent-client.js';

/** Where the agent's files appear inside every sandbox (read-only). */
export const AGENT_MOUNT = '/.stowage';
/** The compiled sandbox code (agent and protocol) on the host: dist/src/sandbox. */
const SANDBOX_CODE = fileURLToPath(new URL('..', import.meta.url));

/** How the host's Node starts: its binary, the dynamic loader it names, the libraries it loads. */
export interface NodeRuntime {
  node: string;
  loader: string;
  libraries: string[];
}

let runtime: NodeRuntime | undefined;

/** The host's Node runtime, read once from `ldd` (the loader is the line without "=>"). */
export function hostNodeRuntime(): NodeRuntime {
  if (runtime) return runtime;
  const out = execFileSync('ldd', [process.execPath], { encoding: 'utf8' });
  const libraries: string[] = [];
  let loader: string | undefined;
  for (const line of out.split('\n')) {
    const linked = /=>\s*(\/\S+)/.exec(line);
    if (linked) libraries.push(linked[1]!);
    else {
      const direct = /^\s*(\/\S+)\s+\(/.exec(line);
      if (direct) loader = direct[1]!;
    }
  }
  if (!loader) throw new Error(`cannot find the dynamic loader of ${process.execPath} in: ${out}`);
  runtime = { node: process.execPath, loader, libraries };
  return runtime;
}

/** The library directory found per cache directory: a launch after the first does no stat or hash. */
const libDirs = new Map<string, string>();

/** The terminal relay built from native/pty-relay. */
export function ptyRelayPath(): string {
  return nativeBuild('pty-relay', 'stowage-pty', 'the terminal relay needs gcc and make');
}

/**
 * A directory holding copies of Node's dynamic loader, the libraries it loads and the terminal relay, made once
 * per host and build under `cacheDir`: a launch binds this one directory instead of each file (one mount, not a
 * dozen).
 */
export function runtimeLibDir(cacheDir: string, rt: NodeRuntime = hostNodeRuntime()): string {
  const known = libDirs.get(cacheDir);
  if (known && existsSync(known)) return known;
  // The terminal relay for `pty` execs travels with them: it runs on the same loader and libc.
  const named = [rt.loader, ...rt.libraries, ptyRelayPath()];
  const key = createHash('sha256')
    .update(
      named
        .map((f) => {
          const st = statSync(f);
          return `${f}:${st.size}:${st.mtimeMs}`;
        })
        .join('\n'),
    )
    .digest('hex')
    .slice(0, 16);
  const dir = join(cacheDir, `node-libs-${key}`);
  libDirs.set(cacheDir, dir);
  if (existsSync(dir)) return dir;
  mkdirSync(cacheDir, { recursive: true, mode: 0o755 });
  const temp = mkdtempSync(join(cacheDir, '.node-libs-'));
  chmodSync(temp, 0o755); // read by the sandbox's uid
  // Each under the name the program asks for (a soname), with the bytes of the file it names.
  for (const f of named) copyFileSync(realpathSync(f), join(temp, basename(f)));
  try {
    renameSync(temp, dir);
  } catch {
    rmSync(temp, { recursive: true, force: true }); // another launch made it first
  }
  return dir;
}

export interface LaunchOptions {
  /** The mounted overlay root of the sandbox (a host path). */
  root: string;
  /** Where launches cache the host's runtime files (root-owned, e.g. under the data dir). */
  cacheDir: string;
  cgroup: SandboxCgroup;
  ids: IdRange;
  hostname?: string;
  /** Run by the agent for its commands unless an exec says otherwise. */
  env?: Record<string, string>;
  /**
   * A host directory that appears inside, read-only, as `${AGENT_MOUNT}/volumes`: the volumes' guest sockets are
   * linked into it once they are mounted (see volumeControlDir), which may be after the launch.
   */
  guestDir: string;
  /**
   * The host directory under which every sandbox's disk, root and volumes are mounted: the launch's private
   * copy of the host's mounts lets go of all of them once it has bound its own, so a running sandbox never
   * keeps another's disk or FUSE session busy.
   */
  sandboxesDir: string;
}

/** Where the control socket of the sandbox's volume `index` appears inside (read-only, under AGENT_MOUNT). */
export function volumeControlDir(index: number): string {
  return `${AGENT_MOUNT}/volumes/${index}`;
}

export interface LaunchedSandbox {
  /** The first process (the mount hop, then unshare, then bwrap, which waits for the agent). */
  child: ChildProcess;
  agent: AgentClient;
  /** The sandbox's first process in the host's pid namespace: its namespaces are the sandbox's. */
  pid: number;
}

/**
 * The first hop, run by host root in a private mount namespace. Arguments: the cgroup.procs files (":"-separated),
 * the sandbox root, the agent's code, the Node binary, the runtime library directory, the guest directory, the
 * ns-attach helper and the sandboxes directory, then the launch argv.
 */
const HOP = `set -e
IFS=:
for p in $1; do echo $$ > "$p"; done
unset IFS
mount -t tmpfs -o mode=755,size=1m stowage-launch /mnt
mkdir /mnt/root /mnt/stowage /mnt/stowage/agent /mnt/stowage/lib /mnt/stowage/volumes
mount --rbind "$2" /mnt/root
mount --bind "$3" /mnt/stowage/agent
echo '{"type":"module"}' > /mnt/stowage/package.json
: > /mnt/stowage/node
mount --bind "$4" /mnt/stowage/node
mount --bind "$5" /mnt/stowage/lib
mount --bind "$6" /mnt/stowage/volumes
"$7" --detach-under "$8"
shift 8
exec "$@"`;

/** Starts the sandbox's agent and resolves once it is ready (or rejects with what it printed). */
export async function launchSandbox(options: LaunchOptions, readyTimeoutMs = 30_000): Promise<LaunchedSandbox> {
  const rt = hostNodeRuntime();
  const seccomp = openSeccompFile();
  try {
    const loader = `${AGENT_MOUNT}/lib/${basename(rt.loader)}`;
    const argv = sandboxLaunchArgv({
      ids: options.ids,
      mounts: [
        { kind: 'bind', source: '/mnt/root', target: '/' },
        { kind: 'proc', target: '/proc' },
        { kind: 'dev', target: '/dev' },
        { kind: 'ro-bind', source: '/mnt/stowage', target: AGENT_MOUNT },
      ],
      command: [
        loader,
        '--library-path',
        `${AGENT_MOUNT}/lib`,
        `${AGENT_MOUNT}/node`,
        `${AGENT_MOUNT}/agent/agent/agent-main.js`,
        `--pty-relay=${AGENT_MOUNT}/lib/${basename(ptyRelayPath())}`,
      ],
      // fd 3 is the agent's link; bwrap reads the seccomp program from fd 4 and says what it started on fd 5.
      seccompFd: 4,
      infoFd: 5,
      env: options.env ?? {
        PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        HOME: '/root',
        LANG: 'C.UTF-8',
      },
      ...(options.hostname !== undefined ? { hostname: options.hostname } : {}),
      cwd: '/',
    });
    const procs = options.cgroup.paths.map((p) => join(p, 'cgroup.procs')).join(':');
    const child = spawn(
      'unshare',
      [
        '--mount',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        HOP,
        'stowage-launch',
        procs,
        options.root,
        SANDBOX_CODE,
        rt.node,
        runtimeLibDir(options.cacheDir, rt),
        options.guestDir,
        nsAttachPath(),
        options.sandboxesDir,
        ...argv,
      ],
      { stdio: ['ignore', 'pipe', 'pipe', 'pipe', seccomp.fd, 'pipe'] },
    );
    const info = readInfo((child.stdio as unknown as Readable[])[5]!);
    const errors: Buffer[] = [];
    child.stderr!.on('data', (b: Buffer) => errors.length < 64 && errors.push(b));
    child.stdout!.on('data', (b: Buffer) => errors.length < 64 && errors.push(b));
    const agent = new AgentClient(child.stdio[3] as Duplex);
    const exited = new Promise<never>((_, reject) =>
      child.once('close', (code, signal) =>
        reject(
          new Error(
            `the sandbox exited before its agent was ready (${signal ?? `exit ${code}`}): ${Buffer.concat(errors).toString().trim().slice(0, 2000)}`,
          ),
        ),
      ),
    );
    exited.catch(() => undefined);
    // An agent that dies at start closes its link before the launch exits: the exit (with what it printed) says why.
    const ready = agent.ready.catch((e: unknown) =>
      Promise.race([exited, new Promise<never>((_, reject) => setTimeout(() => reject(e), 2000))]),
    );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`the sandbox's agent was not ready after ${readyTimeoutMs} ms`)),
        readyTimeoutMs,
      );
    });
    let pid: number;
    try {
      await Promise.race([ready, exited, timeout]);
      // bwrap has written what it started before the agent could say it is ready.
      pid = sandboxPid(await Promise.race([info, exited, timeout]));
    } catch (e) {
      child.kill('SIGKILL');
      agent.close('launch failed');
      throw e;
    } finally {
      clearTimeout(timer);
    }
    return { child, agent, pid };
  } finally {
    seccomp.close();
  }
}

/** bwrap's `--info-fd` JSON, once whole (bwrap keeps the descriptor open while it runs). */
function readInfo(stream: Readable): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const done = () => {
      stream.destroy();
      resolve(text);
    };
    stream.on('data', (b: Buffer) => {
      text += b.toString('utf8');
      try {
        JSON.parse(text);
        done();
      } catch {
        // not whole yet
      }
    });
    stream.on('error', done);
    stream.on('end', done);
  });
}

/** The host pid of the sandbox's first process, from bwrap's `--info-fd` JSON. */
function sandboxPid(info: string): number {
  try {
    const pid = (JSON.parse(info) as { 'child-pid'?: unknown })['child-pid'];
    if (typeof pid === 'number' && Number.isSafeInteger(pid) && pid > 1) return pid;
  } catch {
    // reported below
  }
  throw new Error(`bwrap did not say which process it started: ${JSON.stringify(info.slice(0, 200))}`);
}
