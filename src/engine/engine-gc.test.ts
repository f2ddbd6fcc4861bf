/** The engine's garbage collection: what it keeps, what it sweeps, and packs. */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { sha, world, close, write, writePacked, read, type World } from './engine-world.test-helper.js';

describe('garbage collection', () => {
  // A fresh world per test: each moves its clock ahead of the blob store's.
  let w: World;
  beforeEach(async () => {
    w = await world();
  });
  afterEach(async () => {
    await close(w);
  });
  const hour = 3_600_000;

  it('keeps what heads, snapshots and recent work reference, and sweeps the rest', async () => {
    await w.engine.createVolume(w.actor, 'keep');
    await w.engine.createVolume(w.actor, 'gone');
    await write(w, 'keep', '/k', 'kept bytes');
    await write(w, 'gone', '/g', 'doomed bytes');
    await write(w, 'gone', '/s', 'snapshotted bytes');
    await w.engine.createSnapshot(w.actor, 'gone', { name: 'snap' });
    await w.engine.commit(w.actor, 'gone', { changes: [{ op: 'delete', path: '/s' }] });
    // An upload that was never committed.
    const stray = await w.engine.prepareUpload(w.actor, 'keep', [{ hash: sha(Buffer.from('stray')), size: 5 }]);
    await w.blobs.put(stray.missing[0]!.key, Buffer.from('stray'));

    // Within the grace period nothing goes.
    const early = await w.engine.gc({ retention: 0 });
    assert.equal(early.deletedObjects, 0);

    w.clock.t += 2 * hour;
    await w.engine.deleteVolume(w.actor, 'gone');
    const dry = await w.engine.gc({ retention: 0, dryRun: true });
    assert.equal(dry.deletedObjects, 3, 'doomed + snapshotted (volume deleted) + stray');
    assert.equal((await w.md.listChunks()).length, 3, 'dry run deletes nothing');
    const report = await w.engine.gc({ retention: 0 });
    assert.equal(report.deletedObjects, 3);
    assert.equal(report.deletedChunks, 2);
    assert.equal(await read(w, 'keep', '/k'), 'kept bytes');
    const keys = [];
    for await (const o of w.blobs.list('chunks/')) keys.push(o.key);
    assert.equal(keys.length, 1);
  });

  it('protects chunks a commit in flight was told are present', async () => {
    await w.engine.createVolume(w.actor, 'flight');
    await write(w, 'flight', '/old', 'reused content');
    await w.engine.commit(w.actor, 'flight', { changes: [{ op: 'delete', path: '/old' }] });
    w.clock.t += 2 * hour;
    // A writer learns the chunk is present (touching it) ...
    const asked = await w.engine.prepareUpload(w.actor, 'flight', [
      { hash: sha(Buffer.from('reused content')), size: 14 },
    ]);
    assert.equal(asked.present, 1);
    // ... GC runs before its commit lands ...
    await w.engine.gc({ retention: 0 });
    // ... and the commit still finds its chunk.
    await write(w, 'flight', '/new', 'reused content');
    assert.equal(await read(w, 'flight', '/new'), 'reused content');
  });

  it('keeps a pack while any chunk in it lives, and deletes it with the last one', async () => {
    await w.engine.createVolume(w.actor, 'packgc');
    await writePacked(w, 'packgc', { '/one': 'first file', '/two': 'second file' });
    await w.engine.commit(w.actor, 'packgc', { changes: [{ op: 'delete', path: '/one' }] });
    w.clock.t += 2 * hour;
    const first = await w.engine.gc({ retention: 0 });
    assert.equal(first.deletedChunks, 1);
    assert.equal(first.deletedObjects, 0, 'the pack still holds /two');
    assert.equal(await read(w, 'packgc', '/two'), 'second file');
    await w.engine.commit(w.actor, 'packgc', { changes: [{ op: 'delete', path: '/two' }] });
    w.clock.t += 2 * hour;
    const second = await w.engine.gc({ retention: 0 });
    assert.equal(second.deletedObjects, 1);
    const left = [];
    for await (const o of w.blobs.list('packs/')) left.push(o.key);
    assert.deepEqual(left, []);
  });

  it('keeps snapshot data after the head moves on', async () => {
    await w.engine.createVolume(w.actor, 'snapgc');
    await write(w, 'snapgc', '/f', 'in snapshot');
    const snap = await w.engine.createSnapshot(w.actor, 'snapgc', { name: 's' });
    await write(w, 'snapgc', '/f', 'newer');
    w.clock.t += 2 * hour;
    await w.engine.gc({ retention: 0 });
    assert.equal(await read(w, 'snapgc', '/f', snap.commitId), 'in snapshot');
  });
});
