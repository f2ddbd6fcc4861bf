/**
 * @module test/mount-recovery.test
 * End-to-end tests of real FUSE mounts when things go wrong: the agent
 * killed with SIGKILL (its overlay comes back on the next mount), the chunk
 * cache under pressure, mounts that cannot start, commits while the server
 * is down or over the volume's cap (the overlay is kept), and hostile input
 * on the agent's control socket.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import type { MountStatus } from '@stowage/sdk/common/mount-state.js';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { Stowage, Volume } from '@stowage/sdk';
import { startServer, type RunningServer } from '../src/server/serve.js';
import { pattern } from './helpers/cli.js';
import { Mounts, mountTestbed, alive, cliOk, isMounted, sh, shOk } from './helpers/mount.js';

const bed = mountTestbed('mount-recovery');
const { mountPoint } = bed;
const fresh = (prefix = 'r'): string => bed.fresh(prefix);
const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

describe('agent crash', () => {
  test('kill -9 of the agent: mounting the path again shows the uncommitted work, and commit publishes it', async () => {
    const vol = await Volume.create(fresh('crash'), { client: bed.client });
    await vol.files.writeMany([
      { path: '/base.txt', data: 'base\n' },
      { path: '/big.bin', data: pattern(9 * MiB, 51) },
      { path: '/gone.txt', data: 'gone' },
    ]);
    const m = await mountPoint();
    const s = await bed.mounts.mountOk(vol.name, m);
    await shOk(
      `echo new > ${m}/new.txt && mkdir -p ${m}/d/e && echo deep > ${m}/d/e/deep.txt && echo more >> ${m}/base.txt`,
    );
    await shOk(
      `printf 'X' | dd of=${m}/big.bin bs=1 seek=${8 * MiB + 1} conv=notrunc status=none && rm ${m}/gone.txt && mv ${m}/d ${m}/dir && chmod 600 ${m}/new.txt`,
    );
    const before = await bed.mounts.status(m);

    await shOk(`kill -9 ${s.pid}`);
    for (let i = 0; i < 50 && alive(s.pid); i++) await new Promise((r) => setTimeout(r, 100));
    assert.equal(alive(s.pid), false);
    // The dead agent's control socket no longer answers.
    const dead = await bed.mounts.cli(['mount-status', m]);
    assert.equal(dead.status, 7, dead.stderr);
    assert.match(dead.stderr, /not running/);

    const s2 = await bed.mounts.mountOk(vol.name, m);
    assert.notEqual(s2.pid, s.pid);
    assert.equal(s2.pending, before.pending);
    assert.equal(s2.attachmentId, s.attachmentId, 'the same attachment was resumed');
    assert.equal(
      await shOk(`cat ${m}/new.txt ${m}/dir/e/deep.txt ${m}/base.txt; ls ${m}; stat -c %a ${m}/new.txt`),
      'new\ndeep\nbase\nmore\nbig.bin\nbase.txt\ndir\nnew.txt\n600\n'.replace('big.bin\nbase.txt', 'base.txt\nbig.bin'),
    );
    const expected = pattern(9 * MiB, 51);
    expected[8 * MiB + 1] = 'X'.charCodeAt(0);
    assert.equal((await shOk(`sha256sum ${m}/big.bin`)).split(' ')[0], sha(expected));

    const res = await bed.mounts.commit(m, 'after the crash');
    assert.ok(res.commit);
    assert.equal(res.uploadedChunks <= 4, true, `uploaded ${res.uploadedChunks} chunks`);
    assert.equal((await vol.files.read('/new.txt')).toString(), 'new\n');
    assert.equal((await vol.files.read('/dir/e/deep.txt')).toString(), 'deep\n');
    assert.equal((await vol.files.read('/base.txt')).toString(), 'base\nmore\n');
    assert.equal((await vol.files.stat('/new.txt')).mode & 0o777, 0o600);
    assert.equal(sha(await vol.files.read('/big.bin')), sha(expected));
    assert.equal(await vol.files.exists('/gone.txt'), false);
    assert.equal(await vol.files.exists('/d'), false);
    await bed.mounts.unmountOk(m);
    assert.equal((await vol.attachments()).length, 0);
  });
});

describe('work kept elsewhere', () => {
  test('--recover replays uncommitted work kept away from its mount path, and refuses what is not that', async () => {
    const vol = await Volume.create(fresh('kept'), { client: bed.client });
    const other = await Volume.create(fresh('other'), { client: bed.client });
    const m1 = await mountPoint();
    const s = await bed.mounts.mountOk(vol.name, m1);
    await shOk(`echo kept > ${m1}/kept.txt && mkdir ${m1}/d && echo deep > ${m1}/d/deep.txt`);
    await shOk(`kill -9 ${s.pid}`);
    for (let i = 0; i < 50 && alive(s.pid); i++) await new Promise((r) => setTimeout(r, 100));
    await sh(`fusermount -uz ${m1}`);
    // As a sandbox's end does with work it could not commit: the attachment released as failed, the state moved
    // away from any mount path (sandbox-kept/<sandbox>/<n>).
    await bed.client.request('POST', `/v1/attachments/${s.attachmentId}/release`, {
      body: { failed: true, reason: 'the final commit failed' },
    });
    const kept = join(bed.work, fresh('kept-state'));
    await shOk(`mv ${bed.mounts.stateDir(m1)} ${kept}`);

    const m2 = await mountPoint();
    const wrong = await bed.mounts.mount(other.name, m2, ['--recover', kept]);
    assert.equal(wrong.status, 2, wrong.stderr);
    assert.match(wrong.stderr, new RegExp(`uncommitted work of volume "${vol.name}", not of "${other.name}"`));
    const none = await bed.mounts.mount(vol.name, m2, ['--recover', join(bed.work, 'no-such-state')]);
    assert.equal(none.status, 2, none.stderr);
    assert.match(none.stderr, /holds no mount state to recover/);
    assert.equal(await isMounted(m2), false);

    await bed.mounts.mountOk(vol.name, m2, ['--recover', kept]);
    assert.equal(await shOk(`cat ${m2}/kept.txt ${m2}/d/deep.txt`), 'kept\ndeep\n');
    assert.equal(existsSync(kept), false, 'the kept state was moved, so it cannot be replayed twice');
    // A running mount's state is not taken from under it.
    const m3 = await mountPoint();
    const live = await bed.mounts.mount(vol.name, m3, ['--recover', bed.mounts.stateDir(m2)]);
    assert.equal(live.status, 2, live.stderr);
    assert.match(live.stderr, /an agent still runs on/);
    await bed.mounts.commit(m2, 'recovered');
    assert.equal((await vol.files.read('/kept.txt')).toString(), 'kept\n');
    assert.equal((await vol.files.read('/d/deep.txt')).toString(), 'deep\n');
    await bed.mounts.unmountOk(m2);
  });
});

describe('chunk cache', () => {
  test('--cache-size 20M: reading 48 MiB twice stays within the bound and evicts', async () => {
    const vol = await Volume.create(fresh('evict'), { client: bed.client });
    const files = Array.from({ length: 6 }, (_, i) => ({ path: `/t/f${i}.bin`, data: pattern(8 * MiB, 60 + i) }));
    await vol.files.writeMany(files, { createParents: true });
    const m = await mountPoint();
    const s0 = await bed.mounts.mountOk(vol.name, m, ['--cache-size', '20M']);
    assert.equal(s0.cache.capacity, 20 * MiB);
    const want = files.map((f) => `${sha(f.data)}  ${m}${f.path}`).join('\n') + '\n';
    for (let round = 0; round < 2; round++) {
      // Drop the kernel's page cache of the mount so the second round reaches the agent too.
      await sh('sync; echo 1 > /proc/sys/vm/drop_caches');
      assert.equal(await shOk(`sha256sum ${files.map((f) => m + f.path).join(' ')}`), want);
    }
    const s = await bed.mounts.status(m);
    assert.ok(s.cache.bytes <= 20 * MiB + 8 * MiB, `cache holds ${s.cache.bytes} bytes`);
    assert.ok(s.cache.evictions > 0, `evictions ${s.cache.evictions}`);
    assert.ok(s.cache.misses >= 6, `misses ${s.cache.misses}`);
    // The cache directory on disk agrees with the stats.
    const du = Number((await shOk(`du -sb ${bed.mounts.stateDir(m)}/cache | cut -f1`)).trim());
    assert.ok(du <= 20 * MiB + 8 * MiB + 64 * 1024, `cache dir holds ${du} bytes`);
    await bed.mounts.unmountOk(m);
  });
});

describe('mounts that cannot start', () => {
  test('a missing volume fails fast with a clear error and leaves nothing mounted', async () => {
    const m = await mountPoint();
    const t0 = Date.now();
    const r = await bed.mounts.mount('no-such-volume', m);
    assert.equal(r.status, 3, r.stderr);
    assert.match(r.stderr, /^stowage: [^\n]*no-such-volume[^\n]*not found/);
    assert.ok(Date.now() - t0 < 10_000);
    assert.equal(await isMounted(m), false);
  });

  test('a missing or non-directory subpath fails fast, leaves nothing mounted, and releases its attachment', async () => {
    const vol = await Volume.create(fresh('badsub'), { client: bed.client });
    await vol.files.write('/file.txt', 'f');
    for (const [sub, re] of [
      ['/nope', /no such directory in the volume/],
      ['/file.txt', /it is a file, not a directory/],
    ] as const) {
      const m = await mountPoint();
      const t0 = Date.now();
      const r = await bed.mounts.mount(vol.name, m, ['--subpath', sub]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, re);
      assert.ok(r.stderr.includes(sub), r.stderr);
      assert.ok(Date.now() - t0 < 10_000);
      assert.equal(await isMounted(m), false);
    }
    const bad = await bed.mounts.mount(vol.name, await mountPoint(), ['--subpath', '../etc']);
    assert.equal(bad.status, 2, bad.stderr);
    assert.match(bad.stderr, /invalid --subpath/);
    assert.equal((await vol.attachments()).length, 0);
    // The volume is still mountable read-write (RWO): no attachment was left behind.
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    await bed.mounts.unmountOk(m);
  });

  test('mounting a path that is already mounted is refused', async () => {
    const vol = await Volume.create(fresh('twice'), { client: bed.client, accessMode: 'RWX' });
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    const r = await bed.mounts.mount(vol.name, m);
    assert.equal(r.status, 4, r.stderr);
    assert.match(r.stderr, /already mounted/);
    await bed.mounts.unmountOk(m);
  });
});

describe('commits that cannot go through', () => {
  test('server down: commit fails after its retries with a clear error, keeps the overlay, and succeeds once the server is back', async () => {
    const dataDir = join(bed.work, fresh('data'));
    let server: RunningServer | undefined = await startServer({
      dataDir,
      port: 0,
      host: '127.0.0.1',
      log: () => undefined,
    });
    const port = Number(new URL(server.url).port);
    const token = server.adminToken!;
    const own = new Mounts({ url: server.url, token }, join(bed.work, fresh('state')));
    try {
      const c = new Stowage({ url: server.url, token });
      const vol = await Volume.create('down', { client: c });
      await vol.files.write('/base.txt', 'base');
      const m = await mountPoint();
      await own.mountOk(vol.name, m);
      await shOk(`echo kept > ${m}/kept.txt`);
      await server.close();
      server = undefined;

      const t0 = Date.now();
      const r = await own.cli(['commit', m]);
      const took = Date.now() - t0;
      assert.equal(r.status, 7, r.stderr);
      assert.match(r.stderr, /^stowage: commit failed after 4 attempts, uncommitted changes kept: /);
      assert.ok(took >= 3_000 && took < 30_000, `took ${took} ms`);
      // The overlay is intact, and the mount still serves it.
      const s = await own.status(m);
      assert.equal(s.pending, 1);
      assert.equal(await shOk(`cat ${m}/kept.txt`), 'kept\n');

      server = await startServer({ dataDir, port, host: '127.0.0.1', log: () => undefined });
      const res = await own.commit(m);
      assert.ok(res.commit);
      assert.equal((await vol.files.read('/kept.txt')).toString(), 'kept\n');
      assert.equal((await own.status(m)).pending, 0);
      await own.unmountOk(m);
    } finally {
      await own.cleanup();
      await server?.close();
    }
  });

  test('over the cap: commit is refused naming the cap; the overlay is kept and commits after a resize', async () => {
    const name = fresh('cap');
    cliOk(await bed.mounts.cli(['volume', 'create', name, '--cap', '1M']));
    const m = await mountPoint();
    await bed.mounts.mountOk(name, m);
    await shOk(`echo small > ${m}/small.txt && head -c ${2 * MiB} /dev/urandom > ${m}/big.bin`);
    const before = await bed.mounts.status(m);
    assert.equal(before.pending, 2);
    const r = await bed.mounts.cli(['commit', m]);
    assert.equal(r.status, 6, r.stderr);
    assert.match(r.stderr, /^stowage: [^\n]*capped at 1 MiB \(1048576 bytes\)/);
    assert.match(r.stderr, /2 MiB/);
    const after = await bed.mounts.status(m);
    assert.equal(after.pending, before.pending);
    assert.equal(after.base, before.base);
    assert.equal(await shOk(`stat -c %s ${m}/big.bin; cat ${m}/small.txt`), `${2 * MiB}\nsmall\n`);
    const vol = await Volume.get(name, { client: bed.client });
    assert.equal(await vol.files.exists('/small.txt'), false);

    cliOk(await bed.mounts.cli(['volume', 'resize', name, '4M']));
    const res = await bed.mounts.commit(m);
    assert.ok(res.commit);
    assert.equal((await vol.files.stat('/big.bin')).size, 2 * MiB);
    await bed.mounts.unmountOk(m);
  });
});

/** One raw request on an agent's control socket. */
function control(
  socketPath: string,
  method: string,
  path: string,
  body?: Buffer | string,
): Promise<{ status: number; json: any }> {
  return new Promise((done, fail) => {
    const req = request(
      { socketPath, method, path, headers: body !== undefined ? { 'content-length': Buffer.byteLength(body) } : {} },
      (res) => {
        const parts: Buffer[] = [];
        res.on('data', (d: Buffer) => parts.push(d));
        res.on('end', () => {
          const text = Buffer.concat(parts).toString('utf8');
          try {
            done({ status: res.statusCode ?? 0, json: JSON.parse(text) });
          } catch {
            fail(new Error(`not JSON: ${text}`));
          }
        });
      },
    );
    req.on('error', fail);
    req.end(body);
  });
}

describe('control socket', () => {
  test('hostile input gets 4xx JSON errors and the agent keeps working', async () => {
    const vol = await Volume.create(fresh('ctl'), { client: bed.client });
    const m = await mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    const sock = join(bed.mounts.stateDir(m), 'control.sock');
    assert.equal((await shOk(`stat -c %a ${sock}`)).trim(), '600');

    const cases: Array<[string, string, Buffer | string | undefined, number, string]> = [
      ['POST', '/commit', '{not json', 400, 'InvalidArgument'],
      ['POST', '/commit', '[1,2]', 400, 'InvalidArgument'],
      ['POST', '/commit', '{"message": 5}', 400, 'InvalidArgument'],
      ['POST', '/commit', Buffer.alloc(100 * 1024, 'a'), 413, 'PayloadTooLarge'],
      ['POST', '/reload', 'null', 400, 'InvalidArgument'],
      ['GET', '/nope', undefined, 404, 'NotFound'],
      ['DELETE', '/status', undefined, 404, 'NotFound'],
      ['GET', '/status?x=../../etc', undefined, 404, 'NotFound'],
    ];
    for (const [method, path, body, status, code] of cases) {
      const r = await control(sock, method, path, body);
      assert.equal(r.status, status, `${method} ${path}: ${JSON.stringify(r.json)}`);
      assert.equal(r.json.error.code, code, `${method} ${path}`);
      assert.equal(typeof r.json.error.message, 'string');
    }
    // Still working: status, a write, a commit.
    const s = (await control(sock, 'GET', '/status')).json as MountStatus;
    assert.equal(s.volume, vol.name);
    await shOk(`echo fine > ${m}/fine.txt`);
    const c = await control(sock, 'POST', '/commit', '{"message":"via socket"}');
    assert.equal(c.status, 200, JSON.stringify(c.json));
    assert.equal((await vol.files.read('/fine.txt')).toString(), 'fine\n');
    const log = await vol.history({ limit: 1 });
    assert.equal(log.commits[0]!.message, 'via socket');
    // unmount without force on a clean mount is fine through the socket too.
    await bed.mounts.unmountOk(m);
  });
});
