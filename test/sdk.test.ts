/**
 * @module test/sdk.test
 * End-to-end tests of the SDK against a real server over loopback (real
 * SQLite file, real blob directory, signed URLs served by the server).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, utimesSync } from 'node:fs';
import { readdir, readFile, writeFile, mkdtemp, rm, open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  AlreadyExistsError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  QuotaExceededError,
  Stowage,
  StowageError,
  UnauthenticatedError,
  UnavailableError,
  Volume,
} from '@stowage/sdk';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { pattern } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let srv: TestServer;
let client: Stowage;
let work: string;
let seq = 0;

/** A fresh volume name per test. */
const fresh = (prefix = 'v'): string => `${prefix}-${process.pid}-${++seq}`;

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

async function collect(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const p of stream) parts.push(p as Buffer);
  return Buffer.concat(parts);
}

before(async () => {
  srv = await startTestServer();
  client = new Stowage({ url: srv.url, token: srv.token });
  work = await mkdtemp(join(tmpdir(), 'stowage-sdk-test-'));
});

after(async () => {
  await srv?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

describe('volumes', () => {
  test('mintIfMissing twice gives the same volume', async () => {
    const name = fresh();
    const a = await Volume.get(name, { mintIfMissing: true, client, cap: '64M' });
    const b = await Volume.get(name, { mintIfMissing: true, client });
    assert.equal(a.id, b.id);
    assert.equal(a.info.cap, 64 * MiB);
  });

  test('concurrent mintIfMissing calls yield one volume', async () => {
    const name = fresh();
    const vols = await Promise.all(Array.from({ length: 8 }, () => Volume.get(name, { mintIfMissing: true, client })));
    assert.equal(new Set(vols.map((v) => v.id)).size, 1);
  });

  test('get of a missing volume is NotFoundError; create of an existing one is AlreadyExistsError', async () => {
    const name = fresh();
    await assert.rejects(Volume.get(name, { client }), (e) => e instanceof NotFoundError && e.code === 'NotFound');
    await Volume.create(name, { client });
    await assert.rejects(Volume.create(name, { client }), (e) => e instanceof AlreadyExistsError);
  });

  test('bad volume names are refused before any request', async () => {
    const offline = new Stowage({ url: 'http://127.0.0.1:1', token: 'x' });
    for (const bad of ['', 'UPPER', '../x', 'a/b', '-lead', 'x'.repeat(64)]) {
      await assert.rejects(Volume.get(bad, { client: offline }), (e) => e instanceof InvalidArgumentError, bad);
    }
  });

  test('list shows created volumes; delete removes them', async () => {
    const name = fresh();
    const v = await Volume.create(name, { client, accessMode: 'RWX' });
    const listed = await Volume.list({ client });
    assert.ok(listed.some((x) => x.name === name && x.id === v.id && x.info.accessMode === 'RWX'));
    await v.delete();
    await assert.rejects(Volume.get(name, { client }), NotFoundError);
  });

  test('resize changes the cap and a write over the cap fails naming cap and size', async () => {
    const v = await Volume.create(fresh(), { client, cap: '8M' });
    await v.files.write('/small', pattern(4 * MiB));
    await assert.rejects(v.files.write('/more', pattern(6 * MiB, 2)), (e) => {
      assert.ok(e instanceof QuotaExceededError);
      assert.match(e.message, /8 MiB/);
      assert.match(e.message, /10 MiB/);
      assert.equal(e.details?.cap, 8 * MiB);
      return true;
    });
    const info = await v.resize('16M');
    assert.equal(info.cap, 16 * MiB);
    await v.files.write('/more', pattern(6 * MiB, 2));
    assert.equal((await v.refresh()).size, 10 * MiB);
  });
});

describe('files', () => {
  test('round-trips a string', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    const r = await v.files.write('/notes/hello.txt', 'héllo wörld\n');
    assert.equal(r.size, Buffer.byteLength('héllo wörld\n'));
    assert.equal(r.chunks, 1);
    assert.equal((await v.files.read('/notes/hello.txt')).toString('utf8'), 'héllo wörld\n');
    assert.equal(v.info.head, r.commit.id, 'the handle learns its new head');
  });

  test('round-trips bytes, including an empty file', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    const data = Uint8Array.from([0, 1, 2, 255, 0, 0, 7]);
    await v.files.write('/bin', data, { mode: 0o600, mtime: 1_700_000_000_000 });
    assert.deepEqual(new Uint8Array(await v.files.read('/bin')), data);
    const st = await v.files.stat('/bin');
    assert.equal(st.type, 'file');
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.mtime, 1_700_000_000_000);
    const empty = await v.files.write('/empty', '');
    assert.equal(empty.chunks, 0);
    assert.equal((await v.files.read('/empty')).length, 0);
    assert.equal((await collect(v.files.readStream('/empty'))).length, 0);
  });

  test('writeFile uploads a 20 MiB file in chunks and reads it back whole and streamed', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    const data = pattern(20 * MiB + 3, 42);
    const local = join(work, 'twenty.bin');
    await writeFile(local, data);
    const phases = new Set<string>();
    const r = await v.files.writeFile('/data/twenty.bin', local, { onProgress: (e) => phases.add(e.phase) });
    assert.equal(r.size, data.length);
    assert.equal(r.chunks, 3);
    assert.equal(r.uploadedChunks, 3);
    assert.equal(r.uploadedBytes, data.length);
    assert.ok(phases.has('hash') && phases.has('upload'));
    const st = await v.files.stat('/data/twenty.bin');
    assert.equal(st.size, data.length);
    assert.equal(st.chunkSize, 8 * MiB);
    assert.deepEqual(st.chunks, [
      sha(data.subarray(0, 8 * MiB)),
      sha(data.subarray(8 * MiB, 16 * MiB)),
      sha(data.subarray(16 * MiB)),
    ]);
    assert.ok((await v.files.read('/data/twenty.bin')).equals(data));
    assert.ok((await collect(v.files.readStream('/data/twenty.bin'))).equals(data));
  });

  test('re-writing an unchanged file uploads 0 chunks; changing one byte uploads one chunk', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    const data = pattern(20 * MiB, 7);
    const local = join(work, 'same.bin');
    await writeFile(local, data);
    const first = await v.files.writeFile('/same.bin', local);
    assert.equal(first.uploadedChunks, 3);
    const again = await v.files.writeFile('/same.bin', local);
    assert.equal(again.uploadedChunks, 0);
    assert.equal(again.uploadedBytes, 0);
    assert.equal(again.chunks, 3);
    // The same content under another path or volume is not sent either.
    const other = await Volume.get(fresh(), { mintIfMissing: true, client });
    assert.equal((await other.files.writeFile('/copy.bin', local)).uploadedBytes, 0);
    // Rewrite one byte inside the middle chunk: only that chunk travels.
    const fh = await open(local, 'r+');
    await fh.write(Buffer.from([data[10 * MiB]! ^ 0xff]), 0, 1, 10 * MiB);
    await fh.close();
    const changed = await v.files.writeFile('/same.bin', local);
    assert.equal(changed.uploadedChunks, 1);
    assert.equal(changed.uploadedBytes, 8 * MiB);
    const back = await v.files.read('/same.bin');
    assert.equal(back[10 * MiB], data[10 * MiB]! ^ 0xff);
  });

  test('writes a stream of unknown length (Readable and async iterable)', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    const data = pattern(17 * MiB + 12345, 9);
    const pieces: Buffer[] = [];
    for (let at = 0; at < data.length; at += 1_000_003) pieces.push(data.subarray(at, at + 1_000_003));
    const r = await v.files.write('/stream.bin', Readable.from(pieces));
    assert.equal(r.size, data.length);
    assert.equal(r.chunks, 3);
    assert.ok((await v.files.read('/stream.bin')).equals(data));
    async function* gen(): AsyncGenerator<Uint8Array> {
      yield new TextEncoder().encode('from ');
      yield new TextEncoder().encode('a generator');
    }
    await v.files.write('/gen.txt', gen());
    assert.equal((await v.files.read('/gen.txt')).toString(), 'from a generator');
    // Same bytes again as a stream: nothing is uploaded.
    const again = await v.files.write('/stream2.bin', Readable.from(pieces));
    assert.equal(again.uploadedChunks, 0);
  });

  test('list, stat, exists, mkdir, move and remove', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    await v.files.writeMany([
      { path: '/a/one.txt', data: '1' },
      { path: '/a/b/two.txt', data: '22' },
      { path: '/top.txt', data: 'top' },
    ]);
    assert.deepEqual((await v.files.list('/')).map((e) => `${e.type}:${e.name}`).sort(), ['dir:a', 'file:top.txt']);
    assert.deepEqual((await v.files.list('/a', { recursive: true })).map((e) => e.path).sort(), [
      '/a/b',
      '/a/b/two.txt',
      '/a/one.txt',
    ]);
    const dir = await v.files.stat('/a');
    assert.equal(dir.type, 'dir');
    assert.equal(dir.size, 3);
    assert.equal(await v.files.exists('/a/one.txt'), true);
    assert.equal(await v.files.exists('/nope'), false);
    await v.files.mkdir('/empty/dir');
    assert.equal((await v.files.stat('/empty/dir')).type, 'dir');
    await v.files.move('/top.txt', '/a/top.txt');
    assert.equal((await v.files.read('/a/top.txt')).toString(), 'top');
    await assert.rejects(v.files.remove('/a'), StowageError);
    await v.files.remove('/a', { recursive: true });
    assert.equal(await v.files.exists('/a'), false);
    await assert.rejects(v.files.remove('/a'), NotFoundError);
    await v.files.remove('/a', { force: true });
    await assert.rejects(v.files.read('/missing.txt'), NotFoundError);
    await assert.rejects(v.files.remove('/'), InvalidArgumentError);
  });

  test('createParents: false refuses a write under a missing directory', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    await assert.rejects(v.files.write('/no/such/dir/f', 'x', { createParents: false }), StowageError);
    assert.equal(await v.files.exists('/no'), false);
  });

  test('hostile paths are refused with InvalidArgumentError', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    for (const bad of ['relative', '../x', '/a/../b', '/a//b', '/a/', '/a\0b', '']) {
      await assert.rejects(v.files.write(bad, 'x'), InvalidArgumentError, JSON.stringify(bad));
      await assert.rejects(v.files.read(bad), InvalidArgumentError, JSON.stringify(bad));
    }
  });

  test('reads at an older commit', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    const one = await v.files.write('/f', 'one');
    await v.files.write('/f', 'two');
    assert.equal((await v.files.read('/f')).toString(), 'two');
    assert.equal((await v.files.read('/f', { commit: one.commit.id })).toString(), 'one');
    assert.equal((await collect(v.files.readStream('/f', { commit: one.commit.id }))).toString(), 'one');
  });

  test('a chunk damaged in the store is detected, never handed out', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    const data = pattern(1000, 77);
    await v.files.write('/victim', data);
    const hash = sha(data);
    const file = await findBlob(join(srv.dataDir, 'blobs'), hash);
    assert.ok(file, 'the chunk is stored under its hash');
    const bytes = await readFile(file);
    bytes[0] = bytes[0]! ^ 0xff;
    await writeFile(file, bytes);
    await assert.rejects(v.files.read('/victim'), (e) => e instanceof InternalError && /verification/.test(e.message));
    await assert.rejects(collect(v.files.readStream('/victim')), InternalError);
  });
});

describe('commit protocol', () => {
  /** Makes every stored copy of a chunk look older than the upload window, as if the commit came too late. */
  // Synchronous on purpose: it runs inside the progress callback, before the SDK sends the commit.
  function expireUploads(hash: string): void {
    const old = new Date(Date.now() - 2 * 3600_000);
    for (const entry of readdirSync(join(srv.dataDir, 'blobs'), { withFileTypes: true, recursive: true })) {
      if (entry.isFile() && entry.name.startsWith(hash))
        utimesSync(join(entry.parentPath ?? entry.path, entry.name), old, old);
    }
  }

  test('uploads that expired before the commit are sent again once, and the write succeeds', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    const data = pattern(3000, 99);
    let expired = false;
    const r = await v.files.write('/late', data, {
      onProgress: (e) => {
        if (e.phase === 'upload' && !expired) {
          expired = true;
          expireUploads(sha(data));
        }
      },
    });
    assert.equal(expired, true);
    assert.equal(r.uploadedChunks, 2, 'the chunk travelled twice: once expired, once for the retried commit');
    assert.ok((await v.files.read('/late')).equals(data));
  });

  test('a stream whose uploads expired fails with a clear PreconditionFailed', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    const data = pattern(2000, 98);
    await assert.rejects(
      v.files.write('/late-stream', Readable.from([data]), {
        onProgress: (e) => {
          if (e.phase === 'upload') expireUploads(sha(data));
        },
      }),
      (e) =>
        e instanceof StowageError && e.code === 'PreconditionFailed' && /stream cannot be read twice/.test(e.message),
    );
  });
});

/** Finds the stored object whose name starts with a chunk hash. */
async function findBlob(dir: string, hash: string): Promise<string | undefined> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.startsWith(hash)) return join(entry.parentPath ?? entry.path, entry.name);
  }
  return undefined;
}

describe('history', () => {
  test('snapshot, restore and history', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    await v.files.write('/state', 'v1');
    const snap = await v.snapshot('v1');
    assert.equal(snap.name, 'v1');
    await v.files.write('/state', 'v2');
    await v.files.write('/extra', 'x');
    assert.deepEqual(
      (await v.snapshots()).map((s) => s.name),
      ['v1'],
    );
    const restored = await v.restore('v1');
    assert.equal(v.info.head, restored.commit.id);
    assert.equal((await v.files.read('/state')).toString(), 'v1');
    assert.equal(await v.files.exists('/extra'), false);
    await v.restore({ name: 'v1' });
    const { commits } = await v.history({ limit: 100 });
    assert.ok(commits.length >= 5);
    assert.ok(commits[0]!.seq > commits[1]!.seq, 'newest first');
    const page = await v.history({ limit: 2 });
    assert.equal(page.commits.length, 2);
    assert.notEqual(page.nextBefore, null);
    const next = await v.history({ limit: 2, before: page.nextBefore! });
    assert.ok(next.commits.every((c) => c.seq < page.commits[1]!.seq));
    // History keeps the overwritten version: restore to a commit id.
    const v2 = commits.find((c) => c.message === 'write /state' && c.paths.includes('/state'));
    assert.ok(v2);
    await v.deleteSnapshot('v1');
    assert.deepEqual(await v.snapshots(), []);
    await assert.rejects(v.restore('v1'), NotFoundError);
  });

  test('fork is copy-on-write: later writes on either side stay invisible to the other', async () => {
    const src = await Volume.get(fresh(), { mintIfMissing: true, client });
    await src.files.write('/shared', 'base');
    await src.snapshot('s1');
    await src.files.write('/shared', 'after-snapshot');
    const f = await src.fork(fresh('fork'));
    assert.notEqual(f.id, src.id);
    assert.equal((await f.files.read('/shared')).toString(), 'after-snapshot');
    await f.files.write('/shared', 'fork-change');
    await src.files.write('/only-src', 'x');
    assert.equal((await src.files.read('/shared')).toString(), 'after-snapshot');
    assert.equal(await f.files.exists('/only-src'), false);
    const fromSnap = await src.fork(fresh('fork'), { snapshot: 's1' });
    assert.equal((await fromSnap.files.read('/shared')).toString(), 'base');
  });

  test('commitChanges publishes low-level changes', async () => {
    const v = await Volume.get(fresh(), { mintIfMissing: true, client });
    await v.files.write('/a', 'a');
    const res = await v.commitChanges(
      [
        { op: 'move', from: '/a', to: '/b' },
        { op: 'mkdir', path: '/d' },
      ],
      { message: 'tidy' },
    );
    assert.equal(res.commit.message, 'tidy');
    assert.equal((await v.files.read('/b')).toString(), 'a');
    // A put naming a chunk nobody uploaded is refused.
    await assert.rejects(
      v.commitChanges([{ op: 'put', path: '/ghost', size: 3, chunkSize: 8 * MiB, chunks: ['0'.repeat(64)] }]),
      StowageError,
    );
  });
});

describe('client', () => {
  test('a bad token is UnauthenticatedError', async () => {
    const bad = new Stowage({ url: srv.url, token: 'not-a-token' });
    await assert.rejects(Volume.list({ client: bad }), (e) => e instanceof UnauthenticatedError);
    const none = new Stowage({ url: srv.url, token: '' });
    await assert.rejects(Volume.list({ client: none }), UnauthenticatedError);
  });

  test('an unreachable server is UnavailableError naming the URL', async () => {
    const off = new Stowage({ url: 'http://127.0.0.1:9', token: 'x' });
    await assert.rejects(
      Volume.list({ client: off }),
      (e) => e instanceof UnavailableError && e.message.startsWith('cannot reach Stowage at http://127.0.0.1:9'),
    );
  });

  test('a scoped read-only token reads its volume only', async () => {
    const mine = await Volume.get(fresh(), { mintIfMissing: true, client });
    const other = await Volume.get(fresh(), { mintIfMissing: true, client });
    await mine.files.write('/r', 'readable');
    const { secret } = await client.createToken({ name: 'reader', volume: mine.name, readOnly: true });
    const scoped = new Stowage({ url: srv.url, token: secret });
    const seen = await Volume.get(mine.name, { client: scoped });
    assert.equal((await seen.files.read('/r')).toString(), 'readable');
    await assert.rejects(
      seen.files.write('/w', 'no'),
      (e) => e instanceof StowageError && (e.code === 'ReadOnly' || e.code === 'Forbidden'),
    );
    await assert.rejects(Volume.get(other.name, { client: scoped }), NotFoundError);
  });

  test('tokens can be created, listed and revoked', async () => {
    const { token, secret } = await client.createToken({ name: 'temp', expiresIn: 3600 });
    assert.ok((await client.listTokens()).some((t) => t.id === token.id));
    const temp = new Stowage({ url: srv.url, token: secret });
    assert.equal((await temp.tenant()).name, (await client.tenant()).name);
    await client.revokeToken(token.id);
    await assert.rejects(temp.tenant(), UnauthenticatedError);
  });

  test('Stowage reads STOWAGE_URL and STOWAGE_TOKEN', () => {
    const saved = { url: process.env.STOWAGE_URL, token: process.env.STOWAGE_TOKEN };
    try {
      process.env.STOWAGE_URL = 'http://example.invalid:1234/';
      process.env.STOWAGE_TOKEN = 'tok';
      const s = Stowage.fromEnv();
      assert.equal(s.url, 'http://example.invalid:1234');
      assert.equal(s.hasToken, true);
      assert.throws(() => new Stowage({ url: 'ftp://x' }), InvalidArgumentError);
    } finally {
      for (const [k, v] of [
        ['STOWAGE_URL', saved.url],
        ['STOWAGE_TOKEN', saved.token],
      ] as const) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    }
  });
});
