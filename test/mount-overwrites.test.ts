/**
 * The earlier writer is told (issue 10, bug 5): when another writer's later
 * commit changes, deletes or moves a path this mount committed, the mount's
 * `mount-status` and `reload` list it (and only such paths), and the reload
 * clears the list. Two real mounts of one RWX volume, plus an SDK writer.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import type { MountReloadResult, MountStatus } from '@stowage/sdk/common/mount-state.js';
import { Volume } from '@stowage/sdk';
import { cliOk, mountTestbed, shOk } from './helpers/mount.js';

const bed = mountTestbed('ow');

const paths = (list: Array<{ path: string }>): string[] => list.map((o) => o.path).sort();

async function reload(mnt: string): Promise<MountReloadResult> {
  return JSON.parse(cliOk(await bed.mounts.cli(['reload', mnt, '--json']))) as MountReloadResult;
}

describe('overwritten by others (issue 10, bug 5)', () => {
  let vol: Volume;
  let a: string;
  let b: string;

  before(async () => {
    vol = await Volume.create('ow', { accessMode: 'RWX', client: bed.client });
    await vol.files.write('/untouched.txt', 'base');
    a = await bed.mountPoint();
    b = await bed.mountPoint();
    await bed.mounts.mountOk('ow', a);
    await bed.mounts.mountOk('ow', b);
  });

  it('B overwrites /x after A committed it: A hears of /x only, once', async () => {
    await shOk(`printf 'A1' > ${a}/x && printf 'A keep' > ${a}/keep && mkdir ${a}/adir && printf 'in' > ${a}/adir/f`);
    const ca = await bed.mounts.commit(a);
    assert.ok(ca.commit);
    assert.deepEqual((await bed.mounts.status(a)).overwrittenByOthers, [], 'nothing overwritten yet');

    await reload(b);
    await shOk(`printf 'B1' > ${b}/x && printf 'B only' > ${b}/y && printf 'B base' > ${b}/untouched2`);
    const cb = await bed.mounts.commit(b);
    assert.ok(cb.commit);

    const st: MountStatus = await bed.mounts.status(a);
    assert.deepEqual(
      st.overwrittenByOthers,
      [{ path: '/x', commit: cb.commit.id }],
      'A is told of /x (not /y, not paths A never wrote, not /keep)',
    );
    // B wrote /x and /y itself last: B has nothing to hear.
    assert.deepEqual((await bed.mounts.status(b)).overwrittenByOthers, []);
    const human = cliOk(await bed.mounts.cli(['mount-status', a]));
    assert.match(human, /1 path this mount committed was changed since by another writer/);
    assert.match(human, /\/x {2}\(commit /);

    const r1 = await reload(a);
    assert.deepEqual(r1.overwrittenByOthers, [{ path: '/x', commit: cb.commit.id }]);
    assert.equal(await shOk(`cat ${a}/x`), 'B1');
    const r2 = await reload(a);
    assert.deepEqual(r2.overwrittenByOthers, [], 'the reload cleared the list');
    assert.deepEqual((await bed.mounts.status(a)).overwrittenByOthers, []);
  });

  it('B deletes the directory A committed: A hears of the directory and the file in it; an SDK writer counts too; a restart keeps the list', async () => {
    await shOk(`mkdir ${a}/d2 && printf 'mine' > ${a}/d2/f && printf 'A2' > ${a}/z && printf 'A' > ${a}/w`);
    assert.ok((await bed.mounts.commit(a)).commit);
    await reload(b);
    await shOk(`rm -rf ${b}/d2`);
    const cb = await bed.mounts.commit(b);
    assert.ok(cb.commit);
    // Another writer through the API (no mount) moves /z away, and overwrites /w...
    const moved = await vol.commitChanges([{ op: 'move', from: '/z', to: '/z-moved' }]);
    await vol.files.write('/w', 'SDK');
    // ...which A then writes again: /w is A's again, nothing to tell about it.
    await shOk(`printf 'A again' > ${a}/w`);
    assert.ok((await bed.mounts.commit(a)).commit);

    const expected = [
      { path: '/d2', commit: cb.commit!.id },
      { path: '/d2/f', commit: cb.commit!.id },
      { path: '/z', commit: moved.commit.id },
    ];
    assert.deepEqual((await bed.mounts.status(a)).overwrittenByOthers, expected);

    // The records live in the overlay db: a restarted agent still reports them.
    await bed.mounts.unmountOk(a);
    await bed.mounts.mountOk('ow', a);
    assert.deepEqual((await bed.mounts.status(a)).overwrittenByOthers, expected);
    assert.deepEqual(paths((await reload(a)).overwrittenByOthers), ['/d2', '/d2/f', '/z']);
    assert.deepEqual((await reload(a)).overwrittenByOthers, []);
  });
});
