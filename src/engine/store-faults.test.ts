/**
 * @module engine/store-faults.test
 * The engine over stores that fail for a moment (withFaults over a real
 * SQLite file and a real blob directory): behind withRetry a write rides the
 * faults out and the plan shows they happened; without it the write fails
 * with Unavailable and publishes nothing, and succeeds once the store heals.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { UnavailableError } from '@stowage/sdk/common/errors.js';
import type { RetryPolicy } from '@stowage/sdk/common/retry.js';
import type { BlobStore } from '../stores/blob-store.js';
import { LocalBlobStore } from '../stores/local/local-blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { openSqliteMetadataStore } from '../stores/sql/sqlite-dialect.js';
import { FaultPlan, withFaults } from '../stores/wrappers/fault-store.js';
import { STORE_RETRY, withRetry } from '../stores/wrappers/retry-store.js';
import { createEngine } from './engine.js';

const QUICK: RetryPolicy = { ...STORE_RETRY, baseDelayMs: 1, maxDelayMs: 2 };
const down = (m: string) => new UnavailableError(`injected: ${m} unavailable`);
const bytes = async function* (s: string) {
  yield Buffer.from(s);
};

describe('engine over briefly failing stores', () => {
  let dir: string;
  let md: MetadataStore;
  let blobs: BlobStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'stowage-engine-faults-'));
    md = await openSqliteMetadataStore({ path: join(dir, 'meta.db') });
    blobs = await LocalBlobStore.open({ dir: join(dir, 'blobs') });
  });
  afterEach(async () => {
    await md.close();
    await blobs.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** An engine over the faulted stores (retried when `retried`), with a tenant and a volume. */
  async function setUp(plan: FaultPlan, retried: boolean) {
    const fmd = withFaults(md, plan);
    const fblobs = withFaults(blobs, plan);
    const engine = createEngine({
      metadata: retried ? withRetry(fmd, QUICK) : fmd,
      blobs: retried ? withRetry(fblobs, QUICK) : fblobs,
    });
    const actor = await engine.authenticate((await engine.createTenant('acme')).secret);
    await engine.createVolume(actor, 'data');
    return { engine, actor };
  }

  it('behind withRetry: a write and a read ride out metadata and blob faults, which really happened', async () => {
    const plan = new FaultPlan();
    const { engine, actor } = await setUp(plan, true);
    plan.fail('getVolumeByName', 2, down).fail('transaction', 1, down).fail('get', 2, down);
    await engine.writeFile(actor, 'data', '/a.txt', bytes('hello'));
    const read = await engine.readFile(actor, 'data', '/a.txt');
    assert.equal(await text(read.body), 'hello');
    assert.equal(plan.faulted('getVolumeByName'), 2);
    assert.equal(plan.faulted('transaction'), 1);
    assert.equal(plan.faulted('get'), 2);
    assert.ok(
      plan.calls('getVolumeByName') > 2 && plan.calls('transaction') > 1 && plan.calls('get') > 2,
      'each faulted call was tried again',
    );
  });

  it('without it: the write fails with Unavailable, publishes nothing, and passes once the store heals', async () => {
    const plan = new FaultPlan();
    const { engine, actor } = await setUp(plan, false);
    const before = (await engine.getVolume(actor, 'data')).head;
    plan.fail('transaction', Infinity, down);
    await assert.rejects(engine.writeFile(actor, 'data', '/b.txt', bytes('lost?')), { code: 'Unavailable' });
    assert.ok(plan.faulted('transaction') >= 1);
    plan.clear();
    assert.equal((await engine.getVolume(actor, 'data')).head, before, 'the head did not move');
    await assert.rejects(engine.stat(actor, 'data', '/b.txt'), { code: 'NotFound' });
    await engine.writeFile(actor, 'data', '/b.txt', bytes('kept'));
    assert.equal((await engine.stat(actor, 'data', '/b.txt')).entry.size, 4);
  });
});
