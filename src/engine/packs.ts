/**
 * @module engine/packs
 * Packs: one blob-store object holding many small chunks back to back, so a
 * commit of thousands of small files costs a few object PUTs instead of one
 * per file (SPEC section 2). Dedupe stays per chunk: each chunk row records
 * its pack's key and its offset inside it, and reads are ranged GETs.
 *
 * A pack is uploaded under a fresh key (like every upload, so garbage
 * collection can never delete a concurrent upload of the same bytes) through
 * a signed PUT bound to its SHA-256 and size. At commit the server reads the
 * pack back and checks that every declared chunk hashes to its claimed hash:
 * a client can never make a hash point at other bytes, which matters because
 * chunks are shared across tenants.
 */
import { createHash } from 'node:crypto';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { ChunkHash } from '@stowage/sdk/common/ids.js';
import { parseObjectKey } from '../model/object-keys.js';
import { MiB } from '@stowage/sdk/common/sizes.js';
import type { PackManifest } from '@stowage/sdk/api/wire.js';
import type { BlobStore } from '../stores/blob-store.js';
import type { ChunkRecord } from '@stowage/sdk/model/records.js';

/** Largest pack a client may upload. */
export const MAX_PACK_SIZE = 32 * MiB;
/** Most chunks one pack may declare. */
export const MAX_PACK_CHUNKS = 100_000;

/** Checks a manifest's shape: a pack key, chunks contiguous from offset 0. Returns the pack's total size. */
export function checkManifest(m: PackManifest): number {
  if (typeof m?.key !== 'string' || parseObjectKey(m.key)?.kind !== 'pack')
    throw new InvalidArgumentError(
      `packs: ${JSON.stringify(String(m?.key).slice(0, 100))} is not a pack key issued by this server`,
    );
  if (!Array.isArray(m.chunks) || m.chunks.length === 0 || m.chunks.length > MAX_PACK_CHUNKS)
    throw new InvalidArgumentError(`pack ${m.key}: declare between 1 and ${MAX_PACK_CHUNKS} chunks`);
  let offset = 0;
  for (const c of m.chunks) {
    if (!ChunkHash.is(c.hash))
      throw new InvalidArgumentError(`pack ${m.key}: chunk hashes must be 64 lowercase hex characters`);
    if (c.offset !== offset)
      throw new InvalidArgumentError(
        `pack ${m.key}: chunks must be listed in offset order with no gaps (expected offset ${offset}, got ${c.offset})`,
      );
    if (!Number.isSafeInteger(c.size) || c.size < 1)
      throw new InvalidArgumentError(`pack ${m.key}: chunk sizes must be positive`);
    offset += c.size;
  }
  if (offset > MAX_PACK_SIZE) throw new InvalidArgumentError(`pack ${m.key}: larger than ${MAX_PACK_SIZE} bytes`);
  return offset;
}

/**
 * Verifies an uploaded pack against its manifest and returns a chunk row per
 * declared chunk. Undefined when the object is missing, of another size, or
 * older than `oldest` (ms since epoch): the upload expired. Throws
 * InvalidArgumentError when a chunk's bytes do not hash to its claimed hash.
 */
export async function verifyPack(
  blobs: BlobStore,
  manifest: PackManifest,
  oldest: number,
  now: Date,
): Promise<ChunkRecord[] | undefined> {
  const total = checkManifest(manifest);
  const info = await blobs.head(manifest.key);
  if (!info || info.size !== total || info.lastModified.getTime() < oldest) return undefined;
  const rows: ChunkRecord[] = [];
  let index = 0;
  let filled = 0;
  let hasher = createHash('sha256');
  const finishChunk = () => {
    const c = manifest.chunks[index]!;
    if (hasher.digest('hex') !== c.hash)
      throw new InvalidArgumentError(
        `pack ${manifest.key}: the ${c.size} bytes at offset ${c.offset} do not hash to ${c.hash}`,
      );
    rows.push({ hash: c.hash as ChunkHash, size: c.size, objectKey: manifest.key, offset: c.offset, touchedAt: now });
    index++;
    filled = 0;
    hasher = createHash('sha256');
  };
  for await (const piece of await blobs.get(manifest.key)) {
    let buf = piece as Uint8Array;
    while (buf.length > 0 && index < manifest.chunks.length) {
      const take = Math.min(buf.length, manifest.chunks[index]!.size - filled);
      hasher.update(buf.subarray(0, take));
      filled += take;
      buf = buf.subarray(take);
      if (filled === manifest.chunks[index]!.size) finishChunk();
    }
  }
  if (index !== manifest.chunks.length) return undefined; // the object changed under us: treat as expired
  return rows;
}
