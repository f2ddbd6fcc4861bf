/**
 * @module wire/volumes
 * Volumes and their history points: create, update, list; snapshots, restore and fork. Types only; re-exported by api/wire.
 */
import type { AccessMode, CommitRecord, Json, MountTuning, SnapshotRecord, VolumeRecord } from '../../model/records.js';

/** GET /v1/volumes/{name}, and list items: the volume record without its tenant and fork ancestry. */
export type Volume = Json<Omit<VolumeRecord, 'tenantId' | 'ancestors'>>;

/** POST /v1/volumes (create; 409 when the name exists) and PUT /v1/volumes/{name} (get-or-create; 201 created, 200 existing). */
export interface CreateVolumeRequest {
  /** Required for POST; taken from the URL for PUT. */
  name?: string;
  accessMode?: AccessMode;
  /** Bytes; defaults to the tenant's default cap (2 GiB unless changed). */
  cap?: number;
  tuning?: Partial<MountTuning>;
}

/** PATCH /v1/volumes/{name} (resize and tuning). */
export interface UpdateVolumeRequest {
  cap?: number;
  accessMode?: AccessMode;
  tuning?: Partial<MountTuning>;
}

/** GET /v1/volumes */
export interface VolumeList {
  volumes: Volume[];
}

/** A snapshot record, its commit id as `commit`. */
export type Snapshot = Json<Omit<SnapshotRecord, 'commitId'> & { commit: CommitRecord['id'] }>;
/** POST /v1/volumes/{name}/snapshots {name?, commit?} (name defaults to a timestamp; commit to head). */
export interface CreateSnapshotRequest {
  name?: string;
  commit?: string;
}
/** GET /v1/volumes/{name}/snapshots */
export interface SnapshotList {
  snapshots: Snapshot[];
}
/** POST /v1/volumes/{name}/restore : exactly one of snapshot or commit. Answers CommitResponse. */
export interface RestoreRequest {
  snapshot?: string;
  commit?: string;
}
/** POST /v1/volumes/{name}/fork : new volume starting at head, a snapshot or a commit. Answers Volume (201). */
export interface ForkRequest {
  name: string;
  snapshot?: string;
  commit?: string;
  accessMode?: AccessMode;
  cap?: number;
}
