/**
 * State disks for real, as root: sparse ext4 loop files, overlay roots over
 * the busybox test image, processes inside as sandbox root (the build
 * sandbox: user namespace on the subordinate range, bwrap, no network).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isStowageError } from '@stowage/sdk/common/errors.js';
import type { Image } from '../src/sandbox/host/images.js';
import { treeDigest } from '../src/sandbox/host/image-spec.js';
import { runBuildCommand } from '../src/sandbox/host/build-sandbox.js';
import { isMountPoint, loopDevicesUnder } from '../src/sandbox/host/mounts.js';
import {
  closeStateDisk,
  createStateDisk,
  destroyStateDisk,
  mountRoot,
  openStateDisk,
  sandboxPaths,
} from '../src/sandbox/host/state-disk.js';
import { busyboxImage } from './helpers/sandbox-images.js';

/** Runs a shell command inside a sandbox root as sandbox root; returns exit code and output. */
async function inside(root: string, script: string): Promise<{ code: number | null; out: string }> {
  let out = '';
  const r = await runBuildCommand(root, ['/bin/sh', '-c', script], {
    env: { PATH: '/bin:/usr/bin:/sbin:/usr/sbin' },
    network: false,
    onOutput: (t) => (out += t),
    timeoutMs: 60_000,
  });
  return { code: r.code, out };
}

const MiB = 1024 * 1024;

describe('sandbox state disks', () => {
  let dataDir: string;
  let image: Image;
  before(async () => {
    image = await busyboxImage();
    dataDir = await mkdtemp(join(tmpdir(), 'stowage-disks-'));
  });
  after(async () => {
    for (const id of existsSync(join(dataDir, 'sandboxes')) ? await readdir(join(dataDir, 'sandboxes')) : [])
      await destroyStateDisk(dataDir, id);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('caps the disk: writing past diskGib is ENOSPC inside, the host disk and another sandbox are unaffected', async () => {
    const t0 = performance.now();
    const a = await createStateDisk(dataDir, 'cap-a', 64 / 1024);
    const t1 = performance.now();
    const rootA = await mountRoot(image, a);
    const t2 = performance.now();
    const b = await createStateDisk(dataDir, 'cap-b', 64 / 1024);
    const rootB = await mountRoot(image, b);
    console.log(`state disk: create ${Math.round(t1 - t0)} ms, overlay root ${Math.round(t2 - t1)} ms`);
    assert.equal((await stat(rootA)).uid, 100000, 'the root is owned by sandbox root');
    assert.ok((await stat(a.paths.image)).blocks * 512 < 16 * MiB, 'the disk file is sparse');
    const hostBefore = await statfs(dataDir);
    const full = await inside(rootA, 'dd if=/dev/zero of=/big bs=1M count=200; echo "exit=$?"');
    assert.match(full.out, /No space left on device/);
    assert.match(full.out, /exit=1/);
    const big = (await stat(join(rootA, 'big'))).size;
    assert.ok(big > 40 * MiB && big <= 64 * MiB, `the file stopped at the cap (${big} bytes)`);
    const hostAfter = await statfs(dataDir);
    const hostUsed = (hostBefore.bavail - hostAfter.bavail) * hostBefore.bsize;
    assert.ok(hostUsed < 80 * MiB, `the host lost ${hostUsed} bytes, no more than the cap`);
    const other = await inside(rootB, 'dd if=/dev/zero of=/ok bs=1M count=8 && echo wrote');
    assert.equal(other.code, 0, other.out);
    assert.equal((await stat(join(rootB, 'ok'))).size, 8 * MiB);
    assert.equal(
      existsSync(join(image.root, 'big')) || existsSync(join(image.root, 'ok')),
      false,
      'nothing reached the image',
    );
  });

  it('keeps the files across unmount and remount of the same disk (a daemon restart finds them)', async () => {
    const disk = await createStateDisk(dataDir, 'persist', 0.05);
    const root = await mountRoot(image, disk);
    assert.equal((await inside(root, 'mkdir -p /home/me && echo kept > /home/me/notes && rm /etc/passwd')).code, 0);
    await closeStateDisk(disk);
    assert.equal(await isMountPoint(root), false);
    assert.equal(await isMountPoint(disk.paths.disk), false);
    assert.deepEqual(await loopDevicesUnder(disk.paths.dir), [], 'the loop device went with the unmount');
    const t0 = performance.now();
    const reopened = await openStateDisk(dataDir, 'persist');
    const root2 = await mountRoot(image, reopened);
    const remountMs = performance.now() - t0;
    assert.equal(await readFile(join(root2, 'home', 'me', 'notes'), 'utf8'), 'kept\n');
    assert.equal(existsSync(join(root2, 'etc', 'passwd')), false, 'a deletion (whiteout) survives too');
    assert.ok(existsSync(join(image.root, 'etc', 'passwd')), 'while the image keeps its file');
    assert.equal(
      await mountRoot(image, await openStateDisk(dataDir, 'persist')),
      root2,
      'opening and mounting again is a no-op',
    );
    console.log(`state disk: reopen + remount ${Math.round(remountMs)} ms`);
  });

  it('tears down everything, lazily when a file is still open on the disk, deletes the disk file and never touches the image', async () => {
    const before = await treeDigest(image.root);
    const disk = await createStateDisk(dataDir, 'teardown', 0.05);
    const root = await mountRoot(image, disk);
    await writeFile(join(root, 'held'), 'open');
    // Another process holds a file open on the disk.
    const holder = spawn('sh', ['-c', `exec 3<"${join(root, 'held')}"; echo ready; sleep 30`], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    await new Promise<void>((r) => holder.stdout.once('data', () => r()));
    try {
      const t0 = performance.now();
      const done = await destroyStateDisk(dataDir, 'teardown');
      console.log(`state disk: teardown with an open file ${Math.round(performance.now() - t0)} ms`);
      assert.equal(done.removed, true);
      assert.ok(done.unmounted.includes(root) && done.unmounted.includes(disk.paths.disk), JSON.stringify(done));
      assert.equal(existsSync(disk.paths.dir), false, 'directory and disk file gone');
      assert.equal(await isMountPoint(root), false);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((r) => holder.on('close', r));
    }
    // Once the last file closes, the lazily unmounted file system and its loop device go.
    for (let i = 0; i < 50 && (await loopDevicesUnder(disk.paths.dir)).length > 0; i++)
      await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await loopDevicesUnder(disk.paths.dir), []);
    assert.equal(await treeDigest(image.root), before, 'the image is byte for byte the same');
    assert.deepEqual(
      await destroyStateDisk(dataDir, 'teardown'),
      { unmounted: [], detachedLoops: [], removed: true },
      'idempotent',
    );
  });

  it('refuses hostile ids and sizes before any path is built', async () => {
    const listing = async () =>
      existsSync(join(dataDir, 'sandboxes')) ? (await readdir(join(dataDir, 'sandboxes'))).sort() : [];
    const was = await listing();
    for (const id of ['../x', '..', '', 'a/b', 'x'.repeat(65), '-rf', 'A', 'a\0b', '.hidden']) {
      await assert.rejects(
        createStateDisk(dataDir, id, 1),
        (e: Error) => isStowageError(e, 'InvalidArgument') && /invalid sandbox id/.test(e.message),
        JSON.stringify(id),
      );
      await assert.rejects(destroyStateDisk(dataDir, id), (e: Error) => isStowageError(e, 'InvalidArgument'));
      await assert.rejects(openStateDisk(dataDir, id), (e: Error) => isStowageError(e, 'InvalidArgument'));
      assert.throws(() => sandboxPaths(dataDir, id));
    }
    for (const gib of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e9, 0.001, '1' as unknown as number]) {
      await assert.rejects(
        createStateDisk(dataDir, 'sizes', gib),
        (e: Error) => isStowageError(e, 'InvalidArgument'),
        String(gib),
      );
    }
    assert.deepEqual(await listing(), was, 'nothing was created');
    await createStateDisk(dataDir, 'twice', 0.05);
    await assert.rejects(createStateDisk(dataDir, 'twice', 0.05), (e: Error) => isStowageError(e, 'AlreadyExists'));
    await assert.rejects(openStateDisk(dataDir, 'never-made'), (e: Error) => isStowageError(e, 'NotFound'));
  });
});
