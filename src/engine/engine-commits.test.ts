/** The engine's commit path: uploads and commits, merges, concurrency, validation, history and bestEffort. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { sha, world, close, write, read, type World } from './engine-world.test-helper.js';

describe('engine commits', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(async () => {
    await close(w);
  });

  it('writes and reads files through commits', async () => {
    await w.engine.createVolume(w.actor, 'rw');
    const { commit } = await write(w, 'rw', '/a/b/hello.txt', 'hello world');
    assert.equal(commit.seq, 2);
    assert.equal(await read(w, 'rw', '/a/b/hello.txt'), 'hello world');
    const st = await w.engine.stat(w.actor, 'rw', '/a');
    assert.equal(st.entry.type, 'dir');
    assert.equal(st.entry.size, 11);
    assert.equal(st.entry.fileCount, 1);
    const ls = await w.engine.list(w.actor, 'rw', '/', { recursive: true });
    assert.deepEqual(
      ls.entries.map((e) => e.path),
      ['/a', '/a/b', '/a/b/hello.txt'],
    );
  });

  it('never re-uploads a stored chunk', async () => {
    await w.engine.createVolume(w.actor, 'dedupe');
    await write(w, 'dedupe', '/one', 'same bytes');
    const again = await w.engine.prepareUpload(w.actor, 'dedupe', [{ hash: sha(Buffer.from('same bytes')), size: 10 }]);
    assert.equal(again.missing.length, 0);
    assert.equal(again.present, 1);
  });

  it('merges commits on different paths and makes last-writer-wins visible on the same path', async () => {
    const v = await w.engine.createVolume(w.actor, 'merge');
    const base = v.head;
    await write(w, 'merge', '/x', 'from A', { base });
    const b = await write(w, 'merge', '/y', 'from B', { base });
    assert.deepEqual(b.overwritten, []);
    assert.equal(await read(w, 'merge', '/x'), 'from A');
    assert.equal(await read(w, 'merge', '/y'), 'from B');
    const c = await write(w, 'merge', '/x', 'from C', { base });
    assert.deepEqual(c.overwritten, ['/x']);
    assert.equal(await read(w, 'merge', '/x'), 'from C');
    await assert.rejects(write(w, 'merge', '/x', 'from D', { base, onConflict: 'fail' }), { code: 'Conflict' });
    assert.equal(await read(w, 'merge', '/x'), 'from C');
    // The overwritten version stays reachable in history.
    const hist = await w.engine.listCommits(w.actor, 'merge');
    const first = hist.commits.find((h) => h.summary.paths.includes('/x') && h.seq === 2)!;
    assert.equal(await read(w, 'merge', '/x', first.id), 'from A');
  });

  it('runs 8 concurrent writers without losing any commit', async () => {
    const v = await w.engine.createVolume(w.actor, 'busy');
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => write(w, 'busy', `/w${i}/f`, `writer ${i}`, { base: v.head })),
    );
    await Promise.all(
      Array.from({ length: 8 }, (_, i) => write(w, 'busy', '/shared', `writer ${i}`, { base: v.head })),
    );
    const ls = await w.engine.list(w.actor, 'busy', '/', { recursive: true });
    assert.equal(ls.entries.filter((e) => e.type === 'file').length, 9);
    const hist = await w.engine.listCommits(w.actor, 'busy', { limit: 100 });
    assert.equal(hist.commits.length, 17);
    assert.deepEqual(
      hist.commits.map((c) => c.seq),
      Array.from({ length: 17 }, (_, i) => 17 - i),
    );
    assert.match(await read(w, 'busy', '/shared'), /^writer \d$/);
  });

  it('refuses a commit that references a chunk never uploaded, and changes nothing', async () => {
    const v = await w.engine.createVolume(w.actor, 'ghost');
    await assert.rejects(
      w.engine.commit(w.actor, 'ghost', {
        changes: [{ op: 'put', path: '/f', size: 3, chunkSize: SMALL_CHUNK_SIZE, chunks: ['a'.repeat(64)] }],
      }),
      { code: 'PreconditionFailed' },
    );
    // A forged upload key for the hash is refused too.
    await assert.rejects(
      w.engine.commit(w.actor, 'ghost', {
        changes: [{ op: 'put', path: '/f', size: 3, chunkSize: SMALL_CHUNK_SIZE, chunks: ['a'.repeat(64)] }],
        uploads: [{ hash: 'a'.repeat(64), key: `chunks/aa/${'a'.repeat(64)}-0000000000000000` }],
      }),
      { code: 'PreconditionFailed' },
    );
    assert.equal((await w.engine.getVolume(w.actor, 'ghost')).head, v.head);
  });

  it('refuses odd paths and bad change sets', async () => {
    await w.engine.createVolume(w.actor, 'paths');
    for (const p of ['relative', '/a/../b', '/a//b', '/a/', '/a\0b', '/' + 'x'.repeat(256), '/a/./b', '/\uD800']) {
      await assert.rejects(write(w, 'paths', p, 'x'), { code: 'InvalidArgument' }, JSON.stringify(p));
      await assert.rejects(w.engine.stat(w.actor, 'paths', p), { code: 'InvalidArgument' });
    }
    await assert.rejects(w.engine.commit(w.actor, 'paths', { changes: [] }), { code: 'InvalidArgument' });
    await assert.rejects(
      w.engine.commit(w.actor, 'paths', {
        changes: [{ op: 'put', path: '/f', size: 10, chunkSize: 12345, chunks: [] }],
      }),
      { code: 'InvalidArgument' },
    );
    await assert.rejects(
      w.engine.commit(w.actor, 'paths', {
        changes: [{ op: 'put', path: '/f', size: 10, chunkSize: SMALL_CHUNK_SIZE, chunks: [] }],
      }),
      { code: 'InvalidArgument' },
    );
    await assert.rejects(w.engine.commit(w.actor, 'paths', { changes: [{ op: 'nope' } as never] }), {
      code: 'InvalidArgument',
    });
  });

  it('rewrites only the nodes on the edited path', async () => {
    await w.engine.createVolume(w.actor, 'wide');
    const changes = [];
    const hash = sha(Buffer.from('x'));
    await write(w, 'wide', '/seed', 'x');
    for (let d = 0; d < 20; d++)
      for (let f = 0; f < 50; f++)
        changes.push({
          op: 'put' as const,
          path: `/d${d}/f${f}`,
          size: 1,
          chunkSize: SMALL_CHUNK_SIZE,
          chunks: [hash],
        });
    await w.engine.commit(w.actor, 'wide', { changes });
    const before = (await w.md.listTrees()).length;
    await write(w, 'wide', '/d7/f3', 'y');
    assert.equal((await w.md.listTrees()).length - before, 2, 'root and /d7 only');
  });

  it('applies mkdir, move, setattr and delete with POSIX-like rules', async () => {
    await w.engine.createVolume(w.actor, 'posix');
    await write(w, 'posix', '/a/f', 'data');
    const c = (changes: never[]) => w.engine.commit(w.actor, 'posix', { changes });
    await assert.rejects(c([{ op: 'delete', path: '/a' }] as never[]), { code: 'Conflict' });
    await assert.rejects(c([{ op: 'mkdir', path: '/a/f' }] as never[]), { code: 'Conflict' });
    await assert.rejects(c([{ op: 'mkdir', path: '/' }] as never[]), { code: 'InvalidArgument' });
    await assert.rejects(c([{ op: 'move', from: '/a', to: '/a/b' }] as never[]), { code: 'InvalidArgument' });
    await assert.rejects(c([{ op: 'delete', path: '/nope', mustExist: true }] as never[]), { code: 'NotFound' });
    await assert.rejects(
      w.engine.commit(w.actor, 'posix', {
        changes: [
          { op: 'put', path: '/no/parent', size: 0, chunkSize: SMALL_CHUNK_SIZE, chunks: [], createParents: false },
        ],
      }),
      { code: 'NotFound' },
    );
    await c([
      { op: 'move', from: '/a', to: '/b/c' },
      { op: 'setattr', path: '/b/c/f', mode: 0o600 },
    ] as never[]);
    assert.equal(await read(w, 'posix', '/b/c/f'), 'data');
    assert.equal((await w.engine.stat(w.actor, 'posix', '/b/c/f')).entry.mode, 0o600);
    await assert.rejects(w.engine.stat(w.actor, 'posix', '/a'), { code: 'NotFound' });
    // The target stays inside the volume: links climbing out of it are refused to API writers (change-set.test).
    await c([
      { op: 'symlink', path: '/link', target: 'b/c/f' },
      { op: 'mkdir', path: '/empty' },
    ] as never[]);
    assert.equal((await w.engine.stat(w.actor, 'posix', '/link')).entry.target, 'b/c/f');
    await c([
      { op: 'delete', path: '/empty' },
      { op: 'delete', path: '/b', recursive: true },
    ] as never[]);
    const ls = await w.engine.list(w.actor, 'posix', '/');
    assert.deepEqual(
      ls.entries.map((e) => e.name),
      ['link'],
    );
  });

  it('pages history newest first', async () => {
    await w.engine.createVolume(w.actor, 'hist');
    for (let i = 0; i < 5; i++) await write(w, 'hist', '/f', `v${i}`);
    const p1 = await w.engine.listCommits(w.actor, 'hist', { limit: 4 });
    assert.deepEqual(
      p1.commits.map((c) => c.seq),
      [6, 5, 4, 3],
    );
    const p2 = await w.engine.listCommits(w.actor, 'hist', { limit: 4, before: p1.nextBefore! });
    assert.deepEqual(
      p2.commits.map((c) => c.seq),
      [2, 1],
    );
    assert.equal(p2.nextBefore, null);
  });

  it('bestEffort skips changes that no longer apply to head, reports them, and applies the rest', async () => {
    await w.engine.createVolume(w.actor, 'best');
    await write(w, 'best', '/src/a', 'a');
    await write(w, 'best', '/dir/x', 'x');
    const base = await write(w, 'best', '/keep', 'k');
    // Another mount commits meanwhile: /src/a is gone, /dir became a file.
    await w.engine.commit(w.actor, 'best', {
      changes: [
        { op: 'delete', path: '/src/a' },
        { op: 'delete', path: '/dir', recursive: true },
      ],
    });
    await write(w, 'best', '/dir', 'now a file');
    const empty = { op: 'put' as const, size: 0, chunkSize: SMALL_CHUNK_SIZE, chunks: [] };
    const changes = [
      { op: 'move' as const, from: '/src/a', to: '/dst/a' },
      { op: 'setattr' as const, path: '/missing', mode: 0o600 },
      { ...empty, path: '/dir/y' },
      { ...empty, path: '/new' },
      { op: 'setattr' as const, path: '/keep', mode: 0o600 },
    ];
    const head = (await w.engine.getVolume(w.actor, 'best')).head;
    await assert.rejects(w.engine.commit(w.actor, 'best', { base: base.commit.id, changes }), { code: 'NotFound' });
    assert.equal((await w.engine.getVolume(w.actor, 'best')).head, head, 'a failed commit publishes nothing');

    const r = await w.engine.commit(w.actor, 'best', { base: base.commit.id, changes, bestEffort: true });
    assert.deepEqual(
      r.skipped.map((s) => [s.index, s.path]),
      [
        [0, '/src/a'],
        [1, '/missing'],
        [2, '/dir/y'],
      ],
    );
    assert.match(r.skipped[0]!.reason, /cannot move \/src\/a/);
    assert.match(r.skipped[2]!.reason, /not a directory: \/dir/);
    assert.equal((await w.engine.stat(w.actor, 'best', '/new')).entry.size, 0);
    assert.equal((await w.engine.stat(w.actor, 'best', '/keep')).entry.mode, 0o600);
    assert.equal(await read(w, 'best', '/dir'), 'now a file');
    await assert.rejects(
      w.engine.stat(w.actor, 'best', '/dst'),
      { code: 'NotFound' },
      'a skipped move creates no target parents',
    );
    // Skipped paths are neither "changed" nor "overwritten" by this commit.
    assert.deepEqual([...r.commit.summary.paths].sort(), ['/keep', '/new']);
    assert.deepEqual(r.overwritten, []);

    // Validation still fails a bestEffort commit.
    await assert.rejects(
      w.engine.commit(w.actor, 'best', { changes: [{ op: 'setattr', path: 'relative' }], bestEffort: true }),
      { code: 'InvalidArgument' },
    );
    await assert.rejects(
      w.engine.commit(w.actor, 'best', {
        changes: [{ ...empty, path: '/z', size: 1, chunks: ['0'.repeat(64)] }],
        bestEffort: true,
      }),
      { code: 'PreconditionFailed' },
    );
    // Everything skipped: published like any commit that changes nothing.
    const none = await w.engine.commit(w.actor, 'best', {
      changes: [{ op: 'setattr', path: '/missing' }],
      bestEffort: true,
    });
    assert.equal(none.skipped.length, 1);
    assert.equal(none.commit.tree, r.commit.tree);
    // Without bestEffort the answer always carries an empty list.
    assert.deepEqual((await write(w, 'best', '/other', 'o')).skipped, []);
  });
});
