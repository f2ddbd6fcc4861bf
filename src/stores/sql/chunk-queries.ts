/**
 * @module chunk-queries
 * Chunks (where the bytes of a hash live) and their owners (who may
 * reference them), in SQL.
 */
import type { Selectable } from 'kysely';
import type { ChunkHash } from '@stowage/sdk/common/ids.js';
import type { ChunkOwner, ChunkRecord, MetadataOps, OwnerScope } from '../metadata-store.js';
import { type ChunksTable, toNumber } from './schema.js';
import { BATCH, batches, unique, uniqueBy } from './sql-batches.js';
import type { SqlRunner } from './sql-runner.js';
import { date, ms } from './sql-values.js';

/** The chunk and chunk-owner methods of MetadataOps over `runner`'s handle. */
export function chunkQueries(runner: SqlRunner) {
  const { db } = runner;
  return {
    async getChunks(hashes: readonly ChunkHash[]): Promise<ChunkRecord[]> {
      const out: ChunkRecord[] = [];
      await runner.run('read chunks', async () => {
        for (const batch of batches(unique(hashes), BATCH)) {
          const rows = await db.selectFrom('chunks').selectAll().where('hash', 'in', batch).execute();
          for (const r of rows) out.push(chunkFromRow(r));
        }
      });
      return out;
    },

    async putChunks(chunks: readonly ChunkRecord[]): Promise<void> {
      // The first row for a hash wins, within a call as across calls: its bytes
      // are already stored where it says.
      const rows = uniqueBy(chunks, (c) => c.hash);
      await runner.run('store chunks', async () => {
        for (const batch of batches(rows, BATCH)) {
          await db
            .insertInto('chunks')
            .values(
              batch.map((c) => ({
                hash: c.hash,
                size: c.size,
                object_key: c.objectKey,
                offset: c.offset,
                touched_at: ms(c.touchedAt),
              })),
            )
            .onConflict((oc) => oc.column('hash').doUpdateSet((eb) => ({ touched_at: eb.ref('excluded.touched_at') })))
            .execute();
        }
      });
    },

    async touchChunks(hashes: readonly ChunkHash[], now: Date): Promise<ChunkHash[]> {
      const touchedAt = ms(now);
      const found: ChunkHash[] = [];
      await runner.run('touch chunks', async () => {
        for (const batch of batches(unique(hashes), BATCH)) {
          const rows = await db
            .updateTable('chunks')
            .set({ touched_at: touchedAt })
            .where('hash', 'in', batch)
            .returning('hash')
            .execute();
          for (const r of rows) found.push(r.hash as ChunkHash);
        }
      });
      return found;
    },

    async listChunksTouchedSince(since: Date): Promise<ChunkHash[]> {
      const rows = await runner.run('list chunks', () =>
        db.selectFrom('chunks').select('hash').where('touched_at', '>=', ms(since)).execute(),
      );
      return rows.map((r) => r.hash as ChunkHash);
    },

    async listChunks(): Promise<ChunkRecord[]> {
      const rows = await runner.run('list chunks', () => db.selectFrom('chunks').selectAll().execute());
      return rows.map(chunkFromRow);
    },

    async deleteChunks(hashes: readonly ChunkHash[], touchedBefore: Date): Promise<ChunkRecord[]> {
      const cutoff = ms(touchedBefore);
      const deleted: ChunkRecord[] = [];
      await runner.run('delete chunks', async () => {
        for (const batch of batches(unique(hashes), BATCH)) {
          const rows = await db
            .deleteFrom('chunks')
            .where('hash', 'in', batch)
            .where('touched_at', '<', cutoff)
            .returningAll()
            .execute();
          for (const r of rows) deleted.push(chunkFromRow(r));
        }
      });
      return deleted;
    },

    async addChunkOwners(owners: readonly ChunkOwner[], hashes: readonly ChunkHash[], at: Date): Promise<void> {
      const since = ms(at);
      const rows = unique(owners).flatMap((owner) => unique(hashes).map((hash) => ({ owner, hash, since })));
      await runner.run('record chunk owners', async () => {
        for (const batch of batches(rows, BATCH)) {
          await db.insertInto('chunk_owners').values(batch).onConflict((oc) => oc.columns(['owner', 'hash']).doNothing()).execute();
        }
      });
    },

    async ownedChunks(scopes: readonly OwnerScope[], hashes: readonly ChunkHash[]): Promise<ChunkHash[]> {
      const found = new Set<ChunkHash>();
      const scopeBatches = [...batches(uniqueBy(scopes, (s) => `${s.owner}@${s.until?.getTime() ?? ''}`), 100)];
      await runner.run('read chunk owners', async () => {
        for (const hashBatch of batches(unique(hashes), BATCH)) {
          for (const scopeBatch of scopeBatches) {
            const rows = await db
              .selectFrom('chunk_owners')
              .select('hash')
              .distinct()
              .where('hash', 'in', hashBatch)
              .where((eb) => eb.or(scopeBatch.map((s) => (s.until === undefined
                ? eb('owner', '=', s.owner)
                : eb.and([eb('owner', '=', s.owner), eb('since', '<=', ms(s.until))])))))
              .execute();
            for (const r of rows) found.add(r.hash as ChunkHash);
          }
        }
      });
      return [...found];
    },

    async pruneChunkOwners(hashes: readonly ChunkHash[]): Promise<number> {
      let deleted = 0;
      await runner.run('prune chunk owners', async () => {
        for (const batch of batches(unique(hashes), BATCH)) {
          // One statement: a chunk row inserted meanwhile keeps its owners.
          const r = await db
            .deleteFrom('chunk_owners')
            .where('hash', 'in', batch)
            .where('hash', 'not in', (eb) => eb.selectFrom('chunks').select('hash').where('hash', 'in', batch))
            .executeTakeFirst();
          deleted += Number(r.numDeletedRows);
        }
      });
      return deleted;
    },
  } satisfies Partial<MetadataOps>;
}

function chunkFromRow(r: Selectable<ChunksTable>): ChunkRecord {
  return {
    hash: r.hash as ChunkHash,
    size: toNumber(r.size),
    objectKey: r.object_key,
    offset: toNumber(r.offset),
    touchedAt: date(r.touched_at),
  };
}
