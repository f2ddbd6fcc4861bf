/**
 * @module rechunk
 * Regroups any byte stream into the fixed-size pieces chunking needs. Shared
 * by every writer: the SDK (client uploads) and the engine (bytes the server
 * itself receives, e.g. resumable uploads and replacements).
 */
import { InvalidArgumentError } from './errors.js';

/** Node streams may yield strings (with an encoding set) or Buffers; this always yields bytes. */
export async function* asBytes(source: AsyncIterable<unknown>): AsyncGenerator<Uint8Array> {
  for await (const piece of source) {
    if (piece instanceof Uint8Array) yield piece;
    else if (typeof piece === 'string') yield Buffer.from(piece, 'utf8');
    else throw new InvalidArgumentError('stream yielded something that is not bytes or a string');
  }
}

/**
 * Regroups a byte stream into pieces of exactly `chunkSize` bytes (the last
 * may be shorter; an empty stream yields nothing). Holds at most one piece.
 *
 * @example
 * for await (const piece of rechunk(process.stdin, SMALL_CHUNK_SIZE)) upload(piece);
 */
export async function* rechunk(source: AsyncIterable<unknown>, chunkSize: number): AsyncGenerator<Buffer> {
  let parts: Uint8Array[] = [];
  let have = 0;
  for await (const block of asBytes(source)) {
    let pos = 0;
    while (pos < block.byteLength) {
      const take = Math.min(chunkSize - have, block.byteLength - pos);
      parts.push(block.subarray(pos, pos + take));
      have += take;
      pos += take;
      if (have === chunkSize) {
        yield Buffer.concat(parts, have);
        parts = [];
        have = 0;
      }
    }
  }
  if (have > 0) yield Buffer.concat(parts, have);
}
