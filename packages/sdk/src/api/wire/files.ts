/**
 * @module wire/files
 * Entries of a volume's tree: their attributes, stat and list. Types only; re-exported by api/wire.
 */

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
