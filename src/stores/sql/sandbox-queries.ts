/**
 * @module sandbox-queries
 * Sandboxes (the control plane's records of them), in SQL. The image, the
 * volumes and the environment are JSON text; CPU is kept in thousandths of a
 * core so that both engines store it as an integer.
 */
import type { Selectable } from 'kysely';
import type { AttachmentId, SandboxId, TenantId, VolumeId } from '@stowage/sdk/common/ids.js';
import type { MetadataOps, SandboxPatch, SandboxRecord, SandboxStatus } from '../metadata-store.js';
import { type SandboxesTable, toNumber } from './schema.js';
import type { SqlRunner } from './sql-runner.js';
import { date, dateOrNull, ms } from './sql-values.js';

/** Statuses of a sandbox that still holds resources. */
const LIVE: readonly SandboxStatus[] = ['starting', 'running'];

/** The sandbox methods of MetadataOps over `runner`'s handle. */
export function sandboxQueries(runner: SqlRunner) {
  const { db } = runner;
  return {
    async insertSandbox(s: SandboxRecord): Promise<void> {
      await runner.run(
        'insert a sandbox',
        () =>
          db
            .insertInto('sandboxes')
            .values({
              id: s.id,
              tenant_id: s.tenantId,
              status: s.status,
              reason: s.reason,
              image: JSON.stringify(s.image),
              volumes: JSON.stringify(s.volumes),
              cpu_millis: Math.round(s.cpu * 1000),
              memory_mib: s.memoryMib,
              disk_gib: s.diskGib,
              env: JSON.stringify(s.env),
              timeout_seconds: s.timeout,
              host: s.host,
              created_at: ms(s.createdAt),
              expires_at: ms(s.expiresAt),
              ended_at: s.endedAt === null ? null : ms(s.endedAt),
            })
            .execute(),
        `sandbox ${s.id} already exists`,
      );
    },

    async getSandbox(tenantId: TenantId, id: SandboxId): Promise<SandboxRecord | undefined> {
      const row = await runner.run('read a sandbox', () =>
        db
          .selectFrom('sandboxes')
          .selectAll()
          .where('id', '=', id)
          .where('tenant_id', '=', tenantId)
          .executeTakeFirst(),
      );
      return row && sandboxFromRow(row);
    },

    async listSandboxes(tenantId: TenantId, opts: { live?: boolean } = {}): Promise<SandboxRecord[]> {
      const rows = await runner.run('list sandboxes', () => {
        let q = db.selectFrom('sandboxes').selectAll().where('tenant_id', '=', tenantId);
        if (opts.live === true) q = q.where('status', 'in', [...LIVE]);
        return q.orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
      });
      return rows.map(sandboxFromRow);
    },

    async listLiveSandboxesOnHost(host: string): Promise<SandboxRecord[]> {
      const rows = await runner.run('list the live sandboxes of a host', () =>
        db
          .selectFrom('sandboxes')
          .selectAll()
          .where('host', '=', host)
          .where('status', 'in', [...LIVE])
          .orderBy('created_at')
          .orderBy('id')
          .execute(),
      );
      return rows.map(sandboxFromRow);
    },

    async updateSandbox(id: SandboxId, patch: SandboxPatch): Promise<boolean> {
      const r = await runner.run('update a sandbox', () => {
        let q = db
          .updateTable('sandboxes')
          .set({
            status: patch.status,
            ...(patch.reason !== undefined && { reason: patch.reason }),
            ...(patch.endedAt !== undefined && { ended_at: patch.endedAt === null ? null : ms(patch.endedAt) }),
            ...(patch.volumes !== undefined && { volumes: JSON.stringify(patch.volumes) }),
          })
          .where('id', '=', id);
        if (patch.from !== undefined) q = q.where('status', 'in', [...patch.from]);
        return q.executeTakeFirst();
      });
      return r.numUpdatedRows > 0n;
    },
  } satisfies Partial<MetadataOps>;
}

function sandboxFromRow(r: Selectable<SandboxesTable>): SandboxRecord {
  const volumes = JSON.parse(r.volumes) as Array<SandboxRecord['volumes'][number]>;
  return {
    id: r.id as SandboxId,
    tenantId: r.tenant_id as TenantId,
    status: r.status as SandboxStatus,
    reason: r.reason,
    image: JSON.parse(r.image) as SandboxRecord['image'],
    volumes: volumes.map((v) => ({
      path: v.path,
      volume: v.volume,
      volumeId: v.volumeId as VolumeId,
      readOnly: v.readOnly,
      subpath: v.subpath,
      attachmentId: v.attachmentId as AttachmentId,
    })),
    cpu: toNumber(r.cpu_millis) / 1000,
    memoryMib: toNumber(r.memory_mib),
    diskGib: toNumber(r.disk_gib),
    env: JSON.parse(r.env) as Record<string, string>,
    timeout: toNumber(r.timeout_seconds),
    host: r.host,
    createdAt: date(r.created_at),
    expiresAt: date(r.expires_at),
    endedAt: dateOrNull(r.ended_at),
  };
}
