/** Unit tests of server/share-links: signing, verification, tampering, expiry. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ForbiddenError, InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { MAX_SHARE_SECONDS, ShareSigner } from './share-links.js';

const signer = new ShareSigner({ secret: 'x'.repeat(32), baseUrl: 'http://h:1/' });
const grant = { volumeId: 'vol_abc', path: '/dir/na me ü?.txt', commit: 'c'.repeat(64), tokenId: 'tok_def' };
const t0 = new Date('2026-01-01T00:00:00Z');

function parts(url: string): [string, URLSearchParams] {
  const u = new URL(url);
  return [u.pathname, u.searchParams];
}

test('a signed URL verifies to its grant until it expires, with odd characters in the path', () => {
  const { url, expiresAt } = signer.sign(grant, 60, t0);
  assert.equal(expiresAt.getTime(), t0.getTime() + 60_000);
  assert.ok(url.startsWith('http://h:1/v1/shared/vol_abc/dir/na%20me%20%C3%BC%3F.txt?'));
  const [path, query] = parts(url);
  assert.deepEqual(signer.verify(path, query, new Date(t0.getTime() + 60_000)), grant);
  assert.throws(
    () => signer.verify(path, query, new Date(t0.getTime() + 61_000)),
    (e: unknown) => e instanceof ForbiddenError && /expired/.test(e.message),
  );
});

test('any change to the path, commit, token, expiry or secret is refused', () => {
  const [path, query] = parts(signer.sign(grant, 60, t0).url);
  assert.throws(() => signer.verify(path.replace('.txt', '.txu'), query, t0), ForbiddenError);
  assert.throws(() => signer.verify(path.replace('vol_abc', 'vol_abd'), query, t0), ForbiddenError);
  for (const [k, v] of [
    ['commit', 'd'.repeat(64)],
    ['token', 'tok_x'],
    ['expires', '99999999999'],
    ['sig', 'f'.repeat(64)],
    ['sig', 'nothex'],
  ]) {
    const q = new URLSearchParams(query);
    q.set(k!, v!);
    assert.throws(() => signer.verify(path, q, t0), ForbiddenError, k);
  }
  const repeated = new URLSearchParams(query);
  repeated.append('commit', 'e'.repeat(64));
  assert.throws(() => signer.verify(path, repeated, t0), /exactly one "commit"/);
  const other = new ShareSigner({ secret: 'y'.repeat(32), baseUrl: 'http://h:1' });
  assert.throws(() => other.verify(path, query, t0), ForbiddenError);
});

test('hostile paths and lifetimes are refused', () => {
  assert.throws(() => signer.sign({ ...grant, path: '/a/../b' }, 60), InvalidArgumentError);
  assert.throws(() => signer.sign(grant, 0), InvalidArgumentError);
  assert.throws(() => signer.sign(grant, MAX_SHARE_SECONDS + 1), InvalidArgumentError);
  const [, query] = parts(signer.sign(grant, 60, t0).url);
  for (const p of [
    '/v1/shared/vol_abc',
    '/v1/shared//a',
    '/v1/shared/vol_abc/a/%2E%2E/b',
    '/v1/shared/vol_abc/%E0%A4%A',
    '/v1/blobs/x',
  ]) {
    assert.throws(() => signer.verify(p, query, t0), ForbiddenError, p);
  }
  assert.throws(() => new ShareSigner({ secret: 'short', baseUrl: 'http://h' }), InvalidArgumentError);
});
