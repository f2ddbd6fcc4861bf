/**
 * @module memory-blob-store.test
 * The in-memory store runs the BlobStore conformance suite unchanged, so
 * engine tests that use it hold for the real stores.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runBlobStoreConformance } from '../blob-store.conformance.js';
import { UrlSigner } from '../local/url-signer.js';
import { MemoryBlobStore } from './memory-blob-store.js';

runBlobStoreConformance('memory', async () => ({ store: new MemoryBlobStore(), cleanup: async () => {} }));

describe('MemoryBlobStore', () => {
  it('signs memory:// URLs by default', async () => {
    const req = await new MemoryBlobStore().sign('a/b', 'GET', { expiresIn: 60 });
    assert.match(req.url, /^memory:\/\/blobs\/v1\/blobs\/a\/b\?/);
  });

  it('signs with a given signer, so a test server can verify its URLs', async () => {
    const signer = new UrlSigner({ secret: 'a test secret of enough bytes', baseUrl: 'http://127.0.0.1:1' });
    const store = new MemoryBlobStore({ signer });
    const req = await store.sign('a/b', 'PUT', { expiresIn: 60, size: 3 });
    const url = new URL(req.url);
    assert.equal(url.origin, 'http://127.0.0.1:1');
    assert.deepEqual(signer.verify({ method: 'PUT', key: 'a/b', query: url.searchParams }), { size: 3 });
  });

  it('keeps a private copy of a body whose producer reuses its buffer', async () => {
    const store = new MemoryBlobStore();
    const buf = Buffer.alloc(4);
    async function* reusing(): AsyncGenerator<Uint8Array> {
      for (const v of [1, 2, 3]) {
        buf.fill(v);
        yield buf;
      }
    }
    await store.put('k', reusing());
    const got = Buffer.concat(await (await store.get('k')).toArray());
    assert.deepEqual([...got], [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
  });
});
