/**
 * @module sqlite-metadata-store.test
 * Runs the MetadataStore conformance suite on SQLite (a real file in a fresh
 * temporary directory, and ':memory:'), then checks what only a file-backed
 * store can show: data outlives the process's handle, migrations run once,
 * and two connections to one file share data and a single head.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect } from 'kysely';
import { TenantId, TokenId, VolumeId, type ChunkHash, type CommitId, type TreeHash } from '@stowage/sdk/common/ids.js';
import { runMetadataStoreConformance } from '../metadata-store.conformance.js';
import type { MetadataStore } from '../metadata-store.js';
import type { ChunkRecord, TenantRecord, VolumeRecord } from '@stowage/sdk/model/records.js';
import { metadataMigrations } from './migrations.js';
import { openSqliteMetadataStore } from './sqlite-dialect.js';

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'stowage-sqlite-md-'));
}

runMetadataStoreConformance('sqlite file', async () => {
  const dir = await tempDir();
  const store = await openSqliteMetadataStore({ path: join(dir, 'metadata.db') });
  return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
});

runMetadataStoreConformance('sqlite :memory:', async () => {
  const store = await openSqliteMetadataStore({ path: ':memory:' });
  return { store, cleanup: async () => {} };
});

function hex(): string {
  return randomBytes(32).toString('hex');
}

function tenant(name: string): TenantRecord {
  return {
    id: TenantId.new(),
    name,
    defaultCap: 1024,
    storageQuota: null,
    uncommittedQuota: null,
    createdAt: new Date(1_700_000_000_123),
  };
}

function volume(tenantId: TenantId, name: string): VolumeRecord {
  const t = new Date(1_700_000_000_456);
  return {
    id: VolumeId.new(),
    tenantId,
    name,
    accessMode: 'RWO',
    cap: 2 * 1024 ** 3,
    tuning: { cacheSize: 1, bufferSize: 2, prefetch: 3, writeback: true },
    head: hex() as CommitId,
    size: 0,
    fileCount: 0,
    createdAt: t,
    updatedAt: t,
    ancestors: [],
  };
}

describe('SQLite metadata store', () => {
  let dir: string;
  let path: string;
  const open: MetadataStore[] = [];

  async function openStore(): Promise<MetadataStore> {
    const s = await openSqliteMetadataStore({ path });
    open.push(s);
    return s;
  }

  beforeEach(async () => {
    dir = await tempDir();
    path = join(dir, 'metadata.db');
  });

  afterEach(async () => {
    for (const s of open.splice(0)) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps its data across close and reopen', async () => {
    const t = tenant('acme');
    const v = volume(t.id, 'data');
    const treeHash = hex() as TreeHash;
    const c: ChunkRecord = {
      hash: hex() as ChunkHash,
      size: 10,
      objectKey: 'packs/a',
      offset: 3,
      touchedAt: new Date(1_700_000_000_789),
    };

    const first = await openStore();
    await first.insertTenant(t);
    await first.insertVolume(v);
    await first.putTrees([{ hash: treeHash, data: Uint8Array.from([0, 1, 255]) }], new Date(5));
    await first.putChunks([c]);
    await first.putSettingIfAbsent('installation-id', 'abc');
    await first.close();

    const second = await openStore();
    assert.deepStrictEqual(await second.getTenant(t.id), t);
    assert.deepStrictEqual(await second.getVolume(v.id), v);
    assert.deepStrictEqual([...((await second.getTree(treeHash)) ?? [])], [0, 1, 255]);
    assert.deepStrictEqual(await second.getChunks([c.hash]), [c]);
    assert.equal(await second.getSetting('installation-id'), 'abc');
  });

  it('runs each migration once, however often the file is opened', async () => {
    await (await openStore()).close();
    await (await openStore()).close();
    const s = await openStore();
    await s.insertTenant(tenant('acme'));

    const raw = new BetterSqlite3(path, { readonly: true });
    try {
      const names = raw.prepare('select name from kysely_migration order by name').all() as Array<{ name: string }>;
      assert.deepStrictEqual(
        names.map((r) => r.name),
        Object.keys(metadataMigrations('sqlite')).sort(),
      );
      assert.equal(raw.pragma('journal_mode', { simple: true }), 'wal');
    } finally {
      raw.close();
    }
  });

  it('upgrades a database of 001_initial: existing tokens are no mount tokens', async () => {
    // A database as the first release left it, with one token.
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: new BetterSqlite3(path) }) });
    const initial = { '001_initial': metadataMigrations('sqlite')['001_initial']! };
    assert.equal(
      (await new Migrator({ db, provider: { getMigrations: async () => initial } }).migrateToLatest()).error,
      undefined,
    );
    const t = tenant('acme');
    const id = TokenId.new();
    await db
      .insertInto('tokens')
      .values({
        id,
        tenant_id: t.id,
        secret_hash: hex(),
        name: 'old',
        volume_id: null,
        read_only: 0,
        created_at: 1,
        expires_at: null,
        revoked_at: null,
      })
      .execute();
    await db.destroy();

    const s = await openStore();
    assert.equal((await s.getToken(id))?.attachmentId, null);
    assert.equal((await s.getToken(id))?.parentId, null);
    assert.deepStrictEqual(await s.listAttachments(VolumeId.new()), []);
  });

  it('refuses a database migrated by a newer version with a clear error', async () => {
    await (await openStore()).close();
    const raw = new BetterSqlite3(path);
    raw
      .prepare("insert into kysely_migration (name, timestamp) values ('999_future', ?)")
      .run(new Date().toISOString());
    raw.close();
    await assert.rejects(openSqliteMetadataStore({ path }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'Internal');
      assert.match(err.message, /999_future/);
      assert.match(err.message, /newer Stowage/);
      return true;
    });
  });

  it('shares writes between two stores on one file, and casHead stays exclusive', async () => {
    const a = await openStore();
    const b = await openStore();
    const t = tenant('acme');
    await a.insertTenant(t);
    assert.deepStrictEqual(await b.getTenant(t.id), t);
    const v = volume(t.id, 'data');
    await b.insertVolume(v);
    assert.deepStrictEqual(await a.getVolume(v.id), v);
    await assert.rejects(a.insertVolume(volume(t.id, 'data')), { code: 'AlreadyExists' });

    const nexts = Array.from({ length: 20 }, (_, i) => ({
      head: hex() as CommitId,
      size: i,
      fileCount: i,
      updatedAt: new Date(i),
    }));
    const results = await Promise.all(nexts.map((n, i) => (i % 2 === 0 ? a : b).casHead(v.id, v.head, n)));
    assert.equal(results.filter(Boolean).length, 1);
    const winner = nexts[results.indexOf(true)]!;
    assert.equal((await a.getVolume(v.id))?.head, winner.head);
    assert.equal((await b.getVolume(v.id))?.head, winner.head);

    // A transaction committed through one connection is visible through the other.
    await a.transaction(async (tx) => {
      assert.equal(await tx.casHead(v.id, winner.head, { ...winner, head: hex() as CommitId }), true);
    });
    assert.notEqual((await b.getVolume(v.id))?.head, winner.head);
  });

  it("batches hash lists past SQLite's bound-variable limit", async () => {
    const s = await openStore();
    const chunks: ChunkRecord[] = Array.from({ length: 40_000 }, (_, i) => ({
      hash: hex() as ChunkHash,
      size: 1,
      objectKey: `packs/${i >> 10}`,
      offset: i,
      touchedAt: new Date(1),
    }));
    await s.putChunks(chunks);
    const hashes = chunks.map((c) => c.hash);
    assert.equal((await s.getChunks(hashes)).length, 40_000);
    assert.equal((await s.touchChunks(hashes, new Date(2))).length, 40_000);
    assert.equal((await s.deleteChunks(hashes, new Date(3))).length, 40_000);
  });

  it('fails with Unavailable after close, and when the directory does not exist', async () => {
    const s = await openStore();
    await s.close();
    await assert.rejects(s.listTenants(), { code: 'Unavailable' });
    await assert.rejects(
      s.transaction(async () => 1),
      { code: 'Unavailable' },
    );
    const missing = join(dir, 'no-such-dir', 'metadata.db');
    await assert.rejects(openSqliteMetadataStore({ path: missing }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'Unavailable');
      assert.ok(err.message.includes(missing), err.message);
      return true;
    });
  });
});
