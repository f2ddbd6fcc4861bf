/**
 * @module test/s3-server.test
 * `stowage serve --blobs s3://...` end to end: the real server (SQLite
 * metadata in a temp dir) over a moto bucket, driven through the SDK. A
 * counting proxy in front of moto shows that chunk and pack bytes travel by
 * presigned requests straight between client and object store, never
 * through the server's /v1/blobs route.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { METADATA_FILE } from '../src/common/data-dir.js';
import { createEngine } from '../src/engine/engine.js';
import { startServer, type RunningServer } from '../src/server/serve.js';
import { openBlobStore, openMetadataStore } from '../src/stores/registry.js';
import { Stowage, Volume } from '@stowage/sdk';
import { runOwnershipAttack } from './helpers/ownership.js';
import {
  createBucket,
  deleteBucket,
  forwardTo,
  listenOnLoopback,
  motoBlobUrl,
  motoClient,
  startMoto,
  type Moto,
} from './helpers/moto.js';

const MiB = 1024 * 1024;
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function pattern(length: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 13 + seed * 101 + (i >> 10)) & 0xff;
  return b;
}

/** One request seen by the proxy. */
interface Seen {
  method: string;
  path: string;
  presigned: boolean;
  range: string | undefined;
}

/** Forwards everything to moto, remembering each request. */
async function countingProxy(target: string): Promise<{ endpoint: string; seen: Seen[]; server: Server }> {
  const t = new URL(target);
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    seen.push({
      method: req.method ?? '',
      path: url.pathname,
      presigned: url.searchParams.has('X-Amz-Signature'),
      range: req.headers.range,
    });
    forwardTo(t, req, res);
  });
  return { endpoint: await listenOnLoopback(server), seen, server };
}

describe('stowage serve --blobs s3://... (moto)', () => {
  let moto: Moto;
  let proxy: Awaited<ReturnType<typeof countingProxy>>;
  let bucket: string;
  let dataDir: string;
  let server: RunningServer;
  let vol: Volume;
  const big = pattern(9 * MiB + 4321, 1);
  const small = Array.from({ length: 120 }, (_, i) => ({
    path: `/small/f${i}.txt`,
    data: Buffer.from(`small file ${i}\n`.repeat(i + 1)),
  }));

  before(async () => {
    moto = await startMoto();
    bucket = await createBucket(moto.endpoint);
    proxy = await countingProxy(moto.endpoint);
    dataDir = await mkdtemp(join(tmpdir(), 'stowage-s3-e2e-'));
    server = await startServer({
      dataDir,
      port: 0,
      host: '127.0.0.1',
      blobUrl: motoBlobUrl(proxy.endpoint, bucket),
      log: () => undefined,
    });
    assert.ok(server.adminToken);
    vol = await Volume.create('s3vol', { client: new Stowage({ url: server.url, token: server.adminToken }) });
  });

  after(async () => {
    await server?.close();
    await new Promise<void>((r) => (proxy ? proxy.server.close(() => r()) : r()));
    if (bucket) await deleteBucket(moto.endpoint, bucket).catch(() => undefined);
    await moto?.stop();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  const objectKeys = async () => {
    const client = motoClient(moto.endpoint);
    try {
      const keys: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(
          new ListObjectsV2Command({ Bucket: bucket, ...(token ? { ContinuationToken: token } : {}) }),
        );
        for (const o of page.Contents ?? []) keys.push(o.Key!);
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return keys;
    } finally {
      client.destroy();
    }
  };

  it('writes a large file as chunks PUT straight to the bucket, and many small ones as packs', {
    timeout: 120_000,
  }, async () => {
    const mark = proxy.seen.length;
    await vol.files.write('/big.bin', big);
    await vol.files.writeMany(small);
    const puts = proxy.seen.slice(mark).filter((s) => s.method === 'PUT' && s.presigned);
    assert.ok(puts.length >= 3, `expected presigned PUTs of 2 chunks and a pack, saw ${puts.length}`);
    const keys = await objectKeys();
    assert.ok(
      keys.some((k) => k.startsWith('chunks/')),
      `chunk objects in the bucket: ${keys.join(', ')}`,
    );
    assert.ok(
      keys.some((k) => k.startsWith('packs/')),
      `pack objects in the bucket: ${keys.join(', ')}`,
    );
  });

  it('reads files back through presigned GETs, ranged for packed chunks', { timeout: 120_000 }, async () => {
    const mark = proxy.seen.length;
    assert.equal(sha(await vol.files.read('/big.bin')), sha(big));
    for (const f of small.filter((_, i) => i % 10 === 3)) assert.deepEqual(await vol.files.read(f.path), f.data);
    const gets = proxy.seen.slice(mark).filter((s) => s.method === 'GET' && s.presigned);
    assert.ok(gets.length >= 2 + 12, `presigned GETs: ${gets.length}`);
    assert.ok(
      gets.some((g) => g.path.includes('/packs/') && g.range !== undefined),
      'packed chunks are read with a Range',
    );
    // A range read of the large file through the server's content endpoint (the server reads the bucket itself).
    assert.deepEqual(
      await vol.files.read('/big.bin', { range: { start: 8 * MiB - 10, end: 8 * MiB + 9 } }),
      big.subarray(8 * MiB - 10, 8 * MiB + 10),
    );
  });

  it('never serves blob bytes itself: /v1/blobs does not exist', async () => {
    const res = await fetch(`${server.url}/v1/blobs/chunks/ab/cd`);
    assert.equal(res.status, 404);
  });

  it('downloads an archive of the volume', { timeout: 120_000 }, async () => {
    const out = join(dataDir, 'vol.tar');
    const r = await vol.download('/', out, { archive: 'tar' });
    assert.equal(r.kind, 'archive');
    const tar = await readFile(out);
    // The tar holds the large file's bytes and a packed small file's bytes.
    assert.ok(tar.includes(big.subarray(5 * MiB, 5 * MiB + 4096)));
    assert.ok(tar.includes(small[57]!.data));
  });

  it('gc deletes unreferenced chunk and pack objects from the bucket', { timeout: 120_000 }, async () => {
    const before = await objectKeys();
    await vol.files.remove('/big.bin');
    await vol.files.remove('/small', { recursive: true });
    // As `stowage gc --blobs s3://...` does: the operator's own engine over the same stores, here with a clock 3 h ahead so nothing is inside the grace period.
    const metadata = await openMetadataStore(join(dataDir, METADATA_FILE));
    const blobs = await openBlobStore(motoBlobUrl(moto.endpoint, bucket));
    const report = await createEngine({ metadata, blobs, now: () => new Date(Date.now() + 3 * 3600_000) })
      .gc({ retention: 0 })
      .finally(async () => {
        await blobs.close();
        await metadata.close();
      });
    assert.ok(report.deletedObjects >= 3, `deleted objects: ${report.deletedObjects}`);
    const afterKeys = await objectKeys();
    assert.equal(before.length - afterKeys.length, report.deletedObjects);
    assert.ok(
      !afterKeys.some((k) => k.startsWith('chunks/') || k.startsWith('packs/')),
      `left: ${afterKeys.join(', ')}`,
    );
  });

  it('refuses the dedupe proof-of-ownership attack on the S3 store (moto does not check checksums: the server re-hashes)', {
    timeout: 120_000,
  }, async () => {
    await runOwnershipAttack({ url: server.url, token: server.adminToken!, engine: server.engine }, 's3', false);
  });

  it('refuses to start on a missing bucket, naming --blobs and hiding the secret', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-s3-e2e-bad-'));
    try {
      const url = motoBlobUrl(moto.endpoint, 'no-such-bucket', { secretAccessKey: 'VERY-SECRET' });
      await assert.rejects(
        () => startServer({ dataDir: dir, port: 0, host: '127.0.0.1', blobUrl: url, log: () => undefined }),
        (err: Error) => {
          assert.match(
            err.message,
            /^--blobs s3:\/\/no-such-bucket\?.*cannot use S3 bucket "no-such-bucket" at http:\/\/127\.0\.0\.1:\d+: NoSuchBucket/,
          );
          assert.ok(!err.message.includes('VERY-SECRET'));
          return true;
        },
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
