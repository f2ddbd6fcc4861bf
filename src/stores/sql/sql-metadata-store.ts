/**
 * @module sql-metadata-store
 * The one SQL implementation of MetadataStore, over Kysely, for SQLite and
 * PostgreSQL alike (the JuiceFS way: one body of queries, a dialect file per
 * engine that only opens connections and classifies errors). Nothing here
 * may depend on the engine behind `db`; what differs is asked of a small
 * {@link SqlDialectInfo}.
 *
 * Conventions (see schema.ts): times are epoch milliseconds, booleans 0/1,
 * JSON as text. Lists of hashes are split into batches of {@link BATCH}
 * so that a 100,000-hash call stays under SQLite's bound-variable limit and
 * PostgreSQL's parameter limit. Outside a transaction each batch commits on
 * its own; that is safe because every batched write is idempotent, so a call
 * that fails midway is repaired by repeating it.
 *
 * Errors: unique violations become AlreadyExistsError with a message naming
 * the record; errors the dialect calls "unavailable" (connection lost, locked,
 * disk full) become UnavailableError; everything else InternalError. Errors
 * thrown by the function given to `transaction` pass through untouched.
 */
import { retry, type RetryPolicy } from '@stowage/sdk/common/retry.js';
import { sql, type Kysely, type Selectable } from 'kysely';
import { AlreadyExistsError, InsufficientStorageError, InternalError, UnavailableError, isStowageError } from '@stowage/sdk/common/errors.js';
import type { AttachmentId, ChunkHash, CommitId, SnapshotId, TenantId, TokenId, TreeHash, VolumeId } from '@stowage/sdk/common/ids.js';
import type {
  AccessMode,
  AttachmentPatch,
  AttachmentRecord,
  AttachmentState,
  ChunkOwner,
  ChunkRecord,
  OwnerScope,
  CommitRecord,
  CommitSummary,
  MetadataOps,
  MetadataStore,
  MountTuning,
  SnapshotRecord,
  TenantPatch,
  TenantRecord,
  TokenRecord,
  TreeRecord,
  UploadReservation,
  VolumeHeadUpdate,
  VolumePatch,
  VolumeRecord,
} from '../metadata-store.js';
import {
  toNumber,
  type AttachmentsTable,
  type ChunksTable,
  type CommitsTable,
  type Database,
  type SnapshotsTable,
  type TenantsTable,
  type TokensTable,
  type VolumesTable,
} from './schema.js';

/** The SQL engines the store runs on. */
export type SqlDialectName = 'sqlite' | 'postgres';

/** What the shared SQL code needs to know about the engine behind a connection. */
export interface SqlDialectInfo {
  readonly name: SqlDialectName;
  /** True when `err` is a UNIQUE or PRIMARY KEY violation. */
  isUniqueViolation(err: unknown): boolean;
  /** True when `err` means the database cannot be reached or used right now (connection lost, busy). */
  isUnavailable(err: unknown): boolean;
  /** True when `err` says the database's disk is full (checked before isUnavailable: the cure is space, not a retry). */
  isDiskFull(err: unknown): boolean;
  /**
   * True when transactions must ask for SERIALIZABLE explicitly (PostgreSQL
   * defaults to READ COMMITTED); false when BEGIN already is (SQLite's
   * driver begins IMMEDIATE transactions, which run one at a time).
   */
  readonly explicitSerializable: boolean;
  /**
   * True when `err` is a transient conflict that running the whole
   * transaction (or statement) again cures: PostgreSQL's serialization
   * failure (40001) and deadlock (40P01). Omitted by engines that never
   * report one (SQLite runs one write transaction at a time).
   */
  isRetryableConflict?(err: unknown): boolean;
  /** The driver error as a message for users (e.g. naming the server, never a password); defaults to its message. */
  describe?(err: unknown): string;
}

/** Most runs of one transaction (or autocommit statement) that keeps hitting retryable conflicts. */
export const MAX_CONFLICT_ATTEMPTS = 10;

/**
 * Reruns of a transaction (or autocommit statement) that hit a retryable
 * conflict: exponential from 8 ms with full jitter, capped at 250 ms, so
 * contenders spread out. `retryable` is bound per store (the dialect knows).
 */
export const SQL_CONFLICT_RETRY: Omit<RetryPolicy, 'retryable'> = { name: 'sql conflict', attempts: MAX_CONFLICT_ATTEMPTS, baseDelayMs: 8, maxDelayMs: 250, jitter: 'full' };

/** Most hashes (or rows) per statement. */
export const BATCH = 500;

/** Most tree bytes per insert statement, so a batch of large trees stays a reasonable message. */
const TREE_BATCH_BYTES = 16 * 1024 * 1024;

/** Shared between a store and the ops objects of its transactions. */
interface StoreState {
  closed: boolean;
}

/**
 * MetadataOps over one Kysely handle: the database itself, or a transaction
 * (the store hands `new SqlMetadataOps(trx, ...)` to transaction bodies).
 */
export class SqlMetadataOps implements MetadataOps {
  constructor(
    protected readonly db: Kysely<Database>,
    protected readonly dialect: SqlDialectInfo,
    protected readonly state: StoreState,
  ) {}

  // --- tenants ---

  async insertTenant(t: TenantRecord): Promise<void> {
    await this.run('insert a tenant', () =>
      this.db
        .insertInto('tenants')
        .values({ id: t.id, name: t.name, default_cap: t.defaultCap, storage_quota: t.storageQuota, uncommitted_quota: t.uncommittedQuota, created_at: ms(t.createdAt) })
        .execute(),
      `tenant "${t.name}" already exists`,
    );
  }

  async getTenant(id: TenantId): Promise<TenantRecord | undefined> {
    const row = await this.run('read a tenant', () => this.db.selectFrom('tenants').selectAll().where('id', '=', id).executeTakeFirst());
    return row && tenantFromRow(row);
  }

  async getTenantByName(name: string): Promise<TenantRecord | undefined> {
    const row = await this.run('read a tenant', () => this.db.selectFrom('tenants').selectAll().where('name', '=', name).executeTakeFirst());
    return row && tenantFromRow(row);
  }

  async listTenants(): Promise<TenantRecord[]> {
    const rows = await this.run('list tenants', () => this.db.selectFrom('tenants').selectAll().orderBy('name').execute());
    return rows.map(tenantFromRow);
  }

  async updateTenant(id: TenantId, patch: TenantPatch): Promise<boolean> {
    const set = {
      ...(patch.defaultCap !== undefined ? { default_cap: patch.defaultCap } : {}),
      ...(patch.storageQuota !== undefined ? { storage_quota: patch.storageQuota } : {}),
      ...(patch.uncommittedQuota !== undefined ? { uncommitted_quota: patch.uncommittedQuota } : {}),
    };
    // An empty patch still answers whether the tenant exists.
    if (Object.keys(set).length === 0) return (await this.getTenant(id)) !== undefined;
    const r = await this.run('update a tenant', () => this.db.updateTable('tenants').set(set).where('id', '=', id).executeTakeFirst());
    return r.numUpdatedRows > 0n;
  }

  // --- tokens ---

  async insertToken(t: TokenRecord): Promise<void> {
    await this.run('insert a token', () =>
      this.db
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
  }

  async getToken(id: TokenId): Promise<TokenRecord | undefined> {
    const row = await this.run('read a token', () => this.db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst());
    return row && tokenFromRow(row);
  }

  async listTokens(tenantId: TenantId): Promise<TokenRecord[]> {
    const rows = await this.run('list tokens', () =>
      this.db
        .selectFrom('tokens')
        .selectAll()
        .where('tenant_id', '=', tenantId)
        .orderBy('created_at', 'desc')
        .orderBy('id', 'desc')
        .execute(),
    );
    return rows.map(tokenFromRow);
  }

  async revokeToken(id: TokenId, at: Date): Promise<boolean> {
    // COALESCE keeps the first revocation time, which makes a repeat a no-op
    // while still matching the row (so the count says the token exists).
    const r = await this.run('revoke a token', () =>
      this.db
        .updateTable('tokens')
        .set({ revoked_at: sql<number>`coalesce(${sql.ref('revoked_at')}, ${ms(at)})` })
        .where('id', '=', id)
        .executeTakeFirst(),
    );
    return r.numUpdatedRows > 0n;
  }

  async setTokenExpiry(id: TokenId, expiresAt: Date | null): Promise<boolean> {
    const r = await this.run('set a token expiry', () =>
      this.db.updateTable('tokens').set({ expires_at: msOrNull(expiresAt) }).where('id', '=', id).executeTakeFirst(),
    );
    return r.numUpdatedRows > 0n;
  }

  // --- attachments ---

  async insertAttachment(a: AttachmentRecord): Promise<void> {
    await this.run('insert an attachment', () =>
      this.db
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
  }

  async getAttachment(id: AttachmentId): Promise<AttachmentRecord | undefined> {
    const row = await this.run('read an attachment', () => this.db.selectFrom('attachments').selectAll().where('id', '=', id).executeTakeFirst());
    return row && attachmentFromRow(row);
  }

  async listAttachments(volumeId: VolumeId): Promise<AttachmentRecord[]> {
    const rows = await this.run('list attachments', () =>
      this.db.selectFrom('attachments').selectAll().where('volume_id', '=', volumeId).orderBy('created_at').orderBy('id').execute(),
    );
    return rows.map(attachmentFromRow);
  }

  async updateAttachment(id: AttachmentId, patch: AttachmentPatch): Promise<boolean> {
    const r = await this.run('update an attachment', () =>
      this.db
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
  }

  // --- volumes ---

  async insertVolume(v: VolumeRecord): Promise<void> {
    await this.run('insert a volume', () =>
      this.db
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
  }

  async getVolume(id: VolumeId): Promise<VolumeRecord | undefined> {
    const row = await this.run('read a volume', () => this.db.selectFrom('volumes').selectAll().where('id', '=', id).executeTakeFirst());
    return row && volumeFromRow(row);
  }

  async getVolumeByName(tenantId: TenantId, name: string): Promise<VolumeRecord | undefined> {
    const row = await this.run('read a volume', () =>
      this.db.selectFrom('volumes').selectAll().where('tenant_id', '=', tenantId).where('name', '=', name).executeTakeFirst(),
    );
    return row && volumeFromRow(row);
  }

  async listVolumes(tenantId: TenantId): Promise<VolumeRecord[]> {
    const rows = await this.run('list volumes', () =>
      this.db.selectFrom('volumes').selectAll().where('tenant_id', '=', tenantId).orderBy('name').execute(),
    );
    return rows.map(volumeFromRow);
  }

  async listAllVolumes(): Promise<VolumeRecord[]> {
    const rows = await this.run('list volumes', () =>
      this.db.selectFrom('volumes').selectAll().orderBy('tenant_id').orderBy('name').execute(),
    );
    return rows.map(volumeFromRow);
  }

  async updateVolume(id: VolumeId, patch: VolumePatch): Promise<boolean> {
    const r = await this.run('update a volume', () =>
      this.db
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
  }

  async casHead(id: VolumeId, expected: CommitId, next: VolumeHeadUpdate): Promise<boolean> {
    // One conditional UPDATE is atomic in every SQL engine: of any number of
    // callers holding the same `expected`, exactly one matches the row.
    const r = await this.run('move a volume head', () =>
      this.db
        .updateTable('volumes')
        .set({ head: next.head, size: next.size, file_count: next.fileCount, updated_at: ms(next.updatedAt) })
        .where('id', '=', id)
        .where('head', '=', expected)
        .executeTakeFirst(),
    );
    return r.numUpdatedRows > 0n;
  }

  async deleteVolume(id: VolumeId): Promise<boolean> {
    return this.run('delete a volume', () =>
      this.atomically(async (db) => {
        const gone = await db.deleteFrom('volumes').where('id', '=', id).executeTakeFirst();
        if (gone.numDeletedRows === 0n) return false;
        await db.deleteFrom('snapshots').where('volume_id', '=', id).execute();
        await db.deleteFrom('commits').where('volume_id', '=', id).execute();
        return true;
      }),
    );
  }

  // --- commits ---

  async insertCommit(c: CommitRecord): Promise<void> {
    await this.run('insert a commit', () =>
      this.db
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
  }

  async getCommit(id: CommitId): Promise<CommitRecord | undefined> {
    const row = await this.run('read a commit', () => this.db.selectFrom('commits').selectAll().where('id', '=', id).executeTakeFirst());
    return row && commitFromRow(row);
  }

  async listCommits(volumeId: VolumeId, opts: { limit: number; beforeSeq?: number }): Promise<CommitRecord[]> {
    const rows = await this.run('list commits', () => {
      let q = this.db.selectFrom('commits').selectAll().where('volume_id', '=', volumeId);
      if (opts.beforeSeq !== undefined) q = q.where('seq', '<', opts.beforeSeq);
      return q.orderBy('seq', 'desc').limit(opts.limit).execute();
    });
    return rows.map(commitFromRow);
  }

  async pruneCommits(before: Date): Promise<number> {
    const r = await this.run('prune commits', () =>
      this.db
        .deleteFrom('commits')
        .where('created_at', '<', ms(before))
        .where('id', 'not in', this.db.selectFrom('volumes').select('head'))
        .where('id', 'not in', this.db.selectFrom('snapshots').select('commit_id'))
        .executeTakeFirst(),
    );
    return Number(r.numDeletedRows);
  }

  async listRootTrees(retainSince: Date): Promise<TreeHash[]> {
    const rows = await this.run('list root trees', () => {
      const heads = this.db.selectFrom('volumes').innerJoin('commits', 'commits.id', 'volumes.head').select('commits.tree as tree');
      const snapshots = this.db
        .selectFrom('snapshots')
        .innerJoin('commits', 'commits.id', 'snapshots.commit_id')
        .select('commits.tree as tree');
      const recent = this.db.selectFrom('commits').select('tree').where('created_at', '>=', ms(retainSince));
      // UNION (not UNION ALL) deduplicates.
      return heads.union(snapshots).union(recent).execute();
    });
    return rows.map((r) => r.tree as TreeHash);
  }

  // --- snapshots ---

  async insertSnapshot(s: SnapshotRecord): Promise<void> {
    await this.run('insert a snapshot', () =>
      this.db
        .insertInto('snapshots')
        .values({ id: s.id, volume_id: s.volumeId, name: s.name, commit_id: s.commitId, created_at: ms(s.createdAt) })
        .execute(),
      `snapshot "${s.name}" already exists`,
    );
  }

  async getSnapshot(volumeId: VolumeId, name: string): Promise<SnapshotRecord | undefined> {
    const row = await this.run('read a snapshot', () =>
      this.db.selectFrom('snapshots').selectAll().where('volume_id', '=', volumeId).where('name', '=', name).executeTakeFirst(),
    );
    return row && snapshotFromRow(row);
  }

  async listSnapshots(volumeId: VolumeId): Promise<SnapshotRecord[]> {
    const rows = await this.run('list snapshots', () =>
      this.db.selectFrom('snapshots').selectAll().where('volume_id', '=', volumeId).orderBy('created_at').orderBy('name').execute(),
    );
    return rows.map(snapshotFromRow);
  }

  async deleteSnapshot(volumeId: VolumeId, name: string): Promise<boolean> {
    const r = await this.run('delete a snapshot', () =>
      this.db.deleteFrom('snapshots').where('volume_id', '=', volumeId).where('name', '=', name).executeTakeFirst(),
    );
    return r.numDeletedRows > 0n;
  }

  // --- trees ---

  async putTrees(trees: readonly TreeRecord[], now: Date): Promise<void> {
    const touchedAt = ms(now);
    // PostgreSQL refuses an upsert that hits the same row twice in one statement.
    const unique = uniqueBy(trees, (t) => t.hash);
    await this.run('store trees', async () => {
      for (const batch of batchesBySize(unique, BATCH, TREE_BATCH_BYTES, (t) => t.data.byteLength)) {
        await this.db
          .insertInto('trees')
          .values(batch.map((t) => ({ hash: t.hash, data: toBuffer(t.data), touched_at: touchedAt })))
          .onConflict((oc) => oc.column('hash').doUpdateSet({ touched_at: touchedAt }))
          .execute();
      }
    });
  }

  async getTree(hash: TreeHash): Promise<Uint8Array | undefined> {
    const row = await this.run('read a tree', () => this.db.selectFrom('trees').select('data').where('hash', '=', hash).executeTakeFirst());
    return row && toUint8Array(row.data);
  }

  async touchTrees(hashes: readonly TreeHash[], now: Date): Promise<void> {
    const touchedAt = ms(now);
    await this.run('touch trees', async () => {
      for (const batch of batches(unique(hashes), BATCH)) {
        await this.db.updateTable('trees').set({ touched_at: touchedAt }).where('hash', 'in', batch).execute();
      }
    });
  }

  async listTreesTouchedSince(since: Date): Promise<TreeHash[]> {
    const rows = await this.run('list trees', () =>
      this.db.selectFrom('trees').select('hash').where('touched_at', '>=', ms(since)).execute(),
    );
    return rows.map((r) => r.hash as TreeHash);
  }

  async listTrees(): Promise<Array<{ hash: TreeHash; touchedAt: Date }>> {
    const rows = await this.run('list trees', () => this.db.selectFrom('trees').select(['hash', 'touched_at']).execute());
    return rows.map((r) => ({ hash: r.hash as TreeHash, touchedAt: date(r.touched_at) }));
  }

  async deleteTrees(hashes: readonly TreeHash[], touchedBefore: Date): Promise<TreeHash[]> {
    const cutoff = ms(touchedBefore);
    const deleted: TreeHash[] = [];
    await this.run('delete trees', async () => {
      for (const batch of batches(unique(hashes), BATCH)) {
        const rows = await this.db
          .deleteFrom('trees')
          .where('hash', 'in', batch)
          .where('touched_at', '<', cutoff)
          .returning('hash')
          .execute();
        for (const r of rows) deleted.push(r.hash as TreeHash);
      }
    });
    return deleted;
  }

  // --- chunks ---

  async getChunks(hashes: readonly ChunkHash[]): Promise<ChunkRecord[]> {
    const out: ChunkRecord[] = [];
    await this.run('read chunks', async () => {
      for (const batch of batches(unique(hashes), BATCH)) {
        const rows = await this.db.selectFrom('chunks').selectAll().where('hash', 'in', batch).execute();
        for (const r of rows) out.push(chunkFromRow(r));
      }
    });
    return out;
  }

  async putChunks(chunks: readonly ChunkRecord[]): Promise<void> {
    // The first row for a hash wins, within a call as across calls: its bytes
    // are already stored where it says.
    const rows = uniqueBy(chunks, (c) => c.hash);
    await this.run('store chunks', async () => {
      for (const batch of batches(rows, BATCH)) {
        await this.db
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
  }

  async touchChunks(hashes: readonly ChunkHash[], now: Date): Promise<ChunkHash[]> {
    const touchedAt = ms(now);
    const found: ChunkHash[] = [];
    await this.run('touch chunks', async () => {
      for (const batch of batches(unique(hashes), BATCH)) {
        const rows = await this.db
          .updateTable('chunks')
          .set({ touched_at: touchedAt })
          .where('hash', 'in', batch)
          .returning('hash')
          .execute();
        for (const r of rows) found.push(r.hash as ChunkHash);
      }
    });
    return found;
  }

  async listChunksTouchedSince(since: Date): Promise<ChunkHash[]> {
    const rows = await this.run('list chunks', () =>
      this.db.selectFrom('chunks').select('hash').where('touched_at', '>=', ms(since)).execute(),
    );
    return rows.map((r) => r.hash as ChunkHash);
  }

  async listChunks(): Promise<ChunkRecord[]> {
    const rows = await this.run('list chunks', () => this.db.selectFrom('chunks').selectAll().execute());
    return rows.map(chunkFromRow);
  }

  async deleteChunks(hashes: readonly ChunkHash[], touchedBefore: Date): Promise<ChunkRecord[]> {
    const cutoff = ms(touchedBefore);
    const deleted: ChunkRecord[] = [];
    await this.run('delete chunks', async () => {
      for (const batch of batches(unique(hashes), BATCH)) {
        const rows = await this.db
          .deleteFrom('chunks')
          .where('hash', 'in', batch)
          .where('touched_at', '<', cutoff)
          .returningAll()
          .execute();
        for (const r of rows) deleted.push(chunkFromRow(r));
      }
    });
    return deleted;
  }

  // --- chunk owners ---

  async addChunkOwners(owners: readonly ChunkOwner[], hashes: readonly ChunkHash[], at: Date): Promise<void> {
    const since = ms(at);
    const rows = unique(owners).flatMap((owner) => unique(hashes).map((hash) => ({ owner, hash, since })));
    await this.run('record chunk owners', async () => {
      for (const batch of batches(rows, BATCH)) {
        await this.db.insertInto('chunk_owners').values(batch).onConflict((oc) => oc.columns(['owner', 'hash']).doNothing()).execute();
      }
    });
  }

  async ownedChunks(scopes: readonly OwnerScope[], hashes: readonly ChunkHash[]): Promise<ChunkHash[]> {
    const found = new Set<ChunkHash>();
    const scopeBatches = [...batches(uniqueBy(scopes, (s) => `${s.owner}@${s.until?.getTime() ?? ''}`), 100)];
    await this.run('read chunk owners', async () => {
      for (const hashBatch of batches(unique(hashes), BATCH)) {
        for (const scopeBatch of scopeBatches) {
          const rows = await this.db
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
  }

  async pruneChunkOwners(hashes: readonly ChunkHash[]): Promise<number> {
    let deleted = 0;
    await this.run('prune chunk owners', async () => {
      for (const batch of batches(unique(hashes), BATCH)) {
        // One statement: a chunk row inserted meanwhile keeps its owners.
        const r = await this.db
          .deleteFrom('chunk_owners')
          .where('hash', 'in', batch)
          .where('hash', 'not in', (eb) => eb.selectFrom('chunks').select('hash').where('hash', 'in', batch))
          .executeTakeFirst();
        deleted += Number(r.numDeletedRows);
      }
    });
    return deleted;
  }

  // --- upload reservations ---

  async insertUploadReservations(rs: readonly UploadReservation[]): Promise<void> {
    await this.run('reserve upload bytes', async () => {
      for (const batch of batches(uniqueBy(rs, (r) => r.key), BATCH)) {
        await this.db
          .insertInto('upload_reservations')
          .values(batch.map((r) => ({ key: r.key, tenant_id: r.tenantId, volume_id: r.volumeId, bytes: r.bytes, expires_at: ms(r.expiresAt) })))
          .onConflict((oc) => oc.column('key').doNothing())
          .execute();
      }
    });
  }

  async pendingUploadBytes(tenantId: TenantId, now: Date): Promise<number> {
    const row = await this.run('sum upload reservations', () =>
      this.db
        .selectFrom('upload_reservations')
        .select((eb) => eb.fn.sum<number | string | null>('bytes').as('total'))
        .where('tenant_id', '=', tenantId)
        .where('expires_at', '>', ms(now))
        .executeTakeFirst(),
    );
    return row?.total == null ? 0 : toNumber(row.total);
  }

  async releaseUploadReservations(tenantId: TenantId, keys: readonly string[]): Promise<number> {
    let released = 0;
    await this.run('release upload reservations', async () => {
      for (const batch of batches(unique(keys), BATCH)) {
        const r = await this.db.updateTable('upload_reservations').set({ bytes: 0 })
          .where('tenant_id', '=', tenantId).where('key', 'in', batch).where('bytes', '>', 0).executeTakeFirst();
        released += Number(r.numUpdatedRows);
      }
    });
    return released;
  }

  async issuedUploadKeys(tenantId: TenantId, volumeId: VolumeId, keys: readonly string[], now: Date): Promise<string[]> {
    const out: string[] = [];
    await this.run('look up issued upload keys', async () => {
      for (const batch of batches(unique(keys), BATCH)) {
        const rows = await this.db.selectFrom('upload_reservations').select('key')
          .where('tenant_id', '=', tenantId).where('volume_id', '=', volumeId).where('key', 'in', batch).where('expires_at', '>', ms(now))
          .execute();
        out.push(...rows.map((r) => r.key));
      }
    });
    return out;
  }

  async deleteExpiredUploadReservations(now: Date): Promise<number> {
    const r = await this.run('delete expired upload reservations', () =>
      this.db.deleteFrom('upload_reservations').where('expires_at', '<=', ms(now)).executeTakeFirst(),
    );
    return Number(r.numDeletedRows);
  }

  // --- settings ---

  async getSetting(key: string): Promise<string | undefined> {
    const row = await this.run('read a setting', () => this.db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst());
    return row?.value;
  }

  async putSettingIfAbsent(key: string, value: string): Promise<string> {
    return this.run('store a setting', async () => {
      // Insert-or-ignore, then read back: whichever writer got there first
      // (in this process or another), every caller sees its value.
      await this.db
        .insertInto('settings')
        .values({ key, value })
        .onConflict((oc) => oc.column('key').doNothing())
        .execute();
      const row = await this.db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirstOrThrow();
      return row.value;
    });
  }

  // --- plumbing ---

  /** Runs `f` in a transaction, or directly when this handle already is one (transactions do not nest). */
  protected atomically<T>(f: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return f(this.db);
    return this.beginTransaction().execute(f);
  }

  /** A transaction builder at the isolation the contract promises. */
  protected beginTransaction() {
    const builder = this.db.transaction();
    return this.dialect.explicitSerializable ? builder.setIsolationLevel('serializable') : builder;
  }

  /**
   * Runs one store operation, translating driver errors into Stowage errors.
   * Outside a transaction, an operation that hit a retryable conflict (a
   * deadlock between two multi-row statements) runs again: every operation is
   * idempotent and the failed statement changed nothing. Inside one, the
   * conflict goes up to the transaction wrapper, which reruns the whole body.
   */
  protected async run<T>(action: string, f: () => Promise<T>, uniqueMessage?: string): Promise<T> {
    const once = async (): Promise<T> => {
      if (this.state.closed) throw new UnavailableError('metadata store is closed');
      return f();
    };
    try {
      return await (this.db.isTransaction ? once() : retry(this.conflictRetry, once));
    } catch (err) {
      throw this.translate(err, action, uniqueMessage);
    }
  }

  /** SQL_CONFLICT_RETRY with this dialect's idea of a retryable conflict. */
  protected readonly conflictRetry: RetryPolicy = { ...SQL_CONFLICT_RETRY, retryable: (err) => this.isRetryableConflict(err) };

  /** True when `err`, or an error in its cause chain, is a conflict the dialect says a rerun cures. */
  protected isRetryableConflict(err: unknown): boolean {
    const check = this.dialect.isRetryableConflict;
    if (!check) return false;
    for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
      if (check(e)) return true;
      e = (e as { cause?: unknown }).cause;
    }
    return false;
  }

  /** Maps a driver error to AlreadyExists, Unavailable or Internal. */
  protected translate(err: unknown, action: string, uniqueMessage?: string): Error {
    if (isStowageError(err)) return err;
    const detail = this.dialect.describe ? this.dialect.describe(err) : err instanceof Error ? err.message : String(err);
    if (uniqueMessage !== undefined && this.dialect.isUniqueViolation(err)) return new AlreadyExistsError(uniqueMessage, { cause: err });
    if (this.state.closed) return new UnavailableError('metadata store is closed', { cause: err });
    if (this.dialect.isDiskFull(err)) {
      return new InsufficientStorageError(`disk full: the metadata database could not ${action} (${detail}); nothing was changed. Free space on its disk (or grow it), then retry`, { cause: err });
    }
    if (this.dialect.isUnavailable(err)) {
      return new UnavailableError(`metadata store unavailable, could not ${action} (${detail}); retry later`, { cause: err });
    }
    return new InternalError(`metadata store could not ${action}: ${detail}`, { cause: err });
  }
}

/**
 * A MetadataStore over a Kysely database of the schema in schema.ts (run
 * migrateToLatest first; the dialect files do). Built by
 * openSqliteMetadataStore, later by its PostgreSQL twin.
 */
export class SqlMetadataStore extends SqlMetadataOps implements MetadataStore {
  constructor(db: Kysely<Database>, dialect: SqlDialectInfo) {
    super(db, dialect, { closed: false });
  }

  /**
   * Runs `fn` in one transaction with ops bound to it. Keep it short: on
   * SQLite the store's one connection (and the database's write lock) is
   * held until `fn` settles, so other calls on this store wait for it, and
   * calling the store itself (instead of `tx`) inside `fn` never returns.
   */
  async transaction<T>(fn: (tx: MetadataOps) => Promise<T>): Promise<T> {
    // A serialisable transaction may be refused by a concurrent one
    // (PostgreSQL: serialization failure or deadlock); the whole body runs
    // again, a bounded number of times with jittered backoff. The body must
    // therefore only work through `tx` (which the contract asks anyway).
    return retry(this.conflictRetry, () => this.transactionOnce(fn));
  }

  private async transactionOnce<T>(fn: (tx: MetadataOps) => Promise<T>): Promise<T> {
    if (this.state.closed) throw new UnavailableError('metadata store is closed');
    const NONE = Symbol('none');
    let thrownByFn: unknown = NONE;
    try {
      return await this.beginTransaction().execute(async (trx) => {
        try {
          return await fn(new SqlMetadataOps(trx, this.dialect, this.state));
        } catch (err) {
          thrownByFn = err;
          throw err;
        }
      });
    } catch (err) {
      // The caller's own error comes back as is; begin/commit failures are ours to classify.
      if (err === thrownByFn) throw err;
      throw this.translate(err, 'run a transaction');
    }
  }

  /** Closes the connection(s); later calls throw UnavailableError. Idempotent. */
  async close(): Promise<void> {
    if (this.state.closed) return;
    this.state.closed = true;
    await this.db.destroy();
  }
}

// --- row <-> record ---

function ms(d: Date): number {
  return d.getTime();
}

function msOrNull(d: Date | null): number | null {
  return d === null ? null : d.getTime();
}

function date(v: number | string): Date {
  return new Date(toNumber(v));
}

function dateOrNull(v: number | string | null): Date | null {
  return v === null ? null : date(v);
}

/** A Buffer view of the same bytes (no copy): both drivers bind Buffers as blobs. */
function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

/** A plain Uint8Array view of driver bytes (drivers return Buffers; the contract promises Uint8Array). */
function toUint8Array(u: Uint8Array): Uint8Array {
  return new Uint8Array(u.buffer, u.byteOffset, u.byteLength);
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

function snapshotFromRow(r: Selectable<SnapshotsTable>): SnapshotRecord {
  return {
    id: r.id as SnapshotId,
    volumeId: r.volume_id as VolumeId,
    name: r.name,
    commitId: r.commit_id as CommitId,
    createdAt: date(r.created_at),
  };
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

// --- batching ---

function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

/** The first item of each key, in input order. */
function uniqueBy<T>(xs: readonly T[], key: (x: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const x of xs) if (!seen.has(key(x))) seen.set(key(x), x);
  return [...seen.values()];
}

function* batches<T>(xs: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < xs.length; i += size) yield xs.slice(i, i + size);
}

/** Batches of at most `size` items and about `maxBytes` bytes (a single larger item gets a batch of its own). */
function* batchesBySize<T>(xs: readonly T[], size: number, maxBytes: number, bytes: (x: T) => number): Generator<T[]> {
  let batch: T[] = [];
  let total = 0;
  for (const x of xs) {
    const n = bytes(x);
    if (batch.length > 0 && (batch.length >= size || total + n > maxBytes)) {
      yield batch;
      batch = [];
      total = 0;
    }
    batch.push(x);
    total += n;
  }
  if (batch.length > 0) yield batch;
}
