/**
 * @module mount/fuse/memory-fs.test-helper
 * A tiny in-memory file system over the low-level contract, for the session's
 * real-FUSE tests (and the children they spawn). It keeps the kernel's lookup
 * counts and records what arrived (readdirplus calls, write sizes, setattrs),
 * and lets a test change files behind the kernel's back.
 */
import { FsError } from '../fs-error.js';
import type {
  Attr,
  ConnInfo,
  CreateReply,
  DirEntry,
  DirEntryPlus,
  Entry,
  LowLevelOps,
  OpenReply,
  RequestContext,
  SetattrRequest,
  Statvfs,
  Timespec,
} from './types.js';

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;

export interface MemNode {
  ino: number;
  mode: number;
  nlink: number;
  data: Buffer;
  children?: Map<string, number>;
  parent: number;
  target?: string;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
}

function now(): Timespec {
  const ms = Date.now();
  return { sec: Math.floor(ms / 1000), nsec: (ms % 1000) * 1_000_000 };
}

export class MemoryFs implements LowLevelOps {
  readonly nodes = new Map<number, MemNode>();
  /** The kernel's lookup count per inode, as this file system sees it. */
  readonly lookups = new Map<number, number>();
  readonly seen = {
    readdir: 0,
    readdirplus: 0,
    largestWrite: 0,
    largestRead: 0,
    setattrs: [] as SetattrRequest[],
    inits: [] as ConnInfo[],
  };
  /** Seconds the kernel may cache attributes and names (long, so the cache tests see the cache). */
  timeout = 60;
  /** A test's way to make lookup of a name fail or misbehave. */
  lookupHook?: (name: string) => Promise<Entry> | undefined;
  #next = 2;

  constructor() {
    const t = now();
    this.nodes.set(1, {
      ino: 1,
      mode: S_IFDIR | 0o755,
      nlink: 2,
      data: Buffer.alloc(0),
      children: new Map(),
      parent: 1,
      atime: t,
      mtime: t,
      ctime: t,
    });
  }

  /** Adds a file (or directory) under `parent` behind the kernel's back. */
  add(parent: number, name: string, content: string | Buffer | null, mode = 0o644): MemNode {
    const t = now();
    const dir = content === null;
    const node: MemNode = {
      ino: this.#next++,
      mode: (dir ? S_IFDIR : S_IFREG) | mode,
      nlink: dir ? 2 : 1,
      data: dir ? Buffer.alloc(0) : Buffer.from(content),
      children: dir ? new Map() : undefined,
      parent,
      atime: t,
      mtime: t,
      ctime: t,
    };
    this.nodes.set(node.ino, node);
    this.#dir(parent).children!.set(name, node.ino);
    return node;
  }

  attr(n: MemNode): Attr {
    return {
      ino: n.ino,
      mode: n.mode,
      nlink: n.nlink,
      uid: 0,
      gid: 0,
      size: n.data.length,
      blocks: Math.ceil(n.data.length / 512),
      atime: n.atime,
      mtime: n.mtime,
      ctime: n.ctime,
    };
  }

  #get(ino: number): MemNode {
    const n = this.nodes.get(ino);
    if (!n) throw new FsError('ENOENT');
    return n;
  }

  #dir(ino: number): MemNode {
    const n = this.#get(ino);
    if (!n.children) throw new FsError('ENOTDIR');
    return n;
  }

  /** An entry for the kernel: counts one lookup. */
  #entry(n: MemNode): Entry {
    this.lookups.set(n.ino, (this.lookups.get(n.ino) ?? 0) + 1);
    return { ino: n.ino, attr: this.attr(n), attrTimeout: this.timeout, entryTimeout: this.timeout };
  }

  init(conn: ConnInfo): void {
    this.seen.inits.push(conn);
  }

  async lookup(_ctx: RequestContext, parent: number, name: string): Promise<Entry> {
    const hooked = this.lookupHook?.(name);
    if (hooked) return hooked;
    const ino = this.#dir(parent).children!.get(name);
    if (ino === undefined) throw new FsError('ENOENT');
    return this.#entry(this.#get(ino));
  }

  forget(ino: number, nlookup: number): void {
    const left = (this.lookups.get(ino) ?? 0) - nlookup;
    if (left < 0) throw new Error(`forget(${ino}, ${nlookup}) below zero`);
    this.lookups.set(ino, left);
  }

  async getattr(_ctx: RequestContext, ino: number): Promise<{ attr: Attr; timeout: number }> {
    return { attr: this.attr(this.#get(ino)), timeout: this.timeout };
  }

  async setattr(_ctx: RequestContext, ino: number, set: SetattrRequest): Promise<{ attr: Attr; timeout: number }> {
    this.seen.setattrs.push(set);
    const n = this.#get(ino);
    if (set.mode !== undefined) n.mode = (n.mode & ~0o7777) | (set.mode & 0o7777);
    if (set.size !== undefined) {
      const data = Buffer.alloc(set.size);
      n.data.copy(data, 0, 0, Math.min(set.size, n.data.length));
      n.data = data;
    }
    if (set.atime !== undefined) n.atime = set.atime === 'now' ? now() : set.atime;
    if (set.mtime !== undefined) n.mtime = set.mtime === 'now' ? now() : set.mtime;
    n.ctime = now();
    return { attr: this.attr(n), timeout: this.timeout };
  }

  async readlink(_ctx: RequestContext, ino: number): Promise<string> {
    const t = this.#get(ino).target;
    if (t === undefined) throw new FsError('EINVAL');
    return t;
  }

  async mknod(): Promise<Entry> {
    throw new FsError('EPERM');
  }

  async mkdir(_ctx: RequestContext, parent: number, name: string, mode: number): Promise<Entry> {
    if (this.#dir(parent).children!.has(name)) throw new FsError('EEXIST');
    return this.#entry(this.add(parent, name, null, mode & 0o7777));
  }

  async unlink(_ctx: RequestContext, parent: number, name: string): Promise<void> {
    if (!this.#dir(parent).children!.delete(name)) throw new FsError('ENOENT');
  }

  async rmdir(ctx: RequestContext, parent: number, name: string): Promise<void> {
    return this.unlink(ctx, parent, name);
  }

  async symlink(_ctx: RequestContext, target: string, parent: number, name: string): Promise<Entry> {
    const n = this.add(parent, name, Buffer.from(target));
    n.mode = S_IFLNK | 0o777;
    n.target = target;
    return this.#entry(n);
  }

  async rename(_ctx: RequestContext, parent: number, name: string, newParent: number, newName: string): Promise<void> {
    this.move(parent, name, newParent, newName);
  }

  /** Renames behind the kernel's back too. */
  move(parent: number, name: string, newParent: number, newName: string): void {
    const from = this.#dir(parent).children!;
    const ino = from.get(name);
    if (ino === undefined) throw new FsError('ENOENT');
    from.delete(name);
    this.#dir(newParent).children!.set(newName, ino);
  }

  async link(): Promise<Entry> {
    throw new FsError('EPERM');
  }

  async open(): Promise<OpenReply> {
    return { fh: this.#next++, keepCache: true };
  }

  async read(_ctx: RequestContext, ino: number, size: number, offset: number): Promise<Buffer> {
    this.seen.largestRead = Math.max(this.seen.largestRead, size);
    return Buffer.from(this.#get(ino).data.subarray(offset, offset + size));
  }

  async write(_ctx: RequestContext, ino: number, data: Buffer, offset: number): Promise<number> {
    this.seen.largestWrite = Math.max(this.seen.largestWrite, data.length);
    const n = this.#get(ino);
    if (offset + data.length > n.data.length) {
      const grown = Buffer.alloc(offset + data.length);
      n.data.copy(grown);
      n.data = grown;
    }
    data.copy(n.data, offset);
    n.mtime = n.ctime = now();
    return data.length;
  }

  async flush(): Promise<void> {}
  async release(): Promise<void> {}
  async fsync(): Promise<void> {}
  async releasedir(): Promise<void> {}

  async opendir(): Promise<OpenReply> {
    return { fh: 0 };
  }

  async readdir(_ctx: RequestContext, ino: number, _size: number, offset: number): Promise<DirEntry[]> {
    this.seen.readdir++;
    return this.#list(ino)
      .slice(offset)
      .map(([name, n], i) => ({ name, ino: n.ino, mode: n.mode, off: offset + i + 1 }));
  }

  async readdirplus(_ctx: RequestContext, ino: number, _size: number, offset: number): Promise<DirEntryPlus[]> {
    this.seen.readdirplus++;
    return this.#list(ino)
      .slice(offset)
      .map(([name, n], i) => ({ name, entry: this.#entry(n), off: offset + i + 1 }));
  }

  #list(ino: number): [string, MemNode][] {
    const dir = this.#dir(ino);
    const out: [string, MemNode][] = [
      ['.', dir],
      ['..', this.#get(dir.parent)],
    ];
    for (const [name, child] of dir.children!) out.push([name, this.#get(child)]);
    return out;
  }

  async statfs(): Promise<Statvfs> {
    return {
      bsize: 4096,
      frsize: 4096,
      blocks: 1000,
      bfree: 500,
      bavail: 500,
      files: 100,
      ffree: 50,
      favail: 50,
      namemax: 255,
    };
  }

  async create(_ctx: RequestContext, parent: number, name: string, mode: number): Promise<CreateReply> {
    const n = this.add(parent, name, '', mode & 0o7777);
    return { entry: this.#entry(n), open: { fh: this.#next++ } };
  }
}
