/**
 * @module client/sandbox-exec
 * `SandboxExec`: one command run in a sandbox, as its durable record on the
 * host. Its output is read as server-sent events from byte offsets; a broken
 * connection (a restarting server) is resumed from the offsets already seen,
 * so no byte is lost or repeated.
 */
import type * as wire from '../api/wire.js';
import { errorFromCode, isStowageError, UnavailableError } from '../common/errors.js';
import { retry, type RetryPolicy } from '../common/retry.js';
import type { Stowage } from './http-client.js';
import { parseSse } from './sse.js';

/** A piece of output. */
export interface ExecOutput {
  stream: 'stdout' | 'stderr';
  /** Byte offset of `data` in its stream. */
  offset: number;
  data: Buffer;
}

/** What `wait()` gives. */
export interface ExecResult {
  /** Set when it exited on its own. */
  exitCode: number | null;
  /** Set when a signal ended it (SIGKILL after a timeout: `timedOut`). */
  signal: string | null;
  stdout: string;
  stderr: string;
  record: wire.Exec;
}

/** Reconnecting output: network failures and Unavailable answers, a few times with backoff. */
const OUTPUT_CONNECT: RetryPolicy = {
  name: 'exec output',
  attempts: 8,
  baseDelayMs: 250,
  factor: 2,
  retryable: (e) => e instanceof TypeError || isStowageError(e, 'Unavailable'),
};

export class SandboxExec {
  #record: wire.Exec;

  constructor(
    readonly client: Stowage,
    record: wire.Exec,
  ) {
    this.#record = record;
  }

  get id(): string {
    return this.#record.id;
  }

  get sandboxId(): string {
    return this.#record.sandboxId;
  }

  /** The record as last seen (updated by `refresh`, `output` and `wait`). */
  get record(): wire.Exec {
    return this.#record;
  }

  #path(suffix = ''): string {
    return `/v1/sandboxes/${encodeURIComponent(this.sandboxId)}/execs/${encodeURIComponent(this.id)}${suffix}`;
  }

  async refresh(): Promise<wire.Exec> {
    this.#record = await this.client.request<wire.Exec>('GET', this.#path());
    return this.#record;
  }

  /**
   * The output from these byte offsets (default: the start) as it arrives,
   * until the command has ended and everything was given; then `record` holds
   * the final record.
   */
  async *output(options: { stdout?: number; stderr?: number; signal?: AbortSignal } = {}): AsyncGenerator<ExecOutput> {
    const at = { stdout: options.stdout ?? 0, stderr: options.stderr ?? 0 };
    const signal = options.signal;
    // Connections that ended without giving anything, in a row: a server that keeps doing so is broken.
    let idle = 0;
    for (;;) {
      const res = await retry(
        OUTPUT_CONNECT,
        () =>
          this.client.fetchRaw('GET', this.#path('/output'), {
            query: { stdout: at.stdout, stderr: at.stderr },
            headers: { accept: 'text/event-stream' },
            ...(signal ? { signal } : {}),
          }),
        signal ? { signal } : {},
      );
      if (++idle > OUTPUT_CONNECT.attempts)
        throw new UnavailableError(`exec ${this.id}: the output stream keeps ending without its exit`);
      if (!res.body) continue;
      try {
        for await (const ev of parseSse(res.body as unknown as AsyncIterable<Uint8Array>)) {
          idle = 0;
          if (ev.event === 'output') {
            const piece = JSON.parse(ev.data) as wire.ExecOutputEvent;
            const data = Buffer.from(piece.data, 'base64');
            // A resumed stream starts at the offsets asked for; anything before them was given already.
            const skip = at[piece.stream] - piece.offset;
            if (skip >= data.length) continue;
            const fresh = skip > 0 ? data.subarray(skip) : data;
            const offset = piece.offset + Math.max(0, skip);
            at[piece.stream] = offset + fresh.length;
            yield { stream: piece.stream, offset, data: fresh };
          } else if (ev.event === 'exit') {
            this.#record = JSON.parse(ev.data) as wire.Exec;
            return;
          } else if (ev.event === 'error') {
            const parsed = JSON.parse(ev.data) as wire.ErrorBody;
            throw errorFromCode(parsed.error.code, parsed.error.message, parsed.error.details);
          }
        }
      } catch (e) {
        if (signal?.aborted || isStowageError(e) || e instanceof SyntaxError) throw e;
        // The connection broke: resume from the offsets seen.
      }
      if (signal?.aborted) return;
    }
  }

  /** Waits for the command to end; gives its exit and whole output (as UTF-8 text). */
  async wait(): Promise<ExecResult> {
    const parts: Record<'stdout' | 'stderr', Buffer[]> = { stdout: [], stderr: [] };
    for await (const piece of this.output()) parts[piece.stream].push(piece.data);
    const r = this.#record;
    return {
      exitCode: r.exitCode ?? null,
      signal: r.signal ?? null,
      stdout: Buffer.concat(parts.stdout).toString('utf8'),
      stderr: Buffer.concat(parts.stderr).toString('utf8'),
      record: r,
    };
  }

  /** Writes to the command's stdin (it must have been started with `stdin: true`). */
  async writeStdin(data: string | Uint8Array): Promise<void> {
    await this.client.fetchRaw('POST', this.#path('/stdin'), {
      body: typeof data === 'string' ? Buffer.from(data) : data,
      headers: { 'content-type': 'application/octet-stream' },
    });
  }

  /** Closes the command's stdin (it reads end of file). */
  async closeStdin(): Promise<void> {
    await this.client.fetchRaw('POST', this.#path('/stdin'), {
      query: { end: 'true' },
      body: new Uint8Array(0),
      headers: { 'content-type': 'application/octet-stream' },
    });
  }

  /** Resizes a terminal exec's pseudo-terminal (the command gets SIGWINCH). */
  async resize(rows: number, cols: number): Promise<void> {
    const body: wire.ResizeExecRequest = { rows, cols };
    await this.client.request('POST', this.#path('/resize'), { body });
  }

  /** Sends a signal to the command's whole process group (default SIGTERM). */
  async kill(signal = 'SIGTERM'): Promise<void> {
    const body: wire.SignalExecRequest = { signal };
    await this.client.request('POST', this.#path('/signal'), { body });
  }
}
