/** Unit tests of common/times. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { splitNanos } from './times.js';

test('splitNanos splits into whole ms and a non-negative ns remainder, before 1970 too', () => {
  assert.deepEqual(splitNanos(1_700_000_000_123_456_789n), { ms: 1_700_000_000_123, ns: 456_789 });
  assert.deepEqual(splitNanos(0n), { ms: 0, ns: 0 });
  assert.deepEqual(splitNanos(999_999n), { ms: 0, ns: 999_999 });
  assert.deepEqual(splitNanos(-1n), { ms: -1, ns: 999_999 });
  assert.deepEqual(splitNanos(-1_000_000n), { ms: -1, ns: 0 });
});
