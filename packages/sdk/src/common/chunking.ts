/**
 * @module chunking
 * The fixed-size chunking rule shared by every writer (SDK, mount agent) and
 * checked by the engine. A file is cut into equal chunks of `chunkSizeFor(size)`
 * bytes; only the last may be shorter. Because the cut points depend only on
 * the offset, rewriting bytes inside one chunk changes only that chunk, and
 * appending after a full final chunk adds only new tail chunks.
 */
import { GiB, MiB } from './sizes.js';

/** Chunk size of files smaller than LARGE_FILE_THRESHOLD. */
export const SMALL_CHUNK_SIZE = 8 * MiB;
/** Chunk size of large files: fewer, bigger objects for bulk throughput. */
export const LARGE_CHUNK_SIZE = 64 * MiB;
/** Files of at least this many bytes use LARGE_CHUNK_SIZE. */
export const LARGE_FILE_THRESHOLD = 1 * GiB;
/** Every chunk size a tree may record. */
export const ALLOWED_CHUNK_SIZES: readonly number[] = [SMALL_CHUNK_SIZE, LARGE_CHUNK_SIZE];

/** The chunk size a file of `size` bytes is cut with. */
export function chunkSizeFor(size: number): number {
  return size >= LARGE_FILE_THRESHOLD ? LARGE_CHUNK_SIZE : SMALL_CHUNK_SIZE;
}

/** How many chunks a file of `size` bytes has with `chunkSize` (0 for an empty file). */
export function chunkCount(size: number, chunkSize: number): number {
  return Math.ceil(size / chunkSize);
}

/** Length of chunk `index` of a file of `size` bytes. */
export function chunkLength(size: number, chunkSize: number, index: number): number {
  return Math.min(chunkSize, size - index * chunkSize);
}
