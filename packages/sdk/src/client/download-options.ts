/**
 * @module client/download-options
 * The vocabulary of downloads (client/download): what a download needs of
 * its volume, its options, what it reports, and the one rule of local modes.
 */
import type { ProgressListener } from './commit-writer.js';
import type { Stowage } from './http-client.js';

/** Archive formats the server streams. */
export type ArchiveFormat = 'tar' | 'tar.gz';

/** What a download needs of its volume. */
export interface DownloadHost {
  readonly client: Stowage;
  readonly name: string;
}

/** Options of `vol.download`. */
export interface DownloadOptions {
  /** Download the directory as one archive stream instead of a directory tree. */
  archive?: ArchiveFormat;
  /** A commit id; the volume's head when absent. */
  commit?: string;
  /** Hears download progress (bytes). */
  onProgress?: ProgressListener;
  /** Keep setuid, setgid and sticky bits (files, directories, archive entries); by default only the permission bits 0o777 are written. */
  preserveMode?: boolean;
}

/** The bits of a volume mode a download writes: permissions only, unless special bits were asked for. */
export function localMode(mode: number, preserveMode: boolean | undefined): number {
  return mode & (preserveMode === true ? 0o7777 : 0o777);
}

/** An entry a directory download refused to write, and why. */
export interface RefusedEntry {
  path: string;
  reason: string;
}

/** What a download did. */
export interface DownloadResult {
  kind: 'file' | 'dir' | 'archive';
  /** The commit read. */
  commit: string;
  files: number;
  bytes: number;
  /** Entries not written because writing them would go through a symlink or over a non-directory. */
  refused: RefusedEntry[];
}
