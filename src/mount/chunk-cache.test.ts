/** The chunk cache on a real directory: verification, single flight, LRU bound, restart. */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ChunkCache } from './chunk-cache.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const bytes = (n: number, fill: number) => Buffer.alloc(n, fill);

describe('chunk cache', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'stowage-cache-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('fetches a chunk once for concurrent readers and serves ranges of it', async () => {
    const cache = await ChunkCache.open(dir, 1000);
    const data = Buffer.from('0123456789');
    let fetches = 0;
    const fetch = async () => {
      fetches++;
      await new Promise((r) => setTimeout(r, 20));
      return data;
    };
    const bufs = [Buffer.alloc(3), Buffer.alloc(3), Buffer.alloc(3)];
    const got = await Promise.all(bufs.map((b, i) => cache.read(sha(data), fetch, b, 0, 3, i * 3)));
    assert.deepEqual(got, [3, 3, 3]);
    assert.equal(Buffer.concat(bufs).toString(), '012345678');
    assert.equal(fetches, 1);
    assert.deepEqual(cache.stats().chunks, 1);
  });

  it('refuses bytes that do not match the hash, and keeps nothing of them', async () => {
    const cache = await ChunkCache.open(dir, 1000);
    await assert.rejects(
      cache.ensure(sha(Buffer.from('right')), async () => Buffer.from('wrong')),
      /different content/,
    );
    assert.equal(cache.stats().chunks, 0);
    assert.deepEqual(readdirSync(dir), []);
  });

  it('evicts least recently used chunks to stay within capacity', async () => {
    const cache = await ChunkCache.open(dir, 250);
    const chunks = [1, 2, 3].map((i) => bytes(100, i));
    // settle(): a chunk is not evicted while its file is being written.
    await cache.ensure(sha(chunks[0]!), async () => chunks[0]!);
    await cache.settle();
    await cache.ensure(sha(chunks[1]!), async () => chunks[1]!);
    await cache.settle();
    await cache.ensure(sha(chunks[0]!), async () => chunks[0]!); // a hit: chunk 0 is now the most recent
    await cache.ensure(sha(chunks[2]!), async () => chunks[2]!);
    await cache.settle();
    assert.ok(cache.has(sha(chunks[0]!)));
    assert.ok(!cache.has(sha(chunks[1]!)), 'the least recently used chunk went');
    assert.equal(cache.stats().evictions, 1);
    assert.ok(cache.stats().bytes <= 250);
  });

  it('keeps its chunks across a restart and drops unfinished temporary files', async () => {
    const first = await ChunkCache.open(dir, 1000);
    const data = bytes(10, 9);
    await first.ensure(sha(data), async () => data);
    await first.settle();
    writeFileSync(join(dir, '.tmp-deadbeef'), 'half');
    const second = await ChunkCache.open(dir, 1000);
    assert.ok(second.has(sha(data)));
    assert.deepEqual(readdirSync(dir), [sha(data)]);
  });
});
