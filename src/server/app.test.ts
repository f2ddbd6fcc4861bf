/**
 * @module server/app.test
 * The app's HTTP translation, tested with `app.request()` (no socket): auth,
 * validation messages, body decoding, error answers. The engine is the real
 * one over a temp SQLite file and an in-memory blob store.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createEngine } from '../engine/engine.js';
import type { VolumeEngine } from '../engine/types.js';
import { UrlSigner } from '../stores/local/url-signer.js';
import { MemoryBlobStore } from '../stores/memory/memory-blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { openSqliteMetadataStore } from '../stores/sql/sqlite-dialect.js';
import { createApp } from './app.js';

let dir: string;
let metadata: MetadataStore;
let engine: VolumeEngine;
let token: string;
const logged: unknown[] = [];
const signer = new UrlSigner({ secret: 'x'.repeat(32), baseUrl: 'http://localhost' });
const store = new MemoryBlobStore({ signer });

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'stowage-app-'));
  metadata = await openSqliteMetadataStore({ path: join(dir, 'metadata.db') });
  engine = createEngine({ metadata, blobs: store });
  token = (await engine.createTenant('acme')).secret;
});
after(async () => {
  await metadata.close();
  await rm(dir, { recursive: true, force: true });
});

function app(overrides: Partial<VolumeEngine> = {}, limits?: { jsonBodyBytes?: number }) {
  const e = Object.assign(Object.create(engine) as VolumeEngine, overrides);
  return createApp({
    engine: e,
    blobRoute: { signer, store },
    log: (_m, err) => logged.push(err),
    ...(limits ? { limits } : {}),
  });
}

const auth = () => ({ authorization: `Bearer ${token}` });
const json = (body: unknown, method = 'POST') => ({
  method,
  headers: { ...auth(), 'content-type': 'application/json' },
  body: JSON.stringify(body),
});

describe('createApp', () => {
  it('answers public routes without a token and the rest with 401 + WWW-Authenticate', async () => {
    const a = app();
    assert.equal((await a.request('/v1/health')).status, 200);
    assert.equal((await a.request('/v1/openapi.json')).status, 200);
    const res = await a.request('/v1/volumes');
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('www-authenticate'), 'Bearer realm="stowage"');
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'Unauthenticated');
    assert.equal((await a.request('/v1/volumes', { headers: auth() })).status, 200);
  });

  it('names the field and the reason of a validation failure', async () => {
    const res = await app().request('/v1/volumes', json({ name: 'v', tuning: { prefetch: 'lots' } }));
    assert.equal(res.status, 400);
    const body = (await res.json()) as {
      error: { code: string; message: string; details: { issues: Array<{ path: string }> } };
    };
    assert.equal(body.error.code, 'InvalidArgument');
    assert.match(body.error.message, /body field "tuning\.prefetch"/);
    assert.deepEqual(
      body.error.details.issues.map((i) => i.path),
      ['tuning.prefetch'],
    );
    const q = await app().request('/v1/volumes/v/commits?limit=-3', { headers: auth() });
    assert.equal(q.status, 400);
    assert.match(((await q.json()) as { error: { message: string } }).error.message, /query field "limit"/);
  });

  it('reads an empty JSON body as {} and refuses bodies that are not UTF-8', async () => {
    const created = await app().request('/v1/volumes/empty-body', {
      method: 'PUT',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: '',
    });
    assert.equal(created.status, 201);
    const bad = await app().request('/v1/volumes', {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: new Uint8Array([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]),
    });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: { message: string } }).error.message, /UTF-8/);
  });

  it('bounds JSON bodies', async () => {
    const res = await app({}, { jsonBodyBytes: 100 }).request('/v1/volumes', json({ name: 'v', pad: 'x'.repeat(200) }));
    assert.equal(res.status, 413);
    assert.equal(((await res.json()) as { error: { code: string } }).error.code, 'PayloadTooLarge');
  });

  it('answers unexpected engine failures with a generic 500 and logs them', async () => {
    const boom = new TypeError('cannot read properties of undefined (secret internals)');
    const res = await app({
      listVolumes: async () => {
        throw boom;
      },
    }).request('/v1/volumes', { headers: auth() });
    assert.equal(res.status, 500);
    const text = await res.text();
    assert.doesNotMatch(text, /secret internals|TypeError/);
    assert.equal((JSON.parse(text) as { error: { code: string } }).error.code, 'Internal');
    assert.ok(logged.includes(boom));
  });

  it('serves signed blob URLs only when given a blob route', async () => {
    const req = signer.sign('objects/a', 'PUT', { expiresIn: 60 });
    const path = new URL(req.url);
    const put = await app().request(`${path.pathname}${path.search}`, { method: 'PUT', body: 'hello' });
    assert.equal(put.status, 201);
    assert.deepEqual(await put.json(), { key: 'objects/a', size: 5 });
    const bare = createApp({ engine });
    assert.equal((await bare.request(`${path.pathname}${path.search}`, { method: 'PUT', body: 'hello' })).status, 404);
    const get = new URL(signer.sign('objects/a', 'GET', { expiresIn: 60 }).url);
    const res = await app().request(`${get.pathname}${get.search}`, { headers: { range: 'bytes=1-3' } });
    assert.equal(res.status, 206);
    assert.equal(await res.text(), 'ell');
  });
});
