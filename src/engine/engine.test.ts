import { describe, it, before, after, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { MemoryBlobStore } from '../stores/memory/memory-blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { openSqliteMetadataStore } from '../stores/sql/sqlite-dialect.js';
import { createEngine, type Engine } from './engine.js';
import type { Actor } from './types.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface World {
  dir: string;
  md: MetadataStore;
  blobs: MemoryBlobStore;
  engine: Engine;
  actor: Actor;
  clock: { t: number };
}

async function world(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'stowage-engine-'));
  const md = await openSqliteMetadataStore({ path: join(dir, 'meta.db') });
  const blobs = new MemoryBlobStore();
  // Starts at the real time: blob stores stamp objects with the real clock.
  const clock = { t: Date.now() };
  const engine = createEngine({ metadata: md, blobs, now: () => new Date(clock.t) });
  const { secret } = await engine.createTenant('acme');
  const actor = await engine.authenticate(secret);
  return { dir, md, blobs, engine, actor, clock };
}

async function close(w: World): Promise<void> {
  await w.md.close();
  rmSync(w.dir, { recursive: true, force: true });
}

/** Does what the SDK does: ask, upload missing chunks, commit. */
async function write(
  w: World,
  volume: string,
  path: string,
  content: string | Buffer,
  opts: { base?: string; onConflict?: 'fail' } = {},
) {
  const bytes = Buffer.from(content);
  const chunks: Buffer[] = [];
  for (let off = 0; off < bytes.length; off += SMALL_CHUNK_SIZE)
    chunks.push(bytes.subarray(off, off + SMALL_CHUNK_SIZE));
  const hashes = chunks.map(sha);
  const { missing } = await w.engine.prepareUpload(
    w.actor,
    volume,
    chunks.map((c, i) => ({ hash: hashes[i]!, size: c.length })),
  );
  for (const m of missing) await w.blobs.put(m.key, chunks[hashes.indexOf(m.hash)]!, { sha256: m.hash });
  return w.engine.commit(w.actor, volume, {
    changes: [{ op: 'put', path, size: bytes.length, chunkSize: SMALL_CHUNK_SIZE, chunks: hashes }],
    uploads: missing.map((m) => ({ hash: m.hash, key: m.key })),
    ...opts,
  });
}

/** Does what the SDK does for small files: one pack, one signed PUT, one commit declaring the layout. */
async function writePacked(
  w: World,
  volume: string,
  files: Record<string, string>,
  tamper?: (m: { hash: string; offset: number; size: number }[]) => void,
) {
  const bodies = Object.values(files).map((c) => Buffer.from(c));
  const pack = Buffer.concat(bodies);
  let offset = 0;
  const chunks = bodies.map((b) => {
    const c = { hash: sha(b), offset, size: b.length };
    offset += b.length;
    return c;
  });
  tamper?.(chunks);
  const signed = await w.engine.preparePack(w.actor, volume, { size: pack.length, sha256: sha(pack) });
  await w.blobs.put(signed.key, pack, { sha256: sha(pack) });
  return w.engine.commit(w.actor, volume, {
    changes: Object.keys(files).map((path, i) => ({
      op: 'put' as const,
      path,
      size: bodies[i]!.length,
      chunkSize: SMALL_CHUNK_SIZE,
      chunks: [sha(bodies[i]!)],
    })),
    packs: [{ key: signed.key, chunks }],
  });
}

async function read(w: World, volume: string, path: string, commit?: string): Promise<string> {
  const plan = await w.engine.readPlan(w.actor, volume, path, commit ? { commit } : {});
  let out = '';
  for (const c of plan.chunks) {
    assert.equal(c.request.method, 'GET');
    const [row] = await w.md.getChunks([c.hash as never]);
    out += await text(await w.blobs.get(row!.objectKey, { start: row!.offset, end: row!.offset + row!.size - 1 }));
  }
  return out;
}

describe('engine', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(async () => {
    await close(w);
  });

  it('creates volumes with name rules and refuses duplicates', async () => {
    const v = await w.engine.createVolume(w.actor, 'data-1');
    assert.equal(v.cap, 2 * 1024 * MiB);
    assert.equal(v.accessMode, 'RWO');
    await assert.rejects(w.engine.createVolume(w.actor, 'data-1'), { code: 'AlreadyExists' });
    for (const bad of ['', 'Upper', '-x', 'a/b', 'a'.repeat(64), '..', 'a b']) {
      await assert.rejects(w.engine.createVolume(w.actor, bad), { code: 'InvalidArgument' }, bad);
    }
  });

  it('get-or-create is race-safe: concurrent calls yield one volume', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => w.engine.getOrCreateVolume(w.actor, 'raced')));
    assert.equal(new Set(results.map((r) => r.volume.id)).size, 1);
    assert.equal(results.filter((r) => r.created).length, 1);
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

  it('enforces the cap with a clear error, and resize lifts it', async () => {
    await w.engine.createVolume(w.actor, 'small', { cap: 10 });
    await write(w, 'small', '/a', '12345');
    const err = await write(w, 'small', '/b', '1234567').catch(
      (e: unknown) => e as Error & { code: string; details: { cap: number; size: number } },
    );
    assert.equal((err as { code: string }).code, 'QuotaExceeded');
    assert.match((err as Error).message, /capped at 10 B \(10 bytes\).*12 B \(12 bytes\)/);
    assert.deepEqual((err as { details: unknown }).details, { cap: 10, size: 12 });
    assert.equal((await w.engine.getVolume(w.actor, 'small')).size, 5);
    await w.engine.updateVolume(w.actor, 'small', { cap: 100 });
    await write(w, 'small', '/b', '1234567');
    assert.equal((await w.engine.getVolume(w.actor, 'small')).size, 12);
    // Shrinking below usage is allowed; commits that do not grow still pass.
    await w.engine.updateVolume(w.actor, 'small', { cap: 5 });
    await w.engine.commit(w.actor, 'small', { changes: [{ op: 'delete', path: '/b' }] });
  });

  it('snapshots, restores and forks copy-on-write', async () => {
    await w.engine.createVolume(w.actor, 'src');
    await write(w, 'src', '/doc', 'v1');
    const snap = await w.engine.createSnapshot(w.actor, 'src', { name: 'first' });
    await assert.rejects(w.engine.createSnapshot(w.actor, 'src', { name: 'first' }), { code: 'AlreadyExists' });
    await write(w, 'src', '/doc', 'v2');
    const fork = await w.engine.fork(w.actor, 'src', { name: 'copy', snapshot: 'first' });
    assert.equal(fork.size, 2);
    assert.equal(await read(w, 'copy', '/doc'), 'v1');
    await write(w, 'copy', '/doc', 'fork edit');
    assert.equal(await read(w, 'src', '/doc'), 'v2');
    const restored = await w.engine.restore(w.actor, 'src', { snapshot: 'first' });
    assert.equal(restored.commit.tree, (await w.md.getCommit(snap.commitId))!.tree);
    assert.equal(await read(w, 'src', '/doc'), 'v1');
    assert.equal(await read(w, 'copy', '/doc'), 'fork edit');
    assert.deepEqual(
      (await w.engine.listSnapshots(w.actor, 'src')).map((s) => s.name),
      ['first'],
    );
    await w.engine.deleteSnapshot(w.actor, 'src', 'first');
    await assert.rejects(w.engine.restore(w.actor, 'src', { snapshot: 'first' }), { code: 'NotFound' });
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

  it('stores a stream the server receives and streams files and ranges back', async () => {
    await w.engine.createVolume(w.actor, 'streams');
    const big = Buffer.alloc(SMALL_CHUNK_SIZE + 1000, 7);
    big.write('tail', big.length - 4);
    async function* body() {
      for (let o = 0; o < big.length; o += 65536) yield big.subarray(o, o + 65536);
    }
    const res = await w.engine.writeFile(w.actor, 'streams', '/big.bin', body(), { sha256: sha(big), mode: 0o600 });
    assert.equal(res.uploadedChunks, 2);
    const again = await w.engine.writeFile(w.actor, 'streams', '/copy.bin', body());
    assert.equal(again.uploadedChunks, 0, 'stored chunks are reused');
    const collect = async (it: AsyncIterable<Uint8Array>) => {
      const parts = [];
      for await (const p of it) parts.push(p);
      return Buffer.concat(parts);
    };
    const whole = await w.engine.readFile(w.actor, 'streams', '/big.bin');
    assert.equal(whole.entry.mode, 0o600);
    assert.ok((await collect(whole.body)).equals(big));
    const across = await w.engine.readFile(w.actor, 'streams', '/big.bin', {
      range: { start: SMALL_CHUNK_SIZE - 2, end: big.length - 1 },
    });
    assert.ok((await collect(across.body)).equals(big.subarray(SMALL_CHUNK_SIZE - 2)));
    await assert.rejects(w.engine.readFile(w.actor, 'streams', '/big.bin', { range: { start: 0, end: big.length } }), {
      code: 'InvalidArgument',
    });
    await assert.rejects(w.engine.writeFile(w.actor, 'streams', '/bad.bin', body(), { sha256: 'f'.repeat(64) }), {
      code: 'InvalidArgument',
    });
    await assert.rejects(w.engine.stat(w.actor, 'streams', '/bad.bin'), { code: 'NotFound' });
  });

  it('stores small files in one pack, verifies every chunk in it, and reads them by range', async () => {
    await w.engine.createVolume(w.actor, 'packed');
    await writePacked(w, 'packed', { '/a.txt': 'alpha', '/b.txt': 'bravo!', '/c/d.txt': 'charlie' });
    assert.equal(await read(w, 'packed', '/b.txt'), 'bravo!');
    assert.equal(await read(w, 'packed', '/c/d.txt'), 'charlie');
    const rows = await w.md.getChunks([sha(Buffer.from('bravo!'))] as never[]);
    assert.equal(rows[0]!.offset, 5);
    assert.match(rows[0]!.objectKey, /^packs\//);
    // A manifest that claims a hash for other bytes is refused: chunks are shared, so a lie would poison others.
    await assert.rejects(
      writePacked(w, 'packed', { '/x': 'xxxx', '/y': 'yyyy' }, (m) => {
        m[1]!.hash = sha(Buffer.from('zzzz'));
      }),
      { code: 'InvalidArgument', message: /do not hash/ },
    );
    await assert.rejects(
      writePacked(w, 'packed', { '/x': 'xxxx', '/y': 'yyyy' }, (m) => {
        m[1]!.offset = 3;
      }),
      { code: 'InvalidArgument', message: /offset order/ },
    );
    await assert.rejects(w.engine.stat(w.actor, 'packed', '/x'), { code: 'NotFound' });
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

describe('engine attachments', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(async () => {
    await close(w);
  });

  it('leases run on the engine clock: renew extends by the lease, a lapsed RWO mount gives way', async () => {
    await w.engine.createVolume(w.actor, 'leased');
    const a = await w.engine.attach(w.actor, 'leased', { host: 'h1', path: '/m' });
    assert.equal(a.tokenExpiresAt.getTime(), w.clock.t + 60_000);
    const mount = await w.engine.authenticate(a.secret);
    assert.equal(mount.attachmentId, a.attachment.id);
    assert.equal(mount.volumeId, a.volume.id);
    w.clock.t += 30_000;
    const r = await w.engine.renewAttachment(mount, a.attachment.id);
    assert.equal(r.tokenExpiresAt.getTime(), w.clock.t + 60_000);
    await assert.rejects(w.engine.attach(w.actor, 'leased', { host: 'h2', path: '/m' }), { code: 'Conflict' });
    w.clock.t += 60_000;
    await assert.rejects(w.engine.authenticate(a.secret), { code: 'Unauthenticated' });
    const b = await w.engine.attach(w.actor, 'leased', { host: 'h2', path: '/m' });
    const all = await w.engine.listAttachments(w.actor, 'leased', { all: true });
    assert.deepEqual(
      all.map((x) => [x.id, x.state, x.reason]),
      [
        [a.attachment.id, 'failed', 'lease expired: the mount agent stopped renewing'],
        [b.attachment.id, 'mounted', null],
      ],
    );
    assert.equal((await w.md.getToken(mount.tokenId))?.revokedAt?.getTime(), w.clock.t);
  });
});

describe('engine tokens and tenants', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(async () => {
    await close(w);
  });

  it('refuses unknown, malformed, revoked and expired tokens', async () => {
    for (const bad of ['', 'garbage', 'tok_xxxxxxxxxxxxxxxxxxxx.secret', `${w.actor.tokenId}.wrong`]) {
      await assert.rejects(w.engine.authenticate(bad), { code: 'Unauthenticated' });
    }
    const { token, secret } = await w.engine.createToken(w.actor, { name: 'ci', expiresIn: 60 });
    assert.equal((await w.engine.authenticate(secret)).tokenId, token.id);
    w.clock.t += 61_000;
    await assert.rejects(w.engine.authenticate(secret), { code: 'Unauthenticated', message: /expired/ });
    const other = await w.engine.createToken(w.actor, { name: 'other' });
    await w.engine.revokeToken(w.actor, other.token.id);
    await assert.rejects(w.engine.authenticate(other.secret), { code: 'Unauthenticated', message: /revoked/ });
  });

  it('hides other tenants volumes as not found', async () => {
    await w.engine.createVolume(w.actor, 'private');
    const other = await w.engine.createTenant('globex');
    const them = await w.engine.authenticate(other.secret);
    await assert.rejects(w.engine.getVolume(them, 'private'), { code: 'NotFound' });
    await assert.rejects(w.engine.stat(them, 'private', '/'), { code: 'NotFound' });
    await assert.rejects(w.engine.deleteVolume(them, 'private'), { code: 'NotFound' });
    assert.deepEqual(await w.engine.listVolumes(them), []);
    await assert.rejects(w.engine.revokeToken(them, w.actor.tokenId), { code: 'NotFound' });
    // The same name in another tenant is a different volume.
    await w.engine.createVolume(them, 'private');
  });

  it('scopes volume tokens to one volume, read-only when asked', async () => {
    await w.engine.createVolume(w.actor, 'scoped');
    await w.engine.createVolume(w.actor, 'elsewhere');
    const ro = await w.engine.authenticate(
      (await w.engine.createToken(w.actor, { name: 'mount', volume: 'scoped', readOnly: true })).secret,
    );
    await w.engine.stat(ro, 'scoped', '/');
    await assert.rejects(w.engine.stat(ro, 'elsewhere', '/'), { code: 'NotFound' });
    await assert.rejects(w.engine.commit(ro, 'scoped', { changes: [{ op: 'mkdir', path: '/d' }] }), {
      code: 'ReadOnly',
    });
    await assert.rejects(w.engine.createVolume(ro, 'new'), { code: 'Forbidden' });
    assert.deepEqual(
      (await w.engine.listVolumes(ro)).map((v) => v.name),
      ['scoped'],
    );
  });
});

describe('garbage collection', () => {
  // A fresh world per test: each moves its clock ahead of the blob store's.
  let w: World;
  beforeEach(async () => {
    w = await world();
  });
  afterEach(async () => {
    await close(w);
  });
  const hour = 3_600_000;

  it('keeps what heads, snapshots and recent work reference, and sweeps the rest', async () => {
    await w.engine.createVolume(w.actor, 'keep');
    await w.engine.createVolume(w.actor, 'gone');
    await write(w, 'keep', '/k', 'kept bytes');
    await write(w, 'gone', '/g', 'doomed bytes');
    await write(w, 'gone', '/s', 'snapshotted bytes');
    await w.engine.createSnapshot(w.actor, 'gone', { name: 'snap' });
    await w.engine.commit(w.actor, 'gone', { changes: [{ op: 'delete', path: '/s' }] });
    // An upload that was never committed.
    const stray = await w.engine.prepareUpload(w.actor, 'keep', [{ hash: sha(Buffer.from('stray')), size: 5 }]);
    await w.blobs.put(stray.missing[0]!.key, Buffer.from('stray'));

    // Within the grace period nothing goes.
    const early = await w.engine.gc({ retention: 0 });
    assert.equal(early.deletedObjects, 0);

    w.clock.t += 2 * hour;
    await w.engine.deleteVolume(w.actor, 'gone');
    const dry = await w.engine.gc({ retention: 0, dryRun: true });
    assert.equal(dry.deletedObjects, 3, 'doomed + snapshotted (volume deleted) + stray');
    assert.equal((await w.md.listChunks()).length, 3, 'dry run deletes nothing');
    const report = await w.engine.gc({ retention: 0 });
    assert.equal(report.deletedObjects, 3);
    assert.equal(report.deletedChunks, 2);
    assert.equal(await read(w, 'keep', '/k'), 'kept bytes');
    const keys = [];
    for await (const o of w.blobs.list('chunks/')) keys.push(o.key);
    assert.equal(keys.length, 1);
  });

  it('protects chunks a commit in flight was told are present', async () => {
    await w.engine.createVolume(w.actor, 'flight');
    await write(w, 'flight', '/old', 'reused content');
    await w.engine.commit(w.actor, 'flight', { changes: [{ op: 'delete', path: '/old' }] });
    w.clock.t += 2 * hour;
    // A writer learns the chunk is present (touching it) ...
    const asked = await w.engine.prepareUpload(w.actor, 'flight', [
      { hash: sha(Buffer.from('reused content')), size: 14 },
    ]);
    assert.equal(asked.present, 1);
    // ... GC runs before its commit lands ...
    await w.engine.gc({ retention: 0 });
    // ... and the commit still finds its chunk.
    await write(w, 'flight', '/new', 'reused content');
    assert.equal(await read(w, 'flight', '/new'), 'reused content');
  });

  it('keeps a pack while any chunk in it lives, and deletes it with the last one', async () => {
    await w.engine.createVolume(w.actor, 'packgc');
    await writePacked(w, 'packgc', { '/one': 'first file', '/two': 'second file' });
    await w.engine.commit(w.actor, 'packgc', { changes: [{ op: 'delete', path: '/one' }] });
    w.clock.t += 2 * hour;
    const first = await w.engine.gc({ retention: 0 });
    assert.equal(first.deletedChunks, 1);
    assert.equal(first.deletedObjects, 0, 'the pack still holds /two');
    assert.equal(await read(w, 'packgc', '/two'), 'second file');
    await w.engine.commit(w.actor, 'packgc', { changes: [{ op: 'delete', path: '/two' }] });
    w.clock.t += 2 * hour;
    const second = await w.engine.gc({ retention: 0 });
    assert.equal(second.deletedObjects, 1);
    const left = [];
    for await (const o of w.blobs.list('packs/')) left.push(o.key);
    assert.deepEqual(left, []);
  });

  it('keeps snapshot data after the head moves on', async () => {
    await w.engine.createVolume(w.actor, 'snapgc');
    await write(w, 'snapgc', '/f', 'in snapshot');
    const snap = await w.engine.createSnapshot(w.actor, 'snapgc', { name: 's' });
    await write(w, 'snapgc', '/f', 'newer');
    w.clock.t += 2 * hour;
    await w.engine.gc({ retention: 0 });
    assert.equal(await read(w, 'snapgc', '/f', snap.commitId), 'in snapshot');
  });
});
