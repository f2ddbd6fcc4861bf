/**
 * @module engine/gc
 * Garbage collection, plan then execute.
 *
 * Mark: everything reachable from the roots is live. Roots are every volume
 * head, every snapshot, every commit younger than the retention period, and
 * every tree or chunk touched within the grace period: writers touch what
 * they create or re-use (prepareUpload, commit, fork, restore), so work still
 * in flight on any replica is a root too.
 * Sweep: trees and chunk rows that are not live and were last touched before
 * the cutoff are deleted with a conditional delete (a row touched meanwhile
 * survives), then the objects of deleted chunk rows, then objects under
 * `chunks/` that no row names and that are older than the cutoff (uploads
 * never committed). Upload keys are unique per upload, so deleting an old
 * object can never delete a fresh upload of the same content.
 */
import type { ChunkHash, TreeHash } from '../common/ids.js';
import type { BlobStore } from '../stores/blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { EMPTY_TREE } from './tree-codec.js';
import type { TreeReader } from './tree-reader.js';
import type { GcReport } from './types.js';

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
  /** Objects under chunks/ that no chunk row names, older than the cutoff. */
  orphanObjects: Array<{ key: string; size: number }>;
  deadChunkBytes: number;
}

/** Works out what is garbage, deleting nothing. */
export async function planGarbage(deps: GcDeps, run: GcRun): Promise<GcPlan> {
  const { metadata: md, reader } = deps;
  const cutoff = new Date(run.now.getTime() - run.grace);
  const retainSince = new Date(run.now.getTime() - run.retention);

  const roots = new Set<TreeHash>([...(await md.listRootTrees(retainSince)), ...(await md.listTreesTouchedSince(cutoff))]);
  // The empty tree is implied by every empty directory and never stored as garbage.
  const liveTrees = new Set<TreeHash>([EMPTY_TREE.hash]);
  const liveChunks = new Set<ChunkHash>(await md.listChunksTouchedSince(cutoff));
  const stack = [...roots];
  while (stack.length > 0) {
    const hash = stack.pop()!;
    if (liveTrees.has(hash)) continue;
    liveTrees.add(hash);
    const tree = await reader.get(hash);
    for (const e of tree.entries) {
      if (e.type === 'dir') { if (!liveTrees.has(e.tree)) stack.push(e.tree); }
      else if (e.type === 'file') for (const c of e.chunks) liveChunks.add(c);
    }
  }

  const deadTrees = (await md.listTrees()).filter((t) => !liveTrees.has(t.hash) && t.touchedAt < cutoff).map((t) => t.hash);
  const chunkRows = await md.listChunks();
  const named = new Set(chunkRows.map((c) => c.objectKey));
  const dead = chunkRows.filter((c) => !liveChunks.has(c.hash) && c.touchedAt < cutoff);
  const orphanObjects: Array<{ key: string; size: number }> = [];
  for await (const obj of deps.blobs.list('chunks/')) {
    if (!named.has(obj.key) && obj.lastModified < cutoff) orphanObjects.push({ key: obj.key, size: obj.size });
  }
  return {
    cutoff, retainSince, liveTrees, liveChunks, deadTrees, orphanObjects,
    deadChunks: dead.map((c) => c.hash), deadChunkBytes: dead.reduce((n, c) => n + c.size, 0),
  };
}

/** Deletes what the plan found, re-checking each deletion against concurrent writers. */
export async function executePlan(deps: GcDeps, run: GcRun, plan: GcPlan): Promise<GcReport> {
  const { metadata: md, blobs } = deps;
  const prunedCommits = await md.pruneCommits(plan.retainSince);
  const deletedTrees = await md.deleteTrees(plan.deadTrees, plan.cutoff);
  const deletedRows = await md.deleteChunks(plan.deadChunks, plan.cutoff);
  let deletedObjects = 0;
  let deletedBytes = 0;
  for (const row of deletedRows) {
    await blobs.delete(row.objectKey);
    deletedObjects++;
    deletedBytes += row.size;
  }
  for (const obj of plan.orphanObjects) {
    // Re-check: a commit may have registered this upload since the plan was made.
    const hash = obj.key.slice(obj.key.lastIndexOf('/') + 1, obj.key.lastIndexOf('-')) as ChunkHash;
    const [row] = await md.getChunks([hash]);
    if (row?.objectKey === obj.key) continue;
    await blobs.delete(obj.key);
    deletedObjects++;
    deletedBytes += obj.size;
  }
  return {
    dryRun: run.dryRun, prunedCommits, liveTrees: plan.liveTrees.size, deletedTrees: deletedTrees.length,
    liveChunks: plan.liveChunks.size, deletedChunks: deletedRows.length, deletedObjects, deletedBytes,
  };
}

/** Plans and, unless dry-run, executes. */
export async function collectGarbage(deps: GcDeps, run: GcRun): Promise<GcReport> {
  const plan = await planGarbage(deps, run);
  if (!run.dryRun) return executePlan(deps, run, plan);
  return {
    dryRun: true, prunedCommits: 0, liveTrees: plan.liveTrees.size, deletedTrees: plan.deadTrees.length,
    liveChunks: plan.liveChunks.size, deletedChunks: plan.deadChunks.length,
    deletedObjects: plan.deadChunks.length + plan.orphanObjects.length,
    deletedBytes: plan.deadChunkBytes + plan.orphanObjects.reduce((n, o) => n + o.size, 0),
  };
}
