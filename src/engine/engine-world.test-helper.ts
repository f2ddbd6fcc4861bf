/**
 * @module engine/engine-world.test-helper
 * The engine tests' world: a real SQLite metadata file, an in-memory blob
 * store and an engine on a clock the test moves, with the few steps an SDK
 * takes (upload and commit, pack small files, read through a plan) so each
 * test reads as what it proves.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { MemoryBlobStore } from '../stores/memory/memory-blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { openSqliteMetadataStore } from '../stores/sql/sqlite-dialect.js';
import { createEngine, type Engine } from './engine.js';
import type { Actor } from './types.js';

export const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

export interface World {
  dir: string;
  md: MetadataStore;
  blobs: MemoryBlobStore;
  engine: Engine;
  actor: Actor;
  clock: { t: number };
}

export async function world(): Promise<World> {
  const dir = mkdtempSync(join(tmpdir(), 'stowage-engine-'));
  const md = await openSqliteMetadataStore({ path: join(dir, 'meta.db') });
  const blobs = new MemoryBlobStore();
  // Starts at the real time: blob stores stamp objects with the real clock.
  const clock = { t: Date.now() };
  const engine = createEngine({ metadata: md, blobs, now: () => new Date(clock.t) });
  const { secret } = await engine.createTenant('acme');
  const actor = await engine.authenticate(secret);
  return { dir, md, blobs, engine, actor, clock };
}

export async function close(w: World): Promise<void> {
  await w.md.close();
  rmSync(w.dir, { recursive: true, force: true });
}

/** Does what the SDK does: ask, upload missing chunks, commit. */
export async function write(
  w: World,
  volume: string,
  path: string,
  content: string | Buffer,
  opts: { base?: string; onConflict?: 'fail' } = {},
) {
  const bytes = Buffer.from(content);
  const chunks: Buffer[] = [];
  for (let off = 0; off < bytes.length; off += SMALL_CHUNK_SIZE)
    chunks.push(bytes.subarray(off, off + SMALL_CHUNK_SIZE));
  const hashes = chunks.map(sha);
  const { missing } = await w.engine.prepareUpload(
    w.actor,
    volume,
    chunks.map((c, i) => ({ hash: hashes[i]!, size: c.length })),
  );
  for (const m of missing) await w.blobs.put(m.key, chunks[hashes.indexOf(m.hash)]!, { sha256: m.hash });
  return w.engine.commit(w.actor, volume, {
    changes: [{ op: 'put', path, size: bytes.length, chunkSize: SMALL_CHUNK_SIZE, chunks: hashes }],
    uploads: missing.map((m) => ({ hash: m.hash, key: m.key })),
    ...opts,
  });
}

/** Does what the SDK does for small files: one pack, one signed PUT, one commit declaring the layout. */
export async function writePacked(
  w: World,
  volume: string,
  files: Record<string, string>,
  tamper?: (m: { hash: string; offset: number; size: number }[]) => void,
) {
  const bodies = Object.values(files).map((c) => Buffer.from(c));
  const pack = Buffer.concat(bodies);
  let offset = 0;
  const chunks = bodies.map((b) => {
    const c = { hash: sha(b), offset, size: b.length };
    offset += b.length;
    return c;
  });
  tamper?.(chunks);
  const signed = await w.engine.preparePack(w.actor, volume, { size: pack.length, sha256: sha(pack) });
  await w.blobs.put(signed.key, pack, { sha256: sha(pack) });
  return w.engine.commit(w.actor, volume, {
    changes: Object.keys(files).map((path, i) => ({
      op: 'put' as const,
      path,
      size: bodies[i]!.length,
      chunkSize: SMALL_CHUNK_SIZE,
      chunks: [sha(bodies[i]!)],
    })),
    packs: [{ key: signed.key, chunks }],
  });
}

export async function read(w: World, volume: string, path: string, commit?: string): Promise<string> {
  const plan = await w.engine.readPlan(w.actor, volume, path, commit ? { commit } : {});
  let out = '';
  for (const c of plan.chunks) {
    assert.equal(c.request.method, 'GET');
    const [row] = await w.md.getChunks([c.hash as never]);
    out += await text(await w.blobs.get(row!.objectKey, { start: row!.offset, end: row!.offset + row!.size - 1 }));
  }
  return out;
}
