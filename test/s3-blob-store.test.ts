/**
 * @module s3-blob-store.test
 * The S3 store runs the BlobStore conformance suite unchanged against a real
 * S3-compatible endpoint (moto_server, one bucket per test), then the checks
 * only S3 needs: presigned requests sent the way the SDK sends them,
 * multipart, list pagination, retries through a faulty proxy, and clear
 * errors for a missing bucket or bad settings.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { GetObjectCommand, HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { getSigned as getWire, putSigned as putWire, type BodySource, type TransferOptions } from '@stowage/sdk/client/transfer.js';
import type { SignedRequest } from '../src/stores/blob-store.js';
import { runBlobStoreConformance } from '../src/stores/blob-store.conformance.js';
import { blobStoreServedByServer, openBlobStore, redactUrl } from '../src/stores/registry.js';
import { createBucket, deleteBucket, forwardTo, listenOnLoopback, MOTO_CREDENTIALS, MOTO_REGION, motoBlobUrl, startMoto, type Moto } from './helpers/moto.js';
import { S3BlobStore, s3OptionsFromUrl, type S3BlobStoreOptions } from '../src/stores/s3/s3-blob-store.js';

const MiB = 1024 * 1024;

/** Sends a store's signed PUT exactly as the SDK does (src/sdk/transfer.ts). */
const putSigned = (req: SignedRequest, size: number, body: BodySource, o: TransferOptions) => putWire({ ...req, expiresAt: req.expiresAt.toISOString() }, size, body, o);
/** Sends a store's signed GET exactly as the SDK does. */
const getSigned = (req: SignedRequest, o: TransferOptions) => getWire({ ...req, expiresAt: req.expiresAt.toISOString() }, o);

let moto: Moto;
before(async () => {
  moto = await startMoto();
});
after(async () => {
  await moto?.stop();
});

runBlobStoreConformance('s3 (moto)', async () => {
  const bucket = await createBucket(moto.endpoint);
  const store = await S3BlobStore.open({ bucket, endpoint: moto.endpoint, region: 'us-east-1', forcePathStyle: true, credentials: MOTO_CREDENTIALS });
  return { store, cleanup: () => deleteBucket(moto.endpoint, bucket) };
});

/** Bytes to the hex SHA-256. */
function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

function pattern(length: number, seed = 0): Buffer {
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed * 7 + (i >> 8)) & 0xff;
  return b;
}

/** What a proxy hook decides for one request: forward it, or answer it here. */
type Verdict = { status: number; body?: string; headers?: Record<string, string> } | 'forward' | { delayMs: number };

/**
 * A tiny HTTP proxy in front of moto. `hook` sees each request (with its
 * whole body) and may answer it itself (faults, refusals) or delay it;
 * everything else is forwarded unchanged.
 */
async function startProxy(target: string, hook: (req: IncomingMessage, body: Buffer, n: number) => Verdict | Promise<Verdict>): Promise<{ endpoint: string; requests: () => number; close(): Promise<void> }> {
  const t = new URL(target);
  let n = 0;
  const server = createServer((req, res) => {
    const parts: Buffer[] = [];
    req.on('data', (d: Buffer) => parts.push(d));
    req.on('end', () => {
      void (async () => {
        const body = Buffer.concat(parts);
        const verdict = await hook(req, body, ++n);
        if (verdict !== 'forward' && 'delayMs' in verdict) await sleep(verdict.delayMs);
        else if (verdict !== 'forward') {
          res.writeHead(verdict.status, { 'content-type': 'application/xml', ...verdict.headers });
          res.end(req.method === 'HEAD' ? undefined : verdict.body ?? '');
          return;
        }
        if (!res.destroyed) forwardTo(t, req, res, body);
      })();
    });
  });
  const endpoint = await listenOnLoopback(server);
  return {
    endpoint,
    requests: () => n,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

const s3Error = (code: string, status: number) => ({ status, body: `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${code}</Message><RequestId>test</RequestId></Error>` });

describe('S3BlobStore', () => {
  let bucket: string;
  let store: S3BlobStore;
  const opts = (extra: Partial<S3BlobStoreOptions> = {}): S3BlobStoreOptions => ({ bucket, endpoint: moto.endpoint, region: MOTO_REGION, forcePathStyle: true, credentials: MOTO_CREDENTIALS, ...extra });

  beforeEach(async () => {
    bucket = await createBucket(moto.endpoint);
    store = await S3BlobStore.open(opts());
  });
  afterEach(async () => {
    await store.close();
    await deleteBucket(moto.endpoint, bucket);
  });

  describe('signed requests sent as the SDK sends them', () => {
    it('a presigned PUT binds content-length and x-amz-checksum-sha256, and round-trips through putSigned/getSigned', async () => {
      const data = pattern(100_000, 1);
      const req = await store.sign('chunks/ab/abc', 'PUT', { expiresIn: 120, sha256: sha256(data), size: data.length });
      const url = new URL(req.url);
      assert.equal(url.origin, moto.endpoint, 'bytes go straight to the object store');
      assert.equal(url.searchParams.get('X-Amz-Expires'), '120');
      assert.deepEqual(url.searchParams.get('X-Amz-SignedHeaders')?.split(';').sort(), ['content-length', 'host', 'x-amz-checksum-sha256']);
      assert.deepEqual(req.headers, { 'content-length': String(data.length), 'x-amz-checksum-sha256': Buffer.from(sha256(data), 'hex').toString('base64') });
      await putSigned(req, data.length, () => data, { baseUrl: 'http://unused.invalid' });
      const get = await store.sign('chunks/ab/abc', 'GET', { expiresIn: 120 });
      assert.deepEqual(await getSigned(get, { baseUrl: 'http://unused.invalid' }), data);
      // A ranged signed GET, as pack reads send it.
      const ranged = { ...get, headers: { ...get.headers, range: 'bytes=1000-1999' } };
      assert.deepEqual(await getSigned(ranged, { baseUrl: 'http://unused.invalid' }), data.subarray(1000, 2000));
    });

    it('the signature covers the terms: another size, checksum, key, method or expiry signs differently', async () => {
      // moto does not check presigned signatures, so check the binding itself: re-signing at the same instant with other terms changes the signature.
      const data = pattern(10, 2);
      const at = new Date();
      const sig = async (client: S3Client, key: string, size: number, sum: string, method: 'GET' | 'PUT' = 'PUT', expiresIn = 60) => {
        const cmd = method === 'GET' ? new GetObjectCommand({ Bucket: bucket, Key: key }) : new PutObjectCommand({ Bucket: bucket, Key: key, ContentLength: size, ChecksumSHA256: sum });
        const url = await getSignedUrl(client, cmd, { expiresIn, signingDate: at, signableHeaders: new Set(['content-length', 'x-amz-checksum-sha256']), unhoistableHeaders: new Set(['x-amz-checksum-sha256']) });
        return new URL(url).searchParams.get('X-Amz-Signature');
      };
      const sum = Buffer.from(sha256(data), 'hex').toString('base64');
      const other = Buffer.from(sha256(pattern(10, 3)), 'hex').toString('base64');
      const base = await sig(store.client, 'k', 10, sum);
      assert.equal(await sig(store.client, 'k', 10, sum), base);
      const variants = [await sig(store.client, 'k', 11, sum), await sig(store.client, 'k', 10, other), await sig(store.client, 'k2', 10, sum), await sig(store.client, 'k', 10, sum, 'GET'), await sig(store.client, 'k', 10, sum, 'PUT', 61)];
      for (const v of variants) assert.notEqual(v, base);
    });

    it('a PUT with the wrong size, wrong bytes or past its expiry is refused by a store that checks (AWS semantics)', async () => {
      // moto checks neither signatures, expiry nor checksums: a proxy in front of it checks them the way AWS S3 does, re-deriving the signature with the same credentials.
      const strict = await startProxy(moto.endpoint, async (req, body) => {
        const url = new URL(req.url ?? '/', 'http://x');
        const sigParam = url.searchParams.get('X-Amz-Signature');
        if (!sigParam) return 'forward';
        const amzDate = url.searchParams.get('X-Amz-Date')!;
        const signingDate = new Date(amzDate.replace(/^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/, '$1-$2-$3T$4:$5:$6Z'));
        const expires = Number(url.searchParams.get('X-Amz-Expires'));
        if (Date.now() > signingDate.getTime() + expires * 1000) return s3Error('AccessDenied', 403);
        const [, bkt, ...rest] = url.pathname.split('/');
        const key = decodeURIComponent(rest.join('/'));
        const signed = new Set(url.searchParams.get('X-Amz-SignedHeaders')!.split(';'));
        const sum = req.headers['x-amz-checksum-sha256'] as string | undefined;
        const length = Number(req.headers['content-length']);
        const range = req.headers['range'] as string | undefined;
        const cmd = req.method === 'GET' ? new GetObjectCommand({ Bucket: bkt, Key: key, ...(signed.has('range') ? { Range: range ?? '' } : {}) }) : new PutObjectCommand({ Bucket: bkt, Key: key, ...(signed.has('content-length') ? { ContentLength: length } : {}), ...(signed.has('x-amz-checksum-sha256') && sum ? { ChecksumSHA256: sum } : {}) });
        const verifier = new S3Client({ endpoint: strict.endpoint, region: MOTO_REGION, forcePathStyle: true, credentials: MOTO_CREDENTIALS, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
        const again = new URL(await getSignedUrl(verifier, cmd, { expiresIn: expires, signingDate, signableHeaders: new Set([...signed].filter((h) => h !== 'host')), unhoistableHeaders: new Set(['x-amz-checksum-sha256', 'range']) }));
        verifier.destroy();
        if (again.searchParams.get('X-Amz-Signature') !== sigParam) return s3Error('SignatureDoesNotMatch', 403);
        if (sum !== undefined && createHash('sha256').update(body).digest('base64') !== sum) return s3Error('BadDigest', 400);
        return 'forward';
      });
      try {
        const proxied = await S3BlobStore.open(opts({ endpoint: strict.endpoint }));
        const data = pattern(5000, 4);
        const terms = { expiresIn: 60, sha256: sha256(data), size: data.length };
        const base = { baseUrl: 'http://unused.invalid', attempts: 1 };
        // The honest request passes the strict checks.
        await putSigned(await proxied.sign('ok/key', 'PUT', terms), data.length, () => data, base);
        assert.equal((await store.head('ok/key'))?.size, 5000);
        // Wrong size: a longer body with its own length breaks the signed content-length.
        const longer = Buffer.concat([data, Buffer.from('x')]);
        const r1 = await proxied.sign('bad/size', 'PUT', terms);
        await assert.rejects(() => putSigned({ ...r1, headers: { ...r1.headers, 'content-length': String(longer.length) } }, longer.length, () => longer, base), { code: 'Forbidden' });
        // Wrong bytes of the right length: the checksum header no longer matches them.
        const other = pattern(5000, 5);
        await assert.rejects(async () => putSigned(await proxied.sign('bad/bytes', 'PUT', terms), other.length, () => other, base), { code: 'InvalidArgument' });
        // Expired.
        const short = await proxied.sign('bad/expired', 'PUT', { ...terms, expiresIn: 1 });
        await sleep(2100);
        await assert.rejects(() => putSigned(short, data.length, () => data, base), { code: 'Forbidden' });
        for (const key of ['bad/size', 'bad/bytes', 'bad/expired']) assert.equal(await store.head(key), undefined, key);
        // A GET signed for a range (a chunk inside a pack) carries a signed range header: S3 serves that range or nothing.
        const ranged = await proxied.sign('ok/key', 'GET', { expiresIn: 60, range: { start: 100, end: 199 } });
        assert.deepEqual(ranged.headers, { range: 'bytes=100-199' });
        assert.ok(new URL(ranged.url).searchParams.get('X-Amz-SignedHeaders')!.split(';').includes('range'));
        const got = await fetch(ranged.url, { headers: ranged.headers });
        assert.equal(got.status, 206);
        assert.deepEqual(Buffer.from(await got.arrayBuffer()), data.subarray(100, 200));
        for (const headers of [{}, { range: 'bytes=0-4999' }, { range: 'bytes=100-200' }, { range: 'bytes=200-299' }] as Array<Record<string, string>>) {
          assert.equal((await fetch(ranged.url, { headers })).status, 403, JSON.stringify(headers));
        }
        await proxied.close();
      } finally {
        await strict.close();
      }
    });
  });

  it('puts an object over partSize by multipart, and aborts a failed one leaving nothing', { timeout: 120_000 }, async () => {
    const data = Buffer.concat([pattern(17 * MiB, 6), pattern(12345, 7)]);
    const info = await store.put('big/multi', Readable.from([data.subarray(0, 3 * MiB), data.subarray(3 * MiB)]), { sha256: sha256(data), size: data.length });
    assert.equal(info.size, data.length);
    const head = await store.client.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/multi' }));
    assert.match(head.ETag ?? '', /-2"?$/, 'a two-part multipart ETag');
    assert.equal(sha256(Buffer.concat(await (await store.get('big/multi')).toArray())), sha256(data));
    assert.deepEqual(Buffer.concat(await (await store.get('big/multi', { start: 16 * MiB - 5, end: 16 * MiB + 4 })).toArray()), data.subarray(16 * MiB - 5, 16 * MiB + 5));

    await assert.rejects(() => store.put('big/bad', data, { sha256: sha256(pattern(1)) }), { code: 'InvalidArgument' });
    assert.equal(await store.head('big/bad'), undefined);
    const uploads = await store.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
    assert.deepEqual(uploads.Uploads ?? [], [], 'the failed multipart upload was aborted');
  });

  it('honours a key prefix inside the bucket', async () => {
    const scoped = await S3BlobStore.open(opts({ prefix: 'tenant-a/blobs' }));
    await scoped.put('x/1', pattern(3));
    assert.equal((await store.head('tenant-a/blobs/x/1'))?.size, 3);
    const keys: string[] = [];
    for await (const i of scoped.list('')) keys.push(i.key);
    assert.deepEqual(keys, ['x/1']);
    const req = await scoped.sign('x/1', 'GET', { expiresIn: 60 });
    assert.match(new URL(req.url).pathname, new RegExp(`^/${bucket}/tenant-a/blobs/x/1$`));
    await scoped.close();
  });

  it('lists over many pages in order', { timeout: 120_000 }, async () => {
    const paged = await S3BlobStore.open(opts({ listPageSize: 7 }));
    const keys = Array.from({ length: 1050 }, (_, i) => `p/${String(i).padStart(5, '0')}`);
    for (let i = 0; i < keys.length; i += 50) await Promise.all(keys.slice(i, i + 50).map((k) => store.put(k, pattern(1))));
    const seen: string[] = [];
    for await (const i of store.list('p/')) seen.push(i.key);
    assert.deepEqual(seen, keys, 'default pages of 1000');
    const small: string[] = [];
    for await (const i of paged.list('p/0001')) small.push(i.key);
    assert.deepEqual(small, keys.filter((k) => k.startsWith('p/0001')));
    await paged.close();
  });

  describe('faults', () => {
    it('retries 500s, SlowDown and a stalled answer, then succeeds', { timeout: 60_000 }, async () => {
      let failing = 0;
      const proxy = await startProxy(moto.endpoint, (_req, _body, n) => {
        if (failing > 0) {
          failing--;
          return n % 3 === 0 ? { delayMs: 1500 } : n % 2 === 0 ? s3Error('SlowDown', 503) : s3Error('InternalError', 500);
        }
        return 'forward';
      });
      const flaky = await S3BlobStore.open(opts({ endpoint: proxy.endpoint, maxAttempts: 4, timeoutMs: 500 }));
      try {
        const data = pattern(200_000, 8);
        for (const op of [
          () => flaky.put('f/a', data, { sha256: sha256(data) }),
          async () => assert.deepEqual(Buffer.concat(await (await flaky.get('f/a')).toArray()), data),
          async () => assert.equal((await flaky.head('f/a'))?.size, data.length),
          async () => {
            const keys: string[] = [];
            for await (const i of flaky.list('f/')) keys.push(i.key);
            assert.deepEqual(keys, ['f/a']);
          },
          () => flaky.delete('f/a'),
        ]) {
          failing = 2;
          const before = proxy.requests();
          await op();
          assert.equal(proxy.requests() - before, 3, 'two failed attempts, then one that succeeded');
        }
        assert.equal(await store.head('f/a'), undefined);
      } finally {
        await flaky.close();
        await proxy.close();
      }
    });

    it('a multipart put retries a failed part, and aborts an upload whose part keeps failing', { timeout: 60_000 }, async () => {
      let partFailures = 0;
      const proxy = await startProxy(moto.endpoint, (req) => {
        const isPart2 = req.method === 'PUT' && new URL(req.url ?? '/', 'http://x').searchParams.get('partNumber') === '2';
        if (isPart2 && partFailures > 0) {
          partFailures--;
          return s3Error('InternalError', 500);
        }
        return 'forward';
      });
      const flaky = await S3BlobStore.open(opts({ endpoint: proxy.endpoint, maxAttempts: 3, partSize: 5 * MiB }));
      try {
        const data = pattern(11 * MiB, 9);
        partFailures = 1;
        await flaky.put('mp/ok', data, { sha256: sha256(data) });
        assert.equal(partFailures, 0, 'part 2 failed once');
        assert.equal(sha256(Buffer.concat(await (await store.get('mp/ok')).toArray())), sha256(data));
        partFailures = 100;
        await assert.rejects(() => flaky.put('mp/down', data), { code: 'Unavailable' });
        assert.equal(await store.head('mp/down'), undefined);
        const uploads = await store.client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
        assert.deepEqual(uploads.Uploads ?? [], [], 'the failed upload was aborted');
      } finally {
        await flaky.close();
        await proxy.close();
      }
    });

    it('fails cleanly with Unavailable after its attempts, leaving no object', { timeout: 60_000 }, async () => {
      let down = false;
      const proxy = await startProxy(moto.endpoint, () => (down ? s3Error('InternalError', 500) : 'forward'));
      const flaky = await S3BlobStore.open(opts({ endpoint: proxy.endpoint, maxAttempts: 3 }));
      try {
        down = true;
        const before = proxy.requests();
        await assert.rejects(() => flaky.put('u/a', pattern(1000)), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'Unavailable');
          assert.match(err.message, /put of blob "u\/a"/);
          return true;
        });
        assert.equal(proxy.requests() - before, 3);
        await assert.rejects(() => flaky.get('u/a'), { code: 'Unavailable' });
        down = false;
        assert.equal(await store.head('u/a'), undefined);
      } finally {
        await flaky.close();
        await proxy.close();
      }
    });
  });

  describe('open', () => {
    it('names the bucket, endpoint and reason for a missing bucket, never the secret', async () => {
      const url = motoBlobUrl(moto.endpoint, 'no-such-bucket', { secretAccessKey: 'TOP-SECRET-VALUE' });
      await assert.rejects(() => openBlobStore(url), (err: Error & { code?: string }) => {
        assert.match(err.message, /cannot use S3 bucket "no-such-bucket" at http:\/\/127\.0\.0\.1:\d+: NoSuchBucket/);
        assert.equal(err.code, 'NotFound');
        assert.ok(!err.message.includes('TOP-SECRET-VALUE'));
        assert.ok(!String(err.stack).includes('TOP-SECRET-VALUE'));
        return true;
      });
      assert.ok(!redactUrl(url).includes('TOP-SECRET-VALUE'));
    });

    it('says the credentials are refused', async () => {
      const proxy = await startProxy(moto.endpoint, () => s3Error('InvalidAccessKeyId', 403));
      try {
        await assert.rejects(() => S3BlobStore.open(opts({ endpoint: proxy.endpoint })), (err: Error & { code?: string }) => {
          assert.match(err.message, new RegExp(`cannot use S3 bucket "${bucket}" at ${proxy.endpoint}: .*(credentials|InvalidAccessKeyId)`));
          assert.ok(!err.message.includes(MOTO_CREDENTIALS.secretAccessKey));
          return true;
        });
      } finally {
        await proxy.close();
      }
    });

    it('says the endpoint is unreachable', { timeout: 30_000 }, async () => {
      const closed = await startProxy(moto.endpoint, () => 'forward');
      const endpoint = closed.endpoint;
      await closed.close();
      await assert.rejects(() => S3BlobStore.open(opts({ endpoint, maxAttempts: 2 })), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'Unavailable');
        assert.match(err.message, new RegExp(`cannot use S3 bucket "${bucket}" at ${endpoint}: .*ECONNREFUSED`));
        return true;
      });
    });

    it('parses every URL parameter and refuses unknown ones', () => {
      const o = s3OptionsFromUrl(new URL('s3://bkt/some/prefix/?endpoint=http://h:9000/&region=auto&forcePathStyle=true&accessKeyId=A&secretAccessKey=S&sessionToken=T&maxAttempts=6&timeoutMs=1000&connectTimeoutMs=200&partSize=8388608&listPageSize=10'));
      assert.deepEqual(o, { bucket: 'bkt', prefix: 'some/prefix', endpoint: 'http://h:9000', region: 'auto', forcePathStyle: true, credentials: { accessKeyId: 'A', secretAccessKey: 'S', sessionToken: 'T' }, maxAttempts: 6, timeoutMs: 1000, connectTimeoutMs: 200, partSize: 8388608, listPageSize: 10 });
      assert.deepEqual(s3OptionsFromUrl(new URL('s3://bkt')), { bucket: 'bkt' });
      assert.throws(() => s3OptionsFromUrl(new URL('s3://bkt?endpont=http://h')), /unknown s3 URL parameter "endpont"/);
      assert.throws(() => s3OptionsFromUrl(new URL('s3://bkt?accessKeyId=A')), /both accessKeyId and secretAccessKey/);
      assert.throws(() => s3OptionsFromUrl(new URL('s3://bkt?forcePathStyle=maybe')), /forcePathStyle/);
      assert.throws(() => new S3BlobStore({ bucket: 'bkt', partSize: 1024 }), /partSize/);
      assert.equal(blobStoreServedByServer('s3://bkt?endpoint=http://h:9000'), false);
    });
  });
});
