import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LruCache } from './lru-cache.js';

describe('LruCache', () => {
  it('evicts the least recently used first and keeps a hot item through any churn', () => {
    const cache = new LruCache<string, number>(100);
    for (let i = 0; i < 10; i++) cache.set(`k${i}`, i, 10);
    assert.equal(cache.get('k0'), 0);
    cache.set('new', 99, 10);
    assert.equal(cache.get('k1'), undefined, 'k1 was the least recently used');
    assert.equal(cache.get('k0'), 0);
    // A hot item read between every insertion survives 1,000 insertions into a 10-item cache.
    for (let i = 0; i < 1000; i++) {
      cache.set(`churn${i}`, i, 10);
      assert.equal(cache.get('k0'), 0, `lost the hot item after ${i} insertions`);
    }
    assert.equal(cache.get('churn999'), 999);
    assert.equal(cache.get('churn0'), undefined);
  });

  it('never holds more than its budget and refuses an item bigger than it', () => {
    const cache = new LruCache<string, string>(50);
    cache.set('huge', 'x', 51);
    assert.equal(cache.get('huge'), undefined);
    for (let i = 0; i < 20; i++) cache.set(`k${i}`, 'v', 7);
    let held = 0;
    for (let i = 0; i < 20; i++) if (cache.get(`k${i}`) !== undefined) held++;
    assert.equal(held, 7);
  });
});
