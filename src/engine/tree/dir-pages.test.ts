/**
 * Unit tests of directory paging: determinism (same entries, same top hash,
 * whatever the order or history), edits at the edges of pages, the cost of a
 * one-entry change in a wide directory, hostile names, lookups and listings
 * across pages, and diffs that skip equal pages. Nodes live in a map (a fast
 * in-memory stand-in for the metadata store's tree table).
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { ChunkHash, TreeHash } from '@stowage/sdk/common/ids.js';
import { boundaryHash, buildDir, DEFAULT_PAGE_RULES, editDir, type EditedDir, type PageRules } from './dir-pages.js';
import { decodeTree, EMPTY_TREE, encodeTree, type Entry, type FileEntry, type LeafNode } from './tree-codec.js';
import { diffTrees } from './tree-diff.js';
import { TreeReader } from './tree-reader.js';

/** Small pages, so a few thousand entries make a tree of several levels. */
const SMALL: PageRules = { minChars: 400, maxChars: 3000, odds: 4 };
const CHUNK = 'c'.repeat(64) as ChunkHash;

/** Names n000000, n000002, ...: even numbers, so an odd one always fits between two neighbours. */
function name(i: number): string {
  return `n${String(i).padStart(6, '0')}`;
}

function file(n: string, size = 1): FileEntry {
  return {
    type: 'file',
    name: n,
    mode: 0o644,
    mtime: 1_700_000_000_000,
    size,
    chunkSize: 8 * 1024 * 1024,
    chunks: [CHUNK],
  };
}

class Trees {
  readonly data = new Map<TreeHash, Uint8Array>();
  gets = 0;
  async getTree(hash: TreeHash): Promise<Uint8Array | undefined> {
    this.gets++;
    return this.data.get(hash);
  }
  keep(d: EditedDir): EditedDir {
    for (const n of d.nodes) this.data.set(n.hash, n.data);
    return d;
  }
}

function fixture(): { trees: Trees; reader: TreeReader } {
  const trees = new Trees();
  return { trees, reader: new TreeReader(trees) };
}

async function names(reader: TreeReader, dir: TreeHash, from?: string): Promise<string[]> {
  const out: string[] = [];
  for await (const e of reader.entries(dir, from)) out.push(e.name);
  return out;
}

/** Leaves of a directory in order, and the height of its top node. */
async function leaves(reader: TreeReader, dir: TreeHash): Promise<{ leaves: LeafNode[]; height: number }> {
  const top = await reader.get(dir);
  const out: LeafNode[] = [];
  const visit = async (hash: TreeHash): Promise<void> => {
    const node = await reader.get(hash);
    if (node.kind === 'leaf') out.push(node);
    else for (const c of node.children) await visit(c.tree);
  };
  await visit(dir);
  return { leaves: out, height: top.kind === 'leaf' ? 0 : top.level };
}

/** A deterministic shuffle (so a failure reproduces). */
function shuffle<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe('directory pages', () => {
  it('keeps a small directory one leaf, byte for byte the node written before paging', async () => {
    const entries = Array.from({ length: 40 }, (_, i) => file(name(i * 2), i));
    const built = await buildDir(shuffle(entries, 1));
    assert.equal(built.nodes.length, 1);
    assert.equal(built.hash, encodeTree(entries).hash);
    assert.equal(decodeTree(built.hash, built.nodes[0]!.data).kind, 'leaf');
    assert.deepEqual([built.count, built.size, built.fileCount], [40, (39 * 40) / 2, 40]);
  });

  it('gives the same entries the same top hash whatever the order or edit history', async () => {
    const all = Array.from({ length: 2000 }, (_, i) => file(name(i * 2), i));
    const scratch = await buildDir(shuffle(all, 7), SMALL);
    const { trees, reader } = fixture();
    trees.keep(scratch);
    assert.ok((await leaves(reader, scratch.hash)).height >= 2, 'small pages make a tree of several levels');
    // Another history: inserts in random batches, with detours (entries added then removed, sizes changed back).
    let dir: TreeHash = EMPTY_TREE.hash;
    const order = shuffle(all, 99);
    for (let i = 0, step = 1; i < order.length; i += step, step = ((step * 7 + 3) % 211) + 1) {
      const batch = order.slice(i, i + step).map((e): [string, Entry | null] => [e.name, { ...e, size: e.size + 1 }]);
      const detour: Array<[string, Entry | null]> = [...batch, [`${batch[0]![0]}x`, file(`${batch[0]![0]}x`)]];
      dir = trees.keep(
        await editDir(
          reader,
          dir,
          detour.sort(([a], [b]) => (a < b ? -1 : 1)),
          SMALL,
        ),
      ).hash;
      const undo = batch.map(([n]) => [n, all[Number(n.slice(1)) / 2]!] as [string, Entry | null]);
      undo.push([`${batch[0]![0]}x`, null]);
      dir = trees.keep(
        await editDir(
          reader,
          dir,
          undo.sort(([a], [b]) => (a < b ? -1 : 1)),
          SMALL,
        ),
      ).hash;
    }
    assert.equal(dir, scratch.hash);
    assert.deepEqual(
      await names(reader, dir),
      all.map((e) => e.name),
    );
    assert.deepEqual(await reader.totals(dir), { count: 2000, size: (1999 * 2000) / 2, fileCount: 2000 });
  });

  it('edits at the edges of pages match a build from scratch', async () => {
    const base = Array.from({ length: 800 }, (_, i) => file(name(i * 2)));
    const { trees, reader } = fixture();
    const built = trees.keep(await buildDir(base, SMALL));
    const { leaves: pages } = await leaves(reader, built.hash);
    assert.ok(pages.length >= 8, `expected many pages, got ${pages.length}`);
    const first = (p: number) => pages[p]!.entries[0]!.name;
    const last = (p: number) => pages[p]!.entries.at(-1)!.name;
    const between = (n: string) => name(Number(n.slice(1)) + 1);
    const scenarios: Record<string, Array<[string, Entry | null]>> = {
      'delete the first entry of a page': [[first(3), null]],
      'delete the last entry of a page (its boundary)': [[last(3), null]],
      'delete the last entries of two neighbouring pages': [
        [last(2), null],
        [last(3), null],
      ],
      'insert between two pages': [[between(last(4)), file(between(last(4)))]],
      'insert before everything': [['a', file('a')]],
      'insert after everything': [['z', file('z')]],
      'delete the first and the last entry of the directory': [
        [first(0), null],
        [last(pages.length - 1), null],
      ],
      'change an entry on a boundary': [[last(5), file(last(5), 12345)]],
      'rename across pages': [
        [first(1), null],
        [between(last(6)), file(between(last(6)))],
      ],
      'delete a whole page': pages[4]!.entries.map((e): [string, Entry | null] => [e.name, null]),
      'delete a missing name': [[between(first(2)), null]],
    };
    for (const [what, edits] of Object.entries(scenarios)) {
      const expected = new Map(base.map((e) => [e.name, e as Entry]));
      for (const [n, e] of edits) {
        if (e) expected.set(n, e);
        else expected.delete(n);
      }
      const sortedEdits = [...edits].sort(([a], [b]) => (a < b ? -1 : 1));
      const edited = trees.keep(await editDir(reader, built.hash, sortedEdits, SMALL));
      assert.equal(edited.hash, (await buildDir(expected.values(), SMALL)).hash, what);
      assert.deepEqual(await names(reader, edited.hash), [...expected.keys()].sort(), what);
      assert.equal(edited.count, expected.size, what);
    }
    const emptied = await editDir(
      reader,
      built.hash,
      base.map((e): [string, Entry | null] => [e.name, null]),
      SMALL,
    );
    assert.deepEqual([emptied.hash, emptied.count, emptied.nodes.length], [EMPTY_TREE.hash, 0, 0]);
  });

  it('a one-entry change in a 200,000-entry directory reads and rewrites a few small nodes', async () => {
    const all = Array.from({ length: 200_000 }, (_, i) => file(`file-${String(i * 2).padStart(7, '0')}.txt`, i));
    const { trees } = fixture();
    const built = trees.keep(await buildDir(all));
    assert.ok(built.nodes.length > 500, `a wide directory is many nodes (got ${built.nodes.length})`);
    for (const n of built.nodes)
      assert.ok(n.data.length <= DEFAULT_PAGE_RULES.maxChars + 1024, `node of ${n.data.length} bytes`);
    const reader = new TreeReader(trees);
    trees.gets = 0;
    const added = file('file-0100001.txt', 7);
    const edited = trees.keep(await editDir(reader, built.hash, [[added.name, added]]));
    assert.ok(edited.nodes.length <= 5, `rewrote ${edited.nodes.length} nodes`);
    assert.ok(trees.gets <= 6, `read ${trees.gets} nodes`);
    assert.equal(edited.count, 200_001);
    assert.equal(edited.size, built.size + 7);
    assert.deepEqual(await reader.find(edited.hash, added.name), added);
    assert.equal(edited.hash, (await buildDir([...all, added])).hash);
  });

  it('keeps nodes bounded when no name ever hits a boundary', async () => {
    const hostile: Entry[] = [];
    for (let i = 0; hostile.length < 1500; i++) {
      const n = `evil-${i}`;
      if (boundaryHash(0, n) % SMALL.odds !== 0) hostile.push(file(n));
    }
    const { trees, reader } = fixture();
    const built = trees.keep(await buildDir(hostile, SMALL));
    assert.ok(built.nodes.length > 10);
    for (const n of built.nodes) assert.ok(n.data.length <= SMALL.maxChars + 300, `node of ${n.data.length} bytes`);
    const edited = trees.keep(await editDir(reader, built.hash, [['evil-0', null]], SMALL));
    assert.equal(edited.hash, (await buildDir(hostile.slice(1), SMALL)).hash);
  });

  it('refuses a node whose bytes do not match its hash, interior nodes included', async () => {
    const built = await buildDir(
      Array.from({ length: 300 }, (_, i) => file(name(i))),
      SMALL,
    );
    const top = built.nodes.find((n) => n.hash === built.hash)!;
    assert.equal(top.tree.kind, 'interior');
    const tampered = Buffer.from(top.data);
    tampered[tampered.length - 3] ^= 1;
    assert.throws(() => decodeTree(built.hash, tampered), /corrupt/);
    // An interior node's bytes hashed under the leaf tag (or the reverse) are no node at all.
    assert.throws(() => decodeTree(encodeTree([]).hash, top.data), /corrupt/);
  });

  it('finds and lists entries across pages, from any starting name', async () => {
    const all = Array.from({ length: 1000 }, (_, i) => file(name(i * 2)));
    const { trees, reader } = fixture();
    const built = trees.keep(await buildDir(all, SMALL));
    const every = all.map((e) => e.name);
    for (const i of [0, 1, 137, 500, 999]) {
      assert.deepEqual(await reader.find(built.hash, every[i]!), all[i]);
      assert.equal(await reader.find(built.hash, name(i * 2 + 1)), undefined);
      assert.deepEqual(await names(reader, built.hash, every[i]), every.slice(i), `from ${every[i]}`);
      assert.deepEqual(await names(reader, built.hash, name(i * 2 + 1)), every.slice(i + 1), `from between ${i}`);
    }
    assert.deepEqual(await names(reader, built.hash, 'a'), every);
    assert.deepEqual(await names(reader, built.hash, 'z'), []);
    assert.equal(await reader.find(built.hash, 'a'), undefined);
  });

  it('diffs two wide directories reading only the pages that differ', async () => {
    const all = Array.from({ length: 3000 }, (_, i) => file(name(i * 2)));
    const { trees, reader } = fixture();
    const before = trees.keep(await buildDir(all, SMALL));
    const edits: Array<[string, Entry | null]> = [
      [name(10), null],
      [name(3001), file(name(3001))],
      [name(5000), file(name(5000), 9)],
    ];
    const after = trees.keep(await editDir(reader, before.hash, edits, SMALL));
    const total = (await leaves(reader, before.hash)).leaves.length;
    const counting = new TreeReader(trees);
    trees.gets = 0;
    const changes = [];
    for await (const c of diffTrees(counting, before.hash, after.hash)) changes.push(c);
    assert.deepEqual(changes, [
      { path: `/${name(10)}`, kind: 'deleted', type: 'file' },
      { path: `/${name(3001)}`, kind: 'added', type: 'file' },
      { path: `/${name(5000)}`, kind: 'modified', type: 'file' },
    ]);
    assert.ok(trees.gets < total / 4, `read ${trees.gets} nodes of a directory of ${total} pages`);
  });
});
