/**
 * @module mount/file-content
 * The bytes of one file of a mount: clean base chunks come from the chunk
 * cache (fetched on first read), local bytes from the overlay's data file.
 *
 * A base file turns local on its first write or truncate ("localize"): an
 * empty sparse data file of the file's size is created, and from then on
 * chunk i is read from the data file when it is dirty or lies past the base
 * chunks, else from the base. A write that covers only part of a base chunk
 * first copies that chunk into the data file (materialize), so the data file
 * always holds whole chunks; at commit only dirty chunks are hashed and
 * uploaded. That is what makes a 1-byte change in a large file cost one
 * chunk, and an append after a full final chunk cost only the new tail.
 *
 * A local file holds no descriptor of its own: every read, write and hash
 * borrows one from a bounded cache (fd-cache.ts) for as long as it runs, and
 * size/mtime changes go by path. So tens of thousands of dirty files cost no
 * more descriptors than a few hundred.
 */
import {
  createReadStream,
  promises as fsp,
  readSync,
  writeSync,
  openSync,
  statSync,
  ftruncateSync,
  futimesSync,
  closeSync,
  type BigIntStats,
} from 'node:fs';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import type { Readable } from 'node:stream';
import type { ChunkCache } from './chunk-cache.js';
import { FdCache } from './fd-cache.js';
import type { OverlayStore } from './overlay-store.js';
import type { RemoteSource } from './remote.js';
import { fsError } from './fs-error.js';
import { nowNs, type FileNode, type LocalFile, type NsTime } from './nodes.js';

/** Seconds as the fs module's utimes take them (a float: microseconds survive, nanoseconds not). */
function nsToSeconds(t: NsTime): number {
  return Number(t / 1000n) / 1e6;
}

export interface ContentContext {
  remote: RemoteSource;
  overlay: OverlayStore;
  cache: ChunkCache;
  /** The commit base files come from. */
  base: () => string;
  /** Chunks read ahead on sequential reads. */
  prefetch: number;
  /** Data-file descriptors kept open at most (fd-cache.ts; the default when absent). */
  openFiles?: number;
}

/*
 * Data files are read and written synchronously, on the JS thread: they are
 * local and mostly in the page cache, so a pread/pwrite takes microseconds,
 * while a round trip through libuv's thread pool wakes two threads (~100 µs
 * each on a virtual machine that does not poll when idle), per FUSE request.
 */

/** Reads exactly `len` bytes (fewer only at end of file). */
function readFully(fd: number, buf: Uint8Array, off: number, len: number, pos: number): number {
  let done = 0;
  while (done < len) {
    const n = readSync(fd, buf, off + done, len - done, pos + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

function writeFully(fd: number, buf: Uint8Array, off: number, len: number, pos: number): void {
  for (let done = 0; done < len; ) done += writeSync(fd, buf, off + done, len - done, pos + done);
}

export class FileContent {
  /** Descriptors of the data files, bounded (a dirty file holds none between operations). */
  readonly fds: FdCache;

  constructor(private readonly ctx: ContentContext) {
    this.fds = new FdCache((id) => ctx.overlay.dataPath(id), ctx.openFiles);
  }

  /** Runs `fn` with the descriptor of a local file's data file, open until `fn` settles. */
  withFd<T>(local: LocalFile, fn: (fd: number) => Promise<T> | T): Promise<T> {
    // New files that get bytes are what spares are for: each first use (of a spare, or a miss) asks for more.
    if (local.spare) {
      local.spare = false;
      this.ctx.overlay.refillSpares();
    }
    if (local.made) return this.fds.use(local.dataId, fn);
    this.ctx.overlay.refillSpares();
    return this.fds.use(
      local.dataId,
      (fd) => {
        local.made = true;
        return fn(fd);
      },
      true,
    );
  }

  /** The local file is gone (unlinked, replaced): its descriptor is closed once no operation uses it. */
  close(local: LocalFile): void {
    this.fds.drop(local.dataId);
  }

  /** Every descriptor is closed once no operation uses it (before the overlay is reset or the agent stops). */
  closeAll(): void {
    this.fds.dropAll();
  }

  /**
   * A new, empty local file's content: a spare data file when one is ready, else one made by the first
   * write, truncate or utimens (no record until it needs one). Files that stay empty use up the spares
   * and then make none: only a first write asks for more.
   */
  createLocal(): LocalFile {
    const spare = this.ctx.overlay.takeSpare();
    const made = spare !== undefined;
    return {
      dataId: spare ?? this.ctx.overlay.newDataId(),
      dirty: new Set(),
      materializing: new Map(),
      made,
      spare: made,
    };
  }

  /** Turns a base file local: a sparse data file of its size; every chunk still comes from the base. */
  localize(node: FileNode): LocalFile {
    const spare = this.ctx.overlay.takeSpare();
    this.ctx.overlay.refillSpares();
    const dataId = spare ?? this.ctx.overlay.newDataId();
    const fd = spare
      ? openSync(this.ctx.overlay.dataPath(dataId), 'r+')
      : openSync(this.ctx.overlay.dataPath(dataId), 'wx+', 0o600);
    try {
      ftruncateSync(fd, node.size);
      futimesSync(fd, nsToSeconds(node.atime), nsToSeconds(node.mtime));
    } finally {
      closeSync(fd);
    }
    this.ctx.overlay.putFile({ dataId, chunkSize: node.chunkSize, baseChunks: node.baseChunks, dirty: [] });
    return { dataId, dirty: new Set(), materializing: new Map(), made: true };
  }

  /**
   * Re-attaches a local file after a restart: its chunk state from the store (a created file may have
   * no record: small chunks, all local), size and mtime from the data file (a stat: replaying opens nothing).
   */
  restore(node: FileNode, dataId: string, created: boolean): void {
    const rec =
      this.ctx.overlay.getFile(dataId) ??
      (created ? { chunkSize: SMALL_CHUNK_SIZE, baseChunks: [], dirty: [] } : undefined);
    if (!rec) throw new Error(`overlay record of ${dataId} is missing`);
    const local: LocalFile = { dataId, dirty: new Set(rec.dirty), materializing: new Map(), made: true };
    node.local = local;
    node.chunkSize = rec.chunkSize;
    node.baseChunks = rec.baseChunks;
    let st: BigIntStats;
    try {
      st = statSync(this.ctx.overlay.dataPath(dataId), { bigint: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      node.size = 0; // created and never written: no data file yet
      local.made = false;
      return;
    }
    node.size = Number(st.size);
    node.mtime = node.ctime = st.mtimeNs;
    node.atime = st.atimeNs;
  }

  #persist(node: FileNode): void {
    const local = node.local!;
    this.ctx.overlay.putFile({
      dataId: local.dataId,
      chunkSize: node.chunkSize,
      baseChunks: node.baseChunks,
      dirty: [...local.dirty],
    });
  }

  #isLocalChunk(node: FileNode, index: number): boolean {
    return node.local !== null && (index >= node.baseChunks.length || node.local.dirty.has(index));
  }

  /** Runs `use` on base chunk `index` while it is in the cache. */
  async #withBaseChunk<T>(node: FileNode, index: number, use: (path: string) => Promise<T>): Promise<T> {
    const hash = node.baseChunks[index]!;
    const basePath = node.basePath;
    if (basePath === null) throw fsError('EIO', 'a base chunk without a base path');
    const commit = this.ctx.base();
    return this.ctx.cache.with(
      hash,
      () => this.ctx.remote.fetchChunk(commit, basePath, index, hash, node.chunkSize),
      use,
    );
  }

  #readBaseChunk(
    node: FileNode,
    index: number,
    buf: Uint8Array,
    off: number,
    len: number,
    pos: number,
  ): Promise<number> {
    const hash = node.baseChunks[index]!;
    const basePath = node.basePath;
    if (basePath === null) throw fsError('EIO', 'a base chunk without a base path');
    const commit = this.ctx.base();
    return this.ctx.cache.read(
      hash,
      () => this.ctx.remote.fetchChunk(commit, basePath, index, hash, node.chunkSize),
      buf,
      off,
      len,
      pos,
    );
  }

  #prefetch(node: FileNode, index: number): void {
    for (let i = index + 1; i <= index + this.ctx.prefetch && i < node.baseChunks.length; i++) {
      if (this.#isLocalChunk(node, i)) continue;
      const hash = node.baseChunks[i]!;
      if (this.ctx.cache.has(hash)) continue;
      const commit = this.ctx.base();
      const basePath = node.basePath!;
      const idx = i;
      void this.ctx.cache
        .ensure(hash, () => this.ctx.remote.fetchChunk(commit, basePath, idx, hash, node.chunkSize))
        .catch(() => undefined);
    }
  }

  /** Reads up to `len` bytes at `pos` into `buf`; returns how many (0 at or past the end). */
  async read(node: FileNode, buf: Uint8Array, len: number, pos: number): Promise<number> {
    const end = Math.min(pos + len, node.size);
    if (pos >= end) return 0;
    const sequential = node.lastReadEnd === pos;
    node.lastReadEnd = end;
    const cs = node.chunkSize;
    let at = pos;
    while (at < end) {
      const index = Math.floor(at / cs);
      const stop = Math.min(end, (index + 1) * cs);
      const off = at - pos;
      const n = stop - at;
      if (this.#isLocalChunk(node, index)) {
        const got = await this.withFd(node.local!, (fd) => readFully(fd, buf, off, n, at));
        if (got < n) buf.fill(0, off + got, off + n); // a hole past the data written so far reads as zeros
      } else {
        if (sequential && this.ctx.prefetch > 0) this.#prefetch(node, index);
        const got = await this.#readBaseChunk(node, index, buf, off, n, at - index * cs);
        if (got < n) buf.fill(0, off + got, off + n);
      }
      at = stop;
    }
    return end - pos;
  }

  /** Copies base chunk `index` into the data file and marks it dirty (once, however many writers ask). */
  async #materialize(node: FileNode, index: number): Promise<void> {
    const local = node.local!;
    let flight = local.materializing.get(index);
    if (!flight) {
      flight = (async () => {
        const bytes = await this.#withBaseChunk(node, index, (path) => fsp.readFile(path));
        // The file may have shrunk while the chunk was fetched: copy only what is still inside it.
        const room = Math.max(0, Math.min(bytes.length, node.size - index * node.chunkSize));
        if (room > 0) await this.withFd(local, (fd) => writeFully(fd, bytes, 0, room, index * node.chunkSize));
        local.dirty.add(index);
        this.#persist(node);
      })().finally(() => local.materializing.delete(index));
      local.materializing.set(index, flight);
    }
    await flight;
  }

  /** Makes every chunk in [from, to) local: waits for copies in flight, copies partly covered base chunks. */
  async #prepareRange(
    node: FileNode,
    from: number,
    to: number,
    fullyWritten: (index: number) => boolean,
  ): Promise<void> {
    const cs = node.chunkSize;
    const local = node.local!;
    let changed = false;
    for (let index = Math.floor(from / cs); index * cs < to; index++) {
      const flight = local.materializing.get(index);
      if (flight) await flight;
      if (this.#isLocalChunk(node, index)) continue;
      if (fullyWritten(index)) {
        local.dirty.add(index);
        changed = true;
      } else {
        await this.#materialize(node, index);
      }
    }
    if (changed) this.#persist(node);
  }

  /** Writes `len` bytes of `buf` at `pos` (the node must be local). */
  async write(node: FileNode, buf: Uint8Array, len: number, pos: number): Promise<number> {
    const cs = node.chunkSize;
    const end = pos + len;
    await this.#prepareRange(node, pos, end, (i) => pos <= i * cs && end >= (i + 1) * cs);
    await this.withFd(node.local!, (fd) => writeFully(fd, buf, 0, len, pos));
    if (end > node.size) node.size = end;
    node.mtime = node.ctime = nowNs();
    return len;
  }

  /** Sets the file's size (the node must be local); new bytes read as zeros. */
  async truncate(node: FileNode, size: number): Promise<void> {
    const cs = node.chunkSize;
    const old = node.size;
    // The chunk that holds the new (or old) end changes length: make it local first.
    const edge = Math.min(old, size);
    if (edge % cs !== 0 || (size > old && old % cs !== 0)) await this.#prepareRange(node, edge, edge + 1, () => false);
    const keep = Math.ceil(size / cs);
    if (node.baseChunks.length > keep) node.baseChunks = node.baseChunks.slice(0, keep);
    for (const i of node.local!.dirty) if (i >= keep) node.local!.dirty.delete(i);
    await this.withFd(node.local!, (fd) => ftruncateSync(fd, size));
    node.size = size;
    node.mtime = node.ctime = nowNs();
    this.#persist(node);
  }

  /** Sets the data file's mtime too, so a restart restores it. */
  async setMtime(node: FileNode, mtime: NsTime): Promise<void> {
    node.mtime = mtime;
    if (node.local) await this.withFd(node.local, (fd) => futimesSync(fd, nsToSeconds(node.atime), nsToSeconds(mtime)));
  }

  /** The bytes of base chunk `index` (through the cache). */
  async baseChunkBytes(node: FileNode, index: number): Promise<Buffer> {
    return this.#withBaseChunk(node, index, (path) => fsp.readFile(path));
  }

  /** A fresh stream of `size` bytes of a local file's data at `offset` (an upload body). */
  localChunkStream(local: LocalFile, offset: number, size: number): Readable {
    return createReadStream(this.ctx.overlay.dataPath(local.dataId), { start: offset, end: offset + size - 1 });
  }

  /** The bytes of chunk `index` of a local file as they are now (for hashing and upload). */
  async localChunk(node: FileNode, index: number, chunkSize: number): Promise<Buffer> {
    const start = index * chunkSize;
    const len = Math.min(chunkSize, node.size - start);
    const buf = Buffer.allocUnsafe(len);
    const got = await this.withFd(node.local!, (fd) => readFully(fd, buf, 0, len, start));
    if (got < len) buf.fill(0, got);
    return buf;
  }
}
