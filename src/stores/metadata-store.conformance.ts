/**
 * @module metadata-store.conformance
 * The contract test of MetadataStore. Every implementation (memory, SQLite,
 * PostgreSQL) runs it unchanged from its own test file, so it uses nothing
 * but the MetadataStore interface and the error codes the contract names.
 *
 * Each test gets a fresh, empty store from `open`; after the test the suite
 * calls `store.close()` and then `cleanup()`, which removes what was stored.
 *
 * @example
 * runMetadataStoreConformance('sqlite', async () => {
 *   const dir = await mkdtemp(join(tmpdir(), 'md-'));
 *   const store = await openSqliteMetadataStore({ path: join(dir, 'metadata.db') });
 *   return { store, cleanup: () => rm(dir, { recursive: true, force: true }) };
 * });
 */
import { freshStorePerTest, type OpenedStore } from './conformance-harness.js';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  AttachmentId,
  SandboxId,
  SnapshotId,
  TenantId,
  TokenId,
  VolumeId,
  type ChunkHash,
  type CommitId,
  type TreeHash,
} from '@stowage/sdk/common/ids.js';
import type { MetadataStore, TreeRecord } from './metadata-store.js';
import type {
  AttachmentRecord,
  ChunkRecord,
  SandboxRecord,
  CommitRecord,
  SnapshotRecord,
  TenantRecord,
  TokenRecord,
  VolumeRecord,
} from '@stowage/sdk/model/records.js';

/** A store under test and how to get rid of it. */
export type OpenedMetadataStore = OpenedStore<MetadataStore>;

/** A fixed origin, so every time in a test is exact to the millisecond. */
const T0 = Date.UTC(2025, 0, 1, 12, 0, 0, 0);

/** The time `offset` milliseconds after T0. */
function at(offset: number): Date {
  return new Date(T0 + offset);
}

/** A fresh random 64-hex hash, usable as a commit id, tree hash or chunk hash. */
function hash<T extends string>(): T {
  return randomBytes(32).toString('hex') as T;
}

function tenant(name: string, o: Partial<TenantRecord> = {}): TenantRecord {
  return {
    id: TenantId.new(),
    name,
    defaultCap: 2 * 1024 ** 3,
    storageQuota: null,
    uncommittedQuota: null,
    createdAt: at(0),
    ...o,
  };
}

function token(tenantId: TenantId, o: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id: TokenId.new(),
    tenantId,
    secretHash: hash(),
    name: 'ci',
    volumeId: null,
    readOnly: false,
    createdAt: at(0),
    expiresAt: null,
    revokedAt: null,
    attachmentId: null,
    parentId: null,
    ...o,
  };
}

function attachment(tenantId: TenantId, volumeId: VolumeId, o: Partial<AttachmentRecord> = {}): AttachmentRecord {
  return {
    id: AttachmentId.new(),
    tenantId,
    volumeId,
    host: 'host-1',
    path: '/mnt/data',
    readOnly: false,
    state: 'mounted',
    reason: null,
    tokenId: null,
    createdAt: at(0),
    updatedAt: at(0),
    leaseExpiresAt: at(60_000),
    ...o,
  };
}

function sandbox(tenantId: TenantId, o: Partial<SandboxRecord> = {}): SandboxRecord {
  return {
    id: SandboxId.new(),
    tenantId,
    status: 'running',
    reason: null,
    image: { base: 'debian', steps: [] },
    volumes: [],
    cpu: 1,
    memoryMib: 1024,
    diskGib: 4,
    env: {},
    timeout: 300,
    host: 'host-1',
    createdAt: at(0),
    expiresAt: at(300_000),
    endedAt: null,
    ...o,
  };
}

function volume(tenantId: TenantId, name: string, o: Partial<VolumeRecord> = {}): VolumeRecord {
  return {
    id: VolumeId.new(),
    tenantId,
    name,
    accessMode: 'RWO',
    cap: 2 * 1024 ** 3,
    tuning: { cacheSize: 1024 ** 3, bufferSize: 32 * 1024 ** 2, prefetch: 0, writeback: false },
    head: hash<CommitId>(),
    size: 0,
    fileCount: 0,
    createdAt: at(0),
    updatedAt: at(0),
    ancestors: [],
    ...o,
  };
}

function commit(volumeId: VolumeId, seq: number, o: Partial<CommitRecord> = {}): CommitRecord {
  return {
    id: hash<CommitId>(),
    volumeId,
    seq,
    parent: null,
    tree: hash<TreeHash>(),
    message: `commit ${seq}`,
    author: 'system',
    size: seq * 100,
    fileCount: seq,
    summary: { changed: 1, paths: [`/file-${seq}`], overwritten: [] },
    createdAt: at(seq * 1000),
    ...o,
  };
}

function snapshot(
  volumeId: VolumeId,
  name: string,
  commitId: CommitId,
  o: Partial<SnapshotRecord> = {},
): SnapshotRecord {
  return { id: SnapshotId.new(), volumeId, name, commitId, createdAt: at(0), ...o };
}

function chunk(o: Partial<ChunkRecord> = {}): ChunkRecord {
  return {
    hash: hash<ChunkHash>(),
    size: 8 * 1024 ** 2,
    objectKey: `chunks/${hash()}`,
    offset: 0,
    touchedAt: at(0),
    ...o,
  };
}

function tree(bytes: number[] | Uint8Array): TreeRecord {
  return { hash: hash<TreeHash>(), data: Uint8Array.from(bytes) };
}

/** Every byte value once: catches text encodings and NUL truncation. */
const ALL_BYTES = Uint8Array.from({ length: 256 }, (_, i) => i);

function assertBytes(actual: Uint8Array | undefined, expected: Uint8Array, what: string): void {
  assert.ok(actual instanceof Uint8Array, `${what}: expected a Uint8Array, got ${String(actual)}`);
  assert.deepEqual(Buffer.from(actual), Buffer.from(expected), what);
}

async function rejectsWithCode(
  fn: () => Promise<unknown>,
  code: string,
  what: string,
  messageIncludes?: string,
): Promise<void> {
  await assert.rejects(fn, (err: unknown) => {
    assert.equal((err as { code?: unknown }).code, code, `${what}: expected error code ${code}, got ${String(err)}`);
    if (messageIncludes !== undefined)
      assert.match((err as Error).message, new RegExp(messageIncludes.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    return true;
  });
}

function sorted<T>(xs: readonly T[]): T[] {
  return [...xs].sort();
}

function byHash<T extends { hash: string }>(xs: readonly T[]): T[] {
  return [...xs].sort((a, b) => (a.hash < b.hash ? -1 : a.hash > b.hash ? 1 : 0));
}

/** Registers the MetadataStore contract tests for one implementation. */
/** Record builders for store-specific tests (override any field). */
export { tenant as sampleTenant, volume as sampleVolume };

export function runMetadataStoreConformance(name: string, open: () => Promise<OpenedMetadataStore>): void {
  describe(`MetadataStore conformance: ${name}`, () => {
    let store: MetadataStore;
    freshStorePerTest(open, (s) => {
      store = s;
    });

    /** A tenant and a volume (with its head commit) already stored. */
    async function seedVolume(
      volumeName = 'data',
      o: Partial<VolumeRecord> = {},
    ): Promise<{ t: TenantRecord; v: VolumeRecord; c: CommitRecord }> {
      let t = await store.getTenantByName('acme');
      if (!t) {
        t = tenant('acme');
        await store.insertTenant(t);
      }
      const v0 = volume(t.id, volumeName, o);
      const c = commit(v0.id, 1, { id: v0.head, createdAt: v0.createdAt });
      await store.insertCommit(c);
      const v = { ...v0, head: c.id };
      await store.insertVolume(v);
      return { t, v, c };
    }

    describe('tenants', () => {
      it('round-trips a tenant by id, by name and in the list', async () => {
        const a = tenant('acme', { defaultCap: 5 * 1024 ** 4, createdAt: at(123) });
        const b = tenant('beta', { createdAt: at(456) });
        await store.insertTenant(b);
        await store.insertTenant(a);
        assert.deepStrictEqual(await store.getTenant(a.id), a);
        assert.deepStrictEqual(await store.getTenantByName('beta'), b);
        assert.deepStrictEqual(byId(await store.listTenants()), byId([a, b]));
      });

      it('refuses a second tenant with the same name with AlreadyExists', async () => {
        await store.insertTenant(tenant('acme'));
        await rejectsWithCode(() => store.insertTenant(tenant('acme')), 'AlreadyExists', 'duplicate tenant', 'acme');
        assert.equal((await store.listTenants()).length, 1);
      });

      it('updates the default cap and reports a missing tenant', async () => {
        const a = tenant('acme');
        await store.insertTenant(a);
        assert.equal(await store.updateTenant(a.id, { defaultCap: 42 }), true);
        assert.deepStrictEqual(await store.getTenant(a.id), { ...a, defaultCap: 42 });
        assert.equal(await store.updateTenant(TenantId.new(), { defaultCap: 1 }), false);
      });

      it('round-trips tenant quotas, sets and clears them, and leaves unpatched fields alone', async () => {
        const a = tenant('acme', { storageQuota: 5 * 1024 ** 5, uncommittedQuota: 16 * 1024 ** 3 });
        await store.insertTenant(a);
        assert.deepStrictEqual(await store.getTenant(a.id), a);
        assert.equal(await store.updateTenant(a.id, { storageQuota: null }), true);
        assert.deepStrictEqual(await store.getTenant(a.id), { ...a, storageQuota: null });
        assert.equal(await store.updateTenant(a.id, { uncommittedQuota: 7, storageQuota: 9 }), true);
        assert.deepStrictEqual(await store.getTenant(a.id), { ...a, storageQuota: 9, uncommittedQuota: 7 });
        assert.equal(await store.updateTenant(a.id, {}), true);
        assert.equal(await store.updateTenant(TenantId.new(), {}), false);
      });

      it('returns undefined or an empty list for missing tenants', async () => {
        assert.equal(await store.getTenant(TenantId.new()), undefined);
        assert.equal(await store.getTenantByName('nobody'), undefined);
        assert.deepStrictEqual(await store.listTenants(), []);
      });
    });

    describe('tokens', () => {
      it('round-trips every field, nulls and booleans included', async () => {
        const t = tenant('acme');
        await store.insertTenant(t);
        const plain = token(t.id, { createdAt: at(1) });
        const scoped = token(t.id, {
          name: 'mount',
          volumeId: VolumeId.new(),
          readOnly: true,
          createdAt: at(2),
          expiresAt: at(3_600_000),
          revokedAt: at(5),
          attachmentId: AttachmentId.new(),
          parentId: plain.id,
        });
        await store.insertToken(plain);
        await store.insertToken(scoped);
        assert.deepStrictEqual(await store.getToken(plain.id), plain);
        assert.deepStrictEqual(await store.getToken(scoped.id), scoped);
        assert.equal(await store.getToken(TokenId.new()), undefined);
      });

      it('lists the tokens of one tenant, newest first', async () => {
        const a = tenant('acme');
        const b = tenant('beta');
        await store.insertTenant(a);
        await store.insertTenant(b);
        const t1 = token(a.id, { createdAt: at(1) });
        const t3 = token(a.id, { createdAt: at(3) });
        const t2 = token(a.id, { createdAt: at(2) });
        for (const t of [t1, t3, t2, token(b.id, { createdAt: at(4) })]) await store.insertToken(t);
        assert.deepStrictEqual(await store.listTokens(a.id), [t3, t2, t1]);
        assert.deepStrictEqual(await store.listTokens(TenantId.new()), []);
      });

      it('revokes once and keeps the first revocation time', async () => {
        const t = tenant('acme');
        await store.insertTenant(t);
        const tok = token(t.id);
        await store.insertToken(tok);
        assert.equal(await store.revokeToken(tok.id, at(10)), true);
        assert.equal(await store.revokeToken(tok.id, at(20)), true);
        assert.deepStrictEqual(await store.getToken(tok.id), { ...tok, revokedAt: at(10) });
        assert.equal(await store.revokeToken(TokenId.new(), at(10)), false);
      });

      it('sets and clears a token expiry, and reports a missing token', async () => {
        const t = tenant('acme');
        await store.insertTenant(t);
        const tok = token(t.id, { expiresAt: at(1000) });
        await store.insertToken(tok);
        assert.equal(await store.setTokenExpiry(tok.id, at(61_000)), true);
        assert.deepStrictEqual(await store.getToken(tok.id), { ...tok, expiresAt: at(61_000) });
        assert.equal(await store.setTokenExpiry(tok.id, null), true);
        assert.deepStrictEqual(await store.getToken(tok.id), { ...tok, expiresAt: null });
        assert.equal(await store.setTokenExpiry(TokenId.new(), at(1)), false);
      });
    });

    describe('attachments', () => {
      it('round-trips every field, nulls and booleans included', async () => {
        const { t, v } = await seedVolume();
        const plain = attachment(t.id, v.id, { createdAt: at(1), updatedAt: at(2), leaseExpiresAt: at(3) });
        const done = attachment(t.id, v.id, {
          host: 'sandbox-ü 7',
          path: '/mnt/a b/ü',
          readOnly: true,
          state: 'failed',
          reason: 'lease expired: the mount agent stopped renewing',
          tokenId: TokenId.new(),
          createdAt: at(4),
          updatedAt: at(5),
          leaseExpiresAt: at(6),
        });
        await store.insertAttachment(plain);
        await store.insertAttachment(done);
        assert.deepStrictEqual(await store.getAttachment(plain.id), plain);
        assert.deepStrictEqual(await store.getAttachment(done.id), done);
        assert.equal(await store.getAttachment(AttachmentId.new()), undefined);
      });

      it('refuses a duplicate id with AlreadyExists', async () => {
        const { t, v } = await seedVolume();
        const a = attachment(t.id, v.id);
        await store.insertAttachment(a);
        await rejectsWithCode(
          () => store.insertAttachment({ ...a, host: 'other' }),
          'AlreadyExists',
          'duplicate attachment',
          a.id,
        );
        assert.deepStrictEqual(await store.getAttachment(a.id), a);
      });

      it('lists the attachments of one volume in every state, oldest first', async () => {
        const { t, v } = await seedVolume();
        const other = await seedVolume('other');
        const a2 = attachment(t.id, v.id, { createdAt: at(2), state: 'released', reason: 'unmounted' });
        const a1 = attachment(t.id, v.id, { createdAt: at(1) });
        const a3 = attachment(t.id, v.id, { createdAt: at(3), state: 'failed', reason: 'x' });
        for (const a of [a2, a3, a1, attachment(t.id, other.v.id, { createdAt: at(0) })])
          await store.insertAttachment(a);
        assert.deepStrictEqual(await store.listAttachments(v.id), [a1, a2, a3]);
        assert.deepStrictEqual(await store.listAttachments(VolumeId.new()), []);
      });

      it('updates only the patched fields, and reports a missing attachment', async () => {
        const { t, v } = await seedVolume();
        const a = attachment(t.id, v.id, { tokenId: TokenId.new() });
        await store.insertAttachment(a);
        assert.equal(await store.updateAttachment(a.id, { leaseExpiresAt: at(120_000), updatedAt: at(10) }), true);
        assert.deepStrictEqual(await store.getAttachment(a.id), {
          ...a,
          leaseExpiresAt: at(120_000),
          updatedAt: at(10),
        });
        const tok = TokenId.new();
        assert.equal(
          await store.updateAttachment(a.id, {
            state: 'failed',
            reason: 'volume deleted',
            tokenId: tok,
            updatedAt: at(20),
          }),
          true,
        );
        const failed = {
          ...a,
          state: 'failed' as const,
          reason: 'volume deleted',
          tokenId: tok,
          leaseExpiresAt: at(120_000),
          updatedAt: at(20),
        };
        assert.deepStrictEqual(await store.getAttachment(a.id), failed);
        assert.equal(
          await store.updateAttachment(a.id, { state: 'mounted', reason: null, tokenId: null, updatedAt: at(30) }),
          true,
        );
        assert.deepStrictEqual(await store.getAttachment(a.id), {
          ...failed,
          state: 'mounted',
          reason: null,
          tokenId: null,
          updatedAt: at(30),
        });
        assert.equal(await store.updateAttachment(AttachmentId.new(), { state: 'released', updatedAt: at(1) }), false);
      });

      it('keeps attachments when their volume is deleted', async () => {
        const { t, v } = await seedVolume();
        const a = attachment(t.id, v.id, { state: 'failed', reason: 'volume deleted' });
        await store.insertAttachment(a);
        assert.equal(await store.deleteVolume(v.id), true);
        assert.deepStrictEqual(await store.listAttachments(v.id), [a]);
      });

      it('writes attachments and token changes inside a transaction, and rolls them back with it', async () => {
        const { t, v } = await seedVolume();
        const tok = token(t.id, { volumeId: v.id, expiresAt: at(1000) });
        await store.insertToken(tok);
        const kept = attachment(t.id, v.id);
        await store.transaction(async (tx) => {
          await tx.insertAttachment(kept);
          assert.deepStrictEqual(await tx.listAttachments(v.id), [kept]);
        });
        assert.deepStrictEqual(await store.getAttachment(kept.id), kept);
        const dropped = attachment(t.id, v.id);
        const boom = new Error('boom');
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.insertAttachment(dropped);
            assert.equal(await tx.updateAttachment(kept.id, { state: 'released', updatedAt: at(9) }), true);
            assert.equal(await tx.setTokenExpiry(tok.id, at(9000)), true);
            assert.equal(await tx.revokeToken(tok.id, at(9)), true);
            throw boom;
          }),
          (err) => err === boom,
        );
        assert.equal(await store.getAttachment(dropped.id), undefined);
        assert.deepStrictEqual(await store.getAttachment(kept.id), kept);
        assert.deepStrictEqual(await store.getToken(tok.id), tok);
      });
    });

    describe('sandboxes', () => {
      it('round-trips every field: fractional cpu, volumes, env with any text, nulls', async () => {
        const t = tenant('acme');
        await store.insertTenant(t);
        const full = sandbox(t.id, {
          status: 'failed',
          reason: 'the image could not be built: ü "quoted"',
          image: { base: 'busybox', steps: [{ runCommands: ['echo hi'] }, { env: { A: 'b' } }] },
          volumes: [
            {
              path: '/mnt/a b',
              volume: 'data',
              volumeId: VolumeId.new(),
              readOnly: true,
              subpath: '/sub/dir',
              attachmentId: AttachmentId.new(),
            },
            {
              path: '/mnt/ü',
              volume: 'other',
              volumeId: VolumeId.new(),
              readOnly: false,
              subpath: null,
              attachmentId: AttachmentId.new(),
            },
          ],
          cpu: 0.25,
          memoryMib: 65536,
          diskGib: 64,
          env: { PATH: '/usr/bin', EMPTY: '', WEIRD: 'a=b;\n"\u00fc' },
          timeout: 86400,
          host: 'host-ü 2',
          createdAt: at(1),
          expiresAt: at(86_400_001),
          endedAt: at(5),
        });
        const plain = sandbox(t.id, { cpu: 1.5, createdAt: at(2) });
        await store.insertSandbox(full);
        await store.insertSandbox(plain);
        assert.deepStrictEqual(await store.getSandbox(t.id, full.id), full);
        assert.deepStrictEqual(await store.getSandbox(t.id, plain.id), plain);
        assert.equal(await store.getSandbox(t.id, SandboxId.new()), undefined);
      });

      it("hides another tenant's sandbox, and refuses a duplicate id with AlreadyExists", async () => {
        const t = tenant('acme');
        const other = tenant('other');
        await store.insertTenant(t);
        await store.insertTenant(other);
        const s = sandbox(t.id);
        await store.insertSandbox(s);
        assert.equal(await store.getSandbox(other.id, s.id), undefined);
        assert.deepStrictEqual(await store.listSandboxes(other.id), []);
        await rejectsWithCode(
          () => store.insertSandbox({ ...s, tenantId: other.id }),
          'AlreadyExists',
          'duplicate sandbox',
          s.id,
        );
        assert.deepStrictEqual(await store.getSandbox(t.id, s.id), s);
      });

      it("lists a tenant's sandboxes newest first, all or live only", async () => {
        const t = tenant('acme');
        const other = tenant('other');
        await store.insertTenant(t);
        await store.insertTenant(other);
        const s1 = sandbox(t.id, { createdAt: at(1), status: 'terminated', reason: 'timeout', endedAt: at(9) });
        const s2 = sandbox(t.id, { createdAt: at(2), status: 'starting' });
        const s3 = sandbox(t.id, { createdAt: at(3), status: 'failed', reason: 'x', endedAt: at(9) });
        const s4 = sandbox(t.id, { createdAt: at(4) });
        for (const s of [s3, s1, s4, s2, sandbox(other.id, { createdAt: at(5) })]) await store.insertSandbox(s);
        assert.deepStrictEqual(await store.listSandboxes(t.id), [s4, s3, s2, s1]);
        assert.deepStrictEqual(await store.listSandboxes(t.id, { live: true }), [s4, s2]);
        assert.deepStrictEqual(await store.listSandboxes(t.id, { live: false }), [s4, s3, s2, s1]);
      });

      it('lists the live sandboxes of one host across tenants, oldest first', async () => {
        const a = tenant('a');
        const b = tenant('b');
        await store.insertTenant(a);
        await store.insertTenant(b);
        const s1 = sandbox(a.id, { createdAt: at(1), status: 'starting' });
        const s2 = sandbox(b.id, { createdAt: at(2) });
        const ended = sandbox(a.id, { createdAt: at(3), status: 'terminated', reason: 'timeout', endedAt: at(4) });
        const elsewhere = sandbox(a.id, { createdAt: at(0), host: 'host-2' });
        for (const s of [s2, ended, elsewhere, s1]) await store.insertSandbox(s);
        assert.deepStrictEqual(await store.listLiveSandboxesOnHost('host-1'), [s1, s2]);
        assert.deepStrictEqual(await store.listLiveSandboxesOnHost('host-2'), [elsewhere]);
        assert.deepStrictEqual(await store.listLiveSandboxesOnHost('nowhere'), []);
      });

      it('updates status, reason and endedAt, only from the given statuses, and reports a miss', async () => {
        const t = tenant('acme');
        await store.insertTenant(t);
        const s = sandbox(t.id, { status: 'starting' });
        await store.insertSandbox(s);
        const volumes = [
          {
            path: '/mnt/d',
            volume: 'd',
            volumeId: VolumeId.new(),
            readOnly: false,
            subpath: null,
            attachmentId: AttachmentId.new(),
          },
        ];
        assert.equal(await store.updateSandbox(s.id, { status: 'starting', volumes }), true);
        assert.deepStrictEqual(await store.getSandbox(t.id, s.id), { ...s, volumes });
        assert.equal(await store.updateSandbox(s.id, { status: 'running', from: ['starting'] }), true);
        assert.deepStrictEqual(await store.getSandbox(t.id, s.id), { ...s, volumes, status: 'running' });
        // Conditional: a running sandbox is not "started" twice, and an ended one is never revived.
        assert.equal(await store.updateSandbox(s.id, { status: 'running', from: ['starting'] }), false);
        const ended = { status: 'terminated' as const, reason: 'timeout', endedAt: at(7) };
        assert.equal(await store.updateSandbox(s.id, { ...ended, from: ['starting', 'running'] }), true);
        assert.deepStrictEqual(await store.getSandbox(t.id, s.id), { ...s, volumes, ...ended });
        assert.equal(
          await store.updateSandbox(s.id, { status: 'failed', reason: 'late', from: ['starting', 'running'] }),
          false,
        );
        assert.deepStrictEqual(await store.getSandbox(t.id, s.id), { ...s, volumes, ...ended });
        // Unconditional updates apply, and may clear reason and endedAt.
        assert.equal(await store.updateSandbox(s.id, { status: 'running', reason: null, endedAt: null }), true);
        assert.deepStrictEqual(await store.getSandbox(t.id, s.id), { ...s, volumes, status: 'running' });
        assert.equal(await store.updateSandbox(SandboxId.new(), { status: 'failed' }), false);
      });

      it('writes sandboxes inside a transaction, and rolls them back with it', async () => {
        const t = tenant('acme');
        await store.insertTenant(t);
        const kept = sandbox(t.id, { status: 'starting' });
        await store.insertSandbox(kept);
        const dropped = sandbox(t.id);
        const boom = new Error('boom');
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.insertSandbox(dropped);
            assert.equal(await tx.updateSandbox(kept.id, { status: 'failed', reason: 'x', endedAt: at(1) }), true);
            assert.equal((await tx.listSandboxes(t.id)).length, 2);
            throw boom;
          }),
          (err) => err === boom,
        );
        assert.equal(await store.getSandbox(t.id, dropped.id), undefined);
        assert.deepStrictEqual(await store.getSandbox(t.id, kept.id), kept);
      });
    });

    describe('volumes', () => {
      it('round-trips a volume by id, by name and in the lists', async () => {
        const t = tenant('acme');
        await store.insertTenant(t);
        const v = volume(t.id, 'data', {
          accessMode: 'RWX',
          cap: 5 * 1024 ** 4,
          tuning: { cacheSize: 3 * 1024 ** 3, bufferSize: 1024, prefetch: 4, writeback: true },
          size: 6 * 1024 ** 3,
          fileCount: 100_000,
          createdAt: at(1),
          updatedAt: at(2),
          ancestors: [
            { volumeId: VolumeId.new(), until: at(3) },
            { volumeId: VolumeId.new(), until: at(1) },
          ],
        });
        await store.insertVolume(v);
        assert.deepStrictEqual(await store.getVolume(v.id), v);
        assert.deepStrictEqual(await store.getVolumeByName(t.id, 'data'), v);
        assert.deepStrictEqual(await store.listVolumes(t.id), [v]);
        assert.deepStrictEqual(await store.listAllVolumes(), [v]);
      });

      it("lists a tenant's volumes by name, and every tenant's in listAllVolumes", async () => {
        const a = tenant('acme');
        const b = tenant('beta');
        await store.insertTenant(a);
        await store.insertTenant(b);
        const vs = [volume(a.id, 'zeta'), volume(a.id, 'alpha'), volume(a.id, 'mid'), volume(b.id, 'other')];
        for (const v of vs) await store.insertVolume(v);
        assert.deepStrictEqual(
          (await store.listVolumes(a.id)).map((v) => v.name),
          ['alpha', 'mid', 'zeta'],
        );
        assert.deepStrictEqual(byId(await store.listAllVolumes()), byId(vs));
        assert.deepStrictEqual(await store.listVolumes(TenantId.new()), []);
      });

      it('refuses a duplicate (tenant, name) with AlreadyExists but allows the name in another tenant', async () => {
        const a = tenant('acme');
        const b = tenant('beta');
        await store.insertTenant(a);
        await store.insertTenant(b);
        const first = volume(a.id, 'data');
        await store.insertVolume(first);
        await rejectsWithCode(
          () => store.insertVolume(volume(a.id, 'data')),
          'AlreadyExists',
          'duplicate volume',
          'data',
        );
        const other = volume(b.id, 'data');
        await store.insertVolume(other);
        assert.deepStrictEqual(await store.getVolumeByName(a.id, 'data'), first);
        assert.deepStrictEqual(await store.getVolumeByName(b.id, 'data'), other);
      });

      it('returns undefined for missing volumes', async () => {
        const t = tenant('acme');
        await store.insertTenant(t);
        assert.equal(await store.getVolume(VolumeId.new()), undefined);
        assert.equal(await store.getVolumeByName(t.id, 'nope'), undefined);
      });

      it('updates only the patched fields, and reports a missing volume', async () => {
        const { v } = await seedVolume();
        assert.equal(await store.updateVolume(v.id, { cap: 7, updatedAt: at(10) }), true);
        assert.deepStrictEqual(await store.getVolume(v.id), { ...v, cap: 7, updatedAt: at(10) });
        const tuning = { cacheSize: 1, bufferSize: 2, prefetch: 3, writeback: true };
        assert.equal(await store.updateVolume(v.id, { accessMode: 'ROX', tuning, updatedAt: at(20) }), true);
        assert.deepStrictEqual(await store.getVolume(v.id), {
          ...v,
          cap: 7,
          accessMode: 'ROX',
          tuning,
          updatedAt: at(20),
        });
        assert.equal(await store.updateVolume(VolumeId.new(), { cap: 1, updatedAt: at(30) }), false);
      });

      it('moves the head by compare-and-swap exactly once', async () => {
        const { v } = await seedVolume();
        const next = { head: hash<CommitId>(), size: 500, fileCount: 5, updatedAt: at(10) };
        assert.equal(await store.casHead(v.id, v.head, next), true);
        const moved = { ...v, head: next.head, size: 500, fileCount: 5, updatedAt: at(10) };
        assert.deepStrictEqual(await store.getVolume(v.id), moved);

        // A second writer still holding the old head loses and changes nothing.
        const stale = { head: hash<CommitId>(), size: 9, fileCount: 9, updatedAt: at(20) };
        assert.equal(await store.casHead(v.id, v.head, stale), false);
        assert.deepStrictEqual(await store.getVolume(v.id), moved);

        assert.equal(await store.casHead(VolumeId.new(), v.head, stale), false);
      });

      it('lets exactly one of 20 concurrent compare-and-swaps from the same head win', async () => {
        const { v } = await seedVolume();
        const nexts = Array.from({ length: 20 }, (_, i) => ({
          head: hash<CommitId>(),
          size: i,
          fileCount: i,
          updatedAt: at(100 + i),
        }));
        const results = await Promise.all(nexts.map((n) => store.casHead(v.id, v.head, n)));
        assert.equal(results.filter(Boolean).length, 1, `winners: ${results.filter(Boolean).length}`);
        const winner = nexts[results.indexOf(true)]!;
        const after = await store.getVolume(v.id);
        assert.equal(after?.head, winner.head);
        assert.equal(after?.size, winner.size);
      });

      it('deletes a volume with its snapshots and commits, leaving other volumes intact', async () => {
        const { v, c } = await seedVolume('doomed');
        const c2 = commit(v.id, 2, { parent: c.id });
        await store.insertCommit(c2);
        await store.insertSnapshot(snapshot(v.id, 'before', c.id));
        const keep = await seedVolume('kept');
        const keepSnap = snapshot(keep.v.id, 'before', keep.c.id);
        await store.insertSnapshot(keepSnap);

        assert.equal(await store.deleteVolume(v.id), true);
        assert.equal(await store.getVolume(v.id), undefined);
        assert.equal(await store.getVolumeByName(v.tenantId, 'doomed'), undefined);
        assert.equal(await store.getCommit(c.id), undefined);
        assert.equal(await store.getCommit(c2.id), undefined);
        assert.deepStrictEqual(await store.listCommits(v.id, { limit: 10 }), []);
        assert.deepStrictEqual(await store.listSnapshots(v.id), []);
        assert.equal(await store.getSnapshot(v.id, 'before'), undefined);

        assert.deepStrictEqual(await store.getVolume(keep.v.id), keep.v);
        assert.deepStrictEqual(await store.getCommit(keep.c.id), keep.c);
        assert.deepStrictEqual(await store.listSnapshots(keep.v.id), [keepSnap]);

        assert.equal(await store.deleteVolume(v.id), false);
        // The name is free again.
        await store.insertVolume(volume(v.tenantId, 'doomed'));
      });
    });

    describe('commits', () => {
      it('round-trips a commit, and inserting the same id again is a no-op', async () => {
        const vid = VolumeId.new();
        const root = commit(vid, 1);
        const child = commit(vid, 2, {
          parent: root.id,
          message: 'ünïcödé ✓ "quoted"\nnewline',
          summary: { changed: 3, paths: ['/a', '/b c', '/ü'], overwritten: ['/a'] },
        });
        await store.insertCommit(root);
        await store.insertCommit(child);
        assert.deepStrictEqual(await store.getCommit(root.id), root);
        assert.deepStrictEqual(await store.getCommit(child.id), child);
        await store.insertCommit(child);
        await store.insertCommit({ ...child, message: 'other' });
        assert.deepStrictEqual(await store.getCommit(child.id), child);
        assert.equal(await store.getCommit(hash<CommitId>()), undefined);
      });

      it("lists a volume's commits newest first, paging with beforeSeq and limit", async () => {
        const vid = VolumeId.new();
        const cs = Array.from({ length: 10 }, (_, i) => commit(vid, i + 1));
        // Inserted out of order: the order must come from seq.
        for (const c of [...cs].reverse()) await store.insertCommit(c);
        for (const c of [commit(VolumeId.new(), 1), commit(VolumeId.new(), 11)]) await store.insertCommit(c);

        const seqs = (xs: CommitRecord[]) => xs.map((c) => c.seq);
        const page1 = await store.listCommits(vid, { limit: 4 });
        assert.deepStrictEqual(page1, [cs[9], cs[8], cs[7], cs[6]]);
        assert.deepStrictEqual(seqs(await store.listCommits(vid, { limit: 4, beforeSeq: 7 })), [6, 5, 4, 3]);
        assert.deepStrictEqual(seqs(await store.listCommits(vid, { limit: 4, beforeSeq: 3 })), [2, 1]);
        assert.deepStrictEqual(await store.listCommits(vid, { limit: 4, beforeSeq: 1 }), []);
        assert.deepStrictEqual(seqs(await store.listCommits(vid, { limit: 100 })), [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]);
        assert.deepStrictEqual(await store.listCommits(VolumeId.new(), { limit: 10 }), []);
      });

      it('prunes old commits but keeps heads, snapshot targets and recent ones', async () => {
        const { v, c: c1 } = await seedVolume('data', { createdAt: at(1000) });
        const cs = [c1];
        for (let seq = 2; seq <= 5; seq++) {
          const c = commit(v.id, seq, { parent: cs[cs.length - 1]!.id });
          await store.insertCommit(c);
          cs.push(c);
        }
        const [, c2, c3, c4, c5] = cs as [CommitRecord, CommitRecord, CommitRecord, CommitRecord, CommitRecord];
        assert.equal(
          await store.casHead(v.id, v.head, { head: c5.id, size: 0, fileCount: 0, updatedAt: at(5000) }),
          true,
        );
        await store.insertSnapshot(snapshot(v.id, 'keep', c2.id));
        // Another volume's head, older than the cutoff.
        const other = await seedVolume('other', { createdAt: at(500) });

        // Cutoff at c4's time: c1 and c3 go; c2 (snapshot), c4 (not before the cutoff), c5 (head) stay.
        assert.equal(await store.pruneCommits(c4.createdAt), 2);
        assert.equal(await store.getCommit(c1.id), undefined);
        assert.equal(await store.getCommit(c3.id), undefined);
        assert.deepStrictEqual(await store.getCommit(c2.id), c2);
        assert.deepStrictEqual(await store.getCommit(c4.id), c4);
        assert.deepStrictEqual(await store.getCommit(c5.id), c5);
        assert.deepStrictEqual(await store.getCommit(other.c.id), other.c);
        assert.equal(await store.pruneCommits(c4.createdAt), 0);
      });

      it('lists root trees: heads, snapshot targets and recent commits, deduplicated', async () => {
        const { v, c: c1 } = await seedVolume('data', { createdAt: at(1000) });
        const shared = hash<TreeHash>();
        const c2 = commit(v.id, 2, { parent: c1.id });
        const c3 = commit(v.id, 3, { parent: c2.id });
        const c4 = commit(v.id, 4, { parent: c3.id, tree: shared });
        const c5 = commit(v.id, 5, { parent: c4.id, tree: shared });
        for (const c of [c2, c3, c4, c5]) await store.insertCommit(c);
        assert.equal(
          await store.casHead(v.id, v.head, { head: c5.id, size: 0, fileCount: 0, updatedAt: at(5000) }),
          true,
        );
        await store.insertSnapshot(snapshot(v.id, 'snap', c2.id));
        // A second volume whose old head has the same tree as the first one's.
        const other = await seedVolume('other', { createdAt: at(10) });
        const c6 = commit(other.v.id, 2, { parent: other.c.id, tree: shared, createdAt: at(20) });
        await store.insertCommit(c6);
        assert.equal(
          await store.casHead(other.v.id, other.v.head, { head: c6.id, size: 0, fileCount: 0, updatedAt: at(20) }),
          true,
        );

        // retainSince = c4's time (inclusive): c1 and c3 are old and unreferenced.
        const roots = await store.listRootTrees(c4.createdAt);
        assert.deepStrictEqual(sorted(roots), sorted([shared, c2.tree]));
        assert.deepStrictEqual(
          sorted(await store.listRootTrees(at(0))),
          sorted([...new Set([c1.tree, c2.tree, c3.tree, shared, other.c.tree])]),
        );
      });
    });

    describe('snapshots', () => {
      it('round-trips snapshots and lists them oldest first', async () => {
        const { v, c } = await seedVolume();
        const late = snapshot(v.id, 'a-late', c.id, { createdAt: at(30) });
        const early = snapshot(v.id, 'z-early', c.id, { createdAt: at(10) });
        const mid = snapshot(v.id, 'm-mid', c.id, { createdAt: at(20) });
        for (const s of [late, early, mid]) await store.insertSnapshot(s);
        assert.deepStrictEqual(await store.getSnapshot(v.id, 'a-late'), late);
        assert.deepStrictEqual(await store.listSnapshots(v.id), [early, mid, late]);
        assert.equal(await store.getSnapshot(v.id, 'missing'), undefined);
        assert.deepStrictEqual(await store.listSnapshots(VolumeId.new()), []);
      });

      it('refuses a duplicate (volume, name) with AlreadyExists but allows the name on another volume', async () => {
        const a = await seedVolume('a');
        const b = await seedVolume('b');
        await store.insertSnapshot(snapshot(a.v.id, 'v1', a.c.id));
        await rejectsWithCode(
          () => store.insertSnapshot(snapshot(a.v.id, 'v1', a.c.id)),
          'AlreadyExists',
          'duplicate snapshot',
          'v1',
        );
        const onB = snapshot(b.v.id, 'v1', b.c.id);
        await store.insertSnapshot(onB);
        assert.deepStrictEqual(await store.getSnapshot(b.v.id, 'v1'), onB);
      });

      it('deletes a snapshot and reports a missing one', async () => {
        const { v, c } = await seedVolume();
        await store.insertSnapshot(snapshot(v.id, 'v1', c.id));
        const kept = snapshot(v.id, 'v2', c.id);
        await store.insertSnapshot(kept);
        assert.equal(await store.deleteSnapshot(v.id, 'v1'), true);
        assert.equal(await store.getSnapshot(v.id, 'v1'), undefined);
        assert.deepStrictEqual(await store.listSnapshots(v.id), [kept]);
        assert.equal(await store.deleteSnapshot(v.id, 'v1'), false);
      });
    });

    describe('trees', () => {
      it('round-trips tree bytes exactly, empty trees included', async () => {
        const big = new Uint8Array(300_000);
        for (let i = 0; i < big.length; i++) big[i] = (i * 7) & 0xff;
        const trees = [tree(ALL_BYTES), tree([]), tree(big), tree([0, 0, 0])];
        await store.putTrees(trees, at(1));
        for (const t of trees) assertBytes(await store.getTree(t.hash), t.data, `tree of ${t.data.length} bytes`);
        assert.equal(await store.getTree(hash<TreeHash>()), undefined);
      });

      it('is idempotent and sets touchedAt on new and existing trees', async () => {
        const a = tree([1]);
        const b = tree([2]);
        await store.putTrees([a, b], at(100));
        await store.putTrees([a, a], at(200));
        assertBytes(await store.getTree(a.hash), a.data, 'tree a');
        const listed = new Map((await store.listTrees()).map((t) => [t.hash, t.touchedAt]));
        assert.equal(listed.size, 2);
        assert.deepStrictEqual(listed.get(a.hash), at(200));
        assert.deepStrictEqual(listed.get(b.hash), at(100));
        await store.putTrees([], at(300));
      });

      it('touches only trees that exist and lists those touched since a time', async () => {
        const a = tree([1]);
        const b = tree([2]);
        await store.putTrees([a, b], at(100));
        await store.touchTrees([b.hash, hash<TreeHash>()], at(300));
        await store.touchTrees([], at(400));
        assert.equal((await store.listTrees()).length, 2);
        assert.deepStrictEqual(await store.listTreesTouchedSince(at(300)), [b.hash]);
        assert.deepStrictEqual(sorted(await store.listTreesTouchedSince(at(100))), sorted([a.hash, b.hash]));
        assert.deepStrictEqual(await store.listTreesTouchedSince(at(301)), []);
      });

      it('deletes only trees touched before the cutoff and returns them', async () => {
        const old = tree([1]);
        const atCutoff = tree([2]);
        const fresh = tree([3]);
        await store.putTrees([old], at(100));
        await store.putTrees([atCutoff], at(200));
        await store.putTrees([fresh], at(300));
        const deleted = await store.deleteTrees([old.hash, atCutoff.hash, fresh.hash, hash<TreeHash>()], at(200));
        assert.deepStrictEqual(deleted, [old.hash]);
        assert.equal(await store.getTree(old.hash), undefined);
        assertBytes(await store.getTree(atCutoff.hash), atCutoff.data, 'tree touched at the cutoff');
        assertBytes(await store.getTree(fresh.hash), fresh.data, 'tree touched after the cutoff');
        assert.deepStrictEqual(await store.deleteTrees([old.hash], at(1000)), []);
        assert.deepStrictEqual(await store.deleteTrees([], at(1000)), []);
      });

      it('handles thousands of trees in one call', async () => {
        const trees = Array.from({ length: 2_000 }, (_, i) => tree([i & 0xff, i >> 8]));
        await store.putTrees(trees, at(1));
        await store.touchTrees(
          trees.slice(0, 1_500).map((t) => t.hash),
          at(5),
        );
        assert.equal((await store.listTreesTouchedSince(at(5))).length, 1_500);
        const deleted = await store.deleteTrees(
          trees.map((t) => t.hash),
          at(5),
        );
        assert.deepStrictEqual(sorted(deleted), sorted(trees.slice(1_500).map((t) => t.hash)));
        assert.equal((await store.listTrees()).length, 1_500);
      });
    });

    describe('chunks', () => {
      it('round-trips chunk rows and returns only those that exist', async () => {
        const a = chunk({ size: 5 * 1024 ** 3, offset: 0, touchedAt: at(1) });
        const b = chunk({ size: 1234, objectKey: 'packs/p1', offset: 9_000_000_000, touchedAt: at(2) });
        await store.putChunks([a, b]);
        assert.deepStrictEqual(byHash(await store.getChunks([a.hash, b.hash, hash<ChunkHash>()])), byHash([a, b]));
        assert.deepStrictEqual(byHash(await store.listChunks()), byHash([a, b]));
        assert.deepStrictEqual(await store.getChunks([]), []);
        assert.deepStrictEqual(await store.getChunks([hash<ChunkHash>()]), []);
      });

      it('keeps the first object of a chunk and only touches it on a later put', async () => {
        const first = chunk({ objectKey: 'packs/first', offset: 10, size: 100, touchedAt: at(100) });
        await store.putChunks([first, { ...first, objectKey: 'packs/same-call', touchedAt: at(100) }]);
        await store.putChunks([{ ...first, objectKey: 'packs/second', offset: 0, size: 100, touchedAt: at(200) }]);
        assert.deepStrictEqual(await store.getChunks([first.hash]), [{ ...first, touchedAt: at(200) }]);
        await store.putChunks([]);
      });

      it('touches existing chunks and returns only their hashes', async () => {
        const a = chunk({ touchedAt: at(100) });
        const b = chunk({ touchedAt: at(100) });
        await store.putChunks([a, b]);
        const missing = hash<ChunkHash>();
        assert.deepStrictEqual(await store.touchChunks([a.hash, missing], at(300)), [a.hash]);
        assert.deepStrictEqual(await store.touchChunks([], at(300)), []);
        assert.deepStrictEqual(await store.getChunks([a.hash]), [{ ...a, touchedAt: at(300) }]);
        assert.deepStrictEqual(await store.getChunks([missing]), []);
        assert.deepStrictEqual(await store.listChunksTouchedSince(at(300)), [a.hash]);
        assert.deepStrictEqual(sorted(await store.listChunksTouchedSince(at(100))), sorted([a.hash, b.hash]));
        assert.deepStrictEqual(await store.listChunksTouchedSince(at(301)), []);
      });

      it('deletes only chunks touched before the cutoff and returns their rows', async () => {
        const old = chunk({ objectKey: 'packs/old', offset: 7, touchedAt: at(100) });
        const atCutoff = chunk({ touchedAt: at(200) });
        const fresh = chunk({ touchedAt: at(300) });
        await store.putChunks([old, atCutoff, fresh]);
        const deleted = await store.deleteChunks([old.hash, atCutoff.hash, fresh.hash, hash<ChunkHash>()], at(200));
        assert.deepStrictEqual(deleted, [old]);
        assert.deepStrictEqual(byHash(await store.listChunks()), byHash([atCutoff, fresh]));
        assert.deepStrictEqual(await store.deleteChunks([old.hash], at(1000)), []);
        assert.deepStrictEqual(await store.deleteChunks([], at(1000)), []);
      });

      it('handles thousands of hashes in one call', async () => {
        const chunks = Array.from({ length: 2_000 }, (_, i) => chunk({ offset: i, touchedAt: at(1) }));
        await store.putChunks(chunks);
        const hashes = chunks.map((c) => c.hash);
        const missing = Array.from({ length: 50 }, () => hash<ChunkHash>());
        assert.deepStrictEqual(byHash(await store.getChunks([...hashes, ...missing])), byHash(chunks));
        assert.deepStrictEqual(
          sorted(await store.touchChunks([...missing, ...hashes.slice(0, 1_200)], at(5))),
          sorted(hashes.slice(0, 1_200)),
        );
        const deleted = await store.deleteChunks(hashes, at(5));
        assert.deepStrictEqual(byHash(deleted), byHash(chunks.slice(1_200)));
        assert.equal((await store.listChunks()).length, 1_200);
      });
    });

    describe('chunk owners', () => {
      const all = (...owners: Array<TenantId | VolumeId>) => owners.map((owner) => ({ owner }));

      it('answers only the hashes one of the owners owns, each once', async () => {
        const [t1, t2] = [TenantId.new(), TenantId.new()];
        const [v1, v2] = [VolumeId.new(), VolumeId.new()];
        const [a, b, c] = [hash<ChunkHash>(), hash<ChunkHash>(), hash<ChunkHash>()];
        await store.addChunkOwners([t1, v1], [a, b], at(10));
        await store.addChunkOwners([t2], [c], at(10));
        assert.deepStrictEqual(sorted(await store.ownedChunks(all(t1), [a, b, c])), sorted([a, b]));
        assert.deepStrictEqual(sorted(await store.ownedChunks(all(v1, t1), [a, a, c])), [a]);
        assert.deepStrictEqual(await store.ownedChunks(all(t2), [a, b]), [], 'another owner owns nothing of t1');
        assert.deepStrictEqual(await store.ownedChunks(all(v2), [a, b, c]), []);
        assert.deepStrictEqual(sorted(await store.ownedChunks(all(v2, t2, v1), [a, b, c])), sorted([a, b, c]));
        assert.deepStrictEqual(await store.ownedChunks([], [a]), []);
        assert.deepStrictEqual(await store.ownedChunks(all(t1), []), []);
      });

      it('bounds an owner by `until`, keeping the first time an owner owned a hash', async () => {
        const v = VolumeId.new();
        const [early, late] = [hash<ChunkHash>(), hash<ChunkHash>()];
        await store.addChunkOwners([v], [early], at(100));
        await store.addChunkOwners([v], [late, early], at(200));
        assert.deepStrictEqual(await store.ownedChunks([{ owner: v, until: at(150) }], [early, late]), [early]);
        assert.deepStrictEqual(
          sorted(await store.ownedChunks([{ owner: v, until: at(200) }], [early, late])),
          sorted([early, late]),
          'until is inclusive',
        );
        assert.deepStrictEqual(await store.ownedChunks([{ owner: v, until: at(99) }], [early, late]), []);
        const other = VolumeId.new();
        await store.addChunkOwners([other], [late], at(300));
        assert.deepStrictEqual(
          sorted(await store.ownedChunks([{ owner: v, until: at(150) }, { owner: other }], [early, late])),
          sorted([early, late]),
          'scopes with and without a bound combine',
        );
      });

      it('records owners idempotently, and thousands in one call', async () => {
        const t = TenantId.new();
        const v = VolumeId.new();
        const hashes = Array.from({ length: 1_500 }, () => hash<ChunkHash>());
        await store.addChunkOwners([t, v], hashes, at(1));
        await store.addChunkOwners([t, t], [...hashes.slice(0, 700), hashes[0]!], at(2));
        await store.addChunkOwners([], hashes, at(3));
        await store.addChunkOwners([t], [], at(3));
        const ancestors = Array.from({ length: 250 }, () => ({ owner: VolumeId.new(), until: at(5) }));
        assert.deepStrictEqual(sorted(await store.ownedChunks(all(t), [...hashes, hash<ChunkHash>()])), sorted(hashes));
        assert.deepStrictEqual(
          sorted(await store.ownedChunks([...ancestors, { owner: v, until: at(1) }], hashes)),
          sorted(hashes),
          'many owners at once (a deep fork lineage)',
        );
      });

      it('prunes only the owners of hashes that have no chunk row', async () => {
        const t = TenantId.new();
        const stored = chunk();
        const gone = hash<ChunkHash>();
        await store.putChunks([stored]);
        await store.addChunkOwners([t, VolumeId.new()], [stored.hash, gone], at(1));
        assert.equal(await store.pruneChunkOwners([stored.hash, gone, hash<ChunkHash>()]), 2);
        assert.deepStrictEqual(await store.ownedChunks(all(t), [stored.hash, gone]), [stored.hash]);
        assert.equal(await store.pruneChunkOwners([]), 0);
      });
    });

    describe('upload reservations', () => {
      it("sums a tenant's unexpired reservations, releases its own keys only, and expires", async () => {
        const [t1, t2] = [TenantId.new(), TenantId.new()];
        const v = VolumeId.new();
        assert.equal(await store.pendingUploadBytes(t1, at(0)), 0);
        await store.insertUploadReservations([
          { key: 'chunks/aa/1', tenantId: t1, volumeId: v, bytes: 5 * 1024 ** 3, expiresAt: at(1000) },
          { key: 'packs/bb/2', tenantId: t1, volumeId: v, bytes: 300, expiresAt: at(2000) },
          { key: 'packs/bb/2', tenantId: t1, volumeId: v, bytes: 1, expiresAt: at(2000) },
        ]);
        await store.insertUploadReservations([
          { key: 'packs/bb/2', tenantId: t1, volumeId: v, bytes: 999, expiresAt: at(9000) },
        ]);
        await store.insertUploadReservations([
          { key: 'tus-3', tenantId: t2, volumeId: VolumeId.new(), bytes: 7, expiresAt: at(1000) },
        ]);
        await store.insertUploadReservations([]);
        assert.equal(await store.pendingUploadBytes(t1, at(0)), 5 * 1024 ** 3 + 300);
        assert.equal(await store.pendingUploadBytes(t1, at(1000)), 300, 'a reservation expiring now no longer counts');
        assert.equal(await store.pendingUploadBytes(t2, at(0)), 7);
        assert.equal(
          await store.releaseUploadReservations(t2, ['chunks/aa/1', 'tus-3']),
          1,
          "another tenant cannot release t1's keys",
        );
        assert.equal(await store.pendingUploadBytes(t1, at(0)), 5 * 1024 ** 3 + 300);
        assert.equal(await store.releaseUploadReservations(t1, ['chunks/aa/1', 'chunks/aa/1']), 1);
        assert.equal(await store.releaseUploadReservations(t1, ['chunks/aa/1']), 0);
        assert.equal(await store.releaseUploadReservations(t1, []), 0);
        assert.equal(await store.pendingUploadBytes(t1, at(0)), 300);
        // Released rows stay (at 0 bytes) as the record of whom a key was issued to, until they expire.
        assert.deepEqual(
          (await store.issuedUploadKeys(t1, v, ['chunks/aa/1', 'packs/bb/2', 'tus-3', 'never'], at(0))).sort(),
          ['chunks/aa/1', 'packs/bb/2'],
        );
        assert.deepEqual(
          await store.issuedUploadKeys(t2, v, ['chunks/aa/1', 'packs/bb/2'], at(0)),
          [],
          'issued to another tenant',
        );
        assert.deepEqual(
          await store.issuedUploadKeys(t1, VolumeId.new(), ['chunks/aa/1', 'packs/bb/2'], at(0)),
          [],
          'issued for another volume',
        );
        assert.deepEqual(
          await store.issuedUploadKeys(t1, v, ['chunks/aa/1', 'packs/bb/2'], at(1000)),
          ['packs/bb/2'],
          'an expired key is no longer issued',
        );
        assert.equal(await store.deleteExpiredUploadReservations(at(1999)), 2);
        assert.equal(await store.deleteExpiredUploadReservations(at(2000)), 1);
        assert.equal(await store.pendingUploadBytes(t1, at(0)), 0);
      });

      it('reserves thousands of keys in one call', async () => {
        const t = TenantId.new();
        const v = VolumeId.new();
        await store.insertUploadReservations(
          Array.from({ length: 1_200 }, (_, i) => ({
            key: `chunks/k/${i}`,
            tenantId: t,
            volumeId: v,
            bytes: 2,
            expiresAt: at(10),
          })),
        );
        assert.equal(await store.pendingUploadBytes(t, at(0)), 2_400);
        assert.equal(
          await store.releaseUploadReservations(
            t,
            Array.from({ length: 1_100 }, (_, i) => `chunks/k/${i}`),
          ),
          1_100,
        );
        assert.equal(await store.pendingUploadBytes(t, at(0)), 200);
      });
    });

    describe('settings', () => {
      it('keeps the first value of a setting', async () => {
        assert.equal(await store.getSetting('installation-id'), undefined);
        assert.equal(await store.putSettingIfAbsent('installation-id', 'first'), 'first');
        assert.equal(await store.putSettingIfAbsent('installation-id', 'second'), 'first');
        assert.equal(await store.getSetting('installation-id'), 'first');
        assert.equal(await store.putSettingIfAbsent('other', ''), '');
      });

      it('agrees on one value when callers race', async () => {
        const values = await Promise.all(
          Array.from({ length: 10 }, (_, i) => store.putSettingIfAbsent('signing-key', `k${i}`)),
        );
        assert.equal(new Set(values).size, 1);
        assert.equal(await store.getSetting('signing-key'), values[0]);
      });
    });

    describe('transactions', () => {
      it('commits every write of the function and returns its value', async () => {
        const { v } = await seedVolume();
        const t2 = tenant('beta');
        const c2 = commit(v.id, 2, { parent: v.head });
        const tr = tree([9]);
        const ch = chunk();
        const result = await store.transaction(async (tx) => {
          await tx.insertTenant(t2);
          await tx.insertCommit(c2);
          assert.equal(await tx.casHead(v.id, v.head, { head: c2.id, size: 1, fileCount: 1, updatedAt: at(50) }), true);
          await tx.insertSnapshot(snapshot(v.id, 's', c2.id));
          await tx.putTrees([tr], at(50));
          await tx.putChunks([ch]);
          // Reads inside see the transaction's own writes.
          assert.equal((await tx.getVolume(v.id))?.head, c2.id);
          return 'done';
        });
        assert.equal(result, 'done');
        assert.deepStrictEqual(await store.getTenant(t2.id), t2);
        assert.deepStrictEqual(await store.getCommit(c2.id), c2);
        assert.equal((await store.getVolume(v.id))?.head, c2.id);
        assert.equal((await store.getSnapshot(v.id, 's'))?.commitId, c2.id);
        assertBytes(await store.getTree(tr.hash), tr.data, 'tree written in a transaction');
        assert.deepStrictEqual(await store.getChunks([ch.hash]), [ch]);
      });

      it('rolls back every write when the function throws, and rethrows its error', async () => {
        const { t, v } = await seedVolume();
        const before = await store.getVolume(v.id);
        const boom = new Error('boom');
        const newTenant = tenant('beta');
        const newVolume = volume(t.id, 'new');
        const c2 = commit(v.id, 2);
        const tr = tree([1]);
        const ch = chunk();
        await assert.rejects(
          store.transaction(async (tx) => {
            await tx.insertTenant(newTenant);
            await tx.insertVolume(newVolume);
            await tx.insertCommit(c2);
            assert.equal(
              await tx.casHead(v.id, v.head, { head: c2.id, size: 1, fileCount: 1, updatedAt: at(50) }),
              true,
            );
            await tx.insertSnapshot(snapshot(v.id, 's', v.head));
            await tx.putTrees([tr], at(50));
            await tx.putChunks([ch]);
            await tx.putSettingIfAbsent('k', 'v');
            assert.equal(await tx.updateTenant(t.id, { defaultCap: 1 }), true);
            throw boom;
          }),
          (err) => err === boom,
        );
        assert.equal(await store.getTenant(newTenant.id), undefined);
        assert.equal(await store.getVolume(newVolume.id), undefined);
        assert.equal(await store.getCommit(c2.id), undefined);
        assert.deepStrictEqual(await store.getVolume(v.id), before);
        assert.equal(await store.getSnapshot(v.id, 's'), undefined);
        assert.equal(await store.getTree(tr.hash), undefined);
        assert.deepStrictEqual(await store.getChunks([ch.hash]), []);
        assert.equal(await store.getSetting('k'), undefined);
        assert.deepStrictEqual(await store.getTenant(t.id), t);
      });

      it('rolls back earlier writes when a write inside fails with AlreadyExists', async () => {
        await store.insertTenant(tenant('acme'));
        const fresh = tenant('fresh');
        await rejectsWithCode(
          () =>
            store.transaction(async (tx) => {
              await tx.insertTenant(fresh);
              await tx.insertTenant(tenant('acme'));
            }),
          'AlreadyExists',
          'duplicate inside a transaction',
        );
        assert.equal(await store.getTenant(fresh.id), undefined);
      });

      it('deletes a volume inside a transaction', async () => {
        const { v, c } = await seedVolume();
        await store.insertSnapshot(snapshot(v.id, 's', c.id));
        assert.equal(await store.transaction((tx) => tx.deleteVolume(v.id)), true);
        assert.equal(await store.getVolume(v.id), undefined);
        assert.equal(await store.getCommit(c.id), undefined);
        assert.deepStrictEqual(await store.listSnapshots(v.id), []);
      });

      it('never loses an update when read-then-swap transactions race', async () => {
        const { v, c } = await seedVolume();
        const attempts = await Promise.allSettled(
          Array.from({ length: 10 }, (_, i) =>
            store.transaction(async (tx) => {
              const cur = await tx.getVolume(v.id);
              assert.ok(cur);
              const head = await tx.getCommit(cur.head);
              assert.ok(head);
              const next = commit(v.id, head.seq + 1, { parent: head.id, message: `writer ${i}` });
              await tx.insertCommit(next);
              if (
                !(await tx.casHead(v.id, cur.head, { head: next.id, size: 0, fileCount: 0, updatedAt: at(100 + i) }))
              ) {
                throw new Error('head moved');
              }
              return next.id;
            }),
          ),
        );
        const won = attempts.flatMap((a) => (a.status === 'fulfilled' ? [a.value] : []));
        assert.ok(won.length >= 1, 'at least one transaction commits');
        // Serialisable: every committed writer built on the one before it, so the
        // parent chain from the head passes through all of them.
        const chain: CommitId[] = [];
        let cur = (await store.getVolume(v.id))?.head;
        while (cur !== undefined && cur !== c.id) {
          chain.push(cur);
          cur = (await store.getCommit(cur))?.parent ?? undefined;
        }
        assert.equal(cur, c.id, 'the chain reaches the first commit');
        assert.deepStrictEqual(sorted(chain), sorted(won));
      });
    });
  });
}

function byId<T extends { id: string }>(xs: readonly T[]): T[] {
  return [...xs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
