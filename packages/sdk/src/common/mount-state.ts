/**
 * @module mount-state
 * Where a mount agent keeps its state on the host, shared by the CLI (which
 * starts agents), the agent, and the SDK's `Volume.fromMount` (which finds an
 * agent's control socket from the mount path alone).
 *
 * One directory per mount path: `<root>/<sha256(absolute path)[0..16]>/`
 * holding `config.json` (0600: the mount's scoped token), `control.sock`,
 * `overlay/` (uncommitted work), `cache/` (clean chunks) and `agent.log`.
 * The root is `$STOWAGE_MOUNT_STATE`, else `~/.stowage/mounts`.
 */
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';

export function mountStateRoot(): string {
  const env = process.env.STOWAGE_MOUNT_STATE;
  return env !== undefined && env !== '' ? resolve(env) : join(homedir(), '.stowage', 'mounts');
}

export function mountStateDir(mountPath: string): string {
  return join(mountStateRoot(), createHash('sha256').update(resolve(mountPath)).digest('hex').slice(0, 16));
}

/** The FUSE source ("fsname") of a mount: its state dir, so the kernel's mount table leads to the agent. Commas are escaped for libfuse's option parser. */
export function mountSource(stateDir: string): string {
  return `stowage:${stateDir.replace(/\\/g, '\\\\').replace(/,/g, '\\,')}`;
}

/** A field of a mount table (/proc/self/mounts, mountinfo): spaces, tabs, newlines and backslashes are octal escapes. */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/**
 * The state dir of the Stowage mount at `mountPath` according to a mount
 * table (the text of /proc/self/mounts), or undefined when none is there.
 */
export function stateDirFromMountTable(table: string, mountPath: string): string | undefined {
  let found: string | undefined;
  for (const line of table.split('\n')) {
    const [source, target, type] = line.split(' ');
    if (!source || !target || type !== 'fuse.stowage' || unescapeMountField(target) !== mountPath) continue;
    const src = unescapeMountField(source);
    if (src.startsWith('stowage:')) found = src.slice('stowage:'.length); // the last one is the one on top
  }
  return found;
}

export const MOUNT_CONFIG_FILE = 'config.json';
export const CONTROL_SOCKET = 'control.sock';
export const AGENT_LOG = 'agent.log';
/** The guest control socket of a mount bound into a sandbox (MountConfig.guest): status, commit and reload only. */
export const GUEST_CONTROL_SOCKET = 'guest.sock';

/** Descriptors of uncommitted files' data an agent keeps open at most, by default (`--open-files`). */
export const DEFAULT_OPEN_FILES = 256;

/** What the CLI hands the agent (and keeps for a restart after a crash). */
export interface MountConfig {
  serverUrl: string;
  volume: string;
  volumeId: string;
  attachmentId: string;
  /** Bearer of the attachment's scoped token (never the tenant's). */
  token: string;
  host: string;
  mountPath: string;
  subpath: string;
  readOnly: boolean;
  cacheSize: number;
  bufferSize: number;
  prefetch: number;
  writeback: boolean;
  /** Let other users than the mounting one use the mount (FUSE allow_other; sandboxes need it). */
  allowOther?: boolean;
  /** Who owns entries that record no owner; default the user who mounted. */
  uid?: number;
  gid?: number;
  /** Data-file descriptors the agent keeps open at most (mount/fd-cache.ts); its default when absent. */
  openFiles?: number;
  /** Keep idle CPUs awake while requests come back to back (mount/fuse/wake-latency.ts): needs root, where `stowage mount` sets it unless told `--no-low-latency`. */
  lowLatency?: boolean;
  /** Set for a volume mounted into a sandbox (sandbox/supervisor/volume-mounts.ts). */
  guest?: GuestControl;
}

/**
 * How a sandbox reaches the mount's agent without any credential: the agent
 * serves a second control socket (GUEST_CONTROL_SOCKET in its state dir,
 * owned by uid/gid, mode 0600) that answers status, commit and reload only,
 * and names `controlDir` as its FUSE source instead of its state dir, so
 * `Volume.fromMount` inside the sandbox looks for `controlDir/control.sock`,
 * where the launcher binds that guest socket (and nothing else of the state dir).
 */
export interface GuestControl {
  uid: number;
  gid: number;
  /** The directory, as the sandbox sees it, holding the bound socket as `control.sock`. */
  controlDir: string;
  /** The mount's path inside the sandbox (what the guest's status reports instead of the host path). */
  mountPath: string;
}

/** GET /status of the control socket. */
export interface MountStatus {
  volume: string;
  mountPath: string;
  subpath: string;
  readOnly: boolean;
  writeback: boolean;
  attachmentId: string;
  /** The commit the view shows (plus the overlay). */
  base: string;
  /** Paths with uncommitted changes. */
  pending: number;
  cache: { bytes: number; capacity: number; chunks: number; hits: number; misses: number; evictions: number };
  pid: number;
  /**
   * What the kernel and the agent agreed at mount: protocol "7.x", largest write and read request in bytes;
   * and the FUSE requests served since the mount by operation (each one a kernel round trip).
   */
  fuse?: { protocol: string; maxWrite: number; maxRead: number; requests: Record<string, number> };
  /** With `--low-latency`: whether idle CPUs are held awake now, how many bursts were held, and for how long in all. */
  lowLatency?: { holding: boolean; holds: number; heldMs: number };
  /** Volume paths this mount committed since its last reload that a later commit of another writer changed, deleted or moved (mount/overwrites.ts). */
  overwrittenByOthers: OverwrittenPath[];
}

/** A path of this mount's commits, and the first later commit of someone else that changed it. */
export interface OverwrittenPath {
  path: string;
  commit: string;
}

/** POST /commit of the control socket. */
export interface MountCommitResult {
  /** null when there was nothing to commit. */
  commit: { id: string; seq: number } | null;
  changes: number;
  uploadedChunks: number;
  uploadedBytes: number;
  overwritten: string[];
  skipped: Array<{ index: number; path: string; reason: string }>;
}

/** POST /reload of the control socket: body {force?: boolean}. */
export interface MountReloadResult {
  commit: string;
  /** Uncommitted changed paths thrown away. */
  discarded: number;
  /** As in MountStatus, up to this reload; the reload clears the list. */
  overwrittenByOthers: OverwrittenPath[];
}
