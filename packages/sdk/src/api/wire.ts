/**
 * @module wire
 * The JSON shapes of the HTTP API under /v1: the one contract shared by the
 * server (which validates them with zod and publishes them as OpenAPI) and
 * the SDK (which has no runtime dependencies). Types only, no code.
 *
 * Conventions: sizes in bytes (numbers); times as ISO-8601 strings; ids as
 * strings; paths absolute inside the volume ("/a/b").
 * Errors: every non-2xx answer is `ErrorBody`.
 *
 * The records (Volume, Commit, Snapshot, Attachment, Tenant, Token) and
 * their vocabulary are not defined here: each is the `Json` mirror of the
 * domain model's record (model/records), less what stays inside the server.
 */
import type {
  AccessMode,
  AttachmentRecord,
  AttachmentState,
  CommitRecord,
  CommitSummary,
  Json,
  MountTuning,
  SnapshotRecord,
  TenantRecord,
  TokenRecord,
  VolumeRecord,
} from '../model/records.js';

export type { AccessMode, AttachmentState, MountTuning };

export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

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

// --- files and trees ---

export type EntryType = 'file' | 'dir' | 'symlink';

/**
 * Ownership and times beyond `mtime`, recorded when a writer gave them (a
 * mount's chown, chgrp and utimensat). Times are split in two: milliseconds
 * since the epoch plus the nanoseconds past that millisecond (0..999999), so
 * they keep nanosecond precision in a JSON number.
 */
export interface EntryAttributes {
  /** Recorded owner (0..4294967294); absent: none recorded (a mount shows its own owner then). Downloads never apply it. */
  uid?: number;
  /** Recorded group (0..4294967294); absent: none recorded. */
  gid?: number;
  /** Nanoseconds past the millisecond in `mtime` (0..999999); absent: 0. */
  mtimeNs?: number;
  /** Last access, ms since the epoch; absent: the same as mtime (and mtimeNs). */
  atime?: number;
  /** Nanoseconds past the millisecond in `atime` (0..999999); absent: 0 (or mtimeNs when atime is absent too). */
  atimeNs?: number;
  /** Last change of the entry's metadata or content, ms since the epoch; absent: the same as mtime (and mtimeNs). */
  ctime?: number;
  /** Nanoseconds past the millisecond in `ctime` (0..999999); absent: 0 (or mtimeNs when ctime is absent too). */
  ctimeNs?: number;
}

/** One entry of a tree, as returned by stat and list. Owner and extra times appear only where recorded (EntryAttributes). */
export interface FileInfo extends EntryAttributes {
  path: string;
  name: string;
  type: EntryType;
  mode: number;
  /** Milliseconds since the epoch. */
  mtime: number;
  /** Files: bytes; dirs: total bytes below; symlinks: length of the target. */
  size: number;
  /** Dirs: number of files below. */
  fileCount?: number;
  /** Files: the chunk size they are cut with. */
  chunkSize?: number;
  /** Files: chunk hashes, in order. */
  chunks?: string[];
  /** Symlinks: the target. */
  target?: string;
}

/** GET /v1/volumes/{name}/stat?path=&commit= */
export interface StatResponse {
  commit: string;
  entry: FileInfo;
}

/**
 * GET /v1/volumes/{name}/list?path=&commit=&recursive=&limit=&after= : one page
 * (limit default 1000, at most 10000) in a stable order (names within a
 * directory, depth-first when recursive). Pass `nextCursor` as `after`, with
 * `commit` set to this page's commit, for the next page; null on the last.
 */
export interface ListResponse {
  commit: string;
  entries: FileInfo[];
  nextCursor: string | null;
}

/** A signed request a client makes directly to the blob store. */
export interface SignedRequest {
  url: string;
  method: 'GET' | 'PUT';
  headers: Record<string, string>;
  expiresAt: string;
}

/** GET /v1/volumes/{name}/read?path=&commit= : where to fetch a file's bytes. */
export interface ReadPlan {
  commit: string;
  entry: FileInfo;
  chunks: Array<{ hash: string; size: number; request: SignedRequest }>;
}

// --- search, replace, edit, watch ---

/**
 * POST /v1/volumes/{name}/search : a glob over full paths (dotfiles included;
 * a pattern without "/" matches names anywhere) and, optionally, a regex over
 * file contents. Bounded by `limit` (default 1000, max 10000), bytes read per
 * file (`maxBytesPerFile`, default 8 MiB, max 64 MiB) and time (`timeoutMs`,
 * default 10000, max 60000: past it the answer is partial with `timedOut`).
 * Regex flags: any of i, m, s, u. An invalid regex is a 400.
 */
export interface SearchRequest {
  path?: string;
  glob?: string;
  regex?: string;
  flags?: string;
  commit?: string;
  limit?: number;
  maxBytesPerFile?: number;
  timeoutMs?: number;
}
/** The first match on one line: 1-based line and column; `text` is the line, clipped to 500 characters. */
export interface SearchMatch {
  path: string;
  line: number;
  column: number;
  text: string;
}
export interface SearchResponse {
  commit: string;
  /** Without a regex: the entries the glob selects. */
  files: Array<{ path: string; type: EntryType; size: number }>;
  /** With a regex: the matches. */
  matches: SearchMatch[];
  /** The limit was reached; there may be more. */
  truncated: boolean;
  /** The time bound passed; results are partial. */
  timedOut: boolean;
  /** Files skipped as binary (a NUL byte in the first 8 KiB). */
  skippedBinary: string[];
  /** Files scanned only up to maxBytesPerFile. */
  truncatedFiles: string[];
  filesScanned: number;
}

/**
 * POST /v1/volumes/{name}/replace : regex replace (`$1`, `$&`, `$<name>` expand)
 * across the files `glob` selects, in one commit, none when nothing matched.
 * Reads at head (or checks against `base`): a file changed meanwhile is a 409.
 * More than `maxFiles` candidates (default 1000, max 10000) is a 400; so is
 * missing the time bound (nothing is committed).
 */
export interface ReplaceRequest {
  path?: string;
  glob: string;
  regex: string;
  replacement: string;
  flags?: string;
  base?: string;
  maxFiles?: number;
  maxBytesPerFile?: number;
  timeoutMs?: number;
  message?: string;
}
export interface ReplaceResponse {
  commit: Commit | null;
  files: Array<{ path: string; replacements: number }>;
  skippedBinary: string[];
  skippedTooLarge: string[];
}

/**
 * POST /v1/volumes/{name}/edit : replaces the one occurrence of `oldString`
 * in a text file. 412 (details.occurrences) unless it occurs exactly once;
 * 409 when the file changed since `base` (default: the head the edit read).
 */
export interface EditRequest {
  path: string;
  oldString: string;
  newString: string;
  base?: string;
  message?: string;
}
export interface EditResponse {
  commit: Commit;
  path: string;
}

/**
 * GET /v1/volumes/{name}/watch?since=<commit> (or the Last-Event-ID header):
 * server-sent events, one `event: change` per changed path with `id:` the
 * commit id and this as data. `index` and `count` place the event within its
 * commit's events, so a client resumes from the last commit it received
 * whole. Without `since`, changes after the current head.
 */
export interface ChangeEvent {
  commit: string;
  seq: number;
  path: string;
  kind: 'added' | 'modified' | 'deleted';
  type: EntryType;
  index: number;
  count: number;
}

/**
 * GET /v1/volumes/{name}/changes?since=<commit>&limit=<n> : the same feed as
 * watch, as one JSON answer: the commits after `since` (oldest first, at most
 * `limit`, default 100), each with the paths it changed (at most 10,000, else
 * `truncated`), and the head. A client pages by asking again from the last
 * commit it got until it reaches `head`. Without `since`, none (the head).
 */
export interface ChangesResponse {
  head: string;
  commits: Array<{
    id: string;
    seq: number;
    changes: Array<{ path: string; kind: 'added' | 'modified' | 'deleted'; type: EntryType }>;
    truncated: boolean;
  }>;
}

// --- the commit protocol ---

/** POST /v1/volumes/{name}/uploads : which of these chunks must be uploaded? */
export interface UploadRequest {
  chunks: Array<{ hash: string; size: number }>;
}

export interface UploadResponse {
  /** Chunks the store lacks, each with a signed PUT and the key to echo back in the commit. */
  missing: Array<{ hash: string; size: number; key: string; request: SignedRequest }>;
  /** How many of the asked chunks are already stored (never to be sent again). */
  present: number;
}

/**
 * One change of a commit. Times are ms since the epoch (whole, within the
 * range of a Date, ±8.64e15), each with an optional ns part (0..999999) that
 * needs its ms field in the same change; uid/gid are 0..4294967294. Delete
 * and move take no attributes (a 400 says so).
 */
export type Change =
  /**
   * Create or replace a regular file. Parents are created unless createParents is false.
   * A replaced file keeps nothing of the old entry: no owner unless given, mtime now unless given, atime/ctime as mtime unless given.
   */
  | ({
      op: 'put';
      path: string;
      size: number;
      chunkSize: number;
      chunks: string[];
      mode?: number;
      mtime?: number;
      createParents?: boolean;
    } & EntryAttributes)
  | ({ op: 'symlink'; path: string; target: string; mtime?: number; createParents?: boolean } & EntryAttributes)
  /** Create a directory (and parents, which get the same mode, times and owner); an existing directory is kept as it is. */
  | ({ op: 'mkdir'; path: string; mode?: number; mtime?: number } & EntryAttributes)
  /** Delete a file, symlink, or (with recursive) a directory. A missing path is an error only with mustExist. */
  | { op: 'delete'; path: string; recursive?: boolean; mustExist?: boolean }
  /** Move a file or directory (it keeps its owner and times); the target must not exist unless overwrite. */
  | { op: 'move'; from: string; to: string; overwrite?: boolean }
  /**
   * Change the given attributes of an existing entry; the others keep what a reader saw (a mtime-only
   * change leaves atime and ctime where they were). A time without its ns sets ns 0. `uid: null` /
   * `gid: null` removes the recorded owner. Nothing given: no change (a missing path is still a 404).
   */
  | ({ op: 'setattr'; path: string; mode?: number; mtime?: number } & Omit<EntryAttributes, 'uid' | 'gid'> & {
        uid?: number | null;
        gid?: number | null;
      });

/**
 * POST /v1/volumes/{name}/packs : a signed PUT for one pack, an object that
 * holds many small missing chunks back to back (one request instead of one
 * per chunk). `size` and `sha256` describe the whole pack.
 */
export interface PackRequest {
  size: number;
  sha256: string;
}
export interface PackResponse {
  key: string;
  request: SignedRequest;
}
/** A pack's layout, declared at commit: chunks in offset order, contiguous from 0. */
export interface PackManifest {
  key: string;
  chunks: Array<{ hash: string; offset: number; size: number }>;
}

/** POST /v1/volumes/{name}/commits */
export interface CommitRequest {
  /** The commit the client's view is based on; used to report (or, with onConflict "fail", refuse) overwrites of newer work. */
  base?: string;
  message?: string;
  changes: Change[];
  /** Keys from UploadResponse of the chunks uploaded for this commit. */
  uploads?: Array<{ hash: string; key: string }>;
  /** Packs uploaded for this commit (PackResponse keys) and where each chunk lies inside its pack. */
  packs?: PackManifest[];
  /** "overwrite" (default): last writer wins and the response lists overwritten paths. "fail": 409 instead when any changed path changed since base. */
  onConflict?: 'overwrite' | 'fail';
  /**
   * A mount's commit replays what happened in its overlay onto the current
   * head. With `bestEffort`, a change that no longer applies there because
   * another commit changed its path (the source of a move or setattr was
   * deleted, a parent became a file, a directory is in the way) is skipped and
   * reported in `skipped` instead of failing the whole commit. Validation
   * errors (bad paths, unknown chunks, over the cap) still fail it.
   */
  bestEffort?: boolean;
}

/** A commit record, its summary flattened (`changed`, `paths`, `overwritten`). */
export type Commit = Json<Omit<CommitRecord, 'summary'> & CommitSummary>;

export interface CommitResponse {
  commit: Commit;
  /** Paths on which this commit overwrote a newer commit than its base (last-writer-wins made visible). */
  overwritten: string[];
  /** With `bestEffort`: the changes (by index in `changes`) that did not apply to head, and why. Always present; empty otherwise. */
  skipped: SkippedChange[];
}

export interface SkippedChange {
  index: number;
  path: string;
  reason: string;
}

/** GET /v1/volumes/{name}/commits?limit=&before= (before: a seq) */
export interface CommitList {
  commits: Commit[];
  nextBefore: number | null;
}

// --- snapshots, restore, fork ---

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

// --- attachments (mounts) ---

/**
 * The control plane's record of one mount. A mounted attachment holds a lease
 * its agent renews; one whose lease ran out counts as gone for the access
 * mode (and is marked failed, reason "lease expired", when next looked at).
 */
export type Attachment = Json<
  Omit<AttachmentRecord, 'tenantId' | 'tokenId'> & {
    /** The volume's name ("(deleted)" once it is gone). */
    volume: string;
  }
>;

/**
 * POST /v1/volumes/{name}/attachments : mounts need one. Refused with 409 when
 * the volume's access mode forbids it (a second read-write attachment of an
 * RWO volume, a read-write one of an ROX volume); the message names the
 * attachment in the way. `resume` takes over an earlier attachment of the same
 * volume, host and path (a mount agent restarted after a crash): its old
 * token is revoked and a new one issued.
 */
export interface AttachRequest {
  host: string;
  path: string;
  readOnly?: boolean;
  resume?: string;
}
/** The scoped token (`token`, a bearer) reaches only this volume, read-only for read-only attachments, and dies with the attachment. */
export interface AttachResponse {
  attachment: Attachment;
  token: string;
  tokenExpiresAt: string;
  volume: Volume;
}
/** GET /v1/volumes/{name}/attachments?all=true (default: mounted only) */
export interface AttachmentList {
  attachments: Attachment[];
}
/** POST /v1/attachments/{id}/renew : with the attachment's own token; extends its lease and its token's expiry. */
export interface RenewAttachmentResponse {
  attachment: Attachment;
  tokenExpiresAt: string;
}
/** POST /v1/attachments/{id}/release : with the attachment's own token or a tenant token; revokes the scoped token. Answers Attachment. */
export interface ReleaseAttachmentRequest {
  failed?: boolean;
  reason?: string;
}

// --- tenant and tokens ---

/** The tenant record with the uncommitted quota in force (the installation's default when the operator set none). */
export type Tenant = Json<Omit<TenantRecord, 'uncommittedQuota'> & { uncommittedQuota: number }>;
/** PATCH /v1/tenant */
export interface UpdateTenantRequest {
  defaultCap: number;
}

/** `volume` is the id (vol_...) of the one volume a scoped token reaches, or null for tenant tokens. */
export type Token = Json<
  Pick<TokenRecord, 'id' | 'name' | 'readOnly' | 'createdAt' | 'expiresAt' | 'revokedAt'> & {
    volume: TokenRecord['volumeId'];
  }
>;
/** POST /v1/tokens : answers { token: Token, secret: string } once; the secret is never shown again. */
/** `volume` names (by name) the one volume the new token may reach. */
export interface CreateTokenRequest {
  name: string;
  volume?: string;
  readOnly?: boolean;
  expiresIn?: number;
}
export interface CreateTokenResponse {
  token: Token;
  secret: string;
}
/** GET /v1/tokens */
export interface TokenList {
  tokens: Token[];
}

// --- downloads ---

/**
 * POST /v1/volumes/{name}/urls : a signed URL for one file that works without
 * a token (plain curl) until `expiresAt`. `expiresIn` is in seconds (default
 * 3600, at most 7 days). The URL is pinned to `commit` (head when absent):
 * it serves exactly the bytes that existed when it was signed.
 */
export interface SignedUrlRequest {
  path: string;
  expiresIn?: number;
  commit?: string;
}
export interface SignedUrlResponse {
  url: string;
  expiresAt: string;
  commit: string;
}
