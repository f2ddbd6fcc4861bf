/**
 * @module local-blob-store
 * The embedded BlobStore: one directory on local disk, object `key` at
 * `<dir>/<key>`. Signed URLs are served by the Stowage server itself (see
 * url-signer).
 *
 * A put streams into a *temp file* under `<dir>/.tmp/`, then fsyncs it and
 * renames it into place, so readers see the old object, the whole new one, or
 * nothing; a crash leaves at most a temp file, which removeStaleTemp deletes.
 * `.tmp` is therefore reserved: no key may start with it.
 *
 * A filesystem cannot hold both a file `a` and a directory `a/`, so unlike S3
 * this store refuses (ConflictError) a key that is a prefix directory of
 * another stored key, or the other way round. Stowage's own keys never do that.
 */
import { randomBytes } from 'node:crypto';
import type { Dirent } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readdir, rename, rm, rmdir, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import {
  ConflictError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  diskFullOr,
} from '@stowage/sdk/common/errors.js';
import { retry, type RetryPolicy } from '@stowage/sdk/common/retry.js';
import {
  assertValidKey,
  isValidKey,
  type BlobBody,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
  type PutOptions,
  type SignedRequest,
  type SignOptions,
} from '../blob-store.js';
import { BodyMeter, bodyChunks, checkPutOptions, resolveRange } from '../blob-store-checks.js';
import type { UrlSigner } from './url-signer.js';

/** Name of the directory, under the store's root, that holds in-flight puts. */
export const TEMP_DIR_NAME = '.tmp';

/** Default age after which open() treats a temp file as a crash leftover. */
export const DEFAULT_STALE_TEMP_MS = 60 * 60 * 1000;

/** Writes are gathered up to this size: fewer syscalls than one per network chunk, bounded memory per put. */
const WRITE_BUFFER_BYTES = 256 * 1024;

/** A put whose parent directory a concurrent delete pruned just after it was made: make it again, at once, a few times. */
const PUBLISH_RETRY: RetryPolicy = {
  name: 'local blob publish',
  attempts: 5,
  baseDelayMs: 0,
  retryable: (err) => code(err) === 'ENOENT',
};

/** Options of a LocalBlobStore. */
export interface LocalBlobStoreOptions {
  /** Root directory of the store. */
  dir: string;
  /** Signs the URLs that sign() returns; without it sign() throws. */
  signer?: UrlSigner;
}

/** Options of LocalBlobStore.open. */
export interface OpenLocalBlobStoreOptions extends LocalBlobStoreOptions {
  /** Temp files older than this (ms) are removed at open; default one hour. */
  staleTempMs?: number;
}

/** A BlobStore over a local directory. */
/** Bytes per read of an object being streamed out. */
const READ_PIECE = 256 * 1024;

export class LocalBlobStore implements BlobStore {
  /** Absolute root directory. */
  readonly dir: string;
  /** The signer sign() delegates to, if any (the server verifies with the same one). */
  readonly signer: UrlSigner | undefined;
  readonly #tmpDir: string;
  /** Temp files of puts in flight, which removeStaleTemp must never delete. */
  readonly #active = new Set<string>();
  #tmpReady: Promise<unknown> | undefined;
  /** Directories whose own entry is known to be durable (synced up to the root once); a put then syncs only its parent. */
  readonly #durableDirs = new Set<string>();

  /** Does no I/O; prefer open(), which creates the directory and cleans crash leftovers. */
  constructor(options: LocalBlobStoreOptions) {
    if (typeof options.dir !== 'string' || options.dir === '')
      throw new InvalidArgumentError('LocalBlobStore needs a directory');
    this.dir = resolve(options.dir);
    this.signer = options.signer;
    this.#tmpDir = join(this.dir, TEMP_DIR_NAME);
  }

  /** Creates the directory if needed, removes stale temp files, and returns the store. */
  static async open(options: OpenLocalBlobStoreOptions): Promise<LocalBlobStore> {
    const store = new LocalBlobStore(options);
    await store.#ensureTmpDir();
    await store.removeStaleTemp(options.staleTempMs ?? DEFAULT_STALE_TEMP_MS);
    return store;
  }

  /** Streams the body to a temp file while metering it, then fsyncs and renames it into place. */
  async put(key: string, body: BlobBody, options?: PutOptions): Promise<BlobInfo> {
    const path = this.#pathOf(key);
    const checked = checkPutOptions(key, options);
    await this.#ensureTmpDir();
    const tmp = join(this.#tmpDir, `${Date.now().toString(36)}-${randomBytes(8).toString('hex')}`);
    this.#active.add(tmp);
    let fh: FileHandle | undefined;
    try {
      fh = await open(tmp, 'wx');
      const meter = new BodyMeter(key, checked);
      const writer = new BufferedWriter(fh);
      for await (const chunk of bodyChunks(body)) {
        meter.add(chunk);
        await writer.write(chunk);
      }
      await writer.flush();
      meter.finish();
      await fh.sync();
      const st = await fh.stat();
      await fh.close();
      fh = undefined;
      await this.#publish(tmp, path, key);
      return { key, size: st.size, lastModified: st.mtime };
    } catch (err) {
      await fh?.close().catch(() => undefined);
      await rm(tmp, { force: true }).catch(() => undefined);
      throw diskFullOr(err, `storing blob ${JSON.stringify(key)}`);
    } finally {
      this.#active.delete(tmp);
    }
  }

  /** Opens the file first, so the stream reads one version even if the key is replaced meanwhile. */
  async get(key: string, range?: ByteRange): Promise<Readable> {
    const path = this.#pathOf(key);
    let fh: FileHandle;
    try {
      fh = await open(path, 'r');
    } catch (err) {
      if (isMissing(err)) throw notFound(key, err);
      throw err;
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw notFound(key);
      const { start, length } = resolveRange(key, range, st.size);
      if (length === 0) {
        await fh.close();
        return Readable.from([], { objectMode: false });
      }
      // 256 KiB reads: chunks are megabytes and every piece costs a trip through the HTTP layer, but
      // bigger pieces only add garbage (server memory) without making the transfer faster.
      return fh.createReadStream({ start, end: start + length - 1, autoClose: true, highWaterMark: READ_PIECE });
    } catch (err) {
      await fh.close().catch(() => undefined);
      throw err;
    }
  }

  /** Stats the file; anything but a regular file is no object. */
  async head(key: string): Promise<BlobInfo | undefined> {
    const path = this.#pathOf(key);
    try {
      const st = await stat(path);
      return st.isFile() ? { key, size: st.size, lastModified: st.mtime } : undefined;
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw err;
    }
  }

  /** Unlinks the file, then removes parent directories left empty (never the root). */
  async delete(key: string): Promise<void> {
    const path = this.#pathOf(key);
    try {
      await unlink(path);
    } catch (err) {
      // EISDIR: `key` is only a prefix directory of other keys, so there is no object to delete.
      if (isMissing(err) || code(err) === 'EISDIR') return;
      throw err;
    }
    for (let d = dirname(path); d !== this.dir && d.startsWith(this.dir); d = dirname(d)) {
      try {
        this.#durableDirs.delete(d); // before the rmdir: a re-created directory must be synced again
        await rmdir(d);
      } catch {
        break; // not empty (or already gone): the rest of the chain is not ours to prune
      }
    }
  }

  /** Walks only the directory the prefix points into, visiting entries in key order. */
  async *list(prefix: string): AsyncIterable<BlobInfo> {
    if (typeof prefix !== 'string') throw new InvalidArgumentError('list prefix must be a string');
    const slash = prefix.lastIndexOf('/');
    const base = slash < 0 ? '' : prefix.slice(0, slash);
    // No valid key starts with an invalid directory part, and temp files are never objects.
    if (base !== '' && (!isValidKey(base) || isReserved(base))) return;
    yield* this.#walk(base, prefix);
  }

  /** Delegates to the signer; throws InternalError when the store has none. */
  async sign(key: string, method: 'GET' | 'PUT', options: SignOptions): Promise<SignedRequest> {
    this.#pathOf(key);
    if (!this.signer) {
      throw new InternalError(
        `the local blob store at ${this.dir} has no URL signer, so it cannot hand out signed URLs: create it with { signer: new UrlSigner({ secret, baseUrl }) }`,
      );
    }
    return this.signer.sign(key, method, options);
  }

  /** Holds no open handles between calls, so there is nothing to release. */
  async close(): Promise<void> {}

  /** Deletes temp files (crash leftovers) last modified more than `olderThanMs` ago, except those of puts in flight here; returns how many. */
  async removeStaleTemp(olderThanMs: number): Promise<number> {
    const cutoff = Date.now() - olderThanMs;
    let names: string[];
    try {
      names = await readdir(this.#tmpDir);
    } catch (err) {
      if (isMissing(err)) return 0;
      throw err;
    }
    let removed = 0;
    for (const name of names) {
      const p = join(this.#tmpDir, name);
      if (this.#active.has(p)) continue;
      try {
        const st = await stat(p);
        if (st.mtimeMs >= cutoff) continue;
        await rm(p, { force: true, recursive: true });
        removed++;
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    return removed;
  }

  #pathOf(key: string): string {
    assertValidKey(key);
    if (isReserved(key))
      throw new InvalidArgumentError(
        `blob key ${JSON.stringify(key)} is reserved: keys of the local blob store cannot start with "${TEMP_DIR_NAME}"`,
      );
    return join(this.dir, ...key.split('/'));
  }

  #ensureTmpDir(): Promise<unknown> {
    // Memoised, but forgotten on failure so a later call can retry (e.g. after the disk is mounted).
    this.#tmpReady ??= mkdir(this.#tmpDir, { recursive: true }).catch((err: unknown) => {
      this.#tmpReady = undefined;
      throw err;
    });
    return this.#tmpReady;
  }

  async #publish(tmp: string, path: string, key: string): Promise<void> {
    const parent = dirname(path);
    try {
      await retry(PUBLISH_RETRY, async () => {
        await mkdir(parent, { recursive: true });
        await rename(tmp, path);
      });
    } catch (err) {
      const c = code(err);
      if (c === 'EEXIST' || c === 'ENOTDIR' || c === 'EISDIR' || c === 'ENOTEMPTY') {
        throw new ConflictError(
          `blob key ${JSON.stringify(key)} clashes with another stored key: the local blob store cannot hold both "a" and "a/..."`,
          { cause: err },
        );
      }
      throw err;
    }
    // The rename is durable once its directory is synced; a directory's own
    // entry once its parent is, up to the root. Each chain is synced once per
    // process, so a put costs one directory sync after the first few.
    const dirs = [parent];
    for (let d = parent; d !== this.dir && d.startsWith(this.dir) && !this.#durableDirs.has(d); d = dirname(d))
      dirs.push(dirname(d));
    await Promise.all(dirs.map(fsyncDir));
    for (const d of dirs) this.#durableDirs.add(d);
  }

  async *#walk(rel: string, prefix: string): AsyncGenerator<BlobInfo> {
    const abs = rel === '' ? this.dir : join(this.dir, ...rel.split('/'));
    let dirents: Dirent[];
    try {
      dirents = await readdir(abs, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return;
      throw err;
    }
    const entries: Array<{ key: string; dir: boolean; order: string }> = [];
    for (const d of dirents) {
      const key = rel === '' ? d.name : `${rel}/${d.name}`;
      if (!isValidKey(key) || isReserved(key)) continue; // stray files are not objects
      if (d.isDirectory()) entries.push({ key, dir: true, order: `${key}/` });
      else if (d.isFile()) entries.push({ key, dir: false, order: key });
    }
    // A directory's keys all start with "name/", so it sorts as "name/": "a-b" < "a.b" < "a/x" < "a0".
    entries.sort((x, y) => (x.order < y.order ? -1 : x.order > y.order ? 1 : 0));
    for (const e of entries) {
      if (e.dir) {
        if (e.order.startsWith(prefix) || prefix.startsWith(e.order)) yield* this.#walk(e.key, prefix);
      } else if (e.key.startsWith(prefix)) {
        try {
          const st = await stat(join(abs, e.key.slice(e.key.lastIndexOf('/') + 1)));
          if (st.isFile()) yield { key: e.key, size: st.size, lastModified: st.mtime };
        } catch (err) {
          if (!isMissing(err)) throw err; // deleted since readdir: simply not listed
        }
      }
    }
  }
}

/** Gathers small chunks into one write; large chunks are written straight through. */
class BufferedWriter {
  readonly #fh: FileHandle;
  #buf: Buffer | undefined;
  #used = 0;

  constructor(fh: FileHandle) {
    this.#fh = fh;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (chunk.byteLength >= WRITE_BUFFER_BYTES) {
      await this.flush();
      await writeAll(this.#fh, chunk);
      return;
    }
    if (this.#used + chunk.byteLength > WRITE_BUFFER_BYTES) await this.flush();
    this.#buf ??= Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
    this.#buf.set(chunk, this.#used);
    this.#used += chunk.byteLength;
  }

  async flush(): Promise<void> {
    if (this.#used === 0 || !this.#buf) return;
    await writeAll(this.#fh, this.#buf.subarray(0, this.#used));
    this.#used = 0;
  }
}

async function writeAll(fh: FileHandle, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.byteLength; ) {
    const { bytesWritten } = await fh.write(data, off, data.byteLength - off);
    off += bytesWritten;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(dir, 'r');
  } catch (err) {
    if (isMissing(err)) return; // pruned by a concurrent delete of the key just put: nothing left to make durable
    throw err;
  }
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function code(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String((err as { code: unknown }).code) : undefined;
}

/** ENOENT, or ENOTDIR when a parent path component is a file: either way the key is absent. */
function isMissing(err: unknown): boolean {
  const c = code(err);
  return c === 'ENOENT' || c === 'ENOTDIR';
}

function notFound(key: string, cause?: unknown): NotFoundError {
  return new NotFoundError(`blob ${JSON.stringify(key)} not found`, cause === undefined ? undefined : { cause });
}

function isReserved(key: string): boolean {
  return key === TEMP_DIR_NAME || key.startsWith(`${TEMP_DIR_NAME}/`);
}
