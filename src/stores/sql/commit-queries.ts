/**
 * @module commit-queries
 * Commits and the trees they point at, in SQL, with what garbage collection
 * asks of them (commits to prune, root trees to keep, trees by touch time).
 */
import type { Selectable } from 'kysely';
import type { CommitId, TreeHash, VolumeId } from '@stowage/sdk/common/ids.js';
import type { CommitRecord, CommitSummary, MetadataOps, TreeRecord } from '../metadata-store.js';
import { type CommitsTable, toNumber } from './schema.js';
import { BATCH, batches, batchesBySize, unique, uniqueBy } from './sql-batches.js';
import type { SqlRunner } from './sql-runner.js';
import { date, ms, toBuffer, toUint8Array } from './sql-values.js';

/** Most tree bytes per insert statement, so a batch of large trees stays a reasonable message. */
const TREE_BATCH_BYTES = 16 * 1024 * 1024;

/** The commit and tree methods of MetadataOps over `runner`'s handle. */
export function commitQueries(runner: SqlRunner) {
  const { db } = runner;
  return {
    async insertCommit(c: CommitRecord): Promise<void> {
      await runner.run('insert a commit', () =>
        db
          .insertInto('commits')
          .values({
            id: c.id,
            volume_id: c.volumeId,
            seq: c.seq,
            parent: c.parent,
            tree: c.tree,
            message: c.message,
            author: c.author,
            size: c.size,
            file_count: c.fileCount,
            summary: JSON.stringify(c.summary),
            created_at: ms(c.createdAt),
          })
          // Commit ids are content hashes: the same id is the same commit.
          .onConflict((oc) => oc.column('id').doNothing())
          .execute(),
      );
    },

    async getCommit(id: CommitId): Promise<CommitRecord | undefined> {
      const row = await runner.run('read a commit', () => db.selectFrom('commits').selectAll().where('id', '=', id).executeTakeFirst());
      return row && commitFromRow(row);
    },

    async listCommits(volumeId: VolumeId, opts: { limit: number; beforeSeq?: number }): Promise<CommitRecord[]> {
      const rows = await runner.run('list commits', () => {
        let q = db.selectFrom('commits').selectAll().where('volume_id', '=', volumeId);
        if (opts.beforeSeq !== undefined) q = q.where('seq', '<', opts.beforeSeq);
        return q.orderBy('seq', 'desc').limit(opts.limit).execute();
      });
      return rows.map(commitFromRow);
    },

    async pruneCommits(before: Date): Promise<number> {
      const r = await runner.run('prune commits', () =>
        db
          .deleteFrom('commits')
          .where('created_at', '<', ms(before))
          .where('id', 'not in', db.selectFrom('volumes').select('head'))
          .where('id', 'not in', db.selectFrom('snapshots').select('commit_id'))
          .executeTakeFirst(),
      );
      return Number(r.numDeletedRows);
    },

    async listRootTrees(retainSince: Date): Promise<TreeHash[]> {
      const rows = await runner.run('list root trees', () => {
        const heads = db.selectFrom('volumes').innerJoin('commits', 'commits.id', 'volumes.head').select('commits.tree as tree');
        const snapshots = db
          .selectFrom('snapshots')
          .innerJoin('commits', 'commits.id', 'snapshots.commit_id')
          .select('commits.tree as tree');
        const recent = db.selectFrom('commits').select('tree').where('created_at', '>=', ms(retainSince));
        // UNION (not UNION ALL) deduplicates.
        return heads.union(snapshots).union(recent).execute();
      });
      return rows.map((r) => r.tree as TreeHash);
    },

    async putTrees(trees: readonly TreeRecord[], now: Date): Promise<void> {
      const touchedAt = ms(now);
      // PostgreSQL refuses an upsert that hits the same row twice in one statement.
      const unique = uniqueBy(trees, (t) => t.hash);
      await runner.run('store trees', async () => {
        for (const batch of batchesBySize(unique, BATCH, TREE_BATCH_BYTES, (t) => t.data.byteLength)) {
          await db
            .insertInto('trees')
            .values(batch.map((t) => ({ hash: t.hash, data: toBuffer(t.data), touched_at: touchedAt })))
            .onConflict((oc) => oc.column('hash').doUpdateSet({ touched_at: touchedAt }))
            .execute();
        }
      });
    },

    async getTree(hash: TreeHash): Promise<Uint8Array | undefined> {
      const row = await runner.run('read a tree', () => db.selectFrom('trees').select('data').where('hash', '=', hash).executeTakeFirst());
      return row && toUint8Array(row.data);
    },

    async touchTrees(hashes: readonly TreeHash[], now: Date): Promise<void> {
      const touchedAt = ms(now);
      await runner.run('touch trees', async () => {
        for (const batch of batches(unique(hashes), BATCH)) {
          await db.updateTable('trees').set({ touched_at: touchedAt }).where('hash', 'in', batch).execute();
        }
      });
    },

    async listTreesTouchedSince(since: Date): Promise<TreeHash[]> {
      const rows = await runner.run('list trees', () =>
        db.selectFrom('trees').select('hash').where('touched_at', '>=', ms(since)).execute(),
      );
      return rows.map((r) => r.hash as TreeHash);
    },

    async listTrees(): Promise<Array<{ hash: TreeHash; touchedAt: Date }>> {
      const rows = await runner.run('list trees', () => db.selectFrom('trees').select(['hash', 'touched_at']).execute());
      return rows.map((r) => ({ hash: r.hash as TreeHash, touchedAt: date(r.touched_at) }));
    },

    async deleteTrees(hashes: readonly TreeHash[], touchedBefore: Date): Promise<TreeHash[]> {
      const cutoff = ms(touchedBefore);
      const deleted: TreeHash[] = [];
      await runner.run('delete trees', async () => {
        for (const batch of batches(unique(hashes), BATCH)) {
          const rows = await db
            .deleteFrom('trees')
            .where('hash', 'in', batch)
            .where('touched_at', '<', cutoff)
            .returning('hash')
            .execute();
          for (const r of rows) deleted.push(r.hash as TreeHash);
        }
      });
      return deleted;
    },
  } satisfies Partial<MetadataOps>;
}

function commitFromRow(r: Selectable<CommitsTable>): CommitRecord {
  return {
    id: r.id as CommitId,
    volumeId: r.volume_id as VolumeId,
    seq: toNumber(r.seq),
    parent: r.parent as CommitId | null,
    tree: r.tree as TreeHash,
    message: r.message,
    author: r.author,
    size: toNumber(r.size),
    fileCount: toNumber(r.file_count),
    summary: JSON.parse(r.summary) as CommitSummary,
    createdAt: date(r.created_at),
  };
}
