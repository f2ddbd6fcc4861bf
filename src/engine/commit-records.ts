/**
 * @module engine/commit-records
 * Commit records: building a new one (its id hashes its fields,
 * engine/tree/tree-codec `commitId`) and finding the commit a request names
 * (an id, a snapshot, or the head), always within the one volume.
 */
import { InvalidArgumentError, NotFoundError, UnavailableError } from '@stowage/sdk/common/errors.js';
import { CommitId, type TreeHash, type VolumeId } from '@stowage/sdk/common/ids.js';
import { parseVolumeName } from '@stowage/sdk/common/paths.js';
import type { MetadataOps } from '../stores/metadata-store.js';
import type { CommitRecord, VolumeRecord } from '@stowage/sdk/model/records.js';
import { commitId } from './tree/tree-codec.js';

/** Paths a commit's summary names at most. */
const SUMMARY_PATHS = 100;

export function newCommitRecord(c: {
  volumeId: VolumeId;
  parent: CommitId | null;
  seq: number;
  tree: TreeHash;
  size: number;
  fileCount: number;
  message: string;
  author: string;
  changed: string[];
  overwritten: string[];
  createdAt: Date;
}): CommitRecord {
  return {
    id: commitId(c),
    volumeId: c.volumeId,
    seq: c.seq,
    parent: c.parent,
    tree: c.tree,
    message: c.message,
    author: c.author,
    size: c.size,
    fileCount: c.fileCount,
    createdAt: c.createdAt,
    summary: {
      changed: c.changed.length,
      paths: c.changed.slice(0, SUMMARY_PATHS),
      overwritten: c.overwritten.slice(0, SUMMARY_PATHS),
    },
  };
}

/** A commit of this volume by id; NotFound otherwise. */
export async function resolveCommit(
  md: Pick<MetadataOps, 'getCommit'>,
  vol: VolumeRecord,
  id: string,
): Promise<CommitRecord> {
  const commit = CommitId.is(id) ? await md.getCommit(id as CommitId) : undefined;
  if (!commit || commit.volumeId !== vol.id)
    throw new NotFoundError(`commit ${JSON.stringify(id.slice(0, 80))} not found in volume "${vol.name}"`);
  return commit;
}

/** The commit a snapshot, a commit id or (neither) the head names. */
export async function targetCommit(
  md: Pick<MetadataOps, 'getCommit' | 'getSnapshot'>,
  vol: VolumeRecord,
  target: { snapshot?: string; commit?: string },
): Promise<CommitRecord> {
  if (target.snapshot !== undefined && target.commit !== undefined)
    throw new InvalidArgumentError('give a snapshot or a commit, not both');
  if (target.snapshot !== undefined) {
    const snap = await md.getSnapshot(vol.id, parseVolumeName(target.snapshot, 'snapshot'));
    if (!snap) throw new NotFoundError(`snapshot "${target.snapshot}" not found in volume "${vol.name}"`);
    const commit = await md.getCommit(snap.commitId);
    if (!commit) throw new UnavailableError(`commit of snapshot "${target.snapshot}" is missing`);
    return commit;
  }
  return resolveCommit(md, vol, target.commit ?? vol.head);
}
