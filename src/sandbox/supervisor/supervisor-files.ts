/**
 * @module sandbox/supervisor/supervisor-files
 * Where a sandbox's supervisor keeps what must outlive the daemon and, for
 * the records, the sandbox itself: `<dataDir>/sandbox-runs/<id>/` holds
 *
 * - `spec.json` (0600): what the daemon asked for (volume tokens included),
 *   read by the supervisor at start;
 * - `control.sock`: the supervisor's control socket (root only);
 * - `supervisor.log`: what the supervisor printed; `supervisor.pid`: its pid;
 * - `state.json`: the sandbox's final state, written once it has ended;
 * - `execs/`: the durable exec records (supervisor/exec-records).
 *
 * The state disk lives apart (`<dataDir>/sandboxes/<id>`, host/state-disk)
 * and is deleted when the sandbox ends; this directory stays, so execs can be
 * read after the end, until the daemon prunes it.
 */
import { join } from 'node:path';
import { readJsonFile } from '../../common/json-file.js';
import type { IdRange } from '../host/launch-args.js';
import { checkSandboxId } from '../host/state-disk.js';
import type { RuntimeState, RuntimeVolume } from '../runtime.js';

export const RUNS_DIR = 'sandbox-runs';
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
}

/** The final state a supervisor recorded, if its sandbox has ended. */
export function readFinalState(dataDir: string, id: string): RuntimeState | undefined {
  return readJsonFile<RuntimeState>(runPaths(dataDir, id).state);
}
