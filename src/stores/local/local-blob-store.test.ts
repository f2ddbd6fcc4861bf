/**
 * @module local-blob-store.test
 * The local store runs the BlobStore conformance suite on a real temporary
 * directory, then the checks only a directory needs: the on-disk layout,
 * crash leftovers, and keys that must not escape the root.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { runBlobStoreConformance } from '../blob-store.conformance.js';
import { LocalBlobStore, TEMP_DIR_NAME } from './local-blob-store.js';
import { UrlSigner } from './url-signer.js';

const signer = new UrlSigner({ secret: 'local blob store test secret', baseUrl: 'http://127.0.0.1:7420' });

runBlobStoreConformance('local', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-blob-'));
  const store = await LocalBlobStore.open({ dir: join(dir, 'blobs'), signer });
  return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('LocalBlobStore', () => {
  let root: string;
  let dir: string;
  let store: LocalBlobStore;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'stowage-blob-local-'));
    dir = join(root, 'blobs');
    store = await LocalBlobStore.open({ dir, signer });
  });

  afterEach(async () => {
    await store.close();
    await rm(root, { recursive: true, force: true });
  });

  const tempFiles = () => readdir(join(dir, TEMP_DIR_NAME));

  it('creates its directory at open and stores key at <dir>/<key>', async () => {
    assert.ok(existsSync(join(dir, TEMP_DIR_NAME)));
    await store.put('chunks/ab/abc', Buffer.from('hello'));
    assert.equal(await readFile(join(dir, 'chunks', 'ab', 'abc'), 'utf8'), 'hello');
    assert.deepEqual(await tempFiles(), []);
  });

  it('removes crash-left temp files older than the threshold, at open too', async () => {
    const stale = join(dir, TEMP_DIR_NAME, 'crashed-put');
    const fresh = join(dir, TEMP_DIR_NAME, 'recent-put');
    await writeFile(stale, 'half a body');
    await writeFile(fresh, 'still writing');
    const hourAgo = new Date(Date.now() - 2 * 3600_000);
    await utimes(stale, hourAgo, hourAgo);
    assert.equal(await store.removeStaleTemp(3600_000), 1);
    assert.deepEqual(await tempFiles(), ['recent-put']);

    await utimes(fresh, hourAgo, hourAgo);
    const reopened = await LocalBlobStore.open({ dir });
    assert.deepEqual(await tempFiles(), []);
    await reopened.close();
  });

  it('never removes the temp file of a put in flight', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    async function* slow(): AsyncGenerator<Uint8Array> {
      yield Buffer.from('first half ');
      await gate;
      yield Buffer.from('second half');
    }
    const putting = store.put('slow/key', slow());
    while ((await tempFiles()).length === 0) await new Promise((r) => setTimeout(r, 5));
    assert.equal(await store.removeStaleTemp(-60_000), 0);
    release();
    await putting;
    assert.equal(await readFile(join(dir, 'slow', 'key'), 'utf8'), 'first half second half');
  });

  it('leaves no temp file after any rejected put', async () => {
    async function* failing(): AsyncGenerator<Uint8Array> {
      yield Buffer.alloc(1000);
      throw new Error('boom');
    }
    await assert.rejects(() => store.put('x/a', failing()));
    await assert.rejects(() => store.put('x/b', Buffer.alloc(10), { maxSize: 5 }));
    await assert.rejects(() => store.put('x/c', Buffer.alloc(10), { size: 5 }));
    await assert.rejects(() => store.put('x/d', Buffer.alloc(10), { sha256: 'ab'.repeat(32) }));
    assert.deepEqual(await tempFiles(), []);
    assert.equal(existsSync(join(dir, 'x')), false);
  });

  it('names expected and actual values in sha256 and size mismatches', async () => {
    const body = Buffer.from('abc');
    const actual = createHash('sha256').update(body).digest('hex');
    const wrong = 'cd'.repeat(32);
    await assert.rejects(
      () => store.put('m/sha', body, { sha256: wrong }),
      (err: Error) => err.message.includes(wrong) && err.message.includes(actual),
    );
    await assert.rejects(() => store.put('m/size', body, { size: 4 }), /expected 4 bytes, got 3/);
  });

  it('keeps keys inside its directory and reserves the temp directory', async () => {
    for (const key of ['../escape', '../../escape', '/tmp/escape', 'a/../../escape']) {
      await assert.rejects(() => store.put(key, Buffer.from('x')), { code: 'InvalidArgument' });
    }
    assert.equal(existsSync(join(root, 'escape')), false);
    for (const key of [TEMP_DIR_NAME, `${TEMP_DIR_NAME}/x`]) {
      await assert.rejects(() => store.put(key, Buffer.from('x')), { code: 'InvalidArgument' });
      await assert.rejects(() => store.get(key), { code: 'InvalidArgument' });
    }
  });

  it('does not list temp files or stray files with invalid names', async () => {
    await writeFile(join(dir, TEMP_DIR_NAME, 'in-flight'), 'x');
    await writeFile(join(dir, 'has space'), 'x');
    await mkdir(join(dir, 'empty-dir'));
    await store.put('real', Buffer.from('x'));
    const keys: string[] = [];
    for await (const info of store.list('')) keys.push(info.key);
    assert.deepEqual(keys, ['real']);
    const tmpKeys: string[] = [];
    for await (const info of store.list(`${TEMP_DIR_NAME}/`)) tmpKeys.push(info.key);
    assert.deepEqual(tmpKeys, []);
  });

  it('refuses with Conflict a key that clashes with a stored prefix', async () => {
    await store.put('a', Buffer.from('file'));
    await assert.rejects(() => store.put('a/b', Buffer.from('x')), { code: 'Conflict' });
    await store.put('d/e', Buffer.from('x'));
    await assert.rejects(() => store.put('d', Buffer.from('x')), { code: 'Conflict' });
    assert.deepEqual(await tempFiles(), []);
    assert.equal(await readFile(join(dir, 'a'), 'utf8'), 'file');
  });

  it('removes directories emptied by delete, but never its root', async () => {
    await store.put('p/q/r', Buffer.from('x'));
    await store.put('p/s', Buffer.from('y'));
    await store.delete('p/q/r');
    assert.equal(existsSync(join(dir, 'p', 'q')), false);
    assert.ok(existsSync(join(dir, 'p', 's')));
    await store.delete('p/s');
    assert.equal(existsSync(join(dir, 'p')), false);
    await store.put('top', Buffer.from('z'));
    await store.delete('top');
    assert.ok(existsSync(dir));
  });

  it('serves a reader that opened before an overwrite from the old version', async () => {
    await store.put('v', Buffer.alloc(100_000, 1));
    const stream = await store.get('v');
    await store.put('v', Buffer.alloc(50, 2));
    const got = Buffer.concat(await stream.toArray());
    assert.ok(got.length === 100_000 && got.every((b) => b === 1));
  });

  it('serves any range of an empty object as no bytes', async () => {
    await store.put('empty', new Uint8Array(0));
    for (const range of [{ start: 0 }, { start: 0, end: 10 }, { start: 5 }]) {
      assert.equal(Buffer.concat(await (await store.get('empty', range)).toArray()).length, 0);
    }
  });

  it('works without open(), creating its directories on first put', async () => {
    const lazy = new LocalBlobStore({ dir: join(root, 'lazy') });
    assert.deepEqual(await lazy.head('k'), undefined);
    const keys: string[] = [];
    for await (const info of lazy.list('')) keys.push(info.key);
    assert.deepEqual(keys, []);
    await lazy.put('k', Buffer.from('v'));
    assert.equal(await readFile(join(root, 'lazy', 'k'), 'utf8'), 'v');
  });

  it('explains that it cannot sign without a signer', async () => {
    const unsigned = new LocalBlobStore({ dir });
    await assert.rejects(() => unsigned.sign('k', 'GET', { expiresIn: 60 }), /no URL signer/);
  });

  it('signs URLs the signer verifies', async () => {
    const req = await store.sign('chunks/ab/cd', 'PUT', { expiresIn: 60, size: 5 });
    const url = new URL(req.url);
    assert.equal(url.pathname, '/v1/blobs/chunks/ab/cd');
    assert.deepEqual(signer.verify({ method: 'PUT', key: 'chunks/ab/cd', query: url.searchParams }), { size: 5 });
  });
});
