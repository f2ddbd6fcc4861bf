/**
 * @module client/chunker
 * Cuts content into the fixed-size chunks of common/chunking.ts and hashes
 * them (SHA-256 hex of the chunk bytes), for the three kinds of source a
 * write can have:
 *
 * - bytes in memory: cut and hashed in place (`chunkBytes`);
 * - a local file: read once as a stream and hashed chunk by chunk, never
 *   held whole in memory (`chunkFile`); its chunks are re-read later by
 *   byte range for upload;
 * - a stream of unknown length: regrouped into SMALL_CHUNK_SIZE pieces one
 *   at a time (`rechunk`), which the engine accepts for any file size.
 *
 * All three give the same chunks for the same bytes and chunk size.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { chunkSizeFor } from '../common/chunking.js';
import { ConflictError, InvalidArgumentError, NotFoundError, ForbiddenError } from '../common/errors.js';
import { splitNanos } from '../common/times.js';

/** One chunk of a file: its hash, length and where it starts. */
export interface ChunkRef {
  hash: string;
  size: number;
  offset: number;
}

/** A file's content, cut: total size, the chunk size used and the chunks in order. */
export interface ChunkedContent {
  size: number;
  chunkSize: number;
  chunks: ChunkRef[];
}

/** What `chunkFile` also learns about the local file. */
export interface LocalFileContent extends ChunkedContent {
  /** Permission bits (e.g. 0o644). */
  mode: number;
  /** Modification time, milliseconds since the epoch. */
  mtime: number;
  /** Nanoseconds past the millisecond in `mtime` (0..999999). */
  mtimeNs: number;
}

/** Bytes read from a local file while hashing it. */
const READ_BUFFER = 1024 * 1024;

/** SHA-256 of `data`, lowercase hex: the address of a chunk. */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Cuts bytes held in memory into chunks (default size: `chunkSizeFor(length)`).
 *
 * @example
 * const { chunks } = chunkBytes(Buffer.from('hello')); // one 5-byte chunk
 */
export function chunkBytes(data: Uint8Array, chunkSize = chunkSizeFor(data.byteLength)): ChunkedContent {
  const chunks: ChunkRef[] = [];
  for (let offset = 0; offset < data.byteLength; offset += chunkSize) {
    const piece = data.subarray(offset, Math.min(offset + chunkSize, data.byteLength));
    chunks.push({ hash: sha256Hex(piece), size: piece.byteLength, offset });
  }
  return { size: data.byteLength, chunkSize, chunks };
}

/** Translates a local file-system error into a StowageError that names the file. */
export function localFileError(e: unknown, path: string): Error {
  const code = (e as { code?: unknown } | null)?.code;
  if (code === 'ENOENT') return new NotFoundError(`local file not found: ${path}`, { cause: e });
  if (code === 'EACCES' || code === 'EPERM') return new ForbiddenError(`permission denied reading local file ${path}`, { cause: e });
  if (code === 'EISDIR') return new InvalidArgumentError(`${path} is a directory, not a file`, { cause: e });
  return e instanceof Error ? e : new Error(String(e));
}

/**
 * Hashes a local file chunk by chunk in one streaming pass, holding at most
 * one read buffer in memory. `onBytes` is told of each block read and the
 * file's size (for progress). Throws ConflictError when the file changes size while read.
 *
 * @example
 * const { size, chunkSize, chunks } = await chunkFile('./model.bin');
 */
export async function chunkFile(path: string, options: { onBytes?: (n: number, size: number) => void } = {}): Promise<LocalFileContent> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (e) {
    throw localFileError(e, path);
  }
  try {
    // In bigint form: the only way to read the nanoseconds of the mtime.
    const st = await handle.stat({ bigint: true });
    if (!st.isFile()) throw new InvalidArgumentError(`${path} is not a regular file`);
    const size = Number(st.size);
    const chunkSize = chunkSizeFor(size);
    const chunks: ChunkRef[] = [];
    let hash = createHash('sha256');
    let inChunk = 0;
    let offset = 0;
    // A small file gets a small buffer: thousands of 4 KiB files must not each allocate 1 MiB.
    const stream = handle.createReadStream({ highWaterMark: Math.min(READ_BUFFER, Math.max(size, 1)), autoClose: false, start: 0 });
    try {
      for await (const block of stream as AsyncIterable<Buffer>) {
        let pos = 0;
        while (pos < block.length) {
          const take = Math.min(chunkSize - inChunk, block.length - pos);
          hash.update(block.subarray(pos, pos + take));
          inChunk += take;
          pos += take;
          if (inChunk === chunkSize) {
            chunks.push({ hash: hash.digest('hex'), size: inChunk, offset });
            offset += inChunk;
            inChunk = 0;
            hash = createHash('sha256');
          }
        }
        options.onBytes?.(block.length, size);
      }
    } catch (e) {
      throw localFileError(e, path);
    }
    if (inChunk > 0) {
      chunks.push({ hash: hash.digest('hex'), size: inChunk, offset });
      offset += inChunk;
    }
    if (offset !== size) throw new ConflictError(`local file ${path} changed while it was read (expected ${size} bytes, read ${offset}); try again`);
    const mtime = splitNanos(st.mtimeNs);
    return { size, chunkSize, chunks, mode: Number(st.mode) & 0o7777, mtime: mtime.ms, mtimeNs: mtime.ns };
  } finally {
    await handle.close();
  }
}

export { asBytes, rechunk } from '../common/rechunk.js';
