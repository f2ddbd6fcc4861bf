/**
 * @module client/sandbox
 * `Sandbox`: an isolated Linux environment on a Stowage host, started from
 * an image, with a state disk of its own and volumes mounted at paths.
 * Commands run in it as durable execs (`SandboxExec`): their output is kept
 * on the host with byte offsets, so it can be read while it runs, after it
 * ended, and again from any offset.
 *
 * @example
 * const data = await Volume.get('data', { mintIfMissing: true });
 * const sb = await Sandbox.create({ volumes: { '/mnt/data': data }, timeout: 600 });
 * const run = await sb.exec(['python3', '-c', 'print(6 * 7)']);
 * const { stdout, exitCode } = await run.wait();
 * await sb.terminate();
 */
import { Readable } from 'node:stream';
import type * as wire from '../api/wire.js';
import { InvalidArgumentError } from '../common/errors.js';
import { defaultStowage, type Stowage } from './http-client.js';
import { SandboxExec } from './sandbox-exec.js';
import type { ClientOption, Volume } from './volume.js';

export { SandboxExec, type ExecOutput, type ExecResult } from './sandbox-exec.js';

/** A volume to mount: a handle, a name, or either with options. */
export type SandboxVolume = Volume | string | { volume: Volume | string; readOnly?: boolean; subpath?: string };

/** Options of `Sandbox.create`. */
export interface SandboxOptions extends ClientOption {
  /** The image: a base and build steps (default: Debian). */
  image?: wire.ImageSpec;
  /** Volumes by mount path, e.g. `{ '/mnt/data': vol }`. */
  volumes?: Record<string, SandboxVolume>;
  /** CPU cores (fractions allowed; default 1). */
  cpu?: number;
  /** Memory limit in MiB (default 1024). */
  memoryMib?: number;
  /** State disk size in GiB (default 4). */
  diskGib?: number;
  /** Environment of every command. */
  env?: Record<string, string>;
  /** Seconds until the sandbox is terminated (default 300). */
  timeout?: number;
}

/** Options of `sb.exec`. */
export interface ExecOptions {
  cwd?: string;
  env?: Record<string, string>;
  /** A long-lived process: no default timeout (foreground commands get 10 minutes). */
  background?: boolean;
  /** Seconds until the whole process group is killed; 0 for none. */
  timeout?: number;
  /** `true` keeps stdin open for `writeStdin`; bytes or a string are written to it, then it is closed. */
  stdin?: boolean | string | Uint8Array;
  /** Run on a pseudo-terminal (`true`: 24x80); its output arrives as stdout. Resize with `exec.resize()`. */
  pty?: boolean | { rows: number; cols: number };
}

/** Options of `sb.write`. */
export interface SandboxWriteOptions {
  /** Permission bits of the file (default 0o644). */
  mode?: number;
  /** Create missing parent directories (default true). */
  createParents?: boolean;
}

function volumeName(v: Volume | string): string {
  return typeof v === 'string' ? v : v.name;
}

function volumesBody(volumes: Record<string, SandboxVolume>): Record<string, wire.SandboxVolumeRequest> {
  const out: Record<string, wire.SandboxVolumeRequest> = {};
  for (const [path, v] of Object.entries(volumes)) {
    if (typeof v === 'string' || !('volume' in v)) out[path] = volumeName(v);
    else
      out[path] = {
        volume: volumeName(v.volume),
        ...(v.readOnly !== undefined ? { readOnly: v.readOnly } : {}),
        ...(v.subpath !== undefined ? { subpath: v.subpath } : {}),
      };
  }
  return out;
}

function absolute(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/'))
    throw new InvalidArgumentError(`sandbox paths are absolute: ${JSON.stringify(path)}`);
  return path;
}

/** A sandbox of the caller's tenant. */
export class Sandbox {
  #info: wire.Sandbox;

  private constructor(
    readonly client: Stowage,
    info: wire.Sandbox,
  ) {
    this.#info = info;
  }

  /** Starts a sandbox; resolves once it runs. The first use of an image builds it (minutes for apt steps). */
  static async create(options: SandboxOptions = {}): Promise<Sandbox> {
    const client = options.client ?? defaultStowage();
    const body: wire.CreateSandboxRequest = {};
    if (options.image !== undefined) body.image = options.image;
    if (options.volumes !== undefined) body.volumes = volumesBody(options.volumes);
    for (const k of ['cpu', 'memoryMib', 'diskGib', 'env', 'timeout'] as const) {
      if (options[k] !== undefined) (body as Record<string, unknown>)[k] = options[k];
    }
    return new Sandbox(client, await client.request<wire.Sandbox>('POST', '/v1/sandboxes', { body }));
  }

  /** A handle on an existing sandbox. */
  static async connect(id: string, options: ClientOption = {}): Promise<Sandbox> {
    const client = options.client ?? defaultStowage();
    return new Sandbox(client, await client.request<wire.Sandbox>('GET', Sandbox.#path(id)));
  }

  /** The tenant's running sandboxes (with `all`, ended ones too), newest first. */
  static async list(options: ClientOption & { all?: boolean } = {}): Promise<Sandbox[]> {
    const client = options.client ?? defaultStowage();
    const { sandboxes } = await client.request<wire.SandboxList>('GET', '/v1/sandboxes', {
      query: { all: options.all ? 'true' : undefined },
    });
    return sandboxes.map((s) => new Sandbox(client, s));
  }

  static #path(id: string, suffix = ''): string {
    return `/v1/sandboxes/${encodeURIComponent(id)}${suffix}`;
  }

  get id(): string {
    return this.#info.id;
  }

  /** The server's description as last fetched. */
  get info(): wire.Sandbox {
    return this.#info;
  }

  /** Fetches the description anew. */
  async refresh(): Promise<wire.Sandbox> {
    this.#info = await this.client.request<wire.Sandbox>('GET', Sandbox.#path(this.id));
    return this.#info;
  }

  /** starting, running, terminated or failed (fetched now). */
  async status(): Promise<wire.SandboxStatus> {
    return (await this.refresh()).status;
  }

  /**
   * Runs a command: a string runs through `/bin/sh -c`, an array runs as is.
   * Resolves once it started, with its durable record.
   */
  async exec(command: string | string[], options: ExecOptions = {}): Promise<SandboxExec> {
    const body: wire.ExecRequest = typeof command === 'string' ? { command } : { argv: command };
    if (options.cwd !== undefined) body.cwd = options.cwd;
    if (options.env !== undefined) body.env = options.env;
    if (options.background !== undefined) body.background = options.background;
    if (options.timeout !== undefined) body.timeout = options.timeout;
    if (options.stdin !== undefined && options.stdin !== false) body.stdin = true;
    if (options.pty !== undefined && options.pty !== false) body.pty = options.pty;
    const record = await this.client.request<wire.Exec>('POST', Sandbox.#path(this.id, '/execs'), { body });
    const exec = new SandboxExec(this.client, record);
    if (typeof options.stdin === 'string' || options.stdin instanceof Uint8Array) {
      await exec.writeStdin(options.stdin);
      await exec.closeStdin();
    }
    return exec;
  }

  /** Every exec of this sandbox, oldest first. */
  async execs(): Promise<SandboxExec[]> {
    const { execs } = await this.client.request<wire.ExecList>('GET', Sandbox.#path(this.id, '/execs'));
    return execs.map((r) => new SandboxExec(this.client, r));
  }

  /** A handle on one exec (to re-attach to its output, from another process for example). */
  async getExec(execId: string): Promise<SandboxExec> {
    const record = await this.client.request<wire.Exec>(
      'GET',
      Sandbox.#path(this.id, `/execs/${encodeURIComponent(execId)}`),
    );
    return new SandboxExec(this.client, record);
  }

  /** Writes a file on the sandbox's disk (or, under a volume's mount path, into that volume) atomically. */
  async write(
    path: string,
    data: string | Uint8Array | Readable,
    options: SandboxWriteOptions = {},
  ): Promise<wire.SandboxFileInfo> {
    const body = typeof data === 'string' ? Buffer.from(data) : data;
    const call = {
      query: {
        path: absolute(path),
        mode: options.mode?.toString(8),
        createParents: options.createParents === undefined ? undefined : String(options.createParents),
      },
      headers: { 'content-type': 'application/octet-stream' },
    };
    const at = Sandbox.#path(this.id, '/files');
    if (body instanceof Readable) return this.client.sendStream<wire.SandboxFileInfo>('PUT', at, body, call);
    return (await (await this.client.fetchRaw('PUT', at, { ...call, body })).json()) as wire.SandboxFileInfo;
  }

  /** A whole file's bytes. */
  async read(path: string): Promise<Buffer> {
    const res = await this.client.fetchRaw('GET', Sandbox.#path(this.id, '/files'), {
      query: { path: absolute(path) },
    });
    return Buffer.from(await res.arrayBuffer());
  }

  /** A file as a stream. */
  async readStream(path: string): Promise<Readable> {
    const res = await this.client.fetchRaw('GET', Sandbox.#path(this.id, '/files'), {
      query: { path: absolute(path) },
    });
    return res.body ? Readable.fromWeb(res.body as never) : Readable.from([]);
  }

  stat(path: string): Promise<wire.SandboxFileInfo> {
    return this.client.request('GET', Sandbox.#path(this.id, '/files/stat'), { query: { path: absolute(path) } });
  }

  list(path: string): Promise<wire.SandboxFileList> {
    return this.client.request('GET', Sandbox.#path(this.id, '/files/list'), { query: { path: absolute(path) } });
  }

  async remove(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    await this.client.request('DELETE', Sandbox.#path(this.id, '/files'), {
      query: { path: absolute(path), recursive: options.recursive ? 'true' : undefined },
    });
  }

  async mkdir(path: string, options: { parents?: boolean; mode?: number } = {}): Promise<void> {
    const body: wire.SandboxMkdirRequest = { path: absolute(path), ...options };
    await this.client.request('POST', Sandbox.#path(this.id, '/files/mkdir'), { body });
  }

  /** Stops every process, releases the volumes (never deletes them) and removes the state disk. */
  async terminate(): Promise<void> {
    this.#info = await this.client.request<wire.Sandbox>('POST', Sandbox.#path(this.id, '/terminate'));
  }
}
