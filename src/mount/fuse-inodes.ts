/**
 * @module mount/fuse-inodes
 * The inode table: the kernel names files by inode number, counts its
 * lookups and forgets them; this maps those numbers onto the mount view's
 * nodes, across swaps of the view.
 *
 * Why inodes: an open file must stay the file it was when it is unlinked,
 * replaced by a rename, or when a commit or reload swaps the view under it.
 * An inode keeps its node; after a swap it finds its node again by path in
 * the new view the first time it is used (`nodeOf`), and an inode whose
 * node was gone before the swap (or is gone from the new view) stays an
 * orphan that still reads and writes its old bytes, as on a local disk.
 *
 * A swap also takes back what the kernel cached: every name and attribute,
 * missing names included (negative entries, remembered here for that), and
 * the pages of open files whose bytes changed, so nothing stale is served
 * after `reload` (issue 10, bug 3).
 */
import { FsError, fsError } from './fs-error.js';
import { ROOT_INO, TTL, signature, type Inode } from './fuse-attrs.js';
import type { Entry, FuseSession } from './fuse/types.js';
import type { MountView } from './mount-view.js';
import { isAttached, pathOf, type DirNode, type FileNode, type Node } from './nodes.js';

/** Missing names remembered at most (for invalidation on a swap); past it, misses are answered uncached. */
const MAX_NEGATIVES = 65_536;
/** How long a miss is remembered: TTL plus slack for the kernel's jiffies. */
const NEGATIVE_KEPT_MS = TTL * 1000 + 100;

/** What the table needs of the agent: the current view, and where to report a failed invalidation. */
export interface InodeHost {
  view(): MountView;
  log(message: string): void;
}

export class InodeTable {
  readonly #host: InodeHost;
  readonly #inodes = new Map<number, Inode>();
  readonly #byNode = new WeakMap<Node, Inode>();
  /** Inodes the kernel held when the view was swapped, by their path then; claimed by the new view's nodes. */
  #pendingByPath = new Map<string, Inode>();
  /** The view that shows exactly the tree of the view it replaced (a commit nobody else's work was merged into). */
  #sameTree: MountView | null = null;
  /** Missing names the kernel may cache, "parent/name" -> when answered (ms): a swap must invalidate them. */
  readonly #negatives = new Map<string, { parent: number; name: string; at: number }>();
  #negativesPruned = 0;
  #nextIno = ROOT_INO + 1;
  /** Set once mounted: invalidations need it. */
  session: FuseSession | null = null;

  constructor(host: InodeHost) {
    this.#host = host;
    const view = host.view();
    const root: Inode = { ino: ROOT_INO, nlookup: 1, opens: 0, node: view.root, view, orphan: false, cached: null };
    this.#inodes.set(ROOT_INO, root);
    this.#byNode.set(view.root, root);
  }

  get(ino: number): Inode {
    const inode = this.#inodes.get(ino);
    if (!inode) throw fsError('ESTALE', `inode ${ino} is not known`);
    return inode;
  }

  /** The inode number the kernel holds for a node, if any. */
  inoOf(node: Node): number | undefined {
    return this.#byNode.get(node)?.ino;
  }

  #bind(inode: Inode, node: Node, view: MountView): void {
    inode.node = node;
    inode.view = view;
    this.#byNode.set(node, inode);
  }

  /** The inode of a node, a new one when the kernel has none for it; counts one lookup. */
  lookupOf(node: Node, view: MountView): Inode {
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

  /** The kernel gave back `nlookup` lookups of `ino`. */
  forget(ino: number, nlookup: number): void {
    const inode = this.#inodes.get(ino);
    if (!inode) return;
    inode.nlookup -= nlookup;
    this.release(inode);
  }

  /** Forgets an inode the kernel no longer holds (a later lookup of its node makes a new one). */
  release(inode: Inode): void {
    if (inode.ino === ROOT_INO || inode.nlookup > 0 || inode.opens > 0) return;
    this.#inodes.delete(inode.ino);
    if (this.#byNode.get(inode.node) === inode) this.#byNode.delete(inode.node);
    if (this.#pendingByPath.size > 0 && !inode.orphan && isAttached(inode.node, inode.view.root)) {
      const path = pathOf(inode.node);
      if (this.#pendingByPath.get(path) === inode) this.#pendingByPath.delete(path);
    }
  }

  /** The inode's node in the current view (found again by path after a swap), or its orphaned node. */
  async nodeOf(inode: Inode): Promise<Node> {
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
    if (this.#host.view() !== view) return this.nodeOf(inode); // swapped again meanwhile
    if (inode.view === view || inode.orphan) return inode.node;
    if (this.#pendingByPath.get(path) === inode) this.#pendingByPath.delete(path);
    const holder = found && this.#byNode.get(found);
    if (!found || found.type !== inode.node.type || (holder && holder !== inode)) {
      inode.orphan = true;
      return inode.node;
    }
    // After a commit that published exactly this view, the kernel's pages of a file are still its bytes.
    const carried =
      this.#sameTree === view &&
      inode.node.type === 'file' &&
      found.type === 'file' &&
      inode.cached === signature(inode.node);
    this.#bind(inode, found, view);
    if (carried) inode.cached = signature(found as FileNode);
    return found;
  }

  /** The node of an inode as a directory of the current view (where entries can be made). */
  async dirOf(ino: number, view: MountView): Promise<{ dir: DirNode; path: string }> {
    const inode = this.get(ino);
    const node = await this.nodeOf(inode);
    if (node.type !== 'dir') throw fsError('ENOTDIR');
    if (inode.orphan || inode.view !== view || !isAttached(node, view.root))
      throw fsError('ENOENT', 'the directory was removed');
    return { dir: node, path: pathOf(node) };
  }

  /** Whether the inode's node is where the tree has it (else changes to it are not journaled). */
  attached(inode: Inode, view: MountView): boolean {
    return !inode.orphan && inode.view === view && isAttached(inode.node, view.root);
  }

  /** A miss the kernel may cache for TTL; remembered so a swap can take it back (uncached when too many are). */
  negative(parent: number, name: string): Entry {
    const now = Date.now();
    if (now - this.#negativesPruned > NEGATIVE_KEPT_MS || this.#negatives.size >= MAX_NEGATIVES) {
      this.#negativesPruned = now;
      for (const [key, n] of this.#negatives) {
        // oldest first: stop at the first the kernel may still hold
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

  /**
   * The view was replaced (commit or reload): inodes the kernel holds will
   * find their nodes again by path, and the kernel forgets the names and
   * attributes it cached, and the pages of open files whose bytes changed.
   * `sameTree`: the new view shows exactly the old one's tree (a commit with
   * nothing merged in or skipped), so what the kernel cached stays true.
   */
  viewChanged(old: MountView, next: MountView, sameTree = false): Promise<void> {
    this.#sameTree = sameTree ? next : null;
    const pending = new Map<string, Inode>();
    const entries: Array<[number, string]> = [];
    const open: Inode[] = [];
    const dirs: number[] = [];
    for (const inode of this.#inodes.values()) {
      if (inode.ino === ROOT_INO || inode.orphan || inode.view !== old) continue;
      if (!isAttached(inode.node, old.root)) continue;
      pending.set(pathOf(inode.node), inode);
      if (inode.node.type === 'dir') dirs.push(inode.ino);
      const parent = inode.node.parent && this.#byNode.get(inode.node.parent);
      if (parent) entries.push([parent.ino, inode.node.name]);
      if (inode.opens > 0 && inode.node.type === 'file') open.push(inode);
    }
    if (!sameTree) {
      for (const n of this.#freshNegatives()) entries.push([n.parent, n.name]);
      this.#negatives.clear();
    }
    this.#pendingByPath = pending;
    if (sameTree) return Promise.resolve();
    if (old.root.children) for (const [name] of old.root.children) entries.push([ROOT_INO, name]);
    return this.#invalidate(next, entries, dirs, open);
  }

  async #invalidate(view: MountView, entries: Array<[number, string]>, dirs: number[], open: Inode[]): Promise<void> {
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
      // Directories' pages too: without opendir the kernel caches listings (FOPEN_CACHE_DIR is its no-opendir default).
      await session.invalidateInode(ROOT_INO, 0, 0);
      for (const ino of dirs) await session.invalidateInode(ino, 0, 0);
      for (const inode of open) {
        const before = inode.cached;
        const node = await this.nodeOf(inode);
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
}
