import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, chown, link, lstat, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shiftIds } from './uid-shift.js';

describe('uid shift of an image root', () => {
  it('adds 100000 to every owner, keeps setuid/setgid modes, shifts a hard link once and never follows a symlink', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-shift-'));
    const outside = join(dir, 'outside');
    const root = join(dir, 'root');
    try {
      await writeFile(outside, 'host file');
      await mkdir(join(root, 'bin'), { recursive: true });
      await writeFile(join(root, 'bin', 'su'), 'x');
      await chmod(join(root, 'bin', 'su'), 0o4755);
      await writeFile(join(root, 'bin', 'wall'), 'x');
      await chown(join(root, 'bin', 'wall'), 0, 5);
      await chmod(join(root, 'bin', 'wall'), 0o2755);
      await writeFile(join(root, 'user-file'), 'x');
      await chown(join(root, 'user-file'), 1000, 1000);
      await link(join(root, 'user-file'), join(root, 'hard-link'));
      await symlink(outside, join(root, 'escape'));
      assert.equal(await shiftIds(root), 6, 'root, bin, su, wall, the linked inode once, the symlink');
      const st = async (p: string) => lstat(join(root, p));
      assert.deepEqual([(await st('')).uid, (await st('')).gid], [100000, 100000]);
      assert.equal((await st('bin/su')).uid, 100000);
      assert.equal((await st('bin/su')).mode & 0o7777, 0o4755, 'setuid kept');
      assert.deepEqual(
        [(await st('bin/wall')).gid, (await st('bin/wall')).mode & 0o7777],
        [100005, 0o2755],
        'setgid kept',
      );
      assert.deepEqual(
        [(await st('user-file')).uid, (await st('hard-link')).gid],
        [101000, 101000],
        'a hard-linked inode is shifted once',
      );
      assert.equal((await st('escape')).uid, 100000, 'the link itself is shifted');
      assert.equal((await lstat(outside)).uid, 0, 'the file it points at, outside the image, is untouched');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a file whose owner has no place in the sandbox id range', async () => {
    const root = await mkdtemp(join(tmpdir(), 'stowage-shift-'));
    try {
      await writeFile(join(root, 'f'), 'x');
      await chown(join(root, 'f'), 70000, 0);
      await assert.rejects(shiftIds(root), (e: Error) => /\/f is owned by 70000:0, outside/.test(e.message));
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
