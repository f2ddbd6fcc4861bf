/**
 * @module mount/fuse/session.test
 * Real FUSE mounts of a tiny in-memory file system (memory-fs.test-helper.ts)
 * through the libfuse 3 binding. The mount is only ever touched by child
 * processes: this process's own file calls on it would wait for the JS
 * thread that has to answer them.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FsError } from '../fs-error.js';
import { MemoryFs } from './memory-fs.test-helper.js';
import { fuseMountAt } from './mountinfo.js';
import { mountFuse } from './session.js';
import type { Entry, FuseSession } from './types.js';

/** FUSE_CAP_* bits of fuse_common.h (libfuse 3). */
const CAP = {
  ASYNC_READ: 1 << 0, ATOMIC_O_TRUNC: 1 << 3, EXPORT_SUPPORT: 1 << 4, SPLICE_WRITE: 1 << 7, SPLICE_MOVE: 1 << 8, SPLICE_READ: 1 << 9,
  READDIRPLUS: 1 << 13, READDIRPLUS_AUTO: 1 << 14, WRITEBACK_CACHE: 1 << 16, PARALLEL_DIROPS: 1 << 18,
};

interface ShResult { status: number | null; stdout: string; stderr: string }

function sh(script: string, timeoutMs = 30_000): Promise<ShResult> {
  return new Promise((done, fail) => {
    const child = spawn('bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', fail);
    child.on('close', (status) => {
      clearTimeout(timer);
      done({ status, stdout, stderr });
    });
  });
}

async function shOk(script: string): Promise<string> {
  const r = await sh(script);
  assert.equal(r.status, 0, `${script} failed: ${r.stderr}`);
  return r.stdout;
}

const work = mkdtempSync(join(tmpdir(), 'fuse3-session-'));
const distDir = new URL('.', import.meta.url).pathname;
let n = 0;
const freshDir = (): string => join(work, `m${n++}`);

/** A child node process that mounts a MemoryFs at `dir`, prints "mounted", then runs `then` (JS source). */
function childScript(dir: string, then: string): string {
  const file = join(work, `child${n++}.mjs`);
  writeFileSync(file, `
    import { mountFuse } from ${JSON.stringify(join(distDir, 'session.js'))};
    import { MemoryFs } from ${JSON.stringify(join(distDir, 'memory-fs.test-helper.js'))};
    const fs = new MemoryFs();
    fs.add(1, 'hello', 'hi\\n');
    const session = await mountFuse(${JSON.stringify(dir)}, fs, { options: ['fsname=child'], force: true });
    console.log('mounted');
    ${then}
  `);
  return file;
}

after(() => {
  rmSync(work, { recursive: true, force: true });
});

describe('a libfuse 3 session over an in-memory file system', () => {
  const fs = new MemoryFs();
  const logged: string[] = [];
  let session: FuseSession;
  let mnt: string;

  before(async () => {
    fs.add(1, 'hello.txt', 'hello world\n');
    const sub = fs.add(1, 'sub', null);
    fs.add(sub.ino, 'inner.txt', 'inner\n');
    mnt = freshDir();
    session = await mountFuse(mnt, fs, { options: ['fsname=memfs', 'subtype=test'], force: true, log: (m) => logged.push(m) });
  });

  after(async () => {
    await session?.unmount();
  });

  test('agrees FUSE 7.31+ with 1 MiB requests (max_pages 256) and tells ops.init', () => {
    assert.equal(session.conn.protoMajor, 7);
    assert.ok(session.conn.protoMinor >= 31, `protocol 7.${session.conn.protoMinor}`);
    assert.ok(session.conn.maxPages >= 256, `max_pages ${session.conn.maxPages}`);
    assert.equal(session.conn.maxWrite, 1024 * 1024);
    assert.deepEqual(fs.seen.inits, [session.conn]);
    // The binding adds FUSE_HANDLE_KILLPRIV_V2 to libfuse 3.14's INIT reply when the kernel offers it (5.11+).
    assert.equal(session.conn.handleKillprivV2, true);
    assert.ok(fuseMountAt(mnt), 'the path is a FUSE mount');
  });

  test('asks for readdirplus (not auto), async reads, parallel dirops, atomic O_TRUNC; no export, splice or writeback', () => {
    const want = session.conn.want;
    for (const bit of [CAP.ASYNC_READ, CAP.ATOMIC_O_TRUNC, CAP.READDIRPLUS, CAP.PARALLEL_DIROPS]) assert.ok(want & bit, `bit ${bit} on`);
    for (const bit of [CAP.READDIRPLUS_AUTO, CAP.EXPORT_SUPPORT, CAP.SPLICE_READ, CAP.SPLICE_WRITE, CAP.SPLICE_MOVE, CAP.WRITEBACK_CACHE]) {
      assert.equal(want & bit, 0, `bit ${bit} off`);
    }
  });

  test('lookup, getattr and a listing served by readdirplus (not readdir)', async () => {
    const before = fs.seen.readdirplus;
    const out = await shOk(`ls -1a ${mnt} ${mnt}/sub && stat -c '%s %F %a' ${mnt}/hello.txt ${mnt}/sub/inner.txt`);
    assert.match(out, /hello\.txt\nsub\n/);
    assert.match(out, /inner\.txt/);
    assert.match(out, /12 regular file 644\n6 regular file 644\n$/);
    assert.ok(fs.seen.readdirplus > before, 'readdirplus was used');
    assert.equal(fs.seen.readdir, 0);
    // "." and ".." of readdirplus are never counted by the kernel: the session forgot them again.
    assert.equal(fs.lookups.get(1) ?? 0, 0);
  });

  test('a listing larger than one readdirplus reply: entries that did not fit are forgotten, so each counts once', async () => {
    const dir = fs.add(1, 'wide', null);
    const names = Array.from({ length: 600 }, (_, i) => `entry-with-a-rather-long-name-${String(i).padStart(4, '0')}`);
    for (const name of names) fs.add(dir.ino, name, 'x');
    const calls = fs.seen.readdirplus;
    const out = await shOk(`ls -1 ${mnt}/wide | wc -l`);
    assert.equal(out.trim(), '600');
    assert.ok(fs.seen.readdirplus - calls > 2, 'the listing took several replies');
    const counts = [...dir.children!.values()].map((ino) => fs.lookups.get(ino) ?? 0);
    assert.equal(Math.max(...counts), 1, 'no entry is counted twice');
    assert.ok(counts.filter((c) => c === 1).length > 500, 'the kernel holds the listed entries');
  });

  test('names that are not UTF-8 are refused (EILSEQ), never decoded into another name', async () => {
    fs.add(1, '\uFFFD', 'replacement character\n');
    fs.add(1, 'caf\u00e9', 'utf-8\n');
    const r = await sh(`cat ${mnt}/$'\\xff'; printf x > ${mnt}/$'bad\\xfe'; mkdir ${mnt}/$'\\xc3\\xa9\\xc3'; ln -s $'\\xff' ${mnt}/link`);
    assert.equal(r.stderr.match(/Invalid or incomplete multibyte/g)?.length, 4, r.stderr);
    assert.equal(await shOk(`cat ${mnt}/$'\\xef\\xbf\\xbd' ${mnt}/$'caf\\xc3\\xa9'`), 'replacement character\nutf-8\n');
    assert.equal([...fs.nodes.get(1)!.children!.keys()].some((k) => k.startsWith('bad') || k === 'link'), false);
  });

  test('create, write and read back through the kernel', async () => {
    const out = await shOk(`printf 'round trip\\n' > ${mnt}/new.txt && cat ${mnt}/new.txt && stat -c %s ${mnt}/new.txt`);
    assert.equal(out, 'round trip\n11\n');
  });

  test('8 processes creating, writing, reading and listing at once all get their answers', async () => {
    const par = fs.add(1, 'par', null);
    const out = await shOk(`for i in 1 2 3 4 5 6 7 8; do (for j in $(seq 1 25); do printf "$i-$j" > ${mnt}/par/f$i-$j && [ "$(cat ${mnt}/par/f$i-$j)" = "$i-$j" ] || echo BAD; ls ${mnt}/par > /dev/null; done) & done; wait; ls ${mnt}/par | wc -l`);
    assert.equal(out.trim(), '200');
    assert.equal(par.children!.size, 200);
  });

  test('a 4 MiB dd bs=1M write arrives as 1 MiB requests, and direct reads as 1 MiB too', async () => {
    const local = join(work, 'big.local');
    await shOk(`head -c 4M /dev/urandom > ${local} && dd if=${local} of=${mnt}/big bs=1M status=none && dd if=${mnt}/big of=/dev/null bs=1M iflag=direct status=none`);
    assert.equal(fs.seen.largestWrite, 1024 * 1024);
    assert.equal(fs.seen.largestRead, 1024 * 1024);
    await shOk(`cmp ${local} ${mnt}/big`);
  });

  test('touch -m sets the mtime alone (UTIME_OMIT atime), with nanoseconds; touch -a the atime alone', async () => {
    await shOk(`printf x > ${mnt}/times`);
    fs.seen.setattrs.length = 0;
    await shOk(`touch -m -d @123.456789 ${mnt}/times`);
    assert.deepEqual(fs.seen.setattrs, [{ mtime: { sec: 123, nsec: 456_789_000 } }]);
    assert.match(await shOk(`stat -c %y ${mnt}/times`), /^1970-01-01 00:02:03\.456789000/);

    fs.seen.setattrs.length = 0;
    await shOk(`touch -a -d @42.5 ${mnt}/times`);
    assert.deepEqual(fs.seen.setattrs, [{ atime: { sec: 42, nsec: 500_000_000 } }]);
    assert.equal(await shOk(`stat -c '%X %Y' ${mnt}/times`), '42 123\n');

    fs.seen.setattrs.length = 0;
    await shOk(`touch ${mnt}/times`);
    assert.deepEqual(fs.seen.setattrs, [{ atime: 'now', mtime: 'now' }]);
  });

  test('invalidateInode makes the kernel drop cached pages that no size or mtime change would', async () => {
    const file = fs.add(1, 'cached.txt', 'old bytes\n');
    assert.equal(await shOk(`cat ${mnt}/cached.txt`), 'old bytes\n');
    file.data = Buffer.from('new bytes\n'); // same size, same mtime
    assert.equal(await shOk(`cat ${mnt}/cached.txt`), 'old bytes\n', 'keep_cache serves the cached pages');
    await session.invalidateInode(file.ino);
    assert.equal(await shOk(`cat ${mnt}/cached.txt`), 'new bytes\n');
  });

  test('invalidateEntry makes a name renamed behind the kernel resolve anew', async () => {
    fs.add(1, 'before', 'moved\n');
    assert.equal(await shOk(`cat ${mnt}/before`), 'moved\n');
    fs.move(1, 'before', 1, 'after');
    assert.equal((await sh(`cat ${mnt}/before`)).status, 0, 'the kernel still has the cached name');
    await session.invalidateEntry(1, 'before');
    const gone = await sh(`cat ${mnt}/before`);
    assert.notEqual(gone.status, 0);
    assert.match(gone.stderr, /No such file/);
    assert.equal(await shOk(`cat ${mnt}/after`), 'moved\n');
  });

  test('invalidating what the kernel never saw resolves (ENOENT), many at once too', async () => {
    await session.invalidateInode(999_999);
    await session.invalidateEntry(1, 'never-looked-up');
    await Promise.all(Array.from({ length: 50 }, (_, i) => (i % 2 ? session.invalidateInode(1000 + i) : session.invalidateEntry(1, `n${i}`))));
    await assert.rejects(session.invalidateEntry(1, ''), /needs a name/);
  });

  test('an FsError answers its errno; a plain Error or a malformed answer answers EIO and is logged', async () => {
    fs.lookupHook = (name) => {
      if (name === 'denied') return Promise.reject(new FsError('EACCES'));
      if (name === 'broken') return Promise.reject(new Error('bug in the file system'));
      if (name === 'malformed') return Promise.resolve({ ino: 'x' } as unknown as Entry);
      if (name === 'badtime') return Promise.resolve({ ino: 77, attrTimeout: 1, entryTimeout: 1, attr: { ...fs.attr(fs.nodes.get(1)!), mtime: { sec: 1, nsec: 2e9 } } });
      return undefined;
    };
    try {
      const denied = await sh(`stat ${mnt}/denied`);
      assert.match(denied.stderr, /Permission denied/);
      logged.length = 0;
      const broken = await sh(`stat ${mnt}/broken`);
      assert.match(broken.stderr, /Input\/output error/);
      assert.ok(logged.some((m) => m.includes('bug in the file system')), logged.join('\n'));
      const malformed = await sh(`stat ${mnt}/malformed; stat ${mnt}/badtime`);
      assert.equal(malformed.stderr.match(/Input\/output error/g)?.length, 2, malformed.stderr);
      assert.ok(logged.some((m) => m.includes('malformed') && m.includes('entry.ino')), logged.join('\n'));
      assert.ok(logged.some((m) => m.includes('attr.mtime.nsec')), logged.join('\n'));
      // The mount still serves.
      assert.equal(await shOk(`cat ${mnt}/hello.txt`), 'hello world\n');
    } finally {
      fs.lookupHook = undefined;
    }
  });

  test('an operation the file system lacks answers ENOSYS (fallocate: the kernel then reports EOPNOTSUPP)', async () => {
    const r = await sh(`fallocate -l 4096 ${mnt}/hello.txt`);
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /not supported/);
    assert.equal(await shOk(`cat ${mnt}/hello.txt`), 'hello world\n');
  });

  test('requestCounts counts every request by operation, an ENOSYS answer included', async () => {
    const before = session.requestCounts();
    const n = (c: Record<string, number>, op: string) => c[op] ?? 0;
    await shOk(`printf abc > ${mnt}/counted.txt`);
    await sh(`fallocate -l 4096 ${mnt}/counted.txt; fallocate -l 4096 ${mnt}/counted.txt`);
    await new Promise((r) => setTimeout(r, 100)); // release follows close asynchronously
    const after = session.requestCounts();
    assert.equal(n(after, 'create') - n(before, 'create'), 1);
    assert.equal(n(after, 'write') - n(before, 'write'), 1);
    assert.ok(n(after, 'release') - n(before, 'release') >= 1, JSON.stringify(after));
    // The test before got ENOSYS for fallocate, which it counted; the kernel remembers that and asks no more.
    assert.equal(n(before, 'fallocate'), 1);
    assert.equal(n(after, 'fallocate'), 1);
    assert.deepEqual(Object.keys(after), Object.keys(after).sort(), 'operations in name order');
    after['create'] = -1;
    assert.notEqual(session.requestCounts()['create'], -1, 'a copy, not the live counters');
  });
});

test('the binding refuses made-up handles, ids and answers with a JS error', () => {
  const require = createRequire(import.meta.url);
  const native = require(join(distDir, '..', '..', '..', '..', 'native', 'fuse3', 'build', 'Release', 'fuse3.node')) as Record<string, (...a: unknown[]) => unknown>;
  assert.throws(() => native.replyErr!({}, 1, 0), /session handle/);
  assert.throws(() => native.replyEntry!(null, 1, new Float64Array(19)), /session handle/);
  assert.throws(() => native.invalidate!('x', 1, 0, 0), /session handle/);
  assert.throws(() => native.mount!(42, 'not-an-array', false, null), TypeError);
});

test('writebackCache: true turns on the kernel\'s writeback cache', async () => {
  const session = await mountFuse(freshDir(), new MemoryFs(), { options: [], force: true, writebackCache: true });
  try {
    assert.ok(session.conn.want & CAP.WRITEBACK_CACHE);
  } finally {
    await session.unmount();
  }
});

test('readahead raises the read-ahead, so buffered reads arrive as 1 MiB requests (128 KiB without it)', async () => {
  for (const [readahead, expected] of [[undefined, 128 * 1024], [1024 * 1024, 1024 * 1024]] as const) {
    const mnt = freshDir();
    const fs = new MemoryFs();
    fs.add(1, 'big', Buffer.alloc(8 * 1024 * 1024, 7));
    const session = await mountFuse(mnt, fs, { options: [], force: true, readahead });
    try {
      await shOk(`dd if=${mnt}/big of=/dev/null bs=1M status=none`);
      assert.equal(fs.seen.largestRead, expected);
    } finally {
      await session.unmount();
    }
  }
});

describe('ending a session', () => {
  test('unmount() resolves, closed resolves, and the path is no longer a mount', async () => {
    const mnt = freshDir();
    let destroyed = 0;
    const fs = Object.assign(new MemoryFs(), { destroy: () => void destroyed++ });
    const session = await mountFuse(mnt, fs, { options: [], force: true });
    assert.ok(fuseMountAt(mnt));
    await session.unmount();
    await session.closed;
    assert.equal(fuseMountAt(mnt), undefined);
    assert.equal(destroyed, 1);
    await assert.rejects(session.invalidateInode(1), /closed/);
  });

  test('an outside `umount` ends the session: closed resolves', async () => {
    const mnt = freshDir();
    const session = await mountFuse(mnt, new MemoryFs(), { options: [], force: true });
    await shOk(`umount ${mnt}`);
    await session.closed;
    assert.equal(fuseMountAt(mnt), undefined);
    await session.unmount(); // still resolves
  });

  test('unmount while a caller waits on an operation: the caller gets an error, the late answer is dropped and logged', async () => {
    const mnt = freshDir();
    const fs = new MemoryFs();
    const logged: string[] = [];
    let release!: () => void;
    const stuck = new Promise<void>((res) => (release = res));
    let arrived!: () => void;
    const waiting = new Promise<void>((res) => (arrived = res));
    fs.lookupHook = (name) => (name === 'slow' ? (arrived(), stuck.then(() => fs.lookup({ uid: 0, gid: 0, pid: 0, umask: 0, killSuidgid: false }, 1, 'nothing-here'))) : undefined);
    const session = await mountFuse(mnt, fs, { options: [], force: true, log: (m) => logged.push(m) });
    const caller = sh(`stat ${mnt}/slow`);
    await waiting;
    await session.unmount();
    assert.equal(fuseMountAt(mnt), undefined);
    const r = await caller;
    assert.notEqual(r.status, 0);
    release();
    await new Promise((res) => setTimeout(res, 50));
    assert.ok(logged.some((m) => m.includes('answered already')), logged.join('\n'));
  });

  test('the process exits by itself after unmount', async () => {
    const mnt = freshDir();
    const script = childScript(mnt, `await session.unmount(); console.log('unmounted');`);
    const r = await sh(`timeout 20 node ${script}`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'mounted\nunmounted\n');
  });

  test('force: a new session mounts over the broken mount of a killed process', async () => {
    const mnt = freshDir();
    const script = childScript(mnt, `process.kill(process.pid, 'SIGKILL');`);
    const r = await sh(`node ${script}`);
    assert.equal(r.stdout, 'mounted\n');
    assert.ok(fuseMountAt(mnt), 'the dead session left its mount');
    assert.match((await sh(`stat ${mnt}`)).stderr, /Transport endpoint is not connected/);

    const fs = new MemoryFs();
    fs.add(1, 'fresh', 'ok\n');
    const session = await mountFuse(mnt, fs, { options: [], force: true });
    try {
      assert.equal(await shOk(`cat ${mnt}/fresh`), 'ok\n');
    } finally {
      await session.unmount();
    }
    assert.equal(fuseMountAt(mnt), undefined, 'both mounts are gone');
  });

  test('without force a missing mount point is refused', async () => {
    await assert.rejects(mountFuse(join(work, 'missing', 'dir'), new MemoryFs(), { options: [] }), /could not mount/);
  });

  test('unknown mount options are refused with a clear error', async () => {
    await assert.rejects(mountFuse(freshDir(), new MemoryFs(), { options: ['no_such_option'], force: true }), /refused the mount options/);
  });
});
