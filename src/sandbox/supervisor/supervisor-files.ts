/**
 * @module sandbox/supervisor/supervisor-files
 * Where a sandbox's supervisor keeps what must outlive the daemon and, for
 * the records, the sandbox itself: `<dataDir>/sandbox-runs/<id>/` holds
 *
 * - `spec.json` (0600): what the daemon asked for (volume tokens included),
 *   read by the supervisor at start;
 * - `control.sock`: the supervisor's control socket (root only);
 * - `supervisor.log`: what the supervisor printed; `supervisor.pid`: its pid;
 * - `cgroup`: the name of the sandbox's cgroup (a spare's made it under its own name);
 * - `state.json`: the sandbox's final state, written once it has ended;
 * - `execs/`: the durable exec records (supervisor/exec-records).
 *
 * The state disk lives apart (`<dataDir>/sandboxes/<id>`, host/state-disk)
 * and is deleted when the sandbox ends; this directory stays, so execs can be
 * read after the end, until the daemon prunes it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readJsonFile } from '../../common/json-file.js';
import type { IdRange } from '../host/launch-args.js';
import { checkSandboxId } from '../host/state-disk.js';
import type { RuntimeState, RuntimeVolume } from '../runtime.js';

export const RUNS_DIR = 'sandbox-runs';
/** The supervisor's entry point, which the daemon starts (and recognises in /proc). */
export const SUPERVISOR_MAIN = fileURLToPath(new URL('./supervisor-main.js', import.meta.url));
/** Disks formatted ahead by spare supervisors (on the same file system as the sandboxes' disks). */
export const SPARES_DIR = 'sandbox-spares';
/** Longest path a unix socket can bind (sun_path is 108 bytes with its NUL). */
const MAX_SOCKET_PATH = 107;

export interface RunPaths {
  dir: string;
  spec: string;
  socket: string;
  log: string;
  pid: string;
  cgroup: string;
  state: string;
}

export function runPaths(dataDir: string, id: string): RunPaths {
  const dir = join(dataDir, RUNS_DIR, checkSandboxId(id));
  const socket = join(dir, 'control.sock');
  if (Buffer.byteLength(socket) > MAX_SOCKET_PATH)
    throw new Error(
      `the data dir ${dataDir} is too long for a sandbox's control socket (${socket} is over ${MAX_SOCKET_PATH} bytes); use a shorter --data-dir`,
    );
  return {
    dir,
    spec: join(dir, 'spec.json'),
    socket,
    log: join(dir, 'supervisor.log'),
    pid: join(dir, 'supervisor.pid'),
    cgroup: join(dir, 'cgroup'),
    state: join(dir, 'state.json'),
  };
}

/** What a supervisor starts from (written by the daemon). */
export interface SupervisorSpec {
  id: string;
  dataDir: string;
  /** The built image: its root (the overlay's lower layer) and its environment. */
  imageRoot: string;
  imageEnv: Record<string, string>;
  ids: IdRange;
  cpu: number;
  memoryMib: number;
  diskGib: number;
  env: Record<string, string>;
  expiresAt: string;
  volumes: RuntimeVolume[];
  /** The host mounts volumes with `--low-latency` (LocalHostOptions.lowLatencyVolumes). */
  lowLatencyVolumes?: boolean;
}

/** What the daemon asks a spare supervisor to make ahead (its `--spare` argument, JSON). */
export interface SpareOrder {
  diskGib: number;
  /** The image to prepare a sandbox of (the one the host ran last), with the host's id range. */
  image?: { root: string; ids: IdRange };
}

/** The name a spare makes its sandbox's state and cgroup under, until a request claims it. */
export function spareSlot(pid: number): string {
  return `spare-${pid}`;
}

/** The pid in a spare's slot name, or 0 for any other name. */
export function spareSlotPid(name: string): number {
  return Number(/^spare-(\d+)$/.exec(name)?.[1] ?? 0);
}

/** The name of sandbox `id`'s cgroup, as its supervisor recorded it (its id when it recorded none). */
export function cgroupNameOf(dataDir: string, id: string): string {
  try {
    return readFileSync(runPaths(dataDir, id).cgroup, 'utf8').trim() || id;
  } catch {
    return id;
  }
}

/** The final state a supervisor recorded, if its sandbox has ended. */
export function readFinalState(dataDir: string, id: string): RuntimeState | undefined {
  return readJsonFile<RuntimeState>(runPaths(dataDir, id).state);
}
