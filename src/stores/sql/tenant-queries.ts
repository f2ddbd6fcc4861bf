/**
 * @module tenant-queries
 * Tenants and their API tokens, in SQL (the MetadataOps methods of that
 * table group; see sql-metadata-store.ts for how they are composed).
 */
import { type Selectable, sql } from 'kysely';
import type { AttachmentId, TenantId, TokenId, VolumeId } from '@stowage/sdk/common/ids.js';
import type { MetadataOps, TenantPatch, TenantRecord, TokenRecord } from '../metadata-store.js';
import { type TenantsTable, type TokensTable, toNumber } from './schema.js';
import type { SqlRunner } from './sql-runner.js';
import { date, dateOrNull, ms, msOrNull } from './sql-values.js';

/** The tenant and token methods of MetadataOps over `runner`'s handle. */
export function tenantQueries(runner: SqlRunner) {
  const { db } = runner;
  const ops = {
    async insertTenant(t: TenantRecord): Promise<void> {
      await runner.run('insert a tenant', () =>
        db
          .insertInto('tenants')
          .values({ id: t.id, name: t.name, default_cap: t.defaultCap, storage_quota: t.storageQuota, uncommitted_quota: t.uncommittedQuota, created_at: ms(t.createdAt) })
          .execute(),
        `tenant "${t.name}" already exists`,
      );
    },

    async getTenant(id: TenantId): Promise<TenantRecord | undefined> {
      const row = await runner.run('read a tenant', () => db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst());
      return row && tenantFromRow(row);
    },

    async getTenantByName(name: string): Promise<TenantRecord | undefined> {
      const row = await runner.run('read a tenant', () => db.selectFrom('tenants').selectAll().where('name', '=', name).executeTakeFirst());
      return row && tenantFromRow(row);
    },

    async listTenants(): Promise<TenantRecord[]> {
      const rows = await runner.run('list tenants', () => db.selectFrom('tenants').selectAll().orderBy('name').execute());
      return rows.map(tenantFromRow);
    },

    async updateTenant(id: TenantId, patch: TenantPatch): Promise<boolean> {
      const set = {
        ...(patch.defaultCap !== undefined ? { default_cap: patch.defaultCap } : {}),
        ...(patch.storageQuota !== undefined ? { storage_quota: patch.storageQuota } : {}),
        ...(patch.uncommittedQuota !== undefined ? { uncommitted_quota: patch.uncommittedQuota } : {}),
      };
      // An empty patch still answers whether the tenant exists.
      if (Object.keys(set).length === 0) return (await ops.getTenant(id)) !== undefined;
      const r = await runner.run('update a tenant', () => db.updateTable('tenants').set(set).where('id', '=', id).executeTakeFirst());
      return r.numUpdatedRows > 0n;
    },

    async insertToken(t: TokenRecord): Promise<void> {
      await runner.run('insert a token', () =>
        db
          .insertInto('tokens')
          .values({
            id: t.id,
            tenant_id: t.tenantId,
            secret_hash: t.secretHash,
            name: t.name,
            volume_id: t.volumeId,
            read_only: t.readOnly ? 1 : 0,
            created_at: ms(t.createdAt),
            expires_at: msOrNull(t.expiresAt),
            revoked_at: msOrNull(t.revokedAt),
            attachment_id: t.attachmentId,
            parent_id: t.parentId,
          })
          .execute(),
        `token ${t.id} already exists`,
      );
    },

    async getToken(id: TokenId): Promise<TokenRecord | undefined> {
      const row = await runner.run('read a token', () => db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst());
      return row && tokenFromRow(row);
    },

    async listTokens(tenantId: TenantId): Promise<TokenRecord[]> {
      const rows = await runner.run('list tokens', () =>
        db
          .selectFrom('tokens')
          .selectAll()
          .where('tenant_id', '=', tenantId)
          .orderBy('created_at', 'desc')
          .orderBy('id', 'desc')
          .execute(),
      );
      return rows.map(tokenFromRow);
    },

    async revokeToken(id: TokenId, at: Date): Promise<boolean> {
      // COALESCE keeps the first revocation time, which makes a repeat a no-op
      // while still matching the row (so the count says the token exists).
      const r = await runner.run('revoke a token', () =>
        db
          .updateTable('tokens')
          .set({ revoked_at: sql<number>`coalesce(${sql.ref('revoked_at')}, ${ms(at)})` })
          .where('id', '=', id)
          .executeTakeFirst(),
      );
      return r.numUpdatedRows > 0n;
    },

    async setTokenExpiry(id: TokenId, expiresAt: Date | null): Promise<boolean> {
      const r = await runner.run('set a token expiry', () =>
        db.updateTable('tokens').set({ expires_at: msOrNull(expiresAt) }).where('id', '=', id).executeTakeFirst(),
      );
      return r.numUpdatedRows > 0n;
    },
  } satisfies Partial<MetadataOps>;
  return ops;
}

function tenantFromRow(r: Selectable<TenantsTable>): TenantRecord {
  return {
    id: r.id as TenantId, name: r.name, defaultCap: toNumber(r.default_cap),
    storageQuota: r.storage_quota === null ? null : toNumber(r.storage_quota),
    uncommittedQuota: r.uncommitted_quota === null ? null : toNumber(r.uncommitted_quota),
    createdAt: date(r.created_at),
  };
}

function tokenFromRow(r: Selectable<TokensTable>): TokenRecord {
  return {
    id: r.id as TokenId,
    tenantId: r.tenant_id as TenantId,
    secretHash: r.secret_hash,
    name: r.name,
    volumeId: r.volume_id as VolumeId | null,
    readOnly: toNumber(r.read_only) !== 0,
    createdAt: date(r.created_at),
    expiresAt: dateOrNull(r.expires_at),
    revokedAt: dateOrNull(r.revoked_at),
    attachmentId: r.attachment_id as AttachmentId | null,
    parentId: r.parent_id as TokenId | null,
  };
}
