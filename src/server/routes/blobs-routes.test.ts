/**
 * @module server/routes/blobs-routes.test
 * Range header parsing of the signed blob route.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRange } from './blobs-routes.js';

describe('parseRange', () => {
  it('honours one bytes range, clamped to the object', () => {
    assert.deepEqual(parseRange('bytes=0-9', 100), { start: 0, end: 9 });
    assert.deepEqual(parseRange('bytes=90-200', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=10-', 100), { start: 10, end: 99 });
    assert.deepEqual(parseRange('bytes=-10', 100), { start: 90, end: 99 });
    assert.deepEqual(parseRange('bytes=-500', 100), { start: 0, end: 99 });
  });

  it('calls ranges past the end unsatisfiable', () => {
    assert.equal(parseRange('bytes=100-', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=100-200', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=-0', 100), 'unsatisfiable');
    assert.equal(parseRange('bytes=0-', 0), 'unsatisfiable');
  });

  it('ignores what it does not understand (the whole object is served)', () => {
    for (const h of [
      undefined,
      'bytes=5-1',
      'bytes=0-1,5-6',
      'items=0-1',
      'bytes=-',
      'bytes=a-b',
      'bytes=99999999999999999999-',
    ]) {
      assert.equal(parseRange(h, 100), undefined, String(h));
    }
  });
});
