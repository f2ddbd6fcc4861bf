/** The engine's tokens and tenants: authentication, tenant isolation, volume-scoped tokens. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { world, close, type World } from './engine-world.test-helper.js';

describe('engine tokens and tenants', () => {
  let w: World;
  before(async () => {
    w = await world();
  });
  after(async () => {
    await close(w);
  });

  it('refuses unknown, malformed, revoked and expired tokens', async () => {
    for (const bad of ['', 'garbage', 'tok_xxxxxxxxxxxxxxxxxxxx.secret', `${w.actor.tokenId}.wrong`]) {
      await assert.rejects(w.engine.authenticate(bad), { code: 'Unauthenticated' });
    }
    const { token, secret } = await w.engine.createToken(w.actor, { name: 'ci', expiresIn: 60 });
    assert.equal((await w.engine.authenticate(secret)).tokenId, token.id);
    w.clock.t += 61_000;
    await assert.rejects(w.engine.authenticate(secret), { code: 'Unauthenticated', message: /expired/ });
    const other = await w.engine.createToken(w.actor, { name: 'other' });
    await w.engine.revokeToken(w.actor, other.token.id);
    await assert.rejects(w.engine.authenticate(other.secret), { code: 'Unauthenticated', message: /revoked/ });
  });

  it('hides other tenants volumes as not found', async () => {
    await w.engine.createVolume(w.actor, 'private');
    const other = await w.engine.createTenant('globex');
    const them = await w.engine.authenticate(other.secret);
    await assert.rejects(w.engine.getVolume(them, 'private'), { code: 'NotFound' });
    await assert.rejects(w.engine.stat(them, 'private', '/'), { code: 'NotFound' });
    await assert.rejects(w.engine.deleteVolume(them, 'private'), { code: 'NotFound' });
    assert.deepEqual(await w.engine.listVolumes(them), []);
    await assert.rejects(w.engine.revokeToken(them, w.actor.tokenId), { code: 'NotFound' });
    // The same name in another tenant is a different volume.
    await w.engine.createVolume(them, 'private');
  });

  it('scopes volume tokens to one volume, read-only when asked', async () => {
    await w.engine.createVolume(w.actor, 'scoped');
    await w.engine.createVolume(w.actor, 'elsewhere');
    const ro = await w.engine.authenticate(
      (await w.engine.createToken(w.actor, { name: 'mount', volume: 'scoped', readOnly: true })).secret,
    );
    await w.engine.stat(ro, 'scoped', '/');
    await assert.rejects(w.engine.stat(ro, 'elsewhere', '/'), { code: 'NotFound' });
    await assert.rejects(w.engine.commit(ro, 'scoped', { changes: [{ op: 'mkdir', path: '/d' }] }), {
      code: 'ReadOnly',
    });
    await assert.rejects(w.engine.createVolume(ro, 'new'), { code: 'Forbidden' });
    assert.deepEqual(
      (await w.engine.listVolumes(ro)).map((v) => v.name),
      ['scoped'],
    );
  });
});
