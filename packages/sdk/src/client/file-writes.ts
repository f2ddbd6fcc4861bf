/**
 * @module client/file-writes
 * The write side of the file API (`vol.files.write`, `writeFile`,
 * `writeMany`): turn text, bytes, streams or local files into pending files
 * and commit them, one commit per call. Only the chunks the store lacks
 * travel, so writes report what was sent (`uploadedChunks`, `uploadedBytes`).
 * The caller (Files) tells its volume of the commit each write returns.
 */
import { createReadStream } from 'node:fs';
import type * as wire from '../api/wire.js';
import { mapLimit } from '../common/concurrency.js';
import { InvalidArgumentError, PreconditionFailedError } from '../common/errors.js';
import { MAX_COMMIT_CHANGES, tooManyChanges } from '../common/limits.js';
import { parsePath } from '../common/paths.js';
import { chunkBytes, chunkFile, localFileError, type ChunkRef } from './chunker.js';
import {
  commitFiles,
  isExpiredUpload,
  postCommit,
  putChange,
  uploadStream,
  type CommitOptions,
  type CommitOutcome,
  type CommitTarget,
  type PendingFile,
  type ProgressListener,
} from './commit-writer.js';

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

function isStreamLike(data: unknown): data is AsyncIterable<unknown> {
  return (
    typeof data === 'object' &&
    data !== null &&
    typeof (data as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  );
}

/** A pending file backed by bytes in memory. */
function pendingFromBytes(
  path: string,
  bytes: Uint8Array,
  o: { mode?: number | undefined; mtime?: number | undefined; createParents?: boolean | undefined },
): PendingFile {
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
async function pendingFromLocalFile(
  path: string,
  localPath: string,
  o: {
    mode?: number | undefined;
    mtime?: number | undefined;
    createParents?: boolean | undefined;
    onProgress?: ProgressListener | undefined;
  },
): Promise<PendingFile> {
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
    ...(o.mtime === undefined
      ? { mtime: cut.mtime, ...(cut.mtimeNs !== 0 ? { mtimeNs: cut.mtimeNs } : {}) }
      : { mtime: o.mtime }),
    ...(o.createParents === undefined ? {} : { createParents: o.createParents }),
    read: (c: ChunkRef) => createReadStream(localPath, { start: c.offset, end: c.offset + c.size - 1 }),
    // The file may vanish or become unreadable between the two passes: name it.
    readError: (e: unknown) => localFileError(e, localPath),
  };
}

export function checkMode(mode: number | undefined): void {
  if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777))
    throw new InvalidArgumentError(`invalid mode ${mode}: expected permission bits such as 0o644`);
}

/** Writes one file in one commit: text, bytes, or a stream of unknown length (sent as it is read, so never retried). */
export async function writeData(
  host: CommitTarget,
  path: string,
  data: WriteData,
  options: WriteOptions,
): Promise<WriteResult> {
  const p = parsePath(path);
  checkMode(options.mode);
  const commitOpts: CommitOptions = {
    message: options.message ?? `write ${p}`,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
  if (typeof data === 'string' || data instanceof Uint8Array) {
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    const pending = pendingFromBytes(p, bytes, options);
    const out = await commitFiles(host, [pending], [], commitOpts);
    return { ...out, path: p, size: pending.size, chunks: pending.chunks.length };
  }
  if (!isStreamLike(data))
    throw new InvalidArgumentError(
      'write data must be a string, a Uint8Array, a readable stream or an async iterable of bytes',
    );
  const up = await uploadStream(host, p, data, options.onProgress);
  const change = putChange({
    path: p,
    size: up.size,
    chunkSize: up.chunkSize,
    chunks: up.chunks,
    mode: options.mode,
    mtime: options.mtime ?? Date.now(),
    createParents: options.createParents,
  });
  const req: wire.CommitRequest = { changes: [change], message: commitOpts.message ?? '' };
  if (up.uploads.length > 0) req.uploads = up.uploads;
  let res: wire.CommitResponse;
  try {
    res = await postCommit(host, req);
  } catch (e) {
    if (isExpiredUpload(e)) {
      throw new PreconditionFailedError(
        `uploaded chunks of ${p} expired before the commit, and a stream cannot be read twice: write the stream again`,
        { cause: e, details: e.details },
      );
    }
    throw e;
  }
  const out: CommitOutcome = {
    commit: res.commit,
    overwritten: res.overwritten,
    skipped: res.skipped ?? [],
    uploadedChunks: up.uploadedChunks,
    uploadedBytes: up.uploadedBytes,
    presentChunks: up.presentChunks,
  };
  return { ...out, path: p, size: up.size, chunks: up.chunks.length };
}

/**
 * Uploads a local file in one commit, in two passes: hash it as a stream,
 * then send only the chunks the store lacks, re-read by byte range. An
 * unchanged file sends no chunk bytes at all.
 */
export async function writeLocalFile(
  host: CommitTarget,
  path: string,
  localPath: string,
  options: WriteOptions,
): Promise<WriteResult> {
  const p = parsePath(path);
  checkMode(options.mode);
  const pending = await pendingFromLocalFile(p, localPath, options);
  const out = await commitFiles(host, [pending], [], {
    message: options.message ?? `write ${p}`,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  return { ...out, path: p, size: pending.size, chunks: pending.chunks.length };
}

/** Options of a batch write (`writeMany`). */
export interface BatchOptions {
  message?: string;
  createParents?: boolean;
  onProgress?: ProgressListener;
  /** Other changes (mkdir, symlink, setattr…) applied after the files, in the same commit. */
  changes?: readonly wire.Change[];
}

/** Writes many files (bytes, text or local files) and other changes in one commit. */
export async function writeBatch(
  host: CommitTarget,
  entries: readonly BatchEntry[],
  options: BatchOptions,
): Promise<CommitOutcome> {
  // One commit holds at most MAX_COMMIT_CHANGES changes: say so before hashing or sending anything.
  const count = entries.length + (options.changes?.length ?? 0);
  if (count > MAX_COMMIT_CHANGES) throw tooManyChanges(count);
  const paths = new Set<string>();
  for (const e of entries) {
    const p = parsePath(e.path);
    if (paths.has(p)) throw new InvalidArgumentError(`path ${p} appears twice in one batch`);
    paths.add(p);
    checkMode(e.mode);
    if ((e.data === undefined) === (e.localPath === undefined))
      throw new InvalidArgumentError(`batch entry ${p}: give exactly one of data or localPath`);
  }
  // Local files are hashed several at a time: with thousands of small files the cost is file-system latency, not CPU.
  const pending = await mapLimit(entries, 16, async (e): Promise<PendingFile> => {
    const p = parsePath(e.path);
    const o = { mode: e.mode, mtime: e.mtime, createParents: options.createParents };
    return e.localPath !== undefined
      ? pendingFromLocalFile(p, e.localPath, o)
      : pendingFromBytes(p, typeof e.data === 'string' ? Buffer.from(e.data, 'utf8') : e.data!, o);
  });
  return commitFiles(host, pending, options.changes ?? [], {
    message: options.message ?? `write ${pending.length} files`,
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
}
