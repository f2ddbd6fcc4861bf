/**
 * @module mount/fuse-ops
 * The mount's file system as libfuse 3's low-level API sees it: inodes, not
 * paths. The kernel holds inode numbers (counted lookups it later forgets)
 * and open handles; this module maps them onto the mount view's nodes.
 *
 * Why inodes: an open file must stay the file it was when it is unlinked,
 * replaced by a rename, or when a commit or reload swaps the view under it.
 * An inode keeps its node; after a swap it finds its node again by path in
 * the new view the first time it is used (`nodeOf`), and an inode whose
 * node was gone before the swap (or is gone from the new view) stays an
 * orphan that still reads and writes its old bytes, as on a local disk.
 *
 * Caching: names and attributes are cached by the kernel for TTL seconds,
 * names that do not exist too (negative entries: git, sqlite and module
 * loaders probe the same missing paths again and again), and file pages
 * across opens (keep_cache) while the file's content signature is the one
 * the kernel last saw. A swap invalidates every name and attribute the
 * kernel holds, missing names included, and the pages of open files that
 * changed, so nothing stale is served after `reload` (issue 10, bug 3).
 *
 * Permissions are the kernel's (default_permissions): this module records
 * owners and modes and never second-guesses the checks. Entries that record
 * no owner show the mount's owner (`--uid/--gid`); entries created or
 * chowned to that owner record none, so a volume moves between sandboxes
 * whose users have different uids.
 *
 * Operations that change the tree hold the agent's gate shared (host.mutate);
 * commit and reload hold it exclusively. Reads and lookups do not wait.
 */
import { createHash } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { FsError, fsError } from './fs-error.js';
import type { Attr, ConnInfo, CreateReply, DirEntry, DirEntryPlus, Entry, FuseSession, LowLevelOps, OpenReply, RequestContext, SetattrRequest, Statvfs, Timespec } from './fuse/types.js';
import type { Creator, MountView } from './mount-view.js';
import { isAttached, nowNs, pathOf, type DirNode, type FileNode, type Node, type NsTime } from './nodes.js';

export interface FsHost {
  view(): MountView;
  /** Runs a change to the tree while no commit or reload runs. */
  mutate<T>(fn: (view: MountView) => Promise<T>): Promise<T>;
  /** Called after every change (writeback schedules a commit). */
  changed(): void;
  statfs(): { cap: number; used: number };
  log(message: string): void;
  /** Who owns entries that record no owner (`--uid/--gid`, else the agent's user). */
  owner: { uid: number; gid: number };
  /** No handle reads this data file any more (one a commit or reload kept for open handles can go). */
  released(dataId: string): void;
}

/** Seconds the kernel keeps names and attributes (a swap invalidates them sooner). */
const TTL = 1;
/** Missing names remembered at most (for invalidation on a swap); past it, misses are answered uncached. */
const MAX_NEGATIVES = 65_536;
/** How long a miss is remembered: TTL plus slack for the kernel's jiffies. */
const NEGATIVE_KEPT_MS = TTL * 1000 + 100;
const ROOT_INO = 1;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_ISGID = 0o2000;
const O_ACCMODE = 3;
const BLOCK = 4096;
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFSOCK = 0o140000;
/** What mknod makes besides regular files: kept in the mount only (see SpecialNode). */
const SPECIAL_KINDS = new Set([S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK]);
/** Largest file a mount holds: what its overlay's data file can be on ext4 (16 TiB). */
const MAX_FILE_SIZE = 2 ** 44;
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;

interface Inode {
  ino: number;
  /** Lookups the kernel holds; the inode lives while this or `opens` is above 0. */
  nlookup: number;
  opens: number;
  node: Node;
  /** The view `node` belongs to. */
  view: MountView;
  /** Its node left the tree (unlinked, replaced, or gone after a swap): it keeps its old bytes. */
  orphan: boolean;
  /** The content signature of the pages the kernel may hold of it; null when none. */
  cached: string | null;
}

interface FileHandle {
  inode: Inode;
  wrote: boolean;
}

interface DirHandle {
  view: MountView;
  entries: Array<[string, Node]>;
}

function typeBits(node: Node): number {
  switch (node.type) {
    case 'dir': return S_IFDIR;
    case 'symlink': return S_IFLNK;
    case 'file': return S_IFREG;
    case 'special': return node.kind;
  }
}

function timespec(t: NsTime): Timespec {
  return { sec: Number(t / 1_000_000_000n), nsec: Number(t % 1_000_000_000n) };
}

function nsOf(t: Timespec | 'now'): NsTime {
  return t === 'now' ? nowNs() : BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);
}

/** Bytes one readdirplus entry takes in the reply (fuse_direntplus: entry_out 128 + dirent 24 + name, 8-aligned). */
function direntPlusSize(name: string): number {
  return (152 + Buffer.byteLength(name) + 7) & ~7;
}

const signatures = new WeakMap<FileNode, string>();

/** What identifies a file's bytes: its local data file, or its base chunk list. */
function signature(node: FileNode): string {
  if (node.local) return `L${node.local.dataId}`;
  let sig = signatures.get(node);
  if (sig === undefined) {
    sig = `B${node.size}:${createHash('sha1').update(node.baseChunks.join(',')).digest('hex')}`;
    signatures.set(node, sig);
  }
  return sig;
}

function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** The file system a FUSE session serves. `session` is set once mounted (invalidation needs it). */
export class FuseFs {
  readonly #host: FsHost;
  readonly #inodes = new Map<number, Inode>();
  readonly #byNode = new WeakMap<Node, Inode>();
  /** Inodes the kernel held when the view was swapped, by their path then; claimed by the new view's nodes. */
  #pendingByPath = new Map<string, Inode>();
  readonly #files = new Map<number, FileHandle>();
  readonly #dirs = new Map<number, DirHandle>();
  /** The view that shows exactly the tree of the view it replaced (a commit nobody else's work was merged into). */
  #sameTree: MountView | null = null;
  /** Missing names the kernel may cache, "parent/name" -> when answered (ms): a swap must invalidate them. */
  readonly #negatives = new Map<string, { parent: number; name: string; at: number }>();
  #negativesPruned = 0;
  #nextIno = ROOT_INO + 1;
  #nextFh = 1;
  session: FuseSession | null = null;
  conn: ConnInfo | null = null;

  constructor(host: FsHost) {
    this.#host = host;
    const view = host.view();
    this.#inodes.set(ROOT_INO, { ino: ROOT_INO, nlookup: 1, opens: 0, node: view.root, view, orphan: false, cached: null });
    this.#byNode.set(view.root, this.#inodes.get(ROOT_INO)!);
  }

  // --- inodes ---

  #inode(ino: number): Inode {
    const inode = this.#inodes.get(ino);
    if (!inode) throw fsError('ESTALE', `inode ${ino} is not known`);
    return inode;
  }

  #bind(inode: Inode, node: Node, view: MountView): void {
    inode.node = node;
    inode.view = view;
    this.#byNode.set(node, inode);
  }

  /** The inode of a node, a new one when the kernel has none for it; counts one lookup. */
  #lookupOf(node: Node, view: MountView): Inode {
    let inode = this.#byNode.get(node);
    if (!inode && this.#pendingByPath.size > 0) {
      const path = pathOf(node);
      const pending = this.#pendingByPath.get(path);
      if (pending && pending.node.type === node.type && pending.view !== view) {
        this.#pendingByPath.delete(path);
        this.#bind(pending, node, view);
        inode = pending;
      }
    }
    if (!inode) {
      inode = { ino: this.#nextIno++, nlookup: 0, opens: 0, node, view, orphan: false, cached: null };
      this.#inodes.set(inode.ino, inode);
      this.#byNode.set(node, inode);
    }
    inode.nlookup++;
    return inode;
  }

  /** Forgets an inode the kernel no longer holds (a later lookup of its node makes a new one). */
  #release(inode: Inode): void {
    if (inode.ino === ROOT_INO || inode.nlookup > 0 || inode.opens > 0) return;
    this.#inodes.delete(inode.ino);
    if (this.#byNode.get(inode.node) === inode) this.#byNode.delete(inode.node);
    if (this.#pendingByPath.size > 0 && !inode.orphan && isAttached(inode.node, inode.view.root)) {
      const path = pathOf(inode.node);
      if (this.#pendingByPath.get(path) === inode) this.#pendingByPath.delete(path);
    }
  }

  /** The inode's node in the current view (found again by path after a swap), or its orphaned node. */
  async #nodeOf(inode: Inode): Promise<Node> {
    const view = this.#host.view();
    if (inode.view === view || inode.orphan) return inode.node;
    if (inode.ino === ROOT_INO) {
      this.#bind(inode, view.root, view);
      return view.root;
    }
    if (!isAttached(inode.node, inode.view.root)) {
      inode.orphan = true;
      return inode.node;
    }
    const path = pathOf(inode.node);
    let found: Node | undefined;
    try {
      found = await view.resolve(path);
    } catch (e) {
      if (!(e instanceof FsError)) throw e;
    }
    if (this.#host.view() !== view) return this.#nodeOf(inode); // swapped again meanwhile
    if (inode.view === view || inode.orphan) return inode.node;
    if (this.#pendingByPath.get(path) === inode) this.#pendingByPath.delete(path);
    const holder = found && this.#byNode.get(found);
    if (!found || found.type !== inode.node.type || (holder && holder !== inode)) {
      inode.orphan = true;
      return inode.node;
    }
    // After a commit that published exactly this view, the kernel's pages of a file are still its bytes.
    const carried = this.#sameTree === view && inode.node.type === 'file' && found.type === 'file' && inode.cached === signature(inode.node);
    this.#bind(inode, found, view);
    if (carried) inode.cached = signature(found as FileNode);
    return found;
  }

  /** The node of an inode as a directory of the current view (where entries can be made). */
  async #dirOf(ino: number, view: MountView): Promise<{ dir: DirNode; path: string }> {
    const inode = this.#inode(ino);
    const node = await this.#nodeOf(inode);
    if (node.type !== 'dir') throw fsError('ENOTDIR');
    if (inode.orphan || inode.view !== view || !isAttached(node, view.root)) throw fsError('ENOENT', 'the directory was removed');
    return { dir: node, path: pathOf(node) };
  }

  /** Whether the inode's node is where the tree has it (else changes to it are not journaled). */
  #attached(inode: Inode, view: MountView): boolean {
    return !inode.orphan && inode.view === view && isAttached(inode.node, view.root);
  }

  #attr(inode: Inode, node: Node): Attr {
    const linked = inode.ino === ROOT_INO || isAttached(node, inode.view.root);
    let mode: number, nlink: number, size: number, blocks: number, rdev: number | undefined;
    switch (node.type) {
      case 'dir':
        mode = S_IFDIR | node.mode;
        nlink = node.children ? 2 + node.subdirs : 1; // not listed yet: 1 is "unknown" to find and fts
        size = BLOCK;
        blocks = BLOCK / 512;
        break;
      case 'symlink':
        mode = S_IFLNK | 0o777;
        nlink = 1;
        size = Buffer.byteLength(node.target);
        blocks = 0;
        break;
      case 'file':
        mode = S_IFREG | node.mode;
        nlink = 1;
        size = node.size;
        blocks = Math.ceil(node.size / 512);
        break;
      case 'special':
        mode = node.kind | node.mode;
        nlink = 1;
        size = blocks = 0;
        rdev = node.rdev;
        break;
    }
    const { owner } = this.#host;
    // One literal, no spread: this runs for every lookup, getattr and setattr, and V8 copies a spread
    // object of this shape on a slow path (~15 µs, more than the rest of a getattr).
    return {
      ino: inode.ino, mode, nlink: linked ? nlink : 0, uid: node.uid ?? owner.uid, gid: node.gid ?? owner.gid, rdev, size, blocks,
      blksize: BLOCK, atime: timespec(node.atime), mtime: timespec(node.mtime), ctime: timespec(node.ctime),
    };
  }

  /** A miss the kernel may cache for TTL; remembered so a swap can take it back (uncached when too many are). */
  #negative(parent: number, name: string): Entry {
    const now = Date.now();
    if (now - this.#negativesPruned > NEGATIVE_KEPT_MS || this.#negatives.size >= MAX_NEGATIVES) {
      this.#negativesPruned = now;
      for (const [key, n] of this.#negatives) { // oldest first: stop at the first the kernel may still hold
        if (n.at >= now - NEGATIVE_KEPT_MS) break;
        this.#negatives.delete(key);
      }
      if (this.#negatives.size >= MAX_NEGATIVES) throw fsError('ENOENT');
    }
    const key = `${parent}/${name}`;
    this.#negatives.delete(key); // re-inserted: the map stays in answer order
    this.#negatives.set(key, { parent, name, at: now });
    return { ino: 0, attrTimeout: 0, entryTimeout: TTL };
  }

  /** Misses the kernel may still hold. */
  #freshNegatives(): Array<{ parent: number; name: string }> {
    const since = Date.now() - NEGATIVE_KEPT_MS;
    return [...this.#negatives.values()].filter((n) => n.at >= since);
  }

  #entry(inode: Inode, node: Node): Entry {
    return { ino: inode.ino, attr: this.#attr(inode, node), attrTimeout: TTL, entryTimeout: TTL };
  }

  /** The owner a new entry records: the caller's, relative to the mount's owner; a setgid directory passes on its group. */
  #creator(ctx: RequestContext, dir: DirNode): Creator {
    const { owner } = this.#host;
    const gid = (dir.mode & S_ISGID) !== 0 ? (dir.gid ?? owner.gid) : ctx.gid;
    return { uid: ctx.uid === owner.uid ? null : ctx.uid, gid: gid === owner.gid ? null : gid };
  }

  #recorded(id: number | undefined, ownerId: number): number | null | undefined {
    return id === undefined ? undefined : id === ownerId ? null : id;
  }

  // --- swaps (called by the agent under its exclusive gate, right after the view changed) ---

  /**
   * The view was replaced (commit or reload): inodes the kernel holds will
   * find their nodes again by path, and the kernel forgets the names and
   * attributes it cached, and the pages of open files whose bytes changed.
   * `sameTree`: the new view shows exactly the old one's tree (a commit with
   * nothing merged in or skipped), so what the kernel cached stays true.
   */
  viewChanged(old: MountView, next: MountView, sameTree = false): void {
    this.#sameTree = sameTree ? next : null;
    const pending = new Map<string, Inode>();
    const entries: Array<[number, string]> = [];
    const open: Inode[] = [];
    for (const inode of this.#inodes.values()) {
      if (inode.ino === ROOT_INO || inode.orphan || inode.view !== old) continue;
      if (!isAttached(inode.node, old.root)) continue;
      pending.set(pathOf(inode.node), inode);
      const parent = inode.node.parent && this.#byNode.get(inode.node.parent);
      if (parent) entries.push([parent.ino, inode.node.name]);
      if (inode.opens > 0 && inode.node.type === 'file') open.push(inode);
    }
    if (!sameTree) {
      for (const n of this.#freshNegatives()) entries.push([n.parent, n.name]);
      this.#negatives.clear();
    }
    this.#pendingByPath = pending;
    if (sameTree) return;
    if (old.root.children) for (const [name] of old.root.children) entries.push([ROOT_INO, name]);
    void this.#invalidate(next, entries, open);
  }

  async #invalidate(view: MountView, entries: Array<[number, string]>, open: Inode[]): Promise<void> {
    const session = this.session;
    if (!session) return;
    const seen = new Set<string>();
    try {
      for (const [parent, name] of entries) {
        const key = `${parent}/${name}`;
        if (seen.has(key)) continue;
        seen.add(key);
        await session.invalidateEntry(parent, name);
      }
      await session.invalidateInode(ROOT_INO, -1, 0);
      for (const inode of open) {
        const before = inode.cached;
        const node = await this.#nodeOf(inode);
        if (this.#host.view() !== view) return;
        if (node.type === 'file' && before !== null && signature(node) !== before) {
          inode.cached = null;
          await session.invalidateInode(inode.ino, 0, 0);
        } else await session.invalidateInode(inode.ino, -1, 0); // attributes only: its pages are still its bytes
      }
    } catch (e) {
      this.#host.log(`invalidating the kernel's cache after a swap: ${(e as Error).message}`);
    }
  }

  /** Data files that open handles still read (a commit or reload must keep them). */
  openDataIds(): Set<string> {
    const ids = new Set<string>();
    for (const h of this.#files.values()) {
      const node = h.inode.node;
      if (node.type === 'file' && node.local) ids.add(node.local.dataId);
    }
    return ids;
  }

  // --- the operations ---

  readonly ops: LowLevelOps = {
    init: (conn) => {
      this.conn = conn;
    },

    lookup: async (_ctx, parent, name) => {
      const dirInode = this.#inode(parent);
      const dir = await this.#nodeOf(dirInode);
      if (dir.type !== 'dir') throw fsError('ENOTDIR');
      // After #nodeOf the directory's view is the current one (or, orphaned, its own).
      const node = await dirInode.view.child(dir, name);
      if (!node) return this.#negative(parent, name);
      return this.#entry(this.#lookupOf(node, dirInode.view), node);
    },

    forget: (ino, nlookup) => {
      const inode = this.#inodes.get(ino);
      if (!inode) return;
      inode.nlookup -= nlookup;
      this.#release(inode);
    },

    getattr: async (_ctx, ino) => {
      const inode = this.#inode(ino);
      const node = await this.#nodeOf(inode);
      return { attr: this.#attr(inode, node), timeout: TTL };
    },

    setattr: async (_ctx, ino, set, _fh) => {
      const inode = this.#inode(ino);
      const changed = await this.#host.mutate(async (view) => this.#setattr(view, inode, set));
      if (changed) this.#host.changed();
      const node = await this.#nodeOf(inode);
      return { attr: this.#attr(inode, node), timeout: TTL };
    },

    readlink: async (_ctx, ino) => {
      const node = await this.#nodeOf(this.#inode(ino));
      if (node.type !== 'symlink') throw fsError('EINVAL');
      return node.target;
    },

    mknod: async (ctx, parent, name, mode, rdev) => {
      const kind = mode & S_IFMT;
      if (kind !== 0 && kind !== S_IFREG && !SPECIAL_KINDS.has(kind)) throw fsError('EINVAL');
      return this.#mutation(async (view) => {
        const { dir, path } = await this.#dirOf(parent, view);
        if (await view.child(dir, name)) throw fsError('EEXIST');
        const node = SPECIAL_KINDS.has(kind)
          ? await view.mknod(joinPath(path, name), kind, mode, rdev, this.#creator(ctx, dir))
          : await view.create(joinPath(path, name), mode, this.#creator(ctx, dir));
        return this.#entry(this.#lookupOf(node, view), node);
      });
    },

    mkdir: async (ctx, parent, name, mode) => this.#mutation(async (view) => {
      const { dir, path } = await this.#dirOf(parent, view);
      const inherit = dir.mode & S_ISGID;
      const node = await view.mkdir(joinPath(path, name), mode | inherit, this.#creator(ctx, dir));
      return this.#entry(this.#lookupOf(node, view), node);
    }),

    unlink: async (_ctx, parent, name) => this.#mutation(async (view) => {
      const { path } = await this.#dirOf(parent, view);
      await view.unlink(joinPath(path, name));
    }),

    rmdir: async (_ctx, parent, name) => this.#mutation(async (view) => {
      const { path } = await this.#dirOf(parent, view);
      await view.rmdir(joinPath(path, name));
    }),

    symlink: async (ctx, target, parent, name) => this.#mutation(async (view) => {
      const { dir, path } = await this.#dirOf(parent, view);
      const node = await view.symlink(target, joinPath(path, name), this.#creator(ctx, dir));
      return this.#entry(this.#lookupOf(node, view), node);
    }),

    rename: async (_ctx, parent, name, newParent, newName, flags) => {
      if ((flags & RENAME_EXCHANGE) !== 0) throw fsError('EINVAL', 'RENAME_EXCHANGE is not supported');
      return this.#mutation(async (view) => {
        const from = await this.#dirOf(parent, view);
        const to = await this.#dirOf(newParent, view);
        await view.rename(joinPath(from.path, name), joinPath(to.path, newName), (flags & RENAME_NOREPLACE) !== 0);
      });
    },

    link: async () => {
      throw fsError('EPERM', 'hard links are not supported');
    },

    open: async (_ctx, ino, flags) => {
      const inode = this.#inode(ino);
      let node = await this.#nodeOf(inode);
      if (node.type === 'dir') throw fsError('EISDIR');
      if (node.type !== 'file') throw fsError('ENXIO'); // the kernel opens fifos, sockets and devices itself
      const writing = (flags & O_ACCMODE) !== fsConstants.O_RDONLY;
      if (writing && this.#host.view().opts.readOnly && !inode.orphan) throw fsError('EROFS');
      if ((flags & fsConstants.O_TRUNC) !== 0 && writing) {
        await this.#host.mutate(async (view) => this.#setattr(view, inode, { size: 0 }));
        this.#host.changed();
        node = await this.#nodeOf(inode);
      }
      // Opening for writing does not make the file local: write/truncate do that on first use (sqlite3 and git
      // open files O_RDWR just to read them; a mount that was only read must have nothing to commit).
      return this.#openFile(inode, node as FileNode);
    },

    read: async (_ctx, _ino, size, offset, fh) => {
      const inode = this.#handle(fh).inode;
      const node = await this.#nodeOf(inode);
      if (node.type !== 'file') throw fsError('EISDIR');
      const buf = Buffer.allocUnsafe(Math.max(0, Math.min(size, node.size - offset)));
      if (buf.length === 0) return buf;
      const n = await inode.view.content.read(node, buf, buf.length, offset);
      return n === buf.length ? buf : buf.subarray(0, n);
    },

    write: async (_ctx, _ino, data, offset, fh) => {
      const handle = this.#handle(fh);
      const inode = handle.inode;
      const n = await this.#host.mutate(async (view) => {
        const node = await this.#writable(view, inode);
        const written = await inode.view.content.write(node, data, data.length, offset);
        inode.cached = signature(node); // the kernel's pages are what was just written
        return written;
      });
      handle.wrote = true;
      return n;
    },

    // No flush, fsync or fsyncdir: nothing is buffered here (bytes are in the overlay when write answers; commit is
    // the durability boundary), and answering ENOSYS once makes the kernel stop asking: a round trip less per close
    // and per fsync (sqlite3 and git sync often).

    release: async (_ctx, _ino, fh) => {
      const handle = this.#files.get(fh);
      if (!handle) return;
      this.#files.delete(fh);
      handle.inode.opens--;
      this.#release(handle.inode);
      const node = handle.inode.node;
      if (node.type === 'file' && node.local && !this.openDataIds().has(node.local.dataId)) this.#host.released(node.local.dataId);
      if (handle.wrote) this.#host.changed();
    },

    opendir: async (_ctx, ino) => {
      const inode = this.#inode(ino);
      const node = await this.#nodeOf(inode);
      if (node.type !== 'dir') throw fsError('ENOTDIR');
      const children = await inode.view.children(node);
      const fh = this.#nextFh++;
      this.#dirs.set(fh, { view: inode.view, entries: [...children] });
      return { fh };
    },

    readdir: async (_ctx, _ino, size, offset, fh) => {
      const handle = this.#dir(fh);
      const out: DirEntry[] = [];
      let room = size;
      for (let i = offset; i < handle.entries.length; i++) {
        const [name, node] = handle.entries[i]!;
        room -= (24 + Buffer.byteLength(name) + 7) & ~7;
        if (room < 0) break;
        const ino = this.#byNode.get(node)?.ino ?? 0xffffffff;
        out.push({ name, ino, mode: typeBits(node), off: i + 1 });
      }
      return out;
    },

    readdirplus: async (_ctx, _ino, size, offset, fh) => {
      const handle = this.#dir(fh);
      const out: DirEntryPlus[] = [];
      let room = size;
      for (let i = offset; i < handle.entries.length; i++) {
        const [name, node] = handle.entries[i]!;
        room -= direntPlusSize(name);
        if (room < 0) break;
        const inode = this.#lookupOf(node, handle.view);
        out.push({ name, entry: this.#entry(inode, node), off: i + 1 });
      }
      return out;
    },

    releasedir: async (_ctx, _ino, fh) => {
      this.#dirs.delete(fh);
    },


    statfs: async (): Promise<Statvfs> => {
      const { cap, used } = this.#host.statfs();
      const blocks = Math.max(1, Math.floor(cap / BLOCK));
      const free = Math.max(0, Math.floor((cap - used) / BLOCK));
      return { bsize: BLOCK, frsize: BLOCK, blocks, bfree: free, bavail: free, files: 1_000_000, ffree: 1_000_000, favail: 1_000_000, namemax: 255 };
    },

    create: async (ctx, parent, name, mode, flags): Promise<CreateReply> => {
      const reply = await this.#host.mutate(async (view) => {
        const { dir, path } = await this.#dirOf(parent, view);
        const existing = await view.child(dir, name);
        if (existing) {
          // The kernel asks to create only what its lookup did not find; another writer may have made it since.
          if ((flags & fsConstants.O_EXCL) !== 0) throw fsError('EEXIST');
          if (existing.type !== 'file') throw fsError('EISDIR');
          const inode = this.#lookupOf(existing, view);
          if ((flags & fsConstants.O_TRUNC) !== 0) await this.#setattr(view, inode, { size: 0 });
          return { entry: this.#entry(inode, existing), open: this.#openFile(inode, existing) };
        }
        const node = await view.create(joinPath(path, name), mode, this.#creator(ctx, dir));
        const inode = this.#lookupOf(node, view);
        return { entry: this.#entry(inode, node), open: this.#openFile(inode, node) };
      });
      this.#host.changed();
      return reply;
    },
  };

  async #mutation<T>(fn: (view: MountView) => Promise<T>): Promise<T> {
    const r = await this.#host.mutate(fn);
    this.#host.changed();
    return r;
  }

  #handle(fh: number): FileHandle {
    const h = this.#files.get(fh);
    if (!h) throw fsError('EBADF');
    return h;
  }

  #dir(fh: number): DirHandle {
    const h = this.#dirs.get(fh);
    if (!h) throw fsError('EBADF');
    return h;
  }

  #openFile(inode: Inode, node: FileNode): OpenReply {
    const fh = this.#nextFh++;
    this.#files.set(fh, { inode, wrote: false });
    inode.opens++;
    const sig = signature(node);
    const keepCache = inode.cached === sig;
    inode.cached = sig;
    return { fh, keepCache };
  }

  /** The inode's file, local so it can be written: journaled when it is in the tree, a private copy when orphaned. */
  async #writable(view: MountView, inode: Inode): Promise<FileNode> {
    const node = await this.#nodeOf(inode);
    if (node.type !== 'file') throw fsError('EISDIR');
    if (node.local) return node;
    if (this.#attached(inode, view)) return view.localizeNode(node, pathOf(node));
    return inode.view.localizeDetached(node);
  }

  /** Applies a setattr; answers whether it changed the tree (a journaled change). */
  async #setattr(view: MountView, inode: Inode, set: SetattrRequest): Promise<boolean> {
    let node = await this.#nodeOf(inode);
    const attached = this.#attached(inode, view);
    const path = attached ? pathOf(node) : null;
    const { owner } = this.#host;
    if (set.size !== undefined) {
      if (node.type === 'dir') throw fsError('EISDIR');
      if (node.type !== 'file') throw fsError('EINVAL');
      if (set.size > MAX_FILE_SIZE) throw fsError('EFBIG');
      node = await this.#writable(view, inode);
      await inode.view.content.truncate(node as FileNode, set.size);
      inode.cached = signature(node as FileNode);
    }
    if (set.mode !== undefined) {
      if (path !== null) await view.chmod(path, set.mode);
      else {
        node.mode = set.mode & 0o7777;
        node.ctime = nowNs();
      }
    }
    if (set.uid !== undefined || set.gid !== undefined) {
      const uid = this.#recorded(set.uid, owner.uid);
      const gid = this.#recorded(set.gid, owner.gid);
      if (path !== null) await view.chown(path, uid, gid);
      else {
        if (uid !== undefined) node.uid = uid;
        if (gid !== undefined) node.gid = gid;
        node.ctime = nowNs();
      }
    }
    if (set.atime !== undefined || set.mtime !== undefined) {
      const times = { ...(set.atime !== undefined ? { atime: nsOf(set.atime) } : {}), ...(set.mtime !== undefined ? { mtime: nsOf(set.mtime) } : {}) };
      if (path !== null) await view.utimens(path, times);
      else {
        if (times.atime !== undefined) node.atime = times.atime;
        if (times.mtime !== undefined) node.mtime = times.mtime;
        node.ctime = nowNs();
      }
    }
    return path !== null;
  }
}
