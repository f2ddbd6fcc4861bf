/**
 * @module client/upload
 * `vol.upload(source, remotePath?, options)`: puts a local file, a whole
 * local directory or a stream into a volume. Vocabulary:
 *
 * - file: sent with the chunk protocol (`vol.files.writeFile`): only chunks
 *   the store lacks travel, straight to the blob store, one commit. This is
 *   the default at every size: it is the fastest path and re-sending an
 *   unchanged file costs nothing.
 * - resumable file (`resumable: true`): goes over tus (`/v1/uploads`), for
 *   links where a large transfer may be cut. The client hashes
 *   the file first (the server refuses content that does not match), and
 *   remembers the upload URL in a state file keyed by a fingerprint of
 *   (server URL, volume, remote path, local path, size, mtime): running the
 *   same upload again after a crash continues from the server's offset.
 * - directory: every file, directory and inner symlink of a local tree in ONE
 *   commit. The walk never follows symlinks. A symlink is stored only when it
 *   stays inside the uploaded directory twice over: its target, read as
 *   text, neither is absolute nor climbs out ("../.."), and resolved for real
 *   on this disk (component by component as the kernel does, through chains
 *   of links and links to links outside) it lands inside the directory's own
 *   realpath. Others are skipped
 *   and listed in `skipped`: stored as is, they would point at whatever the
 *   reader's machine has there.
 * - stream: bytes of unknown length (standard input), cut as they arrive.
 *
 * This module picks the path and does files and streams; directories are
 * client/upload-dir, resumable files client/upload-resumable (which uses
 * tus-js-client for the tus protocol; everything else is Node built-ins),
 * and the shared types client/upload-options.
 */
import { lstat } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { basename, resolve } from 'node:path';
import { InvalidArgumentError } from '../common/errors.js';
import { parsePath } from '../common/paths.js';
import { checkMode, type WriteOptions, type WriteResult } from './file-writes.js';
import { localError } from './local-tree.js';
import { uploadDirectory } from './upload-dir.js';
import type { UploadHost, UploadOptions, UploadResult, UploadSource } from './upload-options.js';
import { uploadResumable } from './upload-resumable.js';
// The symlink rule of directory uploads, where its tests and users have always found it.
export { escapeReason } from './local-tree.js';
export type { UploadHost, UploadOptions, UploadResult, UploadSource } from './upload-options.js';
export { FileUrlStore, stateDirOf, uploadFingerprint } from './upload-resumable.js';

function isStream(s: unknown): s is AsyncIterable<Uint8Array> {
  return (
    typeof s === 'object' && s !== null && typeof (s as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function'
  );
}

/**
 * Uploads a local file, a local directory (one commit) or a stream to `vol`.
 * Prefer `vol.upload`, which calls this.
 *
 * @example
 * const r = await uploadTo(vol, './dataset', '/dataset');
 * console.log(r.commit, r.files, r.skipped);
 */
export async function uploadTo(
  vol: UploadHost,
  source: UploadSource,
  remotePath: string | undefined,
  options: UploadOptions = {},
): Promise<UploadResult> {
  checkMode(options.mode);
  if (options.limitRate !== undefined && (!Number.isFinite(options.limitRate) || options.limitRate < 1))
    throw new InvalidArgumentError('limitRate must be a positive number of bytes per second');
  if (typeof source !== 'string') {
    if (!isStream(source)) throw new InvalidArgumentError('upload source must be a local path or a readable stream');
    if (remotePath === undefined) throw new InvalidArgumentError('name the remote path to write a stream to');
    return uploadStream(vol, source, parsePath(remotePath), options);
  }
  let st: Stats;
  try {
    st = await lstat(source);
  } catch (e) {
    throw localError(e, source);
  }
  const remote = parsePath(remotePath ?? `/${basename(resolve(source))}`);
  if (st.isDirectory()) return uploadDirectory(vol, source, remote, options);
  if (!st.isFile()) throw new InvalidArgumentError(`${source} is neither a regular file nor a directory`);
  if (remote === '/') throw new InvalidArgumentError('cannot upload a file onto the volume root: name a file path');
  const resumable = options.resumable === true;
  if (resumable)
    return uploadResumable(
      vol,
      source,
      remote,
      { size: st.size, mtimeMs: Math.floor(st.mtimeMs), mode: st.mode & 0o7777 },
      options,
    );
  return singleResult('file', remote, await vol.files.writeFile(remote, source, writeOptionsOf(options)));
}

function writeOptionsOf(options: UploadOptions): WriteOptions {
  return {
    ...(options.mode !== undefined ? { mode: options.mode } : {}),
    ...(options.message !== undefined ? { message: options.message } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  };
}

/** The result of an upload of one file or stream: one commit of one file. */
function singleResult(kind: 'file' | 'stream', path: string, r: WriteResult): UploadResult {
  return {
    kind,
    path,
    commit: r.commit.id,
    files: 1,
    directories: 0,
    symlinks: 0,
    bytes: r.size,
    sentBytes: r.uploadedBytes,
    resumable: false,
    skipped: [],
  };
}

async function uploadStream(
  vol: UploadHost,
  source: AsyncIterable<Uint8Array>,
  remote: string,
  options: UploadOptions,
): Promise<UploadResult> {
  return singleResult('stream', remote, await vol.files.write(remote, source, writeOptionsOf(options)));
}
