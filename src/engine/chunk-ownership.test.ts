/**
 * Dedupe proof-of-ownership at the engine, over a real SQLite file: a chunk
 * hash is never a read key, and "is it stored?" is answered only about the
 * asker's own chunks.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import type { ChunkHash } from '@stowage/sdk/common/ids.js';
import type { ByteRange } from '../stores/blob-store.js';
import { MemoryBlobStore } from '../stores/memory/memory-blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { openSqliteMetadataStore } from '../stores/sql/sqlite-dialect.js';
import { CHUNK_OWNERS_BACKFILLED } from './chunk-ownership.js';
import { createEngine, type Engine } from './engine.js';
import type { Actor } from './types.js';

const sha = (b: Uint8Array | string) => createHash('sha256').update(b).digest('hex');

/** A memory blob store that counts whole-object reads per key (pack verification reads whole packs). */
class CountingBlobStore extends MemoryBlobStore {
  readonly reads = new Map<string, number>();
  override async get(key: string, range?: ByteRange) {
    if (!range) this.reads.set(key, (this.reads.get(key) ?? 0) + 1);
    return super.get(key, range);
  }
}

interface World {
  dir: string;
  dbPath: string;
  md: MetadataStore;
  blobs: CountingBlobStore;
  engine: Engine;
  a: Actor;
  b: Actor;
  clock: { t: number };
}

async function world(opts: { maxVerifyBytes?: number } = {}): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'stowage-owners-'));
  const dbPath = join(dir, 'meta.db');
  const md = await openSqliteMetadataStore({ path: dbPath });
  const blobs = new CountingBlobStore();
  const clock = { t: Date.now() };
  const engine = createEngine({ metadata: md, blobs, now: () => new Date(clock.t), ...opts });
  const a = await engine.authenticate((await engine.createTenant('alice')).secret);
  const b = await engine.authenticate((await engine.createTenant('bob')).secret);
  return { dir, dbPath, md, blobs, engine, a, b, clock };
}

async function scoped(w: World, actor: Actor, volume: string): Promise<Actor> {
  return w.engine.authenticate((await w.engine.createToken(actor, { name: `scoped-${volume}`, volume })).secret);
}

/** What the SDK does for one small file: ask, upload what is missing (honestly unless `bytes` says otherwise), commit. */
async function write(
  w: World,
  actor: Actor,
  volume: string,
  path: string,
  content: string,
  opts: { upload?: (key: string, hash: string) => Promise<void> } = {},
) {
  const bytes = Buffer.from(content);
  const hash = sha(bytes);
  const { missing, present } = await w.engine.prepareUpload(actor, volume, [{ hash, size: bytes.length }]);
  for (const m of missing) {
    if (opts.upload) await opts.upload(m.key, m.hash);
    else await w.blobs.put(m.key, bytes, { sha256: m.hash });
  }
  const result = await w.engine.commit(actor, volume, {
    changes: [{ op: 'put', path, size: bytes.length, chunkSize: SMALL_CHUNK_SIZE, chunks: [hash] }],
    uploads: missing.map((m) => ({ hash: m.hash, key: m.key })),
  });
  return { ...result, missing, present };
}

/** A commit that names a chunk by hash only: no upload, no pack. */
function claim(w: World, actor: Actor, volume: string, path: string, content: string) {
  const bytes = Buffer.from(content);
  return w.engine.commit(actor, volume, {
    changes: [{ op: 'put', path, size: bytes.length, chunkSize: SMALL_CHUNK_SIZE, chunks: [sha(bytes)] }],
  });
}

async function read(w: World, actor: Actor, volume: string, path: string): Promise<string> {
  const { body } = await w.engine.readFile(actor, volume, path);
  let out = '';
  for await (const piece of body) out += Buffer.from(piece).toString();
  return out;
}

async function objectsOf(w: World, hash: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of w.blobs.list(`chunks/${hash.slice(0, 2)}/${hash}`)) keys.push(o.key);
  return keys;
}

async function* once(s: string): AsyncGenerator<Buffer> {
  yield Buffer.from(s);
}

const SECRET = 'alice private key material: never published';

describe('chunk ownership (engine)', () => {
  let w: World;
  beforeEach(async () => {
    w = await world();
    await w.engine.createVolume(w.a, 'vault');
    await w.engine.createVolume(w.b, 'loot');
    await write(w, w.a, 'vault', '/secret', SECRET);
  });
  afterEach(async () => {
    await w.md.close();
    rmSync(w.dir, { recursive: true, force: true });
  });

  it("refuses another tenant's commit of a hash it never uploaded, with the answer of a never-stored chunk", async () => {
    const head = (await w.engine.getVolume(w.b, 'loot')).head;
    const stolen = await claim(w, w.b, 'loot', '/stolen', SECRET).catch((e: unknown) => e);
    const never = await claim(w, w.b, 'loot', '/never', 'x'.repeat(SECRET.length)).catch((e: unknown) => e);
    assert.equal((stolen as { code: string }).code, 'PreconditionFailed');
    assert.equal((never as { code: string }).code, 'PreconditionFailed');
    // Same words either way, the hash aside: nothing says the content exists elsewhere.
    assert.equal(
      (stolen as Error).message.replace(/[0-9a-f]{64}/, 'H'),
      (never as Error).message.replace(/[0-9a-f]{64}/, 'H'),
    );
    assert.equal((await w.engine.getVolume(w.b, 'loot')).head, head, 'nothing committed');
    await assert.rejects(read(w, w.b, 'loot', '/stolen'), { code: 'NotFound' });
  });

  it("reports another tenant's chunk missing in prepareUpload, whatever size is asked, and never its size", async () => {
    for (const size of [SECRET.length, 1, 12345]) {
      const out = await w.engine.prepareUpload(w.b, 'loot', [{ hash: sha(SECRET), size }]);
      assert.equal(out.present, 0);
      assert.equal(out.missing.length, 1);
      assert.equal(out.missing[0]!.size, size, 'echoes the asked size, not the stored one');
    }
    // The owner still gets "present" (and a size check) for its own chunk.
    assert.equal((await w.engine.prepareUpload(w.a, 'vault', [{ hash: sha(SECRET), size: SECRET.length }])).present, 1);
    await assert.rejects(w.engine.prepareUpload(w.a, 'vault', [{ hash: sha(SECRET), size: 3 }]), {
      code: 'InvalidArgument',
    });
  });

  it('lets another tenant that uploads the same bytes itself commit them, stored once (one row, one live object after GC)', async () => {
    const out = await write(w, w.b, 'loot', '/mine', SECRET);
    assert.equal(out.missing.length, 1, 'bob uploads the bytes again');
    assert.equal(await read(w, w.b, 'loot', '/mine'), SECRET);
    assert.equal((await w.md.getChunks([sha(SECRET) as ChunkHash])).length, 1);
    assert.equal((await objectsOf(w, sha(SECRET))).length, 2, 'the redundant upload waits for GC');
    w.clock.t += 2 * 3600_000;
    await w.engine.gc({ grace: 3600_000 });
    assert.equal((await objectsOf(w, sha(SECRET))).length, 1);
    assert.equal(await read(w, w.b, 'loot', '/mine'), SECRET);
    assert.equal(await read(w, w.a, 'vault', '/secret'), SECRET);
    // Now bob owns it: the next ask answers present.
    assert.equal((await w.engine.prepareUpload(w.b, 'loot', [{ hash: sha(SECRET), size: SECRET.length }])).present, 1);
  });

  it('refuses a re-upload whose bytes are not the claimed content when the store did not check the hash', async () => {
    const forged = 'z'.repeat(SECRET.length);
    // A store that does not enforce checksums (moto) takes any bytes of the right size under the signed key.
    const err = await write(w, w.b, 'loot', '/stolen', SECRET, {
      upload: (key) => w.blobs.put(key, Buffer.from(forged)).then(() => undefined),
    }).catch((e: unknown) => e);
    assert.equal((err as { code: string }).code, 'InvalidArgument');
    assert.match((err as Error).message, /do not hash/);
    await assert.rejects(read(w, w.b, 'loot', '/stolen'), { code: 'NotFound' });
    assert.equal(await read(w, w.a, 'vault', '/secret'), SECRET, 'the stored content is untouched');
    assert.equal(
      (await w.engine.prepareUpload(w.b, 'loot', [{ hash: sha(SECRET), size: SECRET.length }])).present,
      0,
      'and bob owns nothing',
    );
  });

  it("keeps a volume-scoped token to its own volume's chunks, while the tenant token may use any of its volumes'", async () => {
    await w.engine.createVolume(w.a, 'other');
    const other = await scoped(w, w.a, 'other');
    await assert.rejects(claim(w, other, 'other', '/copy', SECRET), { code: 'PreconditionFailed' });
    assert.equal(
      (await w.engine.prepareUpload(other, 'other', [{ hash: sha(SECRET), size: SECRET.length }])).present,
      0,
    );
    await claim(w, w.a, 'other', '/copy', SECRET);
    assert.equal(await read(w, other, 'other', '/copy'), SECRET);
    // Committed into "other", the chunk is now "other"'s: its scoped token may reference it.
    await claim(w, other, 'other', '/copy-2', SECRET);
  });

  it("lets a fork's scoped token reference the source's chunks, also after the source is deleted", async () => {
    await w.engine.fork(w.a, 'vault', { name: 'vault-fork' });
    const forkToken = await scoped(w, w.a, 'vault-fork');
    assert.equal(
      (await w.engine.prepareUpload(forkToken, 'vault-fork', [{ hash: sha(SECRET), size: SECRET.length }])).present,
      1,
    );
    await claim(w, forkToken, 'vault-fork', '/again', SECRET);
    await w.engine.fork(w.a, 'vault-fork', { name: 'grandchild' });
    await w.engine.deleteVolume(w.a, 'vault');
    const grandToken = await scoped(w, w.a, 'grandchild');
    await claim(w, grandToken, 'grandchild', '/third', SECRET);
    assert.equal(await read(w, grandToken, 'grandchild', '/third'), SECRET);
  });

  it("does not let a fork's scoped token reference what the source gained after the fork", async () => {
    await w.engine.fork(w.a, 'vault', { name: 'early-fork' });
    const forkToken = await scoped(w, w.a, 'early-fork');
    w.clock.t += 1000;
    await write(w, w.a, 'vault', '/later', 'written to the source after the fork');
    await assert.rejects(claim(w, forkToken, 'early-fork', '/peek', 'written to the source after the fork'), {
      code: 'PreconditionFailed',
    });
    assert.equal(
      (
        await w.engine.prepareUpload(forkToken, 'early-fork', [
          { hash: sha('written to the source after the fork'), size: 36 },
        ])
      ).present,
      0,
    );
    await claim(w, forkToken, 'early-fork', '/old', SECRET);
  });

  it("counts a server-side write of another tenant's content as uploaded, keeps it stored once, and makes it the writer's", async () => {
    const out = await w.engine.writeFile(w.b, 'loot', '/direct', once(SECRET));
    assert.equal(out.uploadedChunks, 1, 'the answer does not reveal that alice stores these bytes');
    assert.equal((await objectsOf(w, sha(SECRET))).length, 1, 'the redundant copy is gone at once');
    assert.equal(await read(w, w.b, 'loot', '/direct'), SECRET);
    assert.equal(
      (await w.engine.writeFile(w.b, 'loot', '/direct-2', once(SECRET))).uploadedChunks,
      0,
      'its own content is not stored again',
    );
    await claim(w, w.b, 'loot', '/by-hash', SECRET);
  });

  it('backfills ownership of what existing volumes hold, once, so their scoped tokens keep committing', async () => {
    const vaultToken = await scoped(w, w.a, 'vault');
    await w.engine.createSnapshot(w.a, 'vault', { name: 'before' });
    await write(w, w.a, 'vault', '/later', 'in a later commit');
    // An installation from before the index: no ownership rows at all.
    const raw = new BetterSqlite3(w.dbPath);
    raw.prepare('DELETE FROM chunk_owners').run();
    raw.close();
    await assert.rejects(claim(w, vaultToken, 'vault', '/copy', SECRET), { code: 'PreconditionFailed' });
    // The backfill marker is set on a fresh installation too (nothing to walk there): clear it as an old one would lack it.
    const raw2 = new BetterSqlite3(w.dbPath);
    raw2.prepare('DELETE FROM settings WHERE key = ?').run(CHUNK_OWNERS_BACKFILLED);
    raw2.close();
    assert.equal(await w.engine.backfillChunkOwners(), 2);
    assert.equal(await w.engine.backfillChunkOwners(), 0, 'runs once');
    await claim(w, vaultToken, 'vault', '/copy', SECRET);
    await claim(w, vaultToken, 'vault', '/copy-later', 'in a later commit');
    await claim(w, w.a, 'vault', '/tenant-copy', SECRET);
    await assert.rejects(
      claim(w, w.b, 'loot', '/stolen', SECRET),
      { code: 'PreconditionFailed' },
      'other tenants still own nothing',
    );
  });

  it('backfills through the pages of a wide directory', async () => {
    const vaultToken = await scoped(w, w.a, 'vault');
    // 3,000 entries make /wide a paged directory (interior nodes over pages); the secret sits in one of its pages.
    await write(w, w.a, 'vault', '/wide/f-1500', 'deep in a page');
    const filler = Buffer.from('filler');
    await write(w, w.a, 'vault', '/wide/f-0', 'filler');
    await w.engine.commit(w.a, 'vault', {
      changes: Array.from({ length: 3000 }, (_, i) => ({
        op: 'put' as const,
        path: `/wide/f-${i + 2000}`,
        size: filler.length,
        chunkSize: SMALL_CHUNK_SIZE,
        chunks: [sha(filler)],
      })),
    });
    const raw = new BetterSqlite3(w.dbPath);
    raw.prepare('DELETE FROM chunk_owners').run();
    raw.prepare('DELETE FROM settings WHERE key = ?').run(CHUNK_OWNERS_BACKFILLED);
    raw.close();
    await assert.rejects(claim(w, vaultToken, 'vault', '/copy', 'deep in a page'), { code: 'PreconditionFailed' });
    await w.engine.backfillChunkOwners();
    await claim(w, vaultToken, 'vault', '/copy', 'deep in a page');
    assert.equal(await read(w, vaultToken, 'vault', '/copy'), 'deep in a page');
  });
});

describe('pack verification per commit (engine)', () => {
  let w: World;
  beforeEach(async () => {
    w = await world({ maxVerifyBytes: 1024 });
    await w.engine.createVolume(w.a, 'packs');
  });
  afterEach(async () => {
    await w.md.close();
    rmSync(w.dir, { recursive: true, force: true });
  });

  async function uploadPack(files: string[]) {
    const bodies = files.map((f) => Buffer.from(f));
    const pack = Buffer.concat(bodies);
    let offset = 0;
    const chunks = bodies.map((b) => {
      const c = { hash: sha(b), offset, size: b.length };
      offset += b.length;
      return c;
    });
    const signed = await w.engine.preparePack(w.a, 'packs', { size: pack.length, sha256: sha(pack) });
    await w.blobs.put(signed.key, pack, { sha256: sha(pack) });
    return { key: signed.key, chunks, bodies };
  }

  it('reads a pack listed 1000 times once', async () => {
    const p = await uploadPack(['one', 'two', 'three']);
    await w.engine.commit(w.a, 'packs', {
      changes: p.bodies.map((b, i) => ({
        op: 'put' as const,
        path: `/f${i}`,
        size: b.length,
        chunkSize: SMALL_CHUNK_SIZE,
        chunks: [sha(b)],
      })),
      packs: Array.from({ length: 1000 }, () => ({ key: p.key, chunks: p.chunks })),
    });
    assert.equal(w.blobs.reads.get(p.key), 1);
    assert.equal(await read(w, w.a, 'packs', '/f2'), 'three');
  });

  it('refuses one pack key declared with two different manifests', async () => {
    const p = await uploadPack(['ab', 'cd']);
    const other = [{ hash: sha('abcd'), offset: 0, size: 4 }];
    await assert.rejects(
      w.engine.commit(w.a, 'packs', {
        changes: [{ op: 'put', path: '/x', size: 2, chunkSize: SMALL_CHUNK_SIZE, chunks: [sha('ab')] }],
        packs: [
          { key: p.key, chunks: p.chunks },
          { key: p.key, chunks: other },
        ],
      }),
      { code: 'InvalidArgument', message: /declared twice/ },
    );
    assert.equal(w.blobs.reads.get(p.key), undefined, 'refused before reading anything');
  });

  it('bounds the bytes one commit makes the server read, naming the bound', async () => {
    const big = await uploadPack(['a'.repeat(600), 'b'.repeat(600)]);
    const err = await w.engine
      .commit(w.a, 'packs', {
        changes: [{ op: 'put', path: '/x', size: 600, chunkSize: SMALL_CHUNK_SIZE, chunks: [sha('a'.repeat(600))] }],
        packs: [{ key: big.key, chunks: big.chunks }],
      })
      .catch((e: unknown) => e);
    assert.equal((err as { code: string }).code, 'QuotaExceeded');
    assert.match((err as Error).message, /1200 bytes.*bound of 1 KiB \(1024 bytes\) per commit/);
    assert.equal(w.blobs.reads.get(big.key), undefined);
  });
});
