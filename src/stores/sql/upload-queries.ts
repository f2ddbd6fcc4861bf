/**
 * @module upload-queries
 * Upload reservations (bytes a tenant was allowed to upload that no commit
 * has taken in yet), in SQL: what the uncommitted quota counts.
 */
import type { TenantId, VolumeId } from '@stowage/sdk/common/ids.js';
import type { MetadataOps, UploadReservation } from '../metadata-store.js';
import { toNumber } from './schema.js';
import { BATCH, batches, unique, uniqueBy } from './sql-batches.js';
import type { SqlRunner } from './sql-runner.js';
import { ms } from './sql-values.js';

/** The upload-reservation methods of MetadataOps over `runner`'s handle. */
export function uploadQueries(runner: SqlRunner) {
  const { db } = runner;
  return {
    async insertUploadReservations(rs: readonly UploadReservation[]): Promise<void> {
      await runner.run('reserve upload bytes', async () => {
        for (const batch of batches(uniqueBy(rs, (r) => r.key), BATCH)) {
          await db
            .insertInto('upload_reservations')
            .values(batch.map((r) => ({ key: r.key, tenant_id: r.tenantId, volume_id: r.volumeId, bytes: r.bytes, expires_at: ms(r.expiresAt) })))
            .onConflict((oc) => oc.column('key').doNothing())
            .execute();
        }
      });
    },

    async pendingUploadBytes(tenantId: TenantId, now: Date): Promise<number> {
      const row = await runner.run('sum upload reservations', () =>
        db
          .selectFrom('upload_reservations')
          .select((eb) => eb.fn.sum<number | string | null>('bytes').as('total'))
          .where('tenant_id', '=', tenantId)
          .where('expires_at', '>', ms(now))
          .executeTakeFirst(),
      );
      return row?.total == null ? 0 : toNumber(row.total);
    },

    async releaseUploadReservations(tenantId: TenantId, keys: readonly string[]): Promise<number> {
      let released = 0;
      await runner.run('release upload reservations', async () => {
        for (const batch of batches(unique(keys), BATCH)) {
          const r = await db.updateTable('upload_reservations').set({ bytes: 0 })
            .where('tenant_id', '=', tenantId).where('key', 'in', batch).where('bytes', '>', 0).executeTakeFirst();
          released += Number(r.numUpdatedRows);
        }
      });
      return released;
    },

    async issuedUploadKeys(tenantId: TenantId, volumeId: VolumeId, keys: readonly string[], now: Date): Promise<string[]> {
      const out: string[] = [];
      await runner.run('look up issued upload keys', async () => {
        for (const batch of batches(unique(keys), BATCH)) {
          const rows = await db.selectFrom('upload_reservations').select('key')
            .where('tenant_id', '=', tenantId).where('volume_id', '=', volumeId).where('key', 'in', batch).where('expires_at', '>', ms(now))
            .execute();
          out.push(...rows.map((r) => r.key));
        }
      });
      return out;
    },

    async deleteExpiredUploadReservations(now: Date): Promise<number> {
      const r = await runner.run('delete expired upload reservations', () =>
        db.deleteFrom('upload_reservations').where('expires_at', '<=', ms(now)).executeTakeFirst(),
      );
      return Number(r.numDeletedRows);
    },
  } satisfies Partial<MetadataOps>;
}
