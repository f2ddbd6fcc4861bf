/**
 * @module engine/tree/dir-pages
 * Content-defined paging of directories (a Prolly tree), so a wide directory
 * is many small nodes and a one-entry change rewrites O(log n) of them.
 *
 * Vocabulary:
 * - **level**: leaves (level 0) hold entries; a level-L interior node holds
 *   references (`ChildRef`) to level L-1 nodes. Every leaf sits at the same depth.
 * - **item**: what a node of a level holds (an entry, or a reference); its
 *   **key** is the entry's name, or the first name below the reference.
 * - **boundary**: a node ends after an item when the node already holds at
 *   least `minChars` of encoded items and a hash of the item's key (and level)
 *   hits 1 in `odds`, or when it reaches `maxChars` whatever the hash.
 *
 * The cut points depend only on the sorted items, never on history: the same
 * entries always make the same nodes and the same top hash, and the top node
 * of a level is the lowest level that fits in one node. A directory smaller
 * than `minChars` is one leaf, byte for byte the single node of before paging.
 * Editing re-cuts, level by level, only the runs of nodes around the edits:
 * from the start of the node holding an edit until a new cut lands on an old
 * node's end (after that, the old nodes are reused whole).
 *
 * Names hostile to the hash (none ever hits) only make nodes end at
 * `maxChars`: nodes stay bounded, and an edit then re-cuts the run up to the
 * next natural boundary. That costs time, never memory or correctness.
 */
import { Pacer } from '@stowage/sdk/common/concurrency.js';
import type { TreeHash } from '@stowage/sdk/common/ids.js';
import {
  canonicalEntry,
  childIndexFor,
  EMPTY_TREE,
  encodeInterior,
  encodeLeaf,
  entryJson,
  nodeLevel,
  nodeTotals,
  refJson,
  type ChildRef,
  type EncodedNode,
  type Entry,
  type InteriorNode,
  type TreeNode,
} from './tree-codec.js';
import type { TreeReader } from './tree-reader.js';

/** Where nodes are cut (see the module comment). */
export interface PageRules {
  minChars: number;
  maxChars: number;
  odds: number;
}

/**
 * Nodes of 16 KiB and more (median ~24 KiB, 95% under 50 KiB): decoding one
 * takes well under a millisecond, and a 1,000,000-entry directory is ~6,400
 * leaves under 35 interior nodes (height 2).
 */
export const DEFAULT_PAGE_RULES: PageRules = { minChars: 16 * 1024, maxChars: 128 * 1024, odds: 64 };

/** A directory's new top node and totals after an edit, with the nodes to store. */
export interface EditedDir {
  hash: TreeHash;
  count: number;
  size: number;
  fileCount: number;
  /** Nodes reachable from `hash` that the edit created. */
  nodes: EncodedNode[];
}

type Item = Entry | ChildRef;

/** Replace the old items of one level whose keys lie in [lo, hi] with `items` (sorted, placed where lo was). */
interface Op {
  lo: string;
  hi: string;
  items: readonly Item[];
}

interface Ctx {
  reader: Pick<TreeReader, 'get'>;
  rules: PageRules;
  pacer: Pacer;
  created: Map<TreeHash, EncodedNode>;
}

/** 32-bit FNV-1a over the key's code units, seeded by level, with murmur3's finaliser so the low bits mix every character. */
export function boundaryHash(level: number, key: string): number {
  let h = (0x811c9dc5 ^ Math.imul(level + 1, 0x9e3779b1)) >>> 0;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function keyOf(level: number, item: Item): string {
  return level === 0 ? (item as Entry).name : (item as ChildRef).first;
}

function itemsOf(node: TreeNode): readonly Item[] {
  return node.kind === 'leaf' ? node.entries : node.children;
}

/** Cuts a stream of one level's items into nodes. */
class Chunker {
  private items: Item[] = [];
  private jsons: string[] = [];
  private chars = 0;
  /** References to the nodes cut so far, in order. */
  readonly refs: ChildRef[] = [];

  constructor(
    private readonly level: number,
    private readonly ctx: Ctx,
  ) {}

  push(item: Item): void {
    const json = this.level === 0 ? entryJson(item as Entry) : refJson(item as ChildRef);
    this.items.push(item);
    this.jsons.push(json);
    this.chars += json.length + 1;
    const { minChars, maxChars, odds } = this.ctx.rules;
    if (
      this.chars >= maxChars ||
      (this.chars >= minChars && boundaryHash(this.level, keyOf(this.level, item)) % odds === 0)
    )
      this.cut();
  }

  /** True when the items pushed so far end exactly at a cut. */
  get atBoundary(): boolean {
    return this.items.length === 0;
  }

  /** Ends the last node (the end of a level always ends a node). */
  finish(): void {
    if (this.items.length > 0) this.cut();
  }

  private cut(): void {
    const encoded =
      this.level === 0
        ? encodeLeaf(this.items as Entry[], this.jsons)
        : encodeInterior(this.level, this.items as ChildRef[], this.jsons);
    this.ctx.created.set(encoded.hash, encoded);
    this.refs.push({ first: keyOf(this.level, this.items[0]!), tree: encoded.hash, ...nodeTotals(encoded.tree) });
    this.items = [];
    this.jsons = [];
    this.chars = 0;
  }
}

/** Where an old node of some level sits: the interior nodes above it (with the child index taken) and the node. */
interface Cursor {
  path: Array<{ node: InteriorNode; index: number }>;
  node: TreeNode;
}

async function nodeOf(ctx: Ctx, hash: TreeHash): Promise<TreeNode> {
  return ctx.created.get(hash)?.tree ?? ctx.reader.get(hash);
}

/** The node of `level` whose key range holds `key` (the first node when `key` precedes everything). */
async function locate(ctx: Ctx, root: TreeNode, level: number, key: string): Promise<Cursor> {
  const path: Cursor['path'] = [];
  let node = root;
  while (nodeLevel(node) > level) {
    const interior = node as InteriorNode;
    const index = Math.max(0, childIndexFor(interior.children, key));
    path.push({ node: interior, index });
    node = await ctx.reader.get(interior.children[index]!.tree);
  }
  return { path, node };
}

/** The reference to the node a cursor stands on (cursors below the top always have one). */
function refOf(c: Cursor): ChildRef {
  const at = c.path.at(-1)!;
  return at.node.children[at.index]!;
}

/** The depth in `path` where the next node of the same level branches off, or -1 at the end of the level. */
function nextBranch(c: Cursor): number {
  let d = c.path.length - 1;
  while (d >= 0 && c.path[d]!.index + 1 >= c.path[d]!.node.children.length) d--;
  return d;
}

/** The first key of the next node of the level (its reference's `first`), without loading it. */
function nextFirst(c: Cursor): string | undefined {
  const d = nextBranch(c);
  return d < 0 ? undefined : c.path[d]!.node.children[c.path[d]!.index + 1]!.first;
}

async function advance(ctx: Ctx, c: Cursor): Promise<Cursor> {
  const d = nextBranch(c);
  const path = c.path.slice(0, d);
  const parent = c.path[d]!.node;
  path.push({ node: parent, index: c.path[d]!.index + 1 });
  let node = await ctx.reader.get(parent.children[c.path[d]!.index + 1]!.tree);
  while (path.length < c.path.length) {
    const interior = node as InteriorNode;
    path.push({ node: interior, index: 0 });
    node = await ctx.reader.get(interior.children[0]!.tree);
  }
  return { path, node };
}

/** Merge state: the next op, and the op whose range is being removed. */
interface Feed {
  next: number;
  active: Op | undefined;
}

/** Pushes a node's items merged with the ops that fall before `limit` (all remaining ops when undefined). */
async function feed(
  ctx: Ctx,
  level: number,
  items: readonly Item[],
  ops: readonly Op[],
  st: Feed,
  limit: string | undefined,
  out: Chunker,
): Promise<void> {
  const start = async (op: Op): Promise<void> => {
    for (const x of op.items) {
      out.push(x);
      await ctx.pacer.tick();
    }
    st.active = op;
  };
  for (const item of items) {
    const key = keyOf(level, item);
    while (st.next < ops.length && ops[st.next]!.lo <= key) await start(ops[st.next++]!);
    if (st.active !== undefined && key <= st.active.hi) continue;
    out.push(item);
    await ctx.pacer.tick();
  }
  while (st.next < ops.length && (limit === undefined || ops[st.next]!.lo < limit)) await start(ops[st.next++]!);
}

/**
 * Applies `ops` to one level below the top: re-cuts each run of nodes from the
 * node holding an op until a cut meets an old node's end with no op pending,
 * and returns, for the level above, which references each run replaces.
 */
async function rechunkLevel(ctx: Ctx, root: TreeNode, level: number, ops: readonly Op[]): Promise<Op[]> {
  const out: Op[] = [];
  const st: Feed = { next: 0, active: undefined };
  while (st.next < ops.length) {
    let cur = await locate(ctx, root, level, ops[st.next]!.lo);
    const chunker = new Chunker(level, ctx);
    const lo = refOf(cur).first;
    let hi = lo;
    st.active = undefined;
    for (;;) {
      const limit = nextFirst(cur);
      await feed(ctx, level, itemsOf(cur.node), ops, st, limit, chunker);
      hi = refOf(cur).first;
      if (limit === undefined) {
        chunker.finish();
        break;
      }
      const active = st.active as Op | undefined; // feed() moved it on
      const removing = active !== undefined && active.hi >= limit;
      if (chunker.atBoundary && !removing && (st.next >= ops.length || ops[st.next]!.lo >= limit)) break;
      cur = await advance(ctx, cur);
    }
    out.push({ lo, hi, items: chunker.refs });
  }
  return out;
}

/** Nodes created by this edit that the new top reaches (the rest were cut and then replaced). */
function reachable(ctx: Ctx, top: TreeHash): EncodedNode[] {
  const out: EncodedNode[] = [];
  const stack = [top];
  while (stack.length > 0) {
    const node = ctx.created.get(stack.pop()!);
    if (!node) continue;
    out.push(node);
    if (node.tree.kind === 'interior') for (const c of node.tree.children) stack.push(c.tree);
  }
  return out;
}

/**
 * Applies edits (sorted by name, each name once: an entry to set, or null to
 * remove) to the directory whose top node is `base`, and returns the new top.
 * Only the runs of nodes around the edits are read and rewritten.
 */
export async function editDir(
  reader: Pick<TreeReader, 'get'>,
  base: TreeHash,
  edits: ReadonlyArray<readonly [string, Entry | null]>,
  rules: PageRules = DEFAULT_PAGE_RULES,
  pacer: Pacer = new Pacer(),
): Promise<EditedDir> {
  const ctx: Ctx = { reader, rules, pacer, created: new Map() };
  const root = await reader.get(base);
  const height = nodeLevel(root);
  let ops: Op[] = edits.map(([name, entry]) => ({
    lo: name,
    hi: name,
    items: entry ? [canonicalEntry({ ...entry, name })] : [],
  }));
  for (let level = 0; level < height; level++) ops = await rechunkLevel(ctx, root, level, ops);
  // The top node is re-cut whole; while it yields more than one node, add levels above.
  const top = new Chunker(height, ctx);
  await feed(ctx, height, itemsOf(root), ops, { next: 0, active: undefined }, undefined, top);
  top.finish();
  let refs = top.refs;
  for (let level = height + 1; refs.length > 1; level++) {
    const above = new Chunker(level, ctx);
    for (const r of refs) above.push(r);
    above.finish();
    refs = above.refs;
  }
  if (refs.length === 0) return { hash: EMPTY_TREE.hash, count: 0, size: 0, fileCount: 0, nodes: [] };
  // The top of a directory is the lowest level that fits in one node: drop single-child tops.
  let node = await nodeOf(ctx, refs[0]!.tree);
  while (node.kind === 'interior' && node.children.length === 1) node = await nodeOf(ctx, node.children[0]!.tree);
  return { hash: node.hash, ...nodeTotals(node), nodes: reachable(ctx, node.hash) };
}

/** The top node of a directory holding `entries` (any order), built from nothing. */
export async function buildDir(entries: Iterable<Entry>, rules: PageRules = DEFAULT_PAGE_RULES): Promise<EditedDir> {
  const byName = new Map<string, Entry>();
  for (const e of entries) byName.set(e.name, e);
  const edits = [...byName].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const none = { get: async () => EMPTY_TREE.tree };
  return editDir(none, EMPTY_TREE.hash, edits, rules);
}
