/** The engine's attachments: leases on the engine clock. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { world, close, type World } from './engine-world.test-helper.js';

describe('engine attachments', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(async () => {
    await close(w);
  });

  it('leases run on the engine clock: renew extends by the lease, a lapsed RWO mount gives way', async () => {
    await w.engine.createVolume(w.actor, 'leased');
    const a = await w.engine.attach(w.actor, 'leased', { host: 'h1', path: '/m' });
    assert.equal(a.tokenExpiresAt.getTime(), w.clock.t + 60_000);
    const mount = await w.engine.authenticate(a.secret);
    assert.equal(mount.attachmentId, a.attachment.id);
    assert.equal(mount.volumeId, a.volume.id);
    w.clock.t += 30_000;
    const r = await w.engine.renewAttachment(mount, a.attachment.id);
    assert.equal(r.tokenExpiresAt.getTime(), w.clock.t + 60_000);
    await assert.rejects(w.engine.attach(w.actor, 'leased', { host: 'h2', path: '/m' }), { code: 'Conflict' });
    w.clock.t += 60_000;
    await assert.rejects(w.engine.authenticate(a.secret), { code: 'Unauthenticated' });
    const b = await w.engine.attach(w.actor, 'leased', { host: 'h2', path: '/m' });
    const all = await w.engine.listAttachments(w.actor, 'leased', { all: true });
    assert.deepEqual(
      all.map((x) => [x.id, x.state, x.reason]),
      [
        [a.attachment.id, 'failed', 'lease expired: the mount agent stopped renewing'],
        [b.attachment.id, 'mounted', null],
      ],
    );
    assert.equal((await w.md.getToken(mount.tokenId))?.revokedAt?.getTime(), w.clock.t);
  });
});
