/**
 * @module test/mount.test
 * End-to-end tests of real FUSE mounts (`stowage mount`, the compiled CLI and
 * its agent process, against a real server): ordinary tools inside a mount
 * (cp, mv, rm, tar, git, sqlite3), POSIX edits of base files, the lazy view,
 * read-only and subpath mounts. Every file is reached from child processes
 * only; see test/helpers/mount.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { writeFile, mkdir, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { Volume } from '@stowage/sdk';
import { pattern } from './helpers/cli.js';
import { mountTestbed, cliOk, sh, sha256Of, shOk } from './helpers/mount.js';

const bed = mountTestbed('mount-test');
const { mountPoint } = bed;
const fresh = (prefix = 'm'): string => bed.fresh(prefix);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('ordinary tools inside a mount', () => {
  test('cp -r, mv, rm -r and tar x (files, dirs, symlinks) land in the commit', async () => {
    const vol = await Volume.create(fresh('tools'), { client: bed.client });
    await vol.files.write('/existing/old.txt', 'old\n', { createParents: true });
    const src = join(bed.work, fresh('src'));
    await mkdir(join(src, 'sub', 'deep'), { recursive: true });
    await writeFile(join(src, 'a.txt'), 'alpha\n');
    await writeFile(join(src, 'sub', 'b.bin'), pattern(300_000, 7));
    await writeFile(join(src, 'sub', 'deep', 'c.txt'), 'gamma\n');
    await symlink('a.txt', join(src, 'link'));
    await symlink('../a.txt', join(src, 'sub', 'up'));
    const tarball = join(bed.work, fresh('tar')) + '.tar';
    await shOk(`tar -C ${src} -cf ${tarball} .`);

    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    await shOk(`cp -r ${src} ${m}/copy && diff -r ${src} ${m}/copy`);
    await shOk(`mv ${m}/copy/sub ${m}/moved && mv ${m}/existing/old.txt ${m}/existing/renamed.txt`);
    await shOk(`mkdir ${m}/untar && tar -C ${m}/untar -xf ${tarball} && diff -r ${src} ${m}/untar`);
    await shOk(`cp -r ${m}/untar ${m}/doomed && rm -r ${m}/doomed`);
    assert.equal(
      await shOk(`readlink ${m}/untar/link; readlink ${m}/untar/sub/up; cat ${m}/untar/sub/up`),
      'a.txt\n../a.txt\nalpha\n',
    );
    assert.equal(await shOk(`ls ${m}`), 'copy\nexisting\nmoved\nuntar\n');

    const res = await bed.mounts.commit(m, 'tools');
    assert.ok(res.commit);
    assert.deepEqual(res.overwritten, []);
    assert.deepEqual(res.skipped, []);

    assert.deepEqual((await vol.files.list('/')).map((e) => e.name).sort(), ['copy', 'existing', 'moved', 'untar']);
    assert.deepEqual((await vol.files.list('/copy')).map((e) => e.name).sort(), ['a.txt', 'link']);
    assert.equal((await vol.files.read('/moved/b.bin')).equals(pattern(300_000, 7)), true);
    assert.equal((await vol.files.read('/moved/deep/c.txt')).toString(), 'gamma\n');
    assert.equal((await vol.files.read('/untar/sub/b.bin')).equals(pattern(300_000, 7)), true);
    const link = await vol.files.stat('/untar/link');
    assert.equal(link.type, 'symlink');
    assert.equal(link.target, 'a.txt');
    assert.equal((await vol.files.stat('/untar/sub/up')).target, '../a.txt');
    assert.equal(await vol.files.exists('/doomed'), false);
    assert.equal(await vol.files.exists('/existing/old.txt'), false);
    assert.equal((await vol.files.read('/existing/renamed.txt')).toString(), 'old\n');
    assert.equal((await bed.mounts.status(m)).pending, 0);
    await bed.mounts.unmountOk(m);
  });

  test('git init, add and commit inside a mount; the repository is in the volume', async () => {
    const vol = await Volume.create(fresh('git'), { client: bed.client });
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    const git = 'git -c user.name=T -c user.email=t@example.com -c init.defaultBranch=main';
    await shOk(
      `mkdir ${m}/repo && cd ${m}/repo && ${git} init -q && printf 'hello\\n' > README && mkdir src && printf 'x = 1\\n' > src/x.py && ${git} add . && ${git} commit -q -m first`,
    );
    await shOk(`cd ${m}/repo && printf 'more\\n' >> README && ${git} commit -q -am second`);
    assert.equal(await shOk(`cd ${m}/repo && git log --format=%s`), 'second\nfirst\n');
    assert.equal(await shOk(`cd ${m}/repo && git status --porcelain`), '');
    await shOk(`cd ${m}/repo && git fsck --strict 2>&1`);
    const head = (await shOk(`cd ${m}/repo && git rev-parse HEAD`)).trim();

    const res = await bed.mounts.commit(m);
    assert.ok(res.commit);
    assert.equal((await vol.files.read('/repo/README')).toString(), 'hello\nmore\n');
    assert.equal((await vol.files.read('/repo/src/x.py')).toString(), 'x = 1\n');
    assert.equal((await vol.files.stat('/repo/.git/HEAD')).type, 'file');
    assert.equal((await vol.files.read('/repo/.git/refs/heads/main')).toString().trim(), head);
    assert.equal(await vol.files.exists('/repo/.git/index.lock'), false);

    // The committed repository is whole: a fresh mount of the volume sees the same history.
    await bed.mounts.unmountOk(m);
    const m2 = await mountPoint();
    await bed.mounts.mountOk(vol.name, m2);
    assert.equal(
      await shOk(`cd ${m2}/repo && git log --format=%s && git --no-optional-locks status --porcelain`),
      'second\nfirst\n',
    );
    await bed.mounts.unmountOk(m2);
  });

  test('sqlite3 database: create and insert in a mount, commit, remount with a new agent, read the rows back', async () => {
    const vol = await Volume.create(fresh('sqlite'), { client: bed.client });
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    const rows = Array.from({ length: 200 }, (_, i) => `(${i}, 'row ${i} ${'x'.repeat(50)}')`).join(',');
    await shOk(`sqlite3 ${m}/app.db "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t VALUES ${rows};"`);
    await shOk(`sqlite3 ${m}/app.db "UPDATE t SET v = 'changed' WHERE id = 7; DELETE FROM t WHERE id >= 150;"`);
    assert.equal(
      await shOk(`sqlite3 ${m}/app.db "SELECT count(*), (SELECT v FROM t WHERE id = 7) FROM t;"`),
      '150|changed\n',
    );
    const res = await bed.mounts.commit(m);
    assert.ok(res.commit);
    assert.equal(await vol.files.exists('/app.db-journal'), false);
    const firstPid = (await bed.mounts.status(m)).pid;
    await bed.mounts.unmountOk(m);

    // A new agent on a new path, so nothing can come from the old one's overlay or cache.
    const m2 = await mountPoint();
    const s = await bed.mounts.mountOk(vol.name, m2);
    assert.notEqual(s.pid, firstPid);
    assert.equal(
      await shOk(
        `sqlite3 ${m2}/app.db "PRAGMA integrity_check; SELECT count(*), (SELECT v FROM t WHERE id = 7), (SELECT v FROM t WHERE id = 149) FROM t;"`,
      ),
      `ok\n150|changed|row 149 ${'x'.repeat(50)}\n`,
    );
    // And a second round of writes on the committed database works too.
    await shOk(`sqlite3 ${m2}/app.db "INSERT INTO t VALUES (1000, 'late');"`);
    await bed.mounts.commit(m2);
    await bed.mounts.unmountOk(m2);
    const m3 = await mountPoint();
    await bed.mounts.mountOk(vol.name, m3);
    assert.equal(
      await shOk(`sqlite3 ${m3}/app.db "SELECT count(*), (SELECT v FROM t WHERE id = 1000) FROM t;"`),
      '151|late\n',
    );
    // sqlite3 opens the database O_RDWR even to read it: that alone is no uncommitted change.
    assert.equal((await bed.mounts.status(m3)).pending, 0);
    await bed.mounts.unmountOk(m3);
  });
});

describe('POSIX edits of base files', () => {
  test('random writes, append, truncate, chmod, symlinks and directory renames are committed as the SDK sees them', async () => {
    const vol = await Volume.create(fresh('posix'), { client: bed.client });
    const big = pattern(3 * MiB, 21);
    await vol.files.writeMany(
      [
        { path: '/f/random.bin', data: big },
        { path: '/f/append.txt', data: 'line 1\n' },
        { path: '/f/shrink.bin', data: pattern(100_000, 22) },
        { path: '/f/grow.txt', data: 'abc' },
        { path: '/f/mode.sh', data: '#!/bin/sh\necho hi\n', mode: 0o644 },
        { path: '/dir/a/one.txt', data: 'one' },
        { path: '/dir/a/b/two.txt', data: 'two' },
      ],
      { createParents: true },
    );
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);

    // Random writes at three offsets (one across the 1 MiB boundary), without truncating.
    await shOk(`printf 'HEAD' | dd of=${m}/f/random.bin bs=1 seek=0 conv=notrunc status=none`);
    await shOk(`printf 'MIDDLE' | dd of=${m}/f/random.bin bs=1 seek=${MiB - 3} conv=notrunc status=none`);
    await shOk(`printf 'TAIL' | dd of=${m}/f/random.bin bs=1 seek=${3 * MiB - 4} conv=notrunc status=none`);
    const expected = Buffer.from(big);
    expected.write('HEAD', 0);
    expected.write('MIDDLE', MiB - 3);
    expected.write('TAIL', 3 * MiB - 4);
    assert.equal(await sha256Of(`${m}/f/random.bin`), sha(expected));

    await shOk(`printf 'line 2\\n' >> ${m}/f/append.txt && echo 'line 3' >> ${m}/f/append.txt`);
    await shOk(`truncate -s 1000 ${m}/f/shrink.bin && truncate -s 10 ${m}/f/grow.txt`);
    await shOk(`chmod 755 ${m}/f/mode.sh && ${m}/f/mode.sh > ${bed.work}/out.txt`);
    await shOk(`ln -s ../f/append.txt ${m}/dir/link && ln -s /etc/hostname ${m}/abs-link`);
    await shOk(`mv ${m}/dir/a ${m}/dir/renamed && mkdir ${m}/dir/a && echo new > ${m}/dir/a/new.txt`);
    assert.equal(
      await shOk(
        `cat ${m}/dir/link; cat ${m}/dir/renamed/b/two.txt; echo; stat -c %a ${m}/f/mode.sh; stat -c %s ${m}/f/shrink.bin ${m}/f/grow.txt`,
      ),
      'line 1\nline 2\nline 3\ntwo\n755\n1000\n10\n',
    );
    const st = await bed.mounts.status(m);
    assert.ok(st.pending > 0);

    const res = await bed.mounts.commit(m, 'posix edits');
    assert.ok(res.commit);
    assert.deepEqual(res.skipped, []);
    assert.equal(sha(await vol.files.read('/f/random.bin')), sha(expected));
    assert.equal((await vol.files.read('/f/append.txt')).toString(), 'line 1\nline 2\nline 3\n');
    assert.equal((await vol.files.read('/f/shrink.bin')).equals(pattern(100_000, 22).subarray(0, 1000)), true);
    assert.equal(
      (await vol.files.read('/f/grow.txt')).equals(Buffer.concat([Buffer.from('abc'), Buffer.alloc(7)])),
      true,
    );
    assert.equal((await vol.files.stat('/f/mode.sh')).mode & 0o777, 0o755);
    assert.deepEqual(
      [(await vol.files.stat('/dir/link')).target, (await vol.files.stat('/abs-link')).target],
      ['../f/append.txt', '/etc/hostname'],
    );
    assert.equal((await vol.files.read('/dir/renamed/one.txt')).toString(), 'one');
    assert.equal((await vol.files.read('/dir/renamed/b/two.txt')).toString(), 'two');
    assert.deepEqual(
      (await vol.files.list('/dir/a')).map((e) => e.name),
      ['new.txt'],
    );
    assert.equal((await vol.files.read('/dir/a/new.txt')).toString(), 'new\n');
    // The mount now shows the commit with a clean overlay, and the same bytes.
    assert.equal((await bed.mounts.status(m)).pending, 0);
    assert.equal(await sha256Of(`${m}/f/random.bin`), sha(expected));
    await bed.mounts.unmountOk(m);
  });
});

describe('files deleted while open', () => {
  test('stay readable through the open descriptor and never reach the volume, even when committed while open', async () => {
    const vol = await Volume.create(fresh('unlinked'), { client: bed.client });
    await vol.files.write('/held.txt', 'held\n');
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    // Unlink while open, then read and write through the descriptors.
    assert.equal(
      await shOk(
        `exec 3<${m}/held.txt 4<>${m}/temp.txt; rm ${m}/held.txt ${m}/temp.txt; echo scratch >&4; cat <&3; cat ${m}/held.txt 2>/dev/null || echo gone`,
      ),
      'held\ngone\n',
    );

    // A commit while another process still holds deleted files open.
    const holder = sh(
      `exec 3<>${m}/open-a.txt; echo a >&3; exec 4<>${m}/open-b.txt; rm ${m}/open-a.txt; mv ${m}/open-b.txt ${m}/kept.txt; touch ${m}/ready; sleep 2`,
    );
    for (let i = 0; i < 100 && (await sh(`test -e ${m}/ready`)).status !== 0; i++)
      await new Promise((r) => setTimeout(r, 50));
    const res = await bed.mounts.commit(m);
    assert.ok(res.commit);
    assert.equal((await holder).status, 0);
    const names = (await vol.files.list('/')).map((e) => e.name).sort();
    assert.deepEqual(names, ['kept.txt', 'ready']);
    assert.equal(await shOk(`ls -A ${m}`), 'kept.txt\nready\n');
    assert.equal((await bed.mounts.status(m)).pending, 0);
    await bed.mounts.unmountOk(m);
  });
});

describe('lazy view', () => {
  test('mounting and listing fetch no file bytes; reading a file fetches only its chunks', async () => {
    const vol = await Volume.create(fresh('lazy'), { client: bed.client });
    await vol.files.writeMany(
      [
        { path: '/a.bin', data: pattern(MiB, 31) },
        { path: '/d/b.bin', data: pattern(2 * MiB, 32) },
        { path: '/d/e/c.txt', data: 'c' },
      ],
      { createParents: true },
    );
    const m = await mountPoint();
    const s0 = await bed.mounts.mountOk(vol.name, m);
    assert.equal(s0.cache.chunks, 0);
    await shOk(`ls -laR ${m} > /dev/null && stat ${m}/d/b.bin > /dev/null`);
    const s1 = await bed.mounts.status(m);
    assert.deepEqual([s1.cache.chunks, s1.cache.bytes, s1.cache.misses], [0, 0, 0]);

    assert.equal(await sha256Of(`${m}/d/b.bin`), sha(pattern(2 * MiB, 32)));
    const s2 = await bed.mounts.status(m);
    assert.equal(s2.cache.chunks, 1);
    assert.equal(s2.cache.bytes, 2 * MiB);
    await bed.mounts.unmountOk(m);
  });
});

describe('read-only and subpath mounts', () => {
  test('a read-only mount refuses writes with EROFS and has nothing to commit', async () => {
    const vol = await Volume.create(fresh('ro'), { client: bed.client });
    await vol.files.write('/keep.txt', 'keep');
    const m = await mountPoint();
    const s = await bed.mounts.mountOk(vol.name, m, ['--read-only']);
    assert.equal(s.readOnly, true);
    assert.equal(await shOk(`cat ${m}/keep.txt`), 'keep');
    for (const cmd of [
      `touch ${m}/new.txt`,
      `echo x >> ${m}/keep.txt`,
      `mkdir ${m}/d`,
      `rm ${m}/keep.txt`,
      `mv ${m}/keep.txt ${m}/k2`,
      `chmod 600 ${m}/keep.txt`,
      `ln -s x ${m}/l`,
    ]) {
      const r = await sh(cmd);
      assert.notEqual(r.status, 0, cmd);
      assert.match(r.stderr, /Read-only file system/, cmd);
    }
    const c = await bed.mounts.cli(['commit', m]);
    assert.equal(c.status, 4, c.stderr);
    assert.match(c.stderr, /read-only/);
    assert.equal((await vol.files.read('/keep.txt')).toString(), 'keep');
    await bed.mounts.unmountOk(m);
  });

  test('--subpath shows only that subtree, and commits from it land under it', async () => {
    const vol = await Volume.create(fresh('sub'), { client: bed.client });
    await vol.files.writeMany(
      [
        { path: '/dir/a.txt', data: 'a' },
        { path: '/dir/inner/b.txt', data: 'b' },
        { path: '/other.txt', data: 'other' },
      ],
      { createParents: true },
    );
    const m = await mountPoint();
    const s = await bed.mounts.mountOk(vol.name, m, ['--subpath', '/dir']);
    assert.equal(s.subpath, '/dir');
    assert.equal(await shOk(`ls ${m}; cat ${m}/inner/b.txt`), 'a.txt\ninner\nb');
    await shOk(`echo new > ${m}/new.txt && mkdir ${m}/made && mv ${m}/a.txt ${m}/made/a.txt`);
    const res = await bed.mounts.commit(m);
    assert.ok(res.commit);
    assert.equal((await vol.files.read('/dir/new.txt')).toString(), 'new\n');
    assert.equal((await vol.files.read('/dir/made/a.txt')).toString(), 'a');
    assert.equal(await vol.files.exists('/dir/a.txt'), false);
    assert.equal(await vol.files.exists('/new.txt'), false);
    assert.equal(await vol.files.exists('/made'), false);
    assert.equal((await vol.files.read('/other.txt')).toString(), 'other');
    await bed.mounts.unmountOk(m);

    // VOLUME:/sub is the same as --subpath.
    const m2 = await mountPoint();
    await bed.mounts.mountOk(`${vol.name}:/dir/made`, m2);
    assert.equal(await shOk(`ls ${m2}`), 'a.txt\n');
    await bed.mounts.unmountOk(m2);
  });
});

test('the CLI reports a mount it cannot find', async () => {
  const r = await bed.mounts.cli(['mount-status', join(bed.work, 'not-a-mount')]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /not a Stowage mount/);
  cliOk(await bed.mounts.cli(['volume', 'ls']));
});
