/**
 * @module postgres-metadata-store.test
 * Runs the MetadataStore conformance suite unchanged on a real PostgreSQL
 * (one throwaway cluster for this file, a fresh schema per test), then
 * checks what only a shared database server can show: several pools racing
 * on one head, serialization conflicts retried, migrations racing at start,
 * the server restarting under load, and start-up errors that name the
 * setting without leaking the password.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, afterEach, before, describe, it } from 'node:test';
import pg from 'pg';
import { startTestPostgres, type TestPostgres } from './helpers/postgres.js';
import type { CommitId, TenantId } from '@stowage/sdk/common/ids.js';
import { runMetadataStoreConformance, sampleTenant, sampleVolume } from '../src/stores/metadata-store.conformance.js';
import type { MetadataStore } from '../src/stores/metadata-store.js';
import type { CommitRecord, TenantRecord, VolumeRecord } from '@stowage/sdk/model/records.js';
import { openMetadataStore } from '../src/stores/registry.js';
import { metadataMigrations } from '../src/stores/sql/migrations.js';
import { openPostgresMetadataStore, parsePostgresUrl } from '../src/stores/sql/postgres-dialect.js';
import { MAX_CONFLICT_ATTEMPTS } from '../src/stores/sql/sql-metadata-store.js';

let cluster: Promise<TestPostgres> | undefined;
/** The file's one cluster, started by the first test that needs it. */
function server(): Promise<TestPostgres> {
  cluster ??= startTestPostgres();
  return cluster;
}
after(async () => {
  if (cluster) await (await cluster).stop();
});

/** A fresh schema name. */
function schemaName(): string {
  return `t_${randomBytes(6).toString('hex')}`;
}

async function dropSchema(srv: TestPostgres, schema: string): Promise<void> {
  const c = new pg.Client({ connectionString: srv.url });
  await c.connect();
  try {
    await c.query(`drop schema if exists ${schema} cascade`);
  } finally {
    await c.end();
  }
}

async function query<R extends pg.QueryResultRow>(srv: TestPostgres, text: string): Promise<R[]> {
  const c = new pg.Client({ connectionString: srv.url });
  await c.connect();
  try {
    return (await c.query<R>(text)).rows;
  } finally {
    await c.end();
  }
}

runMetadataStoreConformance('postgres', async () => {
  const srv = await server();
  const schema = schemaName();
  const store = await openPostgresMetadataStore({ url: srv.urlFor(srv.database, { schema, pool: '4' }) });
  return { store, cleanup: () => dropSchema(srv, schema) };
});

function hex(): string {
  return randomBytes(32).toString('hex');
}

// Values past 2^32 and 2^50 check that int8 columns come back as exact numbers.
const tenant = (name: string): TenantRecord => sampleTenant(name, { defaultCap: 2 ** 50 });
const volume = (tenantId: TenantId, name: string): VolumeRecord => sampleVolume(tenantId, name, { cap: 2 ** 52 });

function commitAfter(v: VolumeRecord, parent: CommitId, seq: number): CommitRecord {
  return {
    id: hex() as CommitId,
    volumeId: v.id,
    seq,
    parent,
    tree: hex() as CommitRecord['tree'],
    message: `commit ${seq}`,
    author: 'test',
    size: seq,
    fileCount: seq,
    summary: { changed: 1, paths: ['/a'], overwritten: [] },
    createdAt: new Date(1_700_000_000_000 + seq),
  };
}

describe('PostgreSQL metadata store', () => {
  let srv: TestPostgres;
  let schema: string;
  const open: MetadataStore[] = [];

  before(async () => {
    srv = await server();
  });

  async function openStore(params: Record<string, string> = {}): Promise<MetadataStore> {
    const s = await openPostgresMetadataStore({ url: srv.urlFor(srv.database, { schema, ...params }), connectTimeoutMs: 3000 });
    open.push(s);
    return s;
  }

  async function seed(s: MetadataStore): Promise<VolumeRecord> {
    const t = tenant(`acme-${hex().slice(0, 6)}`);
    await s.insertTenant(t);
    const v = volume(t.id, 'data');
    await s.insertVolume(v);
    return v;
  }

  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    if (schema) await dropSchema(srv, schema);
  });

  it('migrates once when several replicas start at the same time', async () => {
    schema = schemaName();
    const stores = await Promise.all(Array.from({ length: 5 }, () => openStore({ pool: '2' })));
    const rows = await query<{ name: string }>(srv, `select name from ${schema}.kysely_migration order by name`);
    assert.deepStrictEqual(rows.map((r) => r.name), Object.keys(metadataMigrations('postgres')).sort());
    // All of them see one database.
    const t = tenant('acme');
    await stores[0]!.insertTenant(t);
    for (const s of stores) assert.deepStrictEqual(await s.getTenant(t.id), t);
    // bigint columns come back as numbers, bytea as Uint8Array.
    const got = await stores[1]!.getTenant(t.id);
    assert.equal(typeof got?.defaultCap, 'number');
    await stores[2]!.putTrees([{ hash: hex() as never, data: Uint8Array.from([0, 255, 7]) }], new Date(3));
    const [tree] = await stores[3]!.listTrees();
    const bytes = await stores[4]!.getTree(tree!.hash);
    assert.ok(bytes instanceof Uint8Array);
    assert.deepStrictEqual([...bytes], [0, 255, 7]);
  });

  it('lets exactly one of many casHead calls from two pools win', async () => {
    schema = schemaName();
    const a = await openStore();
    const b = await openStore();
    const v = await seed(a);
    const nexts = Array.from({ length: 30 }, (_, i) => ({ head: hex() as CommitId, size: i, fileCount: i, updatedAt: new Date(i) }));
    const results = await Promise.all(nexts.map((n, i) => (i % 2 === 0 ? a : b).casHead(v.id, v.head, n)));
    assert.equal(results.filter(Boolean).length, 1);
    const winner = nexts[results.indexOf(true)]!;
    assert.equal((await b.getVolume(v.id))?.head, winner.head);

    // The same inside transactions (casHead + insertCommit, as the engine commits).
    const attempts = Array.from({ length: 12 }, (_, i) => ({ i, commit: commitAfter(v, winner.head, 2) }));
    const moved = await Promise.all(
      attempts.map(({ i, commit }) =>
        (i % 2 === 0 ? a : b).transaction(async (tx) => {
          if (!(await tx.casHead(v.id, winner.head, { head: commit.id, size: 2, fileCount: 2, updatedAt: new Date(2) }))) return false;
          await tx.insertCommit(commit);
          return true;
        }),
      ),
    );
    assert.equal(moved.filter(Boolean).length, 1);
    const won = attempts[moved.indexOf(true)]!.commit;
    assert.equal((await a.getVolume(v.id))?.head, won.id);
    const history = await a.listCommits(v.id, { limit: 100 });
    assert.deepStrictEqual(history.map((c) => c.id), [won.id]);
  });

  it('retries transactions that conflict, so read-then-write transactions all land in order', async () => {
    schema = schemaName();
    const a = await openStore();
    const b = await openStore();
    const v = await seed(a);
    let runs = 0;
    const writers = 6;
    // Each reads the head and moves it on: under SERIALIZABLE, concurrent
    // ones conflict (40001) and are run again against the new head.
    await Promise.all(
      Array.from({ length: writers }, (_, i) =>
        (i % 2 === 0 ? a : b).transaction(async (tx) => {
          runs++;
          const cur = (await tx.getVolume(v.id))!;
          const seq = cur.fileCount + 1;
          const c = commitAfter(v, cur.head, seq);
          assert.equal(await tx.casHead(v.id, cur.head, { head: c.id, size: seq, fileCount: seq, updatedAt: new Date(seq) }), true);
          await tx.insertCommit(c);
        }),
      ),
    );
    assert.ok(runs > writers, `expected conflicts to rerun some transactions (ran ${runs} times)`);
    const final = (await a.getVolume(v.id))!;
    assert.equal(final.fileCount, writers);
    // An unbroken chain: every commit's parent is the previous one.
    const history = await a.listCommits(v.id, { limit: 100 });
    assert.deepStrictEqual(history.map((c) => c.seq), [6, 5, 4, 3, 2, 1]);
    assert.equal(history[0]!.id, final.head);
    for (let i = 0; i < history.length - 1; i++) assert.equal(history[i]!.parent, history[i + 1]!.id);
    assert.equal(history.at(-1)!.parent, v.head);
  });

  it('gives up on a conflict that never clears after a bounded number of runs', async () => {
    schema = schemaName();
    const a = await openStore();
    let runs = 0;
    const conflict = Object.assign(new Error('could not serialize access'), { code: '40001' });
    await assert.rejects(
      a.transaction(async () => {
        runs++;
        throw conflict;
      }),
      (err) => err === conflict,
    );
    assert.equal(runs, MAX_CONFLICT_ATTEMPTS);
  });

  it('survives a server restart: in-flight calls fail with Unavailable, later ones succeed, nothing torn', async () => {
    schema = schemaName();
    const s = await openStore({ pool: '4' });
    const v = await seed(s);

    // A transaction that moves the head, then waits across the restart before it can commit.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let moved!: () => void;
    const headMoved = new Promise<void>((r) => (moved = r));
    const next = commitAfter(v, v.head, 1);
    const torn = s.transaction(async (tx) => {
      assert.equal(await tx.casHead(v.id, v.head, { head: next.id, size: 1, fileCount: 1, updatedAt: new Date(1) }), true);
      moved();
      await gate;
      await tx.insertCommit(next);
    });
    const tornResult = torn.then(
      () => 'committed',
      (err: Error & { code?: string }) => err.code,
    );
    await headMoved;

    // Reads keep running through the restart.
    const codes = new Map<string, number>();
    let stop = false;
    const load = (async () => {
      while (!stop) {
        try {
          await s.getVolume(v.id);
          codes.set('ok', (codes.get('ok') ?? 0) + 1);
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'raw';
          codes.set(code, (codes.get(code) ?? 0) + 1);
          if (code === 'Unavailable') assert.match((err as Error).message, /PostgreSQL at 127\.0\.0\.1:\d+/);
          await new Promise((r) => setTimeout(r, 20));
        }
      }
    })();

    await srv.restart();
    release();
    assert.equal(await tornResult, 'Unavailable');

    // Within a few seconds every call succeeds again.
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        await s.listTenants();
        break;
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'Unavailable');
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    stop = true;
    await load;
    assert.deepStrictEqual([...codes.keys()].filter((c) => c !== 'ok' && c !== 'Unavailable'), [], JSON.stringify([...codes]));
    assert.ok((codes.get('ok') ?? 0) > 0);

    // The interrupted transaction left nothing behind; the store works for writes.
    const after = (await s.getVolume(v.id))!;
    assert.equal(after.head, v.head);
    assert.equal(await s.getCommit(next.id), undefined);
    assert.equal(await s.casHead(v.id, v.head, { head: next.id, size: 1, fileCount: 1, updatedAt: new Date(1) }), true);
    await s.insertCommit(next);
    assert.equal((await s.getVolume(v.id))?.head, next.id);
  });

  it('names the setting and hides the password when credentials or the database are wrong', async () => {
    schema = '';
    const wrong = srv.urlFor(srv.database).replace(srv.password, 'not-the-password');
    await assert.rejects(openMetadataStore(wrong), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'Unavailable');
      assert.match(err.message, /^cannot open PostgreSQL metadata at postgres:\/\/stowage:\*\*\*@127\.0\.0\.1:\d+\/stowage: password authentication failed for user "stowage"/);
      assert.match(err.message, /--metadata/);
      assert.ok(!err.message.includes('not-the-password'), err.message);
      return true;
    });
    const missing = srv.urlFor('no_such_db').replace(/^postgres:/, 'postgresql:');
    await assert.rejects(openMetadataStore(missing), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'Unavailable');
      assert.match(err.message, /database "no_such_db" does not exist/);
      assert.match(err.message, /--metadata/);
      assert.ok(!err.message.includes(srv.password), err.message);
      return true;
    });
    // Nothing listening: refused, naming the host, fast.
    const closed = `postgres://stowage:secret-pw@127.0.0.1:1/stowage`;
    await assert.rejects(openMetadataStore(closed), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'Unavailable');
      assert.match(err.message, /127\.0\.0\.1:1/);
      assert.match(err.message, /ECONNREFUSED/);
      assert.ok(!err.message.includes('secret-pw'), err.message);
      return true;
    });
    await assert.rejects(openMetadataStore(`${srv.url}?pool=0`), { code: 'InvalidArgument' });
    await assert.rejects(openMetadataStore(`${srv.url}?schema=bad-name;drop`), { code: 'InvalidArgument' });
  });

  it('takes the pool size from the URL, 10 by default', () => {
    assert.equal(parsePostgresUrl({ url: 'postgres://u:p@h/db' }).config.max, 10);
    assert.equal(parsePostgresUrl({ url: 'postgresql://u:p@h:6543/db?pool=25&sslmode=disable' }).config.max, 25);
    const parsed = parsePostgresUrl({ url: 'postgresql://u:p@h:6543/db?pool=25&schema=s1&sslmode=disable' });
    assert.equal(parsed.server, 'h:6543');
    assert.equal(parsed.schema, 's1');
    assert.equal(parsed.config.connectionString, 'postgres://u:p@h:6543/db?sslmode=disable');
    assert.equal(parsed.shown, 'postgresql://u:***@h:6543/db?pool=25&schema=s1&sslmode=disable');
  });
});
