/**
 * @module engine/types
 * What the engine offers the layer above (the HTTP server, the operator CLI).
 * Every call that touches tenant data takes the Actor that the server got
 * from `authenticate`; the engine alone decides what that actor may see.
 * A volume of another tenant, or outside a scoped token's one volume, is
 * NotFound (never Forbidden), so names do not leak.
 */
import type {
  Change,
  EntryType,
  FileInfo,
  PackManifest,
  SearchResponse,
  SkippedChange,
} from '@stowage/sdk/api/wire.js';
import type { AttachmentId, CommitId, TenantId, TokenId, VolumeId } from '@stowage/sdk/common/ids.js';
import type { Readable } from 'node:stream';
import type { ExecRecord, OutputEvent, RuntimeFileInfo } from '../sandbox/runtime.js';
import type { SignedRequest } from '../stores/blob-store.js';
import type {
  AccessMode,
  AttachmentRecord,
  CommitRecord,
  MountTuning,
  SandboxRecord,
  SnapshotRecord,
  TenantRecord,
  TokenRecord,
  VolumeRecord,
} from '@stowage/sdk/model/records.js';

export type { Change, FileInfo, SkippedChange };

/** Who is calling: derived from a bearer token. */
export interface Actor {
  tenantId: TenantId;
  tokenId: TokenId;
  /** Token name, recorded as a commit's author. */
  name: string;
  /** Set when the token is scoped to one volume. */
  volumeId: VolumeId | null;
  readOnly: boolean;
  /** Set when the token was minted for one attachment (a mount): such a token cannot attach or mint tokens. */
  attachmentId: AttachmentId | null;
}

export interface VolumeOptions {
  accessMode?: AccessMode;
  cap?: number;
  tuning?: Partial<MountTuning>;
}

export interface CommitInput {
  base?: string;
  message?: string;
  changes: Change[];
  uploads?: Array<{ hash: string; key: string }>;
  packs?: PackManifest[];
  onConflict?: 'overwrite' | 'fail';
  /** Skip (and report) changes that no longer apply to head instead of failing the commit (wire CommitRequest.bestEffort). */
  bestEffort?: boolean;
}

export interface WriteFileOptions {
  mode?: number;
  mtime?: number;
  createParents?: boolean;
  message?: string;
  base?: string;
  onConflict?: 'overwrite' | 'fail';
  /** The content's length when known in advance: picks the chunk size and lets an over-cap write fail before any byte is stored. */
  size?: number;
  /** SHA-256 (hex) the whole content must have; on mismatch nothing is committed. */
  sha256?: string;
}

export interface CommitResult {
  commit: CommitRecord;
  overwritten: string[];
  /** Changes a bestEffort commit skipped (by index in the change set); always [] otherwise. */
  skipped: SkippedChange[];
}

/** An attachment with its volume's name (wire `Attachment`). */
export interface AttachmentView extends AttachmentRecord {
  /** "(deleted)" once the volume is gone. */
  volumeName: string;
}

export interface AttachRequest {
  host: string;
  path: string;
  readOnly?: boolean;
  /** Id of an earlier attachment of the same volume, host and path to take over (a restarted mount agent). */
  resume?: string;
}

export interface AttachResult {
  attachment: AttachmentView;
  /** Bearer secret of the attachment's scoped token (returned once). */
  secret: string;
  tokenExpiresAt: Date;
  volume: VolumeRecord;
}

export interface ReleaseRequest {
  /** Mark it failed (with `reason`) instead of released. */
  failed?: boolean;
  reason?: string;
}

export interface MissingChunk {
  hash: string;
  size: number;
  key: string;
  request: SignedRequest;
}

export interface ReadPlan {
  commit: CommitId;
  entry: FileInfo;
  chunks: Array<{ hash: string; size: number; request: SignedRequest }>;
}

export interface GcOptions {
  /** Report what would be deleted without deleting. */
  dryRun?: boolean;
  /** Milliseconds: anything touched more recently is never deleted (protects commits in flight). Default 1 hour. */
  grace?: number;
  /** Milliseconds: commits younger than this stay restorable. Default 7 days. */
  retention?: number;
}

export interface GcReport {
  dryRun: boolean;
  prunedCommits: number;
  liveTrees: number;
  deletedTrees: number;
  liveChunks: number;
  deletedChunks: number;
  deletedObjects: number;
  deletedBytes: number;
}

/** The volume engine, as the server sees it. */
/**
 * Sandboxes (engine/sandboxes): records, authority and volumes here, the
 * work in a SandboxRuntime. Requests arrive unchecked (`unknown`) and are
 * checked by engine/sandbox-requests.
 */
export interface SandboxEngine {
  /** Checks the request, attaches its volumes, starts it; resolves once it runs. 503 without a usable runtime. */
  createSandbox(actor: Actor, req: unknown): Promise<SandboxRecord>;
  /** The tenant's sandboxes, newest first: starting and running ones unless `all`. */
  listSandboxes(actor: Actor, opts?: { all?: boolean }): Promise<SandboxRecord[]>;
  getSandbox(actor: Actor, id: string): Promise<SandboxRecord>;
  /** Stops it, releases its attachments; terminating an ended sandbox answers it unchanged. */
  terminateSandbox(actor: Actor, id: string): Promise<SandboxRecord>;
  execSandbox(actor: Actor, id: string, req: unknown): Promise<ExecRecord>;
  listExecs(actor: Actor, id: string): Promise<ExecRecord[]>;
  getExec(actor: Actor, id: string, execId: string): Promise<ExecRecord>;
  /** The exec's output from these offsets as it arrives, then its end; checked before the first event. */
  execOutput(
    actor: Actor,
    id: string,
    execId: string,
    from: { stdout: number; stderr: number },
    signal?: AbortSignal,
  ): Promise<AsyncIterable<OutputEvent>>;
  writeExecStdin(actor: Actor, id: string, execId: string, data: Buffer, end: boolean): Promise<void>;
  signalExec(actor: Actor, id: string, execId: string, signal: string): Promise<void>;
  /** Resizes a running terminal exec's pseudo-terminal. */
  resizeExec(actor: Actor, id: string, execId: string, rows: number, cols: number): Promise<void>;
  writeSandboxFile(
    actor: Actor,
    id: string,
    path: string,
    data: Readable,
    opts?: { mode?: number; createParents?: boolean },
  ): Promise<RuntimeFileInfo>;
  readSandboxFile(actor: Actor, id: string, path: string): Promise<Readable>;
  statSandboxFile(actor: Actor, id: string, path: string): Promise<RuntimeFileInfo>;
  listSandboxFiles(actor: Actor, id: string, path: string): Promise<{ entries: RuntimeFileInfo[]; truncated: boolean }>;
  removeSandboxFile(actor: Actor, id: string, path: string, recursive?: boolean): Promise<void>;
  mkdirSandboxFile(actor: Actor, id: string, path: string, opts?: { parents?: boolean; mode?: number }): Promise<void>;
  /** Server start: live records of this host that its runtime lost or saw end are ended; returns how many. */
  reconcileSandboxes(): Promise<number>;
}

export interface VolumeEngine extends SandboxEngine {
  /** Resolves a bearer token to an actor; UnauthenticatedError for unknown, revoked, expired or malformed tokens. */
  authenticate(bearer: string): Promise<Actor>;

  /** Operator call: creates a tenant with an admin token (the secret is returned once). */
  /** Operator: a new tenant with its admin token. */
  createTenant(
    name: string,
    opts?: TenantQuotas & { defaultCap?: number },
  ): Promise<{ tenant: TenantRecord; secret: string; token: TokenRecord }>;
  /** The actor's tenant, its uncommitted quota resolved to the one in force. */
  getTenant(actor: Actor): Promise<TenantRecord>;
  /** Operator: sets (or, with null, clears) a tenant's quotas; tenants cannot change their own. */
  setTenantQuotas(name: string, quotas: TenantQuotas): Promise<TenantRecord>;
  updateTenant(actor: Actor, patch: { defaultCap: number }): Promise<TenantRecord>;

  createToken(
    actor: Actor,
    req: { name: string; volume?: string; readOnly?: boolean; expiresIn?: number },
  ): Promise<{ token: TokenRecord; secret: string }>;
  listTokens(actor: Actor): Promise<TokenRecord[]>;
  revokeToken(actor: Actor, id: string): Promise<void>;

  createVolume(actor: Actor, name: string, opts?: VolumeOptions): Promise<VolumeRecord>;
  /** Race-safe: concurrent calls for one name yield one volume. */
  getOrCreateVolume(
    actor: Actor,
    name: string,
    opts?: VolumeOptions,
  ): Promise<{ volume: VolumeRecord; created: boolean }>;
  getVolume(actor: Actor, name: string): Promise<VolumeRecord>;
  listVolumes(actor: Actor): Promise<VolumeRecord[]>;
  updateVolume(actor: Actor, name: string, patch: VolumeOptions): Promise<VolumeRecord>;
  deleteVolume(actor: Actor, name: string): Promise<void>;

  /** Which chunks must be uploaded, with a signed PUT for each. Present chunks are touched so GC keeps them for the coming commit. */
  prepareUpload(
    actor: Actor,
    volume: string,
    chunks: Array<{ hash: string; size: number }>,
  ): Promise<{ missing: MissingChunk[]; present: number }>;
  /** A signed PUT for one pack of small chunks (see PackManifest). */
  preparePack(
    actor: Actor,
    volume: string,
    pack: { size: number; sha256: string },
  ): Promise<{ key: string; request: SignedRequest }>;
  /** Reserves `bytes` of the tenant's uncommitted quota for a staged resumable upload, until released or `expiresAt`. */
  reserveStagedUpload(actor: Actor, volume: string, id: string, bytes: number, expiresAt: Date): Promise<void>;
  /** Releases a staged upload's reservation (it finished, failed or was abandoned). Idempotent. */
  releaseStagedUpload(actor: Actor, id: string): Promise<void>;
  /** Applies a change set to the current head (merging with concurrent commits) and publishes one commit. */
  commit(actor: Actor, volume: string, input: CommitInput): Promise<CommitResult>;
  listCommits(
    actor: Actor,
    volume: string,
    opts?: { limit?: number; before?: number },
  ): Promise<{ commits: CommitRecord[]; nextBefore: number | null }>;

  createSnapshot(actor: Actor, volume: string, opts?: { name?: string; commit?: string }): Promise<SnapshotRecord>;
  listSnapshots(actor: Actor, volume: string): Promise<SnapshotRecord[]>;
  deleteSnapshot(actor: Actor, volume: string, snapshot: string): Promise<void>;
  /** A new commit on top of head whose tree is the snapshot's (or commit's). */
  restore(actor: Actor, volume: string, target: { snapshot?: string; commit?: string }): Promise<CommitResult>;
  /** O(1) copy-on-write copy of head (or a snapshot or commit) as a new volume. */
  fork(
    actor: Actor,
    volume: string,
    req: { name: string; snapshot?: string; commit?: string } & VolumeOptions,
  ): Promise<VolumeRecord>;

  stat(
    actor: Actor,
    volume: string,
    path: string,
    opts?: { commit?: string },
  ): Promise<{ commit: CommitId; entry: FileInfo }>;
  /** One page of a directory (names in order; depth-first when recursive) after the cursor `after` (the last path of the previous page); `nextCursor` is null on the last page. No `limit` means every entry. */
  list(
    actor: Actor,
    volume: string,
    path: string,
    opts?: { commit?: string; recursive?: boolean; limit?: number; after?: string },
  ): Promise<{ commit: CommitId; entries: FileInfo[]; nextCursor: string | null }>;
  /** Signed GETs for the chunks of one file. */
  readPlan(actor: Actor, volume: string, path: string, opts?: { commit?: string }): Promise<ReadPlan>;

  /** Streams a file's bytes, or the inclusive byte range, at head or at a commit. */
  readFile(
    actor: Actor,
    volume: string,
    path: string,
    opts?: { commit?: string; range?: { start: number; end: number } },
  ): Promise<{ commit: CommitId; entry: FileInfo; body: AsyncIterable<Uint8Array> }>;
  /**
   * The read-only actor a signed file URL acts as: the signing token's tenant, scoped to the one volume (by id).
   * Forbidden when that token was revoked or has expired (a link never outlives its signer's authority); NotFound when the volume is gone.
   */
  shareActor(tokenId: string, volumeId: string): Promise<{ actor: Actor; volume: string }>;
  /** Stores a stream the server itself received (resumable uploads, replacements) as one file, and commits it. */
  writeFile(
    actor: Actor,
    volume: string,
    path: string,
    body: AsyncIterable<unknown>,
    opts?: WriteFileOptions,
  ): Promise<CommitResult & { uploadedChunks: number; sha256: string }>;

  /** Glob over paths and, optionally, regex over contents, bounded by results, bytes per file and time (engine/search). */
  search(actor: Actor, volume: string, opts?: SearchOptions): Promise<SearchResult>;
  /** Regex replace across the files a glob selects, in one commit (engine/file-edits). */
  replace(actor: Actor, volume: string, opts: ReplaceOptions): Promise<ReplaceResult>;
  /** Replaces the one occurrence of a string in a file; 412 unless it occurs exactly once, 409 when the file changed since `base`. */
  edit(actor: Actor, volume: string, path: string, opts: EditOptions): Promise<{ commit: CommitRecord; path: string }>;
  /** Calls `listener` after every commit this process publishes (a hint to look sooner: other replicas' commits are only seen by polling); returns the unsubscribe function. */
  onCommit(listener: (volumeId: VolumeId) => void): () => void;
  /** The commits after `since` with their per-path changes (engine/change-feed); NotFound for an unknown commit. */
  changesSince(
    actor: Actor,
    volume: string,
    since: string,
    limit?: number,
  ): Promise<{ head: CommitId; commits: CommitChanges[] }>;

  /** Mounts need an attachment: checks the access mode (409 naming the attachment in the way) and mints a scoped token leased with it (engine/attachments). */
  attach(actor: Actor, volume: string, req: AttachRequest): Promise<AttachResult>;
  /** The volume's attachments, mounted ones unless `all`, oldest first. */
  listAttachments(actor: Actor, volume: string, opts?: { all?: boolean }): Promise<AttachmentView[]>;
  /** Extends an attachment's lease and its token's expiry; with its own token or a tenant token. */
  renewAttachment(actor: Actor, id: string): Promise<{ attachment: AttachmentView; tokenExpiresAt: Date }>;
  /** Releases (or fails) an attachment and revokes its token; idempotent. */
  releaseAttachment(actor: Actor, id: string, req?: ReleaseRequest): Promise<AttachmentView>;

  /** Operator call: mark from every head, snapshot, retained commit and recent work; sweep the rest. */
  gc(opts?: GcOptions): Promise<GcReport>;
}

/** Tenant-wide quotas an operator sets, in bytes; null clears one (storage: unlimited; uncommitted: the default). */
export interface TenantQuotas {
  storageQuota?: number | null;
  uncommittedQuota?: number | null;
}

// ---------------------------------------------------------------- file operations (engine/search, file-edits, change-feed)

/** What to search, and the bounds. */
export interface SearchOptions {
  /** Directory (or file) to search below; default "/". */
  path?: string;
  glob?: string;
  regex?: string;
  /** Regex flags among i, m, s, u. */
  flags?: string;
  /** Search this commit instead of the head. */
  commit?: string;
  /** Matches (with regex) or paths (without) returned at most; default 1000, at most 10000. */
  limit?: number;
  /** Bytes of one file scanned at most; default 8 MiB, at most 64 MiB. */
  maxBytesPerFile?: number;
  /** Time bound of the whole search in ms; default 10000, at most 60000. */
  timeoutMs?: number;
}

/** A search's findings, saying whether they are complete (wire `SearchResponse`, its commit a CommitId). */
export type SearchResult = Omit<SearchResponse, 'commit'> & { commit: CommitId };

/** An exact-string edit of one file. */
export interface EditOptions {
  oldString: string;
  newString: string;
  /** The commit the caller read the file at: a change to the file since then is a 409. Default: the head this edit reads. */
  base?: string;
  message?: string;
}

/** A regex replace across files. */
export interface ReplaceOptions {
  /** Directory to work below; default "/". */
  path?: string;
  /** Which files (required: a replace never touches a whole volume by accident). */
  glob: string;
  regex: string;
  /** Expands $1, $&, $<name> like String.prototype.replace. */
  replacement: string;
  flags?: string;
  /** As for edit: files changed since this commit make the replace a 409. Default: the head it reads. */
  base?: string;
  /** More candidate files than this is InvalidArgument; default 1000, at most 10000. */
  maxFiles?: number;
  /** Larger files are skipped (and reported); default 8 MiB, at most 64 MiB. */
  maxBytesPerFile?: number;
  /** Time bound in ms; default 10000, at most 60000. Past it nothing is committed. */
  timeoutMs?: number;
  message?: string;
}

/** What a replace changed and skipped. */
export interface ReplaceResult {
  /** The one commit, or null when nothing matched. */
  commit: CommitRecord | null;
  files: Array<{ path: string; replacements: number }>;
  skippedBinary: string[];
  skippedTooLarge: string[];
}

/** One changed path. */
export interface TreeChange {
  path: string;
  kind: 'added' | 'modified' | 'deleted';
  type: EntryType;
}

/** One commit after the starting point, with what it changed. */
export interface CommitChanges {
  commit: CommitRecord;
  changes: TreeChange[];
  /** More paths changed than MAX_CHANGES_PER_COMMIT. */
  truncated: boolean;
}
