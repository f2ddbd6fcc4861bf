/** The engine's volume service: names, get-or-create, caps, snapshots, restores and forks. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { world, close, write, read, type World } from './engine-world.test-helper.js';

describe('engine volumes', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(async () => {
    await close(w);
  });

  it('creates volumes with name rules and refuses duplicates', async () => {
    const v = await w.engine.createVolume(w.actor, 'data-1');
    assert.equal(v.cap, 2 * 1024 * MiB);
    assert.equal(v.accessMode, 'RWO');
    await assert.rejects(w.engine.createVolume(w.actor, 'data-1'), { code: 'AlreadyExists' });
    for (const bad of ['', 'Upper', '-x', 'a/b', 'a'.repeat(64), '..', 'a b']) {
      await assert.rejects(w.engine.createVolume(w.actor, bad), { code: 'InvalidArgument' }, bad);
    }
  });

  it('get-or-create is race-safe: concurrent calls yield one volume', async () => {
    const results = await Promise.all(Array.from({ length: 10 }, () => w.engine.getOrCreateVolume(w.actor, 'raced')));
    assert.equal(new Set(results.map((r) => r.volume.id)).size, 1);
    assert.equal(results.filter((r) => r.created).length, 1);
  });

  it('enforces the cap with a clear error, and resize lifts it', async () => {
    await w.engine.createVolume(w.actor, 'small', { cap: 10 });
    await write(w, 'small', '/a', '12345');
    const err = await write(w, 'small', '/b', '1234567').catch(
      (e: unknown) => e as Error & { code: string; details: { cap: number; size: number } },
    );
    assert.equal((err as { code: string }).code, 'QuotaExceeded');
    assert.match((err as Error).message, /capped at 10 B \(10 bytes\).*12 B \(12 bytes\)/);
    assert.deepEqual((err as { details: unknown }).details, { cap: 10, size: 12 });
    assert.equal((await w.engine.getVolume(w.actor, 'small')).size, 5);
    await w.engine.updateVolume(w.actor, 'small', { cap: 100 });
    await write(w, 'small', '/b', '1234567');
    assert.equal((await w.engine.getVolume(w.actor, 'small')).size, 12);
    // Shrinking below usage is allowed; commits that do not grow still pass.
    await w.engine.updateVolume(w.actor, 'small', { cap: 5 });
    await w.engine.commit(w.actor, 'small', { changes: [{ op: 'delete', path: '/b' }] });
  });

  it('snapshots, restores and forks copy-on-write', async () => {
    await w.engine.createVolume(w.actor, 'src');
    await write(w, 'src', '/doc', 'v1');
    const snap = await w.engine.createSnapshot(w.actor, 'src', { name: 'first' });
    await assert.rejects(w.engine.createSnapshot(w.actor, 'src', { name: 'first' }), { code: 'AlreadyExists' });
    await write(w, 'src', '/doc', 'v2');
    const fork = await w.engine.fork(w.actor, 'src', { name: 'copy', snapshot: 'first' });
    assert.equal(fork.size, 2);
    assert.equal(await read(w, 'copy', '/doc'), 'v1');
    await write(w, 'copy', '/doc', 'fork edit');
    assert.equal(await read(w, 'src', '/doc'), 'v2');
    const restored = await w.engine.restore(w.actor, 'src', { snapshot: 'first' });
    assert.equal(restored.commit.tree, (await w.md.getCommit(snap.commitId))!.tree);
    assert.equal(await read(w, 'src', '/doc'), 'v1');
    assert.equal(await read(w, 'copy', '/doc'), 'fork edit');
    assert.deepEqual(
      (await w.engine.listSnapshots(w.actor, 'src')).map((s) => s.name),
      ['first'],
    );
    await w.engine.deleteSnapshot(w.actor, 'src', 'first');
    await assert.rejects(w.engine.restore(w.actor, 'src', { snapshot: 'first' }), { code: 'NotFound' });
  });
});
