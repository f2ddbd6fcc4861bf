/**
 * @module engine/archive-stream
 * A directory of a volume as a tar (or tar.gz) stream, built while it is
 * sent: the tree is listed a page at a time and each file's bytes flow from
 * the blob store into the tar one chunk at a time, with backpressure from the
 * reader all the way back to the store, so memory stays bounded whatever the
 * directory holds.
 *
 * Entries are named relative to the archived directory (`a/b.txt`, `sub/`),
 * keep their permission bits and mtime (setuid, setgid and sticky bits only
 * when asked: a volume's modes are data from whoever wrote it, and `tar x`
 * as root would restore them); owners are always uid/gid 0 with no names; symlinks are symlink entries (never followed),
 * directories are directory entries. Every entry comes from one commit,
 * resolved before the first byte, so the archive is a consistent snapshot.
 *
 * A reader that goes away (the client aborts) stops everything at once: the
 * byte stream's close aborts the fill, which stops listing, stops reading
 * ahead, and destroys the blob stream of the file being written, so every
 * blob handle is closed within moments instead of waiting on a pack that
 * nobody drains.
 */
import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { pack as tarPack, type Header, type Pack } from 'tar-stream';

/** A tar entry header as pack.entry takes it. */
type Headers = Partial<Header> & Pick<Header, 'name'>;
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { parsePath } from '@stowage/sdk/common/paths.js';
import type { Actor, FileInfo, VolumeEngine } from './types.js';

/** Archive formats the server can stream. */
export const ARCHIVE_FORMATS = ['tar', 'tar.gz'] as const;
export type ArchiveFormat = (typeof ARCHIVE_FORMATS)[number];

/** Entries listed per page while archiving (bounds the listing's memory). */
const PAGE = 1000;
/** Small files read ahead of the one being written, at most. */
const READ_AHEAD_FILES = 32;
/** Files up to this size are read ahead whole (so the window holds at most 32 MiB). */
const READ_AHEAD_MAX_BYTES = 1024 * 1024;

/** What `archiveStream` returns: the commit archived and the bytes. */
export interface ArchiveStream {
  commit: string;
  /** The archived directory's name ("" for the root), for a download file name. */
  name: string;
  stream: Readable;
}

/**
 * Validates the request (the path must be a directory; NotFound and
 * InvalidArgument surface before any byte), then returns the archive stream.
 * Errors while streaming destroy the stream (the client sees a cut transfer).
 *
 * @example
 * const { stream } = await archiveStream(engine, actor, 'data', '/results', { format: 'tar.gz' });
 * await pipeline(stream, createWriteStream('results.tar.gz'));
 */
export async function archiveStream(
  engine: VolumeEngine,
  actor: Actor,
  volume: string,
  path: string,
  opts: { commit?: string; format?: ArchiveFormat; preserveMode?: boolean } = {},
): Promise<ArchiveStream> {
  const format = opts.format ?? 'tar.gz';
  if (!ARCHIVE_FORMATS.includes(format))
    throw new InvalidArgumentError(`archive format must be one of ${ARCHIVE_FORMATS.join(', ')}`);
  const root = parsePath(path);
  const { commit, entry } = await engine.stat(
    actor,
    volume,
    root,
    opts.commit !== undefined ? { commit: opts.commit } : {},
  );
  if (entry.type !== 'dir')
    throw new InvalidArgumentError(`${root} is not a directory: download the file itself, or archive its parent`);
  const prefix = root === '/' ? '/' : `${root}/`;
  const modeMask = opts.preserveMode === true ? 0o7777 : 0o777;

  const tar = tarPack();
  const gone = new AbortController();
  const fill = async () => {
    let after: string | undefined;
    for (;;) {
      const page = await engine.list(actor, volume, root, {
        commit,
        recursive: true,
        limit: PAGE,
        ...(after !== undefined ? { after } : {}),
      });
      await addPage({ engine, actor, volume, commit, tar, prefix, modeMask, signal: gone.signal }, page.entries);
      if (page.nextCursor === null) break;
      after = page.nextCursor;
    }
    tar.finalize();
  };
  fill().catch((err: unknown) => tar.destroy(err instanceof Error ? err : new Error(String(err))));

  // Readable.from pulls from the tar only as fast as the consumer reads, which is the backpressure the pack honours.
  const tarBytes = Readable.from(tar as AsyncIterable<Uint8Array>, { objectMode: false });
  tarBytes.on('close', () => {
    gone.abort();
    tar.destroy();
  });
  // A reader that goes away destroys the byte stream, which unwinds the pack with the same error; the consumer of
  // the byte stream already heard it, so the pack's copy needs no second listener to throw at.
  tar.on('error', () => undefined);
  if (format === 'tar') return { commit, name: entry.name, stream: tarBytes };
  const gzip = createGzip();
  tarBytes.on('error', (err) => gzip.destroy(err));
  gzip.on('close', () => tarBytes.destroy());
  return { commit, name: entry.name, stream: tarBytes.pipe(gzip) };
}

/**
 * Adds a page of entries in order. Small files are read ahead (a bounded
 * window) so their blob-store latency overlaps the tar's writing; large
 * files stream through one chunk at a time.
 */
async function addPage(job: ArchiveJob, entries: readonly FileInfo[]): Promise<void> {
  const { tar, prefix, modeMask, signal } = job;
  const ahead = new Map<number, Promise<Buffer>>();
  let next = 0;
  const readAhead = (from: number) => {
    for (; next < entries.length && next <= from + READ_AHEAD_FILES && !signal.aborted; next++) {
      const e = entries[next]!;
      if (e.type !== 'file' || e.size > READ_AHEAD_MAX_BYTES) continue;
      const bytes = readWhole(job, e);
      // Awaited in order below; this keeps an early failure from being an unhandled rejection.
      bytes.catch(() => undefined);
      ahead.set(next, bytes);
    }
  };
  for (let i = 0; i < entries.length; i++) {
    if (signal.aborted) throw new Error('the archive reader went away');
    readAhead(i);
    const e = entries[i]!;
    const name = e.path.slice(prefix.length);
    const bytes = ahead.get(i);
    ahead.delete(i);
    if (bytes === undefined) await addEntry(job, e, name);
    else {
      const data = await bytes;
      await new Promise<void>((resolve, reject) => {
        tar.entry(
          { name, mode: e.mode & modeMask, mtime: tarTime(e.mtime), type: 'file', size: data.length },
          data,
          (err) => (err ? reject(err) : resolve()),
        );
      });
    }
  }
}

/**
 * A tree's mtime as a tar header can hold it: tar-stream writes whole seconds
 * as a 32-bit int in octal, so times before 1970 or past 2038 (which a tree
 * may record) are clamped rather than wrapped into garbage.
 */
function tarTime(ms: number): Date {
  return new Date(Math.min(Math.max(ms, 0), 0x7fffffff * 1000));
}

/** What every step of one archive shares; `signal` aborts when its reader went away. */
interface ArchiveJob {
  engine: VolumeEngine;
  actor: Actor;
  volume: string;
  commit: string;
  tar: Pack;
  prefix: string;
  modeMask: number;
  signal: AbortSignal;
}

async function readWhole({ engine, actor, volume, commit, signal }: ArchiveJob, e: FileInfo): Promise<Buffer> {
  const { body } = await engine.readFile(actor, volume, e.path, { commit });
  const parts: Uint8Array[] = [];
  // Leaving the loop early closes the blob stream.
  for await (const piece of body) {
    if (signal.aborted) break;
    parts.push(piece);
  }
  return Buffer.concat(parts);
}

/** Adds one tree entry; a file's bytes are written as they arrive, waiting whenever the pack is full. */
async function addEntry(job: ArchiveJob, e: FileInfo, name: string): Promise<void> {
  const { engine, actor, volume, commit, tar, modeMask, signal } = job;
  const base: Headers = { name, mode: e.mode & modeMask, mtime: tarTime(e.mtime) };
  if (e.type === 'dir') {
    await entryDone(tar, { ...base, name: `${name}/`, type: 'directory' });
    return;
  }
  if (e.type === 'symlink') {
    await entryDone(tar, { ...base, type: 'symlink', linkname: e.target ?? '' });
    return;
  }
  const { body } = await engine.readFile(actor, volume, e.path, { commit });
  let sink!: ReturnType<Pack['entry']>;
  // The callback fires once the entry is complete in the pack, or with the error that destroyed it.
  const done = new Promise<void>((resolve, reject) => {
    sink = tar.entry({ ...base, type: 'file', size: e.size }, (err) => (err ? reject(err) : resolve()));
  });
  done.catch(() => undefined);
  // Leaving the loop early (reader gone, entry destroyed) closes the blob stream at once.
  for await (const piece of body) {
    if (signal.aborted) break;
    if (!sink.write(piece)) await drained(sink, signal);
    if (sink.destroyed || signal.aborted) break;
  }
  if (signal.aborted) {
    sink.destroy();
    throw new Error('the archive reader went away');
  }
  // streamx's end takes an optional last chunk; none here.
  sink.end(undefined);
  await done;
}

/** Resolves when a full entry can take more bytes, when it was destroyed, or when the reader went away (the caller then stops writing). */
function drained(sink: ReturnType<Pack['entry']>, signal: AbortSignal): Promise<void> {
  const events = sink as unknown as NodeJS.EventEmitter;
  return new Promise((resolve) => {
    const settle = () => {
      events.off('drain', settle);
      events.off('close', settle);
      signal.removeEventListener('abort', settle);
      resolve();
    };
    if (signal.aborted) return resolve();
    events.on('drain', settle);
    events.on('close', settle);
    signal.addEventListener('abort', settle, { once: true });
  });
}

/** Adds an entry without a body (directory, symlink) and waits until the pack took it. */
function entryDone(tar: Pack, header: Headers): Promise<void> {
  return new Promise((resolve, reject) => {
    tar.entry(header, (err) => (err ? reject(err) : resolve()));
  });
}
