/**
 * @module test/replicas.test
 * Three `stowage serve` replicas over one PostgreSQL and one S3 bucket (moto)
 * behave as one service: get-or-create, commits, snapshots and forks driven
 * through all of them at once lose nothing and duplicate nothing, and GC run
 * on one replica deletes garbage but never what another is committing.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { Stowage, Volume } from '@stowage/sdk';
import { startServer, type RunningServer } from '../src/server/serve.js';
import { cliEnv, pattern, spawnCli } from './helpers/cli.js';
import { createBucket, deleteBucket, motoBlobUrl, startMoto, type Moto } from './helpers/moto.js';
import { startTestPostgres, type TestPostgres } from './helpers/postgres.js';

const REPLICAS = 3;

describe('three replicas over one PostgreSQL and one S3 bucket', () => {
  let pgsrv: TestPostgres;
  let moto: Moto;
  let bucket: string;
  const dirs: string[] = [];
  const servers: RunningServer[] = [];
  let clients: Stowage[] = [];

  before(async () => {
    [pgsrv, moto] = await Promise.all([startTestPostgres(), startMoto()]);
    bucket = await createBucket(moto.endpoint, 'replicas');
    // Started together: migrations and the first tenant must come out once.
    const started = await Promise.all(
      Array.from({ length: REPLICAS }, async () => {
        const dataDir = await mkdtemp(join(tmpdir(), 'stowage-replica-'));
        dirs.push(dataDir);
        return startServer({
          dataDir,
          port: 0,
          host: '127.0.0.1',
          metadataUrl: pgsrv.url,
          blobUrl: motoBlobUrl(moto.endpoint, bucket),
          log: () => undefined,
        });
      }),
    );
    servers.push(...started);
    const tokens = started.map((s) => s.adminToken).filter((t): t is string => t !== undefined);
    assert.equal(tokens.length, 1, 'exactly one replica created the first tenant and its token');
    clients = started.map((s) => new Stowage({ url: s.url, token: tokens[0]! }));
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    if (moto && bucket) await deleteBucket(moto.endpoint, bucket).catch(() => undefined);
    await moto?.stop();
    await pgsrv?.stop();
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  test('get-or-create of the same names through every replica at once yields one volume per name', async () => {
    const names = ['alpha', 'beta', 'gamma', 'delta'];
    const opened = await Promise.all(
      names.flatMap((name) =>
        clients.flatMap((client) => [0, 1].map(() => Volume.get(name, { mintIfMissing: true, client }))),
      ),
    );
    for (const name of names) {
      const ids = new Set(opened.filter((v) => v.name === name).map((v) => v.id));
      assert.equal(ids.size, 1, `one id for ${name}`);
    }
    const listed = (await Volume.list({ client: clients[2]! })).map((v) => v.name).filter((n) => names.includes(n));
    assert.deepEqual(listed.sort(), [...names].sort());
  });

  test('concurrent commits through every replica: nothing lost, seqs consecutive, no duplicates', async () => {
    const vols = await Promise.all(clients.map((client) => Volume.get('shared', { mintIfMissing: true, client })));
    const PER = 8;
    await Promise.all(
      vols.flatMap((v, r) =>
        Array.from({ length: PER }, (_, i) => v.files.write(`/r${r}/f${i}.txt`, `replica ${r} file ${i}\n`)),
      ),
    );
    const check = vols[1]!;
    for (let r = 0; r < REPLICAS; r++) {
      for (let i = 0; i < PER; i++)
        assert.equal((await check.files.read(`/r${r}/f${i}.txt`)).toString(), `replica ${r} file ${i}\n`);
    }
    const { commits } = await check.history({ limit: 100 });
    const seqs = commits.map((c) => c.seq).sort((a, b) => a - b);
    assert.equal(seqs.length, REPLICAS * PER + 1, 'the creation commit and one commit per write');
    assert.deepEqual(
      seqs,
      Array.from({ length: seqs.length }, (_, i) => seqs[0]! + i),
      'consecutive, none twice',
    );
    assert.equal(new Set(commits.map((c) => c.id)).size, commits.length);
  });

  test('snapshots and forks made through different replicas at once', async () => {
    const vol = await Volume.get('snaps', { mintIfMissing: true, client: clients[0]! });
    await vol.files.write('/v.txt', 'v0');
    const snaps = await Promise.all(
      clients.map((client, r) => Volume.get('snaps', { client }).then((v) => v.snapshot(`s${r}`))),
    );
    assert.equal(new Set(snaps.map((s) => s.name)).size, REPLICAS);
    const forks = await Promise.all(
      clients.map((client, r) =>
        Volume.get('snaps', { client }).then((v) => v.fork(`snaps-fork-${r}`, { snapshot: `s${(r + 1) % REPLICAS}` })),
      ),
    );
    await Promise.all(forks.map((f, r) => f.files.write('/v.txt', `fork ${r}`)));
    for (const [r, f] of forks.entries())
      assert.equal(
        (
          await Volume.get(f.name, { client: clients[(r + 2) % REPLICAS]! }).then((v) => v.files.read('/v.txt'))
        ).toString(),
        `fork ${r}`,
      );
    assert.equal((await vol.files.read('/v.txt')).toString(), 'v0', 'forks are copy-on-write');
    assert.equal((await vol.snapshots()).length, REPLICAS);
  });

  test('read-write mounts of an RWO volume racing through every replica: exactly one attachment wins', async () => {
    await Volume.get('exclusive', { mintIfMissing: true, accessMode: 'RWO', client: clients[0]! });
    const tries = await Promise.allSettled(
      clients.flatMap((client, r) =>
        [0, 1].map((k) =>
          Volume.get('exclusive', { client }).then((v) => v.attach({ host: `host-${r}-${k}`, path: '/mnt/x' })),
        ),
      ),
    );
    const won = tries.filter((t) => t.status === 'fulfilled');
    assert.equal(
      won.length,
      1,
      JSON.stringify(tries.map((t) => (t.status === 'rejected' ? String((t.reason as Error).message) : 'won'))),
    );
    for (const t of tries) {
      if (t.status === 'rejected')
        assert.equal((t.reason as { code?: string }).code, 'Conflict', String((t.reason as Error).message));
    }
  });

  test('GC on one replica deletes garbage, never what another replica is committing', async () => {
    // Garbage: a deleted volume's content, made to look two hours old.
    const doomed = await Volume.get('doomed', { mintIfMissing: true, client: clients[0]! });
    await doomed.files.write('/garbage.bin', pattern(300 * 1024, 77));
    await doomed.files.write('/garbage-big.bin', pattern(9 * 1024 * 1024, 78));
    await doomed.delete();
    const db = new pg.Client({ connectionString: pgsrv.url });
    await db.connect();
    const twoHoursAgo = Date.now() - 2 * 3600_000;
    try {
      // Everything stored so far looks old: only reachability keeps it now.
      await db.query('UPDATE chunks SET touched_at = $1', [twoHoursAgo]);
      await db.query('UPDATE trees SET touched_at = $1', [twoHoursAgo]);
    } finally {
      await db.end();
    }
    const live = await Volume.get('busy', { mintIfMissing: true, client: clients[1]! });
    // Writers on replicas 1 and 2 keep committing new content while replica 0 collects.
    let stop = false;
    const written: string[] = [];
    const writers = [1, 2].map(async (r) => {
      const v = await Volume.get('busy', { client: clients[r]! });
      for (let i = 0; !stop || i < 3; i++) {
        const path = `/w${r}/${i}.bin`;
        await v.files.write(path, pattern(64 * 1024 + i, 1000 * r + i));
        written.push(path);
      }
    });
    const reports = [];
    for (let i = 0; i < 3; i++) reports.push(await servers[0]!.engine.gc({ grace: 30 * 60_000 }));
    stop = true;
    await Promise.all(writers);
    assert.ok(
      reports.reduce((n, r) => n + r.deletedChunks, 0) >= 2,
      `the deleted volume's chunks were collected: ${JSON.stringify(reports)}`,
    );
    // Every file committed during GC, and everything older that is still reachable, reads back whole.
    for (const path of written) {
      const [, w, name] = /^\/w(\d)\/(\d+)\.bin$/.exec(path)!;
      const i = Number(name);
      assert.ok(Buffer.from(await live.files.read(path)).equals(pattern(64 * 1024 + i, 1000 * Number(w) + i)), path);
    }
    const shared = await Volume.get('shared', { client: clients[2]! });
    assert.equal((await shared.files.read('/r0/f0.txt')).toString(), 'replica 0 file 0\n');
  });

  test('operator commands reach the shared stores: stowage tenant create and gc with --metadata and --blobs', async () => {
    const stores = ['--metadata', pgsrv.url, '--blobs', motoBlobUrl(moto.endpoint, bucket)];
    const env = cliEnv({ STOWAGE_DATA: dirs[0] });
    const created = await spawnCli(['tenant', 'create', 'second-team', ...stores, '--json'], { env }).done;
    assert.equal(created.status, 0, created.stderr);
    const { secret } = JSON.parse(created.stdout) as { secret: string };
    const asSecond = new Stowage({ url: servers[2]!.url, token: secret });
    assert.deepEqual(await Volume.list({ client: asSecond }), [], 'a new tenant, served by every replica');
    const gc = await spawnCli(['gc', ...stores, '--dry-run', '--json'], { env }).done;
    assert.equal(gc.status, 0, gc.stderr);
    assert.equal((JSON.parse(gc.stdout) as { dryRun: boolean }).dryRun, true);
    assert.ok(!gc.stderr.includes(pgsrv.password), 'no password in the output');
  });
});
