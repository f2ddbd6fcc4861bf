/**
 * The sweep after a crashed daemon: leftovers are made on purpose (a sandbox
 * whose daemon vanished with its disk and root mounted, a teardown cut short
 * after the directory went, a build directory of a builder that died) and
 * must all go, while a live sandbox keeps everything.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Image } from '../src/sandbox/host/images.js';
import { runOk } from '../src/sandbox/host/host-command.js';
import { isMountPoint, loopDevicesUnder, mountsUnder } from '../src/sandbox/host/mounts.js';
import { createStateDisk, destroyStateDisk, mountRoot } from '../src/sandbox/host/state-disk.js';
import { planSweep, sweep } from '../src/sandbox/host/sweep.js';
import { busyboxImage } from './helpers/sandbox-images.js';

describe('sweep of a crashed daemon', () => {
  let dataDir: string;
  let image: Image;
  before(async () => {
    image = await busyboxImage();
    dataDir = await mkdtemp(join(tmpdir(), 'stowage-sweep-'));
  });
  after(async () => {
    await sweep({ dataDir, isLive: () => false }).catch(() => undefined);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('tears down the mounts, loop devices, disk files and build directories left behind, and keeps a live sandbox', async () => {
    const sandboxes = join(dataDir, 'sandboxes');
    // A live sandbox and a dead one, both mounted, as a crash leaves them.
    const live = await createStateDisk(dataDir, 'live', 0.05);
    await mountRoot(image, live);
    await writeFile(join(live.paths.root, 'mine'), 'keep');
    const dead = await createStateDisk(dataDir, 'dead', 0.05);
    await mountRoot(image, dead);
    // A teardown cut short: its disk is still mounted (with its loop device) but its bookkeeping file is gone.
    const cut = await createStateDisk(dataDir, 'cut', 0.05);
    await rm(cut.paths.meta);
    // A loop device attached to a disk file and never mounted (a crash between losetup and mount).
    const orphan = join(sandboxes, 'orphan');
    await mkdir(orphan);
    await runOk(['truncate', '-s', '16M', join(orphan, 'disk.img')], 'test disk file');
    const loop = (await runOk(['losetup', '--find', '--show', join(orphan, 'disk.img')], 'test loop')).trim();
    // A build directory of a builder that died mid-build.
    const build = join(dataDir, 'images', `.build-${'e'.repeat(64)}-0000`);
    await mkdir(join(build, 'root', 'etc'), { recursive: true });

    const isLive = (id: string) => id === 'live';
    const plan = await planSweep({ dataDir, isLive });
    assert.deepEqual(plan.sandboxes, ['cut', 'dead', 'orphan']);
    assert.ok(await isMountPoint(dead.paths.root), 'planning removes nothing');

    const done = await sweep({ dataDir, isLive });
    assert.deepEqual(done.sandboxes, ['cut', 'dead', 'orphan']);
    assert.deepEqual(done.builds, [build]);
    for (const dir of [dead.paths.dir, cut.paths.dir, orphan, build])
      assert.equal(existsSync(dir), false, `${dir} removed`);
    assert.deepEqual(
      (await mountsUnder(sandboxes)).map((m) => m.mountPoint).sort(),
      [live.paths.disk, live.paths.root].sort(),
      'only the live sandbox is still mounted',
    );
    const loops = await loopDevicesUnder(sandboxes);
    assert.deepEqual(
      loops.map((l) => l.backFile),
      [live.paths.image],
      `only the live sandbox's loop device is left (${loop} was detached)`,
    );
    assert.equal(await readFile(join(live.paths.root, 'mine'), 'utf8'), 'keep');

    assert.deepEqual(
      await planSweep({ dataDir, isLive }),
      { sandboxes: [], strayMounts: [], strayLoops: [], builds: [] },
      'nothing left to sweep',
    );
    await destroyStateDisk(dataDir, 'live');
    assert.deepEqual(await loopDevicesUnder(sandboxes), []);
  });
});
