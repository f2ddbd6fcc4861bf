/**
 * Writeback mounts commit on their own shortly after changes settle, and
 * `Volume.fromMount` (the SDK's handle on a mount) commits, reports status
 * and reloads through the agent's control socket.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Volume } from '@stowage/sdk';
import { alive, mountTestbed, shOk } from './helpers/mount.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const bed = mountTestbed('wb');

describe('writeback and Volume.fromMount', () => {
  let vol: Volume;

  before(async () => {
    vol = await Volume.create('wb', { accessMode: 'RWX', client: bed.client });
  });

  it('--writeback commits a closed file within a few seconds, without stowage commit', async () => {
    const mnt = join(bed.work, 'wb');
    await bed.mounts.mountOk('wb', mnt, ['--writeback']);
    const before = (await vol.refresh()).head;
    await shOk(`printf 'auto' > ${mnt}/auto.txt && mkdir ${mnt}/sub && printf 'x' > ${mnt}/sub/y`);
    let committed = false;
    for (let i = 0; i < 100 && !committed; i++) {
      await sleep(100);
      committed = (await vol.refresh()).head !== before && (await vol.files.exists('/sub/y'));
    }
    assert.ok(committed, 'the writeback commit landed');
    assert.equal((await vol.files.read('/auto.txt')).toString(), 'auto');
    assert.equal((await bed.mounts.status(mnt)).pending, 0);
    await bed.mounts.unmountOk(mnt);
  });

  it('--writeback commits changes replayed after a kill -9 of the agent, without waiting for a new write', async () => {
    const mnt = join(bed.work, 'wb-crash');
    const s = await bed.mounts.mountOk('wb', mnt, ['--writeback']);
    // Killed in the same breath as the write: inside the quiet delay, so nothing was committed.
    await shOk(`printf 'pending' > ${mnt}/replayed.txt && kill -9 ${s.pid}`);
    for (let i = 0; i < 50 && alive(s.pid); i++) await sleep(100);
    assert.equal(
      await vol.files.exists('/replayed.txt'),
      false,
      'the change was still uncommitted when the agent died',
    );
    const s2 = await bed.mounts.mountOk('wb', mnt, ['--writeback']);
    // The replay is in the agent's log; by the time `mount-status` answers, the writeback may already have run
    // (its 2 s quiet delay starts when the agent starts, and a loaded machine can take that long to answer).
    const log = readFileSync(join(bed.mounts.stateDir(mnt), 'agent.log'), 'utf8');
    assert.match(log, /restored 1 uncommitted operations/);
    assert.ok(
      s2.pending === 1 || (await vol.files.exists('/replayed.txt')),
      `pending ${s2.pending} and nothing committed`,
    );
    // No new write: the documented bound (10 s after the first uncommitted change) applies to replayed ones too.
    let committed = false;
    for (let i = 0; i < 150 && !committed; i++) {
      await sleep(100);
      committed = await vol.files.exists('/replayed.txt');
    }
    assert.ok(committed, 'the replayed change was committed by writeback');
    assert.equal((await vol.files.read('/replayed.txt')).toString(), 'pending');
    assert.equal((await bed.mounts.status(mnt)).pending, 0);
    await bed.mounts.unmountOk(mnt);
  });

  it('the agent holds only its scoped token: not in its environment, and config.json is 0600', async () => {
    const mnt = join(bed.work, 'tok');
    const st = await bed.mounts.mountOk('wb', mnt);
    const environ = readFileSync(`/proc/${st.pid}/environ`, 'utf8');
    assert.ok(!environ.includes(bed.srv.token), 'the tenant token is not in the agent environment');
    assert.ok(!environ.includes('STOWAGE_TOKEN='));
    const configPath = join(bed.mounts.stateDir(mnt), 'config.json');
    assert.equal(statSync(configPath).mode & 0o777, 0o600);
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as { token: string };
    assert.notEqual(config.token, bed.srv.token);
    // The scoped token reaches this volume only.
    const other = await fetch(`${bed.srv.url}/v1/volumes`, { headers: { authorization: `Bearer ${config.token}` } });
    const listed = (await other.json()) as { volumes: Array<{ name: string }> };
    assert.deepEqual(
      listed.volumes.map((v) => v.name),
      ['wb'],
    );
    await bed.mounts.unmountOk(mnt);
    const after = await fetch(`${bed.srv.url}/v1/volumes/wb`, { headers: { authorization: `Bearer ${config.token}` } });
    assert.equal(after.status, 401, 'unmount revoked the mount token');
  });

  it('Volume.fromMount: status, commit and reload act on the mount', async () => {
    const mnt = join(bed.work, 'sdk');
    await bed.mounts.mountOk('wb', mnt);
    // This process has no STOWAGE_MOUNT_STATE: the handle finds the agent through the kernel's mount table.
    assert.equal(process.env.STOWAGE_MOUNT_STATE, undefined);
    const handle = Volume.fromMount(mnt);
    {
      await shOk(`printf 'from sdk' > ${mnt}/sdk.txt`);
      assert.equal((await handle.status()).pending, 1);
      const res = await handle.commit({ message: 'via sdk' });
      assert.ok(res.commit);
      assert.equal((await vol.files.read('/sdk.txt')).toString(), 'from sdk');
      assert.equal((await vol.history({ limit: 1 })).commits[0]?.message, 'via sdk');

      await vol.files.write('/direct.txt', 'written directly');
      assert.equal(
        await shOk(`cat ${mnt}/direct.txt 2>/dev/null || echo missing`),
        'missing\n',
        'no live view before reload',
      );
      const re = await handle.reload();
      assert.equal(re.discarded, 0);
      assert.equal(await shOk(`cat ${mnt}/direct.txt`), 'written directly');

      await shOk(`printf 'dirty' > ${mnt}/dirty.txt`);
      await assert.rejects(
        handle.reload(),
        (e: Error & { code?: string }) => e.code === 'Conflict' && /1 uncommitted change/.test(e.message),
      );
      assert.equal((await handle.reload({ force: true })).discarded, 1);
      assert.equal(await shOk(`ls ${mnt}/dirty.txt 2>/dev/null || echo gone`), 'gone\n');
    }
    await assert.rejects(
      Volume.fromMount(join(bed.work, 'not-a-mount')).status(),
      (e: Error & { code?: string }) => e.code === 'NotFound',
    );
    await bed.mounts.unmountOk(mnt);
  });
});
