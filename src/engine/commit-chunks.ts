/**
 * @module engine/commit-chunks
 * The chunk check of a commit: every chunk a commit references must be
 * owned by the committer's scope (see engine/chunk-ownership), or proven in
 * this very commit, before anything publishes. Proven means:
 *
 * - inside a pack the commit declares: the pack is read back and every
 *   declared chunk hashed (engine/packs), each distinct pack once however
 *   often the commit lists it;
 * - uploaded under the key prepareUpload issued for it (echoed in
 *   `uploads`), within the upload window, with the right size. The signed
 *   PUT binds the SHA-256, which the blob store checks; when content with
 *   that hash is already registered (another tenant's, say), the new object
 *   is also read back and hashed here, so that a store that does not enforce
 *   checksums cannot be used to claim someone else's content by hash.
 *
 * Only keys issued to this tenant and volume prove anything (the upload
 * reservation made when the signed PUT was issued records whom it went to):
 * a pack key is learnable from any read plan of a chunk inside it, and must
 * not let a stranger claim that pack's other chunks, registered or not.
 *
 * A chunk neither owned nor proven is refused with PreconditionFailed (412)
 * and the same message whether or not it is stored for someone else.
 *
 * Verification reads bytes (packs, re-hashed uploads); their total per commit
 * is bounded ({@link DEFAULT_MAX_VERIFY_BYTES}) so that one request cannot
 * make the server read without limit.
 */
import { createHash } from 'node:crypto';
import { mapLimit } from '@stowage/sdk/common/concurrency.js';
import { InvalidArgumentError, PreconditionFailedError, QuotaExceededError } from '@stowage/sdk/common/errors.js';
import { ChunkHash, type TenantId, type VolumeId } from '@stowage/sdk/common/ids.js';
import { formatSize, GiB } from '@stowage/sdk/common/sizes.js';
import type { PackManifest } from '@stowage/sdk/api/wire.js';
import { parseObjectKey } from '../model/object-keys.js';
import type { BlobStore } from '../stores/blob-store.js';
import type { MetadataOps, OwnerScope } from '../stores/metadata-store.js';
import type { ChunkOwner, ChunkRecord } from '@stowage/sdk/model/records.js';
import { checkManifest, verifyPack } from './packs.js';

/** Most bytes one commit may make the server read back to verify (packs plus re-hashed uploads). */
export const DEFAULT_MAX_VERIFY_BYTES = 4 * GiB;
/** Most distinct packs one commit may declare. */
export const MAX_COMMIT_PACKS = 1000;

export interface ChunkCheckDeps {
  md: Pick<
    MetadataOps,
    'getChunks' | 'putChunks' | 'touchChunks' | 'ownedChunks' | 'addChunkOwners' | 'issuedUploadKeys'
  >;
  blobs: BlobStore;
  now: Date;
  /** ms: an upload older than this is expired. */
  uploadWindow: number;
  maxVerifyBytes: number;
}

export interface ChunkCheck {
  /** Hash -> size of every chunk the commit references. */
  needed: Map<ChunkHash, number>;
  uploads: Array<{ hash: string; key: string }>;
  packs: PackManifest[];
  /** Whose chunks may be referenced without proof. */
  scope: OwnerScope[];
  /** Who owns every referenced chunk once the check passes. */
  holders: ChunkOwner[];
  /** Whom the commit's upload and pack keys must have been issued to. */
  issuedTo: { tenantId: TenantId; volumeId: VolumeId };
}

/** Upload keys have the shape prepareUpload issues for that hash. */
export function isUploadKeyFor(hash: string, key: string): boolean {
  const k = parseObjectKey(key);
  return ChunkHash.is(hash) && k?.kind === 'chunk' && k.sha256 === hash;
}

/**
 * Checks (and then registers, touches and records as owned by `holders`)
 * every chunk a commit references; throws and changes no chunk row when one
 * is neither owned nor proven. Returns the object keys (uploads and packs)
 * that new chunk rows now name: what the commit took in, which no longer
 * counts as uncommitted. An echoed key the commit did not need stays
 * reserved until it expires, since its object waits for GC.
 */
export async function checkCommitChunks(deps: ChunkCheckDeps, check: ChunkCheck): Promise<string[]> {
  const { md, now } = deps;
  const { needed } = check;
  if (needed.size === 0) return [];
  const uploadKeys = new Map<string, string>();
  for (const u of check.uploads) {
    if (typeof u?.hash !== 'string' || typeof u.key !== 'string' || !isUploadKeyFor(u.hash, u.key))
      throw new InvalidArgumentError(
        `uploads: ${JSON.stringify(String(u?.key).slice(0, 100))} is not an upload key issued for chunk ${String(u?.hash).slice(0, 64)}`,
      );
    uploadKeys.set(u.hash, u.key);
  }
  // Keys issued to someone else (or never issued) prove nothing; their packs are not even read.
  const declared = distinctPacks(check.packs);
  for (const m of declared) checkManifest(m); // a malformed manifest is a 400 whoever it names
  const issued = new Set(
    await md.issuedUploadKeys(
      check.issuedTo.tenantId,
      check.issuedTo.volumeId,
      [...uploadKeys.values(), ...declared.map((m) => m.key)],
      now,
    ),
  );
  const packs = declared.filter((m) => issued.has(m.key));
  for (const [hash, key] of uploadKeys) if (!issued.has(key)) uploadKeys.delete(hash);

  // Owned chunks need no proof; their rows (if GC has not taken them) say where the bytes are.
  const owned = new Set(await md.ownedChunks(check.scope, [...needed.keys()]));
  const have = new Set<ChunkHash>();
  for (const row of await md.getChunks([...owned])) {
    // The size of a chunk one owns is no secret.
    if (row.size !== needed.get(row.hash))
      throw new InvalidArgumentError(
        `chunk ${row.hash} has ${row.size} bytes, but the file expects ${needed.get(row.hash)}`,
      );
    have.add(row.hash);
  }
  const unproven = [...needed].filter(([h]) => !have.has(h));
  const registered = new Map((await md.getChunks(unproven.map(([h]) => h))).map((r) => [r.hash, r]));

  const oldest = now.getTime() - deps.uploadWindow;
  const packBytes = packs.reduce((n, m) => n + manifestBytes(m), 0);
  checkBudget(deps.maxVerifyBytes, packBytes, 'its packs');
  const packed = new Map<string, ChunkRecord>();
  for (const rows of await mapLimit(packs, 4, (m) => verifyPack(deps.blobs, m, oldest, now))) {
    for (const row of rows ?? []) packed.set(row.hash, row);
  }

  const proven: ChunkRecord[] = [];
  const toRehash: Array<{ hash: ChunkHash; size: number; key: string }> = [];
  const missing: ChunkHash[] = [];
  // Every key left here was issued to this tenant and volume (filtered above), so a key that a chunk row already
  // names is this volume's own committed upload (two pages of one upload racing): it proves the chunk as before.
  await mapLimit(unproven, 16, async ([hash, size]) => {
    const inPack = packed.get(hash);
    if (inPack && inPack.size === size) {
      proven.push(inPack);
      return;
    }
    const key = uploadKeys.get(hash);
    const info = key ? await deps.blobs.head(key) : undefined;
    if (!key || !info || info.size !== size || info.lastModified.getTime() < oldest) {
      missing.push(hash);
      return;
    }
    const claimedBy = registered.get(hash)?.objectKey;
    if (claimedBy !== undefined && claimedBy !== key) toRehash.push({ hash, size, key });
    else proven.push({ hash, size, objectKey: key, offset: 0, touchedAt: now });
  });
  if (missing.length > 0) {
    // The same answer whether or not the chunk is stored for someone else.
    throw new PreconditionFailedError(
      `${missing.length} chunk(s) referenced by this commit were never uploaded or their upload expired (first: ${missing[0]}); upload them and commit again`,
      { details: { missing: missing.slice(0, 1000) } },
    );
  }
  checkBudget(
    deps.maxVerifyBytes,
    packBytes + toRehash.reduce((n, u) => n + u.size, 0),
    'its packs and re-uploaded chunks',
  );
  await mapLimit(toRehash, 4, async (u) => {
    const hasher = createHash('sha256');
    for await (const piece of await deps.blobs.get(u.key)) hasher.update(piece as Uint8Array);
    if (hasher.digest('hex') !== u.hash)
      throw new InvalidArgumentError(
        `the bytes uploaded under ${u.key} do not hash to ${u.hash}; upload the chunk again`,
      );
  });
  // Content already registered keeps its row (stored once); the new upload is an unnamed object GC removes.
  const fresh = proven.filter((r) => !registered.has(r.hash));
  await md.putChunks(fresh);
  await md.touchChunks([...needed.keys()], now);
  await md.addChunkOwners(check.holders, [...needed.keys()], now);
  return [...new Set(fresh.map((r) => r.objectKey))];
}

/** Each distinct pack once; one key declared with two different manifests is refused. */
function distinctPacks(packs: PackManifest[]): PackManifest[] {
  if (!Array.isArray(packs)) throw new InvalidArgumentError('packs must be a list of pack manifests');
  const byKey = new Map<string, { manifest: PackManifest; json: string }>();
  for (const m of packs) {
    const json = JSON.stringify(m?.chunks);
    const seen = byKey.get(m?.key);
    if (seen && seen.json !== json)
      throw new InvalidArgumentError(
        `pack ${String(m.key).slice(0, 100)} is declared twice with different chunks; declare each pack once`,
      );
    if (!seen) byKey.set(m?.key, { manifest: m, json });
  }
  if (byKey.size > MAX_COMMIT_PACKS)
    throw new InvalidArgumentError(`a commit may declare at most ${MAX_COMMIT_PACKS} packs`);
  return [...byKey.values()].map((p) => p.manifest);
}

/** The bytes a manifest says its pack holds (0 for a malformed one, which verifyPack refuses). */
function manifestBytes(m: PackManifest): number {
  if (!Array.isArray(m?.chunks)) return 0;
  return m.chunks.reduce((n, c) => n + (Number.isSafeInteger(c?.size) && c.size > 0 ? c.size : 0), 0);
}

function checkBudget(max: number, bytes: number, what: string): void {
  if (bytes <= max) return;
  throw new QuotaExceededError(
    `this commit would make the server read back ${formatSize(bytes)} (${bytes} bytes) of ${what} to verify them, over the bound of ${formatSize(max)} (${max} bytes) per commit; commit in smaller parts`,
    { details: { bound: max, size: bytes } },
  );
}
