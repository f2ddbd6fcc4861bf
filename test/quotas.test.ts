/**
 * Tenant quotas over real HTTP: uncommitted bytes reserved by signed PUTs and
 * by staged resumable (tus) uploads, shown on GET /v1/tenant, set only by the
 * operator (a tenant cannot raise its own).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { startTestServer, type TestServer } from './helpers/server.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('tenant quotas over HTTP', () => {
  let srv: TestServer;
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${srv.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${srv.token}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const tusCreate = (length: number) =>
    fetch(`${srv.url}/v1/uploads`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${srv.token}`,
        'tus-resumable': '1.0.0',
        'upload-length': String(length),
        'upload-metadata': `volume ${b64('q')},path ${b64('/big.bin')},sha256 ${b64(sha(Buffer.alloc(length)))}`,
      },
    });

  before(async () => {
    srv = await startTestServer();
    assert.equal((await api('POST', '/v1/volumes', { name: 'q' })).status, 201);
  });
  after(async () => {
    await srv.close();
  });

  it('shows the quotas on GET /v1/tenant, and a tenant cannot change them', async () => {
    const t = await api('GET', '/v1/tenant');
    assert.equal(t.body.storageQuota, null);
    assert.equal(t.body.uncommittedQuota, 16 * 1024 ** 3);
    const patched = await api('PATCH', '/v1/tenant', {
      defaultCap: 1024 ** 3,
      storageQuota: 10 ** 15,
      uncommittedQuota: 10 ** 15,
    });
    assert.equal(patched.status, 200);
    assert.equal(patched.body.storageQuota, null);
    assert.equal(patched.body.uncommittedQuota, 16 * 1024 ** 3);
    await srv.engine.setTenantQuotas('default', { storageQuota: 10 ** 12, uncommittedQuota: 4096 });
    const after = await api('GET', '/v1/tenant');
    assert.equal(after.body.storageQuota, 10 ** 12);
    assert.equal(after.body.uncommittedQuota, 4096);
  });

  it('counts staged tus uploads and signed chunk PUTs against the uncommitted quota until done or abandoned', async () => {
    await srv.engine.setTenantQuotas('default', { uncommittedQuota: 4096 });
    const tooBig = await tusCreate(5000);
    assert.equal(tooBig.status, 413);
    assert.match(await tooBig.text(), /may have at most 4 KiB \(4096 bytes\) uploaded but not yet committed/);
    const staged = await tusCreate(3000);
    assert.equal(staged.status, 201);
    const location = new URL(staged.headers.get('location')!, `${srv.url}/v1/uploads/`).href;
    const chunk = randomBytes(2000);
    const refused = await api('POST', '/v1/volumes/q/uploads', { chunks: [{ hash: sha(chunk), size: chunk.length }] });
    assert.equal(refused.status, 413);
    assert.deepEqual(refused.body.error.details, { quota: 4096, pending: 3000, size: 2000 });
    // Abandoning the staged upload frees its bytes.
    assert.equal(
      (
        await fetch(location, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${srv.token}`, 'tus-resumable': '1.0.0' },
        })
      ).status,
      204,
    );
    assert.equal(
      (await api('POST', '/v1/volumes/q/uploads', { chunks: [{ hash: sha(chunk), size: chunk.length }] })).status,
      200,
    );
    // A finished tus upload frees its bytes too.
    await srv.engine.setTenantQuotas('default', { uncommittedQuota: 2000 + 1000 });
    const done = await tusCreate(1000);
    assert.equal(done.status, 201);
    const doneUrl = new URL(done.headers.get('location')!, `${srv.url}/v1/uploads/`).href;
    const patch = await fetch(doneUrl, {
      method: 'PATCH',
      headers: {
        authorization: `Bearer ${srv.token}`,
        'tus-resumable': '1.0.0',
        'upload-offset': '0',
        'content-type': 'application/offset+octet-stream',
      },
      body: Buffer.alloc(1000),
    });
    assert.equal(patch.status, 204, await patch.text());
    assert.ok(patch.headers.get('stowage-commit'));
    const again = await tusCreate(1000);
    assert.equal(again.status, 201);
  });
});
