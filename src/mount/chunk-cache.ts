/**
 * @module mount/chunk-cache
 * The mount agent's local cache of clean chunks, one file per chunk hash in
 * one directory, bounded by `capacity` bytes with least-recently-used
 * eviction. Everything here is clean by construction: dirty bytes live in the
 * overlay's data files, never in this cache, so evicting a chunk can never
 * lose work.
 *
 * A chunk is fetched once however many readers want it at the same time
 * (single flight), verified against its hash before it becomes visible
 * (written to a temporary name, renamed into place), and pinned while a
 * reader copies out of it so eviction never pulls a file from under a read.
 * The index is rebuilt from the directory on start, so a restarted agent
 * keeps its warm cache.
 */
import { closeSync, openSync, promises as fsp, readSync } from 'node:fs';
import { join } from 'node:path';
import { InternalError } from '@stowage/sdk/common/errors.js';
import { randomHex } from '@stowage/sdk/common/ids.js';
import { ChunkHasher } from './chunk-hasher.js';

interface Entry {
  size: number;
  pins: number;
  /** Open read descriptor, kept for the most recently read chunks (reads come 128 KiB at a time). */
  fd: number | null;
  /**
   * The verified bytes while their file is still being written: reads are
   * served from memory meanwhile, so writing the cache file is not on the
   * path of a cold read. Settles (and is cleared) once the file is in place.
   */
  writing: { bytes: Uint8Array; done: Promise<void> } | null;
}

/** Chunk files kept open at once. */
const MAX_OPEN_FDS = 64;

/** How a missing chunk is obtained: its bytes, from wherever the caller knows to get them. */
export type ChunkFetcher = () => Promise<Uint8Array>;

export interface CacheStats {
  bytes: number;
  chunks: number;
  hits: number;
  misses: number;
  evictions: number;
}

const HASH_RE = /^[0-9a-f]{64}$/;

export class ChunkCache {
  /** Insertion order is recency order: a hit re-inserts the entry at the end. */
  readonly #entries = new Map<string, Entry>();
  readonly #inflight = new Map<string, Promise<void>>();
  /** Hashes with an open fd, oldest first. */
  readonly #open = new Set<string>();
  readonly #hasher = new ChunkHasher();
  #bytes = 0;
  #hits = 0;
  #misses = 0;
  #evictions = 0;

  private constructor(
    readonly dir: string,
    readonly capacity: number,
    private readonly recycle: (bytes: Uint8Array) => void,
  ) {}

  /**
   * Opens (and indexes) the cache directory, creating it when missing; trims
   * it to `capacity`. `recycle` gets fetched bytes back once they are on disk.
   */
  static async open(
    dir: string,
    capacity: number,
    recycle: (bytes: Uint8Array) => void = () => undefined,
  ): Promise<ChunkCache> {
    await fsp.mkdir(dir, { recursive: true, mode: 0o700 });
    const cache = new ChunkCache(dir, capacity, recycle);
    const found: Array<{ hash: string; size: number; atime: number }> = [];
    for (const name of await fsp.readdir(dir)) {
      const path = join(dir, name);
      if (!HASH_RE.test(name)) {
        // Temporary files of a fetch that never finished (the agent was killed).
        await fsp.rm(path, { force: true });
        continue;
      }
      const st = await fsp.stat(path);
      found.push({ hash: name, size: st.size, atime: st.atimeMs });
    }
    found.sort((a, b) => a.atime - b.atime);
    for (const f of found) {
      cache.#entries.set(f.hash, { size: f.size, pins: 0, fd: null, writing: null });
      cache.#bytes += f.size;
    }
    await cache.#evict();
    return cache;
  }

  /** Waits until every fetched chunk is in its file. */
  async settle(): Promise<void> {
    await Promise.all([...this.#entries.values()].map((e) => e.writing?.done));
  }

  /** Finishes the cache files being written and stops the hashing worker. */
  async close(): Promise<void> {
    await this.settle();
    await this.#hasher.close();
  }

  stats(): CacheStats {
    return {
      bytes: this.#bytes,
      chunks: this.#entries.size,
      hits: this.#hits,
      misses: this.#misses,
      evictions: this.#evictions,
    };
  }

  has(hash: string): boolean {
    return this.#entries.has(hash);
  }

  pathOf(hash: string): string {
    return join(this.dir, hash);
  }

  /**
   * Makes sure the chunk is cached (fetching it once if not) and runs `use`
   * with the chunk's file path while the chunk is pinned.
   */
  async with<T>(hash: string, fetch: ChunkFetcher, use: (path: string) => Promise<T>): Promise<T> {
    await this.ensure(hash, fetch);
    const entry = this.#entries.get(hash);
    if (!entry) return this.with(hash, fetch, use); // evicted between ensure and here: fetch again
    entry.pins++;
    try {
      await entry.writing?.done;
      if (!this.#entries.has(hash)) return await this.with(hash, fetch, use); // its file could not be written
      return await use(this.pathOf(hash));
    } finally {
      entry.pins--;
      if (this.#bytes > this.capacity) void this.#evict();
    }
  }

  /**
   * Reads `len` bytes at `pos` of a chunk into `buf` at `off` (fetching the
   * chunk first when it is not cached); returns how many were read.
   */
  async read(
    hash: string,
    fetch: ChunkFetcher,
    buf: Uint8Array,
    off: number,
    len: number,
    pos: number,
  ): Promise<number> {
    await this.ensure(hash, fetch);
    const entry = this.#entries.get(hash);
    if (!entry) return this.read(hash, fetch, buf, off, len, pos);
    entry.pins++;
    try {
      if (entry.writing) {
        const from = entry.writing.bytes.subarray(pos, pos + len);
        buf.set(from, off);
        return from.length;
      }
      if (entry.fd === null) {
        entry.fd = openSync(this.pathOf(hash), 'r');
        this.#open.add(hash);
        this.#closeIdle();
      }
      // A synchronous read: the chunk was just fetched or read (so it is in the page cache), a
      // 128 KiB copy takes microseconds, and a trip through the thread pool cost more than that.
      let done = 0;
      while (done < len) {
        const n = readSync(entry.fd, buf, off + done, len - done, pos + done);
        if (n === 0) break;
        done += n;
      }
      return done;
    } finally {
      entry.pins--;
      if (this.#bytes > this.capacity) void this.#evict();
    }
  }

  /** Closes the oldest idle descriptors beyond MAX_OPEN_FDS. */
  #closeIdle(): void {
    for (const hash of this.#open) {
      if (this.#open.size <= MAX_OPEN_FDS) return;
      const entry = this.#entries.get(hash);
      if (entry && entry.pins > 0) continue;
      this.#closeFd(hash, entry);
    }
  }

  #closeFd(hash: string, entry: Entry | undefined): void {
    this.#open.delete(hash);
    if (entry?.fd != null) {
      closeSync(entry.fd);
      entry.fd = null;
    }
  }

  /** Fetches the chunk unless cached; concurrent callers share one fetch. */
  async ensure(hash: string, fetch: ChunkFetcher): Promise<void> {
    const entry = this.#entries.get(hash);
    if (entry) {
      this.#hits++;
      this.#entries.delete(hash);
      this.#entries.set(hash, entry);
      return;
    }
    let flight = this.#inflight.get(hash);
    if (!flight) {
      this.#misses++;
      flight = this.#fetchInto(hash, fetch).finally(() => this.#inflight.delete(hash));
      this.#inflight.set(hash, flight);
    }
    await flight;
  }

  async #fetchInto(hash: string, fetch: ChunkFetcher): Promise<void> {
    const bytes = await fetch();
    let got: string;
    try {
      got = await this.#hasher.hash(bytes);
    } catch (e) {
      this.recycle(bytes);
      throw e;
    }
    if (got !== hash) {
      this.recycle(bytes);
      throw new InternalError(
        `chunk ${hash.slice(0, 12)}… arrived with different content (sha256 ${got.slice(0, 12)}…)`,
      );
    }
    // Visible (and readable from memory) now; pinned until its file is in place, so it is not evicted half-written.
    const entry: Entry = { size: bytes.byteLength, pins: 1, fd: null, writing: null };
    const tmp = join(this.dir, `.tmp-${randomHex(8)}`);
    const done = (async () => {
      try {
        await fsp.writeFile(tmp, bytes, { mode: 0o600 });
        await fsp.rename(tmp, this.pathOf(hash));
      } catch {
        // No room on disk, say: forget the chunk; the next read fetches it again.
        await fsp.rm(tmp, { force: true });
        if (this.#entries.get(hash) === entry) {
          this.#entries.delete(hash);
          this.#bytes -= entry.size;
        }
      } finally {
        entry.writing = null;
        entry.pins--;
        this.recycle(bytes);
        if (this.#bytes > this.capacity) void this.#evict();
      }
    })();
    entry.writing = { bytes, done };
    this.#entries.set(hash, entry);
    this.#bytes += bytes.byteLength;
    await this.#evict();
  }

  /** Drops least recently used, unpinned chunks until the cache fits (a pinned one may keep it over for a moment). */
  async #evict(): Promise<void> {
    if (this.#bytes <= this.capacity) return;
    const victims: string[] = [];
    for (const [hash, entry] of this.#entries) {
      if (this.#bytes <= this.capacity) break;
      if (entry.pins > 0) continue;
      this.#entries.delete(hash);
      this.#closeFd(hash, entry);
      this.#bytes -= entry.size;
      this.#evictions++;
      victims.push(hash);
    }
    await Promise.all(victims.map((h) => fsp.rm(this.pathOf(h), { force: true })));
  }
}
