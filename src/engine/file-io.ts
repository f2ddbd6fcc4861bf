/**
 * @module engine/file-io
 * Bytes of files, for the operations the server performs itself rather than
 * handing out signed URLs: streaming a file (or a byte range) out of its
 * chunks, and cutting a stream that arrives at the server (a finished
 * resumable upload, a replacement) into stored chunks.
 */
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { chunkLength } from '@stowage/sdk/common/chunking.js';
import { InvalidArgumentError, UnavailableError } from '@stowage/sdk/common/errors.js';
import type { ChunkHash } from '@stowage/sdk/common/ids.js';
import { newObjectKey } from '../model/object-keys.js';
import { rechunk } from '@stowage/sdk/common/rechunk.js';
import type { BlobStore } from '../stores/blob-store.js';
import type { MetadataOps, OwnerScope } from '../stores/metadata-store.js';
import type { ChunkOwner, ChunkRecord } from '@stowage/sdk/model/records.js';
import type { FileEntry } from './tree/tree-codec.js';

/**
 * Streams the bytes of a file, or of the inclusive range [start, end], one
 * chunk at a time (memory holds at most one chunk's read buffer).
 */
export async function* readEntry(
  md: Pick<MetadataOps, 'getChunks'>,
  blobs: BlobStore,
  entry: FileEntry,
  range?: { start: number; end: number },
): AsyncGenerator<Uint8Array> {
  const start = range?.start ?? 0;
  const end = range?.end ?? entry.size - 1;
  if (entry.size === 0 || end < start) return;
  if (start < 0 || end >= entry.size)
    throw new InvalidArgumentError(`range ${start}-${end} is outside the file (${entry.size} bytes)`);
  const first = Math.floor(start / entry.chunkSize);
  const last = Math.floor(end / entry.chunkSize);
  const wanted = entry.chunks.slice(first, last + 1);
  const rows = new Map((await md.getChunks([...new Set(wanted)])).map((r) => [r.hash, r]));
  for (let i = first; i <= last; i++) {
    const row = rows.get(entry.chunks[i]!);
    if (!row) throw new UnavailableError(`chunk ${entry.chunks[i]} is missing from the store`);
    const chunkStart = i * entry.chunkSize;
    const from = Math.max(start, chunkStart) - chunkStart;
    const to = Math.min(end, chunkStart + chunkLength(entry.size, entry.chunkSize, i) - 1) - chunkStart;
    const stream: Readable = await blobs.get(row.objectKey, { start: row.offset + from, end: row.offset + to });
    for await (const piece of stream) yield piece as Uint8Array;
  }
}

/** What storing a stream produced: the file's chunk list and totals. */
export interface StoredContent {
  size: number;
  chunkSize: number;
  chunks: ChunkHash[];
  /** SHA-256 (hex) of the whole content. */
  sha256: string;
  /** Chunks that were new to the store. */
  uploadedChunks: number;
}

/** Whose chunks a server-side write may reuse as they are, and who owns what it stores (see engine/chunk-ownership). */
export interface StoreOwnership {
  scope: OwnerScope[];
  holders: ChunkOwner[];
}

/**
 * Cuts a stream into `chunkSize` pieces and stores them (fresh keys),
 * registering their rows touched `now` so garbage collection keeps them for
 * the commit that follows, and records `holders` as owning every piece: the
 * server hashed these bytes itself. A piece already owned by `scope` is not
 * stored again. A piece stored only for others is stored again like a new
 * one (and counted in uploadedChunks), so the answer and the work do not tell
 * the writer whether anyone else has that content; its existing row is kept
 * (content stays stored once) and the redundant copy deleted.
 * Memory holds one piece at a time.
 */
export async function storeStream(
  md: Pick<MetadataOps, 'getChunks' | 'putChunks' | 'touchChunks' | 'ownedChunks' | 'addChunkOwners'>,
  blobs: BlobStore,
  body: AsyncIterable<unknown>,
  chunkSize: number,
  now: () => Date,
  owners: StoreOwnership,
): Promise<StoredContent> {
  const whole = createHash('sha256');
  const chunks: ChunkHash[] = [];
  let size = 0;
  let uploadedChunks = 0;
  for await (const piece of rechunk(body, chunkSize)) {
    whole.update(piece);
    size += piece.length;
    const hash = createHash('sha256').update(piece).digest('hex') as ChunkHash;
    chunks.push(hash);
    if ((await md.ownedChunks(owners.scope, [hash])).length > 0 && (await md.touchChunks([hash], now())).length > 0)
      continue;
    const objectKey = newObjectKey('chunk', hash);
    // No sha256 option: the hash was just computed from these very bytes in memory; asking the store to verify would hash them a second time.
    await blobs.put(objectKey, piece, { size: piece.length });
    const row: ChunkRecord = { hash, size: piece.length, objectKey, offset: 0, touchedAt: now() };
    await md.putChunks([row]);
    uploadedChunks++;
    // The first row of a hash wins: when it is not ours, our copy is redundant (GC would remove it later anyway).
    const [kept] = await md.getChunks([hash]);
    if (kept && kept.objectKey !== objectKey) await blobs.delete(objectKey).catch(() => undefined);
  }
  await md.addChunkOwners(owners.holders, chunks, now());
  return { size, chunkSize, chunks, sha256: whole.digest('hex'), uploadedChunks };
}
