/**
 * @module engine/tree-reader
 * Reads trees from the metadata store through a cache of decoded nodes, and
 * resolves paths. A lookup costs one node per path segment, never a walk of
 * the volume.
 */
import { InternalError, NotFoundError, ConflictError } from '../common/errors.js';
import type { TreeHash } from '../common/ids.js';
import { splitPath, type VolumePath } from '../common/paths.js';
import type { MetadataOps } from '../stores/metadata-store.js';
import { LruCache } from './lru-cache.js';
import { decodeTree, EMPTY_TREE, type DirEntry, type Entry, type Tree } from './tree-codec.js';

/** The pseudo-entry of a tree's root directory. */
export function rootEntry(tree: Tree, totals: { size: number; fileCount: number }, mtime = 0): DirEntry {
  return { type: 'dir', name: '', mode: 0o755, mtime, tree: tree.hash, size: totals.size, fileCount: totals.fileCount };
}

export class TreeReader {
  private readonly cache: LruCache<TreeHash, Tree>;

  /**
   * `cacheBytes` bounds the decoded nodes kept in memory, counted by encoded
   * size; decoded objects take several times that in the heap, so the default
   * stays small enough for the server's memory budget.
   */
  constructor(private readonly store: Pick<MetadataOps, 'getTree'>, cacheBytes = 16 * 1024 * 1024) {
    this.cache = new LruCache(cacheBytes);
  }

  /** Loads one node; InternalError when the store lacks it (a damaged store, never a user error). */
  async get(hash: TreeHash): Promise<Tree> {
    // The empty tree is implied everywhere and never needs a stored node.
    if (hash === EMPTY_TREE.hash) return EMPTY_TREE.tree;
    const hit = this.cache.get(hash);
    if (hit) return hit;
    const data = await this.store.getTree(hash);
    if (!data) throw new InternalError(`tree ${hash} is missing from the metadata store`);
    const tree = decodeTree(hash, data);
    this.cache.set(hash, tree, tree.bytes);
    return tree;
  }

  /** Remembers a node this process just wrote, saving a read. */
  remember(tree: Tree): void {
    this.cache.set(tree.hash, tree, tree.bytes);
  }

  /** The entry at `path` below `root`, or undefined. The root itself has no entry (callers special-case "/"). */
  async lookup(root: TreeHash, path: VolumePath): Promise<Entry | undefined> {
    const parts = splitPath(path);
    let tree = await this.get(root);
    for (let i = 0; i < parts.length; i++) {
      const entry = tree.byName.get(parts[i]!);
      if (!entry) return undefined;
      if (i === parts.length - 1) return entry;
      if (entry.type !== 'dir') return undefined;
      tree = await this.get(entry.tree);
    }
    return undefined;
  }

  /** The tree of the directory at `path`; NotFound when missing, Conflict when it is not a directory. */
  async dir(root: TreeHash, path: VolumePath): Promise<Tree> {
    if (path === '/') return this.get(root);
    const entry = await this.lookup(root, path);
    if (!entry) throw new NotFoundError(`no such file or directory: ${path}`);
    if (entry.type !== 'dir') throw new ConflictError(`not a directory: ${path}`);
    return this.get(entry.tree);
  }

  /** Visits every entry below `tree` depth-first, parents before children, with its full path. */
  async *walk(tree: Tree, prefix: string): AsyncGenerator<{ path: string; entry: Entry }> {
    for (const entry of tree.entries) {
      const path = `${prefix}/${entry.name}`;
      yield { path, entry };
      if (entry.type === 'dir') yield* this.walk(await this.get(entry.tree), path);
    }
  }
}
