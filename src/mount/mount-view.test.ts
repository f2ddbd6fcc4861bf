/**
 * The mount view's logic over a real overlay (SQLite file, data files) and a
 * real chunk cache on disk, with an in-memory stand-in for the server: lazy
 * listing, chunk-level dirtiness, the commit a journal amounts to, and replay
 * after a restart. The FUSE end of it is tested through real mounts in
 * test/mount*.test.ts.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as wire from '@stowage/sdk/api/wire.js';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { NotFoundError } from '@stowage/sdk/common/errors.js';
import { ChunkCache } from './chunk-cache.js';
import { buildCommit } from './commit-builder.js';
import { MountView } from './mount-view.js';
import { OverlayStore } from './overlay-store.js';
import type { RemoteSource } from './remote.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MiB = 1024 * 1024;

/** A base commit held in memory: files by path, chunks by hash; counts what the view asks for. */
class FakeRemote implements RemoteSource {
  readonly files = new Map<string, Buffer>();
  readonly dirs = new Set<string>(['/']);
  readonly chunks = new Map<string, Buffer>();
  listed: string[] = [];
  fetched = 0;

  addFile(path: string, data: Buffer): void {
    this.files.set(path, data);
    const parts = path.split('/').filter(Boolean);
    for (let i = 1; i < parts.length; i++) this.dirs.add('/' + parts.slice(0, i).join('/'));
    for (let o = 0; o < data.length; o += SMALL_CHUNK_SIZE) {
      const piece = data.subarray(o, o + SMALL_CHUNK_SIZE);
      this.chunks.set(sha(piece), Buffer.from(piece));
    }
  }

  info(path: string): wire.FileInfo {
    const name = path.split('/').pop()!;
    const data = this.files.get(path);
    if (!data) return { path, name, type: 'dir', mode: 0o755, mtime: 1000, size: 0 };
    const chunks: string[] = [];
    for (let o = 0; o < data.length; o += SMALL_CHUNK_SIZE) chunks.push(sha(data.subarray(o, o + SMALL_CHUNK_SIZE)));
    return {
      path,
      name,
      type: 'file',
      mode: 0o644,
      mtime: 1000,
      size: data.length,
      chunkSize: SMALL_CHUNK_SIZE,
      chunks,
    };
  }

  async list(_commit: string, path: string): Promise<wire.FileInfo[]> {
    this.listed.push(path);
    if (!this.dirs.has(path)) throw new NotFoundError(path);
    const prefix = path === '/' ? '/' : path + '/';
    const names = new Set<string>();
    for (const p of [...this.files.keys(), ...this.dirs]) {
      if (p !== path && p.startsWith(prefix)) names.add(p.slice(prefix.length).split('/')[0]!);
    }
    return [...names].sort().map((n) => this.info(prefix + n));
  }

  async fetchChunk(_commit: string, _path: string, _index: number, hash: string): Promise<Uint8Array> {
    this.fetched++;
    return this.chunks.get(hash)!;
  }
}

describe('mount view', () => {
  let dir: string;
  let remote: FakeRemote;
  let overlay: OverlayStore;
  let cache: ChunkCache;

  const open = async (): Promise<MountView> => {
    const view = new MountView(
      { remote, overlay, cache, base: () => 'c0', prefetch: 0, subpath: '/', readOnly: false },
      { mode: 0o755, uid: null, gid: null, atime: 0n, mtime: 0n, ctime: 0n },
    );
    await view.replay(overlay.journal());
    return view;
  };
  const readAll = async (view: MountView, path: string): Promise<Buffer> => {
    const node = await view.resolve(path);
    assert.equal(node.type, 'file');
    if (node.type !== 'file') throw new Error('not a file');
    const buf = Buffer.alloc(node.size);
    for (let at = 0; at < node.size; at += 128 * 1024)
      await view.content.read(node, buf.subarray(at), Math.min(128 * 1024, node.size - at), at);
    return buf;
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stowage-view-'));
    remote = new FakeRemote();
    overlay = OverlayStore.open(join(dir, 'overlay'));
    cache = await ChunkCache.open(join(dir, 'cache'), 64 * MiB);
  });
  afterEach(() => {
    overlay.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists only the directories on the path it visits, and fetches no bytes for it', async () => {
    remote.addFile('/a/b/c.txt', Buffer.from('hello'));
    remote.addFile('/x/y/z.txt', Buffer.from('other'));
    const view = await open();
    const node = await view.resolve('/a/b/c.txt');
    assert.equal(node.type, 'file');
    assert.deepEqual(remote.listed, ['/', '/a', '/a/b']);
    assert.equal(remote.fetched, 0);
    assert.equal((await readAll(view, '/a/b/c.txt')).toString(), 'hello');
    assert.equal(remote.fetched, 1);
  });

  it('a 1-byte change in a 3-chunk file dirties one chunk, and the commit hashes only it', async () => {
    const data = Buffer.alloc(20 * MiB, 7);
    remote.addFile('/big', data);
    const view = await open();
    const node = await view.writableFile('/big');
    await view.content.write(node, Buffer.from('X'), 1, 9 * MiB + 5);
    const built = await buildCommit(view, overlay.journal());
    assert.equal(built.localChunks, 1);
    const put = built.changes.at(-1) as Extract<wire.Change, { op: 'put' }>;
    const expect = Buffer.from(data);
    expect[9 * MiB + 5] = 'X'.charCodeAt(0);
    assert.deepEqual(
      put.chunks,
      [0, 1, 2].map((i) => sha(expect.subarray(i * SMALL_CHUNK_SIZE, (i + 1) * SMALL_CHUNK_SIZE))),
    );
    assert.ok((await readAll(view, '/big')).equals(expect));
  });

  it('appending after a full final chunk adds only the new tail chunk', async () => {
    remote.addFile('/two', Buffer.alloc(16 * MiB, 1));
    const view = await open();
    const node = await view.writableFile('/two');
    await view.content.write(node, Buffer.from('tail'), 4, 16 * MiB);
    const built = await buildCommit(view, overlay.journal());
    assert.equal(built.localChunks, 1);
    assert.equal(remote.fetched, 0, 'no base chunk had to be copied');
    const put = built.changes.at(-1) as Extract<wire.Change, { op: 'put' }>;
    assert.equal(put.size, 16 * MiB + 4);
    assert.equal(put.chunks[2], sha(Buffer.from('tail')));
  });

  it('shrinking into a chunk and growing again reads zeros, never stale base bytes', async () => {
    remote.addFile('/f', Buffer.from('abcdefghij'));
    const view = await open();
    await view.truncate('/f', 3);
    await view.truncate('/f', 6);
    assert.deepEqual(await readAll(view, '/f'), Buffer.from('abc\0\0\0'));
  });

  it('turns the journal into ordered changes: a new file is put where it was made, then moved', async () => {
    remote.addFile('/dir/keep.txt', Buffer.from('k'));
    const view = await open();
    const f = await view.create('/new.txt', 0o644);
    await view.content.write(f, Buffer.from('fresh'), 5, 0);
    await view.rename('/new.txt', '/dir/moved.txt');
    await view.rename('/dir', '/dir2');
    await view.mkdir('/empty', 0o700);
    await view.unlink('/dir2/keep.txt');
    const { changes } = await buildCommit(view, overlay.journal());
    assert.deepEqual(
      changes.map((c) => (c.op === 'move' ? `move ${c.from} ${c.to}` : `${c.op} ${c.path}`)),
      [
        'put /new.txt',
        'move /new.txt /dir/moved.txt',
        'move /dir /dir2',
        'mkdir /empty',
        'delete /dir2/keep.txt',
        'put /dir2/moved.txt',
      ],
    );
    const put = changes[0] as Extract<wire.Change, { op: 'put' }>;
    assert.deepEqual(put.chunks, [sha(Buffer.from('fresh'))], 'the early put carries the final content');
  });

  it('replays the overlay after a restart: same tree, same bytes, same commit', async () => {
    remote.addFile('/docs/a.txt', Buffer.from('base a'));
    const view = await open();
    const f = await view.create('/docs/b.txt', 0o600);
    await view.content.write(f, Buffer.from('local b'), 7, 0);
    const a = await view.writableFile('/docs/a.txt');
    await view.content.write(a, Buffer.from('A'), 1, 0);
    await view.rename('/docs', '/papers');
    await view.chmod('/papers/a.txt', 0o640);
    const before = await buildCommit(view, overlay.journal());
    view.closeAll();

    const again = await open();
    assert.equal((await readAll(again, '/papers/a.txt')).toString(), 'Aase a');
    assert.equal((await readAll(again, '/papers/b.txt')).toString(), 'local b');
    const node = await again.resolve('/papers/a.txt');
    assert.equal(node.mode, 0o640);
    const after = await buildCommit(again, overlay.journal());
    // A local file's times come back from its data file, which the OS stamped a moment before the view did.
    const noMtime = (cs: wire.Change[]) =>
      cs.map((c) => ({
        ...c,
        mtime: undefined,
        mtimeNs: undefined,
        atime: undefined,
        atimeNs: undefined,
        ctime: undefined,
        ctimeNs: undefined,
      }));
    assert.deepEqual(noMtime(after.changes), noMtime(before.changes));
  });

  it('thousands of local files hold no descriptor each: writes, reads, the commit and a replay stay within openFiles', async () => {
    const fdsNow = () => readdirSync('/proc/self/fd').length;
    const bounded = async (): Promise<MountView> => {
      const view = new MountView(
        { remote, overlay, cache, base: () => 'c0', prefetch: 0, subpath: '/', readOnly: false, openFiles: 4 },
        { mode: 0o755, uid: null, gid: null, atime: 0n, mtime: 0n, ctime: 0n },
      );
      await view.replay(overlay.journal());
      return view;
    };
    const view = await bounded();
    const start = fdsNow();
    for (let i = 0; i < 2000; i++) {
      const f = await view.create(`/f${i}`, 0o644);
      await view.content.write(f, Buffer.from(`data ${i}`), `data ${i}`.length, 0);
      await view.content.setMtime(f, BigInt(1_000_000 + i) * 1_000_000n);
      if (i % 3 === 0) await view.truncate(`/f${i}`, 3);
    }
    assert.ok(fdsNow() - start <= 4, `${fdsNow() - start} descriptors held by 2,000 dirty files`);
    assert.equal((await readAll(view, '/f1')).toString(), 'data 1');
    assert.equal((await readAll(view, '/f3')).toString(), 'dat');
    const built = await buildCommit(view, overlay.journal());
    assert.equal(built.files.length, 2000);
    assert.ok(fdsNow() - start <= 4, 'hashing every file for the commit stays within the bound');
    view.closeAll();
    assert.ok(fdsNow() <= start, 'closeAll gives every descriptor back');

    // A restart replays all 2,000 without opening them; their size and mtime come from a stat.
    const again = await bounded();
    assert.ok(fdsNow() <= start, 'the replay opened no data file');
    const node = await again.resolve('/f7');
    assert.equal(node.type === 'file' && node.size, 'data 7'.length);
    const want = 1_000_007n * 1_000_000n; // ms in ns: the data file's clock keeps microseconds
    assert.ok(node.mtime - want < 2_000n && want - node.mtime < 2_000n, `mtime ${node.mtime}`);
    assert.equal((await readAll(again, '/f1999')).toString(), 'data 1999');
    again.closeAll();
  });

  it('reset(base, keep) leaves the data files of open handles until release; a reopened overlay sweeps them', async () => {
    const view = await open();
    const kept = await view.create('/open.txt', 0o644);
    await view.content.write(kept, Buffer.from('still open'), 10, 0);
    const gone = await view.create('/closed.txt', 0o644);
    await view.content.write(gone, Buffer.from('closed'), 6, 0);
    view.closeAll();
    overlay.reset('c1', new Set([kept.local!.dataId, 'not-a-data-file']));
    assert.deepEqual(overlay.journal(), [], 'the overlay itself is clean');
    assert.equal(overlay.getFile(kept.local!.dataId), undefined);
    assert.equal(
      readFileSync(overlay.dataPath(kept.local!.dataId), 'utf8'),
      'still open',
      'the kept handle still reads its bytes',
    );
    assert.equal(existsSync(overlay.dataPath(gone.local!.dataId)), false);
    assert.deepEqual([...overlay.kept()], [kept.local!.dataId], 'only data files that exist are kept');
    // A release of a live overlay file (or a path-like id) deletes nothing.
    const second = await open();
    const live = await second.create('/new.txt', 0o644);
    await second.content.write(live, Buffer.from('new'), 3, 0);
    overlay.release(live.local!.dataId);
    overlay.release('../overlay.db');
    assert.ok(existsSync(overlay.dataPath(live.local!.dataId)));
    assert.ok(existsSync(join(dir, 'overlay', 'overlay.db')));
    overlay.release(kept.local!.dataId);
    assert.equal(existsSync(overlay.dataPath(kept.local!.dataId)), false, 'released: deleted');

    // Kept files do not outlive the agent: no handle survives a restart.
    overlay.reset('c2', new Set([live.local!.dataId]));
    assert.ok(existsSync(overlay.dataPath(live.local!.dataId)));
    overlay.close();
    overlay = OverlayStore.open(join(dir, 'overlay'));
    assert.equal(existsSync(overlay.dataPath(live.local!.dataId)), false, 'swept on open');
  });

  it('refuses POSIX-invalid changes with the errno the kernel expects', async () => {
    remote.addFile('/d/f', Buffer.from('x'));
    const view = await open();
    await assert.rejects(view.rmdir('/d'), { code: 'ENOTEMPTY' });
    await assert.rejects(view.unlink('/d'), { code: 'EISDIR' });
    await assert.rejects(view.mkdir('/d', 0o755), { code: 'EEXIST' });
    await assert.rejects(view.rename('/d', '/d/f/inside'), { code: 'ENOTDIR' });
    await assert.rejects(view.rename('/d', '/d/sub'), { code: 'EINVAL' });
    await assert.rejects(view.resolve('/missing/x'), { code: 'ENOENT' });
    await assert.rejects(view.create('/' + 'n'.repeat(256), 0o644), { code: 'ENAMETOOLONG' });
  });
});
