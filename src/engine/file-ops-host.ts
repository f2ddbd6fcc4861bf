/**
 * @module engine/file-ops-host
 * The slice of the engine that the file operations (search, replace, edit,
 * the change feed) are built on: volume access, commit resolution, tree
 * reads, chunk bytes and the commit itself. The files service (engine/files)
 * hands this out, so those modules depend on no service yet obey the access
 * rules of engine/access.
 */
import type { BlobStore } from '../stores/blob-store.js';
import type { MetadataOps } from '../stores/metadata-store.js';
import type { CommitRecord, VolumeRecord } from '@stowage/sdk/model/records.js';
import type { StoreOwnership } from './file-io.js';
import type { TreeReader } from './tree/tree-reader.js';
import type { Actor, CommitInput, CommitResult } from './types.js';

/** What file operations need of the engine. */
export interface FileOpsHost {
  md: Pick<MetadataOps, 'getChunks' | 'putChunks' | 'touchChunks' | 'listCommits' | 'ownedChunks' | 'addChunkOwners'>;
  blobs: BlobStore;
  reader: TreeReader;
  now: () => Date;
  /** Whose chunks a write by `actor` to `vol` may reuse, and who owns what it stores (engine/chunk-ownership). */
  ownership(actor: Actor, vol: VolumeRecord): StoreOwnership;
  /** The volume if the actor may read (or write) it; NotFound or ReadOnly otherwise. */
  volumeFor(actor: Actor, name: string, access: 'read' | 'write'): Promise<VolumeRecord>;
  /** A commit of this volume by id; NotFound otherwise. */
  resolveCommit(vol: VolumeRecord, id: string): Promise<CommitRecord>;
  /** Publishes a change set (the commit service's `commit`). */
  commit(actor: Actor, volume: string, input: CommitInput): Promise<CommitResult>;
}
