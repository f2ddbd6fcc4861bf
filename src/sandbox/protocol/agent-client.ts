/**
 * @module sandbox/protocol/agent-client
 * The supervisor's side of the link to a sandbox's agent. Everything the
 * agent sends is checked here before use: code inside the sandbox can speak
 * in the agent's place, so a frame of the wrong shape or size closes the link
 * (every pending call fails) rather than being trusted.
 */
import { EventEmitter } from 'node:events';
import { type Duplex, Readable } from 'node:stream';
import { z } from 'zod';
import { FrameDecoder, MAX_BODY_BYTES, encodeFrame } from './frames.js';
import type { AgentError, AgentFileInfo, AgentRequest, ExecRequest } from './messages.js';

/** Bytes of file frames the link may hold unsent before a writer waits for the agent to take them. */
const IN_FLIGHT_BYTES = 4 * MAX_BODY_BYTES;
const execId = z.string().min(1).max(64);
const ReadySchema = z.object({ ev: z.literal('ready'), version: z.number().int(), pid: z.number().int() });
const OutSchema = z.object({ ev: z.literal('out'), id: execId, fd: z.union([z.literal(1), z.literal(2)]) });
const ExitSchema = z.object({
  ev: z.literal('exit'),
  id: execId,
  code: z.number().int().nullable(),
  signal: z.string().max(32).nullable(),
  timedOut: z.boolean(),
});
const AnswerSchema = z.object({
  rid: z.number().int().nonnegative(),
  ok: z.boolean(),
  error: z.object({ code: z.string().max(64), message: z.string().max(4096) }).optional(),
});
const DataSchema = z.object({ rid: z.number().int().nonnegative(), data: z.literal(true) });
const FileInfoSchema = z.object({
  name: z.string().max(4096),
  type: z.enum(['file', 'directory', 'symlink', 'other']),
  size: z.number().nonnegative(),
  mode: z.number().int().min(0).max(0o7777),
  mtimeMs: z.number(),
  uid: z.number().int(),
  gid: z.number().int(),
});

/** An operation the agent refused or failed, with its errno-style code. */
export class AgentCallError extends Error {
  override name = 'AgentCallError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ExecExit {
  code: number | null;
  signal: string | null;
  timedOut: boolean;
}

interface Pending {
  resolve(body: Buffer): void;
  reject(e: Error): void;
  /** For reads: each piece of data. */
  data?: (piece: Buffer) => void;
}

export interface AgentClientEvents {
  out: [id: string, fd: 1 | 2, data: Buffer];
  exit: [id: string, exit: ExecExit];
  closed: [reason: string];
}

export class AgentClient extends EventEmitter<AgentClientEvents> {
  readonly ready: Promise<{ version: number; pid: number }>;
  readonly #decoder = new FrameDecoder();
  readonly #pending = new Map<number, Pending>();
  #nextRid = 1;
  #closed: string | undefined;

  constructor(private readonly link: Duplex) {
    super();
    let onReady!: (v: { version: number; pid: number }) => void;
    let onFail!: (e: Error) => void;
    this.ready = new Promise((resolve, reject) => {
      onReady = resolve;
      onFail = reject;
    });
    this.ready.catch(() => undefined);
    link.on('data', (chunk: Buffer) => {
      try {
        for (const f of this.#decoder.push(chunk)) this.#frame(f.header, f.body, onReady);
      } catch (e) {
        this.close(`the agent broke the protocol: ${(e as Error).message}`);
      }
    });
    link.on('error', (e) => this.close(`link to the agent failed: ${e.message}`));
    link.on('close', () => this.close('the agent closed its link'));
    this.once('closed', (reason) => onFail(new AgentCallError('ECONNRESET', reason)));
  }

  /** Why the link closed, once it has. */
  get closedReason(): string | undefined {
    return this.#closed;
  }

  close(reason: string): void {
    if (this.#closed !== undefined) return;
    this.#closed = reason;
    this.link.destroy();
    for (const p of this.#pending.values()) p.reject(new AgentCallError('ECONNRESET', reason));
    this.#pending.clear();
    this.emit('closed', reason);
  }

  #frame(header: Record<string, unknown>, body: Buffer, onReady: (v: { version: number; pid: number }) => void): void {
    if ('ev' in header) {
      if (header.ev === 'out') {
        const out = OutSchema.parse(header);
        this.emit('out', out.id, out.fd, body);
      } else if (header.ev === 'exit') {
        const { id, code, signal, timedOut } = ExitSchema.parse(header);
        this.emit('exit', id, { code, signal, timedOut });
      } else if (header.ev === 'ready') {
        const { version, pid } = ReadySchema.parse(header);
        onReady({ version, pid });
      } else {
        throw new Error(`unknown event ${String(header.ev).slice(0, 40)}`);
      }
      return;
    }
    if ('data' in header) {
      const { rid } = DataSchema.parse(header);
      const p = this.#pending.get(rid);
      if (!p?.data) throw new Error(`data for request ${rid}, which reads nothing`);
      p.data(body);
      return;
    }
    const answer = AnswerSchema.parse(header);
    const p = this.#pending.get(answer.rid);
    if (!p) throw new Error(`an answer to request ${answer.rid}, which is not pending`);
    this.#pending.delete(answer.rid);
    if (answer.ok) p.resolve(body);
    else
      p.reject(
        new AgentCallError(answer.error?.code ?? 'EIO', answer.error?.message ?? 'the agent failed without saying why'),
      );
  }

  #send(req: AgentRequest, body?: Buffer): void {
    if (this.#closed !== undefined) throw new AgentCallError('ECONNRESET', this.#closed);
    this.link.write(encodeFrame(req, body));
  }

  /**
   * Sends a frame; while the link holds more than IN_FLIGHT_BYTES not yet taken by the agent, waits until it
   * took them (or closed). A few frames in flight keep both sides busy: the next one is gathered while the
   * agent writes the last.
   */
  async #sendDrained(req: AgentRequest, body: Buffer): Promise<void> {
    if (this.#closed !== undefined) throw new AgentCallError('ECONNRESET', this.#closed);
    this.link.write(encodeFrame(req, body));
    if (this.link.writableLength <= IN_FLIGHT_BYTES) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        this.link.off('drain', done);
        this.off('closed', done);
        resolve();
      };
      this.link.once('drain', done);
      this.once('closed', done);
    });
  }

  #call(make: (rid: number) => AgentRequest, body?: Buffer, data?: (piece: Buffer) => void): Promise<Buffer> {
    if (this.#closed !== undefined) return Promise.reject(new AgentCallError('ECONNRESET', this.#closed));
    const rid = this.#nextRid++;
    return new Promise<Buffer>((resolve, reject) => {
      this.#pending.set(rid, { resolve, reject, ...(data ? { data } : {}) });
      this.#send(make(rid), body);
    });
  }

  async #json<T>(schema: z.ZodType<T>, body: Promise<Buffer>): Promise<T> {
    const bytes = await body;
    try {
      return schema.parse(JSON.parse(bytes.toString('utf8')));
    } catch (e) {
      this.close(`the agent answered with a malformed result: ${(e as Error).message.slice(0, 200)}`);
      throw new AgentCallError('EPROTO', 'the agent answered with a malformed result');
    }
  }

  /** Starts a command; resolves with its pid once it runs. Output and exit arrive as events. */
  exec(req: Omit<ExecRequest, 'op' | 'rid'>): Promise<{ pid: number }> {
    return this.#json(
      z.object({ pid: z.number().int() }),
      this.#call((rid) => ({ op: 'exec', rid, ...req })),
    );
  }

  stdin(id: string, data: Buffer): void {
    for (let at = 0; at < data.length; at += MAX_BODY_BYTES)
      this.#send({ op: 'stdin', id }, data.subarray(at, at + MAX_BODY_BYTES));
  }

  endStdin(id: string): void {
    this.#send({ op: 'stdin.end', id });
  }

  /** Resizes a `pty` exec's terminal. */
  resize(id: string, rows: number, cols: number): void {
    this.#send({ op: 'resize', id, rows, cols });
  }

  signal(id: string, signal: NodeJS.Signals, group = true): void {
    this.#send({ op: 'signal', id, signal, group });
  }

  /** Writes a whole file (replacing it at once when done). */
  async writeFile(
    path: string,
    data: Buffer | AsyncIterable<Buffer>,
    options: { mode?: number; createParents?: boolean } = {},
  ): Promise<{ size: number }> {
    const rid = this.#nextRid++;
    const done = new Promise<Buffer>((resolve, reject) => this.#pending.set(rid, { resolve, reject }));
    done.catch(() => undefined);
    this.#send({
      op: 'file.write',
      rid,
      path,
      mode: options.mode ?? 0o644,
      createParents: options.createParents ?? true,
    });
    // Pieces from HTTP are 16-64 KiB; the agent pays per frame (one append each), so they travel gathered into
    // frames of up to MAX_BODY_BYTES (16 KiB pieces wrote 65 MiB/s, 1 MiB ones 154), and no faster than the
    // link drains.
    const pieces: AsyncIterable<Buffer> | Buffer[] = Buffer.isBuffer(data) ? [data] : data;
    let gathered: Buffer[] = [];
    let size = 0;
    const flush = async () => {
      const all = gathered.length === 1 ? gathered[0]! : Buffer.concat(gathered, size);
      gathered = [];
      size = 0;
      for (let at = 0; at < all.length; at += MAX_BODY_BYTES)
        await this.#sendDrained({ op: 'file.data', rid }, all.subarray(at, at + MAX_BODY_BYTES));
    };
    for await (const piece of pieces) {
      gathered.push(piece);
      size += piece.length;
      if (size >= MAX_BODY_BYTES) await flush();
    }
    if (size > 0) await flush();
    // The agent answers at the end, a refusal (no such parent) included.
    this.#send({ op: 'file.end', rid });
    return this.#json(z.object({ size: z.number().int().nonnegative() }), done);
  }

  /** Reads a whole file, refusing one larger than `maxBytes`. */
  async readFile(path: string, maxBytes = 64 * 1024 * 1024): Promise<Buffer> {
    const pieces: Buffer[] = [];
    let have = 0;
    let tooBig = false;
    const end = await this.#json(
      z.object({ size: z.number().int().nonnegative() }),
      this.#call(
        (rid) => ({ op: 'file.read', rid, path }),
        undefined,
        (piece) => {
          have += piece.length;
          if (have > maxBytes) tooBig = true;
          else pieces.push(piece);
        },
      ),
    );
    if (tooBig) throw new AgentCallError('EFBIG', `${path} is larger than ${maxBytes} bytes; read it as a stream`);
    if (end.size !== have)
      throw new AgentCallError('EIO', `${path}: the agent sent ${have} bytes but said ${end.size}`);
    return Buffer.concat(pieces, have);
  }

  /**
   * A file as a stream of any size. Resolves once the agent has started
   * sending it (a refusal, such as ENOENT, rejects). While the reader is
   * behind, the link is paused: the agent's writes then block and it pauses
   * its read, so nothing piles up in memory (output of execs waits too).
   */
  readStream(path: string): Promise<Readable> {
    let paused = false;
    const resume = () => {
      if (paused) {
        paused = false;
        this.link.resume();
      }
    };
    const out = new Readable({ read: resume });
    // A reader that stops early: the rest of the file is read and dropped, never held.
    out.once('close', resume);
    let have = 0;
    // Until the stream is handed over nobody listens to it: a failure then rejects, and must not emit 'error'.
    let handedOver = false;
    return new Promise<Readable>((resolve, reject) => {
      const handOver = () => {
        handedOver = true;
        resolve(out);
      };
      const fail = (e: Error) => {
        if (handedOver) out.destroy(e);
        else reject(e);
      };
      this.#call(
        (rid) => ({ op: 'file.read', rid, path }),
        undefined,
        (piece) => {
          have += piece.length;
          handOver();
          if (out.destroyed) return;
          if (!out.push(piece) && !paused) {
            paused = true;
            this.link.pause();
          }
        },
      ).then((body) => {
        let size: number | undefined;
        try {
          size = (JSON.parse(body.toString('utf8')) as { size?: number }).size;
        } catch {
          // checked below
        }
        if (size !== have)
          return fail(new AgentCallError('EIO', `${path}: the agent sent ${have} bytes but said ${size}`));
        out.push(null);
        handOver();
      }, fail);
    });
  }

  stat(path: string): Promise<AgentFileInfo> {
    return this.#json(
      FileInfoSchema,
      this.#call((rid) => ({ op: 'file.stat', rid, path })),
    );
  }

  list(path: string): Promise<{ entries: AgentFileInfo[]; truncated: boolean }> {
    return this.#json(
      z.object({ entries: z.array(FileInfoSchema).max(5000), truncated: z.boolean() }),
      this.#call((rid) => ({ op: 'file.list', rid, path })),
    );
  }

  async remove(path: string, recursive = false): Promise<void> {
    await this.#call((rid) => ({ op: 'file.remove', rid, path, recursive }));
  }

  async mkdir(path: string, options: { parents?: boolean; mode?: number } = {}): Promise<void> {
    await this.#call((rid) => ({
      op: 'file.mkdir',
      rid,
      path,
      parents: options.parents ?? true,
      mode: options.mode ?? 0o755,
    }));
  }
}

export type { AgentError };
