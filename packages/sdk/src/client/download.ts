/**
 * @module client/download
 * Downloads to the local machine (SPEC section 4): a file to a file, a
 * directory to a directory, a directory as a tar or tar.gz archive, byte
 * ranges, and signed file URLs. Vocabulary:
 *
 * - target: the local path a download writes. Files land in a temp file
 *   beside the target and are renamed into place when complete, so a reader
 *   never sees half a file and a cut transfer leaves the old file intact.
 * - confinement: a directory download writes only inside its target. Volume
 *   paths cannot hold "..", and every parent directory on the way to an
 *   entry is checked with lstat: an existing symlink there (left by an
 *   earlier download, or made by anyone) is never written through; the
 *   entry is skipped and reported instead. Symlinks of the volume are
 *   recreated as symlinks, never followed.
 * - directory transfer: one uncompressed tar stream from the archive
 *   endpoint (one request instead of one per file), read by sdk/tar-reader;
 *   small files are written a bounded number at a time, large ones stream.
 *   The archive is one commit, so the local copy is a consistent snapshot
 *   even while others write. Mtimes are kept to the second (tar's unit).
 * - modes: a volume's modes are data from whoever wrote it. Files and
 *   directories get their permission bits (0o777) only, never setuid, setgid
 *   or sticky, unless `preserveMode` asks for them; owners are never set
 *   (volumes record none), so everything belongs to the downloading user.
 * - long paths: a volume path may be 4,096 bytes, so LOCAL plus it may be
 *   longer than one system call takes; such paths are reached relative to an
 *   open directory (sdk/long-paths). An entry that still cannot be written
 *   for its length is refused and reported; the rest continues.
 *
 * This module picks the kind of download and does single files and
 * archives; directory extraction is client/download-dir, safe local writes
 * client/local-write, server byte streams client/content-stream, and the
 * shared types client/download-options.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as wire from '../api/wire.js';
import { InvalidArgumentError } from '../common/errors.js';
import { parsePath } from '../common/paths.js';
import { getStream, volumePath } from './content-stream.js';
import { downloadDir } from './download-dir.js';
import { localMode, type DownloadHost, type DownloadOptions, type DownloadResult } from './download-options.js';
import { writeAtomically } from './local-write.js';

export type {
  ArchiveFormat,
  DownloadHost,
  DownloadOptions,
  DownloadResult,
  RefusedEntry,
} from './download-options.js';
export { readRange, signedUrl, type ByteRange } from './content-stream.js';

/**
 * One file's bytes as one stream from the server's content endpoint: on
 * loopback and LANs a single stream runs at disk speed, about twice what
 * signed per-chunk reads reach (those buffer and hash each chunk).
 */
async function fileSource(
  host: DownloadHost,
  e: wire.FileInfo,
  commit: string,
  onBytes: (n: number) => void,
): Promise<Readable> {
  const source = (await getStream(host.client, volumePath(host.name, '/content'), { path: e.path, commit })).body;
  source.on('data', (d: Buffer) => onBytes(d.length));
  return source;
}

/**
 * Downloads a file, a directory, or a directory as an archive.
 *
 * @example
 * await downloadTo(vol, '/results/model.bin', './model.bin');
 * const r = await downloadTo(vol, '/results', './results'); // r.refused lists entries not written
 * await downloadTo(vol, '/results', './results.tar.gz', { archive: 'tar.gz' });
 */
export async function downloadTo(
  host: DownloadHost,
  remotePath: string,
  local: string | Writable,
  options: DownloadOptions = {},
): Promise<DownloadResult> {
  const p = parsePath(remotePath);
  if (options.archive !== undefined) {
    if (options.archive !== 'tar' && options.archive !== 'tar.gz')
      throw new InvalidArgumentError('archive must be "tar" or "tar.gz"');
    const res = await getStream(host.client, volumePath(host.name, '/archive'), {
      path: p,
      format: options.archive,
      commit: options.commit,
      preserveMode: options.preserveMode === true ? 'true' : undefined,
    });
    let bytes = 0;
    res.body.on('data', (d: Buffer) => {
      bytes += d.length;
      options.onProgress?.({ phase: 'download', done: bytes });
    });
    if (typeof local === 'string') await writeAtomically(res.body, local);
    else await pipeline(res.body, local, { end: false });
    return { kind: 'archive', commit: res.headers.get('x-stowage-commit') ?? '', files: 0, bytes, refused: [] };
  }
  if (typeof local !== 'string')
    throw new InvalidArgumentError('a file or directory download needs a local path (stream only archives)');
  const st = await host.client.request<wire.StatResponse>('GET', volumePath(host.name, '/stat'), {
    query: { path: p, commit: options.commit },
  });
  const entry = st.entry;
  if (entry.type === 'symlink')
    throw new InvalidArgumentError(
      `${p} is a symlink (to ${JSON.stringify(entry.target)}): download its target instead`,
    );
  if (entry.type === 'file') {
    let done = 0;
    // Like cp: into an existing directory (the caller's own path, so a symlink to one counts), keep the name.
    const localSt = await stat(local).catch(() => undefined);
    const target = localSt?.isDirectory() ? join(local, entry.name) : local;
    const source = await fileSource(host, entry, st.commit, (n) => {
      done += n;
      options.onProgress?.({ phase: 'download', done, total: entry.size });
    });
    await writeAtomically(source, target, { mode: localMode(entry.mode, options.preserveMode), mtime: entry.mtime });
    return { kind: 'file', commit: st.commit, files: 1, bytes: entry.size, refused: [] };
  }
  return downloadDir(host, p, local, entry.size, { ...options, commit: st.commit });
}
