/**
 * @module volume-queries
 * Volumes and their snapshots, in SQL: the head moves by one conditional
 * UPDATE (compare-and-swap), and a volume goes with its snapshots and commits.
 */
import type { Selectable } from 'kysely';
import type { CommitId, SnapshotId, TenantId, VolumeId } from '@stowage/sdk/common/ids.js';
import type { AccessMode, MetadataOps, MountTuning, SnapshotRecord, VolumeHeadUpdate, VolumePatch, VolumeRecord } from '../metadata-store.js';
import { type SnapshotsTable, toNumber, type VolumesTable } from './schema.js';
import type { SqlRunner } from './sql-runner.js';
import { date, ms } from './sql-values.js';

/** The volume and snapshot methods of MetadataOps over `runner`'s handle. */
export function volumeQueries(runner: SqlRunner) {
  const { db } = runner;
  return {
    async insertVolume(v: VolumeRecord): Promise<void> {
      await runner.run('insert a volume', () =>
        db
          .insertInto('volumes')
          .values({
            id: v.id,
            tenant_id: v.tenantId,
            name: v.name,
            access_mode: v.accessMode,
            cap: v.cap,
            tuning: JSON.stringify(v.tuning),
            head: v.head,
            size: v.size,
            file_count: v.fileCount,
            created_at: ms(v.createdAt),
            updated_at: ms(v.updatedAt),
            ancestors: v.ancestors.length > 0 ? JSON.stringify(v.ancestors.map((a) => ({ volumeId: a.volumeId, until: ms(a.until) }))) : null,
          })
          .execute(),
        `volume "${v.name}" already exists`,
      );
    },

    async getVolume(id: VolumeId): Promise<VolumeRecord | undefined> {
      const row = await runner.run('read a volume', () => db.selectFrom('volumes').selectAll().where('id', '=', id).executeTakeFirst());
      return row && volumeFromRow(row);
    },

    async getVolumeByName(tenantId: TenantId, name: string): Promise<VolumeRecord | undefined> {
      const row = await runner.run('read a volume', () =>
        db.selectFrom('volumes').selectAll().where('tenant_id', '=', tenantId).where('name', '=', name).executeTakeFirst(),
      );
      return row && volumeFromRow(row);
    },

    async listVolumes(tenantId: TenantId): Promise<VolumeRecord[]> {
      const rows = await runner.run('list volumes', () =>
        db.selectFrom('volumes').selectAll().where('tenant_id', '=', tenantId).orderBy('name').execute(),
      );
      return rows.map(volumeFromRow);
    },

    async listAllVolumes(): Promise<VolumeRecord[]> {
      const rows = await runner.run('list volumes', () =>
        db.selectFrom('volumes').selectAll().orderBy('tenant_id').orderBy('name').execute(),
      );
      return rows.map(volumeFromRow);
    },

    async updateVolume(id: VolumeId, patch: VolumePatch): Promise<boolean> {
      const r = await runner.run('update a volume', () =>
        db
          .updateTable('volumes')
          .set({
            updated_at: ms(patch.updatedAt),
            ...(patch.cap !== undefined && { cap: patch.cap }),
            ...(patch.accessMode !== undefined && { access_mode: patch.accessMode }),
            ...(patch.tuning !== undefined && { tuning: JSON.stringify(patch.tuning) }),
          })
          .where('id', '=', id)
          .executeTakeFirst(),
      );
      return r.numUpdatedRows > 0n;
    },

    async casHead(id: VolumeId, expected: CommitId, next: VolumeHeadUpdate): Promise<boolean> {
      // One conditional UPDATE is atomic in every SQL engine: of any number of
      // callers holding the same `expected`, exactly one matches the row.
      const r = await runner.run('move a volume head', () =>
        db
          .updateTable('volumes')
          .set({ head: next.head, size: next.size, file_count: next.fileCount, updated_at: ms(next.updatedAt) })
          .where('id', '=', id)
          .where('head', '=', expected)
          .executeTakeFirst(),
      );
      return r.numUpdatedRows > 0n;
    },

    async deleteVolume(id: VolumeId): Promise<boolean> {
      return runner.run('delete a volume', () =>
        runner.atomically(async (db) => {
          const gone = await db.deleteFrom('volumes').where('id', '=', id).executeTakeFirst();
          if (gone.numDeletedRows === 0n) return false;
          await db.deleteFrom('snapshots').where('volume_id', '=', id).execute();
          await db.deleteFrom('commits').where('volume_id', '=', id).execute();
          return true;
        }),
      );
    },

    async insertSnapshot(s: SnapshotRecord): Promise<void> {
      await runner.run('insert a snapshot', () =>
        db
          .insertInto('snapshots')
          .values({ id: s.id, volume_id: s.volumeId, name: s.name, commit_id: s.commitId, created_at: ms(s.createdAt) })
          .execute(),
        `snapshot "${s.name}" already exists`,
      );
    },

    async getSnapshot(volumeId: VolumeId, name: string): Promise<SnapshotRecord | undefined> {
      const row = await runner.run('read a snapshot', () =>
        db.selectFrom('snapshots').selectAll().where('volume_id', '=', volumeId).where('name', '=', name).executeTakeFirst(),
      );
      return row && snapshotFromRow(row);
    },

    async listSnapshots(volumeId: VolumeId): Promise<SnapshotRecord[]> {
      const rows = await runner.run('list snapshots', () =>
        db.selectFrom('snapshots').selectAll().where('volume_id', '=', volumeId).orderBy('created_at').orderBy('name').execute(),
      );
      return rows.map(snapshotFromRow);
    },

    async deleteSnapshot(volumeId: VolumeId, name: string): Promise<boolean> {
      const r = await runner.run('delete a snapshot', () =>
        db.deleteFrom('snapshots').where('volume_id', '=', volumeId).where('name', '=', name).executeTakeFirst(),
      );
      return r.numDeletedRows > 0n;
    },
  } satisfies Partial<MetadataOps>;
}

function volumeFromRow(r: Selectable<VolumesTable>): VolumeRecord {
  return {
    id: r.id as VolumeId,
    tenantId: r.tenant_id as TenantId,
    name: r.name,
    accessMode: r.access_mode as AccessMode,
    cap: toNumber(r.cap),
    tuning: JSON.parse(r.tuning) as MountTuning,
    head: r.head as CommitId,
    size: toNumber(r.size),
    fileCount: toNumber(r.file_count),
    createdAt: date(r.created_at),
    updatedAt: date(r.updated_at),
    ancestors: r.ancestors === null ? [] : (JSON.parse(r.ancestors) as Array<{ volumeId: string; until: number }>).map((a) => ({ volumeId: a.volumeId as VolumeId, until: new Date(a.until) })),
  };
}

function snapshotFromRow(r: Selectable<SnapshotsTable>): SnapshotRecord {
  return {
    id: r.id as SnapshotId,
    volumeId: r.volume_id as VolumeId,
    name: r.name,
    commitId: r.commit_id as CommitId,
    createdAt: date(r.created_at),
  };
}
