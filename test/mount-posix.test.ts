/**
 * @module test/mount-posix.test
 * What a mount must do for the sandboxes that will live in it (issue 10):
 * permissions checked by the kernel as on a local disk for users other than
 * the mounting one, owners kept through commits, nanosecond times with
 * mtime-only changes, open files that outlive unlink, rename and commits,
 * no stale pages after a reload, POSIX errors, fifos and sockets. Every
 * access goes through child processes (see test/helpers/mount.ts); other
 * users are played with setpriv.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Volume } from '@stowage/sdk';
import { mountTestbed, sh, shOk } from './helpers/mount.js';

const bed = mountTestbed('mount-posix');
const fresh = (prefix = 'p'): string => bed.fresh(prefix);
/** Runs a shell script as uid/gid `id` (no supplementary groups). */
const as = (id: number, script: string) => sh(`setpriv --reuid=${id} --regid=${id} --clear-groups sh -c ${JSON.stringify(script)}`);

/** A mount point other users can reach (the test's work dir is made 0700). */
async function mountPoint(): Promise<string> {
  await chmod(bed.work, 0o755);
  return bed.mountPoint();
}

describe('permissions and owners', () => {
  test('with --allow-other another user gets EACCES/EPERM exactly as on a local disk', async () => {
    const vol = await Volume.create(fresh('perm'), { client: bed.client });
    const m = await mountPoint();
    await chmod(m, 0o755);
    await bed.mounts.mountOk(vol.name, m, ['--allow-other']);
    await shOk(`chmod 755 ${m} && echo secret > ${m}/private && chmod 600 ${m}/private && echo open > ${m}/public && chmod 644 ${m}/public && mkdir -m 755 ${m}/rootdir`);
    const read = await as(4321, `cat ${m}/private`);
    assert.notEqual(read.status, 0);
    assert.match(read.stderr, /Permission denied/);
    assert.equal((await as(4321, `cat ${m}/public`)).stdout, 'open\n');
    assert.match((await as(4321, `echo x >> ${m}/public`)).stderr, /Permission denied/);
    assert.match((await as(4321, `touch ${m}/rootdir/mine`)).stderr, /Permission denied/);
    assert.match((await as(4321, `chmod 777 ${m}/public`)).stderr, /Operation not permitted/);
    assert.match((await as(4321, `chown 4321 ${m}/public`)).stderr, /Operation not permitted/);
    // Given the directory, the user makes files that are its own.
    await shOk(`chown 4321:4321 ${m}/rootdir`);
    const mine = await as(4321, `echo hi > ${m}/rootdir/mine && stat -c '%u:%g %a' ${m}/rootdir/mine`);
    assert.equal(mine.stdout, '4321:4321 644\n', mine.stderr);
  });

  test('without --allow-other only the mounting user gets in', async () => {
    const vol = await Volume.create(fresh('noother'), { client: bed.client });
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    await shOk(`chmod 777 ${m} && echo x > ${m}/f && chmod 666 ${m}/f`);
    const r = await as(4321, `cat ${m}/f`);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /Permission denied/);
  });

  test('chown is kept: committed, shown on another mount and by the API; --uid/--gid map the unrecorded owner', async () => {
    const vol = await Volume.create(fresh('own'), { client: bed.client });
    await vol.files.write('/from-api.txt', 'api\n');
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    await shOk(`echo a > ${m}/a && chown 1234:5678 ${m}/a && mkdir ${m}/d && chgrp 99 ${m}/d && ln -s a ${m}/l && chown -h 7:8 ${m}/l`);
    assert.equal(await shOk(`stat -c '%u:%g' ${m}/a ${m}/d ${m}/l ${m}/from-api.txt`), '1234:5678\n0:99\n7:8\n0:0\n');
    await bed.mounts.commit(m);
    const a = await vol.files.stat('/a');
    assert.equal(a.uid, 1234);
    assert.equal(a.gid, 5678);
    assert.equal((await vol.files.stat('/d')).gid, 99);
    assert.equal((await vol.files.stat('/from-api.txt')).uid, undefined);

    // A mount owned by 1000: what records no owner (and what root made: recorded as none, root was this mount's owner) is 1000's.
    const m2 = await mountPoint();
    await bed.mounts.mountOk(vol.name, m2, ['--read-only', '--uid', '1000', '--gid', '1000']);
    assert.equal(await shOk(`stat -c '%u:%g' ${m2}/a ${m2}/d ${m2}/l ${m2}/from-api.txt`), '1234:5678\n1000:99\n7:8\n1000:1000\n');
  });

  test('--uid and --gid take numeric ids only', async () => {
    const vol = await Volume.create(fresh('badid'), { client: bed.client });
    const m = await mountPoint();
    for (const bad of ['-1', 'root', '4294967295', '1.5', '']) {
      const r = await bed.mounts.mount(vol.name, m, ['--uid', bad]);
      assert.equal(r.status, 2, `--uid ${JSON.stringify(bad)}: ${r.stderr}`);
      assert.match(r.stderr, /invalid --uid/);
    }
    const listed = await bed.client.request<{ attachments: unknown[] }>('GET', `/v1/volumes/${vol.name}/attachments`);
    assert.deepEqual(listed.attachments, [], 'a refused mount attaches nothing');
  });
});

describe('times', () => {
  test('atime, mtime and ctime are kept apart with nanoseconds; mtime-only changes leave atime alone', async () => {
    const vol = await Volume.create(fresh('times'), { client: bed.client });
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    await shOk(`echo x > ${m}/f && touch -a -d @1000000000.111111111 ${m}/f && touch -m -d @1500000000.123456789 ${m}/f`);
    assert.equal(await shOk(`stat -c '%.9X %.9Y' ${m}/f`), '1000000000.111111111 1500000000.123456789\n');
    const ctimeBefore = await shOk(`stat -c '%.9Z' ${m}/f`);
    await new Promise((r) => setTimeout(r, 20));
    await shOk(`chmod 600 ${m}/f`);
    const ctimeAfter = await shOk(`stat -c '%.9Z' ${m}/f`);
    assert.ok(Number(ctimeAfter) > Number(ctimeBefore), `ctime moves on chmod: ${ctimeBefore} -> ${ctimeAfter}`);
    assert.equal(await shOk(`stat -c '%.9Y' ${m}/f`), '1500000000.123456789\n', 'chmod leaves mtime');
    await bed.mounts.commit(m);
    const st = await vol.files.stat('/f');
    assert.equal(st.mtime, 1500000000123);
    assert.equal(st.mtimeNs, 456789);
    const m2 = await mountPoint();
    await bed.mounts.mountOk(vol.name, m2, ['--read-only']);
    assert.equal(await shOk(`stat -c '%.9X %.9Y' ${m2}/f`), '1000000000.111111111 1500000000.123456789\n');
  });
});

describe('open files', () => {
  test('a file unlinked, or replaced by a rename, while open keeps its bytes through a commit', async () => {
    const vol = await Volume.create(fresh('open'), { client: bed.client });
    await vol.files.write('/base.txt', 'base bytes\n');
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    await shOk(`echo 'new bytes' > ${m}/new.txt && echo replacement > ${m}/other.txt`);
    // One shell keeps three descriptors open across unlink, rename-over and a commit made meanwhile.
    const script = `
      exec 3<${m}/base.txt 4<>${m}/new.txt 5<${m}/other.txt
      rm ${m}/base.txt ${m}/new.txt && echo gone > ${m}/gone.txt && mv ${m}/gone.txt ${m}/other.txt
      echo committed > ${m}/marker && while [ -e ${m}/marker ]; do sleep 0.05; done
      cat <&3; cat <&4; cat <&5; echo appended >&4; cat ${m}/other.txt`;
    const run = sh(script, { timeoutMs: 60_000 });
    for (let i = 0; i < 200 && (await sh(`test -e ${m}/marker`)).status !== 0; i++) await new Promise((r) => setTimeout(r, 50));
    await bed.mounts.commit(m);
    await shOk(`rm ${m}/marker`);
    const out = await run;
    assert.equal(out.stderr, '', await readFile(join(bed.mounts.stateDir(m), 'agent.log'), 'utf8'));
    assert.equal(out.stdout, 'base bytes\nnew bytes\nreplacement\ngone\n');
    assert.deepEqual((await vol.files.list('/')).map((e) => e.name).sort(), ['marker', 'other.txt']);
  });
});

describe('no stale pages after reload', () => {
  test('same size, same mtime, new bytes from another writer: reload shows them', async () => {
    const vol = await Volume.create(fresh('stale'), { client: bed.client });
    await vol.files.write('/f.txt', 'version one\n', { mtime: 1_600_000_000_000 });
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m, ['--read-only']);
    assert.equal(await shOk(`cat ${m}/f.txt; cat ${m}/f.txt`), 'version one\nversion one\n');
    await vol.files.write('/f.txt', 'version two\n', { mtime: 1_600_000_000_000 });
    // Held open across the reload too: its pages must go as well.
    const held = sh(`exec 3<${m}/f.txt; while [ ! -e ${bed.work}/go-${vol.name} ]; do sleep 0.05; done; cat <&3`, { timeoutMs: 30_000 });
    await new Promise((r) => setTimeout(r, 200));
    const r = await bed.mounts.cli(['reload', m]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await shOk(`cat ${m}/f.txt`), 'version two\n');
    await shOk(`touch ${bed.work}/go-${vol.name}`);
    assert.equal((await held).stdout, 'version two\n');
  });
});

/**
 * Set-user-ID and set-group-ID are the mount's to clear (FUSE_HANDLE_KILLPRIV_V2), as ext4 clears them: on chown of a
 * non-directory by anyone (chown(-1, -1) included, as Linux 6.x does), on write, truncate and open(O_TRUNC) by a caller without CAP_FSETID.
 * The same script runs in a local directory and in the mount; both must print the same, and what ext4 prints.
 */
function privScript(d: string): string {
  return `set -e; cd ${d}; umask 022
for f in a b c w t o ug ut uo; do echo hi > $f; done
chmod 6755 a && chown 5:5 a                        # root chown: set-user-ID and (group-exec) set-group-ID go
chmod 6745 b && chown 5 b                          # without group-exec set-group-ID is a locking mark: kept
chmod 6755 c && perl -e 'chown(-1, -1, "c") or die'  # chown(-1, -1) too (Linux 6.x)
chmod 6755 w t o && echo more >> w && truncate -s 1 t && : > o   # root (CAP_FSETID): kept
mkdir dir && chmod 2755 dir && chown 5:5 dir       # a directory keeps its set-group-ID
chmod 6777 ug ut uo
setpriv --reuid=4321 --regid=4321 --clear-groups sh -c 'echo more >> ug && truncate -s 1 ut && : > uo'
stat -c '%n %a %u:%g' a b c w t o dir ug ut uo`;
}

const PRIV_EXPECTED = 'a 755 5:5\nb 2745 5:0\nc 755 0:0\nw 6755 0:0\nt 6755 0:0\no 6755 0:0\ndir 2755 5:5\nug 777 0:0\nut 777 0:0\nuo 777 0:0\n';

describe('set-user-ID and set-group-ID', () => {
  test('cleared on chown, write, truncate and open(O_TRUNC) exactly as on a local disk, as root and as another user, and committed', async () => {
    const vol = await Volume.create(fresh('privs'), { client: bed.client });
    const m = await mountPoint();
    await chmod(m, 0o755);
    await bed.mounts.mountOk(vol.name, m, ['--allow-other']);
    const local = join(bed.work, `privs-local-${Date.now()}`);
    await shOk(`mkdir -m 755 ${local}`);
    const onDisk = await shOk(privScript(local));
    assert.equal(onDisk, PRIV_EXPECTED, 'the local disk does what this test expects');
    await shOk(`chmod 755 ${m} && mkdir -m 755 ${m}/p`);
    assert.equal(await shOk(privScript(`${m}/p`)), onDisk);
    // Through a commit and a fresh look (the kernel's cache dropped by reload): the cleared modes are what the tree holds.
    await bed.mounts.commit(m);
    assert.equal((await vol.files.stat('/p/a')).mode & 0o7777, 0o755);
    assert.equal((await vol.files.stat('/p/ug')).mode & 0o7777, 0o777);
    assert.equal((await vol.files.stat('/p/b')).mode & 0o7777, 0o2745);
  });

  test('the kernel sends no getattr before a chown (the agent clears the bits itself)', async () => {
    const vol = await Volume.create(fresh('privreq'), { client: bed.client });
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    await shOk(`touch ${m}/f && chmod 4755 ${m}/f && stat ${m}/f >/dev/null`);
    const count = async () => (await Volume.fromMount(m).status()).fuse!.requests;
    const before = await count();
    await shOk(`chown 5:5 ${m}/f`);
    const after = await count();
    assert.equal((after['getattr'] ?? 0) - (before['getattr'] ?? 0), 0, JSON.stringify({ before, after }));
    assert.equal((after['setattr'] ?? 0) - (before['setattr'] ?? 0), 1);
    assert.equal(await shOk(`stat -c '%a %u:%g' ${m}/f`), '755 5:5\n');
  });
});

describe('directory listings without opendir', () => {
  test('no opendir or releasedir reaches the agent; a listing is served by readdirplus', async () => {
    const vol = await Volume.create(fresh('noopendir'), { client: bed.client });
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    await shOk(`mkdir ${m}/d && touch ${m}/d/a ${m}/d/b ${m}/d/c && ls ${m}`);
    const count = async () => (await Volume.fromMount(m).status()).fuse!.requests;
    const before = await count();
    // The first opendir of the mount was answered ENOSYS (counted above): the kernel asks no more.
    assert.equal(before['opendir'], 1, JSON.stringify(before));
    assert.equal(await shOk(`ls ${m}/d && ls ${m}/d | wc -l`), 'a\nb\nc\n3\n');
    const after = await count();
    const delta = (op: string) => (after[op] ?? 0) - (before[op] ?? 0);
    assert.equal(delta('opendir'), 0, JSON.stringify({ before, after }));
    assert.equal(delta('releasedir'), 0);
    assert.ok(delta('readdirplus') >= 2, JSON.stringify({ before, after }));
  });

  test('a directory that changes while listed: every entry there throughout is listed exactly once; seekdir returns to a telldir cookie', async () => {
    const vol = await Volume.create(fresh('listing'), { client: bed.client });
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    // 3,000 names of ~60 bytes: many readdirplus replies and several getdents calls of libc's 32 KiB buffer.
    await shOk(`mkdir ${m}/d && cd ${m}/d && for i in $(seq 1 3000); do echo -n > keep-$i-${'x'.repeat(48)}; done && for i in $(seq 1 1000); do echo -n > gone-$i; done`);
    const script = `
import os, sys
d = sys.argv[1]
it = os.scandir(d)
seen = [next(it).name for _ in range(200)]
for i in range(1, 1001): os.unlink(os.path.join(d, 'gone-%d' % i))
for i in range(1, 1001): open(os.path.join(d, 'new-%d' % i), 'w').close()
for i in range(1, 301): os.rename(os.path.join(d, 'keep-%d-%s' % (i, 'x' * 48)), os.path.join(d, 'moved-%d' % i))
seen += [e.name for e in it]
keep = [n for n in seen if n.startswith('keep-')]
moved = [n for n in seen if n.startswith('moved-')]
print(len(keep) + len(moved), len(set(seen)) == len(seen), len([n for n in keep if int(n.split('-')[1]) > 300]))
`;
    const file = join(bed.work, `listing-${Date.now()}.py`);
    await writeFile(file, script);
    const out = await shOk(`python3 ${file} ${m}/d`);
    // keep-301..3000 existed throughout: each exactly once (no name twice); keep-1..300 were renamed midway, so
    // POSIX lets them show under either name, both or neither.
    const [total, distinct, kept] = out.trim().split(' ');
    assert.equal(distinct, 'True', out);
    assert.equal(kept, '2700', out);
    assert.ok(Number(total) >= 2700 && Number(total) <= 3300, out);
    // telldir / seekdir: the same names again from a cookie, after more changes.
    const perl = `opendir(my $d, $ARGV[0]) or die; readdir($d) for 1..500; my $pos = telldir($d); my @a = map { scalar readdir($d) } 1..50;
      open(my $f, '>', "$ARGV[0]/zz-late") or die; close $f; seekdir($d, $pos); my @b = map { scalar readdir($d) } 1..50;
      print join(',', @a) eq join(',', @b) ? "same\n" : "differ\n";`;
    await writeFile(`${file}.pl`, perl);
    assert.equal(await shOk(`perl ${file}.pl ${m}/d`), 'same\n');
  });
});

describe('POSIX errors and special files', () => {
  test('ENAMETOOLONG on lookup, directory link counts, fifos and sockets in the mount only', async () => {
    const vol = await Volume.create(fresh('errs'), { client: bed.client });
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    const long = 'n'.repeat(256);
    assert.match((await sh(`stat ${m}/${long}`)).stderr, /File name too long/);
    assert.match((await sh(`touch ${m}/${long}`)).stderr, /File name too long/);
    await shOk(`mkdir -p ${m}/d/a ${m}/d/b ${m}/d/b/c && touch ${m}/d/file`);
    assert.equal(await shOk(`stat -c %h ${m}/d ${m}/d/b ${m}/d/a`), '4\n3\n2\n');
    await shOk(`mkfifo ${m}/d/pipe && python3 -c "import socket; s = socket.socket(socket.AF_UNIX); s.bind('${m}/d/sock')"`);
    assert.equal(await shOk(`stat -c %F ${m}/d/pipe ${m}/d/sock`), 'fifo\nsocket\n');
    // A fifo in the mount works as a fifo.
    assert.equal(await shOk(`(echo through > ${m}/d/pipe &) ; cat ${m}/d/pipe`), 'through\n');
    await bed.mounts.commit(m);
    assert.deepEqual((await vol.files.list('/d')).map((e) => e.name).sort(), ['a', 'b', 'file']);
    assert.equal(await shOk(`stat -c %F ${m}/d/pipe`), 'fifo\n', 'still there after the commit');
    assert.match((await sh(`ln ${m}/d/file ${m}/d/hard`)).stderr, /Operation not permitted/);
  });

  test('the kernel and the agent agreed on FUSE 7.31+ with 1 MiB requests', async () => {
    const vol = await Volume.create(fresh('proto'), { client: bed.client });
    const m = await mountPoint();
    const status = await bed.mounts.mountOk(vol.name, m);
    assert.ok(status.fuse, 'mount-status reports the FUSE connection');
    const [major, minor] = status.fuse.protocol.split('.').map(Number);
    assert.ok(major! > 7 || (major === 7 && minor! >= 31), status.fuse.protocol);
    assert.ok(status.fuse.maxWrite >= 1024 * 1024, String(status.fuse.maxWrite));
  });
});
