/**
 * @module engine/tree/tree-reader
 * Reads trees from the metadata store through a cache of decoded nodes, and
 * resolves paths. A directory may span many nodes (engine/tree/dir-pages); a
 * lookup costs the nodes from a directory's top to the leaf holding the name,
 * per path segment (O(log width)), never a walk of the volume or of a directory.
 */
import { Pacer } from '@stowage/sdk/common/concurrency.js';
import { InternalError, NotFoundError, ConflictError } from '@stowage/sdk/common/errors.js';
import type { TreeHash } from '@stowage/sdk/common/ids.js';
import { splitPath, type VolumePath } from '@stowage/sdk/common/paths.js';
import type { MetadataOps } from '../../stores/metadata-store.js';
import { LruCache } from '../../common/lru-cache.js';
import {
  childIndexFor,
  decodeTree,
  EMPTY_TREE,
  entryIndexFrom,
  nodeTotals,
  type Entry,
  type TreeNode,
} from './tree-codec.js';

export class TreeReader {
  private readonly cache: LruCache<TreeHash, TreeNode>;
  /** Long walks over cached nodes give the event loop a turn now and then. */
  private readonly pacer = new Pacer();

  /**
   * `cacheBytes` bounds the decoded nodes kept in memory, counted by encoded
   * size; decoded objects take several times that in the heap, so the default
   * stays small enough for the server's memory budget.
   */
  constructor(
    private readonly store: Pick<MetadataOps, 'getTree'>,
    cacheBytes = 16 * 1024 * 1024,
  ) {
    this.cache = new LruCache(cacheBytes);
  }

  /** Loads one node; InternalError when the store lacks it (a damaged store, never a user error). */
  async get(hash: TreeHash): Promise<TreeNode> {
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
  remember(tree: TreeNode): void {
    this.cache.set(tree.hash, tree, tree.bytes);
  }

  /** The entry named `name` in the directory whose top node is `dir`, or undefined. */
  async find(dir: TreeHash, name: string): Promise<Entry | undefined> {
    let node = await this.get(dir);
    while (node.kind === 'interior') {
      const index = childIndexFor(node.children, name);
      if (index < 0) return undefined;
      node = await this.get(node.children[index]!.tree);
    }
    const entry = node.entries[entryIndexFrom(node.entries, name)];
    return entry?.name === name ? entry : undefined;
  }

  /** The entry at `path` below `root`, or undefined. The root itself has no entry (callers special-case "/"). */
  async lookup(root: TreeHash, path: VolumePath): Promise<Entry | undefined> {
    const parts = splitPath(path);
    let dir = root;
    for (let i = 0; i < parts.length; i++) {
      const entry = await this.find(dir, parts[i]!);
      if (!entry) return undefined;
      if (i === parts.length - 1) return entry;
      if (entry.type !== 'dir') return undefined;
      dir = entry.tree;
    }
    return undefined;
  }

  /** The top node of the directory at `path`; NotFound when missing, Conflict when it is not a directory. */
  async dir(root: TreeHash, path: VolumePath): Promise<TreeHash> {
    if (path === '/') return root;
    const entry = await this.lookup(root, path);
    if (!entry) throw new NotFoundError(`no such file or directory: ${path}`);
    if (entry.type !== 'dir') throw new ConflictError(`not a directory: ${path}`);
    return entry.tree;
  }

  /** Entry count and totals of the directory whose top node is `dir`. */
  async totals(dir: TreeHash): Promise<{ count: number; size: number; fileCount: number }> {
    return nodeTotals(await this.get(dir));
  }

  /** The entries of directory `dir` in name order, from the first whose name is at or after `from` (all when undefined). */
  async *entries(dir: TreeHash, from?: string): AsyncGenerator<Entry> {
    const node = await this.get(dir);
    if (node.kind === 'leaf') {
      await this.pacer.tick();
      for (let i = from === undefined ? 0 : entryIndexFrom(node.entries, from); i < node.entries.length; i++)
        yield node.entries[i]!;
      return;
    }
    const start = from === undefined ? 0 : Math.max(0, childIndexFor(node.children, from));
    for (let i = start; i < node.children.length; i++)
      yield* this.entries(node.children[i]!.tree, i === start ? from : undefined);
  }

  /** Visits every entry below directory `dir` depth-first, parents before children, with its full path. */
  async *walk(dir: TreeHash, prefix: string): AsyncGenerator<{ path: string; entry: Entry }> {
    for await (const entry of this.entries(dir)) {
      const path = `${prefix}/${entry.name}`;
      yield { path, entry };
      if (entry.type === 'dir') yield* this.walk(entry.tree, path);
    }
  }
}
