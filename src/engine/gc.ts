/**
 * @module engine/gc
 * Garbage collection, plan then execute.
 *
 * Mark: everything reachable from the roots is live (every page of a wide
 * directory included: interior nodes name the nodes below them). Roots are every volume
 * head, every snapshot, every commit younger than the retention period, and
 * every tree or chunk touched within the grace period: writers touch what
 * they create or re-use (prepareUpload, commit, fork, restore), so work still
 * in flight on any replica is a root too.
 * Sweep: trees and chunk rows that are not live and were last touched before
 * the cutoff are deleted with a conditional delete (a row touched meanwhile
 * survives), then the objects of deleted chunk rows, then objects under
 * `chunks/` that no row names and that are older than the cutoff (uploads
 * never committed). Upload keys are unique per upload, so deleting an old
 * object can never delete a fresh upload of the same content. The ownership
 * rows of deleted chunk rows go too (engine/chunk-ownership); a re-upload of
 * content someone else already stored is such an unnamed object, since the
 * first row of a hash keeps its object.
 */
import { Pacer } from '@stowage/sdk/common/concurrency.js';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import type { ChunkHash, TreeHash } from '@stowage/sdk/common/ids.js';
import { OBJECT_KEY_PREFIXES, parseObjectKey } from '../model/object-keys.js';
import type { BlobStore } from '../stores/blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { EMPTY_TREE } from './tree/tree-codec.js';
import type { TreeReader } from './tree/tree-reader.js';
import { backfillChunkOwners } from './chunk-ownership.js';
import type { EngineContext } from './context.js';
import type { GcOptions, GcReport } from './types.js';

export interface GcDeps {
  metadata: MetadataStore;
  blobs: BlobStore;
  reader: TreeReader;
}

export interface GcRun {
  now: Date;
  /** ms */
  grace: number;
  /** ms */
  retention: number;
  dryRun: boolean;
}

export interface GcPlan {
  cutoff: Date;
  retainSince: Date;
  liveTrees: Set<TreeHash>;
  liveChunks: Set<ChunkHash>;
  deadTrees: TreeHash[];
  deadChunks: ChunkHash[];
  /** Objects under chunks/ and packs/ that no chunk row names, older than the cutoff. */
  orphanObjects: Array<{ key: string; size: number }>;
  /** Object keys named by chunk rows that are not planned for deletion (a pack stays while any of its chunks lives). */
  keptObjects: Set<string>;
  /** How many objects the dead chunk rows would free. */
  deadObjectCount: number;
  deadChunkBytes: number;
}

/** Works out what is garbage, deleting nothing. */
export async function planGarbage(deps: GcDeps, run: GcRun): Promise<GcPlan> {
  const { metadata: md, reader } = deps;
  const cutoff = new Date(run.now.getTime() - run.grace);
  const retainSince = new Date(run.now.getTime() - run.retention);

  const roots = new Set<TreeHash>([
    ...(await md.listRootTrees(retainSince)),
    ...(await md.listTreesTouchedSince(cutoff)),
  ]);
  // The empty tree is implied by every empty directory and never stored as garbage.
  const liveTrees = new Set<TreeHash>([EMPTY_TREE.hash]);
  const liveChunks = new Set<ChunkHash>(await md.listChunksTouchedSince(cutoff));
  const stack = [...roots];
  const pacer = new Pacer();
  while (stack.length > 0) {
    const hash = stack.pop()!;
    if (liveTrees.has(hash)) continue;
    liveTrees.add(hash);
    const node = await reader.get(hash);
    // Every page of a wide directory is a node of its own: interior nodes keep the pages below them.
    if (node.kind === 'interior') {
      for (const c of node.children) if (!liveTrees.has(c.tree)) stack.push(c.tree);
      continue;
    }
    for (const e of node.entries) {
      if (e.type === 'dir') {
        if (!liveTrees.has(e.tree)) stack.push(e.tree);
      } else if (e.type === 'file') for (const c of e.chunks) liveChunks.add(c);
    }
    await pacer.tick();
  }

  const deadTrees = (await md.listTrees())
    .filter((t) => !liveTrees.has(t.hash) && t.touchedAt < cutoff)
    .map((t) => t.hash);
  const chunkRows = await md.listChunks();
  const named = new Set(chunkRows.map((c) => c.objectKey));
  const dead = chunkRows.filter((c) => !liveChunks.has(c.hash) && c.touchedAt < cutoff);
  const deadHashes = new Set(dead.map((c) => c.hash));
  const keptObjects = new Set(chunkRows.filter((c) => !deadHashes.has(c.hash)).map((c) => c.objectKey));
  const orphanObjects: Array<{ key: string; size: number }> = [];
  for (const prefix of OBJECT_KEY_PREFIXES) {
    for await (const obj of deps.blobs.list(prefix)) {
      if (!named.has(obj.key) && obj.lastModified < cutoff) orphanObjects.push({ key: obj.key, size: obj.size });
    }
  }
  return {
    cutoff,
    retainSince,
    liveTrees,
    liveChunks,
    deadTrees,
    orphanObjects,
    keptObjects,
    deadObjectCount: new Set(dead.filter((c) => !keptObjects.has(c.objectKey)).map((c) => c.objectKey)).size,
    deadChunks: dead.map((c) => c.hash),
    deadChunkBytes: dead.reduce((n, c) => n + c.size, 0),
  };
}

/** Deletes what the plan found, re-checking each deletion against concurrent writers. */
export async function executePlan(deps: GcDeps, run: GcRun, plan: GcPlan): Promise<GcReport> {
  const { metadata: md, blobs } = deps;
  const prunedCommits = await md.pruneCommits(plan.retainSince);
  // Expired upload reservations no longer count against any quota; this only tidies the table.
  await md.deleteExpiredUploadReservations(run.now);
  const deletedTrees = await md.deleteTrees(plan.deadTrees, plan.cutoff);
  const deletedRows = await md.deleteChunks(plan.deadChunks, plan.cutoff);
  // Ownership of content no longer stored goes with it (a row re-registered meanwhile keeps its owners).
  await md.pruneChunkOwners(deletedRows.map((r) => r.hash));
  let deletedObjects = 0;
  let deletedBytes = 0;
  // A row the conditional delete spared (touched meanwhile) keeps its object, and a pack stays while any chunk in it lives.
  const deletedHashes = new Set(deletedRows.map((r) => r.hash));
  const spared = plan.deadChunks.filter((h) => !deletedHashes.has(h));
  const kept = new Set([...plan.keptObjects, ...(await md.getChunks(spared)).map((r) => r.objectKey)]);
  const doomed = new Map<string, number>();
  for (const row of deletedRows)
    if (!kept.has(row.objectKey)) doomed.set(row.objectKey, (doomed.get(row.objectKey) ?? 0) + row.size);
  for (const [key, bytes] of doomed) {
    await blobs.delete(key);
    deletedObjects++;
    deletedBytes += bytes;
  }
  for (const obj of plan.orphanObjects) {
    // Re-check a single-chunk upload: a commit may have registered it since the plan was made.
    // (Packs need no re-check: a commit accepts only uploads younger than the upload window, always inside the grace period.)
    const issued = parseObjectKey(obj.key);
    if (issued?.kind === 'chunk') {
      const hash = issued.sha256 as ChunkHash;
      const [row] = await md.getChunks([hash]);
      if (row?.objectKey === obj.key) continue;
    }
    await blobs.delete(obj.key);
    deletedObjects++;
    deletedBytes += obj.size;
  }
  return {
    dryRun: run.dryRun,
    prunedCommits,
    liveTrees: plan.liveTrees.size,
    deletedTrees: deletedTrees.length,
    liveChunks: plan.liveChunks.size,
    deletedChunks: deletedRows.length,
    deletedObjects,
    deletedBytes,
  };
}

/** Plans and, unless dry-run, executes. */
export async function collectGarbage(deps: GcDeps, run: GcRun): Promise<GcReport> {
  const plan = await planGarbage(deps, run);
  if (!run.dryRun) return executePlan(deps, run, plan);
  return {
    dryRun: true,
    prunedCommits: 0,
    liveTrees: plan.liveTrees.size,
    deletedTrees: plan.deadTrees.length,
    liveChunks: plan.liveChunks.size,
    deletedChunks: plan.deadChunks.length,
    deletedObjects: plan.deadObjectCount + plan.orphanObjects.length,
    deletedBytes: plan.deadChunkBytes + plan.orphanObjects.reduce((n, o) => n + o.size, 0),
  };
}

/** Store upkeep an operator or a starting server runs: garbage collection and the one-time chunk-ownership backfill. */
export class GcService {
  constructor(private readonly ctx: EngineContext) {}

  async gc(opts: GcOptions = {}): Promise<GcReport> {
    const { uploadWindow } = this.ctx.settings;
    const grace = opts.grace ?? 60 * 60_000;
    if (grace < uploadWindow)
      throw new InvalidArgumentError(
        `grace (${grace} ms) must be at least the upload window (${uploadWindow} ms), or uploads in flight could be collected`,
      );
    return collectGarbage(
      { metadata: this.ctx.md, blobs: this.ctx.blobs, reader: this.ctx.reader },
      {
        now: this.ctx.now(),
        grace,
        retention: opts.retention ?? 7 * 86_400_000,
        dryRun: opts.dryRun === true,
      },
    );
  }

  /**
   * Fills the chunk-ownership index once from what existing volumes hold
   * (engine/chunk-ownership); a no-op after the first complete run. Servers
   * call it at start, before they serve commits.
   */
  async backfillChunkOwners(): Promise<number> {
    return backfillChunkOwners(this.ctx.md, this.ctx.reader, this.ctx.now());
  }
}
