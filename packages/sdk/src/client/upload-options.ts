/**
 * @module client/upload-options
 * The vocabulary of uploads (client/upload): what an upload sends, its
 * options, what it reports, and what it needs of its volume.
 */
import type { Change, CommitResponse } from '../api/wire.js';
import type { ProgressListener } from './commit-writer.js';
import type { Files } from './files.js';
import type { Stowage } from './http-client.js';
import type { SkippedEntry } from './local-tree.js';

/** What `vol.upload` sends: a local path (file or directory) or a stream of bytes. */
export type UploadSource = string | NodeJS.ReadableStream | AsyncIterable<Uint8Array>;

/** Options of `vol.upload`. */
export interface UploadOptions {
  /** true: send a file over the resumable tus protocol (default false: the chunk protocol). Ignored for directories and streams. */
  resumable?: boolean;
  /** Permission bits of a single file or stream (default: the local file's; 0o644 for streams). */
  mode?: number;
  /** Commit message. */
  message?: string;
  /** Hears hashing and upload progress (bytes). */
  onProgress?: ProgressListener;
  /** Where resumable-upload state lives (default: $STOWAGE_STATE_DIR, else ~/.stowage-client). */
  stateDir?: string;
  /** Cap on the sending rate of a resumable upload, in bytes per second (like curl --limit-rate). */
  limitRate?: number;
  /**
   * Changes per commit of a directory upload (default and most: the server's
   * bound, MAX_COMMIT_CHANGES). A directory that needs more is uploaded in
   * several commits: directories, modes and symlinks first, then the files.
   */
  changesPerCommit?: number;
}

/** What an upload did. */
export interface UploadResult {
  kind: 'file' | 'directory' | 'stream';
  /** The remote path written (the directory's root for a directory). */
  path: string;
  /** Id of the commit made (the last one, when a directory too big for one commit took several). */
  commit: string;
  /** Commits made (more than 1 only for a directory with more entries than one commit holds). */
  commits?: number;
  /** Regular files written. */
  files: number;
  /** Directories created (directory uploads, the root included). */
  directories: number;
  /** Symlinks stored (directory uploads). */
  symlinks: number;
  /** Bytes of all files written. */
  bytes: number;
  /** Bytes that travelled in this call (unchanged chunks and already-received tus bytes do not). */
  sentBytes: number;
  /** True when the file went over tus. */
  resumable: boolean;
  /** For a resumable upload: the offset the server already had when this call started (0 for a fresh upload). */
  resumedFrom?: number;
  /** Entries left out of a directory upload (escaping symlinks, special files, names a volume refuses). */
  skipped: SkippedEntry[];
}

/** What an upload needs of a volume (a `Volume` is one): named here, so the upload modules do not import volume.ts, which imports them. */
export interface UploadHost {
  readonly client: Stowage;
  readonly name: string;
  readonly files: Pick<Files, 'write' | 'writeFile' | 'writeMany'>;
  commitChanges(changes: Change[], options?: { message?: string }): Promise<CommitResponse>;
  refresh(): Promise<unknown>;
}
