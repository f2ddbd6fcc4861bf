/**
 * @module test/disk-full.test
 * A full disk on the server, for real: the blob directory and the upload
 * staging directory of a real server are small tmpfs mounts (2 MiB each).
 * Writes that do not fit are a clear 507 InsufficientStorage "disk full"
 * (CLI: exit 6, one line, no "this is a bug"), leave no temp or empty file
 * behind (the next write that fits succeeds), and a resumable upload cut by
 * the full disk keeps what it staged.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BLOBS_DIR } from '../src/common/data-dir.js';
import type { TreeHash } from '@stowage/sdk/common/ids.js';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { openSqliteMetadataStore } from '../src/stores/sql/sqlite-dialect.js';
import { Stowage, Volume, isStowageError } from '@stowage/sdk';
import { startServer, UPLOADS_DIR, type RunningServer } from '../src/server/serve.js';
import { cliEnv, pattern, spawnCli } from './helpers/cli.js';

let server: RunningServer;
let token: string;
let client: Stowage;
let dataDir: string;
let work: string;
const mounts: string[] = [];

/** Every file under `dir` (recursively), with its size. */
async function filesUnder(dir: string): Promise<Array<{ path: string; size: number }>> {
  const out: Array<{ path: string; size: number }> = [];
  for (const d of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, d.name);
    if (d.isDirectory()) out.push(...(await filesUnder(p)));
    else out.push({ path: p, size: (await stat(p)).size });
  }
  return out;
}

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'stowage-diskfull-'));
  work = await mkdtemp(join(tmpdir(), 'stowage-diskfull-work-'));
  for (const sub of [BLOBS_DIR, UPLOADS_DIR]) {
    const dir = join(dataDir, sub);
    await mkdir(dir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]);
    mounts.push(dir);
  }
  server = await startServer({ dataDir, port: 0, host: '127.0.0.1', log: () => undefined });
  token = server.adminToken!;
  client = new Stowage({ url: server.url, token });
});

after(async () => {
  await server?.close();
  for (const m of mounts) execFileSync('umount', [m]);
  await rm(dataDir, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
});

describe('a full disk on the server', () => {
  test('metadata on a full disk (SQLite) is 507 "disk full", never an internal error, and works again once space is freed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-diskfull-meta-'));
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', dir]);
    const store = await openSqliteMetadataStore({ path: join(dir, 'metadata.db') });
    try {
      const ballast = join(dir, 'ballast');
      await writeFile(ballast, Buffer.alloc(0));
      // Fill what is left of the disk with a file of ours, then ask the database to grow.
      await assert.rejects(async () => {
        for (;;) await writeFile(ballast, Buffer.alloc(64 * 1024), { flag: 'a' });
      });
      const trees = Array.from({ length: 16 }, (_, i) => ({
        hash: createHash('sha256').update(`t${i}`).digest('hex') as TreeHash,
        data: Buffer.alloc(16 * 1024, i),
      }));
      await assert.rejects(store.putTrees(trees, new Date()), (e) => {
        assert.ok(isStowageError(e, 'InsufficientStorage'), `got ${String(e)}`);
        assert.match(e.message, /^disk full: the metadata database could not .*Free space/);
        return true;
      });
      await rm(ballast);
      await store.putTrees(trees, new Date());
      assert.ok(await store.getTree(trees[15]!.hash));
    } finally {
      await store.close();
      execFileSync('umount', [dir]);
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a chunk that does not fit is 507 "disk full", leaves no temp or empty file, and the next write that fits succeeds', async () => {
    const vol = await Volume.get('full', { client, mintIfMissing: true });
    const head = vol.info.head;
    await assert.rejects(vol.files.write('/big.bin', pattern(3 * MiB, 1)), (e) => {
      assert.ok(isStowageError(e, 'InsufficientStorage'), `got ${String(e)}`);
      assert.match(e.message, /^disk full: .*Free space on the server/);
      return true;
    });
    assert.equal((await vol.refresh()).head, head, 'nothing committed');
    const left = await filesUnder(join(dataDir, BLOBS_DIR));
    assert.deepEqual(
      left.filter((f) => f.path.includes('/.tmp/') || f.size === 0),
      [],
      'no temp or empty file left',
    );
    // The refused bytes freed their space: 1.5 MiB fits on the 2 MiB disk.
    const fits = pattern(1.5 * MiB, 2);
    await vol.files.write('/fits.bin', fits);
    assert.ok((await vol.files.read('/fits.bin')).equals(fits));
  });

  test('the CLI says "disk full" in one line and exits 6, not "internal error, this is a bug"', async () => {
    const local = join(work, 'big.bin');
    await writeFile(local, pattern(3 * MiB, 3));
    const r = await spawnCli(['put', local, 'full:/cli.bin'], {
      env: cliEnv({ STOWAGE_URL: server.url, STOWAGE_TOKEN: token }),
    }).done;
    assert.equal(r.status, 6, r.stderr);
    assert.match(r.stderr, /^stowage: disk full: [^\n]+\n$/);
    assert.doesNotMatch(r.stderr, /bug|internal/i);
  });

  test('a resumable upload cut by the full staging disk is 507 "disk full" and keeps what it staged; creation on a full disk leaves nothing', async () => {
    const data = pattern(3 * MiB, 4);
    const sha = createHash('sha256').update(data).digest('hex');
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const headers = { authorization: `Bearer ${token}`, 'tus-resumable': '1.0.0' };
    const create = (size: number) =>
      fetch(`${server.url}/v1/uploads`, {
        method: 'POST',
        headers: {
          ...headers,
          'upload-length': String(size),
          'upload-metadata': `volume ${b64('full')},path ${b64('/tus.bin')},sha256 ${b64(sha)}`,
        },
      });
    const created = await create(data.length);
    assert.equal(created.status, 201);
    const url = new URL(created.headers.get('location')!, `${server.url}/v1/uploads`).toString();
    const cut = await fetch(url, {
      method: 'PATCH',
      headers: { ...headers, 'upload-offset': '0', 'content-type': 'application/offset+octet-stream' },
      body: data,
    });
    assert.equal(cut.status, 507, await cut.clone().text());
    const body = (await cut.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'InsufficientStorage');
    assert.match(body.error.message, /^disk full: staging the upload/);
    // tus offsets are what is on disk: the upload resumes from there once space is freed.
    const head = await fetch(url, { method: 'HEAD', headers });
    assert.equal(head.status, 200);
    const staged = Number(head.headers.get('upload-offset'));
    assert.ok(staged > 0 && staged < data.length, `staged ${staged}`);

    // The staging disk is full now: a new upload cannot even be created, and leaves no empty staging file.
    const before = (await readdir(join(dataDir, UPLOADS_DIR))).sort();
    const refused = await create(1000);
    assert.equal(refused.status, 507, await refused.clone().text());
    assert.match(
      ((await refused.json()) as { error: { message: string } }).error.message,
      /^disk full: creating the upload/,
    );
    assert.deepEqual((await readdir(join(dataDir, UPLOADS_DIR))).sort(), before);

    // Abandoning the cut upload frees its space.
    assert.equal((await fetch(url, { method: 'DELETE', headers })).status, 204);
    assert.equal((await create(1000)).status, 201);
  });
});
