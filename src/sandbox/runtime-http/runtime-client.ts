/**
 * @module sandbox/runtime-http/runtime-client
 * `HttpSandboxRuntime`: a `SandboxRuntime` reached over HTTP (runtime-app is
 * the other end): a supervisor on its unix socket, or a remote sandbox host
 * (`stowage sandbox-host`) on TCP with its shared secret. Error answers turn
 * back into the errors the other end named; exec output is decoded from its
 * frames.
 */
import { request as httpRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Readable } from 'node:stream';
import { ERROR_CODES, errorFromCode } from '@stowage/sdk/common/errors.js';
import { AgentCallError } from '../protocol/agent-client.js';
import { FrameDecoder } from '../protocol/frames.js';
import type {
  ExecRecord,
  OutputEvent,
  RuntimeExec,
  RuntimeFileInfo,
  RuntimeState,
  SandboxLaunch,
  SandboxRuntime,
} from '../runtime.js';

/** The other end could not be reached at all (gone, or not listening). */
export class RuntimeUnreachableError extends Error {
  override name = 'RuntimeUnreachableError';
}

/** Where the runtime listens: a unix socket (no secret: the socket's mode guards it), or a URL and its secret. */
export type RuntimeTarget = { socketPath: string } | { url: string; secret: string };

interface CallOptions {
  json?: unknown;
  body?: Buffer | Readable;
  signal?: AbortSignal;
}

const enc = encodeURIComponent;

export class HttpSandboxRuntime implements SandboxRuntime {
  readonly #target: RuntimeTarget;
  #unreachable: string | undefined;
  readonly #listeners: Array<(state: RuntimeState) => void> = [];
  readonly #closing = new AbortController();

  constructor(
    target: RuntimeTarget,
    readonly host: string,
  ) {
    this.#target = target;
  }

  /** Connects to a remote host and learns its name; rejects when it does not answer. */
  static async connect(target: RuntimeTarget): Promise<HttpSandboxRuntime> {
    const probe = new HttpSandboxRuntime(target, '');
    const { host } = await probe.#json<{ host: string; unavailable: string | null }>('GET', '/host');
    return new HttpSandboxRuntime(target, host);
  }

  get #where(): string {
    return 'socketPath' in this.#target ? this.#target.socketPath : this.#target.url;
  }

  /** Sends a call; resolves with the answer once its head arrived, 2xx or not. */
  #send(method: string, path: string, opts: CallOptions = {}): Promise<IncomingMessage> {
    const t = this.#target;
    const headers: Record<string, string> = {};
    if (opts.json !== undefined) headers['content-type'] = 'application/json';
    let req: ReturnType<typeof httpRequest>;
    const base: RequestOptions = { method, headers, ...(opts.signal ? { signal: opts.signal } : {}) };
    if ('socketPath' in t) req = httpRequest({ ...base, socketPath: t.socketPath, path });
    else {
      headers.authorization = `Bearer ${t.secret}`;
      const url = new URL(path, t.url);
      req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, base);
    }
    return new Promise((resolve, reject) => {
      req.on('response', (res) => {
        this.#unreachable = undefined;
        resolve(res);
      });
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (['ECONNREFUSED', 'ENOENT', 'ECONNRESET', 'EHOSTUNREACH', 'ETIMEDOUT'].includes(e.code ?? '')) {
          this.#unreachable = `the sandbox host at ${this.#where} is not answering (${e.code})`;
          reject(new RuntimeUnreachableError(this.#unreachable));
        } else reject(e);
      });
      if (opts.json !== undefined) req.end(JSON.stringify(opts.json));
      else if (opts.body instanceof Readable) {
        opts.body.on('error', (e) => req.destroy(e));
        opts.body.pipe(req);
      } else req.end(opts.body);
    });
  }

  /** The answer, or the error it names (a Stowage error, or the agent's errno-style one). */
  async #call(method: string, path: string, opts: CallOptions = {}): Promise<IncomingMessage> {
    const res = await this.#send(method, path, opts);
    if ((res.statusCode ?? 500) < 300) return res;
    const text = await readAll(res);
    let error: { code?: string; message?: string } = {};
    try {
      error = (JSON.parse(text.toString('utf8')) as { error: typeof error }).error ?? {};
    } catch {
      // not JSON: report the status
    }
    const code = error.code ?? 'Internal';
    const message = error.message ?? `the sandbox host answered ${res.statusCode}`;
    if ((ERROR_CODES as readonly string[]).includes(code)) throw errorFromCode(code, message);
    throw new AgentCallError(code, message);
  }

  async #json<T>(method: string, path: string, opts: CallOptions = {}): Promise<T> {
    const res = await this.#call(method, path, opts);
    return JSON.parse((await readAll(res)).toString('utf8')) as T;
  }

  async #empty(method: string, path: string, opts: CallOptions = {}): Promise<void> {
    (await this.#call(method, path, opts)).resume();
  }

  unavailable(): string | undefined {
    return this.#unreachable;
  }

  /**
   * The states of sandboxes that end on their own, as the other end reports
   * them, until the connection closes or `signal` aborts.
   */
  async *events(signal?: AbortSignal): AsyncGenerator<RuntimeState> {
    const res = await this.#call('GET', '/events', signal ? { signal } : {});
    let buf = '';
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        buf += chunk.toString('utf8');
        for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) yield JSON.parse(line) as RuntimeState;
        }
      }
    } catch (e) {
      if (!signal?.aborted) throw e;
    } finally {
      res.destroy();
    }
  }

  /** Listens to the other end's events from the first listener on, reconnecting with a pause when cut. */
  onEnded(listener: (state: RuntimeState) => void): void {
    this.#listeners.push(listener);
    if (this.#listeners.length > 1) return;
    const signal = this.#closing.signal;
    void (async () => {
      while (!signal.aborted) {
        try {
          for await (const state of this.events(signal)) for (const l of this.#listeners) l(state);
        } catch {
          // cut or refused: try again shortly
        }
        await new Promise((resolve) => setTimeout(resolve, 1000).unref());
      }
    })();
  }

  async create(launch: SandboxLaunch): Promise<void> {
    await this.#empty('POST', '/sandboxes', { json: { ...launch, expiresAt: launch.expiresAt.toISOString() } });
  }

  async state(id: string): Promise<RuntimeState | undefined> {
    try {
      return await this.#json<RuntimeState>('GET', `/sandboxes/${enc(id)}`);
    } catch (e) {
      if ((e as { code?: string }).code === 'NotFound') return undefined;
      throw e;
    }
  }

  terminate(id: string, reason: string): Promise<RuntimeState> {
    return this.#json('POST', `/sandboxes/${enc(id)}/terminate`, { json: { reason } });
  }

  exec(id: string, exec: RuntimeExec): Promise<ExecRecord> {
    return this.#json('POST', `/sandboxes/${enc(id)}/execs`, { json: exec });
  }

  async execs(id: string): Promise<ExecRecord[]> {
    return (await this.#json<{ execs: ExecRecord[] }>('GET', `/sandboxes/${enc(id)}/execs`)).execs;
  }

  async getExec(id: string, execId: string): Promise<ExecRecord | undefined> {
    try {
      return await this.#json<ExecRecord>('GET', `/sandboxes/${enc(id)}/execs/${enc(execId)}`);
    } catch (e) {
      if ((e as { code?: string }).code === 'NotFound') return undefined;
      throw e;
    }
  }

  async *output(
    id: string,
    execId: string,
    from: { stdout: number; stderr: number },
    signal?: AbortSignal,
  ): AsyncGenerator<OutputEvent> {
    const res = await this.#call(
      'GET',
      `/sandboxes/${enc(id)}/execs/${enc(execId)}/output?stdout=${from.stdout}&stderr=${from.stderr}`,
      signal ? { signal } : {},
    );
    const decoder = new FrameDecoder();
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        for (const { header, body } of decoder.push(chunk)) {
          if ('end' in header) yield { end: header.end as ExecRecord };
          else yield { stream: header.stream as 'stdout' | 'stderr', offset: header.offset as number, data: body };
        }
      }
    } finally {
      res.destroy();
    }
  }

  writeStdin(id: string, execId: string, data: Buffer, end: boolean): Promise<void> {
    return this.#empty('POST', `/sandboxes/${enc(id)}/execs/${enc(execId)}/stdin${end ? '?end=1' : ''}`, {
      body: data,
    });
  }

  signal(id: string, execId: string, signal: NodeJS.Signals): Promise<void> {
    return this.#empty('POST', `/sandboxes/${enc(id)}/execs/${enc(execId)}/signal`, { json: { signal } });
  }

  resize(id: string, execId: string, rows: number, cols: number): Promise<void> {
    return this.#empty('POST', `/sandboxes/${enc(id)}/execs/${enc(execId)}/resize`, { json: { rows, cols } });
  }

  writeFile(
    id: string,
    path: string,
    data: Readable,
    options: { mode: number; createParents: boolean },
  ): Promise<RuntimeFileInfo> {
    const q = `path=${enc(path)}&mode=${options.mode}&createParents=${options.createParents ? 1 : 0}`;
    return this.#json('PUT', `/sandboxes/${enc(id)}/files?${q}`, { body: data });
  }

  async readFile(id: string, path: string): Promise<Readable> {
    return this.#call('GET', `/sandboxes/${enc(id)}/files?path=${enc(path)}`);
  }

  stat(id: string, path: string): Promise<RuntimeFileInfo> {
    return this.#json('GET', `/sandboxes/${enc(id)}/files/stat?path=${enc(path)}`);
  }

  list(id: string, path: string): Promise<{ entries: RuntimeFileInfo[]; truncated: boolean }> {
    return this.#json('GET', `/sandboxes/${enc(id)}/files/list?path=${enc(path)}`);
  }

  remove(id: string, path: string, recursive: boolean): Promise<void> {
    return this.#empty('DELETE', `/sandboxes/${enc(id)}/files?path=${enc(path)}${recursive ? '&recursive=1' : ''}`);
  }

  mkdir(id: string, path: string, options: { parents: boolean; mode: number }): Promise<void> {
    return this.#empty('POST', `/sandboxes/${enc(id)}/files/mkdir`, { json: { path, ...options } });
  }

  async close(): Promise<void> {
    this.#closing.abort();
  }
}

async function readAll(res: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts);
}
