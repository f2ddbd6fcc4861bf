/**
 * @module client/files
 * The direct file API of a volume (`vol.files`): read, write, list, stat and
 * remove files without mounting anything. Every change is one commit; bytes
 * travel by signed requests straight to and from the blob store, and every
 * chunk read is checked against its SHA-256 before it is handed out.
 *
 * Writes return what travelled (`uploadedChunks`, `uploadedBytes`), so a
 * caller can see that re-writing unchanged content sent nothing.
 */
import { createReadStream } from 'node:fs';
import { constants as bufferConstants } from 'node:buffer';
import { Readable } from 'node:stream';
import type * as wire from '../api/wire.js';
import { mapLimit } from '../common/concurrency.js';
import { InternalError, InvalidArgumentError, PreconditionFailedError, isStowageError } from '../common/errors.js';
import { MAX_COMMIT_CHANGES, tooManyChanges } from '../common/limits.js';
import { parsePath } from '../common/paths.js';
import { retry, type RetryPolicy } from '../common/retry.js';
import { chunkBytes, chunkFile, localFileError, sha256Hex, type ChunkRef } from './chunker.js';
import { commitFiles, isExpiredUpload, postCommit, putChange, uploadStream, type CommitOptions, type CommitOutcome, type CommitTarget, type PendingFile, type ProgressListener } from './commit-writer.js';
import { getSigned, type TransferOptions } from './transfer.js';
import { editFile, iterateEntries, replaceInFiles, searchFiles, watchChanges, type IterateOptions, type ReplaceOptions, type SearchOptions, type WatchOptions } from './file-search.js';
import { readRange, type ByteRange } from './download.js';

/** A chunk whose bytes do not match its hash: the stored data, or this one transfer, is damaged. */
class DamagedChunkError extends InternalError {}
/** A damaged transfer is fetched once more (at once) before the chunk is reported damaged. */
const REFETCH_DAMAGED: RetryPolicy = { name: 'damaged chunk refetch', attempts: 2, baseDelayMs: 0, retryable: (e) => e instanceof DamagedChunkError };

/** Data a write accepts: text (UTF-8), bytes, or a stream of bytes of unknown length. */
export type WriteData = string | Uint8Array | NodeJS.ReadableStream | AsyncIterable<Uint8Array>;

/** Options of a single-file write. */
export interface WriteOptions {
  /** Permission bits (default 0o644 for new files; `writeFile` defaults to the local file's). */
  mode?: number;
  /** Modification time in milliseconds since the epoch (default: now; `writeFile`: the local file's). */
  mtime?: number;
  /** Create missing parent directories (default true). */
  createParents?: boolean;
  /** Commit message (default "write <path>"). */
  message?: string;
  /** Hears hashing and upload progress. */
  onProgress?: ProgressListener;
}

/** What a write did: the commit it made and what travelled to the store. */
export interface WriteResult extends CommitOutcome {
  path: string;
  /** Bytes of the file written. */
  size: number;
  /** Chunks the file is made of (uploaded or not). */
  chunks: number;
}

/** One file of a batch write. */
export interface BatchEntry {
  path: string;
  /** Bytes or text; or use `localPath` to upload a local file. */
  data?: string | Uint8Array;
  localPath?: string;
  mode?: number;
  mtime?: number;
}

/** Options of reads at a point in history. */
export interface ReadOptions {
  /** A commit id; the volume's head when absent. */
  commit?: string;
  /** Hears download progress. */
  onProgress?: ProgressListener;
  /** Only these bytes (inclusive offsets), fetched through the server's content endpoint. */
  range?: ByteRange;
}

/** Options of `list` (which follows the server's pages to the end). */
export type ListOptions = IterateOptions;

/** What the file API needs of its volume: where to send requests, and a way to learn of new commits. */
export interface FilesHost extends CommitTarget {
  /** Told of every commit the file API makes, so the volume's info stays current. */
  noteCommit(commit: wire.Commit): void;
}

/** Bytes `readStream` fetches ahead of its reader at most (beyond one chunk). */
export const READAHEAD_BYTES = 128 * 1024 * 1024;

function isStreamLike(data: unknown): data is AsyncIterable<unknown> {
  return typeof data === 'object' && data !== null && typeof (data as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

/** A pending file backed by bytes in memory. */
function pendingFromBytes(path: string, bytes: Uint8Array, o: { mode?: number | undefined; mtime?: number | undefined; createParents?: boolean | undefined }): PendingFile {
  const cut = chunkBytes(bytes);
  return {
    path,
    ...cut,
    ...(o.mode === undefined ? {} : { mode: o.mode }),
    mtime: o.mtime ?? Date.now(),
    ...(o.createParents === undefined ? {} : { createParents: o.createParents }),
    read: (c: ChunkRef) => bytes.subarray(c.offset, c.offset + c.size),
  };
}

/** A pending file backed by a local file, hashed in one streaming pass; chunks are re-read by byte range. */
async function pendingFromLocalFile(path: string, localPath: string, o: { mode?: number | undefined; mtime?: number | undefined; createParents?: boolean | undefined; onProgress?: ProgressListener | undefined }): Promise<PendingFile> {
  let hashed = 0;
  const cut = await chunkFile(localPath, {
    onBytes: (n, total) => {
      hashed += n;
      o.onProgress?.({ phase: 'hash', done: hashed, total });
    },
  });
  return {
    path,
    size: cut.size,
    chunkSize: cut.chunkSize,
    chunks: cut.chunks,
    mode: o.mode ?? cut.mode,
    // The local file's own time keeps its nanoseconds; a time the caller gives is whole milliseconds.
    ...(o.mtime === undefined ? { mtime: cut.mtime, ...(cut.mtimeNs !== 0 ? { mtimeNs: cut.mtimeNs } : {}) } : { mtime: o.mtime }),
    ...(o.createParents === undefined ? {} : { createParents: o.createParents }),
    read: (c: ChunkRef) => createReadStream(localPath, { start: c.offset, end: c.offset + c.size - 1 }),
    // The file may vanish or become unreadable between the two passes: name it.
    readError: (e: unknown) => localFileError(e, localPath),
  };
}

function checkMode(mode: number | undefined): void {
  if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) throw new InvalidArgumentError(`invalid mode ${mode}: expected permission bits such as 0o644`);
}

/**
 * Files of one volume. Obtain it as `vol.files`.
 *
 * @example
 * await vol.files.write('/notes/hello.txt', 'hello');
 * const text = (await vol.files.read('/notes/hello.txt')).toString();
 */
export class Files {
  readonly #host: FilesHost;

  constructor(host: FilesHost) {
    this.#host = host;
  }

  #path(suffix: string): string {
    return `/v1/volumes/${encodeURIComponent(this.#host.name)}${suffix}`;
  }

  #transfer(what: string): TransferOptions {
    return { baseUrl: this.#host.client.url, what };
  }

  #done(out: CommitOutcome): CommitOutcome {
    this.#host.noteCommit(out.commit);
    return out;
  }

  /**
   * Writes one file in one commit: text, bytes, or a stream of unknown length.
   *
   * @example
   * const r = await vol.files.write('/data/out.json', JSON.stringify(result), { mode: 0o600 });
   * console.log(r.commit.id, r.uploadedBytes);
   */
  async write(path: string, data: WriteData, options: WriteOptions = {}): Promise<WriteResult> {
    const p = parsePath(path);
    checkMode(options.mode);
    const commitOpts: CommitOptions = { message: options.message ?? `write ${p}`, ...(options.onProgress ? { onProgress: options.onProgress } : {}) };
    if (typeof data === 'string' || data instanceof Uint8Array) {
      const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
      const pending = pendingFromBytes(p, bytes, options);
      const out = this.#done(await commitFiles(this.#host, [pending], [], commitOpts));
      return { ...out, path: p, size: pending.size, chunks: pending.chunks.length };
    }
    if (!isStreamLike(data)) throw new InvalidArgumentError('write data must be a string, a Uint8Array, a readable stream or an async iterable of bytes');
    const up = await uploadStream(this.#host, p, data, options.onProgress);
    const change = putChange({ path: p, size: up.size, chunkSize: up.chunkSize, chunks: up.chunks, mode: options.mode, mtime: options.mtime ?? Date.now(), createParents: options.createParents });
    const req: wire.CommitRequest = { changes: [change], message: commitOpts.message ?? '' };
    if (up.uploads.length > 0) req.uploads = up.uploads;
    let res: wire.CommitResponse;
    try {
      res = await postCommit(this.#host, req);
    } catch (e) {
      if (isExpiredUpload(e)) {
        throw new PreconditionFailedError(`uploaded chunks of ${p} expired before the commit, and a stream cannot be read twice: write the stream again`, { cause: e, details: e.details });
      }
      throw e;
    }
    const out = this.#done({ commit: res.commit, overwritten: res.overwritten, skipped: res.skipped ?? [], uploadedChunks: up.uploadedChunks, uploadedBytes: up.uploadedBytes, presentChunks: up.presentChunks });
    return { ...out, path: p, size: up.size, chunks: up.chunks.length };
  }

  /**
   * Uploads a local file in one commit, in two passes: hash it as a stream,
   * then send only the chunks the store lacks, re-read by byte range. An
   * unchanged file sends no chunk bytes at all.
   *
   * @example
   * const r = await vol.files.writeFile('/models/model.bin', './model.bin');
   * console.log(`${r.uploadedChunks} of ${r.chunks} chunks sent`);
   */
  async writeFile(path: string, localPath: string, options: WriteOptions = {}): Promise<WriteResult> {
    const p = parsePath(path);
    checkMode(options.mode);
    const pending = await pendingFromLocalFile(p, localPath, options);
    const out = this.#done(await commitFiles(this.#host, [pending], [], { message: options.message ?? `write ${p}`, ...(options.onProgress ? { onProgress: options.onProgress } : {}) }));
    return { ...out, path: p, size: pending.size, chunks: pending.chunks.length };
  }

  /**
   * Writes many files (bytes, text or local files) in one commit.
   *
   * @example
   * await vol.files.writeMany([{ path: '/a.txt', data: 'a' }, { path: '/b.bin', localPath: './b.bin' }]);
   */
  async writeMany(entries: readonly BatchEntry[], options: { message?: string; createParents?: boolean; onProgress?: ProgressListener; /** Other changes (mkdir, symlink, setattr…) applied after the files, in the same commit. */ changes?: readonly wire.Change[] } = {}): Promise<CommitOutcome> {
    // One commit holds at most MAX_COMMIT_CHANGES changes: say so before hashing or sending anything.
    const count = entries.length + (options.changes?.length ?? 0);
    if (count > MAX_COMMIT_CHANGES) throw tooManyChanges(count);
    const paths = new Set<string>();
    for (const e of entries) {
      const p = parsePath(e.path);
      if (paths.has(p)) throw new InvalidArgumentError(`path ${p} appears twice in one batch`);
      paths.add(p);
      checkMode(e.mode);
      if ((e.data === undefined) === (e.localPath === undefined)) throw new InvalidArgumentError(`batch entry ${p}: give exactly one of data or localPath`);
    }
    // Local files are hashed several at a time: with thousands of small files the cost is file-system latency, not CPU.
    const pending = await mapLimit(entries, 16, async (e): Promise<PendingFile> => {
      const p = parsePath(e.path);
      const o = { mode: e.mode, mtime: e.mtime, createParents: options.createParents };
      return e.localPath !== undefined ? pendingFromLocalFile(p, e.localPath, o) : pendingFromBytes(p, typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : e.data!, o);
    });
    return this.#done(await commitFiles(this.#host, pending, options.changes ?? [], { message: options.message ?? `write ${pending.length} files`, ...(options.onProgress ? { onProgress: options.onProgress } : {}) }));
  }

  /** Where a file's chunks are: GET .../read */
  async #plan(path: string, commit?: string): Promise<wire.ReadPlan> {
    const p = parsePath(path);
    const plan = await this.#host.client.request<wire.ReadPlan>('GET', this.#path('/read'), { query: { path: p, commit } });
    const sum = plan.chunks.reduce((n, c) => n + c.size, 0);
    if (sum !== plan.entry.size) throw new InternalError(`read plan of ${p} is inconsistent: chunks hold ${sum} bytes, the file ${plan.entry.size}`);
    return plan;
  }

  /** Fetches one chunk and checks its length and SHA-256 (once more on a mismatch, in case a transfer was damaged). */
  async #fetchChunk(path: string, c: wire.ReadPlan['chunks'][number]): Promise<Buffer> {
    return retry(REFETCH_DAMAGED, async () => {
      const bytes = await getSigned(c.request, this.#transfer(`download of a chunk of ${path}`));
      if (bytes.length === c.size && sha256Hex(bytes) === c.hash) return bytes;
      throw new DamagedChunkError(`chunk ${c.hash.slice(0, 12)} of ${path} failed verification (got ${bytes.length} bytes with another hash): the stored data may be damaged`);
    });
  }

  /**
   * Reads a whole file into memory (verified chunk by chunk).
   *
   * @example
   * const bytes = await vol.files.read('/data/out.json');
   * const old = await vol.files.read('/data/out.json', { commit: someCommitId });
   */
  async read(path: string, options: ReadOptions = {}): Promise<Buffer> {
    if (options.range) return Buffer.concat(await (await readRange(this.#host, path, options.range, options.commit)).toArray());
    const plan = await this.#plan(path, options.commit);
    const p = plan.entry.path;
    if (plan.entry.size > bufferConstants.MAX_LENGTH) throw new InvalidArgumentError(`${p} is too large to read into memory (${plan.entry.size} bytes): use readStream`);
    const out = Buffer.allocUnsafe(plan.entry.size);
    const offsets: number[] = [];
    let at = 0;
    for (const c of plan.chunks) {
      offsets.push(at);
      at += c.size;
    }
    let done = 0;
    await mapLimit(plan.chunks, this.#host.client.concurrency, async (c, i) => {
      const bytes = await this.#fetchChunk(p, c);
      bytes.copy(out, offsets[i]!);
      done += bytes.length;
      options.onProgress?.({ phase: 'download', done, total: plan.entry.size });
    });
    return out;
  }

  /**
   * Streams a file: chunks are fetched ahead with bounded concurrency,
   * verified, and emitted in order. Errors (e.g. NotFound) arrive as the
   * stream's 'error' event.
   *
   * @example
   * await pipeline(vol.files.readStream('/big.bin'), createWriteStream('./big.bin'));
   */
  readStream(path: string, options: ReadOptions = {}): Readable {
    const self = this;
    async function* chunks(): AsyncGenerator<Buffer> {
      if (options.range) {
        yield* await readRange(self.#host, path, options.range, options.commit);
        return;
      }
      const plan = await self.#plan(path, options.commit);
      const p = plan.entry.path;
      const ahead = self.#host.client.concurrency;
      const window: Array<{ size: number; bytes: Promise<Buffer> }> = [];
      let windowBytes = 0;
      let next = 0;
      let done = 0;
      const fill = (): void => {
        while (next < plan.chunks.length && window.length < ahead) {
          const c = plan.chunks[next]!;
          // Bound memory by bytes too: with 64 MiB chunks fewer are fetched ahead (always at least one).
          if (window.length > 0 && windowBytes + c.size > READAHEAD_BYTES) break;
          next++;
          const bytes = self.#fetchChunk(p, c);
          // Handled when awaited below; this keeps an early failure from being an unhandled rejection.
          bytes.catch(() => undefined);
          window.push({ size: c.size, bytes });
          windowBytes += c.size;
        }
      };
      fill();
      while (window.length > 0) {
        const head = window.shift()!;
        const bytes = await head.bytes;
        windowBytes -= head.size;
        fill();
        done += bytes.length;
        options.onProgress?.({ phase: 'download', done, total: plan.entry.size });
        yield bytes;
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  /**
   * Lists a directory (or, with `recursive`, everything below it).
   *
   * @example
   * for (const e of await vol.files.list('/data', { recursive: true })) console.log(e.path, e.size);
   */
  async list(path = '/', options: ListOptions = {}): Promise<wire.FileInfo[]> {
    const out: wire.FileInfo[] = [];
    for await (const e of this.iterate(path, options)) out.push(e);
    return out;
  }

  /**
   * Lists a directory page by page (the server sends 1000 entries per page
   * unless `pageSize` says otherwise), every page at one commit.
   *
   * @example
   * for await (const e of vol.files.iterate('/', { recursive: true })) console.log(e.path);
   */
  iterate(path = '/', options: IterateOptions = {}): AsyncGenerator<wire.FileInfo> {
    return iterateEntries(this.#host, path, options);
  }

  /**
   * Searches paths by glob and, with `regex`, contents; results are bounded
   * (`limit`, `maxBytesPerFile`, `timeoutMs`) and say when they are partial.
   *
   * @example
   * const { matches, timedOut } = await vol.files.search('/src', { glob: '*.ts', regex: 'TODO', flags: 'i' });
   */
  async search(path = '/', options: SearchOptions = {}): Promise<wire.SearchResponse> {
    return searchFiles(this.#host, path, options);
  }

  /**
   * Regex replace (`$1` expands) across the files `glob` selects, in one
   * commit; `commit` is null when nothing matched.
   *
   * @example
   * const r = await vol.files.replace('/src', 'oldName', 'newName', { glob: '*.ts' });
   */
  async replace(path: string, regex: string, replacement: string, options: ReplaceOptions): Promise<wire.ReplaceResponse> {
    const res = await replaceInFiles(this.#host, path, regex, replacement, options);
    if (res.commit) this.#host.noteCommit(res.commit);
    return res;
  }

  /**
   * Replaces the one occurrence of `oldString` in a text file (PreconditionFailed
   * unless it occurs exactly once). With `base`, the commit you read the file
   * at, a change made since then is a Conflict; without, the server checks
   * against the head it reads.
   *
   * @example
   * await vol.files.edit('/config.toml', 'debug = false', 'debug = true');
   */
  async edit(path: string, oldString: string, newString: string, options: { base?: string; message?: string } = {}): Promise<wire.EditResponse> {
    const res = await editFile(this.#host, path, oldString, newString, options);
    this.#host.noteCommit(res.commit);
    return res;
  }

  /**
   * Streams change events (one per changed path) until `signal` aborts,
   * reconnecting after network errors without missing or repeating a change.
   *
   * @example
   * const ac = new AbortController();
   * for await (const ev of vol.files.watch({ signal: ac.signal })) console.log(ev.kind, ev.path, ev.commit);
   */
  watch(options: WatchOptions = {}): AsyncGenerator<wire.ChangeEvent> {
    return watchChanges(this.#host, options);
  }

  /**
   * Describes one file, directory or symlink.
   *
   * @example
   * const { size, mode, mtime } = await vol.files.stat('/data/out.json');
   */
  async stat(path: string, options: { commit?: string } = {}): Promise<wire.FileInfo> {
    const p = parsePath(path);
    const res = await this.#host.client.request<wire.StatResponse>('GET', this.#path('/stat'), { query: { path: p, commit: options.commit } });
    return res.entry;
  }

  /**
   * True when the path exists (at head, or at `commit`).
   *
   * @example
   * if (!(await vol.files.exists('/config.json'))) await vol.files.write('/config.json', '{}');
   */
  async exists(path: string, options: { commit?: string } = {}): Promise<boolean> {
    try {
      await this.stat(path, options);
      return true;
    } catch (e) {
      if (isStowageError(e, 'NotFound')) return false;
      throw e;
    }
  }

  /** Commits non-write changes (no chunks). */
  async #commit(changes: wire.Change[], message: string): Promise<CommitOutcome> {
    const res = await postCommit(this.#host, { changes, message });
    return this.#done({ commit: res.commit, overwritten: res.overwritten, skipped: res.skipped ?? [], uploadedChunks: 0, uploadedBytes: 0, presentChunks: 0 });
  }

  /**
   * Removes a file or symlink, or a directory with `recursive`. A missing
   * path is NotFound unless `force`.
   *
   * @example
   * await vol.files.remove('/tmp', { recursive: true });
   */
  async remove(path: string, options: { recursive?: boolean; force?: boolean } = {}): Promise<CommitOutcome> {
    const p = parsePath(path);
    if (p === '/') throw new InvalidArgumentError('refusing to remove "/": remove the entries below it, or delete the volume');
    return this.#commit([{ op: 'delete', path: p, recursive: options.recursive ?? false, mustExist: !options.force }], `remove ${p}`);
  }

  /**
   * Creates a directory (and its parents); an existing directory is kept.
   *
   * @example
   * await vol.files.mkdir('/data/reports');
   */
  async mkdir(path: string, options: { mode?: number } = {}): Promise<CommitOutcome> {
    const p = parsePath(path);
    checkMode(options.mode);
    return this.#commit([{ op: 'mkdir', path: p, ...(options.mode === undefined ? {} : { mode: options.mode }) }], `mkdir ${p}`);
  }

  /**
   * Moves a file or directory; the target must not exist unless `overwrite`.
   *
   * @example
   * await vol.files.move('/draft.txt', '/final.txt');
   */
  async move(from: string, to: string, options: { overwrite?: boolean } = {}): Promise<CommitOutcome> {
    const f = parsePath(from);
    const t = parsePath(to);
    return this.#commit([{ op: 'move', from: f, to: t, overwrite: options.overwrite ?? false }], `move ${f} to ${t}`);
  }
}
