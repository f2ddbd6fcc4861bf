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
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, type Stats } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import { chmod, lstat, mkdir, rename, stat, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type * as wire from '../api/wire.js';
import { InvalidArgumentError, UnavailableError } from '../common/errors.js';
import { parsePath } from '../common/paths.js';
import type { ProgressListener } from './commit-writer.js';
import { errorFromResponse, networkReason, type Stowage } from './http-client.js';
import { LongPaths } from './long-paths.js';
import { readTar } from './tar-reader.js';

/** Archive formats the server streams. */
export type ArchiveFormat = 'tar' | 'tar.gz';

/** Files of a directory archive up to this size are read whole and written in the background (16 at most: 16 MiB); larger ones stream. */
const SMALL_FILE_BYTES = 1024 * 1024;
/** Small files written at once by a directory download. */
const DIR_CONCURRENCY = 16;

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
function localMode(mode: number, preserveMode: boolean | undefined): number {
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

/** A range of a file: inclusive byte offsets. */
export interface ByteRange {
  start: number;
  end: number;
}

function volumePath(name: string, suffix: string): string {
  return `/v1/volumes/${encodeURIComponent(name)}${suffix}`;
}

/**
 * GET an API path as a byte stream (errors become StowageErrors before any
 * byte is returned). node:http rather than fetch: its IncomingMessage is a
 * plain Node stream, about twice as fast as a converted web stream.
 */
function getStream(client: Stowage, path: string, query: Record<string, string | undefined>, headers: Record<string, string> = {}): Promise<{ status: number; headers: { get(name: string): string | null }; body: Readable }> {
  const url = new URL(client.urlOf(path, query));
  const mod = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { headers: { ...client.authHeaders(), ...headers } }, (res) => {
      const status = res.statusCode ?? 0;
      const get = (name: string): string | null => {
        const v = res.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
      };
      if (status >= 200 && status < 300) {
        resolve({ status, headers: { get }, body: res });
        return;
      }
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('error', (e) => reject(new UnavailableError(`GET ${path}: the answer was cut: ${networkReason(e)}`, { cause: e })));
      res.on('end', () => reject(errorFromResponse(status, Buffer.concat(parts).toString('utf8'), `GET ${path}`)));
    });
    req.on('error', (e) => reject(new UnavailableError(`cannot reach Stowage at ${client.url}: ${networkReason(e)}`, { cause: e })));
  });
}

/**
 * Streams the inclusive byte range of a file through the server's content
 * endpoint (only the overlapping chunks are read there).
 *
 * @example
 * const head = await readAll(await readRange(vol, '/big.bin', { start: 0, end: 1023 }));
 */
export async function readRange(host: Pick<DownloadHost, 'client' | 'name'>, path: string, range: ByteRange, commit?: string): Promise<Readable> {
  const p = parsePath(path);
  if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.end < range.start) {
    throw new InvalidArgumentError(`range must be whole offsets with 0 <= start <= end (got ${range.start}-${range.end})`);
  }
  const res = await getStream(host.client, volumePath(host.name, '/content'), { path: p, commit }, { range: `bytes=${range.start}-${range.end}` });
  return res.body;
}

/**
 * A URL for one file that anyone can fetch without a token until it expires
 * (pinned to the file's current commit, or `commit`).
 *
 * @example
 * const { url, expiresAt } = await signedUrl(vol, '/report.pdf', { expiresIn: 600 });
 */
export async function signedUrl(host: Pick<DownloadHost, 'client' | 'name'>, path: string, options: { expiresIn?: number; commit?: string } = {}): Promise<wire.SignedUrlResponse> {
  const body: wire.SignedUrlRequest = { path: parsePath(path) };
  if (options.expiresIn !== undefined) body.expiresIn = options.expiresIn;
  if (options.commit !== undefined) body.commit = options.commit;
  return host.client.request<wire.SignedUrlResponse>('POST', volumePath(host.name, '/urls'), { body });
}

/** A temp name beside `target`, so the final rename stays on one file system. */
function tempBeside(target: string): string {
  return join(dirname(target), `.${basename(target).slice(0, 100)}.stowage-${randomBytes(6).toString('hex')}.part`);
}

/** Writes a stream to `target` through a temp file and a rename; the temp file is removed on failure. `meta.mode` is written as given (callers mask it with localMode). */
async function writeAtomically(source: Readable, target: string, meta?: { mode: number; mtime: number }): Promise<void> {
  const tmp = tempBeside(target);
  try {
    // 'wx': the temp name must be new, so an existing file or symlink there is never opened.
    await pipeline(source, createWriteStream(tmp, { flags: 'wx', mode: 0o600, highWaterMark: 1024 * 1024 }));
    if (meta) {
      await chmod(tmp, meta.mode);
      const t = new Date(meta.mtime);
      await utimes(tmp, t, t);
    } else {
      await chmod(tmp, 0o644);
    }
    // rename replaces a symlink at the target itself; it never follows it.
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** writeAtomically for bytes already in memory: fewer system calls than a stream. */
async function writeBytesAtomically(data: Buffer, target: string, meta: { mode: number; mtime: number }): Promise<void> {
  const tmp = tempBeside(target);
  try {
    await writeFile(tmp, data, { flag: 'wx', mode: 0o600 });
    await chmod(tmp, meta.mode);
    const t = new Date(meta.mtime);
    await utimes(tmp, t, t);
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** lstat, or undefined when nothing is there. */
async function lstatOrNone(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Makes sure every directory between `root` and the entry's parent is a real
 * directory (creating missing ones); returns why not when one is a symlink
 * or a non-directory.
 */
async function confinedParent(root: string, segments: readonly string[], verified: Set<string>, lp: LongPaths): Promise<string | undefined> {
  let cur = root;
  for (const seg of segments.slice(0, -1)) {
    cur = join(cur, seg);
    if (verified.has(cur)) continue;
    const st = await lstatOrNone(lp.short(cur));
    if (!st) await mkdir(lp.short(cur), { mode: 0o755 });
    else if (st.isSymbolicLink()) return `${cur} is a symlink: refusing to write through it`;
    else if (!st.isDirectory()) return `${cur} is not a directory`;
    verified.add(cur);
  }
  return undefined;
}

/**
 * One file's bytes as one stream from the server's content endpoint: on
 * loopback and LANs a single stream runs at disk speed, about twice what
 * signed per-chunk reads reach (those buffer and hash each chunk).
 */
async function fileSource(host: DownloadHost, e: wire.FileInfo, commit: string, onBytes: (n: number) => void): Promise<Readable> {
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
export async function downloadTo(host: DownloadHost, remotePath: string, local: string | Writable, options: DownloadOptions = {}): Promise<DownloadResult> {
  const p = parsePath(remotePath);
  if (options.archive !== undefined) {
    if (options.archive !== 'tar' && options.archive !== 'tar.gz') throw new InvalidArgumentError('archive must be "tar" or "tar.gz"');
    const res = await getStream(host.client, volumePath(host.name, '/archive'), { path: p, format: options.archive, commit: options.commit, preserveMode: options.preserveMode === true ? 'true' : undefined });
    let bytes = 0;
    res.body.on('data', (d: Buffer) => {
      bytes += d.length;
      options.onProgress?.({ phase: 'download', done: bytes });
    });
    if (typeof local === 'string') await writeAtomically(res.body, local);
    else await pipeline(res.body, local, { end: false });
    return { kind: 'archive', commit: res.headers.get('x-stowage-commit') ?? '', files: 0, bytes, refused: [] };
  }
  if (typeof local !== 'string') throw new InvalidArgumentError('a file or directory download needs a local path (stream only archives)');
  const st = await host.client.request<wire.StatResponse>('GET', volumePath(host.name, '/stat'), { query: { path: p, commit: options.commit } });
  const entry = st.entry;
  if (entry.type === 'symlink') throw new InvalidArgumentError(`${p} is a symlink (to ${JSON.stringify(entry.target)}): download its target instead`);
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

async function downloadDir(host: DownloadHost, dir: string, root: string, total: number, options: DownloadOptions): Promise<DownloadResult> {
  // One tar stream (uncompressed: loopback and LANs are faster than gzip) instead of a request per file.
  // The modes are masked here whatever the server sends: it may be an older or a hostile one.
  const res = await getStream(host.client, volumePath(host.name, '/archive'), { path: dir, format: 'tar', commit: options.commit, preserveMode: options.preserveMode === true ? 'true' : undefined });
  const commit = res.headers.get('x-stowage-commit') ?? '';
  await mkdir(root, { recursive: true, mode: 0o755 });
  const lp = new LongPaths();
  try {
    return await extractInto(res.body, commit, dir, root, total, options, lp);
  } finally {
    lp.close();
  }
}

/** Writes the entries of a directory's tar stream under `root` (see the module doc: confinement, modes, long paths). */
async function extractInto(tarStream: Readable, commit: string, dir: string, root: string, total: number, options: DownloadOptions, lp: LongPaths): Promise<DownloadResult> {
  const S = (p: string) => lp.short(p);
  const refused: RefusedEntry[] = [];
  const verified = new Set<string>();
  const dirs: Array<{ at: string; mode: number; mtime: number }> = [];
  const links: Array<{ name: string; at: string; target: string }> = [];
  const writes = new Set<Promise<void>>();
  let failure: unknown;
  let done = 0;
  let written = 0;
  const onBytes = (n: number) => {
    done += n;
    options.onProgress?.({ phase: 'download', done, total });
  };

  /** The local path of an archive entry, or undefined (and a refusal) when it would leave root or pass a symlink. */
  const place = async (name: string): Promise<string | undefined> => {
    let segments: string[];
    try {
      // Names are relative to the archived directory; parsePath refuses "", ".", ".." and NUL.
      segments = parsePath(`/${name.replace(/\/+$/, '')}`).slice(1).split('/');
    } catch {
      refused.push({ path: name, reason: 'not a safe relative path' });
      return undefined;
    }
    let why: string | undefined;
    try {
      why = await confinedParent(root, segments, verified, lp);
    } catch (e) {
      if (!isTooLong(e)) throw e;
      why = 'the local path is too long for this system';
    }
    if (why !== undefined) {
      refused.push({ path: `${dir === '/' ? '' : dir}/${segments.join('/')}`, reason: why });
      return undefined;
    }
    return join(root, ...segments);
  };
  const remote = (name: string) => `${dir === '/' ? '' : dir}/${name.replace(/\/+$/, '')}`;

  /** Refuses an entry the local system cannot name (ENAMETOOLONG), or rethrows. */
  const tooLong = (name: string, e: unknown): void => {
    if (!isTooLong(e)) throw e;
    refused.push({ path: remote(name), reason: 'the local path is too long for this system' });
  };

  await readTar(tarStream, async (h, body) => {
    if (failure !== undefined) throw failure;
    if (h.type === 'directory') {
      const at = await place(h.name);
      if (at === undefined) return;
      let existing: Stats | undefined;
      try {
        existing = await lstatOrNone(S(at));
        if (!existing) await mkdir(S(at), { mode: 0o755 }).catch((e: NodeJS.ErrnoException) => { if (e.code !== 'EEXIST') throw e; });
      } catch (e) {
        return tooLong(h.name, e);
      }
      if (existing && !existing.isDirectory()) {
        refused.push({ path: remote(h.name), reason: `${at} exists and is ${existing.isSymbolicLink() ? 'a symlink' : 'not a directory'}` });
        return;
      }
      verified.add(at);
      dirs.push({ at, mode: localMode(h.mode, options.preserveMode), mtime: h.mtime });
      return;
    }
    if (h.type === 'symlink') {
      // Made last, so no file of this download is ever written below one.
      const at = await place(h.name);
      if (at !== undefined) links.push({ name: h.name, at, target: h.linkname });
      return;
    }
    if (h.type !== 'file') return;
    const at = await place(h.name);
    if (at === undefined) return;
    let short: string;
    try {
      short = S(at);
      if ((await lstatOrNone(short))?.isDirectory()) {
        refused.push({ path: remote(h.name), reason: `${at} is a directory` });
        return;
      }
    } catch (e) {
      return tooLong(h.name, e);
    }
    const meta = { mode: localMode(h.mode, options.preserveMode), mtime: h.mtime };
    if (h.size > SMALL_FILE_BYTES) {
      // Large files stream straight from the archive (the archive waits for them).
      try {
        await writeAtomically(Readable.from(counted(body, onBytes)), short, meta);
      } catch (e) {
        return tooLong(h.name, e);
      }
      written++;
      return;
    }
    // Small files are read whole and written in the background, a bounded number at once.
    const parts: Buffer[] = [];
    for await (const piece of body) parts.push(piece);
    const data = Buffer.concat(parts);
    while (writes.size >= DIR_CONCURRENCY) await Promise.race(writes);
    const w = writeBytesAtomically(data, short, meta).then(
      () => { written++; onBytes(data.length); },
      (e: unknown) => {
        try {
          tooLong(h.name, e);
        } catch {
          failure ??= e;
        }
      },
    ).finally(() => writes.delete(w));
    writes.add(w);
  });
  await Promise.all(writes);
  if (failure !== undefined) throw failure;
  for (const l of links) {
    try {
      const existing = await lstatOrNone(S(l.at));
      if (existing?.isDirectory()) {
        refused.push({ path: remote(l.name), reason: `${l.at} is a directory` });
        continue;
      }
      if (existing) await unlink(S(l.at));
      await symlink(l.target, S(l.at));
    } catch (e) {
      tooLong(l.name, e);
    }
  }
  // Modes and mtimes of directories last (deepest first), after their contents stopped changing them.
  for (const d of dirs.reverse()) {
    await chmod(S(d.at), d.mode);
    const t = new Date(d.mtime);
    await utimes(S(d.at), t, t);
  }
  return { kind: 'dir', commit, files: written, bytes: done, refused };
}

/** True when `e` says a local path is longer than the system takes. */
function isTooLong(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENAMETOOLONG';
}

async function* counted(body: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const piece of body) {
    onBytes(piece.length);
    yield piece;
  }
}
