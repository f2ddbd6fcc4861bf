/**
 * @module model/records
 * The domain model, defined once: the records Stowage keeps (tenants,
 * tokens, volumes, commits, snapshots, attachments, chunk rows) and their
 * vocabulary (access modes, mount tuning, attachment states, chunk owners).
 * Stores persist these records, the engine works on them, and the HTTP
 * API's JSON shapes (api/wire) are derived from them with `Json`, so the
 * three cannot drift apart. Types and the vocabulary's constants only: the
 * SDK and CLI import it too.
 */
import type {
  AttachmentId,
  ChunkHash,
  CommitId,
  PlainId,
  SandboxId,
  SnapshotId,
  TenantId,
  TokenId,
  TreeHash,
  VolumeId,
} from '../common/ids.js';
import type { ImageSpec } from '../api/wire/sandboxes.js';

/** Every access mode (SPEC section 1): one read-write mount, read-only mounts only, or read-write mounts everywhere. */
export const ACCESS_MODES = ['RWO', 'ROX', 'RWX'] as const;
export type AccessMode = (typeof ACCESS_MODES)[number];

/** Per-volume mount tuning (SPEC section 2); sizes in bytes. */
export interface MountTuning {
  cacheSize: number;
  bufferSize: number;
  prefetch: number;
  writeback: boolean;
}

export interface TenantRecord {
  id: TenantId;
  /** Unique across the installation. */
  name: string;
  /** Cap given to volumes created without one, in bytes. */
  defaultCap: number;
  /** Most bytes all its volumes may hold together; null: unlimited. */
  storageQuota: number | null;
  /** Most bytes it may have uploaded but not yet committed; null: the installation's default. */
  uncommittedQuota: number | null;
  createdAt: Date;
}

/** Who may reference a chunk: a whole tenant, or one volume (what a scoped token owns). */
export type ChunkOwner = TenantId | VolumeId;

/** A volume a fork was made from, and when: the fork owns what that volume owned until then. */
export interface ForkAncestor {
  volumeId: VolumeId;
  until: Date;
}

export interface TokenRecord {
  id: TokenId;
  tenantId: TenantId;
  /** SHA-256 (hex) of the token secret; the secret itself is never stored. */
  secretHash: string;
  name: string;
  /** Set for tokens scoped to one volume (mount tokens); null for tenant tokens. */
  volumeId: VolumeId | null;
  readOnly: boolean;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  /** Set for the scoped token minted for one attachment (a mount); such a token dies with it. */
  attachmentId: AttachmentId | null;
  /** The token this one was minted from (a mount token's creator): its revocation and expiry carry over to this one. */
  parentId: TokenId | null;
}

export interface VolumeRecord {
  id: VolumeId;
  tenantId: TenantId;
  /** Unique per tenant. */
  name: string;
  accessMode: AccessMode;
  /** Size cap in bytes. */
  cap: number;
  tuning: MountTuning;
  /** Current commit; every volume has one from creation (an empty tree). */
  head: CommitId;
  /** Logical bytes of all files at head. */
  size: number;
  /** Number of regular files at head. */
  fileCount: number;
  createdAt: Date;
  updatedAt: Date;
  /** The volumes it was forked from, nearest first (empty unless a fork): it owns the chunks they owned until the fork. */
  ancestors: ForkAncestor[];
}

export interface CommitRecord {
  id: CommitId;
  volumeId: VolumeId;
  /** 1 for a volume's first commit, parent's seq + 1 after. */
  seq: number;
  parent: CommitId | null;
  tree: TreeHash;
  message: string;
  /** Who made it (token name or "system"). */
  author: string;
  size: number;
  fileCount: number;
  /** Paths this commit changed, and those where it overwrote a newer commit (bounded lists, JSON). */
  summary: CommitSummary;
  createdAt: Date;
}

export interface CommitSummary {
  changed: number;
  /** Up to 100 changed paths. */
  paths: string[];
  /** Paths where this commit overwrote changes committed after its base. */
  overwritten: string[];
}

export interface SnapshotRecord {
  id: SnapshotId;
  volumeId: VolumeId;
  /** Unique per volume. */
  name: string;
  commitId: CommitId;
  createdAt: Date;
}

export type AttachmentState = 'mounted' | 'released' | 'failed';

/** The control plane's record of one mount of a volume (SPEC section 1, "Attachment"). */
export interface AttachmentRecord {
  id: AttachmentId;
  tenantId: TenantId;
  volumeId: VolumeId;
  /** Host or sandbox name, and the absolute path the volume is mounted at there. */
  host: string;
  path: string;
  readOnly: boolean;
  state: AttachmentState;
  /** Why it was released or failed; null while mounted. */
  reason: string | null;
  /** The scoped token minted for it (the latest one after a resume). */
  tokenId: TokenId | null;
  createdAt: Date;
  updatedAt: Date;
  /** A mounted attachment whose lease is past counts as gone. */
  leaseExpiresAt: Date;
}

/** A sandbox's life: starting (its runtime is creating it), running, then terminated (asked, or its timeout) or failed. */
export type SandboxStatus = 'starting' | 'running' | 'terminated' | 'failed';

/** A volume as a sandbox mounts it, and the attachment the mount runs on. */
export interface SandboxVolumeRecord {
  /** Absolute, normalised mount path inside the sandbox. */
  path: string;
  /** The volume's name when the sandbox was created, and its id. */
  volume: string;
  volumeId: VolumeId;
  readOnly: boolean;
  /** Directory of the volume mounted (absolute inside the volume); null for the whole volume. */
  subpath: string | null;
  attachmentId: AttachmentId;
}

/** The control plane's record of one sandbox (SPEC section 5). */
export interface SandboxRecord {
  id: SandboxId;
  tenantId: TenantId;
  status: SandboxStatus;
  /** Why it failed or was terminated; null while starting or running. */
  reason: string | null;
  /** The checked image description (base filled in). */
  image: ImageSpec;
  volumes: SandboxVolumeRecord[];
  cpu: number;
  memoryMib: number;
  diskGib: number;
  /** Environment of every command. Kept because a runtime restarting needs it; never sent back on the wire (names only). */
  env: Record<string, string>;
  /** Seconds from creation until it is terminated. */
  timeout: number;
  /** The host (runtime) it runs on. */
  host: string;
  createdAt: Date;
  expiresAt: Date;
  endedAt: Date | null;
}

export interface ChunkRecord {
  hash: ChunkHash;
  size: number;
  /** Blob-store key of the object holding the bytes. */
  objectKey: string;
  /** Byte offset of the chunk inside that object (0 unless packed). */
  offset: number;
  touchedAt: Date;
}

/**
 * The JSON form of a record, as the HTTP API sends it: Dates become ISO-8601
 * strings, branded ids plain strings, nested objects and arrays likewise;
 * literal vocabularies (an AccessMode) stay as they are.
 */
export type Json<T> = T extends Date
  ? string
  : T extends string
    ? PlainId<T>
    : T extends number | boolean | null | undefined
      ? T
      : T extends ReadonlyArray<infer U>
        ? Array<Json<U>>
        : T extends object
          ? { [K in keyof T]: Json<T[K]> }
          : T;
