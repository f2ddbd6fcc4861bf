/**
 * Quotas at the engine, over a real SQLite file: uncommitted upload bytes per
 * tenant (signed chunk and pack PUTs, staged uploads), one request against the
 * volume's cap, and the tenant-wide storage quota.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { MemoryBlobStore } from '../stores/memory/memory-blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { openSqliteMetadataStore } from '../stores/sql/sqlite-dialect.js';
import { createEngine, type Engine } from './engine.js';
import type { Actor } from './types.js';

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

interface World {
  dir: string;
  md: MetadataStore;
  blobs: MemoryBlobStore;
  engine: Engine;
  a: Actor;
  b: Actor;
  clock: { t: number };
}

async function world(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'stowage-quota-'));
  const md = await openSqliteMetadataStore({ path: join(dir, 'meta.db') });
  const blobs = new MemoryBlobStore();
  const clock = { t: Date.now() };
  const engine = createEngine({ metadata: md, blobs, now: () => new Date(clock.t), defaultUncommittedQuota: 1000 });
  const a = await engine.authenticate((await engine.createTenant('alice')).secret);
  const b = await engine.authenticate((await engine.createTenant('bob')).secret);
  return { dir, md, blobs, engine, a, b, clock };
}

const ask = (w: World, actor: Actor, volume: string, bytes: Buffer) =>
  w.engine.prepareUpload(actor, volume, [{ hash: sha(bytes), size: bytes.length }]);

async function commitUploaded(
  w: World,
  actor: Actor,
  volume: string,
  path: string,
  bytes: Buffer,
  missing: Array<{ hash: string; key: string }>,
) {
  for (const m of missing) await w.blobs.put(m.key, bytes, { sha256: m.hash });
  return w.engine.commit(actor, volume, {
    changes: [{ op: 'put', path, size: bytes.length, chunkSize: SMALL_CHUNK_SIZE, chunks: [sha(bytes)] }],
    uploads: missing.map((m) => ({ hash: m.hash, key: m.key })),
  });
}

describe('upload and storage quotas (engine)', () => {
  let w: World;
  beforeEach(async () => {
    w = await world();
    await w.engine.createVolume(w.a, 'data');
    await w.engine.createVolume(w.b, 'data');
  });
  afterEach(async () => {
    await w.md.close();
    rmSync(w.dir, { recursive: true, force: true });
  });

  it("counts signed chunk and pack PUTs against the tenant's uncommitted quota until committed", async () => {
    const first = randomBytes(600);
    const out = await ask(w, w.a, 'data', first);
    const err = (await ask(w, w.a, 'data', randomBytes(600)).catch((e: unknown) => e)) as {
      code: string;
      message: string;
      details: unknown;
    };
    assert.equal(err.code, 'QuotaExceeded');
    assert.match(
      err.message,
      /tenant "alice" may have at most 1000 B \(1000 bytes\) uploaded but not yet committed; 600 B \(600 bytes\) are pending/,
    );
    assert.deepEqual(err.details, { quota: 1000, pending: 600, size: 600 });
    await assert.rejects(w.engine.preparePack(w.a, 'data', { size: 500, sha256: sha(randomBytes(8)) }), {
      code: 'QuotaExceeded',
    });
    await w.engine.preparePack(w.a, 'data', { size: 400, sha256: sha(randomBytes(8)) });
    // Another tenant has its own quota.
    await ask(w, w.b, 'data', randomBytes(900));
    // Committing the first upload frees its bytes; the unused pack reservation still counts.
    await commitUploaded(w, w.a, 'data', '/first', first, out.missing);
    await ask(w, w.a, 'data', randomBytes(600));
    await assert.rejects(ask(w, w.a, 'data', randomBytes(1)), { code: 'QuotaExceeded' });
  });

  it('keeps the reservation of an upload a commit echoes but does not take in (its object waits for GC)', async () => {
    const bytes = randomBytes(600);
    const { missing } = await ask(w, w.a, 'data', bytes);
    await w.blobs.put(missing[0]!.key, bytes, { sha256: missing[0]!.hash });
    await w.engine.commit(w.a, 'data', {
      changes: [{ op: 'mkdir', path: '/d' }],
      uploads: missing.map((m) => ({ hash: m.hash, key: m.key })),
    });
    await assert.rejects(ask(w, w.a, 'data', randomBytes(600)), { code: 'QuotaExceeded' });
    await commitUploaded(w, w.a, 'data', '/now', bytes, missing);
    await ask(w, w.a, 'data', randomBytes(600));
  });

  it('lets reservations expire after the URL lifetime and the upload window', async () => {
    await ask(w, w.a, 'data', randomBytes(1000));
    await assert.rejects(ask(w, w.a, 'data', randomBytes(10)), { code: 'QuotaExceeded' });
    w.clock.t += 15 * 60_000 + 30 * 60_000 + 1;
    await ask(w, w.a, 'data', randomBytes(1000));
  });

  it("does not count chunks the tenant already owns, and counts the operator's own quota over the default", async () => {
    const bytes = randomBytes(800);
    await commitUploaded(w, w.a, 'data', '/x', bytes, (await ask(w, w.a, 'data', bytes)).missing);
    assert.equal((await ask(w, w.a, 'data', bytes)).missing.length, 0);
    await ask(w, w.a, 'data', randomBytes(1000));
    const t = await w.engine.setTenantQuotas('alice', { uncommittedQuota: 5000 });
    assert.equal(t.uncommittedQuota, 5000);
    assert.equal((await w.engine.getTenant(w.a)).uncommittedQuota, 5000);
    await ask(w, w.a, 'data', randomBytes(1000));
    await w.engine.setTenantQuotas('alice', { uncommittedQuota: null });
    assert.equal((await w.engine.getTenant(w.a)).uncommittedQuota, 1000, 'back to the default');
  });

  it("refuses one request larger than the volume's cap, naming cap and size", async () => {
    await w.engine.setTenantQuotas('alice', { uncommittedQuota: 10_000 });
    await w.engine.createVolume(w.a, 'tiny', { cap: 100 });
    const err = (await ask(w, w.a, 'tiny', randomBytes(101)).catch((e: unknown) => e)) as {
      code: string;
      details: unknown;
    };
    assert.equal(err.code, 'QuotaExceeded');
    assert.deepEqual(err.details, { cap: 100, size: 101 });
    await assert.rejects(w.engine.preparePack(w.a, 'tiny', { size: 101, sha256: sha(randomBytes(8)) }), {
      code: 'QuotaExceeded',
    });
    assert.equal(
      await w.md.pendingUploadBytes(w.a.tenantId, new Date(w.clock.t)),
      0,
      'a refused request reserves nothing',
    );
  });

  it('reserves staged uploads until released, and scopes release to the tenant', async () => {
    await w.engine.reserveStagedUpload(w.a, 'data', 'abc', 900, new Date(w.clock.t + 3600_000));
    await assert.rejects(w.engine.reserveStagedUpload(w.a, 'data', 'def', 200, new Date(w.clock.t + 3600_000)), {
      code: 'QuotaExceeded',
    });
    await w.engine.releaseStagedUpload(w.b, 'abc');
    await assert.rejects(
      ask(w, w.a, 'data', randomBytes(200)),
      { code: 'QuotaExceeded' },
      "bob cannot release alice's reservation",
    );
    await w.engine.releaseStagedUpload(w.a, 'abc');
    await ask(w, w.a, 'data', randomBytes(200));
    await assert.rejects(w.engine.reserveStagedUpload(w.b, 'nope', 'x', 1, new Date(w.clock.t + 1000)), {
      code: 'NotFound',
    });
  });

  it('refuses commits and forks that take the tenant over its storage quota, and lets it shrink', async () => {
    await w.engine.setTenantQuotas('alice', { storageQuota: 1000, uncommittedQuota: 10_000 });
    assert.equal((await w.engine.getTenant(w.a)).storageQuota, 1000);
    await w.engine.createVolume(w.a, 'second');
    const six = randomBytes(600);
    await commitUploaded(w, w.a, 'data', '/six', six, (await ask(w, w.a, 'data', six)).missing);
    const more = randomBytes(600);
    const err = (await commitUploaded(
      w,
      w.a,
      'second',
      '/more',
      more,
      (
        await ask(w, w.a, 'second', more)
      ).missing,
    ).catch((e: unknown) => e)) as { code: string; message: string; details: unknown };
    assert.equal(err.code, 'QuotaExceeded');
    assert.match(
      err.message,
      /storage quota of 1000 B \(1000 bytes\); this change to volume "second" would make its volumes hold 1.17 KiB \(1200 bytes\)/,
    );
    assert.deepEqual(err.details, { quota: 1000, size: 1200 });
    await assert.rejects(w.engine.fork(w.a, 'data', { name: 'copy' }), { code: 'QuotaExceeded' });
    // Bob's volumes are not Alice's usage.
    const bobs = randomBytes(900);
    await commitUploaded(w, w.b, 'data', '/b', bobs, (await ask(w, w.b, 'data', bobs)).missing);
    // Over the quota after the operator lowers it, deleting still works.
    await w.engine.setTenantQuotas('alice', { storageQuota: 100 });
    await w.engine.commit(w.a, 'data', { changes: [{ op: 'delete', path: '/six' }] });
    await w.engine.setTenantQuotas('alice', { storageQuota: null });
    await w.engine.fork(w.a, 'data', { name: 'copy' });
  });
});
