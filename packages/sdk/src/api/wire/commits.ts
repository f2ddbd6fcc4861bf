/**
 * @module wire/commits
 * The commit protocol: chunk uploads, packs, changes, commits and their history. Types only; re-exported by api/wire.
 */
import type { CommitRecord, CommitSummary, Json } from '../../model/records.js';
import type { EntryAttributes } from './files.js';
import type { SignedRequest } from './transfers.js';

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
