/**
 * Wide directories through the engine on a real SQLite file: a directory of
 * thousands of entries is stored as many pages, listed page by page across
 * node boundaries, edited by rewriting a few nodes, watched, and collected
 * by GC page by page.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import type { TreeHash } from '@stowage/sdk/common/ids.js';
import { MemoryBlobStore } from '../stores/memory/memory-blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { openSqliteMetadataStore } from '../stores/sql/sqlite-dialect.js';
import { createEngine, type Engine } from './engine.js';
import { decodeTree, EMPTY_TREE } from './tree/tree-codec.js';
import { TreeReader } from './tree/tree-reader.js';
import type { Actor, Change } from './types.js';

const WIDTH = 6000;
let dir: string;
let md: MetadataStore;
let engine: Engine;
let actor: Actor;
const clock = { t: Date.now() };
const body = Buffer.from('one shared body');
const hash = createHash('sha256').update(body).digest('hex');

const fileName = (i: number) => `entry-${String(i * 2).padStart(6, '0')}.txt`;
const put = (path: string, size = body.length): Change => ({
  op: 'put',
  path,
  size,
  chunkSize: SMALL_CHUNK_SIZE,
  chunks: size === 0 ? [] : [hash],
});

/** Every node below a tree, walked from the store itself (no cache), failing on a missing one. */
async function storedNodes(root: TreeHash): Promise<Set<TreeHash>> {
  const seen = new Set<TreeHash>();
  const stack = [root];
  while (stack.length > 0) {
    const h = stack.pop()!;
    if (seen.has(h)) continue;
    seen.add(h);
    const data = await md.getTree(h);
    if (!data) {
      // The empty tree is implied and never stored; any other missing node is a loss.
      assert.equal(h, EMPTY_TREE.hash, `node ${h} is missing from the store`);
      continue;
    }
    const node = decodeTree(h, data);
    if (node.kind === 'interior') for (const c of node.children) stack.push(c.tree);
    else for (const e of node.entries) if (e.type === 'dir') stack.push(e.tree);
  }
  return seen;
}

async function headTree(volume: string): Promise<TreeHash> {
  return (await md.getCommit((await engine.getVolume(actor, volume)).head))!.tree;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stowage-wide-'));
  md = await openSqliteMetadataStore({ path: join(dir, 'meta.db') });
  const blobs = new MemoryBlobStore();
  engine = createEngine({ metadata: md, blobs, now: () => new Date(clock.t) });
  const { secret } = await engine.createTenant('acme');
  actor = await engine.authenticate(secret);
  await engine.createVolume(actor, 'wide');
  const { missing } = await engine.prepareUpload(actor, 'wide', [{ hash, size: body.length }]);
  await blobs.put(missing[0]!.key, body, { sha256: hash });
  const changes = [put('/seed'), ...Array.from({ length: WIDTH }, (_, i) => put(`/big/${fileName(i)}`))];
  await engine.commit(actor, 'wide', { changes, uploads: [{ hash, key: missing[0]!.key }] });
});

after(async () => {
  await md.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('wide directories', () => {
  it('stores a wide directory as pages under an interior node, with its totals', async () => {
    const big = (await engine.stat(actor, 'wide', '/big')).entry;
    assert.deepEqual([big.type, big.size, big.fileCount], ['dir', WIDTH * body.length, WIDTH]);
    const entry = await new TreeReader(md).lookup(await headTree('wide'), '/big' as never);
    assert.equal(entry?.type, 'dir');
    const topHash = (entry as { tree: TreeHash }).tree;
    assert.equal(decodeTree(topHash, (await md.getTree(topHash))!).kind, 'interior');
    const nodes = await storedNodes(await headTree('wide'));
    assert.ok(nodes.size > 20, `${nodes.size} nodes`);
    for (const h of nodes) assert.ok(((await md.getTree(h))?.byteLength ?? 0) < 160 * 1024);
    const vol = await engine.getVolume(actor, 'wide');
    assert.deepEqual([vol.size, vol.fileCount], [(WIDTH + 1) * body.length, WIDTH + 1]);
  });

  it('lists a wide directory page by page across node boundaries, missing nothing', async () => {
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    do {
      const page = await engine.list(actor, 'wide', '/big', { limit: 777, ...(after ? { after } : {}) });
      seen.push(...page.entries.map((e) => e.name));
      after = page.nextCursor ?? undefined;
      pages++;
    } while (after);
    assert.equal(pages, Math.ceil(WIDTH / 777));
    assert.deepEqual(
      seen,
      Array.from({ length: WIDTH }, (_, i) => fileName(i)),
    );
    // A cursor that names no entry (deleted since) still resumes after it.
    const between = await engine.list(actor, 'wide', '/big', { limit: 2, after: `/big/entry-003001.txt` });
    assert.deepEqual(
      between.entries.map((e) => e.name),
      ['entry-003002.txt', 'entry-003004.txt'],
    );
    const recursive = await engine.list(actor, 'wide', '/', {
      recursive: true,
      limit: 3,
      after: '/big/entry-011996.txt',
    });
    assert.deepEqual(
      recursive.entries.map((e) => e.path),
      ['/big/entry-011998.txt', '/seed'],
    );
  });

  it('commits one entry into a wide directory by writing a few small nodes, and watch sees just it', async () => {
    const before = new Set((await md.listTrees()).map((t) => t.hash));
    const since = (await engine.getVolume(actor, 'wide')).head;
    await engine.commit(actor, 'wide', {
      changes: [put('/big/entry-005001.txt', 0), { op: 'delete', path: '/big/entry-000000.txt' }],
    });
    const added = (await md.listTrees()).filter((t) => !before.has(t.hash));
    // The volume's root, and in /big: the two edited pages and the nodes above them.
    assert.ok(added.length <= 8, `${added.length} new nodes`);
    assert.equal((await engine.stat(actor, 'wide', '/big/entry-005001.txt')).entry.size, 0);
    await assert.rejects(engine.stat(actor, 'wide', '/big/entry-000000.txt'), /no such file/);
    const { commits } = await engine.changesSince(actor, 'wide', since);
    assert.deepEqual(
      commits.flatMap((c) => c.changes.map((x) => [x.path, x.kind])),
      [
        ['/big/entry-000000.txt', 'deleted'],
        ['/big/entry-005001.txt', 'added'],
      ],
    );
    assert.equal((await engine.stat(actor, 'wide', '/big')).entry.fileCount, WIDTH);
  });

  it('GC keeps every page of live trees and collects the pages edits replaced', async () => {
    const oldTree = await headTree('wide');
    const oldNodes = await storedNodes(oldTree);
    await engine.commit(actor, 'wide', { changes: [{ op: 'delete', path: '/big/entry-006000.txt' }, put('/big/zzz')] });
    const live = await storedNodes(await headTree('wide'));
    const replaced = [...oldNodes].filter((h) => !live.has(h));
    assert.ok(replaced.length >= 2, 'the edit replaced pages');
    clock.t += 2 * 3_600_000;
    const report = await engine.gc({ retention: 0 });
    assert.ok(report.deletedTrees >= replaced.length, `deleted ${report.deletedTrees} trees`);
    for (const h of replaced) assert.equal(await md.getTree(h), undefined, `replaced node ${h} survived`);
    // Every page of the head is still stored (walked from the store, not a cache).
    const after = await storedNodes(await headTree('wide'));
    assert.deepEqual(after, live);
    const all = await engine.list(actor, 'wide', '/big');
    assert.equal(all.entries.length, WIDTH);
    assert.equal(all.entries.at(-1)!.name, 'zzz');
  });
});
