/**
 * @module sandbox/supervisor/exec-records
 * Durable exec records, kept on the host by a sandbox's supervisor: per exec
 * a directory holding `record.json` (what ran, its status, exit code or
 * signal, times) and the raw `stdout` and `stderr` bytes as they arrived.
 * A byte's offset in its file is its offset in the stream, so any client can
 * (re-)attach from an offset, during the run or after it, and after the
 * daemon that started it restarted.
 *
 * The bytes come from inside the sandbox, so what is kept is bounded: past
 * `maxOutputBytes` a stream's further output is dropped and the record says
 * so (`dropped`), rather than filling the host's disk.
 */
import { EventEmitter } from 'node:events';
import {
  closeSync,
  openSync,
  readSync,
  writeSync,
  fsyncSync,
  readFileSync,
  mkdirSync,
  readdirSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { NotFoundError } from '@stowage/sdk/common/errors.js';
import { writeJsonFile } from '../../common/json-file.js';

export type ExecStatus = 'running' | 'exited' | 'failed';

export interface ExecRecord {
  id: string;
  argv: string[];
  cwd?: string;
  background: boolean;
  pty: boolean;
  timeoutMs?: number;
  status: ExecStatus;
  pid?: number;
  /** Set when it exited on its own. */
  exitCode?: number;
  /** Set when a signal ended it. */
  signal?: string;
  timedOut?: boolean;
  /** The sandbox's memory limit killed a process of it while this exec ran. */
  oomKilled?: boolean;
  /** Why it could not start or was lost (e.g. no such command, the sandbox stopped). */
  error?: string;
  startedAt: string;
  endedAt?: string;
  /** Bytes kept per stream, and bytes dropped past the bound. */
  stdoutBytes: number;
  stderrBytes: number;
  dropped: { stdout: number; stderr: number };
}

export type Stream = 'stdout' | 'stderr';

/** An exec id: short, and safe as a file name. */
export const EXEC_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
/** Default bound on kept output per stream. */
export const DEFAULT_MAX_OUTPUT_BYTES = 256 * 1024 * 1024;

/** One exec's record and output files, open for appending while it runs. */
export class ExecLog extends EventEmitter<{ output: [stream: Stream]; end: [] }> {
  readonly #dir: string;
  readonly #fds: Record<Stream, number>;
  #record: ExecRecord;

  constructor(
    dir: string,
    record: ExecRecord,
    private readonly maxOutputBytes: number,
  ) {
    super();
    this.#dir = dir;
    this.#record = record;
    this.#fds = { stdout: openSync(join(dir, 'stdout'), 'a'), stderr: openSync(join(dir, 'stderr'), 'a') };
  }

  get record(): ExecRecord {
    return this.#record;
  }

  /** Keeps output; returns the offset after it. */
  append(stream: Stream, data: Buffer): number {
    const key = stream === 'stdout' ? 'stdoutBytes' : 'stderrBytes';
    const room = Math.max(0, this.maxOutputBytes - this.#record[key]);
    const keep = data.subarray(0, room);
    if (keep.length > 0) {
      writeSync(this.#fds[stream], keep);
      this.#record = { ...this.#record, [key]: this.#record[key] + keep.length };
    }
    if (keep.length < data.length) this.#record.dropped[stream] += data.length - keep.length;
    this.emit('output', stream);
    return this.#record[key];
  }

  /** Records a change of state (started with a pid, ended) durably. */
  update(change: Partial<ExecRecord>): void {
    this.#record = { ...this.#record, ...change };
    if (this.#record.status !== 'running') {
      for (const fd of Object.values(this.#fds)) fsyncSync(fd);
    }
    writeRecord(this.#dir, this.#record);
    if (this.#record.status !== 'running') {
      for (const fd of Object.values(this.#fds)) closeSync(fd);
      this.emit('end');
    }
  }
}

function writeRecord(dir: string, record: ExecRecord): void {
  writeJsonFile(join(dir, 'record.json'), record);
}

/** The exec records of one sandbox, under `root` (the sandbox's state directory on the host). */
export class ExecRecords {
  readonly #root: string;
  readonly #running = new Map<string, ExecLog>();

  constructor(
    root: string,
    private readonly maxOutputBytes = DEFAULT_MAX_OUTPUT_BYTES,
  ) {
    this.#root = join(root, 'execs');
    mkdirSync(this.#root, { recursive: true, mode: 0o700 });
  }

  /** Starts the record of a new exec; refuses an id in use or not of the id shape. */
  create(
    init: Pick<ExecRecord, 'id' | 'argv' | 'background' | 'pty'> & Partial<Pick<ExecRecord, 'cwd' | 'timeoutMs'>>,
  ): ExecLog {
    if (!EXEC_ID.test(init.id))
      throw new Error(`exec id ${JSON.stringify(init.id).slice(0, 80)} is not 1-64 of a-z, 0-9 and -`);
    const dir = join(this.#root, init.id);
    mkdirSync(dir, { mode: 0o700 }); // EEXIST for an id in use
    const record: ExecRecord = {
      ...init,
      status: 'running',
      startedAt: new Date().toISOString(),
      stdoutBytes: 0,
      stderrBytes: 0,
      dropped: { stdout: 0, stderr: 0 },
    };
    writeRecord(dir, record);
    const log = new ExecLog(dir, record, this.maxOutputBytes);
    this.#running.set(init.id, log);
    log.once('end', () => this.#running.delete(init.id));
    return log;
  }

  /** The live log of a running exec of this supervisor. */
  running(id: string): ExecLog | undefined {
    return this.#running.get(id);
  }

  /** An exec's record as last written (the live one while it runs here). */
  get(id: string): ExecRecord | undefined {
    const live = this.#running.get(id);
    if (live) return live.record;
    if (!EXEC_ID.test(id)) return undefined;
    try {
      return JSON.parse(readFileSync(join(this.#root, id, 'record.json'), 'utf8')) as ExecRecord;
    } catch {
      return undefined;
    }
  }

  /** Every exec, oldest first. */
  list(): ExecRecord[] {
    return readdirSync(this.#root)
      .map((id) => this.get(id))
      .filter((r): r is ExecRecord => r !== undefined)
      .sort((a, b) => (a.startedAt < b.startedAt ? -1 : a.startedAt > b.startedAt ? 1 : 0));
  }

  /**
   * Marks execs recorded as running that this supervisor does not run as
   * lost (after a crash of the sandbox itself, their processes are gone).
   */
  markLost(reason: string): ExecRecord[] {
    const lost: ExecRecord[] = [];
    for (const r of this.list()) {
      if (r.status !== 'running' || this.#running.has(r.id)) continue;
      const dir = join(this.#root, r.id);
      const sizes = { stdoutBytes: sizeOf(join(dir, 'stdout')), stderrBytes: sizeOf(join(dir, 'stderr')) };
      const record: ExecRecord = { ...r, ...sizes, status: 'failed', error: reason, endedAt: new Date().toISOString() };
      writeRecord(dir, record);
      lost.push(record);
    }
    return lost;
  }

  /** Up to `max` bytes of a stream from `offset`. */
  read(id: string, stream: Stream, offset: number, max = 1024 * 1024): Buffer {
    if (!EXEC_ID.test(id)) throw new Error('no such exec');
    if (!Number.isSafeInteger(offset) || offset < 0) throw new Error(`offset ${offset} is not a byte offset`);
    const fd = openSync(join(this.#root, id, stream), 'r');
    try {
      const buf = Buffer.alloc(max);
      const n = readSync(fd, buf, 0, max, offset);
      return buf.subarray(0, n);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * A stream's bytes from `offset` as they arrive, until the exec ends and
   * everything is read (or `signal` aborts). Works for an exec that ended long
   * ago too: it then yields what is kept and stops.
   */
  async *follow(
    id: string,
    stream: Stream,
    offset: number,
    signal?: AbortSignal,
  ): AsyncGenerator<{ offset: number; data: Buffer }> {
    let at = offset;
    for (;;) {
      if (signal?.aborted) return;
      const live = this.#running.get(id);
      const data = this.read(id, stream, at);
      if (data.length > 0) {
        yield { offset: at, data };
        at += data.length;
        continue;
      }
      if (!live) {
        // Ended: one last read covers bytes written just before the end.
        const rest = this.read(id, stream, at);
        if (rest.length > 0) {
          yield { offset: at, data: rest };
          at += rest.length;
          continue;
        }
        return;
      }
      await new Promise<void>((resolve) => {
        const wake = (): void => {
          live.off('output', wake);
          live.off('end', wake);
          signal?.removeEventListener('abort', wake);
          resolve();
        };
        live.on('output', wake);
        live.on('end', wake);
        signal?.addEventListener('abort', wake);
      });
    }
  }
}

function sizeOf(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** One piece of an exec's output, or its final record once every byte was given. */
export type ExecOutput = { stream: Stream; offset: number; data: Buffer } | { end: ExecRecord };

/**
 * Both streams of an exec from the given offsets, as they arrive, then its
 * final record. Each stream is read one piece ahead at most, so a slow
 * reader holds back the reading instead of piling output up in memory.
 */
export async function* execOutput(
  records: ExecRecords,
  id: string,
  from: { stdout: number; stderr: number },
  signal?: AbortSignal,
): AsyncGenerator<ExecOutput> {
  if (!records.get(id)) throw new NotFoundError(`no exec ${id}`);
  const streams: Stream[] = ['stdout', 'stderr'];
  const iterators = streams.map((s) => records.follow(id, s, from[s], signal));
  const next = (i: number) => iterators[i]!.next().then((r) => ({ i, r }));
  const pending = new Map(streams.map((_, i) => [i, next(i)]));
  try {
    while (pending.size > 0) {
      const { i, r } = await Promise.race(pending.values());
      if (r.done) {
        pending.delete(i);
        continue;
      }
      pending.set(i, next(i));
      yield { stream: streams[i]!, ...r.value };
    }
  } finally {
    // A reader that stops early: the pieces read ahead are dropped; a stream still waiting stops at its next wake.
    for (const p of pending.values()) p.catch(() => undefined);
    for (const it of iterators) void it.return(undefined).catch(() => undefined);
  }
  if (signal?.aborted) return;
  const record = records.get(id);
  if (record) yield { end: record };
}
