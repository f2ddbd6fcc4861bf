/**
 * @module wire/sandboxes
 * Sandboxes: create, list, get, terminate; commands run in them (execs) with
 * their output; files on their state disk. Types only; re-exported by api/wire.
 */

/** One build step of an image: exactly one key. */
export type ImageStep = { aptInstall: string[] } | { runCommands: string[] } | { env: Record<string, string> };

/** A base (`debian`, the default, or `busybox`, a few MB) and build steps; the same description names the same image. */
export interface ImageSpec {
  base?: 'debian' | 'busybox';
  steps?: ImageStep[];
}

/** A volume mounted in a sandbox: its name, or the name with options. */
export type SandboxVolumeRequest =
  | string
  | {
      volume: string;
      readOnly?: boolean;
      /** Mount only this directory of the volume (absolute inside the volume). */
      subpath?: string;
    };

/**
 * POST /v1/sandboxes. Mount paths (the keys of `volumes`) are absolute,
 * normalised, not `/`, not overlapping each other, and not at or under
 * /proc, /dev, /sys or the agent's /.stowage; a violation is a 400 before
 * anything starts.
 */
export interface CreateSandboxRequest {
  image?: ImageSpec;
  volumes?: Record<string, SandboxVolumeRequest>;
  /** CPU cores (fractions allowed); default 1. */
  cpu?: number;
  /** Memory limit in MiB (no swap); default 1024. */
  memoryMib?: number;
  /** State disk size in GiB; default 4. */
  diskGib?: number;
  /** Environment of every command (an exec's own env adds to it). */
  env?: Record<string, string>;
  /** Seconds until the sandbox is terminated; default 300, at most 86400. */
  timeout?: number;
}

export type SandboxStatus = 'starting' | 'running' | 'terminated' | 'failed';

/** A volume as mounted in a sandbox. */
export interface SandboxVolume {
  path: string;
  volume: string;
  readOnly: boolean;
  subpath?: string;
  /** The attachment the mount runs on. */
  attachmentId: string;
}

/** A sandbox (GET /v1/sandboxes/{id}). Environment values are not echoed: `envNames` lists the names only. */
export interface Sandbox {
  id: string;
  status: SandboxStatus;
  /** Why it failed or was terminated (e.g. "timeout", "terminated by request"). */
  reason: string | null;
  image: ImageSpec;
  volumes: SandboxVolume[];
  cpu: number;
  memoryMib: number;
  diskGib: number;
  envNames: string[];
  timeout: number;
  /** The host it runs on. */
  host: string;
  createdAt: string;
  /** When it will be terminated by its timeout. */
  expiresAt: string;
  endedAt: string | null;
}

/** GET /v1/sandboxes?all=true (default: starting and running only), newest first. */
export interface SandboxList {
  sandboxes: Sandbox[];
}

/** POST /v1/sandboxes/{id}/execs. Exactly one of `argv` (run as is) or `command` (run by /bin/sh -c). */
export interface ExecRequest {
  argv?: string[];
  command?: string;
  cwd?: string;
  env?: Record<string, string>;
  /** A long-lived process: no default timeout. */
  background?: boolean;
  /** Seconds until the whole process group is killed; 0 for none. Default 600 for foreground, none for background. */
  timeout?: number;
  /** Keep stdin open for POST .../stdin (otherwise it reads /dev/null). */
  stdin?: boolean;
  /**
   * Run on a pseudo-terminal (`true`: 24 rows, 80 columns): the command sees
   * a terminal on stdin, stdout and stderr, whose output arrives as stdout.
   * Resize it with POST .../resize.
   */
  pty?: boolean | { rows: number; cols: number };
}

export type ExecStatus = 'running' | 'exited' | 'failed';

/** A durable exec record. `exitCode` when it exited on its own, `signal` when a signal ended it. */
export interface Exec {
  id: string;
  sandboxId: string;
  argv: string[];
  cwd?: string;
  background: boolean;
  /** It runs on a pseudo-terminal. */
  pty: boolean;
  timeout?: number;
  status: ExecStatus;
  exitCode?: number;
  signal?: string;
  timedOut?: boolean;
  /** The sandbox's memory limit killed a process of it. */
  oomKilled?: boolean;
  /** Why it could not start or was lost. */
  error?: string;
  startedAt: string;
  endedAt?: string;
  /** Bytes kept per stream (offsets run 0..n), and bytes dropped past the bound. */
  stdoutBytes: number;
  stderrBytes: number;
  dropped: { stdout: number; stderr: number };
}

/** GET /v1/sandboxes/{id}/execs, oldest first. */
export interface ExecList {
  execs: Exec[];
}

/**
 * GET /v1/sandboxes/{id}/execs/{execId}/output?stdout=N&stderr=M : a
 * `text/event-stream` of the output from those byte offsets as it arrives,
 * event `output` (data: ExecOutputEvent) then one event `exit` (data: Exec)
 * once the exec has ended and all its output was sent. Re-attach from the
 * offsets you last saw.
 */
export interface ExecOutputEvent {
  stream: 'stdout' | 'stderr';
  offset: number;
  /** The bytes, base64. */
  data: string;
}

/**
 * POST /v1/sandboxes/{id}/execs/{execId}/signal (answers 204). Stdin is
 * POST .../stdin with the raw bytes as body (at most 8 MiB a request;
 * `?end=true` closes it), also 204.
 */
export interface SignalExecRequest {
  signal: string;
}

/** POST /v1/sandboxes/{id}/execs/{execId}/resize (a `pty` exec; answers 204): the command gets SIGWINCH. */
export interface ResizeExecRequest {
  rows: number;
  cols: number;
}

/**
 * A file in a sandbox (GET /v1/sandboxes/{id}/files/stat?path=; also the
 * answer of PUT /v1/sandboxes/{id}/files?path=&mode=&createParents=, whose
 * raw body is the file). GET .../files?path= answers the raw bytes;
 * DELETE .../files?path=&recursive= answers 204.
 */
export interface SandboxFileInfo {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  mode: number;
  mtime: string;
  uid: number;
  gid: number;
}

/** GET /v1/sandboxes/{id}/files/list?path= */
export interface SandboxFileList {
  entries: SandboxFileInfo[];
  truncated: boolean;
}

/** POST /v1/sandboxes/{id}/files/mkdir (answers 204) */
export interface SandboxMkdirRequest {
  path: string;
  parents?: boolean;
  mode?: number;
}
