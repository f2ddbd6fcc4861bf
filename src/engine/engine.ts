/**
 * @module engine
 * The volume engine: tenants, tokens, volumes, commits, snapshots, forks,
 * reads and garbage collection, over a MetadataStore and a BlobStore. It
 * knows nothing of HTTP; the server translates requests into these calls.
 *
 * Commit protocol: a writer asks which chunks are missing (prepareUpload),
 * puts those straight into the blob store through signed URLs, then commits
 * metadata only. The engine checks every referenced chunk is owned by the
 * committer or proven in the commit (engine/commit-chunks), applies the
 * change set to the *current* head (so concurrent commits on different paths
 * merge, and the same path is last-writer-wins in the order heads move), and
 * moves the head by compare-and-swap, retrying on contention.
 */
import { chunkSizeFor, LARGE_CHUNK_SIZE, SMALL_CHUNK_SIZE } from '../common/chunking.js';
import { mapLimit } from '../common/concurrency.js';
import { retry, type RetryPolicy } from '../common/retry.js';
import {
  AlreadyExistsError, ConflictError, ForbiddenError, InvalidArgumentError, NotFoundError, PreconditionFailedError,
  QuotaExceededError, UnauthenticatedError, UnavailableError,
} from '../common/errors.js';
import { ChunkHash, CommitId, randomHex, SnapshotId, TenantId, TokenId, VolumeId, type AttachmentId, type TreeHash } from '../common/ids.js';
import { parsePath, parseVolumeName, type VolumePath } from '../common/paths.js';
import { formatSize, GiB, MiB } from '../common/sizes.js';
import type { BlobStore, SignedRequest } from '../stores/blob-store.js';
import type {
  AccessMode, ChunkRecord, CommitRecord, MetadataStore, MountTuning, SnapshotRecord, TenantRecord, TokenRecord, VolumeRecord,
} from '../stores/metadata-store.js';
import { applyEdits, overwrittenPaths, parseChanges, referencedChunks, refuseEscapingMovedLinks, refuseEscapingSymlinks, type Edit } from './change-set.js';
import { collectGarbage } from './gc.js';
import { KeyedMutex } from './keyed-mutex.js';
import { authorize } from './authority.js';
import { canonicalMeta, commitId, EMPTY_TREE, type Entry } from './tree-codec.js';
import { storeTrees, TreeEditor } from './tree-editor.js';
import { TreeReader } from './tree-reader.js';
import { mintToken, parseBearer, secretMatches } from './tokens.js';
import type {
  Actor, AttachmentView, TenantQuotas, AttachRequest, AttachResult, Change, CommitInput, CommitResult, FileInfo, GcOptions, GcReport, MissingChunk, ReadPlan, ReleaseRequest,
  SkippedChange, VolumeEngine, VolumeOptions, WriteFileOptions,
} from './types.js';
import {
  attach, DEFAULT_ATTACHMENT_LEASE, failAttachments, listAttachments, releaseAttachment, renewAttachment, VOLUME_DELETED, type AttachmentHost,
} from './attachments.js';
import { newChunkKey, readEntry, storeStream } from './file-io.js';
import { MAX_PACK_SIZE, isPackKey, newPackKey } from './packs.js';
import { backfillChunkOwners, holdersOf, scopeOf } from './chunk-ownership.js';
import { checkCommitChunks, DEFAULT_MAX_VERIFY_BYTES } from './commit-chunks.js';
import { checkStorageQuota, DEFAULT_UNCOMMITTED_QUOTA, reserveUploads } from './upload-quota.js';
import { changesSince, type CommitChanges } from './change-feed.js';
import { edit, replace, type EditOptions, type ReplaceOptions, type ReplaceResult } from './file-edits.js';
import type { FileOpsHost } from './file-ops-host.js';
import { cursorParts, entriesAfter } from './list-pages.js';
import { search, type SearchOptions, type SearchResult } from './search.js';

/** Default volume cap (SPEC: 2 GiB). */
export const DEFAULT_CAP = 2 * GiB;
/** Default mount tuning (SPEC section 2). */
export const DEFAULT_TUNING: MountTuning = { cacheSize: 1 * GiB, bufferSize: 32 * MiB, prefetch: 0, writeback: false };
const ACCESS_MODES: readonly AccessMode[] = ['RWO', 'ROX', 'RWX'];
const MAX_CAP = 2 ** 50; // 1 PiB
const MAX_UPLOAD_BATCH = 10_000;
const SUMMARY_PATHS = 100;

/** Another commit moved the head between our read and our compare-and-swap: rebuild on the new head. */
class HeadMoved extends Error {}
/** Rebuilds after a lost compare-and-swap: jittered (contenders spread out), from 5 ms up to 200 ms; attempts come from EngineDeps.commitAttempts. */
const HEAD_CAS_RETRY: RetryPolicy = { name: 'head compare-and-swap', attempts: 30, baseDelayMs: 5, maxDelayMs: 200, jitter: 'full', retryable: (e) => e instanceof HeadMoved };
/** Entries of one page of a listing at most. */
export const MAX_LIST_LIMIT = 10_000;

export interface EngineDeps {
  metadata: MetadataStore;
  blobs: BlobStore;
  /** Clock, for tests. */
  now?: () => Date;
  /** Lifetime of signed URLs, in seconds (default 15 minutes). */
  urlTtl?: number;
  /** An uploaded chunk must be committed within this many ms of its upload (default 30 minutes; GC's grace must be longer). */
  uploadWindow?: number;
  /** Compare-and-swap attempts per commit before giving up (default 30). */
  commitAttempts?: number;
  /** Lease of a mounted attachment and of its token, in ms (default 60 s); mount agents renew well before it runs out. */
  attachmentLease?: number;
  /** Most bytes one commit may make the server read back to verify (packs and re-hashed uploads; default 4 GiB). */
  maxVerifyBytes?: number;
  /** Uncommitted upload bytes a tenant may have reserved unless the operator set its own quota (default 16 GiB). */
  defaultUncommittedQuota?: number;
}

/** Creates the engine. Stores are owned by the caller. */
export function createEngine(deps: EngineDeps): Engine {
  return new Engine(deps);
}

export class Engine implements VolumeEngine {
  private readonly md: MetadataStore;
  private readonly blobs: BlobStore;
  private readonly now: () => Date;
  private readonly reader: TreeReader;
  private readonly locks = new KeyedMutex();
  private readonly urlTtl: number;
  private readonly uploadWindow: number;
  private readonly commitAttempts: number;
  private readonly attachmentLease: number;
  private readonly maxVerifyBytes: number;
  private readonly defaultUncommittedQuota: number;
  private readonly commitListeners = new Set<(volumeId: VolumeId) => void>();

  constructor(deps: EngineDeps) {
    this.md = deps.metadata;
    this.blobs = deps.blobs;
    this.now = deps.now ?? (() => new Date());
    this.reader = new TreeReader(this.md);
    this.urlTtl = deps.urlTtl ?? 900;
    this.uploadWindow = deps.uploadWindow ?? 30 * 60_000;
    this.commitAttempts = deps.commitAttempts ?? 30;
    this.attachmentLease = deps.attachmentLease ?? DEFAULT_ATTACHMENT_LEASE;
    this.maxVerifyBytes = deps.maxVerifyBytes ?? DEFAULT_MAX_VERIFY_BYTES;
    this.defaultUncommittedQuota = deps.defaultUncommittedQuota ?? DEFAULT_UNCOMMITTED_QUOTA;
    if (!Number.isSafeInteger(this.attachmentLease) || this.attachmentLease < 1) throw new InvalidArgumentError('attachmentLease must be a positive number of milliseconds');
  }

  // ---------------------------------------------------------------- auth

  async authenticate(bearer: string): Promise<Actor> {
    const parsed = parseBearer(bearer);
    const token = parsed && (await this.md.getToken(parsed.id));
    if (!parsed || !token || !secretMatches(parsed.secret, token.secretHash)) throw new UnauthenticatedError('invalid API token');
    const dead = await this.whyDead(token);
    if (dead) throw new UnauthenticatedError(dead);
    return { tenantId: token.tenantId, tokenId: token.id, name: token.name, volumeId: token.volumeId, readOnly: token.readOnly, attachmentId: token.attachmentId };
  }

  async createTenant(name: string, opts: TenantQuotas & { defaultCap?: number } = {}): Promise<{ tenant: TenantRecord; secret: string; token: TokenRecord }> {
    const tenant: TenantRecord = {
      id: TenantId.new(), name: parseVolumeName(name, 'tenant'), defaultCap: checkCap(opts.defaultCap ?? DEFAULT_CAP),
      storageQuota: checkQuota(opts.storageQuota ?? null, 'storage quota'), uncommittedQuota: checkQuota(opts.uncommittedQuota ?? null, 'uncommitted quota'), createdAt: this.now(),
    };
    const { token, bearer } = this.newToken(tenant.id, 'admin', null, false, null);
    await this.md.transaction(async (tx) => {
      await tx.insertTenant(tenant);
      await tx.insertToken(token);
    });
    return { tenant, secret: bearer, token };
  }

  /**
   * Why a token can no longer be used (revoked, expired, or minted from a
   * token that is), or undefined while it is alive. A mount token dies with
   * the token that created it, so revoking a leaked token also ends the
   * mounts it made.
   */
  private async whyDead(token: TokenRecord, depth = 0): Promise<string | undefined> {
    const what = depth === 0 ? 'this API token' : 'the token this one was minted from';
    if (token.revokedAt) return `${what} has been revoked`;
    if (token.expiresAt && token.expiresAt.getTime() <= this.now().getTime()) return `${what} expired at ${token.expiresAt.toISOString()}`;
    if (!token.parentId) return undefined;
    const parent = await this.md.getToken(token.parentId);
    if (!parent || depth >= 8) return 'the token this one was minted from no longer exists';
    return this.whyDead(parent, depth + 1);
  }

  async getTenant(actor: Actor): Promise<TenantRecord> {
    authorize(actor, 'tenant.read');
    return this.tenantOf(actor);
  }

  private async tenantOf(actor: Actor): Promise<TenantRecord> {
    const t = await this.md.getTenant(actor.tenantId);
    if (!t) throw new UnauthenticatedError('the tenant of this token no longer exists');
    // The quota in force, the installation's default included.
    return { ...t, uncommittedQuota: t.uncommittedQuota ?? this.defaultUncommittedQuota };
  }

  async setTenantQuotas(name: string, quotas: TenantQuotas): Promise<TenantRecord> {
    const t = await this.md.getTenantByName(name);
    if (!t) throw new NotFoundError(`tenant "${name}" not found`);
    await this.md.updateTenant(t.id, {
      ...(quotas.storageQuota !== undefined ? { storageQuota: checkQuota(quotas.storageQuota, 'storage quota') } : {}),
      ...(quotas.uncommittedQuota !== undefined ? { uncommittedQuota: checkQuota(quotas.uncommittedQuota, 'uncommitted quota') } : {}),
    });
    return (await this.md.getTenant(t.id))!;
  }

  async updateTenant(actor: Actor, patch: { defaultCap: number }): Promise<TenantRecord> {
    authorize(actor, 'tenant.configure');
    await this.md.updateTenant(actor.tenantId, { defaultCap: checkCap(patch.defaultCap) });
    return this.tenantOf(actor);
  }

  async createToken(actor: Actor, req: { name: string; volume?: string; readOnly?: boolean; expiresIn?: number }): Promise<{ token: TokenRecord; secret: string }> {
    authorize(actor, 'tokens.mint');
    if (typeof req.name !== 'string' || req.name.length < 1 || req.name.length > 100 || /[\x00-\x1f]/.test(req.name)) {
      throw new InvalidArgumentError('token name must be 1-100 printable characters');
    }
    let volumeId: VolumeId | null = null;
    if (req.volume !== undefined) volumeId = (await this.volumeFor(actor, req.volume, 'read')).id;
    let expiresAt: Date | null = null;
    if (req.expiresIn !== undefined) {
      if (!Number.isSafeInteger(req.expiresIn) || req.expiresIn <= 0 || req.expiresIn > 10 * 365 * 86400) throw new InvalidArgumentError('expiresIn must be a positive number of seconds (at most 10 years)');
      expiresAt = new Date(this.now().getTime() + req.expiresIn * 1000);
    }
    const { token, bearer } = this.newToken(actor.tenantId, req.name, volumeId, req.readOnly === true, expiresAt);
    await this.md.insertToken(token);
    return { token, secret: bearer };
  }

  async listTokens(actor: Actor): Promise<TokenRecord[]> {
    authorize(actor, 'tokens.list');
    return this.md.listTokens(actor.tenantId);
  }

  async revokeToken(actor: Actor, id: string): Promise<void> {
    authorize(actor, 'tokens.revoke');
    let tokenId: TokenId;
    try { tokenId = TokenId.parse(id); } catch { throw new NotFoundError(`token ${JSON.stringify(id.slice(0, 80))} not found`); }
    const token = await this.md.getToken(tokenId);
    if (!token || token.tenantId !== actor.tenantId) throw new NotFoundError(`token ${id} not found`);
    await this.md.revokeToken(tokenId, this.now());
  }

  private newToken(tenantId: TenantId, name: string, volumeId: VolumeId | null, readOnly: boolean, expiresAt: Date | null, attachmentId: AttachmentId | null = null, parentId: TokenId | null = null): { token: TokenRecord; bearer: string } {
    const id = TokenId.new();
    const { secretHash, bearer } = mintToken(id);
    return { token: { id, tenantId, secretHash, name, volumeId, readOnly, createdAt: this.now(), expiresAt, revokedAt: null, attachmentId, parentId }, bearer };
  }

  // ---------------------------------------------------------------- volumes

  async createVolume(actor: Actor, name: string, opts: VolumeOptions = {}): Promise<VolumeRecord> {
    authorize(actor, 'volumes.create');
    const volumeName = parseVolumeName(name);
    const tenant = await this.tenantOf(actor);
    const now = this.now();
    const id = VolumeId.new();
    const commit = this.newCommitRecord({ volumeId: id, parent: null, seq: 1, tree: EMPTY_TREE.hash, size: 0, fileCount: 0, message: 'create volume', author: actor.name, changed: [], overwritten: [], createdAt: now });
    const volume: VolumeRecord = {
      id, tenantId: actor.tenantId, name: volumeName,
      accessMode: checkAccessMode(opts.accessMode ?? 'RWO'),
      cap: checkCap(opts.cap ?? tenant.defaultCap),
      tuning: mergeTuning(DEFAULT_TUNING, opts.tuning),
      head: commit.id, size: 0, fileCount: 0, createdAt: now, updatedAt: now, ancestors: [],
    };
    await this.md.transaction(async (tx) => {
      await tx.insertVolume(volume);
      await tx.insertCommit(commit);
    });
    return volume;
  }

  async getOrCreateVolume(actor: Actor, name: string, opts: VolumeOptions = {}): Promise<{ volume: VolumeRecord; created: boolean }> {
    const existing = await this.findVolume(actor, name);
    if (existing) return { volume: existing, created: false };
    try {
      return { volume: await this.createVolume(actor, name, opts), created: true };
    } catch (e) {
      // Another caller created it between our read and our insert: theirs wins.
      if (!(e instanceof AlreadyExistsError)) throw e;
      return { volume: await this.volumeFor(actor, name, 'read'), created: false };
    }
  }

  async getVolume(actor: Actor, name: string): Promise<VolumeRecord> {
    return this.volumeFor(actor, name, 'read');
  }

  async listVolumes(actor: Actor): Promise<VolumeRecord[]> {
    authorize(actor, 'volume.read');
    const all = await this.md.listVolumes(actor.tenantId);
    return actor.volumeId ? all.filter((v) => v.id === actor.volumeId) : all;
  }

  async updateVolume(actor: Actor, name: string, patch: VolumeOptions): Promise<VolumeRecord> {
    authorize(actor, 'volumes.configure');
    const vol = await this.volumeFor(actor, name, 'write');
    await this.md.updateVolume(vol.id, {
      ...(patch.cap !== undefined ? { cap: checkCap(patch.cap) } : {}),
      ...(patch.accessMode !== undefined ? { accessMode: checkAccessMode(patch.accessMode) } : {}),
      ...(patch.tuning !== undefined ? { tuning: mergeTuning(vol.tuning, patch.tuning) } : {}),
      updatedAt: this.now(),
    });
    return this.volumeFor(actor, name, 'read');
  }

  async deleteVolume(actor: Actor, name: string): Promise<void> {
    authorize(actor, 'volumes.delete');
    const vol = await this.volumeFor(actor, name, 'write');
    const now = this.now();
    // Its mounts fail with it, and their tokens die: they must not outlive the volume.
    const deleted = await this.md.transaction(async (tx) => {
      await failAttachments(tx, vol.id, VOLUME_DELETED, now);
      return tx.deleteVolume(vol.id);
    });
    if (!deleted) throw new NotFoundError(`volume "${name}" not found`);
  }

  /** The volume if this actor may see it, else undefined. */
  private async findVolume(actor: Actor, name: string): Promise<VolumeRecord | undefined> {
    const vol = await this.md.getVolumeByName(actor.tenantId, parseVolumeName(name));
    if (!vol || (actor.volumeId && vol.id !== actor.volumeId)) return undefined;
    return vol;
  }

  /** The volume for a read or a write; NotFound for anything the actor may not see. */
  private async volumeFor(actor: Actor, name: string, access: 'read' | 'write'): Promise<VolumeRecord> {
    authorize(actor, access === 'write' ? 'volume.write' : 'volume.read');
    const vol = await this.findVolume(actor, name);
    if (!vol) throw new NotFoundError(`volume "${name}" not found`);
    return vol;
  }

  // ---------------------------------------------------------------- commits

  async prepareUpload(actor: Actor, volume: string, chunks: Array<{ hash: string; size: number }>): Promise<{ missing: MissingChunk[]; present: number }> {
    const vol = await this.volumeFor(actor, volume, 'write');
    if (!Array.isArray(chunks) || chunks.length > MAX_UPLOAD_BATCH) throw new InvalidArgumentError(`ask for at most ${MAX_UPLOAD_BATCH} chunks per request`);
    const wanted = new Map<ChunkHash, number>();
    for (const c of chunks) {
      const hash = ChunkHash.parse(c.hash);
      if (!Number.isSafeInteger(c.size) || c.size < 1 || c.size > LARGE_CHUNK_SIZE) throw new InvalidArgumentError(`chunk ${hash}: size must be between 1 and ${LARGE_CHUNK_SIZE} bytes`);
      wanted.set(hash, c.size);
    }
    const now = this.now();
    // Present means "yours and stored": a chunk stored only for others is reported missing (and its size never
    // compared), so this answer reveals nothing about other tenants' or other volumes' content.
    const owned = await this.md.ownedChunks(scopeOf(actor, vol), [...wanted.keys()]);
    const rows = await this.md.getChunks(owned);
    for (const row of rows) {
      if (row.size !== wanted.get(row.hash)) throw new InvalidArgumentError(`chunk ${row.hash} is stored with ${row.size} bytes, not ${wanted.get(row.hash)}`);
      wanted.delete(row.hash);
    }
    // Touch what we report as present, so garbage collection keeps it for the commit that follows.
    await this.md.touchChunks(rows.map((r) => r.hash), now);
    // A fresh key per upload: GC deleting an old copy can never delete this one.
    const planned = [...wanted].map(([hash, size]) => ({ hash, size, key: newChunkKey(hash) }));
    await this.reserve(actor, vol, planned.map((p) => ({ key: p.key, bytes: p.size })));
    const missing = await mapLimit(planned, 16, async ({ hash, size, key }) => {
      const request = await this.blobs.sign(key, 'PUT', { expiresIn: this.urlTtl, sha256: hash, size });
      return { hash, size, key, request };
    });
    return { missing, present: rows.length };
  }

  /** Reserves uncommitted bytes for signed PUTs about to be issued (engine/upload-quota). */
  private async reserve(actor: Actor, vol: VolumeRecord, items: Array<{ key: string; bytes: number }>, expiresAt?: Date): Promise<void> {
    if (items.length === 0) return;
    const now = this.now();
    const tenant = await this.tenantOf(actor);
    // A signed PUT may be used until it expires, and its object committed for an upload window after that.
    const until = expiresAt ?? new Date(now.getTime() + this.urlTtl * 1000 + this.uploadWindow);
    await reserveUploads(this.md, tenant, vol, items, { now, expiresAt: until, defaultQuota: this.defaultUncommittedQuota });
  }

  async reserveStagedUpload(actor: Actor, volume: string, id: string, bytes: number, expiresAt: Date): Promise<void> {
    const vol = await this.volumeFor(actor, volume, 'write');
    await this.reserve(actor, vol, [{ key: `upload:${id}`, bytes }], expiresAt);
  }

  async releaseStagedUpload(actor: Actor, id: string): Promise<void> {
    await this.md.releaseUploadReservations(actor.tenantId, [`upload:${id}`]);
  }

  async commit(actor: Actor, volume: string, input: CommitInput): Promise<CommitResult> {
    const vol = await this.volumeFor(actor, volume, 'write');
    const now = this.now();
    const edits = await parseChanges(input.changes, now.getTime());
    // Mounts (attachment tokens) store the links their programs make; every other writer keeps links inside the volume.
    if (actor.attachmentId === null) refuseEscapingSymlinks(edits);
    const message = checkMessage(input.message ?? '');
    const base = input.base === undefined ? undefined : await this.resolveCommit(vol, input.base);
    const taken = await checkCommitChunks(
      { md: this.md, blobs: this.blobs, now, uploadWindow: this.uploadWindow, maxVerifyBytes: this.maxVerifyBytes },
      { needed: referencedChunks(edits), uploads: input.uploads ?? [], packs: input.packs ?? [], scope: scopeOf(actor, vol), holders: holdersOf(vol), issuedTo: { tenantId: vol.tenantId, volumeId: vol.id } },
    );
    const result = await this.publish(vol, async (head) => {
      const bestEffort = input.bestEffort === true;
      const refuseOverwrites = (overwritten: string[]) => {
        if (overwritten.length > 0 && input.onConflict === 'fail') {
          throw new ConflictError(`${overwritten.length} path(s) changed since commit ${base!.id.slice(0, 12)}: ${overwritten.slice(0, 5).join(', ')}`, { details: { paths: overwritten.slice(0, 1000) } });
        }
      };
      // Without bestEffort every edit applies or the commit fails, so overwrites are known (and refused) before any work.
      let overwritten = base && !bestEffort ? await overwrittenPaths(this.reader, base.tree, head.tree, edits) : [];
      refuseOverwrites(overwritten);
      const editor = await TreeEditor.open(this.reader, head.tree);
      const skipped = await applyEdits(editor, edits, { bestEffort });
      // A skipped edit wrote nothing: it neither overwrote nor changed a path.
      const applied = skipped.length === 0 ? edits : withoutSkipped(edits, skipped);
      if (base && bestEffort) {
        overwritten = await overwrittenPaths(this.reader, base.tree, head.tree, applied);
        refuseOverwrites(overwritten);
      }
      // Everything skipped still publishes, like any other commit that changes nothing: it records the attempt.
      const flushed = await editor.flush();
      if (actor.attachmentId === null && applied.some((e) => e.op === 'move')) {
        const fresh = new Map(flushed.newTrees.map((t) => [t.hash, t.data]));
        const after = new TreeReader({ getTree: async (h) => fresh.get(h) ?? this.md.getTree(h) });
        await refuseEscapingMovedLinks(after, flushed.root, applied);
      }
      return { tree: flushed.root, size: flushed.size, fileCount: flushed.fileCount, newTrees: flushed.newTrees, message, changed: editedPaths(applied), overwritten, skipped };
    }, actor);
    // What this commit took in no longer counts as uncommitted; a failure here only leaves reservations to expire.
    await this.md.releaseUploadReservations(actor.tenantId, taken).catch(() => undefined);
    return result;
  }

  async listCommits(actor: Actor, volume: string, opts: { limit?: number; before?: number } = {}): Promise<{ commits: CommitRecord[]; nextBefore: number | null }> {
    const vol = await this.volumeFor(actor, volume, 'read');
    const limit = opts.limit ?? 50;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new InvalidArgumentError('limit must be between 1 and 1000');
    if (opts.before !== undefined && (!Number.isSafeInteger(opts.before) || opts.before < 1)) throw new InvalidArgumentError('before must be a positive commit sequence number');
    const commits = await this.md.listCommits(vol.id, { limit: limit + 1, ...(opts.before !== undefined ? { beforeSeq: opts.before } : {}) });
    const page = commits.slice(0, limit);
    return { commits: page, nextBefore: commits.length > limit ? page.at(-1)!.seq : null };
  }

  async preparePack(actor: Actor, volume: string, pack: { size: number; sha256: string }): Promise<{ key: string; request: SignedRequest }> {
    const vol = await this.volumeFor(actor, volume, 'write');
    if (!Number.isSafeInteger(pack.size) || pack.size < 1 || pack.size > MAX_PACK_SIZE) throw new InvalidArgumentError(`pack size must be between 1 and ${MAX_PACK_SIZE} bytes`);
    if (typeof pack.sha256 !== 'string' || !ChunkHash.is(pack.sha256)) throw new InvalidArgumentError('pack sha256 must be 64 lowercase hex characters');
    const key = newPackKey(pack.sha256);
    await this.reserve(actor, vol, [{ key, bytes: pack.size }]);
    return { key, request: await this.blobs.sign(key, 'PUT', { expiresIn: this.urlTtl, sha256: pack.sha256, size: pack.size }) };
  }

  /**
   * Builds a new commit on the current head and moves the head to it by
   * compare-and-swap, rebuilding on the new head when another commit won.
   */
  private async publish(
    vol: VolumeRecord,
    build: (head: CommitRecord) => Promise<{ tree: TreeHash; size: number; fileCount: number; newTrees: Array<{ hash: TreeHash; data: Uint8Array }>; message: string; changed: string[]; overwritten: string[]; skipped?: SkippedChange[] }>,
    actor: Actor,
  ): Promise<CommitResult> {
    const tenant = await this.md.getTenant(vol.tenantId);
    const once = async (): Promise<CommitResult> => {
      const current = await this.md.getVolume(vol.id);
      if (!current) throw new NotFoundError(`volume "${vol.name}" not found (it was deleted)`);
      const head = await this.md.getCommit(current.head);
      if (!head) throw new UnavailableError(`head commit of volume "${vol.name}" is missing`);
      const out = await build(head);
      if (out.size > current.cap && out.size > head.size) {
        throw new QuotaExceededError(
          `volume "${vol.name}" is capped at ${formatSize(current.cap)} (${current.cap} bytes); this change would make it ${formatSize(out.size)} (${out.size} bytes). Free space or raise the cap with: stowage volume resize ${vol.name} SIZE`,
          { details: { cap: current.cap, size: out.size } },
        );
      }
      if (tenant) await checkStorageQuota(this.md, tenant, { volume: vol.name, from: head.size, to: out.size });
      const now = this.now();
      await storeTrees(this.md, out.newTrees, now);
      const commit = this.newCommitRecord({ volumeId: vol.id, parent: head.id, seq: head.seq + 1, tree: out.tree, size: out.size, fileCount: out.fileCount, message: out.message, author: actor.name, changed: out.changed, overwritten: out.overwritten, createdAt: now });
      const moved = await this.md.transaction(async (tx) => {
        if (!(await tx.casHead(vol.id, head.id, { head: commit.id, size: out.size, fileCount: out.fileCount, updatedAt: now }))) return false;
        await tx.insertCommit(commit);
        return true;
      });
      if (!moved) throw new HeadMoved();
      for (const listener of this.commitListeners) listener(vol.id);
      return { commit, overwritten: out.overwritten, skipped: out.skipped ?? [] };
    };
    return this.locks.run(vol.id, async () => {
      try {
        return await retry(HEAD_CAS_RETRY, once, { attempts: this.commitAttempts });
      } catch (e) {
        if (!(e instanceof HeadMoved)) throw e;
        throw new UnavailableError(`volume "${vol.name}" is too busy: gave up after ${this.commitAttempts} concurrent-commit retries; try again`);
      }
    });
  }

  private newCommitRecord(c: { volumeId: VolumeId; parent: CommitId | null; seq: number; tree: TreeHash; size: number; fileCount: number; message: string; author: string; changed: string[]; overwritten: string[]; createdAt: Date }): CommitRecord {
    return {
      id: commitId(c), volumeId: c.volumeId, seq: c.seq, parent: c.parent, tree: c.tree, message: c.message, author: c.author,
      size: c.size, fileCount: c.fileCount, createdAt: c.createdAt,
      summary: { changed: c.changed.length, paths: c.changed.slice(0, SUMMARY_PATHS), overwritten: c.overwritten.slice(0, SUMMARY_PATHS) },
    };
  }

  /** A commit of this volume by id; NotFound otherwise. */
  private async resolveCommit(vol: VolumeRecord, id: string): Promise<CommitRecord> {
    const commit = CommitId.is(id) ? await this.md.getCommit(id as CommitId) : undefined;
    if (!commit || commit.volumeId !== vol.id) throw new NotFoundError(`commit ${JSON.stringify(id.slice(0, 80))} not found in volume "${vol.name}"`);
    return commit;
  }

  /** The commit a snapshot, a commit id or (neither) the head names. */
  private async targetCommit(vol: VolumeRecord, target: { snapshot?: string; commit?: string }): Promise<CommitRecord> {
    if (target.snapshot !== undefined && target.commit !== undefined) throw new InvalidArgumentError('give a snapshot or a commit, not both');
    if (target.snapshot !== undefined) {
      const snap = await this.md.getSnapshot(vol.id, parseVolumeName(target.snapshot, 'snapshot'));
      if (!snap) throw new NotFoundError(`snapshot "${target.snapshot}" not found in volume "${vol.name}"`);
      const commit = await this.md.getCommit(snap.commitId);
      if (!commit) throw new UnavailableError(`commit of snapshot "${target.snapshot}" is missing`);
      return commit;
    }
    return this.resolveCommit(vol, target.commit ?? vol.head);
  }

  // ---------------------------------------------------------------- snapshots, restore, fork

  async createSnapshot(actor: Actor, volume: string, opts: { name?: string; commit?: string } = {}): Promise<SnapshotRecord> {
    const vol = await this.volumeFor(actor, volume, 'write');
    const commit = await this.resolveCommit(vol, opts.commit ?? vol.head);
    const now = this.now();
    const snap: SnapshotRecord = {
      id: SnapshotId.new(), volumeId: vol.id, commitId: commit.id, createdAt: now,
      name: opts.name === undefined ? defaultSnapshotName(now) : parseVolumeName(opts.name, 'snapshot'),
    };
    await this.md.insertSnapshot(snap).catch((e: unknown) => {
      if (e instanceof AlreadyExistsError) throw new AlreadyExistsError(`snapshot "${snap.name}" already exists in volume "${vol.name}"`);
      throw e;
    });
    return snap;
  }

  async listSnapshots(actor: Actor, volume: string): Promise<SnapshotRecord[]> {
    const vol = await this.volumeFor(actor, volume, 'read');
    return this.md.listSnapshots(vol.id);
  }

  async deleteSnapshot(actor: Actor, volume: string, snapshot: string): Promise<void> {
    const vol = await this.volumeFor(actor, volume, 'write');
    if (!(await this.md.deleteSnapshot(vol.id, parseVolumeName(snapshot, 'snapshot')))) throw new NotFoundError(`snapshot "${snapshot}" not found in volume "${volume}"`);
  }

  async restore(actor: Actor, volume: string, target: { snapshot?: string; commit?: string }): Promise<CommitResult> {
    const vol = await this.volumeFor(actor, volume, 'write');
    if (target.snapshot === undefined && target.commit === undefined) throw new InvalidArgumentError('restore needs a snapshot or a commit');
    const source = await this.targetCommit(vol, target);
    // Recent touch: GC treats the tree as a root while this restore is in flight.
    await this.md.touchTrees([source.tree], this.now());
    const label = target.snapshot !== undefined ? `snapshot ${target.snapshot}` : `commit ${source.id.slice(0, 12)}`;
    return this.publish(vol, async () => ({ tree: source.tree, size: source.size, fileCount: source.fileCount, newTrees: [], message: `restore ${label}`, changed: ['/'], overwritten: [] }), actor);
  }

  async fork(actor: Actor, volume: string, req: { name: string; snapshot?: string; commit?: string } & VolumeOptions): Promise<VolumeRecord> {
    authorize(actor, 'volumes.fork');
    const src = await this.volumeFor(actor, volume, 'read');
    const name = parseVolumeName(req.name);
    const source = await this.targetCommit(src, req);
    const cap = checkCap(req.cap ?? src.cap);
    if (source.size > cap) throw new QuotaExceededError(`cannot fork: the source holds ${formatSize(source.size)} (${source.size} bytes), over the cap of ${formatSize(cap)} (${cap} bytes)`, { details: { cap, size: source.size } });
    await checkStorageQuota(this.md, await this.tenantOf(actor), { volume: name, from: 0, to: source.size });
    const now = this.now();
    await this.md.touchTrees([source.tree], now);
    const id = VolumeId.new();
    const commit = this.newCommitRecord({ volumeId: id, parent: source.id, seq: 1, tree: source.tree, size: source.size, fileCount: source.fileCount, message: `fork of ${src.name}@${source.id.slice(0, 12)}`, author: actor.name, changed: [], overwritten: [], createdAt: now });
    const volumeRecord: VolumeRecord = {
      id, tenantId: actor.tenantId, name, accessMode: checkAccessMode(req.accessMode ?? src.accessMode), cap,
      tuning: mergeTuning(src.tuning, req.tuning), head: commit.id, size: source.size, fileCount: source.fileCount, createdAt: now, updatedAt: now,
      // It holds what the source held: it owns what the source (and the source's own sources) owned.
      ancestors: [{ volumeId: src.id, until: now }, ...src.ancestors],
    };
    await this.md.transaction(async (tx) => {
      await tx.insertVolume(volumeRecord);
      await tx.insertCommit(commit);
    });
    return volumeRecord;
  }

  // ---------------------------------------------------------------- reads

  async stat(actor: Actor, volume: string, path: string, opts: { commit?: string } = {}): Promise<{ commit: CommitId; entry: FileInfo }> {
    const { commit, path: p } = await this.readTarget(actor, volume, path, opts.commit);
    if (p === '/') return { commit: commit.id, entry: { path: '/', name: '', type: 'dir', mode: 0o755, mtime: commit.createdAt.getTime(), size: commit.size, fileCount: commit.fileCount } };
    const entry = await this.reader.lookup(commit.tree, p);
    if (!entry) throw new NotFoundError(`no such file or directory: ${p}`);
    return { commit: commit.id, entry: toFileInfo(p, entry) };
  }

  async list(actor: Actor, volume: string, path: string, opts: { commit?: string; recursive?: boolean; limit?: number; after?: string } = {}): Promise<{ commit: CommitId; entries: FileInfo[]; nextCursor: string | null }> {
    const { commit, path: p } = await this.readTarget(actor, volume, path, opts.commit);
    // No limit from internal callers means everything; the HTTP API defaults to 1000 per page.
    const limit = opts.limit ?? Infinity;
    if (opts.limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT)) throw new InvalidArgumentError(`limit must be between 1 and ${MAX_LIST_LIMIT}`);
    const after = cursorParts(p, opts.after === undefined ? undefined : parsePath(opts.after));
    if (p !== '/') {
      const entry = await this.reader.lookup(commit.tree, p);
      if (!entry) throw new NotFoundError(`no such file or directory: ${p}`);
      if (entry.type !== 'dir') return { commit: commit.id, entries: [toFileInfo(p, entry)], nextCursor: null };
    }
    const dir = await this.reader.dir(commit.tree, p);
    const entries: FileInfo[] = [];
    let nextCursor: string | null = null;
    for await (const { path: full, entry } of entriesAfter(this.reader, dir, p === '/' ? '' : p, after, opts.recursive === true)) {
      if (entries.length >= limit) {
        nextCursor = entries.at(-1)!.path;
        break;
      }
      entries.push(toFileInfo(full, entry));
    }
    return { commit: commit.id, entries, nextCursor };
  }

  async readPlan(actor: Actor, volume: string, path: string, opts: { commit?: string } = {}): Promise<ReadPlan> {
    const { commit, path: p } = await this.readTarget(actor, volume, path, opts.commit);
    const entry = p === '/' ? undefined : await this.reader.lookup(commit.tree, p);
    if (!entry && p !== '/') throw new NotFoundError(`no such file or directory: ${p}`);
    if (!entry || entry.type !== 'file') throw new InvalidArgumentError(`${p} is not a regular file`);
    const rows = new Map((await this.md.getChunks([...new Set(entry.chunks)])).map((r) => [r.hash, r]));
    const chunks = await mapLimit(entry.chunks, 16, async (hash) => {
      const row = rows.get(hash);
      if (!row) throw new UnavailableError(`chunk ${hash} of ${p} is missing from the store`);
      // A packed chunk's URL is signed for its own bytes only: the pack also holds other files, maybe other tenants'.
      const range = isPackKey(row.objectKey) ? { start: row.offset, end: row.offset + row.size - 1 } : undefined;
      const request = await this.blobs.sign(row.objectKey, 'GET', { expiresIn: this.urlTtl, ...(range ? { range } : {}) });
      return { hash, size: row.size, request };
    });
    return { commit: commit.id, entry: toFileInfo(p, entry), chunks };
  }

  async readFile(actor: Actor, volume: string, path: string, opts: { commit?: string; range?: { start: number; end: number } } = {}): Promise<{ commit: CommitId; entry: FileInfo; body: AsyncIterable<Uint8Array> }> {
    const { commit, path: p } = await this.readTarget(actor, volume, path, opts.commit);
    const entry = p === '/' ? undefined : await this.reader.lookup(commit.tree, p);
    if (!entry && p !== '/') throw new NotFoundError(`no such file or directory: ${p}`);
    if (!entry || entry.type !== 'file') throw new InvalidArgumentError(`${p} is not a regular file`);
    if (opts.range && (opts.range.start < 0 || opts.range.start > opts.range.end || opts.range.end >= entry.size)) {
      throw new InvalidArgumentError(`range ${opts.range.start}-${opts.range.end} is outside ${p} (${entry.size} bytes)`);
    }
    return { commit: commit.id, entry: toFileInfo(p, entry), body: readEntry(this.md, this.blobs, entry, opts.range) };
  }

  async shareActor(tokenId: string, volumeId: string): Promise<{ actor: Actor; volume: string }> {
    const token = await this.md.getToken(TokenId.parse(tokenId));
    if (!token) throw new ForbiddenError('the token that signed this URL no longer exists: ask for a new URL');
    // The signer's whole chain: a URL signed by a mount token dies with the token that made the mount.
    const dead = await this.whyDead(token);
    if (dead) throw new ForbiddenError(`this URL's signer can no longer sign: ${dead.replace('this API token', 'its token')}; ask for a new URL`);
    const vol = await this.md.getVolume(VolumeId.parse(volumeId));
    if (!vol || vol.tenantId !== token.tenantId || (token.volumeId && token.volumeId !== vol.id)) throw new NotFoundError('the volume of this URL no longer exists');
    return { actor: { tenantId: token.tenantId, tokenId: token.id, name: token.name, volumeId: vol.id, readOnly: true, attachmentId: token.attachmentId }, volume: vol.name };
  }

  async writeFile(actor: Actor, volume: string, path: string, body: AsyncIterable<unknown>, opts: WriteFileOptions = {}): Promise<CommitResult & { uploadedChunks: number; sha256: string }> {
    const vol = await this.volumeFor(actor, volume, 'write');
    const p = parsePath(path);
    if (opts.size !== undefined) {
      if (!Number.isSafeInteger(opts.size) || opts.size < 0) throw new InvalidArgumentError('size must be a whole number of bytes');
      if (vol.size + opts.size > vol.cap) {
        throw new QuotaExceededError(`volume "${vol.name}" is capped at ${formatSize(vol.cap)} (${vol.cap} bytes); writing ${formatSize(opts.size)} to ${p} could make it ${formatSize(vol.size + opts.size)} (${vol.size + opts.size} bytes)`, { details: { cap: vol.cap, size: vol.size + opts.size } });
      }
    }
    const stored = await storeStream(this.md, this.blobs, body, opts.size !== undefined ? chunkSizeFor(opts.size) : SMALL_CHUNK_SIZE, this.now, { scope: scopeOf(actor, vol), holders: holdersOf(vol) });
    if (opts.size !== undefined && stored.size !== opts.size) throw new InvalidArgumentError(`expected ${opts.size} bytes for ${p}, received ${stored.size}`);
    if (opts.sha256 !== undefined && stored.sha256 !== opts.sha256.toLowerCase()) {
      throw new InvalidArgumentError(`content of ${p} does not match the expected SHA-256 (expected ${opts.sha256}, got ${stored.sha256}); nothing was committed`);
    }
    const change: Change = { op: 'put', path: p, size: stored.size, chunkSize: stored.chunkSize, chunks: stored.chunks };
    if (opts.mode !== undefined) change.mode = opts.mode;
    if (opts.mtime !== undefined) change.mtime = opts.mtime;
    if (opts.createParents !== undefined) change.createParents = opts.createParents;
    const result = await this.commit(actor, volume, {
      changes: [change], message: opts.message ?? `write ${p}`,
      ...(opts.base !== undefined ? { base: opts.base } : {}), ...(opts.onConflict !== undefined ? { onConflict: opts.onConflict } : {}),
    });
    return { ...result, uploadedChunks: stored.uploadedChunks, sha256: stored.sha256 };
  }

  // ---------------------------------------------------------------- search, replace, edit, change feed

  async search(actor: Actor, volume: string, opts: SearchOptions = {}): Promise<SearchResult> {
    return search(this.fileOps, actor, volume, opts);
  }

  async replace(actor: Actor, volume: string, opts: ReplaceOptions): Promise<ReplaceResult> {
    return replace(this.fileOps, actor, volume, opts);
  }

  async edit(actor: Actor, volume: string, path: string, opts: EditOptions): Promise<{ commit: CommitRecord; path: string }> {
    return edit(this.fileOps, actor, volume, path, opts);
  }

  async changesSince(actor: Actor, volume: string, since: string, limit?: number): Promise<{ head: CommitId; commits: CommitChanges[] }> {
    return changesSince(this.fileOps, actor, volume, since, limit);
  }

  // ---------------------------------------------------------------- attachments (engine/attachments)

  async attach(actor: Actor, volume: string, req: AttachRequest): Promise<AttachResult> {
    return attach(this.attachmentHost, actor, volume, req);
  }

  async listAttachments(actor: Actor, volume: string, opts: { all?: boolean } = {}): Promise<AttachmentView[]> {
    return listAttachments(this.attachmentHost, actor, volume, opts);
  }

  async renewAttachment(actor: Actor, id: string): Promise<{ attachment: AttachmentView; tokenExpiresAt: Date }> {
    return renewAttachment(this.attachmentHost, actor, id);
  }

  async releaseAttachment(actor: Actor, id: string, req: ReleaseRequest = {}): Promise<AttachmentView> {
    return releaseAttachment(this.attachmentHost, actor, id, req);
  }

  /** The engine's internals that attachments (engine/attachments) are built on. */
  private get attachmentHost(): AttachmentHost {
    return {
      md: this.md, now: this.now, lease: this.attachmentLease,
      volumeFor: (actor, name, access) => this.volumeFor(actor, name, access),
      newToken: (tenantId, name, volumeId, readOnly, expiresAt, attachmentId, parentId) => this.newToken(tenantId, name, volumeId, readOnly, expiresAt, attachmentId, parentId),
    };
  }

  onCommit(listener: (volumeId: VolumeId) => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  /** The engine's internals that the file operations (engine/file-ops-host) are built on. */
  private get fileOps(): FileOpsHost {
    return {
      md: this.md, blobs: this.blobs, reader: this.reader, now: this.now,
      ownership: (actor, vol) => ({ scope: scopeOf(actor, vol), holders: holdersOf(vol) }),
      volumeFor: (actor, name, access) => this.volumeFor(actor, name, access),
      resolveCommit: (vol, id) => this.resolveCommit(vol, id),
      commit: (actor, volume, input) => this.commit(actor, volume, input),
    };
  }

  private async readTarget(actor: Actor, volume: string, path: string, commit?: string): Promise<{ commit: CommitRecord; path: VolumePath }> {
    const vol = await this.volumeFor(actor, volume, 'read');
    const p = parsePath(path);
    return { commit: await this.resolveCommit(vol, commit ?? vol.head), path: p };
  }

  /**
   * Fills the chunk-ownership index once from what existing volumes hold
   * (engine/chunk-ownership); a no-op after the first complete run. Servers
   * call it at start, before they serve commits.
   */
  async backfillChunkOwners(): Promise<number> {
    return backfillChunkOwners(this.md, this.reader, this.now());
  }

  // ---------------------------------------------------------------- gc

  async gc(opts: GcOptions = {}): Promise<GcReport> {
    const grace = opts.grace ?? 60 * 60_000;
    if (grace < this.uploadWindow) throw new InvalidArgumentError(`grace (${grace} ms) must be at least the upload window (${this.uploadWindow} ms), or uploads in flight could be collected`);
    return collectGarbage({ metadata: this.md, blobs: this.blobs, reader: this.reader }, {
      now: this.now(), grace, retention: opts.retention ?? 7 * 86_400_000, dryRun: opts.dryRun === true,
    });
  }
}

// ---------------------------------------------------------------- helpers

function checkCap(cap: number): number {
  if (!Number.isSafeInteger(cap) || cap < 1 || cap > MAX_CAP) throw new InvalidArgumentError(`cap must be a whole number of bytes between 1 and ${MAX_CAP}`);
  return cap;
}

function checkQuota(quota: number | null, what: string): number | null {
  if (quota !== null && (!Number.isSafeInteger(quota) || quota < 0 || quota > MAX_CAP)) throw new InvalidArgumentError(`${what} must be a whole number of bytes between 0 and ${MAX_CAP}`);
  return quota;
}

function checkAccessMode(mode: string): AccessMode {
  if (!ACCESS_MODES.includes(mode as AccessMode)) throw new InvalidArgumentError(`access mode must be one of ${ACCESS_MODES.join(', ')}`);
  return mode as AccessMode;
}

function checkMessage(message: string): string {
  if (typeof message !== 'string' || message.length > 4096) throw new InvalidArgumentError('commit message must be a string of at most 4096 characters');
  return message;
}

function mergeTuning(base: MountTuning, patch: Partial<MountTuning> | undefined): MountTuning {
  const t = { ...base, ...(patch ?? {}) };
  for (const k of ['cacheSize', 'bufferSize', 'prefetch'] as const) {
    if (!Number.isSafeInteger(t[k]) || t[k] < 0) throw new InvalidArgumentError(`tuning.${k} must be a whole number >= 0`);
  }
  if (typeof t.writeback !== 'boolean') throw new InvalidArgumentError('tuning.writeback must be true or false');
  return t;
}

function defaultSnapshotName(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').replace(/\..*/, '');
  return `snap-${stamp}-${randomHex(2)}`;
}

function withoutSkipped(edits: readonly Edit[], skipped: readonly SkippedChange[]): Edit[] {
  const gone = new Set(skipped.map((s) => s.index));
  return edits.filter((_, i) => !gone.has(i));
}

function editedPaths(edits: readonly Edit[]): string[] {
  const out = new Set<string>();
  for (const e of edits) {
    if (e.op === 'move') { out.add(e.from); out.add(e.to); } else out.add(e.path);
  }
  return [...out];
}

/** The wire view of a tree entry: owner and times beyond mtime only where recorded (absent atime/ctime: same as mtime). */
export function toFileInfo(path: string, e: Entry): FileInfo {
  const base = { path, name: e.name, type: e.type, mode: e.mode, mtime: e.mtime, ...canonicalMeta(e) };
  switch (e.type) {
    case 'file': return { ...base, size: e.size, chunkSize: e.chunkSize, chunks: e.chunks };
    case 'dir': return { ...base, size: e.size, fileCount: e.fileCount };
    case 'symlink': return { ...base, size: Buffer.byteLength(e.target), target: e.target };
  }
}

