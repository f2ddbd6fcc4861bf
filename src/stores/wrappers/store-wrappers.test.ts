/**
 * @module stores/wrappers/store-wrappers.test
 * withRetry and withFaults over real stores (a SQLite file, a local blob
 * directory): both conformance suites pass through the wrappers unchanged;
 * injected transient failures are ridden out and counted, permanent ones
 * and exhausted retries surface at once and unchanged, and calls that
 * cannot be replayed (a put of a stream, a listing, close) are never retried.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { ConflictError, NotFoundError, UnavailableError } from '@stowage/sdk/common/errors.js';
import { TenantId } from '@stowage/sdk/common/ids.js';
import type { RetryPolicy } from '@stowage/sdk/common/retry.js';
import { listAll, runBlobStoreConformance } from '../blob-store.conformance.js';
import type { BlobStore } from '../blob-store.js';
import { LocalBlobStore } from '../local/local-blob-store.js';
import { UrlSigner } from '../local/url-signer.js';
import { runMetadataStoreConformance } from '../metadata-store.conformance.js';
import type { MetadataStore, TenantRecord } from '../metadata-store.js';
import { openSqliteMetadataStore } from '../sql/sqlite-dialect.js';
import { FaultPlan, withFaults } from './fault-store.js';
import { STORE_RETRY, withRetry } from './retry-store.js';

/** STORE_RETRY without the waiting, so the tests are fast. */
const QUICK: RetryPolicy = { ...STORE_RETRY, baseDelayMs: 1, maxDelayMs: 2 };
const signer = new UrlSigner({ secret: 'wrapped blob store test secret', baseUrl: 'http://127.0.0.1:7420' });
const down = (m: string) => new UnavailableError(`injected: ${m} unavailable`);

runBlobStoreConformance('local, behind withRetry(withFaults) with an empty plan', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-wrapped-blob-'));
  const store = withRetry(
    withFaults(await LocalBlobStore.open({ dir: join(dir, 'blobs'), signer }), new FaultPlan()),
    QUICK,
  );
  return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

runMetadataStoreConformance('sqlite file, behind withRetry(withFaults) with an empty plan', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'stowage-wrapped-md-'));
  const store = withRetry(
    withFaults(await openSqliteMetadataStore({ path: join(dir, 'metadata.db') }), new FaultPlan()),
    QUICK,
  );
  return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

describe('store wrappers over a real blob directory', () => {
  let dir: string;
  let real: BlobStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stowage-faults-blob-'));
    real = await LocalBlobStore.open({ dir: join(dir, 'blobs') });
    await real.put('k/1', new TextEncoder().encode('one'));
  });
  afterEach(async () => {
    await real.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('rides out a store that fails briefly, and the plan shows the faulted and the retried calls', async () => {
    const plan = new FaultPlan().fail('head', 2, down).fail('put', 3, down);
    const retried: number[] = [];
    const blobs = withRetry(withFaults(real, plan), QUICK, { onRetry: (_e, n) => retried.push(n) });
    assert.equal((await blobs.head('k/1'))?.size, 3);
    assert.equal(plan.calls('head'), 3);
    assert.equal(plan.faulted('head'), 2);
    await blobs.put('k/2', new TextEncoder().encode('two!'));
    assert.equal(plan.calls('put'), 4, 'three faulted puts, then the one that stored');
    assert.equal((await real.head('k/2'))?.size, 4, 'the retried put reached the real store');
    assert.deepEqual(retried, [1, 2, 1, 2, 3]);
  });

  it("gives up after the policy's attempts with the store's own error", async () => {
    const plan = new FaultPlan().fail('get', Infinity, down);
    const blobs = withRetry(withFaults(real, plan), QUICK);
    await assert.rejects(blobs.get('k/1'), { code: 'Unavailable', message: /injected: get/ });
    assert.equal(plan.calls('get'), STORE_RETRY.attempts);
    plan.clear();
    assert.equal(
      Buffer.concat(await (await blobs.get('k/1')).toArray()).toString(),
      'one',
      'healed: the call passes again',
    );
  });

  it('never retries a permanent error, a put of a stream, a listing or close', async () => {
    const plan = new FaultPlan().fail('get', 1, () => new NotFoundError('injected: gone'));
    const blobs = withRetry(withFaults(real, plan), QUICK);
    await assert.rejects(blobs.get('k/1'), { code: 'NotFound' });
    assert.equal(plan.calls('get'), 1);

    plan.fail('put', 1, down);
    await assert.rejects(blobs.put('k/3', Readable.from([Buffer.from('streamed')])), { code: 'Unavailable' });
    assert.equal(plan.calls('put'), 1, 'a stream body was consumed by the first try: not replayed');
    assert.equal(await real.head('k/3'), undefined);

    plan.fail('list', 1, down);
    await assert.rejects(listAll(blobs, 'k/'), { code: 'Unavailable' });
    assert.equal(plan.calls('list'), 1);
    assert.deepEqual(
      (await listAll(blobs, 'k/')).map((b) => b.key),
      ['k/1'],
      'a listing that was not faulted streams the real keys',
    );
  });

  it('faults only the calls a predicate picks', async () => {
    const plan = new FaultPlan().fail('*', Infinity, down, (_m, args) => args[0] === 'k/bad');
    const blobs = withFaults(real, plan);
    await assert.rejects(blobs.head('k/bad'), { code: 'Unavailable' });
    assert.equal((await blobs.head('k/1'))?.size, 3);
    assert.equal(plan.faulted(), 1);
    assert.equal(plan.calls(), 2);
    assert.throws(() => plan.fail('get', -1, down), RangeError);
  });
});

describe('store wrappers over a real SQLite file', () => {
  let dir: string;
  let real: MetadataStore;
  const tenant = (name: string): TenantRecord => ({
    id: TenantId.new(),
    name,
    defaultCap: 1024,
    storageQuota: null,
    uncommittedQuota: null,
    createdAt: new Date(),
  });
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stowage-faults-md-'));
    real = await openSqliteMetadataStore({ path: join(dir, 'metadata.db') });
  });
  afterEach(async () => {
    await real.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('retries a whole transaction that failed transiently; its writes land once', async () => {
    const plan = new FaultPlan().fail('transaction', 2, down);
    const md = withRetry(withFaults(real, plan), QUICK);
    const t = tenant('acme');
    await md.transaction(async (tx) => tx.insertTenant(t));
    assert.equal(plan.calls('transaction'), 3);
    assert.deepEqual(
      (await real.listTenants()).filter((x) => x.name === 'acme').map((x) => x.id),
      [t.id],
    );
  });

  it('passes a store error that is not transient through untouched', async () => {
    const md = withRetry(withFaults(real, new FaultPlan()), QUICK);
    const t = tenant('dup');
    await md.insertTenant(t);
    await assert.rejects(md.insertTenant({ ...t, id: TenantId.new() }), { code: 'AlreadyExists' });
    const plan = new FaultPlan().fail('getTenant', 1, () => new ConflictError('injected'));
    await assert.rejects(withRetry(withFaults(real, plan), QUICK).getTenant(t.id), { code: 'Conflict' });
    assert.equal(plan.calls('getTenant'), 1);
  });
});
