/**
 * @module attachment-queries
 * Attachments (a volume mounted on a host, with its lease), in SQL.
 */
import type { Selectable } from 'kysely';
import type { AttachmentId, TenantId, TokenId, VolumeId } from '@stowage/sdk/common/ids.js';
import type { AttachmentPatch, AttachmentRecord, AttachmentState, MetadataOps } from '../metadata-store.js';
import { type AttachmentsTable, toNumber } from './schema.js';
import type { SqlRunner } from './sql-runner.js';
import { date, ms } from './sql-values.js';

/** The attachment methods of MetadataOps over `runner`'s handle. */
export function attachmentQueries(runner: SqlRunner) {
  const { db } = runner;
  return {
    async insertAttachment(a: AttachmentRecord): Promise<void> {
      await runner.run('insert an attachment', () =>
        db
          .insertInto('attachments')
          .values({
            id: a.id,
            tenant_id: a.tenantId,
            volume_id: a.volumeId,
            host: a.host,
            path: a.path,
            read_only: a.readOnly ? 1 : 0,
            state: a.state,
            reason: a.reason,
            token_id: a.tokenId,
            created_at: ms(a.createdAt),
            updated_at: ms(a.updatedAt),
            lease_expires_at: ms(a.leaseExpiresAt),
          })
          .execute(),
        `attachment ${a.id} already exists`,
      );
    },

    async getAttachment(id: AttachmentId): Promise<AttachmentRecord | undefined> {
      const row = await runner.run('read an attachment', () => db.selectFrom('attachments').selectAll().where('id', '=', id).executeTakeFirst());
      return row && attachmentFromRow(row);
    },

    async listAttachments(volumeId: VolumeId): Promise<AttachmentRecord[]> {
      const rows = await runner.run('list attachments', () =>
        db.selectFrom('attachments').selectAll().where('volume_id', '=', volumeId).orderBy('created_at').orderBy('id').execute(),
      );
      return rows.map(attachmentFromRow);
    },

    async updateAttachment(id: AttachmentId, patch: AttachmentPatch): Promise<boolean> {
      const r = await runner.run('update an attachment', () =>
        db
          .updateTable('attachments')
          .set({
            updated_at: ms(patch.updatedAt),
            ...(patch.state !== undefined && { state: patch.state }),
            ...(patch.reason !== undefined && { reason: patch.reason }),
            ...(patch.tokenId !== undefined && { token_id: patch.tokenId }),
            ...(patch.leaseExpiresAt !== undefined && { lease_expires_at: ms(patch.leaseExpiresAt) }),
          })
          .where('id', '=', id)
          .executeTakeFirst(),
      );
      return r.numUpdatedRows > 0n;
    },
  } satisfies Partial<MetadataOps>;
}

function attachmentFromRow(r: Selectable<AttachmentsTable>): AttachmentRecord {
  return {
    id: r.id as AttachmentId,
    tenantId: r.tenant_id as TenantId,
    volumeId: r.volume_id as VolumeId,
    host: r.host,
    path: r.path,
    readOnly: toNumber(r.read_only) !== 0,
    state: r.state as AttachmentState,
    reason: r.reason,
    tokenId: r.token_id as TokenId | null,
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
    leaseExpiresAt: date(r.lease_expires_at),
  };
}
