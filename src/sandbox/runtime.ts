/**
 * @module sandbox/runtime
 * What the control plane (engine/sandboxes) asks of a sandbox host: the one
 * small interface between them. The engine decides who may do what, keeps
 * the records and attaches volumes; a runtime starts, runs and stops
 * sandboxes on one machine and knows nothing of tenants or tokens' kinds.
 *
 * Implementations: `LocalSandboxHost` (daemon/local-host.ts), the host
 * daemon run inside `stowage serve`. Every call names a sandbox this
 * runtime was asked to create; an unknown id is a NotFoundError.
 */
import type { Readable } from 'node:stream';
import type { ImageSpec } from './host/image-spec.js';
import type { AgentFileInfo } from './protocol/messages.js';
import type { ExecRecord, Stream } from './supervisor/exec-records.js';
import type { ExecOptions } from './supervisor/exec-service.js';

export type { ExecRecord, Stream };

/** The state disk size of a sandbox that asks for none (GiB); hosts keep spare disks of this size formatted. */
export const DEFAULT_DISK_GIB = 4;

/** A volume to mount in a sandbox: the control plane already attached it and minted its scoped token. */
export interface RuntimeVolume {
  /** Where it appears inside the sandbox (validated by the control plane). */
  path: string;
  readOnly: boolean;
  /** Directory of the volume to mount (absolute inside the volume). */
  subpath?: string;
  volume: string;
  attachmentId: string;
  /** The attachment's scoped token: the only credential the mount (on the host side) holds. */
  token: string;
  /** Where the mount agent reaches the Stowage API. */
  serverUrl: string;
}

/** Everything a host needs to start one sandbox. */
export interface SandboxLaunch {
  id: string;
  image: ImageSpec;
  cpu: number;
  memoryMib: number;
  diskGib: number;
  env: Record<string, string>;
  /** The sandbox terminates itself at this time, even while the daemon is down. */
  expiresAt: Date;
  volumes: RuntimeVolume[];
}

/** A sandbox as its host sees it. */
export interface RuntimeState {
  id: string;
  status: 'running' | 'terminated' | 'failed';
  /** Why it ended: "timeout", "terminated by request", or what failed. */
  reason?: string;
  endedAt?: string;
}

/** What an exec asks for, once the control plane has checked it: what a supervisor's exec service runs. */
export type RuntimeExec = ExecOptions;

/** One piece of an exec's output, or the end of it (then every byte was sent). */
export type OutputEvent = { stream: Stream; offset: number; data: Buffer } | { end: ExecRecord };

/** A file in a sandbox as its agent reports it. */
export type RuntimeFileInfo = AgentFileInfo;

export interface SandboxRuntime {
  /** This host's name, as the records show it. */
  readonly host: string;
  /** Undefined when this host can run sandboxes; otherwise what is missing, each with its fix, as one message. */
  unavailable(): string | undefined;
  /** Starts a sandbox; resolves once its agent answers (or rejects with why it could not start, leaving nothing behind). */
  create(launch: SandboxLaunch): Promise<void>;
  /** The sandbox's state; undefined for an id this host never ran or has forgotten. */
  state(id: string): Promise<RuntimeState | undefined>;
  /** Stops every process, unmounts its volumes, removes its state disk; keeps its exec records. Idempotent. */
  terminate(id: string, reason: string): Promise<RuntimeState>;
  /** Called once for each sandbox that ends on its own (timeout, crash), with its final state. */
  onEnded(listener: (state: RuntimeState) => void): void;

  exec(id: string, exec: RuntimeExec): Promise<ExecRecord>;
  execs(id: string): Promise<ExecRecord[]>;
  getExec(id: string, execId: string): Promise<ExecRecord | undefined>;
  /** The exec's output from these offsets as it arrives, then its final record; stops early when `signal` aborts. */
  output(
    id: string,
    execId: string,
    from: { stdout: number; stderr: number },
    signal?: AbortSignal,
  ): AsyncIterable<OutputEvent>;
  writeStdin(id: string, execId: string, data: Buffer, end: boolean): Promise<void>;
  signal(id: string, execId: string, signal: NodeJS.Signals): Promise<void>;
  /** Resizes a running `pty` exec's terminal. */
  resize(id: string, execId: string, rows: number, cols: number): Promise<void>;

  /** Writes a file through the sandbox's agent (atomically: a temp file renamed over the path). */
  writeFile(
    id: string,
    path: string,
    data: Readable,
    options: { mode: number; createParents: boolean },
  ): Promise<RuntimeFileInfo>;
  /** A file's bytes, read by the agent inside the sandbox. */
  readFile(id: string, path: string): Promise<Readable>;
  stat(id: string, path: string): Promise<RuntimeFileInfo>;
  list(id: string, path: string): Promise<{ entries: RuntimeFileInfo[]; truncated: boolean }>;
  remove(id: string, path: string, recursive: boolean): Promise<void>;
  mkdir(id: string, path: string, options: { parents: boolean; mode: number }): Promise<void>;

  /** Stops serving; sandboxes keep running under their supervisors. */
  close(): Promise<void>;
}
