/**
 * @module sandbox/daemon/supervisor-client
 * The host daemon's side of a supervisor's control socket
 * (supervisor/control-server): HTTP over the unix socket, answers turned
 * back into the errors the supervisor named, exec output decoded from its
 * frames.
 */
import { request, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { ERROR_CODES, errorFromCode } from '@stowage/sdk/common/errors.js';
import { AgentCallError } from '../protocol/agent-client.js';
import { FrameDecoder } from '../protocol/frames.js';
import type { ExecRecord, OutputEvent, RuntimeExec, RuntimeFileInfo, RuntimeState } from '../runtime.js';

/** The supervisor could not be reached at all (it is gone, or not listening yet). */
export class SupervisorGoneError extends Error {
  override name = 'SupervisorGoneError';
}

interface CallOptions {
  json?: unknown;
  body?: Buffer | Readable;
  /** Abandons the call (and its answer's body) when aborted. */
  signal?: AbortSignal;
}

export class SupervisorClient {
  constructor(readonly socketPath: string) {}

  /** Sends a call; resolves with the answer once its head arrived, 2xx or not. */
  #send(method: string, path: string, opts: CallOptions = {}): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const req = request({
        socketPath: this.socketPath,
        method,
        path,
        ...(opts.signal ? { signal: opts.signal } : {}),
        headers: opts.json !== undefined ? { 'content-type': 'application/json' } : {},
      });
      req.on('response', resolve);
      req.on('error', (e: NodeJS.ErrnoException) =>
        reject(
          e.code === 'ECONNREFUSED' || e.code === 'ENOENT'
            ? new SupervisorGoneError(`the supervisor at ${this.socketPath} is not answering (${e.code})`)
            : e,
        ),
      );
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
    const message = error.message ?? `the supervisor answered ${res.statusCode}`;
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

  status(signal?: AbortSignal): Promise<{ id: string; running: boolean; pid: number }> {
    return this.#json('GET', '/status', signal ? { signal } : {});
  }

  /** Resolves once the sandbox has ended, with its final state (rejects when the supervisor goes without one). */
  ended(signal?: AbortSignal): Promise<RuntimeState> {
    return this.#json('GET', '/ended', signal ? { signal } : {});
  }

  terminate(reason: string): Promise<RuntimeState> {
    return this.#json('POST', '/terminate', { json: { reason } });
  }

  exec(exec: RuntimeExec): Promise<ExecRecord> {
    return this.#json('POST', '/execs', { json: exec });
  }

  async execs(): Promise<ExecRecord[]> {
    return (await this.#json<{ execs: ExecRecord[] }>('GET', '/execs')).execs;
  }

  async getExec(execId: string): Promise<ExecRecord | undefined> {
    try {
      return await this.#json<ExecRecord>('GET', `/execs/${encodeURIComponent(execId)}`);
    } catch (e) {
      if ((e as { code?: string }).code === 'NotFound') return undefined;
      throw e;
    }
  }

  async *output(
    execId: string,
    from: { stdout: number; stderr: number },
    signal?: AbortSignal,
  ): AsyncGenerator<OutputEvent> {
    const res = await this.#call(
      'GET',
      `/execs/${encodeURIComponent(execId)}/output?stdout=${from.stdout}&stderr=${from.stderr}`,
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

  writeStdin(execId: string, data: Buffer, end: boolean): Promise<void> {
    return this.#empty('POST', `/execs/${encodeURIComponent(execId)}/stdin${end ? '?end=1' : ''}`, { body: data });
  }

  signal(execId: string, signal: string): Promise<void> {
    return this.#empty('POST', `/execs/${encodeURIComponent(execId)}/signal`, { json: { signal } });
  }

  writeFile(
    path: string,
    data: Readable,
    options: { mode: number; createParents: boolean },
  ): Promise<{ size: number }> {
    const q = `path=${encodeURIComponent(path)}&mode=${options.mode}&createParents=${options.createParents ? 1 : 0}`;
    return this.#json('PUT', `/files?${q}`, { body: data });
  }

  async readFile(path: string): Promise<Readable> {
    return this.#call('GET', `/files?path=${encodeURIComponent(path)}`);
  }

  stat(path: string): Promise<RuntimeFileInfo> {
    return this.#json('GET', `/files/stat?path=${encodeURIComponent(path)}`);
  }

  list(path: string): Promise<{ entries: RuntimeFileInfo[]; truncated: boolean }> {
    return this.#json('GET', `/files/list?path=${encodeURIComponent(path)}`);
  }

  remove(path: string, recursive: boolean): Promise<void> {
    return this.#empty('DELETE', `/files?path=${encodeURIComponent(path)}${recursive ? '&recursive=1' : ''}`);
  }

  mkdir(path: string, options: { parents: boolean; mode: number }): Promise<void> {
    return this.#empty('POST', '/files/mkdir', { json: { path, ...options } });
  }
}

async function readAll(res: IncomingMessage): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of res as AsyncIterable<Buffer>) parts.push(chunk);
  return Buffer.concat(parts);
}
