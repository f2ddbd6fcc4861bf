/**
 * @module mount/agent-launch
 * Starting a mount agent from a ready attachment, the one way `stowage
 * mount` (cli/commands/mount-commands.ts) and a sandbox's supervisor
 * (sandbox/supervisor/volume-mounts.ts) both do it: the config (with the
 * attachment's scoped token, never the tenant's) is written 0600 into the
 * mount's state dir, the agent (agent-main.ts) is spawned on this Node with
 * no STOWAGE_* setting, and the caller waits on its IPC channel for
 * "mounted" or the error that kept it from mounting. Also how a caller
 * waits for an agent to be gone after an unmount.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  cpSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InvalidArgumentError, UnavailableError, errorFromCode } from '@stowage/sdk/common/errors.js';
import { AGENT_LOG, MOUNT_CONFIG_FILE, type MountConfig } from '@stowage/sdk/common/mount-state.js';
import { MountHandle } from '@stowage/sdk/client/mount-control.js';

/** How long a start waits for the agent to mount, by default. */
export const AGENT_START_TIMEOUT_MS = 60_000;

const AGENT_MAIN = fileURLToPath(new URL('./agent-main.js', import.meta.url));

/** The config an earlier agent of this state dir ran with (kept for a restart after a crash), if any. */
export function readMountConfig(stateDir: string): MountConfig | undefined {
  try {
    return JSON.parse(readFileSync(join(stateDir, MOUNT_CONFIG_FILE), 'utf8')) as MountConfig;
  } catch {
    return undefined;
  }
}

/**
 * Refuses to mount `volume` over a state dir whose overlay may hold another
 * volume's uncommitted changes (they would be replayed onto the wrong tree).
 */
export function checkOverlayBelongsTo(stateDir: string, mountPath: string, volume: string): void {
  const previous = readMountConfig(stateDir);
  if (previous && previous.volume !== volume && existsSync(join(stateDir, 'overlay')))
    throw new InvalidArgumentError(
      `${mountPath} was last mounted from volume "${previous.volume}" and may hold its uncommitted changes: mount "${previous.volume}" there to recover them, or delete ${stateDir}`,
    );
}

/**
 * Makes the mount state kept in `from` (a sandbox's `sandbox-kept/<sandbox>/<n>`, or another mount's state
 * dir: config.json and overlay/) the state of `mountPath`, so the next agent there replays its uncommitted
 * work. Refused when `from` holds no state, holds another volume's, is a running agent's, or when `mountPath`
 * has uncommitted work of its own; `from` is moved, not copied, so the work is never replayed twice.
 */
export async function adoptMountState(
  from: string,
  stateDir: string,
  mountPath: string,
  volume: string,
): Promise<void> {
  const kept = readMountConfig(from);
  if (!kept || !existsSync(join(from, 'overlay')))
    throw new InvalidArgumentError(`${from} holds no mount state to recover (no config.json and overlay/)`);
  if (kept.volume !== volume)
    throw new InvalidArgumentError(`${from} holds uncommitted work of volume "${kept.volume}", not of "${volume}"`);
  if (resolve(from) === resolve(stateDir)) return;
  // A live agent's state is its own: taking it from under it would lose what it holds in memory.
  if (await agentAnswers(new MountHandle(kept.mountPath, { stateDir: from })))
    throw new InvalidArgumentError(
      `an agent still runs on ${from} (mounted at ${kept.mountPath}): commit there, or unmount it first`,
    );
  if (existsSync(join(stateDir, 'overlay')))
    throw new InvalidArgumentError(
      `${mountPath} holds uncommitted work of its own (${stateDir}): mount and commit it first, or recover into another path`,
    );
  rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(dirname(stateDir), { recursive: true, mode: 0o700 });
  try {
    renameSync(from, stateDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    // Another file system: copied whole first, so a failure midway leaves `from` as it was.
    cpSync(from, stateDir, { recursive: true });
    rmSync(from, { recursive: true, force: true });
  }
}

/** Writes the agent's config into its state dir (0700), readable by root and the mount's owner only (0600). */
export function writeMountConfig(stateDir: string, config: MountConfig): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(join(stateDir, MOUNT_CONFIG_FILE), JSON.stringify(config, null, 2), { mode: 0o600 });
}

export interface StartedAgent {
  pid: number;
  /** The agent process; its IPC channel is closed once it mounted. */
  child: ChildProcess;
}

/** The agent's environment: no STOWAGE_* settings, so it never sees the tenant's token (its own is in config.json). */
function agentEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('STOWAGE_')));
}

/** A spare agent process, and whether it has said it waits for a state dir. */
export interface SpareMountAgent {
  child: ChildProcess;
  waiting: boolean;
}

/**
 * Starts a spare agent: Node started and the agent loaded, waiting for a state dir (agent-main `--spare`), a
 * plain child of this process (it exits if this process goes). Hand it to startMountAgent as `spare`.
 */
export function spawnSpareMountAgent(): SpareMountAgent {
  const child = spawn(process.execPath, [AGENT_MAIN, '--spare'], {
    env: agentEnv(),
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const spare: SpareMountAgent = { child, waiting: false };
  child.on('error', () => undefined);
  child.once('message', (m: { waiting?: unknown }) => {
    spare.waiting = m?.waiting === true;
  });
  return spare;
}

/**
 * Starts the agent of `stateDir` (its config written) and resolves once it
 * mounted, or rejects with why not (the agent's own error, or its exit).
 * `detached` puts it in its own session (the CLI's agents outlive the shell);
 * otherwise it stays in the caller's process group, as a plain child. `spare`:
 * a spare agent (spawnSpareMountAgent) to run it in instead of starting Node,
 * used when it says it waits (else it is killed and a fresh agent started).
 */
export function startMountAgent(
  stateDir: string,
  options: { detached: boolean; timeoutMs?: number; spare?: SpareMountAgent },
): Promise<StartedAgent> {
  const timeoutMs = options.timeoutMs ?? AGENT_START_TIMEOUT_MS;
  let child: ChildProcess;
  const spare = options.spare;
  const usable = spare?.waiting && spare.child.connected && spare.child.exitCode === null && !options.detached;
  if (usable) {
    child = spare.child;
    child.send({ stateDir });
  } else {
    // One still starting (or gone) is not waited for: a fresh agent is as quick.
    spare?.child.kill();
    const log = openSync(join(stateDir, AGENT_LOG), 'a', 0o600);
    child = spawn(process.execPath, [AGENT_MAIN, stateDir], {
      detached: options.detached,
      env: agentEnv(),
      stdio: ['ignore', log, log, 'ipc'],
    });
    closeSync(log);
  }
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(
        new UnavailableError(
          `the mount agent did not start within ${timeoutMs / 1000} s; see ${join(stateDir, AGENT_LOG)}`,
        ),
      );
    }, timeoutMs);
    const exited = (code: number | null): void => {
      clearTimeout(timer);
      fail(
        new UnavailableError(`the mount agent exited (code ${code}) before mounting; see ${join(stateDir, AGENT_LOG)}`),
      );
    };
    child.once('exit', exited);
    child.once('message', (m: { ok: boolean; pid?: number; error?: { code: string; message: string } }) => {
      clearTimeout(timer);
      child.off('exit', exited);
      if (child.connected) child.disconnect();
      if (m.ok) done({ pid: child.pid ?? 0, child });
      else fail(errorFromCode(m.error?.code ?? 'Internal', m.error?.message ?? 'the mount agent failed'));
    });
  });
}

/** Whether the agent behind `handle` answers its control socket. */
export async function agentAnswers(handle: MountHandle): Promise<boolean> {
  try {
    await handle.status();
    return true;
  } catch {
    return false;
  }
}

/** Whether `pid` still runs: an exited agent waiting to be reaped (a zombie, state Z in /proc) counts as gone. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

/**
 * Waits (at most `ms`) until the agent's socket stops answering and, when its
 * pid is known, until the agent process is gone: the agent closes its socket
 * first and releases the attachment last, so returning on the socket alone
 * let a following mount of an RWO volume be refused by the attachment that
 * was still being released.
 */
export async function waitAgentGone(handle: MountHandle, ms: number, pid?: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (!(await agentAnswers(handle)) && (pid === undefined || !processAlive(pid))) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

/** Lazily unmounts whatever FUSE mount is left at `path` (its agent died); resolves whatever happens. */
export function lazyUnmount(path: string): Promise<void> {
  return new Promise<void>((done) =>
    spawn('fusermount', ['-uz', path], { stdio: 'ignore' })
      .on('exit', () => done())
      .on('error', () => done()),
  );
}
