/**
 * @module test/postgres-server.test
 * `stowage serve --metadata postgres://...` end to end: the real server
 * (startServer) with its metadata in a throwaway PostgreSQL cluster and its
 * blobs in a local temp dir, driven through the SDK over loopback.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { Stowage, Volume } from '@stowage/sdk';
import { startServer, type RunningServer } from '../src/server/serve.js';
import { pattern } from './helpers/cli.js';
import { runOwnershipAttack } from './helpers/ownership.js';
import { startTestPostgres, type TestPostgres } from './helpers/postgres.js';

const WRITERS = 8;

describe('server with PostgreSQL metadata', () => {
  let pgsrv: TestPostgres;
  let dataDir: string;
  let server: RunningServer;
  let client: Stowage;
  const lines: string[] = [];

  before(async () => {
    pgsrv = await startTestPostgres();
    dataDir = await mkdtemp(join(tmpdir(), 'stowage-pg-server-'));
    server = await startServer({
      dataDir,
      port: 0,
      host: '127.0.0.1',
      metadataUrl: pgsrv.url,
      log: (l) => lines.push(l),
    });
    assert.ok(server.adminToken, 'a fresh database yields an admin token');
    client = new Stowage({ url: server.url, token: server.adminToken });
  });

  after(async () => {
    await server?.close();
    await pgsrv?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  test('logs the PostgreSQL URL without its password, and keeps the records in PostgreSQL', async () => {
    const listening = lines.find((l) => l.includes('listening'));
    assert.ok(listening, lines.join('\n'));
    assert.match(listening, /metadata postgres:\/\/stowage:\*\*\*@127\.0\.0\.1:\d+\/stowage/);
    assert.ok(!lines.join('\n').includes(pgsrv.password));
    const c = new pg.Client({ connectionString: pgsrv.url });
    await c.connect();
    try {
      const { rows } = await c.query<{ name: string }>('select name from tenants');
      assert.deepEqual(
        rows.map((r) => r.name),
        ['default'],
      );
    } finally {
      await c.end();
    }
  });

  test('refuses the dedupe proof-of-ownership attack with ownership kept in PostgreSQL', {
    timeout: 120_000,
  }, async () => {
    await runOwnershipAttack({ url: server.url, token: server.adminToken!, engine: server.engine }, 'pg', true);
  });

  test('create, write, read, snapshot, fork', async () => {
    const v = await Volume.create('pg-data', { client, cap: '64M' });
    await v.files.write('/notes/hello.txt', 'héllo\n');
    const big = pattern(3 * MiB);
    await v.files.write('/big.bin', big);
    assert.equal((await v.files.read('/notes/hello.txt')).toString('utf8'), 'héllo\n');
    assert.ok(Buffer.from(await v.files.read('/big.bin')).equals(Buffer.from(big)));

    const snap = await v.snapshot('s1');
    assert.equal(snap.name, 's1');
    await v.files.write('/notes/hello.txt', 'changed\n');
    const f = await v.fork('pg-fork', { snapshot: 's1' });
    assert.equal((await f.files.read('/notes/hello.txt')).toString(), 'héllo\n');
    await f.files.write('/only-fork', 'x');
    assert.equal(await v.files.exists('/only-fork'), false);
    assert.equal((await v.files.read('/notes/hello.txt')).toString(), 'changed\n');
    await v.restore('s1');
    assert.equal((await v.files.read('/notes/hello.txt')).toString(), 'héllo\n');

    // A second server on the same database sees the same volumes (stateless replicas).
    const second = await startServer({
      dataDir: await mkdtemp(join(tmpdir(), 'stowage-pg-server-2-')),
      port: 0,
      host: '127.0.0.1',
      metadataUrl: pgsrv.url,
      blobUrl: join(dataDir, 'blobs'),
      log: () => undefined,
    });
    try {
      assert.equal(second.adminToken, undefined, 'the tenant already exists in PostgreSQL');
      const other = new Stowage({ url: second.url, token: server.adminToken! });
      const seen = await Volume.get('pg-fork', { client: other });
      assert.equal((await seen.files.read('/only-fork')).toString(), 'x');
    } finally {
      await second.close();
    }
  });

  test(`${WRITERS} concurrent writers on distinct paths: every commit lands, none lost`, async () => {
    const handles = await Promise.all(
      Array.from({ length: WRITERS }, () =>
        Volume.get('pg-shared', {
          mintIfMissing: true,
          accessMode: 'RWX',
          client: new Stowage({ url: server.url, token: server.adminToken! }),
        }),
      ),
    );
    assert.equal(new Set(handles.map((h) => h.id)).size, 1, 'concurrent get-or-create made one volume');
    const startSeq = (await handles[0]!.history({ limit: 1 })).commits[0]!.seq;
    await Promise.all(
      handles.map(async (vol, i) => {
        for (let j = 0; j < 4; j++) await vol.files.write(`/writer-${i}/file-${j}.txt`, `writer ${i} file ${j}`);
      }),
    );
    const files = (await handles[0]!.files.list('/', { recursive: true })).filter((f) => f.type === 'file');
    assert.equal(files.length, WRITERS * 4);
    for (const f of files) {
      const [, i, j] = /^\/writer-(\d)\/file-(\d)\.txt$/.exec(f.path)!;
      assert.equal((await handles[0]!.files.read(f.path)).toString(), `writer ${i} file ${j}`);
    }
    const history = await handles[0]!.history({ limit: 100 });
    assert.equal(history.commits[0]!.seq - startSeq, WRITERS * 4, 'one commit per write, none lost');
  });
});
