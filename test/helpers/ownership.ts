/**
 * @module test/helpers/ownership
 * The dedupe proof-of-ownership attack over real HTTP, as one scenario that
 * every deployment shape runs (local blobs, S3 through moto, PostgreSQL
 * metadata): a second tenant, and a token scoped to another volume, learn the
 * SHA-256 of content they do not have and try to commit it and read it.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import type { VolumeEngine } from '../../src/engine/types.js';
import { Stowage, Volume } from '@stowage/sdk';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface Answer {
  status: number;
  body: any;
}

/**
 * The attack, with assertions; `tag` keeps names unique when a server runs it
 * twice; `storeChecksHashes` says whether the blob store refuses a signed PUT
 * whose bytes do not match the signed SHA-256 (the local store does; moto does not).
 */
export async function runOwnershipAttack(
  srv: { url: string; token: string; engine: VolumeEngine },
  tag: string,
  storeChecksHashes: boolean,
): Promise<void> {
  const api = async (path: string, token: string, body?: unknown, method = 'POST'): Promise<Answer> => {
    const res = await fetch(`${srv.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const putChange = (path: string, bytes: Buffer) => ({
    op: 'put',
    path,
    size: bytes.length,
    chunkSize: SMALL_CHUNK_SIZE,
    chunks: [sha(bytes)],
  });

  // Alice stores a large secret (one signed chunk PUT) and a small one (packed) in "vault".
  const large = randomBytes(2 * 1024 * 1024 + 17);
  const small = Buffer.from(`alice's small secret ${randomBytes(8).toString('hex')}\n`);
  const alice = new Stowage({ url: srv.url, token: srv.token });
  const vault = await Volume.create(`vault-${tag}`, { client: alice });
  await vault.files.write('/large.bin', large);
  await vault.files.writeMany([{ path: '/small.txt', data: small }]);

  // Bob, another tenant, knows both hashes.
  const bob = (await srv.engine.createTenant(`bob-${tag}`)).secret;
  assert.equal((await api('/v1/volumes', bob, { name: 'loot' })).status, 201);
  for (const secret of [large, small]) {
    const ask = await api('/v1/volumes/loot/uploads', bob, {
      chunks: [
        { hash: sha(secret), size: secret.length },
        { hash: sha(secret), size: 7 },
      ],
    });
    assert.equal(ask.status, 200, JSON.stringify(ask.body));
    assert.equal(ask.body.present, 0, "no oracle: another tenant's chunk is reported missing");
    assert.equal(ask.body.missing.length, 1);
    const claim = await api('/v1/volumes/loot/commits', bob, { changes: [putChange('/stolen', secret)] });
    assert.equal(claim.status, 412, JSON.stringify(claim.body));
    assert.match(claim.body.error.message, /never uploaded or their upload expired/);
    assert.equal((await api('/v1/volumes/loot/content?path=/stolen', bob, undefined, 'GET')).status, 404);
  }

  // Bob forges a re-upload: the signed PUT for the large secret's hash, with other bytes of that size.
  const ask = await api('/v1/volumes/loot/uploads', bob, { chunks: [{ hash: sha(large), size: large.length }] });
  const m = ask.body.missing[0];
  const forged = Buffer.alloc(large.length, 0x5a);
  await fetch(m.request.url, { method: m.request.method, headers: m.request.headers, body: forged }).then((r) =>
    r.arrayBuffer(),
  );
  const forgedCommit = await api('/v1/volumes/loot/commits', bob, {
    changes: [putChange('/stolen', large)],
    uploads: [{ hash: m.hash, key: m.key }],
  });
  // A store that checks the signed SHA-256 refused the bytes (412: nothing uploaded); one that took them (moto)
  // is caught by the server's re-hash of an upload of already-stored content (400).
  assert.equal(forgedCommit.status, storeChecksHashes ? 412 : 400, JSON.stringify(forgedCommit.body));
  assert.equal((await api('/v1/volumes/loot/content?path=/stolen', bob, undefined, 'GET')).status, 404);

  // Bob uploads the same bytes himself: that works, and the content is stored once.
  const bobs = await Volume.get('loot', { client: new Stowage({ url: srv.url, token: bob }) });
  await bobs.files.write('/mine.bin', large);
  assert.equal(sha(await bobs.files.read('/mine.bin')), sha(large));
  assert.equal(sha(await vault.files.read('/large.bin')), sha(large));

  // A token scoped to another of Alice's volumes cannot reference vault's chunks by hash; Alice's tenant token can.
  await Volume.create(`other-${tag}`, { client: alice });
  const scoped = await api('/v1/tokens', srv.token, { name: 'other-only', volume: `other-${tag}` });
  assert.equal(scoped.status, 201, JSON.stringify(scoped.body));
  const cross = await api(`/v1/volumes/other-${tag}/commits`, scoped.body.secret, {
    changes: [putChange('/copy', small)],
  });
  assert.equal(cross.status, 412);
  assert.equal(
    (
      await api(`/v1/volumes/other-${tag}/uploads`, scoped.body.secret, {
        chunks: [{ hash: sha(small), size: small.length }],
      })
    ).body.present,
    0,
  );
  assert.equal(
    (await api(`/v1/volumes/other-${tag}/commits`, srv.token, { changes: [putChange('/copy', small)] })).status,
    201,
  );

  // A fork's scoped token may reference what the fork holds from its source.
  await vault.fork(`fork-${tag}`);
  const forkToken = await api('/v1/tokens', srv.token, { name: 'fork-only', volume: `fork-${tag}` });
  const reuse = await api(`/v1/volumes/fork-${tag}/commits`, forkToken.body.secret, {
    changes: [putChange('/again.bin', large)],
  });
  assert.equal(reuse.status, 201, JSON.stringify(reuse.body));
}
