/**
 * Unit tests of the engine's file operations: list pages, tree diffs, the
 * change feed, search (with its bounds), edit and replace.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import type { CommitId, TreeHash } from '@stowage/sdk/common/ids.js';
import { isStowageError } from '@stowage/sdk/common/errors.js';
import { MemoryBlobStore } from '../stores/memory/memory-blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { openSqliteMetadataStore } from '../stores/sql/sqlite-dialect.js';
import { createEngine, type Engine } from './engine.js';
import { diffTrees } from './tree/tree-diff.js';
import { TreeReader } from './tree/tree-reader.js';
import type { Actor } from './types.js';

let dir: string;
let md: MetadataStore;
let engine: Engine;
let actor: Actor;
let n = 0;

async function* bytes(s: string | Buffer): AsyncGenerator<Uint8Array> {
  yield Buffer.from(s);
}

async function volume(files: Record<string, string | Buffer> = {}): Promise<string> {
  const name = `v${++n}`;
  await engine.createVolume(actor, name);
  for (const [p, c] of Object.entries(files)) await engine.writeFile(actor, name, p, bytes(c));
  return name;
}

async function read(vol: string, path: string): Promise<string> {
  return text((await engine.readFile(actor, vol, path)).body);
}

async function treeOf(id: CommitId): Promise<TreeHash> {
  return (await md.getCommit(id))!.tree;
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stowage-fileops-'));
  md = await openSqliteMetadataStore({ path: join(dir, 'meta.db') });
  engine = createEngine({ metadata: md, blobs: new MemoryBlobStore() });
  const { secret } = await engine.createTenant('acme');
  actor = await engine.authenticate(secret);
});

after(async () => {
  await md.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('list pages', () => {
  it('pages a recursive listing depth-first with a cursor, missing nothing', async () => {
    const vol = await volume({ '/a/1': 'x', '/a/2': 'x', '/a/b/3': 'x', '/c': 'x', '/d/4': 'x' });
    const all = (await engine.list(actor, vol, '/', { recursive: true })).entries.map((e) => e.path);
    assert.deepEqual(all, ['/a', '/a/1', '/a/2', '/a/b', '/a/b/3', '/c', '/d', '/d/4']);
    const seen: string[] = [];
    let after: string | undefined;
    for (let i = 0; i < 20; i++) {
      const page = await engine.list(actor, vol, '/', { recursive: true, limit: 3, ...(after ? { after } : {}) });
      seen.push(...page.entries.map((e) => e.path));
      if (page.nextCursor === null) break;
      after = page.nextCursor;
    }
    assert.deepEqual(seen, all);
  });

  it('pages a flat listing and refuses cursors outside the directory and bad limits', async () => {
    const vol = await volume({ '/d/a': '1', '/d/b': '2', '/d/c': '3' });
    const p1 = await engine.list(actor, vol, '/d', { limit: 2 });
    assert.deepEqual(
      p1.entries.map((e) => e.name),
      ['a', 'b'],
    );
    assert.equal(p1.nextCursor, '/d/b');
    const p2 = await engine.list(actor, vol, '/d', { limit: 2, after: '/d/b' });
    assert.deepEqual(
      p2.entries.map((e) => e.name),
      ['c'],
    );
    assert.equal(p2.nextCursor, null);
    await assert.rejects(engine.list(actor, vol, '/d', { after: '/e/x' }), (e) => isStowageError(e, 'InvalidArgument'));
    await assert.rejects(engine.list(actor, vol, '/d', { after: '/d/../x' }), (e) =>
      isStowageError(e, 'InvalidArgument'),
    );
    await assert.rejects(engine.list(actor, vol, '/d', { limit: 0 }), (e) => isStowageError(e, 'InvalidArgument'));
    await assert.rejects(engine.list(actor, vol, '/d', { limit: 10_001 }), (e) => isStowageError(e, 'InvalidArgument'));
  });
});

describe('tree diff and change feed', () => {
  it('reports added, modified and deleted paths and skips equal subtrees without reading them', async () => {
    const files: Record<string, string> = { '/small/x': 'one', '/small/gone': 'bye' };
    for (let i = 0; i < 20; i++) files[`/big/f${i}`] = `content ${i}`;
    const vol = await volume(files);
    const c1 = (await engine.getVolume(actor, vol)).head;
    await engine.writeFile(actor, vol, '/small/x', bytes('two'));
    await engine.commit(actor, vol, {
      changes: [
        { op: 'delete', path: '/small/gone' },
        { op: 'mkdir', path: '/new/sub' },
      ],
    });
    const c2 = (await engine.getVolume(actor, vol)).head;
    const bigTree = (await engine.stat(actor, vol, '/big')).entry;
    assert.equal(bigTree.type, 'dir');
    const reader = new TreeReader(md);
    const loaded: string[] = [];
    const get = reader.get.bind(reader);
    reader.get = async (h) => {
      loaded.push(h);
      return get(h);
    };
    const changes = [];
    for await (const c of diffTrees(reader, await treeOf(c1), await treeOf(c2))) changes.push(c);
    assert.deepEqual(changes, [
      { path: '/new', kind: 'added', type: 'dir' },
      { path: '/new/sub', kind: 'added', type: 'dir' },
      { path: '/small/gone', kind: 'deleted', type: 'file' },
      { path: '/small/x', kind: 'modified', type: 'file' },
    ]);
    // Root (old, new), /small (old, new), /new/sub's empty tree: never /big.
    const bigHash = (await reader.lookup(await treeOf(c2), '/big' as never))!;
    assert.equal(bigHash.type, 'dir');
    assert.ok(!loaded.includes((bigHash as { tree: string }).tree), 'the unchanged /big subtree was read');
  });

  it('tells commit listeners which volume moved, until they unsubscribe', async () => {
    const vol = await volume();
    const id = (await engine.getVolume(actor, vol)).id;
    const heard: string[] = [];
    const off = engine.onCommit((v) => heard.push(v));
    await engine.writeFile(actor, vol, '/x', bytes('1'));
    off();
    await engine.writeFile(actor, vol, '/x', bytes('2'));
    assert.deepEqual(heard, [id]);
  });

  it('lists every commit after a given one, in order, each with its changes; unknown commits are NotFound', async () => {
    const vol = await volume();
    const start = (await engine.getVolume(actor, vol)).head;
    await engine.writeFile(actor, vol, '/a', bytes('1'));
    await engine.writeFile(actor, vol, '/a', bytes('2'));
    await engine.commit(actor, vol, { changes: [{ op: 'move', from: '/a', to: '/b' }] });
    const feed = await engine.changesSince(actor, vol, start);
    assert.deepEqual(
      feed.commits.map((c) => c.changes),
      [
        [{ path: '/a', kind: 'added', type: 'file' }],
        [{ path: '/a', kind: 'modified', type: 'file' }],
        [
          { path: '/a', kind: 'deleted', type: 'file' },
          { path: '/b', kind: 'added', type: 'file' },
        ],
      ],
    );
    assert.equal(feed.commits.at(-1)!.commit.id, feed.head);
    const rest = await engine.changesSince(actor, vol, feed.commits[0]!.commit.id, 1);
    assert.deepEqual(
      rest.commits.map((c) => c.commit.seq),
      [feed.commits[1]!.commit.seq],
    );
    assert.deepEqual((await engine.changesSince(actor, vol, feed.head)).commits, []);
    await assert.rejects(engine.changesSince(actor, vol, 'c'.repeat(64)), (e) => isStowageError(e, 'NotFound'));
    await assert.rejects(engine.changesSince(actor, vol, '../../etc'), (e) => isStowageError(e, 'NotFound'));
  });
});

describe('search', () => {
  it('globs over full paths, dotfiles included, bounded by limit', async () => {
    const vol = await volume({ '/src/a.ts': 'a', '/src/.hidden.ts': 'h', '/src/lib/b.ts': 'b', '/README.md': 'r' });
    const r = await engine.search(actor, vol, { glob: '*.ts' });
    assert.deepEqual(
      r.files.map((f) => f.path),
      ['/src/.hidden.ts', '/src/a.ts', '/src/lib/b.ts'],
    );
    const full = await engine.search(actor, vol, { glob: '/src/*.ts' });
    assert.deepEqual(
      full.files.map((f) => f.path),
      ['/src/.hidden.ts', '/src/a.ts'],
    );
    const limited = await engine.search(actor, vol, { glob: '**', limit: 2 });
    assert.equal(limited.files.length, 2);
    assert.equal(limited.truncated, true);
  });

  it('finds regex matches with line and column, skips binary files, reports truncated files and the limit', async () => {
    const vol = await volume({
      '/a.txt': 'hello\nsay Hello world\nnothing\nhello hello',
      '/bin.dat': Buffer.from([104, 101, 108, 108, 111, 0, 1, 2]),
      '/big.txt': `${'x'.repeat(100)}\nhello at the end`,
    });
    const r = await engine.search(actor, vol, { regex: 'hello', flags: 'i' });
    assert.deepEqual(
      r.matches.filter((m) => m.path === '/a.txt'),
      [
        { path: '/a.txt', line: 1, column: 1, text: 'hello' },
        { path: '/a.txt', line: 2, column: 5, text: 'say Hello world' },
        { path: '/a.txt', line: 4, column: 1, text: 'hello hello' },
      ],
    );
    assert.deepEqual(r.skippedBinary, ['/bin.dat']);
    assert.equal(r.timedOut, false);
    const small = await engine.search(actor, vol, { regex: 'hello', maxBytesPerFile: 50 });
    assert.deepEqual(small.truncatedFiles, ['/big.txt']);
    assert.ok(!small.matches.some((m) => m.path === '/big.txt'));
    const one = await engine.search(actor, vol, { regex: 'hello', limit: 1 });
    assert.equal(one.matches.length, 1);
    assert.equal(one.truncated, true);
  });

  it('returns partial results with timedOut when a regex backtracks catastrophically', async () => {
    const vol = await volume({ '/evil.txt': `${'a'.repeat(40)}!` });
    const t0 = Date.now();
    const r = await engine.search(actor, vol, { regex: '(a+)+$', timeoutMs: 300 });
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms`);
    assert.equal(r.timedOut, true);
    assert.deepEqual(r.matches, []);
  });

  it('bounds a glob that backtracks catastrophically by the same deadline', async () => {
    const vol = await volume({ [`/${'a'.repeat(40)}`]: 'x', '/b': 'y' });
    const glob = `${'*a'.repeat(16)}*b`;
    const t0 = Date.now();
    const r = await engine.search(actor, vol, { glob, timeoutMs: 300 });
    assert.equal(r.timedOut, true);
    await assert.rejects(
      engine.replace(actor, vol, { glob, regex: 'x', replacement: 'z', timeoutMs: 300 }),
      (e) => isStowageError(e, 'InvalidArgument') && /did not finish/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
    await assert.rejects(engine.search(actor, vol, { glob: 'x'.repeat(2000) }), (e) =>
      isStowageError(e, 'InvalidArgument'),
    );
  });

  it('refuses invalid regexes, flags and bounds', async () => {
    const vol = await volume({ '/a': 'a' });
    await assert.rejects(
      engine.search(actor, vol, { regex: '(unclosed' }),
      (e) => isStowageError(e, 'InvalidArgument') && /invalid regex/.test(e.message),
    );
    await assert.rejects(engine.search(actor, vol, { regex: 'a', flags: 'g' }), (e) =>
      isStowageError(e, 'InvalidArgument'),
    );
    await assert.rejects(engine.search(actor, vol, { regex: 'a', limit: 0 }), (e) =>
      isStowageError(e, 'InvalidArgument'),
    );
    await assert.rejects(engine.search(actor, vol, { path: '/../etc' }), (e) => isStowageError(e, 'InvalidArgument'));
    await assert.rejects(engine.search(actor, vol, { path: '/missing', glob: '*' }), (e) =>
      isStowageError(e, 'NotFound'),
    );
    await assert.rejects(engine.search(actor, vol, { path: '/missing/deeper', regex: 'a' }), (e) =>
      isStowageError(e, 'NotFound'),
    );
  });
});

describe('edit', () => {
  it('replaces a string that occurs once, keeping the mode', async () => {
    const vol = await volume();
    await engine.writeFile(actor, vol, '/f.txt', bytes('alpha beta gamma'), { mode: 0o600 });
    const r = await engine.edit(actor, vol, '/f.txt', { oldString: 'beta', newString: 'BETA' });
    assert.equal(await read(vol, '/f.txt'), 'alpha BETA gamma');
    assert.equal((await engine.stat(actor, vol, '/f.txt')).entry.mode, 0o600);
    assert.equal((await engine.getVolume(actor, vol)).head, r.commit.id);
  });

  it('fails, saying how often, when the string occurs zero or several times', async () => {
    const vol = await volume({ '/f.txt': 'one two two' });
    await assert.rejects(
      engine.edit(actor, vol, '/f.txt', { oldString: 'three', newString: 'x' }),
      (e) => isStowageError(e, 'PreconditionFailed') && /does not occur/.test(e.message),
    );
    await assert.rejects(
      engine.edit(actor, vol, '/f.txt', { oldString: 'two', newString: 'x' }),
      (e) =>
        isStowageError(e, 'PreconditionFailed') && /occurs 2 times/.test(e.message) && e.details?.occurrences === 2,
    );
    assert.equal(await read(vol, '/f.txt'), 'one two two');
  });

  it('refuses binary files, directories, empty old strings and ".." paths', async () => {
    const vol = await volume({ '/bin': Buffer.from([0xff, 0xfe, 0x00, 0x41]), '/d/f': 'x' });
    await assert.rejects(
      engine.edit(actor, vol, '/bin', { oldString: 'A', newString: 'B' }),
      (e) => isStowageError(e, 'InvalidArgument') && /not UTF-8 text/.test(e.message),
    );
    await assert.rejects(engine.edit(actor, vol, '/d', { oldString: 'x', newString: 'y' }), (e) =>
      isStowageError(e, 'InvalidArgument'),
    );
    await assert.rejects(engine.edit(actor, vol, '/d/f', { oldString: '', newString: 'y' }), (e) =>
      isStowageError(e, 'InvalidArgument'),
    );
    await assert.rejects(engine.edit(actor, vol, '/d/../d/f', { oldString: 'x', newString: 'y' }), (e) =>
      isStowageError(e, 'InvalidArgument'),
    );
    await assert.rejects(engine.edit(actor, vol, '/nope', { oldString: 'x', newString: 'y' }), (e) =>
      isStowageError(e, 'NotFound'),
    );
  });

  it('is a Conflict when the file changed since base', async () => {
    const vol = await volume({ '/f.txt': 'v1' });
    const base = (await engine.getVolume(actor, vol)).head;
    await engine.writeFile(actor, vol, '/f.txt', bytes('v2'));
    await assert.rejects(
      engine.edit(actor, vol, '/f.txt', { oldString: 'v2', newString: 'v3', base }),
      (e) => isStowageError(e, 'Conflict') && /changed since you read it/.test(e.message),
    );
    assert.equal(await read(vol, '/f.txt'), 'v2');
  });
});

describe('replace', () => {
  it('replaces across the globbed files in one commit, skipping binary files', async () => {
    const vol = await volume({
      '/a.txt': 'foo foo',
      '/b.txt': 'no match',
      '/c/d.txt': 'foo(1)',
      '/e.md': 'foo',
      '/bin.txt': Buffer.from([102, 111, 111, 0]),
    });
    const before = (await engine.getVolume(actor, vol)).head;
    const r = await engine.replace(actor, vol, { glob: '*.txt', regex: 'fo(o)', replacement: 'b$1r' });
    assert.deepEqual(r.files, [
      { path: '/a.txt', replacements: 2 },
      { path: '/c/d.txt', replacements: 1 },
    ]);
    assert.deepEqual(r.skippedBinary, ['/bin.txt']);
    assert.equal(await read(vol, '/a.txt'), 'bor bor');
    assert.equal(await read(vol, '/c/d.txt'), 'bor(1)');
    assert.equal(await read(vol, '/e.md'), 'foo');
    const feed = await engine.changesSince(actor, vol, before);
    assert.equal(feed.commits.length, 1, 'one commit');
    assert.equal(feed.commits[0]!.commit.id, r.commit!.id);
  });

  it('skips files over the size bound and reports them', async () => {
    const vol = await volume({ '/small.txt': 'abc', '/large.txt': `abc${'x'.repeat(100)}` });
    const r = await engine.replace(actor, vol, { glob: '*.txt', regex: 'abc', replacement: 'A', maxBytesPerFile: 50 });
    assert.deepEqual(r.files, [{ path: '/small.txt', replacements: 1 }]);
    assert.deepEqual(r.skippedTooLarge, ['/large.txt']);
    assert.equal(await read(vol, '/large.txt'), `abc${'x'.repeat(100)}`);
  });

  it('makes no commit when nothing matched, and commits nothing when the deadline passes', async () => {
    const vol = await volume({ '/a.txt': 'abc', '/evil.txt': `${'a'.repeat(40)}!` });
    const head = (await engine.getVolume(actor, vol)).head;
    const none = await engine.replace(actor, vol, { glob: '*.txt', regex: 'zzz', replacement: 'y' });
    assert.equal(none.commit, null);
    const t0 = Date.now();
    await assert.rejects(
      engine.replace(actor, vol, { glob: '*.txt', regex: '(a+)+$', replacement: 'x', timeoutMs: 300 }),
      (e) => isStowageError(e, 'InvalidArgument') && /did not finish/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 3000);
    assert.equal((await engine.getVolume(actor, vol)).head, head);
    await assert.rejects(
      engine.replace(actor, vol, { glob: '*.txt', regex: 'a', replacement: 'b', maxFiles: 1 }),
      (e) => isStowageError(e, 'InvalidArgument'),
    );
  });
});
