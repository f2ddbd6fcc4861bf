/**
 * @module test/mount-sync.test
 * End-to-end tests of real FUSE mounts, between mounts: commit and reload
 * with two and three concurrent mounts of an RWX volume (merges,
 * last-writer-wins with the overwritten paths reported, reload refusing to
 * discard work), chunk-exact uploads, RWO refusal, and unmount refusing to
 * drop uncommitted work.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { Volume } from '@stowage/sdk';
import { pattern } from './helpers/cli.js';
import { mountTestbed, cliOk, isMounted, sha256Of, shOk } from './helpers/mount.js';

const bed = mountTestbed('mount-sync');
const { mountPoint } = bed;
const fresh = (prefix = 's'): string => bed.fresh(prefix);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('several mounts of one RWX volume', () => {
  test('three mounts write different paths, commit, reload, and each sees everything', async () => {
    const vol = await Volume.create(fresh('rwx'), { client: bed.client, accessMode: 'RWX' });
    await vol.files.write('/base.txt', 'base');
    const ms = [await mountPoint(), await mountPoint(), await mountPoint()];
    for (const [i, m] of ms.entries()) await bed.mounts.mountOk(vol.name, m, ['--host', `box-${i}`]);
    assert.equal((await vol.attachments()).length, 3);
    for (const [i, m] of ms.entries())
      await shOk(`mkdir ${m}/dir-${i} && echo ${i} > ${m}/dir-${i}/from-${i}.txt && echo ${i} > ${m}/top-${i}.txt`);
    // Nothing crosses before a commit and a reload.
    assert.equal(await shOk(`ls ${ms[0]}`), 'base.txt\ndir-0\ntop-0.txt\n');
    for (const m of ms) {
      const res = await bed.mounts.commit(m);
      assert.ok(res.commit);
      assert.deepEqual(res.overwritten, []);
    }
    // A commit merged the others' earlier commits and shows them (no reload needed for what came before it).
    assert.equal(await shOk(`ls ${ms[2]}`), 'base.txt\ndir-0\ndir-1\ndir-2\ntop-0.txt\ntop-1.txt\ntop-2.txt\n');
    for (const m of ms) cliOk(await bed.mounts.cli(['reload', m]));
    for (const m of ms) {
      assert.equal(await shOk(`ls ${m}`), 'base.txt\ndir-0\ndir-1\ndir-2\ntop-0.txt\ntop-1.txt\ntop-2.txt\n');
      assert.equal(
        await shOk(`cat ${m}/dir-0/from-0.txt ${m}/dir-1/from-1.txt ${m}/dir-2/from-2.txt ${m}/base.txt`),
        '0\n1\n2\nbase',
      );
      assert.equal((await bed.mounts.status(m)).pending, 0);
    }
    const head = (await vol.refresh()).head;
    for (const m of ms) assert.equal((await bed.mounts.status(m)).base, head);
    for (const m of ms) await bed.mounts.unmountOk(m);
    assert.equal((await vol.attachments()).length, 0);
  });

  test('a name the kernel was told is missing shows up at once after a reload brings it', async () => {
    const vol = await Volume.create(fresh('neg'), { client: bed.client, accessMode: 'RWX' });
    await vol.files.write('/dir/keep.txt', 'keep');
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    await vol.files.write('/late.txt', 'late');
    await vol.files.write('/dir/late.txt', 'late in dir');
    const mounted = await Volume.fromMount(m);
    // Missing in the mount's view: the kernel may cache these misses for a second ...
    assert.equal(
      await shOk(`test -e ${m}/late.txt && echo yes || echo no; test -e ${m}/dir/late.txt && echo yes || echo no`),
      'no\nno\n',
    );
    // ... and the reload that brings them takes those misses back.
    await mounted.reload();
    assert.equal(await shOk(`cat ${m}/late.txt; echo; cat ${m}/dir/late.txt`), 'late\nlate in dir');
    await bed.mounts.unmountOk(m);
  });

  test('same path in two mounts: the last commit wins and reports the path it overwrote', async () => {
    const vol = await Volume.create(fresh('lww'), { client: bed.client, accessMode: 'RWX' });
    await vol.files.write('/same.txt', 'original\n');
    const [a, b, c] = [await mountPoint(), await mountPoint(), await mountPoint()];
    await bed.mounts.mountOk(vol.name, a);
    await bed.mounts.mountOk(vol.name, b);
    await bed.mounts.mountOk(vol.name, c);
    await shOk(`echo from-a > ${a}/same.txt && echo a > ${a}/only-a.txt`);
    await shOk(`echo from-b > ${b}/same.txt`);
    await shOk(`echo from-c > ${c}/same.txt`);
    const ra = await bed.mounts.commit(a);
    assert.deepEqual(ra.overwritten, []);
    const rb = await bed.mounts.commit(b);
    assert.deepEqual(rb.overwritten, ['/same.txt']);
    assert.equal((await vol.files.read('/same.txt')).toString(), 'from-b\n');
    // The human output names the path too.
    const rc = await bed.mounts.cli(['commit', c, '-m', 'from c']);
    assert.equal(rc.status, 0, rc.stderr);
    assert.match(rc.stdout, /^[0-9a-f]{64}\n$/);
    assert.match(rc.stderr, /overwrote newer work of another writer on: \/same\.txt/);
    assert.equal((await vol.files.read('/same.txt')).toString(), 'from-c\n');
    // Nobody's other work was lost.
    assert.equal((await vol.files.read('/only-a.txt')).toString(), 'a\n');
    // The earlier versions stay in history.
    const log = await vol.history({ limit: 10 });
    assert.ok(log.commits.length >= 4);
    for (const m of [a, b]) cliOk(await bed.mounts.cli(['reload', m]));
    for (const m of [a, b, c]) assert.equal(await shOk(`cat ${m}/same.txt`), 'from-c\n');
    for (const m of [a, b, c]) await bed.mounts.unmountOk(m);
  });

  test('reload refuses to discard uncommitted changes (exit 4, names the count and --force); --force discards them', async () => {
    const vol = await Volume.create(fresh('reload'), { client: bed.client, accessMode: 'RWX' });
    await vol.files.write('/keep.txt', 'committed\n');
    const [a, b] = [await mountPoint(), await mountPoint()];
    await bed.mounts.mountOk(vol.name, a);
    await bed.mounts.mountOk(vol.name, b);
    await shOk(`echo other > ${b}/from-b.txt`);
    await bed.mounts.commit(b);

    await shOk(`echo scratch > ${a}/scratch.txt && echo edited > ${a}/keep.txt`);
    const refused = await bed.mounts.cli(['reload', a]);
    assert.equal(refused.status, 4, refused.stderr);
    assert.match(refused.stderr, /^stowage: reload would discard 2 uncommitted changes in .*--force/);
    // Nothing was discarded, nothing moved.
    assert.equal(await shOk(`cat ${a}/scratch.txt ${a}/keep.txt; ls ${a}`), 'scratch\nedited\nkeep.txt\nscratch.txt\n');
    assert.equal((await bed.mounts.status(a)).pending, 2);

    const forced = await bed.mounts.cli(['reload', a, '--force', '--json']);
    assert.equal(forced.status, 0, forced.stderr);
    assert.equal(JSON.parse(forced.stdout).discarded, 2);
    assert.equal(await shOk(`ls ${a}; cat ${a}/keep.txt`), 'from-b.txt\nkeep.txt\ncommitted\n');
    assert.equal((await bed.mounts.status(a)).pending, 0);
    assert.equal(await vol.files.exists('/scratch.txt'), false);
    // The human form warns how much it threw away.
    await shOk(`rm ${a}/keep.txt`);
    const human = await bed.mounts.cli(['reload', a, '--force']);
    assert.equal(human.status, 0, human.stderr);
    assert.match(human.stderr, /discarded 1 uncommitted change\b/);
    assert.equal(await shOk(`cat ${a}/keep.txt`), 'committed\n');
    for (const m of [a, b]) await bed.mounts.unmountOk(m);
  });
});

describe('chunk-exact uploads', () => {
  test('a 1-byte change inside a 20 MiB file uploads one chunk', async () => {
    const vol = await Volume.create(fresh('chunk'), { client: bed.client });
    const data = pattern(20 * MiB, 41);
    await vol.files.write('/big.bin', data);
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    await shOk(`printf 'Z' | dd of=${m}/big.bin bs=1 seek=${10 * MiB + 5} conv=notrunc status=none`);
    const res = await bed.mounts.commit(m);
    assert.equal(res.uploadedChunks, 1);
    assert.ok(res.uploadedBytes <= 8 * MiB, `uploaded ${res.uploadedBytes} bytes`);
    const expected = Buffer.from(data);
    expected[10 * MiB + 5] = 'Z'.charCodeAt(0);
    assert.equal(sha(await vol.files.read('/big.bin')), sha(expected));
    assert.equal(await sha256Of(`${m}/big.bin`), sha(expected));
    await bed.mounts.unmountOk(m);
  });

  test('appending after a full final chunk (a 16 MiB file) uploads one chunk', async () => {
    const vol = await Volume.create(fresh('append'), { client: bed.client });
    const data = pattern(16 * MiB, 42);
    await vol.files.write('/exact.bin', data);
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    await shOk(`printf '0123456789' >> ${m}/exact.bin`);
    const s = await bed.mounts.status(m);
    // The append needed no base bytes at all.
    assert.equal(s.cache.misses, 0);
    const res = await bed.mounts.commit(m);
    assert.equal(res.uploadedChunks, 1);
    assert.equal(res.uploadedBytes, 10);
    const got = await vol.files.read('/exact.bin');
    assert.equal(got.length, 16 * MiB + 10);
    assert.equal(sha(got), sha(Buffer.concat([data, Buffer.from('0123456789')])));
    await bed.mounts.unmountOk(m);
  });
});

describe('access modes', () => {
  test('RWO: a second read-write mount is refused naming the first; read-only alongside works; after unmount a new one works', async () => {
    const vol = await Volume.create(fresh('rwo'), { client: bed.client });
    await vol.files.write('/f.txt', 'f');
    const [a, b, c] = [await mountPoint(), await mountPoint(), await mountPoint()];
    await bed.mounts.mountOk(vol.name, a, ['--host', 'box-a']);
    const refused = await bed.mounts.mount(vol.name, b, ['--host', 'box-b']);
    assert.equal(refused.status, 4, refused.stderr);
    assert.match(refused.stderr, /^stowage: [^\n]*RWO[^\n]*already mounted read-write at box-a:/);
    assert.ok(refused.stderr.includes(`box-a:${a}`), refused.stderr);
    assert.equal(await isMounted(b), false);

    await bed.mounts.mountOk(vol.name, c, ['--read-only', '--host', 'box-c']);
    assert.equal(await shOk(`cat ${c}/f.txt`), 'f');

    await bed.mounts.unmountOk(a);
    await bed.mounts.mountOk(vol.name, b, ['--host', 'box-b']);
    await shOk(`echo b > ${b}/b.txt`);
    await bed.mounts.commit(b);
    assert.equal((await vol.files.read('/b.txt')).toString(), 'b\n');
    for (const m of [b, c]) await bed.mounts.unmountOk(m);
  });
});

describe('unmount', () => {
  test('refuses with uncommitted changes (exit 4) unless --force; the changes come back on the next mount', async () => {
    const vol = await Volume.create(fresh('unmount'), { client: bed.client });
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    await shOk(`echo pending > ${m}/pending.txt`);
    const refused = await bed.mounts.cli(['unmount', m]);
    assert.equal(refused.status, 4, refused.stderr);
    assert.match(refused.stderr, /1 uncommitted change .*--force/);
    assert.equal(await isMounted(m), true);
    assert.equal(await shOk(`cat ${m}/pending.txt`), 'pending\n');

    await bed.mounts.unmountOk(m, true);
    assert.equal(await isMounted(m), false);
    assert.equal((await vol.attachments()).length, 0);
    assert.equal(await vol.files.exists('/pending.txt'), false);

    await bed.mounts.mountOk(vol.name, m);
    assert.equal(await shOk(`cat ${m}/pending.txt`), 'pending\n');
    assert.equal((await bed.mounts.status(m)).pending, 1);
    await bed.mounts.commit(m);
    assert.equal((await vol.files.read('/pending.txt')).toString(), 'pending\n');
    await bed.mounts.unmountOk(m);
  });
});
