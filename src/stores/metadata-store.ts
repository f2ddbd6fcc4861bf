/**
 * @module metadata-store
 * The metadata contract every metadata backend implements (SQLite and
 * PostgreSQL, through the same Kysely code). It stores records and
 * moves heads atomically; it holds no volume semantics: validation, merging,
 * quotas and garbage-collection policy live in the engine.
 *
 * Vocabulary:
 * - tree: an immutable, content-addressed directory node (opaque bytes here).
 * - chunk: a row saying where the bytes of one content hash live in the blob
 *   store (object key, offset, size).
 * - touchedAt: the last time a tree or chunk was written or re-used. Garbage
 *   collection never deletes anything touched after its cutoff, which is what
 *   protects the work of commits still in flight.
 * - chunk owner: a tenant id or a volume id that may reference a chunk (it
 *   uploaded the bytes, or holds them). Storage is shared across tenants,
 *   knowledge is not: the engine asks this index before it lets a hash in.
 * - upload reservation: bytes a tenant was allowed to upload (a signed PUT, a
 *   staged resumable upload) that no commit has taken in yet.
 *
 * Errors: a unique-name violation throws AlreadyExistsError; a lookup of a
 * missing record returns undefined (never throws); anything else that fails
 * throws UnavailableError (store unreachable) or InternalError.
 */
import type {
  AttachmentId,
  ChunkHash,
  SandboxId,
  CommitId,
  TenantId,
  TokenId,
  TreeHash,
  VolumeId,
} from '@stowage/sdk/common/ids.js';
import type {
  AccessMode,
  AttachmentRecord,
  AttachmentState,
  ChunkOwner,
  ChunkRecord,
  CommitRecord,
  MountTuning,
  SandboxRecord,
  SandboxStatus,
  SandboxVolumeRecord,
  SnapshotRecord,
  TenantRecord,
  TokenRecord,
  VolumeRecord,
} from '@stowage/sdk/model/records.js';

// The records this contract persists, defined once in the domain model; re-exported for the backends that implement it.
export type {
  AccessMode,
  AttachmentRecord,
  AttachmentState,
  ChunkOwner,
  ChunkRecord,
  CommitRecord,
  CommitSummary,
  MountTuning,
  SandboxRecord,
  SandboxStatus,
  SandboxVolumeRecord,
  SnapshotRecord,
  TenantRecord,
  TokenRecord,
  VolumeRecord,
} from '@stowage/sdk/model/records.js';

/** An owner whose chunks count, optionally only those it owned at or before `until`. */
export interface OwnerScope {
  owner: ChunkOwner;
  until?: Date;
}

/** Uncommitted bytes one signed upload (or staged resumable upload) may bring, until committed or expired. */
export interface UploadReservation {
  /** The object key of the signed PUT, or the id of the staged upload: unique. */
  key: string;
  tenantId: TenantId;
  volumeId: VolumeId;
  bytes: number;
  expiresAt: Date;
}

/** The tenant settings an operator or admin may change; omitted fields stay. */
export interface TenantPatch {
  defaultCap?: number;
  storageQuota?: number | null;
  uncommittedQuota?: number | null;
}

export interface AttachmentPatch {
  state?: AttachmentState;
  reason?: string | null;
  tokenId?: TokenId | null;
  leaseExpiresAt?: Date;
  updatedAt: Date;
}

/** A sandbox's change of status; `from`, when given, makes it conditional on the current status. */
export interface SandboxPatch {
  status: SandboxStatus;
  reason?: string | null;
  endedAt?: Date | null;
  /** The volumes as attached (set once they are). */
  volumes?: SandboxVolumeRecord[];
  /** Apply only when the sandbox is in one of these statuses (so an ended sandbox is never revived, nor ended twice). */
  from?: readonly SandboxStatus[];
}

export interface TreeRecord {
  hash: TreeHash;
  data: Uint8Array;
}

export interface VolumeHeadUpdate {
  head: CommitId;
  size: number;
  fileCount: number;
  updatedAt: Date;
}

export interface VolumePatch {
  cap?: number;
  accessMode?: AccessMode;
  tuning?: MountTuning;
  updatedAt: Date;
}

/** The operations available inside and outside a transaction. */
export interface MetadataOps {
  // --- tenants ---
  /** Inserts a tenant; AlreadyExistsError when the name is taken. */
  insertTenant(t: TenantRecord): Promise<void>;
  getTenant(id: TenantId): Promise<TenantRecord | undefined>;
  getTenantByName(name: string): Promise<TenantRecord | undefined>;
  listTenants(): Promise<TenantRecord[]>;
  /** Updates the patched settings; returns false when the tenant does not exist. */
  updateTenant(id: TenantId, patch: TenantPatch): Promise<boolean>;

  // --- tokens ---
  insertToken(t: TokenRecord): Promise<void>;
  getToken(id: TokenId): Promise<TokenRecord | undefined>;
  /** Tokens of a tenant, newest first. */
  listTokens(tenantId: TenantId): Promise<TokenRecord[]>;
  /** Sets revokedAt if not yet set; returns false when the token does not exist. Idempotent. */
  revokeToken(id: TokenId, at: Date): Promise<boolean>;
  /** Sets (or clears) expiresAt; returns false when the token does not exist. */
  setTokenExpiry(id: TokenId, expiresAt: Date | null): Promise<boolean>;

  // --- attachments ---
  /** Inserts an attachment; AlreadyExistsError when the id is taken. */
  insertAttachment(a: AttachmentRecord): Promise<void>;
  getAttachment(id: AttachmentId): Promise<AttachmentRecord | undefined>;
  /** Attachments of a volume in every state, oldest first. They outlive the volume record (deleteVolume keeps them). */
  listAttachments(volumeId: VolumeId): Promise<AttachmentRecord[]>;
  /** Updates only the patched fields; returns false when the attachment does not exist. */
  updateAttachment(id: AttachmentId, patch: AttachmentPatch): Promise<boolean>;

  // --- sandboxes ---
  /** Inserts a sandbox; AlreadyExistsError when the id is taken. */
  insertSandbox(s: SandboxRecord): Promise<void>;
  /** The tenant's sandbox with this id; undefined when it does not exist or belongs to another tenant. */
  getSandbox(tenantId: TenantId, id: SandboxId): Promise<SandboxRecord | undefined>;
  /** A tenant's sandboxes, newest first; with `live`, only starting and running ones. */
  listSandboxes(tenantId: TenantId, opts?: { live?: boolean }): Promise<SandboxRecord[]>;
  /** Every starting or running sandbox recorded on `host`, of every tenant, oldest first (for reconciliation). */
  listLiveSandboxesOnHost(host: string): Promise<SandboxRecord[]>;
  /** Sets the status (and reason, endedAt, volumes when given); returns false when the sandbox does not exist or is not in `from`. */
  updateSandbox(id: SandboxId, patch: SandboxPatch): Promise<boolean>;

  // --- volumes ---
  /** Inserts a volume; AlreadyExistsError when (tenantId, name) is taken. */
  insertVolume(v: VolumeRecord): Promise<void>;
  getVolume(id: VolumeId): Promise<VolumeRecord | undefined>;
  getVolumeByName(tenantId: TenantId, name: string): Promise<VolumeRecord | undefined>;
  /** Volumes of a tenant ordered by name. */
  listVolumes(tenantId: TenantId): Promise<VolumeRecord[]>;
  /** Every volume of every tenant (for garbage collection). */
  listAllVolumes(): Promise<VolumeRecord[]>;
  /** Updates cap, access mode or tuning; returns false when the volume does not exist. */
  updateVolume(id: VolumeId, patch: VolumePatch): Promise<boolean>;
  /** Atomically moves the head from `expected` to `next.head`; returns false (and changes nothing) when the head is no longer `expected` or the volume is gone. */
  casHead(id: VolumeId, expected: CommitId, next: VolumeHeadUpdate): Promise<boolean>;
  /** Deletes the volume with its snapshots and commit records, atomically; returns false when it did not exist. Trees and chunks stay for garbage collection. */
  deleteVolume(id: VolumeId): Promise<boolean>;

  // --- commits ---
  /** Inserts a commit record; inserting the same id again is a no-op. */
  insertCommit(c: CommitRecord): Promise<void>;
  getCommit(id: CommitId): Promise<CommitRecord | undefined>;
  /** Commits of a volume, newest (highest seq) first, with seq < beforeSeq when given. */
  listCommits(volumeId: VolumeId, opts: { limit: number; beforeSeq?: number }): Promise<CommitRecord[]>;
  /** Deletes commit records created before `before` that are neither a volume head nor a snapshot target; returns how many. */
  pruneCommits(before: Date): Promise<number>;
  /** Trees of every volume head, every snapshot target and every commit created at or after `retainSince`, deduplicated. */
  listRootTrees(retainSince: Date): Promise<TreeHash[]>;

  // --- snapshots ---
  /** Inserts a snapshot; AlreadyExistsError when (volumeId, name) is taken. */
  insertSnapshot(s: SnapshotRecord): Promise<void>;
  getSnapshot(volumeId: VolumeId, name: string): Promise<SnapshotRecord | undefined>;
  /** Snapshots of a volume, oldest first. */
  listSnapshots(volumeId: VolumeId): Promise<SnapshotRecord[]>;
  /** Returns false when it did not exist. */
  deleteSnapshot(volumeId: VolumeId, name: string): Promise<boolean>;

  // --- trees ---
  /** Inserts the trees that are new and sets touchedAt = `now` on all of them (new and existing). Idempotent. */
  putTrees(trees: readonly TreeRecord[], now: Date): Promise<void>;
  /** The stored bytes of one tree, or undefined. */
  getTree(hash: TreeHash): Promise<Uint8Array | undefined>;
  /** Sets touchedAt = `now` on the given trees that exist. */
  touchTrees(hashes: readonly TreeHash[], now: Date): Promise<void>;
  /** Hashes of trees touched at or after `since` (garbage-collection roots for work in flight). */
  listTreesTouchedSince(since: Date): Promise<TreeHash[]>;
  /** Every tree hash with its touchedAt. */
  listTrees(): Promise<Array<{ hash: TreeHash; touchedAt: Date }>>;
  /** Deletes the given trees that were last touched before `touchedBefore`; returns the hashes actually deleted. */
  deleteTrees(hashes: readonly TreeHash[], touchedBefore: Date): Promise<TreeHash[]>;

  // --- chunks ---
  /** The rows of the given hashes that exist (any order). */
  getChunks(hashes: readonly ChunkHash[]): Promise<ChunkRecord[]>;
  /** Inserts rows for hashes that have none; existing rows keep their object but get touchedAt = the new row's touchedAt. Idempotent. */
  putChunks(chunks: readonly ChunkRecord[]): Promise<void>;
  /** Sets touchedAt = `now` on the given chunks; returns the hashes that exist. */
  touchChunks(hashes: readonly ChunkHash[], now: Date): Promise<ChunkHash[]>;
  /** Chunks touched at or after `since`. */
  listChunksTouchedSince(since: Date): Promise<ChunkHash[]>;
  /** Every chunk row. */
  listChunks(): Promise<ChunkRecord[]>;
  /** Deletes the given rows that were last touched before `touchedBefore`; returns the rows actually deleted. */
  deleteChunks(hashes: readonly ChunkHash[], touchedBefore: Date): Promise<ChunkRecord[]>;

  // --- chunk owners ---
  /** Records that every owner owns every hash since `at` (whether or not a chunk row exists). Idempotent: an existing (owner, hash) keeps its earlier time. */
  addChunkOwners(owners: readonly ChunkOwner[], hashes: readonly ChunkHash[], at: Date): Promise<void>;
  /** The hashes among `hashes` that at least one scope's owner owns (since at or before its `until`, when given), each once, in any order. */
  ownedChunks(scopes: readonly OwnerScope[], hashes: readonly ChunkHash[]): Promise<ChunkHash[]>;
  /** Deletes every owner row of the given hashes that have no chunk row; returns how many rows it deleted. A hash with a chunk row keeps its owners. */
  pruneChunkOwners(hashes: readonly ChunkHash[]): Promise<number>;

  // --- upload reservations ---
  /** Inserts reservations; a key already reserved keeps its first row (no-op). */
  insertUploadReservations(rs: readonly UploadReservation[]): Promise<void>;
  /** Sum of the bytes of a tenant's reservations expiring after `now` (0 when none). */
  pendingUploadBytes(tenantId: TenantId, now: Date): Promise<number>;
  /**
   * Releases the bytes of the tenant's reservations with these keys (others' keys are left alone); returns how
   * many held bytes. Idempotent. The rows stay, at 0 bytes, until they expire: they are the record of which
   * tenant and volume each key was issued to (issuedUploadKeys).
   */
  releaseUploadReservations(tenantId: TenantId, keys: readonly string[]): Promise<number>;
  /** The keys among `keys` reserved for this tenant and volume that expire after `now`, released ones included. */
  issuedUploadKeys(tenantId: TenantId, volumeId: VolumeId, keys: readonly string[], now: Date): Promise<string[]>;
  /** Deletes reservations that expired at or before `now`; returns how many. */
  deleteExpiredUploadReservations(now: Date): Promise<number>;

  // --- settings ---
  getSetting(key: string): Promise<string | undefined>;
  /** Stores `value` unless the key already has one; returns the value in force (race-safe across processes). */
  putSettingIfAbsent(key: string, value: string): Promise<string>;
}

/** A metadata backend. */
export interface MetadataStore extends MetadataOps {
  /** Runs `fn` in one serialisable transaction: all its writes commit together or none do. A thrown error rolls back and is rethrown. Do not nest; inside `fn` use only `tx` (a call on the store itself may wait for the transaction forever). `fn` may run more than once: a backend whose database refuses a transaction for conflicting with a concurrent one (PostgreSQL's serialization failure) rolls back and runs it again, so `fn` must have no effects outside `tx`. */
  transaction<T>(fn: (tx: MetadataOps) => Promise<T>): Promise<T>;
  /** Releases connections. */
  close(): Promise<void>;
}
