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
 * This module uses tus-js-client for the tus protocol; everything else is
 * Node built-ins.
 */
import { createHash } from 'node:crypto';
import { createReadStream, type Stats } from 'node:fs';
import { lstat, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
// tus-js-client is loaded only by resumable uploads: it is a third of every CLI command's start-up time.
import type { DetailedError as TusDetailedError, Upload as TusUpload, PreviousUpload, UrlStorage } from 'tus-js-client';
import { InternalError, InvalidArgumentError, UnavailableError, type StowageError } from '../common/errors.js';
import { MAX_COMMIT_CHANGES } from '../common/limits.js';
import { parsePath } from '../common/paths.js';
import { MiB } from '../common/sizes.js';
import type { Change, CommitResponse } from '../api/wire.js';
import { splitNanos } from '../common/times.js';
import type { ProgressListener } from './commit-writer.js';
import { errorFromResponse, networkReason } from './http-client.js';
import { LongPaths } from './long-paths.js';
import { localError, walkTree, type SkippedEntry } from './local-tree.js';
import type { Files } from './files.js';
import type { Stowage } from './http-client.js';
// The symlink rule of directory uploads, where its tests and users have always found it.
export { escapeReason } from './local-tree.js';

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

function isStream(s: unknown): s is AsyncIterable<Uint8Array> {
  return typeof s === 'object' && s !== null && typeof (s as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function';
}

function checkMode(mode: number | undefined): void {
  if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) throw new InvalidArgumentError(`invalid mode ${mode}: expected permission bits such as 0o644`);
}

/** The directory holding client state: option, $STOWAGE_STATE_DIR, or ~/.stowage-client. */
export function stateDirOf(option?: string): string {
  const env = process.env.STOWAGE_STATE_DIR;
  return option ?? (env !== undefined && env !== '' ? env : join(homedir(), '.stowage-client'));
}

/** What an upload needs of a volume (a `Volume` is one): named here, so this module does not import volume.ts, which imports it. */
export interface UploadHost {
  readonly client: Stowage;
  readonly name: string;
  readonly files: Pick<Files, 'write' | 'writeFile' | 'writeMany'>;
  commitChanges(changes: Change[], options?: { message?: string }): Promise<CommitResponse>;
  refresh(): Promise<unknown>;
}

/**
 * Uploads a local file, a local directory (one commit) or a stream to `vol`.
 * Prefer `vol.upload`, which calls this.
 *
 * @example
 * const r = await uploadTo(vol, './dataset', '/dataset');
 * console.log(r.commit, r.files, r.skipped);
 */
export async function uploadTo(vol: UploadHost, source: UploadSource, remotePath: string | undefined, options: UploadOptions = {}): Promise<UploadResult> {
  checkMode(options.mode);
  if (options.limitRate !== undefined && (!Number.isFinite(options.limitRate) || options.limitRate < 1)) throw new InvalidArgumentError('limitRate must be a positive number of bytes per second');
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
  if (resumable) return uploadResumable(vol, source, remote, { size: st.size, mtimeMs: Math.floor(st.mtimeMs), mode: st.mode & 0o7777 }, options);
  const r = await vol.files.writeFile(remote, source, {
    ...(options.mode !== undefined ? { mode: options.mode } : {}),
    ...(options.message !== undefined ? { message: options.message } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  return { kind: 'file', path: remote, commit: r.commit.id, files: 1, directories: 0, symlinks: 0, bytes: r.size, sentBytes: r.uploadedBytes, resumable: false, skipped: [] };
}

async function uploadStream(vol: UploadHost, source: AsyncIterable<Uint8Array>, remote: string, options: UploadOptions): Promise<UploadResult> {
  const r = await vol.files.write(remote, source, {
    ...(options.mode !== undefined ? { mode: options.mode } : {}),
    ...(options.message !== undefined ? { message: options.message } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
  });
  return { kind: 'stream', path: remote, commit: r.commit.id, files: 1, directories: 0, symlinks: 0, bytes: r.size, sentBytes: r.uploadedBytes, resumable: false, skipped: [] };
}

// ---------------------------------------------------------------- directories

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

async function uploadDirectory(vol: UploadHost, localDir: string, remote: string, options: UploadOptions): Promise<UploadResult> {
  const lp = new LongPaths();
  try {
    return await uploadTree(vol, localDir, remote, options, lp);
  } finally {
    lp.close();
  }
}

async function uploadTree(vol: UploadHost, localDir: string, remote: string, options: UploadOptions, lp: LongPaths): Promise<UploadResult> {
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
  if (!Number.isSafeInteger(perCommit) || perCommit < 1) throw new InvalidArgumentError(`changesPerCommit must be a whole number between 1 and ${MAX_COMMIT_CHANGES}`);
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
      commit = (await vol.commitChanges(changes.slice(i, i + perCommit), { message: `${message} (part ${++commits} of ${parts})` })).commit.id;
    }
    for (let i = 0; i < files.length; i += perCommit) {
      const out = await vol.files.writeMany(files.slice(i, i + perCommit), { message: `${message} (part ${++commits} of ${parts})`, createParents: true, ...progress });
      commit = out.commit.id;
      sentBytes += out.uploadedBytes;
    }
  }
  return {
    kind: 'directory', path: remote, commit: commit!, commits, files: tree.files.length, directories: tree.dirs.length + (remote === '/' ? 0 : 1),
    symlinks: tree.links.length, bytes, sentBytes, resumable: false, skipped: tree.skipped,
  };
}

// ---------------------------------------------------------------- resumable (tus)

/**
 * tus URL storage as one small JSON file per fingerprint under
 * `<stateDir>/uploads/`, so a later process finds the upload to resume.
 */
export class FileUrlStore implements UrlStorage {
  constructor(readonly directory: string) {}

  #file(key: string): string {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new InvalidArgumentError('bad upload state key');
    return join(this.directory, `${key}.json`);
  }

  async findAllUploads(): Promise<PreviousUpload[]> {
    let names: string[];
    try {
      names = await readdir(this.directory);
    } catch {
      return [];
    }
    const all = await Promise.all(names.filter((n) => /^[0-9a-f]{64}\.json$/.test(n)).map((n) => this.findUploadsByFingerprint(n.slice(0, 64))));
    return all.flat();
  }

  async findUploadsByFingerprint(fingerprint: string): Promise<PreviousUpload[]> {
    try {
      const saved = JSON.parse(await readFile(this.#file(fingerprint), 'utf8')) as PreviousUpload;
      return [{ ...saved, urlStorageKey: fingerprint }];
    } catch {
      return [];
    }
  }

  async removeUpload(urlStorageKey: string): Promise<void> {
    await rm(this.#file(urlStorageKey), { force: true });
  }

  async addUpload(fingerprint: string, upload: PreviousUpload): Promise<string> {
    await mkdir(this.directory, { recursive: true, mode: 0o700 });
    await writeFile(this.#file(fingerprint), JSON.stringify(upload), { mode: 0o600 });
    return fingerprint;
  }
}

async function sha256OfFile(path: string, size: number, onProgress?: ProgressListener): Promise<string> {
  const hash = createHash('sha256');
  let done = 0;
  try {
    for await (const piece of createReadStream(path)) {
      hash.update(piece as Buffer);
      done += (piece as Buffer).length;
      onProgress?.({ phase: 'hash', done, total: size });
    }
  } catch (e) {
    throw localError(e, path);
  }
  return hash.digest('hex');
}

/** The key of a resumable upload: the same command on the same unchanged file finds the same upload. */
export function uploadFingerprint(parts: { url: string; volume: string; remotePath: string; localPath: string; size: number; mtimeMs: number }): string {
  return createHash('sha256').update(JSON.stringify([parts.url, parts.volume, parts.remotePath, resolve(parts.localPath), parts.size, parts.mtimeMs])).digest('hex');
}

function tusFailure(err: unknown, url: string, DetailedError: typeof TusDetailedError): StowageError {
  if (err instanceof DetailedError && err.originalResponse) {
    return errorFromResponse(err.originalResponse.getStatus(), err.originalResponse.getBody() ?? '', 'resumable upload');
  }
  const cause = err instanceof DetailedError && err.causingError ? err.causingError : err;
  return new UnavailableError(`resumable upload to ${url} failed: ${networkReason(cause)}`, { cause: err });
}

async function uploadResumable(vol: UploadHost, local: string, remote: string, file: { size: number; mtimeMs: number; mode: number }, options: UploadOptions): Promise<UploadResult> {
  const client = vol.client;
  const sha256 = await sha256OfFile(local, file.size, options.onProgress);
  const fingerprint = uploadFingerprint({ url: client.url, volume: vol.name, remotePath: remote, localPath: local, size: file.size, mtimeMs: file.mtimeMs });
  const urlStorage = new FileUrlStore(join(stateDirOf(options.stateDir), 'uploads'));
  const rate = options.limitRate;
  let firstOffset: number | undefined;
  let commit: string | undefined;
  let started = 0;

  const tus = await import('tus-js-client');
  const upload = await new Promise<TusUpload>((resolvePromise, reject) => {
    const u: TusUpload = new tus.Upload(createReadStream(local), {
      endpoint: `${client.url}/v1/uploads`,
      headers: client.authHeaders(),
      metadata: {
        volume: vol.name, path: remote, sha256,
        mode: (options.mode ?? file.mode).toString(8), mtime: String(file.mtimeMs),
      },
      uploadSize: file.size,
      // One streaming PATCH is fastest; a rate cap needs pieces to pace.
      ...(rate !== undefined ? { chunkSize: Math.max(64 * 1024, Math.min(8 * MiB, Math.floor(rate / 8))) } : {}),
      retryDelays: [0, 1000, 3000, 5000],
      fingerprint: async () => fingerprint,
      urlStorage,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      onBeforeRequest: async (req) => {
        if (req.getMethod() !== 'PATCH') return;
        const offset = Number(req.getHeader('Upload-Offset') ?? 0);
        if (firstOffset === undefined) {
          firstOffset = offset;
          started = Date.now();
        }
        if (rate !== undefined) {
          const due = started + ((offset - firstOffset) / rate) * 1000;
          if (due > Date.now()) await sleep(due - Date.now());
        }
      },
      onAfterResponse: (_req, res) => {
        const c = res.getHeader(COMMIT_HEADER);
        if (c) commit = c;
      },
      onProgress: (sent, total) => options.onProgress?.({ phase: 'upload', done: sent, total }),
      onSuccess: () => resolvePromise(u),
      onError: (err) => reject(err),
    });
    u.findPreviousUploads()
      .then((previous) => {
        if (previous[0]) u.resumeFromPreviousUpload(previous[0]);
        u.start();
      })
      .catch(reject);
  }).catch(async (err: unknown) => {
    const e = tusFailure(err, client.url, tus.DetailedError);
    // A refused upload (4xx) is gone on the server: forget it, so the next run starts afresh.
    if (e.code !== 'Unavailable') await urlStorage.removeUpload(fingerprint).catch(() => undefined);
    if (e.code === 'InvalidArgument' && /SHA-256/.test(e.message)) {
      throw new InvalidArgumentError(`${local} changed since its upload started, so the server refused the result (${e.message}); run the upload again to start afresh`, { cause: e });
    }
    throw e;
  });
  void upload;
  if (commit === undefined) throw new InternalError('the server finished the upload without naming its commit');
  await vol.refresh();
  const from = firstOffset ?? file.size;
  return { kind: 'file', path: remote, commit, files: 1, directories: 0, symlinks: 0, bytes: file.size, sentBytes: file.size - from, resumable: true, resumedFrom: from, skipped: [] };
}

/** Response header naming the commit a completed tus upload made (see server/routes/uploads-routes). */
const COMMIT_HEADER = 'Stowage-Commit';
