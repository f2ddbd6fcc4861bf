/**
 * @module test/entry-attributes.test
 * Owners (uid/gid) and nanosecond times end to end, against a real server
 * over loopback (real SQLite file, real blob directory): hostile values over
 * HTTP, the OpenAPI document, the SDK's commit writer and uploads, downloads
 * (which never apply an owner) and the CLI's ls and stat.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as wire from '@stowage/sdk/api/wire.js';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { commitFiles, type PendingFile } from '@stowage/sdk/client/commit-writer.js';
import { Stowage, Volume } from '@stowage/sdk';
import { cliEnv, spawnCli } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

let srv: TestServer;
let client: Stowage;
let work: string;
let seq = 0;
const fresh = (prefix = 'attrs'): string => `${prefix}-${process.pid}-${++seq}`;
const T = 1_700_000_000_123;

before(async () => {
  srv = await startTestServer();
  client = new Stowage({ url: srv.url, token: srv.token });
  work = await mkdtemp(join(tmpdir(), 'stowage-attrs-test-'));
});
after(async () => {
  await srv?.close();
  if (work) await rm(work, { recursive: true, force: true });
});

async function api(method: string, path: string, json?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(`${srv.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${srv.token}`,
      ...(json !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(json !== undefined ? { body: JSON.stringify(json) } : {}),
  });
  const text = await res.text();
  return {
    status: res.status,
    body: text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text,
  };
}

const empty = { op: 'put', size: 0, chunkSize: SMALL_CHUNK_SIZE, chunks: [] };

describe('HTTP: owners and ns times in changes', () => {
  it('refuses hostile values with 400 naming the change and the field, committing nothing', async () => {
    const name = fresh();
    await api('POST', '/v1/volumes', { name });
    await api('POST', `/v1/volumes/${name}/commits`, { changes: [{ ...empty, path: '/f' }] });
    const head = (await api('GET', `/v1/volumes/${name}`)).body.head;
    const bad: Array<[unknown, RegExp]> = [
      [{ ...empty, path: '/x', uid: -1 }, /uid must be a whole number between 0 and 4294967294/],
      [{ ...empty, path: '/x', uid: 4294967295 }, /uid must be/],
      [{ ...empty, path: '/x', gid: 1.5 }, /gid must be/],
      [{ ...empty, path: '/x', uid: '0' }, /uid must be/],
      [{ ...empty, path: '/x', gid: null }, /gid must be/],
      [{ ...empty, path: '/x', mtime: T, mtimeNs: 1_000_000 }, /mtimeNs must be .*between 0 and 999999/],
      [{ ...empty, path: '/x', mtime: T, atime: T, atimeNs: 0.5 }, /atimeNs must be/],
      [{ ...empty, path: '/x', ctimeNs: 1 }, /ctimeNs needs ctime/],
      [{ ...empty, path: '/x', mtime: 1e20 }, /mtime must be a whole number of milliseconds/],
      [{ ...empty, path: '/x', atime: -8.64e15 - 1 }, /atime must be/],
      [{ op: 'mkdir', path: '/d', uid: 2 ** 53 }, /uid must be/],
      [{ op: 'symlink', path: '/l', target: 'f', ctime: 'now' }, /ctime must be/],
      [{ op: 'setattr', path: '/f', gid: -5 }, /gid must be/],
      [{ op: 'setattr', path: '/f', mtimeNs: 5 }, /mtimeNs needs mtime/],
      [{ op: 'delete', path: '/f', uid: 0 }, /delete takes no uid/],
      [{ op: 'move', from: '/f', to: '/g', atime: T }, /move takes no atime/],
    ];
    for (const [change, message] of bad) {
      const a = await api('POST', `/v1/volumes/${name}/commits`, { changes: [{ op: 'mkdir', path: '/ok' }, change] });
      assert.equal(a.status, 400, JSON.stringify([change, a.body]));
      assert.equal(a.body.error.code, 'InvalidArgument');
      assert.match(a.body.error.message, /^changes\[1\]: /);
      assert.match(a.body.error.message, message, JSON.stringify(change));
    }
    const missing = await api('POST', `/v1/volumes/${name}/commits`, {
      changes: [{ op: 'setattr', path: '/missing', uid: 0 }],
    });
    assert.equal(missing.status, 404, JSON.stringify(missing.body));
    assert.equal((await api('GET', `/v1/volumes/${name}`)).body.head, head, 'nothing was committed');
    const st = await api('GET', `/v1/volumes/${name}/stat?path=/f`);
    assert.equal(st.body.entry.uid, undefined);
  });

  it('stores the bounds, shows them in stat and list, and setattr null removes the owner', async () => {
    const name = fresh();
    await api('POST', '/v1/volumes', { name });
    const full = {
      uid: 0,
      gid: 4294967294,
      mtime: -1,
      mtimeNs: 999999,
      atime: 8.64e15,
      atimeNs: 0,
      ctime: T,
      ctimeNs: 1,
    };
    const r = await api('POST', `/v1/volumes/${name}/commits`, { changes: [{ ...empty, path: '/f', ...full }] });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    const { entry } = (await api('GET', `/v1/volumes/${name}/stat?path=/f`)).body as wire.StatResponse;
    assert.deepEqual(
      {
        uid: entry.uid,
        gid: entry.gid,
        mtime: entry.mtime,
        mtimeNs: entry.mtimeNs,
        atime: entry.atime,
        atimeNs: entry.atimeNs,
        ctime: entry.ctime,
        ctimeNs: entry.ctimeNs,
      },
      { ...full, atimeNs: undefined },
    );
    const listed = ((await api('GET', `/v1/volumes/${name}/list?path=/`)).body as wire.ListResponse).entries[0]!;
    assert.equal(listed.gid, 4294967294);
    await api('POST', `/v1/volumes/${name}/commits`, {
      changes: [{ op: 'setattr', path: '/f', uid: null, gid: null }],
    });
    const after = ((await api('GET', `/v1/volumes/${name}/stat?path=/f`)).body as wire.StatResponse).entry;
    assert.equal('uid' in after, false);
    assert.equal('gid' in after, false);
    assert.equal(after.ctime, T, 'the rest stays');
  });

  it('documents the fields in the OpenAPI document', async () => {
    const doc = (await api('GET', '/v1/openapi.json')).body;
    const info = doc.components.schemas.FileInfo.properties;
    for (const k of ['uid', 'gid', 'mtimeNs', 'atime', 'atimeNs', 'ctime', 'ctimeNs'])
      assert.equal(typeof info[k]?.description, 'string', k);
    assert.equal(info.uid.maximum, 4294967294);
    assert.equal(info.mtimeNs.maximum, 999999);
    const setattr = doc.components.schemas.Change.oneOf.find((s: any) => s.properties.op.enum?.[0] === 'setattr');
    assert.equal(
      setattr.properties.uid.nullable ?? setattr.properties.uid.type?.includes?.('null'),
      true,
      JSON.stringify(setattr.properties.uid),
    );
  });
});

describe('SDK: owners and ns times', () => {
  it('the commit writer sends the owner and times a PendingFile carries', async () => {
    const vol = await Volume.create(fresh(), { client });
    const bytes = Buffer.from('owned');
    const file: PendingFile = {
      path: '/owned.txt',
      size: bytes.length,
      chunkSize: SMALL_CHUNK_SIZE,
      chunks: [{ hash: createHash('sha256').update(bytes).digest('hex'), size: bytes.length, offset: 0 }],
      mode: 0o640,
      mtime: T,
      mtimeNs: 42,
      atime: T - 1000,
      atimeNs: 7,
      ctime: T + 1,
      ctimeNs: 999999,
      uid: 1000,
      gid: 100,
      read: () => bytes,
    };
    await commitFiles({ client, name: vol.name }, [file], []);
    const e = await vol.files.stat('/owned.txt');
    assert.deepEqual(
      [e.mode, e.uid, e.gid, e.mtime, e.mtimeNs, e.atime, e.atimeNs, e.ctime, e.ctimeNs],
      [0o640, 1000, 100, T, 42, T - 1000, 7, T + 1, 999999],
    );
    assert.equal((await vol.files.read('/owned.txt')).toString(), 'owned');
  });

  it('uploads of local files and directories send the mtime to the nanosecond and never an owner', async () => {
    const vol = await Volume.create(fresh(), { client });
    const dir = join(work, 'up');
    await mkdir(join(dir, 'sub'), { recursive: true });
    await writeFile(join(dir, 'sub', 'a.txt'), 'a');
    await writeFile(join(work, 'single.txt'), 's');
    // touch sets nanoseconds, which Node's utimes (a float of seconds) cannot state exactly.
    for (const p of [join(dir, 'sub', 'a.txt'), join(dir, 'sub'), join(work, 'single.txt')])
      execFileSync('touch', ['-m', '-d', '@1700000000.123456789', p]);
    const local = await stat(join(dir, 'sub', 'a.txt'), { bigint: true });
    assert.equal(local.mtimeNs % 1_000_000n, 456789n, 'the local file system keeps nanoseconds');
    await vol.upload(dir, '/up');
    await vol.files.writeFile('/single.txt', join(work, 'single.txt'));
    for (const p of ['/up/sub/a.txt', '/up/sub', '/single.txt']) {
      const e = await vol.files.stat(p);
      assert.deepEqual(
        [e.mtime, e.mtimeNs, e.uid, e.gid, e.atime, e.ctime],
        [1_700_000_000_123, 456789, undefined, undefined, undefined, undefined],
        p,
      );
    }
  });

  it('downloads never apply a recorded owner: files come out owned by the downloading user', async () => {
    const vol = await Volume.create(fresh(), { client });
    await vol.files.writeMany([
      { path: '/d/root-owned', data: 'r' },
      { path: '/d/other-owned', data: 'o' },
    ]);
    await vol.commitChanges([
      { op: 'setattr', path: '/d/root-owned', uid: 0, gid: 0 },
      { op: 'setattr', path: '/d/other-owned', uid: 4242, gid: 4343 },
      { op: 'setattr', path: '/d', uid: 4242, gid: 4343 },
    ]);
    assert.equal((await vol.files.stat('/d/other-owned')).uid, 4242);
    const dest = join(work, 'down');
    await vol.download('/d', dest);
    await vol.download('/d/root-owned', join(work, 'single-root-owned'));
    for (const p of [dest, join(dest, 'root-owned'), join(dest, 'other-owned'), join(work, 'single-root-owned')]) {
      const st = await stat(p);
      assert.equal(st.uid, process.getuid!(), p);
      assert.equal(st.gid, process.getgid!(), p);
    }
  });
});

describe('CLI: owners in ls and stat', () => {
  const cli = (args: string[]) =>
    spawnCli(args, { env: cliEnv({ STOWAGE_URL: srv.url, STOWAGE_TOKEN: srv.token }) }).done;

  it('ls shows an OWNER column and stat the owner and ns times when recorded; --json includes them', async () => {
    const name = fresh('cli');
    const vol = await Volume.create(name, { client });
    await vol.files.write('/plain.txt', 'p', { mtime: T });
    const plainLs = await cli(['ls', name]);
    assert.equal(plainLs.status, 0, plainLs.stderr);
    assert.doesNotMatch(plainLs.stdout, /OWNER/, 'no column when nothing records an owner');
    await vol.files.write('/owned.txt', 'o', { mtime: T });
    await vol.commitChanges([
      { op: 'setattr', path: '/owned.txt', uid: 1000, gid: 100, mtime: T, mtimeNs: 456789, atime: T + 1000 },
    ]);
    const ls = await cli(['ls', '-l', name]);
    assert.equal(ls.status, 0, ls.stderr);
    assert.match(ls.stdout, /^MODE\s+OWNER\s+SIZE\s+MODIFIED\s+NAME$/m);
    assert.match(ls.stdout, /^-rw-r--r--\s+1000:100\s+1 B\s+.*owned\.txt$/m);
    assert.match(ls.stdout, /^-rw-r--r--\s+-\s+1 B\s+.*plain\.txt$/m);
    const st = await cli(['stat', `${name}:/owned.txt`]);
    assert.equal(st.status, 0, st.stderr);
    assert.match(st.stdout, /^owner:\s+1000:100$/m);
    assert.match(st.stdout, /^modified:\s+2023-11-14 22:13:20\.123456789$/m);
    assert.match(st.stdout, /^accessed:\s+2023-11-14 22:13:21\.123000000$/m);
    // ctime was not given: it stays the instant it was before (the old mtime, whole ms).
    assert.match(st.stdout, /^changed:\s+2023-11-14 22:13:20\.123000000$/m);
    const json = JSON.parse((await cli(['stat', `${name}:/owned.txt`, '--json'])).stdout) as wire.FileInfo;
    assert.deepEqual([json.uid, json.gid, json.mtimeNs, json.atime], [1000, 100, 456789, T + 1000]);
    const listed = JSON.parse((await cli(['ls', name, '--json'])).stdout) as wire.FileInfo[];
    assert.equal(listed.find((e) => e.name === 'owned.txt')!.uid, 1000);
    const plainStat = await cli(['stat', `${name}:/plain.txt`]);
    assert.doesNotMatch(plainStat.stdout, /owner|accessed/);
  });
});
