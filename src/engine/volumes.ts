/**
 * @module engine/volumes
 * Volume lifecycle: create (with its first, empty commit), get-or-create,
 * list, configure, delete (its mounts fail with it), snapshots, restore (a
 * new commit whose tree is an older one's) and fork (a new volume on the
 * source's tree: one volume row and one commit row, whatever the size).
 */
import {
  AlreadyExistsError,
  InvalidArgumentError,
  NotFoundError,
  QuotaExceededError,
} from '@stowage/sdk/common/errors.js';
import { randomHex, SnapshotId, VolumeId } from '@stowage/sdk/common/ids.js';
import { parseVolumeName } from '@stowage/sdk/common/paths.js';
import { formatSize } from '@stowage/sdk/common/sizes.js';
import type { SnapshotRecord, VolumeRecord } from '@stowage/sdk/model/records.js';
import type { AccessService } from './access.js';
import { failAttachments, VOLUME_DELETED } from './attachments.js';
import { authorize } from './authority.js';
import { newCommitRecord, resolveCommit, targetCommit } from './commit-records.js';
import type { CommitService } from './commits.js';
import type { EngineContext } from './context.js';
import { EMPTY_TREE } from './tree/tree-codec.js';
import type { Actor, CommitResult, VolumeOptions } from './types.js';
import { checkStorageQuota } from './upload-quota.js';
import { checkAccessMode, checkCap, DEFAULT_TUNING, mergeTuning } from './volume-settings.js';

export class VolumeService {
  constructor(
    private readonly ctx: EngineContext,
    private readonly access: AccessService,
    private readonly commits: CommitService,
  ) {}

  async createVolume(actor: Actor, name: string, opts: VolumeOptions = {}): Promise<VolumeRecord> {
    authorize(actor, 'volumes.create');
    const volumeName = parseVolumeName(name);
    const tenant = await this.access.tenantOf(actor);
    const now = this.ctx.now();
    const id = VolumeId.new();
    const commit = newCommitRecord({
      volumeId: id,
      parent: null,
      seq: 1,
      tree: EMPTY_TREE.hash,
      size: 0,
      fileCount: 0,
      message: 'create volume',
      author: actor.name,
      changed: [],
      overwritten: [],
      createdAt: now,
    });
    const volume: VolumeRecord = {
      id,
      tenantId: actor.tenantId,
      name: volumeName,
      accessMode: checkAccessMode(opts.accessMode ?? 'RWO'),
      cap: checkCap(opts.cap ?? tenant.defaultCap),
      tuning: mergeTuning(DEFAULT_TUNING, opts.tuning),
      head: commit.id,
      size: 0,
      fileCount: 0,
      createdAt: now,
      updatedAt: now,
      ancestors: [],
    };
    await this.ctx.md.transaction(async (tx) => {
      await tx.insertVolume(volume);
      await tx.insertCommit(commit);
    });
    return volume;
  }

  async getOrCreateVolume(
    actor: Actor,
    name: string,
    opts: VolumeOptions = {},
  ): Promise<{ volume: VolumeRecord; created: boolean }> {
    const existing = await this.access.findVolume(actor, name);
    if (existing) return { volume: existing, created: false };
    try {
      return { volume: await this.createVolume(actor, name, opts), created: true };
    } catch (e) {
      // Another caller created it between our read and our insert: theirs wins.
      if (!(e instanceof AlreadyExistsError)) throw e;
      return { volume: await this.access.volumeFor(actor, name, 'read'), created: false };
    }
  }

  async getVolume(actor: Actor, name: string): Promise<VolumeRecord> {
    return this.access.volumeFor(actor, name, 'read');
  }

  async listVolumes(actor: Actor): Promise<VolumeRecord[]> {
    authorize(actor, 'volume.read');
    const all = await this.ctx.md.listVolumes(actor.tenantId);
    return actor.volumeId ? all.filter((v) => v.id === actor.volumeId) : all;
  }

  async updateVolume(actor: Actor, name: string, patch: VolumeOptions): Promise<VolumeRecord> {
    authorize(actor, 'volumes.configure');
    const vol = await this.access.volumeFor(actor, name, 'write');
    await this.ctx.md.updateVolume(vol.id, {
      ...(patch.cap !== undefined ? { cap: checkCap(patch.cap) } : {}),
      ...(patch.accessMode !== undefined ? { accessMode: checkAccessMode(patch.accessMode) } : {}),
      ...(patch.tuning !== undefined ? { tuning: mergeTuning(vol.tuning, patch.tuning) } : {}),
      updatedAt: this.ctx.now(),
    });
    return this.access.volumeFor(actor, name, 'read');
  }

  async deleteVolume(actor: Actor, name: string): Promise<void> {
    authorize(actor, 'volumes.delete');
    const vol = await this.access.volumeFor(actor, name, 'write');
    const now = this.ctx.now();
    // Its mounts fail with it, and their tokens die: they must not outlive the volume.
    const deleted = await this.ctx.md.transaction(async (tx) => {
      await failAttachments(tx, vol.id, VOLUME_DELETED, now);
      return tx.deleteVolume(vol.id);
    });
    if (!deleted) throw new NotFoundError(`volume "${name}" not found`);
  }

  async createSnapshot(
    actor: Actor,
    volume: string,
    opts: { name?: string; commit?: string } = {},
  ): Promise<SnapshotRecord> {
    const vol = await this.access.volumeFor(actor, volume, 'write');
    const commit = await resolveCommit(this.ctx.md, vol, opts.commit ?? vol.head);
    const now = this.ctx.now();
    const snap: SnapshotRecord = {
      id: SnapshotId.new(),
      volumeId: vol.id,
      commitId: commit.id,
      createdAt: now,
      name: opts.name === undefined ? defaultSnapshotName(now) : parseVolumeName(opts.name, 'snapshot'),
    };
    await this.ctx.md.insertSnapshot(snap).catch((e: unknown) => {
      if (e instanceof AlreadyExistsError)
        throw new AlreadyExistsError(`snapshot "${snap.name}" already exists in volume "${vol.name}"`);
      throw e;
    });
    return snap;
  }

  async listSnapshots(actor: Actor, volume: string): Promise<SnapshotRecord[]> {
    const vol = await this.access.volumeFor(actor, volume, 'read');
    return this.ctx.md.listSnapshots(vol.id);
  }

  async deleteSnapshot(actor: Actor, volume: string, snapshot: string): Promise<void> {
    const vol = await this.access.volumeFor(actor, volume, 'write');
    if (!(await this.ctx.md.deleteSnapshot(vol.id, parseVolumeName(snapshot, 'snapshot'))))
      throw new NotFoundError(`snapshot "${snapshot}" not found in volume "${volume}"`);
  }

  async restore(actor: Actor, volume: string, target: { snapshot?: string; commit?: string }): Promise<CommitResult> {
    const vol = await this.access.volumeFor(actor, volume, 'write');
    if (target.snapshot === undefined && target.commit === undefined)
      throw new InvalidArgumentError('restore needs a snapshot or a commit');
    const source = await targetCommit(this.ctx.md, vol, target);
    // Recent touch: GC treats the tree as a root while this restore is in flight.
    await this.ctx.md.touchTrees([source.tree], this.ctx.now());
    const label = target.snapshot !== undefined ? `snapshot ${target.snapshot}` : `commit ${source.id.slice(0, 12)}`;
    return this.commits.publish(
      vol,
      async () => ({
        tree: source.tree,
        size: source.size,
        fileCount: source.fileCount,
        newTrees: [],
        message: `restore ${label}`,
        changed: ['/'],
        overwritten: [],
      }),
      actor,
    );
  }

  async fork(
    actor: Actor,
    volume: string,
    req: { name: string; snapshot?: string; commit?: string } & VolumeOptions,
  ): Promise<VolumeRecord> {
    authorize(actor, 'volumes.fork');
    const src = await this.access.volumeFor(actor, volume, 'read');
    const name = parseVolumeName(req.name);
    const source = await targetCommit(this.ctx.md, src, req);
    const cap = checkCap(req.cap ?? src.cap);
    if (source.size > cap)
      throw new QuotaExceededError(
        `cannot fork: the source holds ${formatSize(source.size)} (${source.size} bytes), over the cap of ${formatSize(cap)} (${cap} bytes)`,
        { details: { cap, size: source.size } },
      );
    await checkStorageQuota(this.ctx.md, await this.access.tenantOf(actor), { volume: name, from: 0, to: source.size });
    const now = this.ctx.now();
    await this.ctx.md.touchTrees([source.tree], now);
    const id = VolumeId.new();
    const commit = newCommitRecord({
      volumeId: id,
      parent: source.id,
      seq: 1,
      tree: source.tree,
      size: source.size,
      fileCount: source.fileCount,
      message: `fork of ${src.name}@${source.id.slice(0, 12)}`,
      author: actor.name,
      changed: [],
      overwritten: [],
      createdAt: now,
    });
    const volumeRecord: VolumeRecord = {
      id,
      tenantId: actor.tenantId,
      name,
      accessMode: checkAccessMode(req.accessMode ?? src.accessMode),
      cap,
      tuning: mergeTuning(src.tuning, req.tuning),
      head: commit.id,
      size: source.size,
      fileCount: source.fileCount,
      createdAt: now,
      updatedAt: now,
      // It holds what the source held: it owns what the source (and the source's own sources) owned.
      ancestors: [{ volumeId: src.id, until: now }, ...src.ancestors],
    };
    await this.ctx.md.transaction(async (tx) => {
      await tx.insertVolume(volumeRecord);
      await tx.insertCommit(commit);
    });
    return volumeRecord;
  }
}

function defaultSnapshotName(now: Date): string {
  const stamp = now.toISOString().replace(/[-:]/g, '').replace('T', '-').replace(/\..*/, '');
  return `snap-${stamp}-${randomHex(2)}`;
}
