/**
 * Packs over real HTTP: many small files in one PUT, and the hostile cases of
 * the POST .../packs surface and of pack manifests at commit.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { Stowage, Volume } from '@stowage/sdk';
import { startTestServer, type TestServer } from './helpers/server.js';

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

describe('packs over HTTP', () => {
  let srv: TestServer;
  let vol: Volume;
  const api = (path: string, init: { method?: string; body?: unknown; token?: string } = {}) =>
    fetch(`${srv.url}${path}`, {
      method: init.method ?? 'POST',
      headers: { authorization: `Bearer ${init.token ?? srv.token}`, 'content-type': 'application/json' },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });

  before(async () => {
    srv = await startTestServer();
    vol = await Volume.create('packs', { client: new Stowage({ url: srv.url, token: srv.token }) });
  });
  after(async () => {
    await srv.close();
  });

  it('sends 300 small files as one pack and reads each back', async () => {
    const entries = Array.from({ length: 300 }, (_, i) => ({ path: `/small/${i}.txt`, data: `file number ${i}\n` }));
    const out = await vol.files.writeMany(entries);
    assert.equal(out.uploadedChunks, 300);
    // Every file, the one at offset 0 of its pack included (its read must be ranged too).
    for (let i = 0; i < 300; i++)
      assert.equal((await vol.files.read(`/small/${i}.txt`)).toString(), `file number ${i}\n`);
  });

  it("a packed chunk's signed URL yields that chunk only, also to another tenant sharing it by dedupe", async () => {
    const license = 'Permission is hereby granted, free of charge, to any person obtaining a copy\n';
    const secret = 'tenant A secret: hunter2\n';
    await vol.files.writeMany([
      { path: '/a/LICENSE', data: license },
      { path: '/a/secret.txt', data: secret },
    ]);
    const other = await srv.engine.createTenant('pack-neighbour');
    const theirs = await Volume.create('theirs', { client: new Stowage({ url: srv.url, token: other.secret }) });
    await theirs.files.write('/LICENSE', license);
    for (const [token, volume] of [
      [srv.token, 'packs'],
      [other.secret, 'theirs'],
    ] as const) {
      const path = volume === 'packs' ? '/a/LICENSE' : '/LICENSE';
      const plan = (await (
        await api(`/v1/volumes/${volume}/read?path=${encodeURIComponent(path)}`, { method: 'GET', token })
      ).json()) as { chunks: Array<{ request: { url: string; headers: Record<string, string> } }> };
      const { url, headers } = plan.chunks[0]!.request;
      assert.match(url, /\/v1\/blobs\/packs\//, 'the chunk is packed');
      assert.match(headers.range ?? '', /^bytes=\d+-\d+$/);
      // As issued, and without the header: the chunk's bytes, nothing else.
      assert.equal(await (await fetch(url, { headers })).text(), license);
      assert.equal(await (await fetch(url)).text(), license);
      // Any wider, earlier or later range is refused, whatever the header says.
      const [, start, end] = /^bytes=(\d+)-(\d+)$/.exec(headers.range!)!.map(Number) as [number, number, number];
      for (const range of [
        'bytes=0-',
        `bytes=${start}-${end + 1}`,
        `bytes=${end + 1}-`,
        `bytes=-${license.length + secret.length}`,
      ]) {
        const res = await fetch(url, { headers: { range } });
        assert.equal(res.status, 403, range);
        assert.doesNotMatch(await res.text(), /hunter2/);
      }
      // Moving the signed range in the query breaks the signature.
      const moved = new URL(url);
      moved.searchParams.set('X-Stowage-Range', `0-${end + secret.length}`);
      assert.equal((await fetch(moved)).status, 403);
    }
  });

  it('refuses bad pack requests and hides other tenants volumes', async () => {
    assert.equal((await api('/v1/volumes/packs/packs', { body: { size: 0, sha256: sha('x') } })).status, 400);
    assert.equal(
      (await api('/v1/volumes/packs/packs', { body: { size: 64 * 1024 * 1024, sha256: sha('x') } })).status,
      400,
    );
    assert.equal((await api('/v1/volumes/packs/packs', { body: { size: 10, sha256: 'nothex' } })).status, 400);
    const other = await srv.engine.createTenant('other-tenant');
    assert.equal(
      (await api('/v1/volumes/packs/packs', { body: { size: 10, sha256: sha('x') }, token: other.secret })).status,
      404,
    );
    const ro = (await (await api('/v1/tokens', { body: { name: 'ro', volume: 'packs', readOnly: true } })).json()) as {
      secret: string;
    };
    assert.equal(
      (await api('/v1/volumes/packs/packs', { body: { size: 10, sha256: sha('x') }, token: ro.secret })).status,
      403,
    );
  });

  it('refuses a manifest that names a hash for other bytes, and a forged pack key', async () => {
    const pack = Buffer.from('honest-bytes');
    const signed = (await (
      await api('/v1/volumes/packs/packs', { body: { size: pack.length, sha256: sha(pack) } })
    ).json()) as { key: string; request: { url: string } };
    assert.equal(
      (
        await fetch(signed.request.url, {
          method: 'PUT',
          body: pack,
          headers: { 'content-length': String(pack.length) },
        })
      ).status,
      201,
    );
    const lie = sha('other content');
    const head = (await vol.refresh()).head;
    const commit = (packs: unknown) =>
      api('/v1/volumes/packs/commits', {
        body: {
          changes: [{ op: 'put', path: '/poisoned', size: pack.length, chunkSize: SMALL_CHUNK_SIZE, chunks: [lie] }],
          packs,
        },
      });
    const r1 = await commit([{ key: signed.key, chunks: [{ hash: lie, offset: 0, size: pack.length }] }]);
    assert.equal(r1.status, 400);
    assert.match(((await r1.json()) as { error: { message: string } }).error.message, /do not hash/);
    const r2 = await commit([
      { key: `packs/aa/${'a'.repeat(64)}-0000000000000000`, chunks: [{ hash: lie, offset: 0, size: pack.length }] },
    ]);
    assert.equal(r2.status, 412, 'a pack never uploaded is like a chunk never uploaded');
    const r3 = await commit([{ key: '../../etc/passwd', chunks: [{ hash: lie, offset: 0, size: pack.length }] }]);
    assert.equal(r3.status, 400);
    assert.equal((await vol.refresh()).head, head, 'nothing committed');
  });

  it('accepts a pack listed 1000 times (verified once) and refuses one key declared with two layouts', async () => {
    const files = ['first small file\n', 'second small file\n'].map((t) => Buffer.from(t));
    const pack = Buffer.concat(files);
    const signed = (await (
      await api('/v1/volumes/packs/packs', { body: { size: pack.length, sha256: sha(pack) } })
    ).json()) as { key: string; request: { url: string } };
    assert.equal(
      (
        await fetch(signed.request.url, {
          method: 'PUT',
          body: pack,
          headers: { 'content-length': String(pack.length) },
        })
      ).status,
      201,
    );
    const chunks = [
      { hash: sha(files[0]!), offset: 0, size: files[0]!.length },
      { hash: sha(files[1]!), offset: files[0]!.length, size: files[1]!.length },
    ];
    const changes = files.map((f, i) => ({
      op: 'put',
      path: `/many/${i}`,
      size: f.length,
      chunkSize: SMALL_CHUNK_SIZE,
      chunks: [sha(f)],
    }));
    const twoLayouts = await api('/v1/volumes/packs/commits', {
      body: {
        changes,
        packs: [
          { key: signed.key, chunks },
          { key: signed.key, chunks: [{ hash: sha(pack), offset: 0, size: pack.length }] },
        ],
      },
    });
    assert.equal(twoLayouts.status, 400);
    assert.match(((await twoLayouts.json()) as { error: { message: string } }).error.message, /declared twice/);
    // That the pack is read once is counted in the engine test (chunk-ownership.test.ts); here: it commits.
    const ok = await api('/v1/volumes/packs/commits', {
      body: { changes, packs: Array.from({ length: 1000 }, () => ({ key: signed.key, chunks })) },
    });
    assert.equal(ok.status, 201, await ok.clone().text());
    assert.equal((await vol.files.read('/many/1')).toString(), 'second small file\n');
  });
});
