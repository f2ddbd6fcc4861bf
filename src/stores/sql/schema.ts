/**
 * @module schema
 * Kysely table types of the SQL metadata store, shared by SQLite and
 * PostgreSQL. Only types that behave the same in both are used, so one set
 * of queries serves both engines:
 *
 * - times are integer milliseconds since the epoch (`bigint`);
 * - counts and byte sizes are `bigint`;
 * - booleans are integers 0/1;
 * - JSON values (volume tuning, commit summary) are text;
 * - tree bytes are a blob (`blob` in SQLite, `bytea` in PostgreSQL).
 *
 * The node-postgres driver returns `bigint` (int8) columns as strings, so
 * every int8 column reads as `number | string`; {@link toNumber} turns it back
 * into a number. Row-to-record conversion lives beside the queries of each
 * table group (the *-queries.ts modules).
 */
import type { ColumnType } from 'kysely';

/** An int8 column: written as a number, read as a number (SQLite) or a decimal string (PostgreSQL). */
export type Int8 = ColumnType<number | string, number, number>;

/** A boolean stored as integer 0 or 1. */
export type IntBool = ColumnType<number, number, number>;

/** Binary bytes: Buffer on the way out (both drivers), any Uint8Array on the way in. */
export type Bytes = ColumnType<Uint8Array, Uint8Array, Uint8Array>;

/** One row per tenant; `name` is unique. */
export interface TenantsTable {
  id: string;
  name: string;
  default_cap: Int8;
  created_at: Int8;
  /** Added by 003_chunk_owners; null: unlimited. */
  storage_quota: Int8 | null;
  /** Added by 003_chunk_owners; null: the default. */
  uncommitted_quota: Int8 | null;
}

/** API tokens; only the SHA-256 of the secret is stored. */
export interface TokensTable {
  id: string;
  tenant_id: string;
  secret_hash: string;
  name: string;
  volume_id: string | null;
  read_only: IntBool;
  created_at: Int8;
  expires_at: Int8 | null;
  revoked_at: Int8 | null;
  /** Added by 002_attachments. */
  attachment_id: string | null;
  /** Added by 004_token_parents: the token this one was minted from (it dies with it). */
  parent_id: string | null;
}

/** Volumes; (tenant_id, name) is unique, `head` moves by compare-and-swap. */
export interface VolumesTable {
  id: string;
  tenant_id: string;
  name: string;
  access_mode: string;
  cap: Int8;
  /** MountTuning as JSON. */
  tuning: string;
  head: string;
  size: Int8;
  file_count: Int8;
  created_at: Int8;
  updated_at: Int8;
  /** Added by 003_chunk_owners: JSON array of the volumes it was forked from ({ volumeId, until } in ms), nearest first; null for none. */
  ancestors: string | null;
}

/** Commit records, indexed by (volume_id, seq) for history pages. */
export interface CommitsTable {
  id: string;
  volume_id: string;
  seq: Int8;
  parent: string | null;
  tree: string;
  message: string;
  author: string;
  size: Int8;
  file_count: Int8;
  /** CommitSummary as JSON. */
  summary: string;
  created_at: Int8;
}

/** Named commit pointers; (volume_id, name) is unique. */
export interface SnapshotsTable {
  id: string;
  volume_id: string;
  name: string;
  commit_id: string;
  created_at: Int8;
}

/** Mounts of volumes (002_attachments); listed by (volume_id, created_at). */
export interface AttachmentsTable {
  id: string;
  tenant_id: string;
  volume_id: string;
  host: string;
  path: string;
  read_only: IntBool;
  /** mounted | released | failed */
  state: string;
  reason: string | null;
  token_id: string | null;
  created_at: Int8;
  updated_at: Int8;
  lease_expires_at: Int8;
}

/** Sandboxes (005_sandboxes); listed by (tenant_id, created_at), reconciled by (host, status). */
export interface SandboxesTable {
  id: string;
  tenant_id: string;
  /** starting | running | terminated | failed */
  status: string;
  reason: string | null;
  /** ImageSpec as JSON. */
  image: string;
  /** SandboxVolumeRecord[] as JSON. */
  volumes: string;
  /** CPU cores in thousandths (a core may be split). */
  cpu_millis: Int8;
  memory_mib: Int8;
  disk_gib: Int8;
  /** The environment as JSON. */
  env: string;
  timeout_seconds: Int8;
  host: string;
  created_at: Int8;
  expires_at: Int8;
  ended_at: Int8 | null;
}

/** Content-addressed directory nodes (opaque bytes). */
export interface TreesTable {
  hash: string;
  data: Bytes;
  touched_at: Int8;
}

/** Where the bytes of each chunk hash live in the blob store. */
export interface ChunksTable {
  hash: string;
  size: Int8;
  object_key: string;
  offset: Int8;
  touched_at: Int8;
}

/** Who may reference a chunk (003_chunk_owners): owner is a tenant id or a volume id. */
export interface ChunkOwnersTable {
  owner: string;
  hash: string;
  /** When the owner first owned the hash (ms). */
  since: Int8;
}

/** Uncommitted upload bytes reserved by a tenant (003_chunk_owners), keyed by object key or upload id. */
export interface UploadReservationsTable {
  key: string;
  tenant_id: string;
  volume_id: string;
  bytes: Int8;
  expires_at: Int8;
}

/** Installation-wide key/value settings (e.g. generated secrets). */
export interface SettingsTable {
  key: string;
  value: string;
}

/** Every table of the metadata database. */
export interface Database {
  tenants: TenantsTable;
  tokens: TokensTable;
  volumes: VolumesTable;
  commits: CommitsTable;
  snapshots: SnapshotsTable;
  attachments: AttachmentsTable;
  sandboxes: SandboxesTable;
  trees: TreesTable;
  chunks: ChunksTable;
  chunk_owners: ChunkOwnersTable;
  upload_reservations: UploadReservationsTable;
  settings: SettingsTable;
}

/** Reads an int8 column value (number from SQLite, string from node-postgres) as a number. */
export function toNumber(v: number | string | bigint): number {
  return typeof v === 'number' ? v : Number(v);
}
