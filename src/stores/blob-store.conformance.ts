/**
 * @module blob-store.conformance
 * The contract test of BlobStore. Every implementation (memory, local
 * directory, S3) runs it unchanged from its own test file, so it uses nothing
 * but the BlobStore interface and the error codes the contract names.
 *
 * Each test gets a fresh, empty store from `open`; after the test the suite
 * calls `store.close()` and then `cleanup()`, which removes what was stored.
 *
 * @example
 * runBlobStoreConformance('memory', async () => ({ store: new MemoryBlobStore(), cleanup: async () => {} }));
 */
import { freshStorePerTest, type OpenedStore } from './conformance-harness.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { BlobInfo, BlobStore } from './blob-store.js';

/** A store under test and how to get rid of it. */
export type OpenedBlobStore = OpenedStore<BlobStore>;

const MiB = 1024 * 1024;

/** Deterministic bytes: the same (length, seed) always gives the same content. */
function pattern(length: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(Buffer.from(chunk as Uint8Array));
  return Buffer.concat(parts);
}

async function getBytes(store: BlobStore, key: string, range?: { start: number; end?: number }): Promise<Buffer> {
  return readAll(await store.get(key, range));
}

/** Every entry of a listing (exported for wrapper tests that list through a wrapped store). */
export async function listAll(store: BlobStore, prefix: string): Promise<BlobInfo[]> {
  const out: BlobInfo[] = [];
  for await (const info of store.list(prefix)) out.push(info);
  return out;
}

/** Yields `data` in slices of `size`, pausing between them as a network body would. */
async function* slices(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let off = 0; off < data.length; off += size) {
    await yieldToLoop();
    yield data.subarray(off, off + size);
  }
}

/** Generates `total` deterministic bytes on the fly, never holding more than one chunk. */
async function* generated(total: number, chunkSize = 256 * 1024): AsyncGenerator<Uint8Array> {
  let seed = 0;
  for (let left = total; left > 0; left -= chunkSize) yield pattern(Math.min(chunkSize, left), seed++);
}

async function hashOf(chunks: AsyncIterable<Uint8Array>): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const c of chunks) {
    h.update(c);
    size += c.byteLength;
  }
  return { sha256: h.digest('hex'), size };
}

async function rejectsWithCode(fn: () => Promise<unknown>, code: string, what: string): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, code, `${what}: expected error code ${code}, got ${String(err)}`);
    return true;
  });
}

/** Registers the BlobStore contract tests for one implementation. */
export function runBlobStoreConformance(name: string, open: () => Promise<OpenedBlobStore>): void {
  describe(`BlobStore conformance: ${name}`, () => {
    let store: BlobStore;
    freshStorePerTest(open, (s) => {
      store = s;
    });

    describe('put and get', () => {
      it('round-trips a Uint8Array body', async () => {
        const data = new Uint8Array(pattern(1000));
        const info = await store.put('obj/bytes', data);
        assert.equal(info.key, 'obj/bytes');
        assert.equal(info.size, 1000);
        assert.deepEqual(await getBytes(store, 'obj/bytes'), Buffer.from(data));
      });

      it('round-trips a Readable body', async () => {
        const data = pattern(300_000, 1);
        await store.put(
          'obj/readable',
          Readable.from([data.subarray(0, 1), data.subarray(1, 70_000), data.subarray(70_000)]),
        );
        assert.deepEqual(await getBytes(store, 'obj/readable'), data);
      });

      it('round-trips an async-iterable body', async () => {
        const data = pattern(500_000, 2);
        await store.put('obj/iterable', slices(data, 64 * 1024));
        assert.deepEqual(await getBytes(store, 'obj/iterable'), data);
      });

      it('stores an empty body', async () => {
        const info = await store.put('obj/empty', new Uint8Array(0));
        assert.equal(info.size, 0);
        assert.equal((await store.head('obj/empty'))?.size, 0);
        assert.equal((await getBytes(store, 'obj/empty')).length, 0);
      });

      it('reports the size and a current lastModified from put and head', async () => {
        const before = Date.now();
        const info = await store.put('obj/info', pattern(12_345));
        const after = Date.now();
        const head = await store.head('obj/info');
        assert.ok(head, 'head finds the object just put');
        assert.equal(head.key, 'obj/info');
        assert.equal(head.size, 12_345);
        assert.equal(info.size, 12_345);
        assert.ok(head.lastModified instanceof Date);
        // Some stores keep whole seconds only: allow that much slack.
        assert.ok(
          head.lastModified.getTime() >= before - 2000 && head.lastModified.getTime() <= after + 2000,
          `lastModified ${head.lastModified.toISOString()} is not around now`,
        );
      });

      it('streams a 20 MiB body generated on the fly', { timeout: 120_000 }, async () => {
        const total = 20 * MiB + 123;
        const expected = await hashOf(generated(total));
        const info = await store.put('big/20m', generated(total), { sha256: expected.sha256, size: total });
        assert.equal(info.size, total);
        const head = await store.head('big/20m');
        assert.equal(head?.size, total);
        assert.ok(Math.abs(head.lastModified.getTime() - Date.now()) < 60_000);
        const got = await hashOf(await store.get('big/20m'));
        assert.deepEqual(got, expected);
      });

      it('replaces the whole object on overwrite', async () => {
        await store.put('obj/over', pattern(10_000, 3));
        const short = pattern(10, 4);
        await store.put('obj/over', short);
        assert.deepEqual(await getBytes(store, 'obj/over'), short);
        assert.equal((await store.head('obj/over'))?.size, 10);
        const long = pattern(20_000, 5);
        await store.put('obj/over', long);
        assert.deepEqual(await getBytes(store, 'obj/over'), long);
      });

      it('accepts a body that matches its sha256, size and maxSize exactly', async () => {
        const data = pattern(4096, 6);
        await store.put('obj/checked', slices(data, 1000), {
          sha256: sha256(data),
          size: data.length,
          maxSize: data.length,
        });
        assert.deepEqual(await getBytes(store, 'obj/checked'), data);
      });

      it('accepts an uppercase sha256', async () => {
        const data = pattern(100, 7);
        await store.put('obj/upper', data, { sha256: sha256(data).toUpperCase() });
        assert.equal((await store.head('obj/upper'))?.size, 100);
      });
    });

    describe('missing keys', () => {
      it('get of a missing key throws NotFound', async () => {
        await rejectsWithCode(() => store.get('nothing/here'), 'NotFound', 'get');
        await rejectsWithCode(() => store.get('nothing/here', { start: 0, end: 0 }), 'NotFound', 'ranged get');
      });

      it('head of a missing key returns undefined', async () => {
        assert.equal(await store.head('nothing/here'), undefined);
      });

      it('a prefix of stored keys is not itself an object', async () => {
        await store.put('dir/child', pattern(10));
        await rejectsWithCode(() => store.get('dir'), 'NotFound', 'get of a prefix');
        assert.equal(await store.head('dir'), undefined);
        await store.delete('dir');
        assert.equal((await store.head('dir/child'))?.size, 10);
      });

      it('a key below a stored object does not exist', async () => {
        await store.put('file', pattern(10));
        await rejectsWithCode(() => store.get('file/below'), 'NotFound', 'get below an object');
        assert.equal(await store.head('file/below'), undefined);
        await store.delete('file/below');
        assert.equal((await store.head('file'))?.size, 10);
      });
    });

    describe('delete', () => {
      it('deletes an object and leaves its siblings', async () => {
        await store.put('d/a', pattern(1));
        await store.put('d/b', pattern(2));
        await store.delete('d/a');
        assert.equal(await store.head('d/a'), undefined);
        await rejectsWithCode(() => store.get('d/a'), 'NotFound', 'get after delete');
        assert.deepEqual(await getBytes(store, 'd/b'), pattern(2));
        assert.deepEqual(
          (await listAll(store, '')).map((i) => i.key),
          ['d/b'],
        );
      });

      it('deleting a missing key succeeds, also twice', async () => {
        await store.delete('never/stored');
        await store.put('once', pattern(5));
        await store.delete('once');
        await store.delete('once');
        assert.equal(await store.head('once'), undefined);
      });

      it('stores a key again after deleting it', async () => {
        await store.put('deep/er/key', pattern(5));
        await store.delete('deep/er/key');
        await store.put('deep/er/key', pattern(6, 1));
        assert.deepEqual(await getBytes(store, 'deep/er/key'), pattern(6, 1));
      });
    });

    describe('ranges', () => {
      const data = pattern(1000, 8);
      const put = () => store.put('r/obj', data);

      it('reads the first byte, a middle span, a tail and a single byte', async () => {
        await put();
        assert.deepEqual(await getBytes(store, 'r/obj', { start: 0, end: 0 }), data.subarray(0, 1));
        assert.deepEqual(await getBytes(store, 'r/obj', { start: 100, end: 199 }), data.subarray(100, 200));
        assert.deepEqual(await getBytes(store, 'r/obj', { start: 900 }), data.subarray(900));
        assert.deepEqual(await getBytes(store, 'r/obj', { start: 500, end: 500 }), data.subarray(500, 501));
        assert.deepEqual(await getBytes(store, 'r/obj', { start: 999 }), data.subarray(999));
        assert.deepEqual(await getBytes(store, 'r/obj', { start: 0 }), data);
      });

      it('clamps an end past the last byte', async () => {
        await put();
        assert.deepEqual(await getBytes(store, 'r/obj', { start: 990, end: 5000 }), data.subarray(990));
      });

      it('refuses a start past the end with InvalidArgument', async () => {
        await put();
        await rejectsWithCode(() => store.get('r/obj', { start: 1000 }), 'InvalidArgument', 'start == size');
        await rejectsWithCode(() => store.get('r/obj', { start: 5000, end: 6000 }), 'InvalidArgument', 'start > size');
      });

      it('refuses a malformed range with InvalidArgument', async () => {
        await put();
        await rejectsWithCode(() => store.get('r/obj', { start: -1 }), 'InvalidArgument', 'negative start');
        await rejectsWithCode(() => store.get('r/obj', { start: 10, end: 9 }), 'InvalidArgument', 'end before start');
        await rejectsWithCode(() => store.get('r/obj', { start: 1.5 }), 'InvalidArgument', 'fractional start');
      });
    });

    describe('rejected puts leave nothing behind', () => {
      async function assertAbsent(key: string): Promise<void> {
        assert.equal(await store.head(key), undefined, `${key} must not exist`);
        assert.deepEqual(
          (await listAll(store, '')).map((i) => i.key).filter((k) => k === key),
          [],
        );
      }

      it('rejects a sha256 mismatch with InvalidArgument', async () => {
        const data = pattern(70_000, 9);
        await rejectsWithCode(
          () => store.put('bad/sha', slices(data, 8192), { sha256: sha256(pattern(70_000, 10)) }),
          'InvalidArgument',
          'sha256 mismatch',
        );
        await assertAbsent('bad/sha');
      });

      it('rejects a body shorter or longer than its size with InvalidArgument', async () => {
        await rejectsWithCode(
          () => store.put('bad/short', pattern(99), { size: 100 }),
          'InvalidArgument',
          'short body',
        );
        await assertAbsent('bad/short');
        await rejectsWithCode(
          () => store.put('bad/long', slices(pattern(101), 10), { size: 100 }),
          'InvalidArgument',
          'long body',
        );
        await assertAbsent('bad/long');
      });

      it('rejects a malformed sha256 option with InvalidArgument', async () => {
        await rejectsWithCode(
          () => store.put('bad/opt', pattern(1), { sha256: 'not-a-hash' }),
          'InvalidArgument',
          'malformed sha256',
        );
        await assertAbsent('bad/opt');
      });

      it('rejects a body over maxSize with PayloadTooLarge', async () => {
        await rejectsWithCode(
          () => store.put('bad/big', slices(pattern(2000), 100), { maxSize: 1999 }),
          'PayloadTooLarge',
          'over maxSize',
        );
        await assertAbsent('bad/big');
        await rejectsWithCode(
          () => store.put('bad/declared', pattern(10), { size: 2000, maxSize: 1000 }),
          'PayloadTooLarge',
          'declared size over maxSize',
        );
        await assertAbsent('bad/declared');
      });

      it('stops reading an endless body once it passes maxSize', { timeout: 60_000 }, async () => {
        let pulled = 0;
        async function* endless(): AsyncGenerator<Uint8Array> {
          const chunk = pattern(64 * 1024);
          for (;;) {
            pulled += chunk.length;
            yield chunk;
          }
        }
        await rejectsWithCode(
          () => store.put('bad/endless', endless(), { maxSize: MiB }),
          'PayloadTooLarge',
          'endless body',
        );
        assert.ok(pulled < 64 * MiB, `read ${pulled} bytes of a body limited to 1 MiB`);
        await assertAbsent('bad/endless');
      });

      it('leaves no object when the body stream fails midway', async () => {
        async function* failing(): AsyncGenerator<Uint8Array> {
          yield pattern(300_000);
          await yieldToLoop();
          yield pattern(300_000, 1);
          throw new Error('connection reset by peer');
        }
        await assert.rejects(() => store.put('bad/iter', failing()));
        await assertAbsent('bad/iter');

        const readable = new Readable({ read() {} });
        readable.push(pattern(200_000));
        setTimeout(() => readable.destroy(new Error('socket hang up')), 20);
        await assert.rejects(() => store.put('bad/readable', readable));
        await assertAbsent('bad/readable');
      });

      it('keeps the old object when a replacing put is rejected', async () => {
        const old = pattern(5000, 11);
        await store.put('keep/me', old);
        async function* failing(): AsyncGenerator<Uint8Array> {
          yield pattern(100_000);
          throw new Error('aborted');
        }
        await assert.rejects(() => store.put('keep/me', failing()));
        await rejectsWithCode(
          () => store.put('keep/me', pattern(10), { sha256: sha256(pattern(11)) }),
          'InvalidArgument',
          'sha256 mismatch',
        );
        await rejectsWithCode(
          () => store.put('keep/me', pattern(10), { size: 11 }),
          'InvalidArgument',
          'size mismatch',
        );
        await rejectsWithCode(
          () => store.put('keep/me', pattern(10_000), { maxSize: 9999 }),
          'PayloadTooLarge',
          'maxSize',
        );
        assert.deepEqual(await getBytes(store, 'keep/me'), old);
        assert.equal((await store.head('keep/me'))?.size, 5000);
      });
    });

    describe('keys', () => {
      const invalid = [
        '',
        '../x',
        'x/../y',
        '..',
        '.',
        '/abs',
        'a//b',
        'a/./b',
        'a/',
        'a\0b',
        'a\\b',
        'has space',
        'a\nb',
        'caf\u00e9',
        'a?b',
        '%2e%2e',
        'a/b/',
      ];

      it('refuses invalid keys with InvalidArgument in every method', async () => {
        for (const key of invalid) {
          const what = JSON.stringify(key);
          await rejectsWithCode(() => store.put(key, pattern(1)), 'InvalidArgument', `put ${what}`);
          await rejectsWithCode(() => store.get(key), 'InvalidArgument', `get ${what}`);
          await rejectsWithCode(() => store.head(key), 'InvalidArgument', `head ${what}`);
          await rejectsWithCode(() => store.delete(key), 'InvalidArgument', `delete ${what}`);
          await rejectsWithCode(() => store.sign(key, 'GET', { expiresIn: 60 }), 'InvalidArgument', `sign ${what}`);
        }
        assert.deepEqual(await listAll(store, ''), []);
      });

      it('accepts keys of letters, digits, dots, dashes and underscores', async () => {
        const keys = ['A', 'a-b_c.d', 'x/...', 'x/.hidden', '0/1/2/3/4/5/6/7/8/9', 'chunks/ab/' + 'ab'.repeat(32)];
        for (const [i, key] of keys.entries()) await store.put(key, pattern(i + 1));
        for (const [i, key] of keys.entries()) assert.deepEqual(await getBytes(store, key), pattern(i + 1), key);
      });
    });

    describe('list', () => {
      const keys = ['b/2', 'a/1', 'a/10', 'a/2', 'a-x', 'a.y', 'a0', 'c', 'ab/3', 'a/sub/deep'];
      const sorted = [...keys].sort();
      const putAll = async () => {
        for (const [i, key] of keys.entries()) await store.put(key, pattern(i + 1));
      };

      it('lists every object in ascending key order for an empty prefix', async () => {
        await putAll();
        const all = await listAll(store, '');
        assert.deepEqual(
          all.map((i) => i.key),
          sorted,
        );
        for (const info of all) {
          assert.equal(info.size, keys.indexOf(info.key) + 1, `size of ${info.key}`);
          assert.ok(info.lastModified instanceof Date);
        }
      });

      it('lists only keys starting with the prefix, in order', async () => {
        await putAll();
        const keysOf = async (prefix: string) => (await listAll(store, prefix)).map((i) => i.key);
        assert.deepEqual(await keysOf('a/'), ['a/1', 'a/10', 'a/2', 'a/sub/deep']);
        assert.deepEqual(
          await keysOf('a'),
          sorted.filter((k) => k.startsWith('a')),
        );
        assert.deepEqual(await keysOf('a/1'), ['a/1', 'a/10']);
        assert.deepEqual(await keysOf('a/s'), ['a/sub/deep']);
        assert.deepEqual(await keysOf('b/2'), ['b/2']);
        assert.deepEqual(await keysOf('zzz'), []);
        assert.deepEqual(await keysOf('../'), []);
        assert.deepEqual(await keysOf('/'), []);
      });

      it('lists nothing in an empty store', async () => {
        assert.deepEqual(await listAll(store, ''), []);
      });

      it('does not list deleted objects', async () => {
        await putAll();
        await store.delete('a/sub/deep');
        await store.delete('c');
        assert.deepEqual(
          (await listAll(store, '')).map((i) => i.key),
          sorted.filter((k) => k !== 'a/sub/deep' && k !== 'c'),
        );
      });
    });

    describe('concurrency', () => {
      const size = 512 * 1024;

      it('concurrent puts of one key end with one complete body', { timeout: 60_000 }, async () => {
        const bodies = Array.from({ length: 8 }, (_, i) => Buffer.alloc(size, i + 1));
        await Promise.all(bodies.map((b) => store.put('race/key', slices(b, 32 * 1024))));
        const got = await getBytes(store, 'race/key');
        assert.equal(got.length, size);
        assert.ok(
          bodies.some((b) => b.equals(got)),
          'the object is exactly one of the bodies put',
        );
      });

      it('readers during concurrent puts see a whole old or new object', { timeout: 60_000 }, async () => {
        await store.put('race/read', Buffer.alloc(size, 0xaa));
        let writing = true;
        const writers = Promise.all(
          Array.from({ length: 6 }, (_, i) => store.put('race/read', slices(Buffer.alloc(size, i + 1), 16 * 1024))),
        ).finally(() => {
          writing = false;
        });
        let reads = 0;
        while (writing || reads < 3) {
          // Let the writers' I/O run: a store answering from memory would otherwise starve them.
          await yieldToLoop();
          const got = await getBytes(store, 'race/read');
          assert.equal(got.length, size, 'a read sees the whole object');
          assert.ok(
            got.every((b) => b === got[0]),
            'a read never mixes two bodies',
          );
          reads++;
        }
        await writers;
      });

      it('concurrent puts and deletes of neighbouring keys all succeed', { timeout: 60_000 }, async () => {
        const ops: Array<Promise<unknown>> = [];
        for (let i = 0; i < 40; i++) {
          ops.push(store.put(`n/${i % 4}/k${i}`, pattern(100, i)));
          ops.push(store.delete(`n/${i % 4}/k${i - 1}`));
        }
        await Promise.all(ops);
        for (let i = 0; i < 40; i++) {
          await store.put(`m/k${i}`, pattern(10, i));
          await store.delete(`m/k${i}`);
        }
        const left = (await listAll(store, 'n/')).map((i) => i.key);
        assert.ok(left.length >= 1 && left.length <= 40);
        for (const key of left) assert.equal((await store.head(key))?.size, 100);
        assert.deepEqual(await listAll(store, 'm/'), []);
      });
    });

    describe('sign', () => {
      it('signs GET and PUT with an expiry of now + expiresIn', async () => {
        for (const method of ['GET', 'PUT'] as const) {
          const before = Date.now();
          const req = await store.sign('s/key', method, { expiresIn: 300 });
          const after = Date.now();
          assert.equal(req.method, method);
          assert.equal(typeof req.url, 'string');
          assert.ok(req.url.length > 0);
          assert.equal(typeof req.headers, 'object');
          assert.ok(req.expiresAt instanceof Date);
          const t = req.expiresAt.getTime();
          assert.ok(
            t >= before + 299_000 && t <= after + 301_000,
            `expiresAt ${req.expiresAt.toISOString()} is not about 300 s from now`,
          );
        }
      });

      it('gives different URLs for different keys and methods', async () => {
        const a = await store.sign('s/a', 'GET', { expiresIn: 60 });
        const b = await store.sign('s/b', 'GET', { expiresIn: 60 });
        const c = await store.sign('s/a', 'PUT', { expiresIn: 60 });
        assert.equal(new Set([a.url, b.url, c.url]).size, 3);
      });

      it('signs a PUT bound to a sha256 and size', async () => {
        const data = pattern(10);
        const req = await store.sign('s/bound', 'PUT', { expiresIn: 60, sha256: sha256(data), size: 10 });
        const unbound = await store.sign('s/bound', 'PUT', { expiresIn: 60 });
        assert.equal(req.method, 'PUT');
        // The terms may travel in the URL or in required headers, but they must be part of the request.
        assert.ok(
          req.url !== unbound.url || JSON.stringify(req.headers) !== JSON.stringify(unbound.headers),
          'sha256 and size change the signed request',
        );
      });
    });
  });
}
