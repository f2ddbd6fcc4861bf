/**
 * @module engine/chunk-ownership
 * Storage is shared, knowledge is not (SPEC section 1): identical content is
 * stored once across tenants, but a tenant may reference a chunk only if it
 * owns it, and "is this chunk stored?" is answered only about its own chunks.
 * Otherwise a chunk hash would be a read key: anyone who learned the SHA-256
 * of someone's file (for a file under 8 MiB it is the file's own hash, often
 * public) could commit it into a volume of theirs and read the bytes.
 *
 * Vocabulary:
 * - owner: a tenant id or a volume id, rows of the metadata store's ownership
 *   index (so the answer holds across replicas).
 * - scope: the owners whose chunks an actor may reference. A tenant token's
 *   scope is its tenant; a volume-scoped token's scope is its volume and the
 *   volumes it was forked from, for what they owned up to the fork (recorded
 *   on the volume at fork time, so a fork stays O(1) and keeps owning after
 *   its source is deleted; owner rows carry the time they were first added).
 * - a commit records every chunk it references as owned by the tenant and
 *   the volume, once the chunk is owned or proven (uploaded and verified in
 *   that commit); the server's own writes own what they hash.
 *
 * Installations older than the index get it filled once from what their
 * volumes already hold ({@link backfillChunkOwners}).
 */
import type { ChunkHash, TreeHash } from '@stowage/sdk/common/ids.js';
import type { MetadataStore, OwnerScope } from '../stores/metadata-store.js';
import type { ChunkOwner, VolumeRecord } from '@stowage/sdk/model/records.js';
import type { TreeReader } from './tree/tree-reader.js';
import type { Actor } from './types.js';

/** Setting key that marks the one-time backfill of the ownership index as done. */
export const CHUNK_OWNERS_BACKFILLED = 'chunk-owners-backfilled';

/**
 * The owners whose chunks `actor` may reference when writing `vol` (vol is
 * the actor's own volume for a scoped token): a source volume counts only
 * for what it owned when the fork was made, not for what it gained since.
 */
export function scopeOf(actor: Actor, vol: VolumeRecord): OwnerScope[] {
  if (!actor.volumeId) return [{ owner: actor.tenantId }];
  return [{ owner: vol.id }, ...vol.ancestors.map((a) => ({ owner: a.volumeId, until: a.until }))];
}

/** The owners a chunk referenced by a commit of `vol` is recorded under: its tenant and the volume. */
export function holdersOf(vol: VolumeRecord): ChunkOwner[] {
  return [vol.tenantId, vol.id];
}

/**
 * Records, once per installation, that every volume owns (with its tenant)
 * the chunks its head, snapshots and kept commits hold, so that existing
 * mounts keep committing after an upgrade. Runs again (idempotently) if a
 * previous run stopped midway; concurrent runs on several replicas are
 * harmless. Returns the number of volumes walked, or 0 when it had been done.
 *
 * @example
 * await backfillChunkOwners(metadata, new TreeReader(metadata));
 */
export async function backfillChunkOwners(md: MetadataStore, reader: TreeReader, now: Date): Promise<number> {
  if ((await md.getSetting(CHUNK_OWNERS_BACKFILLED)) !== undefined) return 0;
  const volumes = await md.listAllVolumes();
  for (const vol of volumes) {
    const roots = new Set<TreeHash>();
    for (let before: number | undefined; ; ) {
      const page = await md.listCommits(vol.id, {
        limit: 1000,
        ...(before !== undefined ? { beforeSeq: before } : {}),
      });
      for (const c of page) roots.add(c.tree);
      if (page.length < 1000) break;
      before = page.at(-1)!.seq;
    }
    for (const s of await md.listSnapshots(vol.id)) {
      const c = await md.getCommit(s.commitId);
      if (c) roots.add(c.tree);
    }
    // Trees are shared between a volume's commits: each is read once.
    const seen = new Set<TreeHash>();
    let pending: ChunkHash[] = [];
    const stack = [...roots];
    while (stack.length > 0) {
      const hash = stack.pop()!;
      if (seen.has(hash)) continue;
      seen.add(hash);
      const tree = await reader.get(hash).catch(() => undefined); // a tree GC already took is nothing to own
      // A wide directory's interior nodes name its pages; the pages hold the entries.
      if (tree?.kind === 'interior') {
        for (const c of tree.children) stack.push(c.tree);
        continue;
      }
      for (const e of tree?.entries ?? []) {
        if (e.type === 'dir') stack.push(e.tree);
        else if (e.type === 'file') pending.push(...e.chunks);
      }
      if (pending.length >= 5000) {
        await md.addChunkOwners(holdersOf(vol), pending, now);
        pending = [];
      }
    }
    await md.addChunkOwners(holdersOf(vol), pending, now);
  }
  await md.putSettingIfAbsent(CHUNK_OWNERS_BACKFILLED, now.toISOString());
  return volumes.length;
}
