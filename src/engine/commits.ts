/**
 * @module engine/commits
 * The commit protocol, server side. A writer asks which chunks are missing
 * (prepareUpload, preparePack: signed PUTs, each reserving its bytes against
 * the tenant's uncommitted quota), puts those straight into the blob store,
 * then commits metadata only. The commit checks every referenced chunk is
 * owned by the committer or proven in the commit (engine/commit-chunks),
 * applies the change set to the *current* head (so concurrent commits on
 * different paths merge, and the same path is last-writer-wins in the order
 * heads move), and publishes: moves the head by compare-and-swap, rebuilding
 * on the new head when another commit won.
 */
import { LARGE_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { mapLimit } from '@stowage/sdk/common/concurrency.js';
import {
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  QuotaExceededError,
  UnavailableError,
} from '@stowage/sdk/common/errors.js';
import { ChunkHash, type TreeHash, type VolumeId } from '@stowage/sdk/common/ids.js';
import { KeyedMutex } from '../common/keyed-mutex.js';
import { retry, type RetryPolicy } from '@stowage/sdk/common/retry.js';
import { formatSize } from '@stowage/sdk/common/sizes.js';
import { newObjectKey } from '../model/object-keys.js';
import type { SignedRequest } from '../stores/blob-store.js';
import type { CommitRecord, VolumeRecord } from '@stowage/sdk/model/records.js';
import type { AccessService } from './access.js';
import {
  applyEdits,
  overwrittenPaths,
  parseChanges,
  referencedChunks,
  refuseEscapingMovedLinks,
  refuseEscapingSymlinks,
  type Edit,
} from './change-set.js';
import { holdersOf, scopeOf } from './chunk-ownership.js';
import { checkCommitChunks } from './commit-chunks.js';
import { newCommitRecord, resolveCommit } from './commit-records.js';
import type { EngineContext } from './context.js';
import { MAX_PACK_SIZE } from './packs.js';
import { storeTrees, TreeEditor } from './tree/tree-editor.js';
import { TreeReader } from './tree/tree-reader.js';
import type { Actor, CommitInput, CommitResult, MissingChunk, SkippedChange } from './types.js';
import { checkStorageQuota, reserveUploads } from './upload-quota.js';

/** Another commit moved the head between our read and our compare-and-swap: rebuild on the new head. */
class HeadMoved extends Error {}
/** Rebuilds after a lost compare-and-swap: jittered (contenders spread out), from 5 ms up to 200 ms; attempts come from the engine's commitAttempts. */
const HEAD_CAS_RETRY: RetryPolicy = {
  name: 'head compare-and-swap',
  attempts: 30,
  baseDelayMs: 5,
  maxDelayMs: 200,
  jitter: 'full',
  retryable: (e) => e instanceof HeadMoved,
};

const MAX_UPLOAD_BATCH = 10_000;

/** What a commit builds on the head it is given: the new root and its totals, the nodes to store, and its summary. */
export interface CommitBuild {
  tree: TreeHash;
  size: number;
  fileCount: number;
  newTrees: Array<{ hash: TreeHash; data: Uint8Array }>;
  message: string;
  changed: string[];
  overwritten: string[];
  skipped?: SkippedChange[];
}

export class CommitService {
  private readonly locks = new KeyedMutex();
  private readonly commitListeners = new Set<(volumeId: VolumeId) => void>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly access: AccessService,
  ) {}

  async prepareUpload(
    actor: Actor,
    volume: string,
    chunks: Array<{ hash: string; size: number }>,
  ): Promise<{ missing: MissingChunk[]; present: number }> {
    const vol = await this.access.volumeFor(actor, volume, 'write');
    if (!Array.isArray(chunks) || chunks.length > MAX_UPLOAD_BATCH)
      throw new InvalidArgumentError(`ask for at most ${MAX_UPLOAD_BATCH} chunks per request`);
    const wanted = new Map<ChunkHash, number>();
    for (const c of chunks) {
      const hash = ChunkHash.parse(c.hash);
      if (!Number.isSafeInteger(c.size) || c.size < 1 || c.size > LARGE_CHUNK_SIZE)
        throw new InvalidArgumentError(`chunk ${hash}: size must be between 1 and ${LARGE_CHUNK_SIZE} bytes`);
      wanted.set(hash, c.size);
    }
    const now = this.ctx.now();
    // Present means "yours and stored": a chunk stored only for others is reported missing (and its size never
    // compared), so this answer reveals nothing about other tenants' or other volumes' content.
    const owned = await this.ctx.md.ownedChunks(scopeOf(actor, vol), [...wanted.keys()]);
    const rows = await this.ctx.md.getChunks(owned);
    for (const row of rows) {
      if (row.size !== wanted.get(row.hash))
        throw new InvalidArgumentError(
          `chunk ${row.hash} is stored with ${row.size} bytes, not ${wanted.get(row.hash)}`,
        );
      wanted.delete(row.hash);
    }
    // Touch what we report as present, so garbage collection keeps it for the commit that follows.
    await this.ctx.md.touchChunks(
      rows.map((r) => r.hash),
      now,
    );
    // A fresh key per upload: GC deleting an old copy can never delete this one.
    const planned = [...wanted].map(([hash, size]) => ({ hash, size, key: newObjectKey('chunk', hash) }));
    await this.reserve(
      actor,
      vol,
      planned.map((p) => ({ key: p.key, bytes: p.size })),
    );
    const missing = await mapLimit(planned, 16, async ({ hash, size, key }) => {
      const request = await this.ctx.blobs.sign(key, 'PUT', {
        expiresIn: this.ctx.settings.urlTtl,
        sha256: hash,
        size,
      });
      return { hash, size, key, request };
    });
    return { missing, present: rows.length };
  }

  async preparePack(
    actor: Actor,
    volume: string,
    pack: { size: number; sha256: string },
  ): Promise<{ key: string; request: SignedRequest }> {
    const vol = await this.access.volumeFor(actor, volume, 'write');
    if (!Number.isSafeInteger(pack.size) || pack.size < 1 || pack.size > MAX_PACK_SIZE)
      throw new InvalidArgumentError(`pack size must be between 1 and ${MAX_PACK_SIZE} bytes`);
    if (typeof pack.sha256 !== 'string' || !ChunkHash.is(pack.sha256))
      throw new InvalidArgumentError('pack sha256 must be 64 lowercase hex characters');
    const key = newObjectKey('pack', pack.sha256);
    await this.reserve(actor, vol, [{ key, bytes: pack.size }]);
    return {
      key,
      request: await this.ctx.blobs.sign(key, 'PUT', {
        expiresIn: this.ctx.settings.urlTtl,
        sha256: pack.sha256,
        size: pack.size,
      }),
    };
  }

  /** Reserves uncommitted bytes for signed PUTs about to be issued (engine/upload-quota). */
  private async reserve(
    actor: Actor,
    vol: VolumeRecord,
    items: Array<{ key: string; bytes: number }>,
    expiresAt?: Date,
  ): Promise<void> {
    if (items.length === 0) return;
    const now = this.ctx.now();
    const tenant = await this.access.tenantOf(actor);
    // A signed PUT may be used until it expires, and its object committed for an upload window after that.
    const until =
      expiresAt ?? new Date(now.getTime() + this.ctx.settings.urlTtl * 1000 + this.ctx.settings.uploadWindow);
    await reserveUploads(this.ctx.md, tenant, vol, items, {
      now,
      expiresAt: until,
      defaultQuota: this.ctx.settings.defaultUncommittedQuota,
    });
  }

  async reserveStagedUpload(actor: Actor, volume: string, id: string, bytes: number, expiresAt: Date): Promise<void> {
    const vol = await this.access.volumeFor(actor, volume, 'write');
    await this.reserve(actor, vol, [{ key: `upload:${id}`, bytes }], expiresAt);
  }

  async releaseStagedUpload(actor: Actor, id: string): Promise<void> {
    await this.ctx.md.releaseUploadReservations(actor.tenantId, [`upload:${id}`]);
  }

  async commit(actor: Actor, volume: string, input: CommitInput): Promise<CommitResult> {
    const vol = await this.access.volumeFor(actor, volume, 'write');
    const now = this.ctx.now();
    const edits = await parseChanges(input.changes, now.getTime());
    // Mounts (attachment tokens) store the links their programs make; every other writer keeps links inside the volume.
    if (actor.attachmentId === null) refuseEscapingSymlinks(edits);
    const message = checkMessage(input.message ?? '');
    const base = input.base === undefined ? undefined : await resolveCommit(this.ctx.md, vol, input.base);
    const taken = await checkCommitChunks(
      {
        md: this.ctx.md,
        blobs: this.ctx.blobs,
        now,
        uploadWindow: this.ctx.settings.uploadWindow,
        maxVerifyBytes: this.ctx.settings.maxVerifyBytes,
      },
      {
        needed: referencedChunks(edits),
        uploads: input.uploads ?? [],
        packs: input.packs ?? [],
        scope: scopeOf(actor, vol),
        holders: holdersOf(vol),
        issuedTo: { tenantId: vol.tenantId, volumeId: vol.id },
      },
    );
    const result = await this.publish(
      vol,
      async (head) => {
        const bestEffort = input.bestEffort === true;
        const refuseOverwrites = (overwritten: string[]) => {
          if (overwritten.length > 0 && input.onConflict === 'fail') {
            throw new ConflictError(
              `${overwritten.length} path(s) changed since commit ${base!.id.slice(0, 12)}: ${overwritten.slice(0, 5).join(', ')}`,
              { details: { paths: overwritten.slice(0, 1000) } },
            );
          }
        };
        // Without bestEffort every edit applies or the commit fails, so overwrites are known (and refused) before any work.
        let overwritten =
          base && !bestEffort ? await overwrittenPaths(this.ctx.reader, base.tree, head.tree, edits) : [];
        refuseOverwrites(overwritten);
        const editor = await TreeEditor.open(this.ctx.reader, head.tree);
        const skipped = await applyEdits(editor, edits, { bestEffort });
        // A skipped edit wrote nothing: it neither overwrote nor changed a path.
        const applied = skipped.length === 0 ? edits : withoutSkipped(edits, skipped);
        if (base && bestEffort) {
          overwritten = await overwrittenPaths(this.ctx.reader, base.tree, head.tree, applied);
          refuseOverwrites(overwritten);
        }
        // Everything skipped still publishes, like any other commit that changes nothing: it records the attempt.
        const flushed = await editor.flush();
        if (actor.attachmentId === null && applied.some((e) => e.op === 'move')) {
          const fresh = new Map(flushed.newTrees.map((t) => [t.hash, t.data]));
          const after = new TreeReader({ getTree: async (h) => fresh.get(h) ?? this.ctx.md.getTree(h) });
          await refuseEscapingMovedLinks(after, flushed.root, applied);
        }
        return {
          tree: flushed.root,
          size: flushed.size,
          fileCount: flushed.fileCount,
          newTrees: flushed.newTrees,
          message,
          changed: editedPaths(applied),
          overwritten,
          skipped,
        };
      },
      actor,
    );
    // What this commit took in no longer counts as uncommitted; a failure here only leaves reservations to expire.
    await this.ctx.md.releaseUploadReservations(actor.tenantId, taken).catch(() => undefined);
    return result;
  }

  async listCommits(
    actor: Actor,
    volume: string,
    opts: { limit?: number; before?: number } = {},
  ): Promise<{ commits: CommitRecord[]; nextBefore: number | null }> {
    const vol = await this.access.volumeFor(actor, volume, 'read');
    const limit = opts.limit ?? 50;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000)
      throw new InvalidArgumentError('limit must be between 1 and 1000');
    if (opts.before !== undefined && (!Number.isSafeInteger(opts.before) || opts.before < 1))
      throw new InvalidArgumentError('before must be a positive commit sequence number');
    const commits = await this.ctx.md.listCommits(vol.id, {
      limit: limit + 1,
      ...(opts.before !== undefined ? { beforeSeq: opts.before } : {}),
    });
    const page = commits.slice(0, limit);
    return { commits: page, nextBefore: commits.length > limit ? page.at(-1)!.seq : null };
  }

  onCommit(listener: (volumeId: VolumeId) => void): () => void {
    this.commitListeners.add(listener);
    return () => this.commitListeners.delete(listener);
  }

  /**
   * Builds a new commit on the current head and moves the head to it by
   * compare-and-swap, rebuilding on the new head when another commit won.
   */
  async publish(
    vol: VolumeRecord,
    build: (head: CommitRecord) => Promise<CommitBuild>,
    actor: Actor,
  ): Promise<CommitResult> {
    const tenant = await this.ctx.md.getTenant(vol.tenantId);
    const once = async (): Promise<CommitResult> => {
      const current = await this.ctx.md.getVolume(vol.id);
      if (!current) throw new NotFoundError(`volume "${vol.name}" not found (it was deleted)`);
      const head = await this.ctx.md.getCommit(current.head);
      if (!head) throw new UnavailableError(`head commit of volume "${vol.name}" is missing`);
      const out = await build(head);
      if (out.size > current.cap && out.size > head.size) {
        throw new QuotaExceededError(
          `volume "${vol.name}" is capped at ${formatSize(current.cap)} (${current.cap} bytes); this change would make it ${formatSize(out.size)} (${out.size} bytes). Free space or raise the cap with: stowage volume resize ${vol.name} SIZE`,
          { details: { cap: current.cap, size: out.size } },
        );
      }
      if (tenant) await checkStorageQuota(this.ctx.md, tenant, { volume: vol.name, from: head.size, to: out.size });
      const now = this.ctx.now();
      await storeTrees(this.ctx.md, out.newTrees, now);
      const commit = newCommitRecord({
        volumeId: vol.id,
        parent: head.id,
        seq: head.seq + 1,
        tree: out.tree,
        size: out.size,
        fileCount: out.fileCount,
        message: out.message,
        author: actor.name,
        changed: out.changed,
        overwritten: out.overwritten,
        createdAt: now,
      });
      const moved = await this.ctx.md.transaction(async (tx) => {
        if (
          !(await tx.casHead(vol.id, head.id, {
            head: commit.id,
            size: out.size,
            fileCount: out.fileCount,
            updatedAt: now,
          }))
        )
          return false;
        await tx.insertCommit(commit);
        return true;
      });
      if (!moved) throw new HeadMoved();
      for (const listener of this.commitListeners) listener(vol.id);
      return { commit, overwritten: out.overwritten, skipped: out.skipped ?? [] };
    };
    return this.locks.run(vol.id, async () => {
      try {
        return await retry(HEAD_CAS_RETRY, once, { attempts: this.ctx.settings.commitAttempts });
      } catch (e) {
        if (!(e instanceof HeadMoved)) throw e;
        throw new UnavailableError(
          `volume "${vol.name}" is too busy: gave up after ${this.ctx.settings.commitAttempts} concurrent-commit retries; try again`,
        );
      }
    });
  }
}

function checkMessage(message: string): string {
  if (typeof message !== 'string' || message.length > 4096)
    throw new InvalidArgumentError('commit message must be a string of at most 4096 characters');
  return message;
}

function withoutSkipped(edits: readonly Edit[], skipped: readonly SkippedChange[]): Edit[] {
  const gone = new Set(skipped.map((s) => s.index));
  return edits.filter((_, i) => !gone.has(i));
}

function editedPaths(edits: readonly Edit[]): string[] {
  const out = new Set<string>();
  for (const e of edits) {
    if (e.op === 'move') {
      out.add(e.from);
      out.add(e.to);
    } else out.add(e.path);
  }
  return [...out];
}
