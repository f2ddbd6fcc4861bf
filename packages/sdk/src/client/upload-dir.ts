/**
 * @module client/upload-dir
 * A directory upload: walk a local tree (client/local-tree, which never
 * follows symlinks and skips the escaping ones) and write every file,
 * directory and inner symlink in one commit, or in several when the tree
 * has more entries than one commit holds.
 */
import { lstat } from 'node:fs/promises';
import type { Change } from '../api/wire.js';
import { InvalidArgumentError } from '../common/errors.js';
import { MAX_COMMIT_CHANGES } from '../common/limits.js';
import { splitNanos } from '../common/times.js';
import { walkTree } from './local-tree.js';
import { LongPaths } from './long-paths.js';
import type { UploadHost, UploadOptions, UploadResult } from './upload-options.js';

/**
 * The setattr giving an uploaded directory its local mode and mtime (to the
 * ns). atime and ctime are set to the same instant, which the tree records
 * as "same as mtime": the server's mkdir time would otherwise stay as the
 * directory's atime and ctime. No owner: a laptop's uid means nothing on the server.
 */
function dirAttributes(path: string, mode: number, mtimeNs: bigint): Change {
  const { ms, ns } = splitNanos(mtimeNs);
  return { op: 'setattr', path, mode, mtime: ms, mtimeNs: ns, atime: ms, atimeNs: ns, ctime: ms, ctimeNs: ns };
}

export async function uploadDirectory(
  vol: UploadHost,
  localDir: string,
  remote: string,
  options: UploadOptions,
): Promise<UploadResult> {
  const lp = new LongPaths();
  try {
    return await uploadTree(vol, localDir, remote, options, lp);
  } finally {
    lp.close();
  }
}

async function uploadTree(
  vol: UploadHost,
  localDir: string,
  remote: string,
  options: UploadOptions,
  lp: LongPaths,
): Promise<UploadResult> {
  const rootStat = await lstat(localDir, { bigint: true });
  const tree = await walkTree(localDir, lp);
  const at = (rel: string) => (remote === '/' ? `/${rel}` : `${remote}/${rel}`);
  // Directories first as mkdir (empty ones must exist too), then their modes:
  // files are put before the other changes and create their parents with default modes.
  const changes: Change[] = [];
  const rootMode = Number(rootStat.mode) & 0o7777;
  if (remote !== '/') changes.push({ op: 'mkdir', path: remote, mode: rootMode });
  for (const d of tree.dirs) changes.push({ op: 'mkdir', path: at(d.rel), mode: d.mode });
  if (remote !== '/') changes.push(dirAttributes(remote, rootMode, rootStat.mtimeNs));
  for (const d of tree.dirs) changes.push(dirAttributes(at(d.rel), d.mode, d.mtimeNs));
  for (const l of tree.links) changes.push({ op: 'symlink', path: at(l.rel), target: l.target, createParents: true });
  let bytes = 0;
  for (const f of tree.files) bytes += (await lstat(lp.short(f.abs))).size;
  const message = options.message ?? `upload ${tree.files.length} files to ${remote}`;
  const progress = options.onProgress ? { onProgress: options.onProgress } : {};
  const files = tree.files.map((f) => ({ path: at(f.rel), localPath: lp.short(f.abs) }));
  const perCommit = Math.min(options.changesPerCommit ?? MAX_COMMIT_CHANGES, MAX_COMMIT_CHANGES);
  if (!Number.isSafeInteger(perCommit) || perCommit < 1)
    throw new InvalidArgumentError(`changesPerCommit must be a whole number between 1 and ${MAX_COMMIT_CHANGES}`);
  let commit: string;
  let sentBytes = 0;
  let commits = 0;
  if (files.length + changes.length <= perCommit) {
    const out = await vol.files.writeMany(files, { message, createParents: true, changes, ...progress });
    commit = out.commit.id;
    sentBytes = out.uploadedBytes;
    commits = 1;
  } else {
    // More than one commit holds (the server refuses bigger ones with 413): the directories with their modes
    // and the symlinks first, so the files land in directories that exist; each commit is whole, and running
    // the upload again after an interruption sends no chunk twice.
    const parts = Math.ceil(changes.length / perCommit) + Math.ceil(files.length / perCommit);
    for (let i = 0; i < changes.length; i += perCommit) {
      commit = (
        await vol.commitChanges(changes.slice(i, i + perCommit), {
          message: `${message} (part ${++commits} of ${parts})`,
        })
      ).commit.id;
    }
    for (let i = 0; i < files.length; i += perCommit) {
      const out = await vol.files.writeMany(files.slice(i, i + perCommit), {
        message: `${message} (part ${++commits} of ${parts})`,
        createParents: true,
        ...progress,
      });
      commit = out.commit.id;
      sentBytes += out.uploadedBytes;
    }
  }
  return {
    kind: 'directory',
    path: remote,
    commit: commit!,
    commits,
    files: tree.files.length,
    directories: tree.dirs.length + (remote === '/' ? 0 : 1),
    symlinks: tree.links.length,
    bytes,
    sentBytes,
    resumable: false,
    skipped: tree.skipped,
  };
}
