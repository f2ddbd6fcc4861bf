/**
 * Unit tests of engine/archive-stream and engine.shareActor on a real engine
 * (SQLite metadata in a temp dir, in-memory blobs), without HTTP.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { extract } from 'tar-stream';
import { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { ForbiddenError, InvalidArgumentError, NotFoundError } from '@stowage/sdk/common/errors.js';
import { MemoryBlobStore } from '../stores/memory/memory-blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { openSqliteMetadataStore } from '../stores/sql/sqlite-dialect.js';
import { archiveStream } from './archive-stream.js';
import { createEngine, type Engine } from './engine.js';
import type { Actor } from './types.js';

let dir: string;
let md: MetadataStore;
let engine: Engine;
let actor: Actor;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stowage-archive-'));
  md = await openSqliteMetadataStore({ path: join(dir, 'meta.db') });
  engine = createEngine({ metadata: md, blobs: new MemoryBlobStore() });
  actor = await engine.authenticate((await engine.createTenant('acme')).secret);
  await engine.createVolume(actor, 'v');
  const big = Buffer.alloc(3 * 1024 * 1024, 9); // above the read-ahead size: streams through
  for (let i = 0; i < 50; i++)
    await engine.writeFile(
      actor,
      'v',
      `/d/f${String(i).padStart(2, '0')}.txt`,
      Readable.from([Buffer.from(`file ${i}`)]),
      { createParents: true },
    );
  await engine.writeFile(actor, 'v', '/d/big.bin', Readable.from([big]), { mode: 0o600 });
});

after(async () => {
  await md.close();
  rmSync(dir, { recursive: true, force: true });
});

async function names(stream: NodeJS.ReadableStream, gz: boolean): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  const ex = extract();
  const done = (async () => {
    for await (const e of ex) {
      const parts: Buffer[] = [];
      for await (const d of e) parts.push(d as Buffer);
      out.set(e.header.name, Buffer.concat(parts));
    }
  })();
  (gz ? stream.pipe(createGunzip()) : stream).pipe(ex as unknown as NodeJS.WritableStream);
  await done;
  return out;
}

test('archives keep entry order and bytes, mixing read-ahead and streamed files', async () => {
  for (const format of ['tar', 'tar.gz'] as const) {
    const { stream, name } = await archiveStream(engine, actor, 'v', '/d', { format });
    assert.equal(name, 'd');
    const got = await names(stream, format === 'tar.gz');
    assert.equal(got.size, 51);
    assert.equal(got.get('f07.txt')!.toString(), 'file 7');
    assert.equal(got.get('big.bin')!.length, 3 * 1024 * 1024);
  }
});

test('archive requests for files, missing paths and hostile paths fail before any byte', async () => {
  await assert.rejects(archiveStream(engine, actor, 'v', '/d/f01.txt'), InvalidArgumentError);
  await assert.rejects(archiveStream(engine, actor, 'v', '/nope'), NotFoundError);
  await assert.rejects(archiveStream(engine, actor, 'v', '/d/../..'), InvalidArgumentError);
  await assert.rejects(archiveStream(engine, actor, 'v', '/d', { format: 'zip' as never }), InvalidArgumentError);
});

test('shareActor is the signer, read-only, scoped to the volume; revoked signers and foreign volumes are refused', async () => {
  const vol = await engine.getVolume(actor, 'v');
  const { token } = await engine.createToken(actor, { name: 'signer' });
  const shared = await engine.shareActor(token.id, vol.id);
  assert.equal(shared.volume, 'v');
  assert.equal(shared.actor.readOnly, true);
  assert.equal(shared.actor.volumeId, vol.id);
  await assert.rejects(engine.writeFile(shared.actor, 'v', '/x', Readable.from([Buffer.from('x')])), /read-only/);

  const other = await engine.authenticate((await engine.createTenant('other')).secret);
  const foreign = await engine.createVolume(other, 'w');
  await assert.rejects(engine.shareActor(token.id, foreign.id), NotFoundError);
  await assert.rejects(engine.shareActor(token.id, 'vol_garbage'), InvalidArgumentError);

  await engine.revokeToken(actor, token.id);
  await assert.rejects(engine.shareActor(token.id, vol.id), ForbiddenError);
});

test('archives clamp times a tar header cannot hold (before 1970, after 2038) instead of writing garbage', async () => {
  await engine.commit(actor, 'v', {
    changes: [
      { op: 'mkdir', path: '/t', mtime: 1_000_000 },
      { op: 'symlink', path: '/t/old', target: '../d/f01.txt', mtime: -86_400_000, mtimeNs: 5 },
      { op: 'symlink', path: '/t/far', target: '../d/f02.txt', mtime: 8.64e15 },
    ],
  });
  const { stream } = await archiveStream(engine, actor, 'v', '/t', { format: 'tar' });
  const times = new Map<string, number>();
  const ex = extract();
  const done = (async () => {
    for await (const e of ex) {
      times.set(e.header.name, e.header.mtime!.getTime());
      e.resume();
    }
  })();
  stream.pipe(ex as unknown as NodeJS.WritableStream);
  await done;
  assert.equal(times.get('old'), 0);
  assert.equal(times.get('far'), 0x7fffffff * 1000);
});
