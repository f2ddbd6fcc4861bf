/**
 * @module url-signer.test
 * A signed URL lets its holder make one request (one key, one method, the
 * signed terms) until it expires, and nothing else.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SIGNED_URL_PARAMS as P, SIGNED_URL_PATH, UrlSigner } from './url-signer.js';

const SHA = 'ab'.repeat(32);
const NOW = new Date('2026-01-02T03:04:05.000Z');
const secret = Buffer.from('0123456789abcdef0123456789abcdef');

function signer(base: string | (() => string) = 'http://127.0.0.1:7420'): UrlSigner {
  return new UrlSigner({ secret, baseUrl: base });
}

function forbidden(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, 'Forbidden');
    assert.match((err as Error).message, message);
    return true;
  });
}

/** Signs a PUT at NOW and returns its key and query, ready to tamper with. */
function signedPut(s = signer()): { key: string; query: URLSearchParams } {
  const req = s.sign('chunks/ab/cd', 'PUT', { expiresIn: 600, sha256: SHA, size: 42 }, NOW);
  const url = new URL(req.url);
  return { key: decodeURIComponent(url.pathname.slice(SIGNED_URL_PATH.length)), query: url.searchParams };
}

describe('UrlSigner', () => {
  it('builds a /v1/blobs URL carrying its terms and an hmac', () => {
    let port = 0;
    const s = signer(() => `http://127.0.0.1:${port}/`);
    port = 9999;
    const req = s.sign('chunks/ab/cd', 'PUT', { expiresIn: 600, sha256: SHA.toUpperCase(), size: 42 }, NOW);
    const url = new URL(req.url);
    assert.equal(url.origin, 'http://127.0.0.1:9999');
    assert.equal(url.pathname, '/v1/blobs/chunks/ab/cd');
    assert.equal(url.searchParams.get(P.method), 'PUT');
    assert.equal(url.searchParams.get(P.expires), String(NOW.getTime() / 1000 + 600));
    assert.equal(url.searchParams.get(P.sha256), SHA);
    assert.equal(url.searchParams.get(P.size), '42');
    assert.match(url.searchParams.get(P.signature) ?? '', /^[0-9a-f]{64}$/);
    assert.equal(req.method, 'PUT');
    assert.deepEqual(req.headers, {});
    assert.equal(req.expiresAt.getTime(), NOW.getTime() + 600_000);
  });

  it('verifies a valid PUT and returns its terms', () => {
    const { key, query } = signedPut();
    assert.deepEqual(signer().verify({ method: 'PUT', key, query, now: NOW }), { sha256: SHA, size: 42 });
    assert.deepEqual(signer().verify({ method: 'put', key, query, now: new Date(NOW.getTime() + 600_000) }), {
      sha256: SHA,
      size: 42,
    });
  });

  it('verifies a valid GET without terms', () => {
    const req = signer().sign('a/b', 'GET', { expiresIn: 60 });
    const url = new URL(req.url);
    assert.equal(url.searchParams.has(P.sha256), false);
    assert.deepEqual(signer().verify({ method: 'GET', key: 'a/b', query: url.searchParams }), {});
  });

  it('rounds a fractional expiry up to whole seconds', () => {
    const req = signer().sign('a', 'GET', { expiresIn: 1 }, new Date(1_000_500));
    assert.equal(req.expiresAt.getTime(), 1_002_000);
  });

  it('refuses a tampered signature', () => {
    const { key, query } = signedPut();
    const sig = query.get(P.signature)!;
    query.set(P.signature, (sig[0] === '0' ? '1' : '0') + sig.slice(1));
    forbidden(() => signer().verify({ method: 'PUT', key, query, now: NOW }), /signature does not match/);
  });

  it('refuses a malformed or truncated signature', () => {
    const { key, query } = signedPut();
    const sig = query.get(P.signature)!;
    query.set(P.signature, sig.slice(0, 62));
    forbidden(() => signer().verify({ method: 'PUT', key, query, now: NOW }), /malformed X-Stowage-Signature/);
    query.set(P.signature, sig.toUpperCase().replace(/[0-9]/g, 'Z'));
    forbidden(() => signer().verify({ method: 'PUT', key, query, now: NOW }), /malformed/);
  });

  it('refuses the URL for another key', () => {
    const { query } = signedPut();
    forbidden(
      () => signer().verify({ method: 'PUT', key: 'chunks/ab/ce', query, now: NOW }),
      /signature does not match/,
    );
    forbidden(() => signer().verify({ method: 'PUT', key: '../chunks/ab/cd', query, now: NOW }), /invalid blob key/);
  });

  it('refuses another method, also when the method parameter is changed', () => {
    const { key, query } = signedPut();
    forbidden(() => signer().verify({ method: 'GET', key, query, now: NOW }), /allows PUT, not GET/);
    query.set(P.method, 'GET');
    forbidden(() => signer().verify({ method: 'GET', key, query, now: NOW }), /signature does not match/);
  });

  it('refuses an expired URL', () => {
    const { key, query } = signedPut();
    const later = new Date(NOW.getTime() + 601_000);
    forbidden(
      () => signer().verify({ method: 'PUT', key, query, now: later }),
      /signed URL expired at 2026-01-02T03:14:05\.000Z/,
    );
  });

  it('refuses a modified expiry, sha256 or size', () => {
    const cases: Array<[string, string | null]> = [
      [P.expires, String(NOW.getTime() / 1000 + 6000)],
      [P.sha256, 'cd'.repeat(32)],
      [P.sha256, null],
      [P.size, '43'],
      [P.size, null],
    ];
    for (const [name, value] of cases) {
      const { key, query } = signedPut();
      if (value === null) query.delete(name);
      else query.set(name, value);
      forbidden(() => signer().verify({ method: 'PUT', key, query, now: NOW }), /signature does not match/);
    }
  });

  it('binds a GET to its signed range: the range travels as a header and cannot be widened, moved or dropped', () => {
    const req = signer().sign('packs/ab/p', 'GET', { expiresIn: 600, range: { start: 100, end: 199 } }, NOW);
    assert.deepEqual(req.headers, { range: 'bytes=100-199' });
    const url = new URL(req.url);
    const key = 'packs/ab/p';
    assert.deepEqual(signer().verify({ method: 'GET', key, query: url.searchParams, now: NOW }), {
      range: { start: 100, end: 199 },
    });
    for (const value of ['0-199', '100-299', '0-99', null]) {
      const query = new URLSearchParams(url.searchParams);
      if (value === null) query.delete(P.range);
      else query.set(P.range, value);
      forbidden(() => signer().verify({ method: 'GET', key, query, now: NOW }), /signature does not match/);
    }
    for (const value of ['9-1', 'a-b', '1-', '-5', '1-2-3']) {
      const query = new URLSearchParams(url.searchParams);
      query.set(P.range, value);
      forbidden(() => signer().verify({ method: 'GET', key, query, now: NOW }), /malformed X-Stowage-Range/);
    }
    assert.throws(() => signer().sign('a/b', 'PUT', { expiresIn: 60, range: { start: 0, end: 1 } }), {
      code: 'InvalidArgument',
    });
    assert.throws(() => signer().sign('a/b', 'GET', { expiresIn: 60, range: { start: 5, end: 1 } }), {
      code: 'InvalidArgument',
    });
  });

  it('refuses missing or repeated parameters', () => {
    for (const name of [P.method, P.expires, P.signature]) {
      const { key, query } = signedPut();
      query.delete(name);
      forbidden(() => signer().verify({ method: 'PUT', key, query, now: NOW }), new RegExp(`missing ${name}`));
    }
    const { key, query } = signedPut();
    query.append(P.size, '1');
    forbidden(() => signer().verify({ method: 'PUT', key, query, now: NOW }), /repeats X-Stowage-Size/);
    forbidden(() => signer().verify({ method: 'GET', key: 'a', query: new URLSearchParams(), now: NOW }), /missing/);
  });

  it('refuses a URL signed with another secret', () => {
    const { key, query } = signedPut(
      new UrlSigner({ secret: 'another secret, also long enough', baseUrl: 'http://x' }),
    );
    forbidden(() => signer().verify({ method: 'PUT', key, query, now: NOW }), /signature does not match/);
  });

  it('refuses bad sign arguments and short secrets with InvalidArgument', () => {
    const s = signer();
    const bad: Array<() => unknown> = [
      () => s.sign('../x', 'GET', { expiresIn: 60 }),
      () => s.sign('a', 'GET', { expiresIn: 0 }),
      () => s.sign('a', 'GET', { expiresIn: -5 }),
      () => s.sign('a', 'GET', { expiresIn: Number.NaN }),
      () => s.sign('a', 'GET', { expiresIn: 8 * 24 * 3600 }),
      () => s.sign('a', 'PUT', { expiresIn: 60, sha256: 'xyz' }),
      () => s.sign('a', 'PUT', { expiresIn: 60, size: -1 }),
      () => s.sign('a', 'DELETE' as 'GET', { expiresIn: 60 }),
      () => new UrlSigner({ secret: 'short', baseUrl: 'http://x' }),
    ];
    for (const fn of bad) assert.throws(fn, (err: unknown) => (err as { code?: unknown }).code === 'InvalidArgument');
  });
});
