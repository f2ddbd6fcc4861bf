/**
 * @module s3-blob-store
 * The scale-out BlobStore: one bucket (optionally a key prefix inside it) of
 * any S3-compatible object store (AWS S3, Cloudflare R2, MinIO, Ceph RGW),
 * through @aws-sdk/client-s3. Object `key` lives at `<prefix>/<key>`.
 * Clients move chunk bytes straight to and from the bucket through S3
 * presigned URLs (sign), so the Stowage server never carries them.
 *
 * The URL form and its parameters: s3-config.ts. Signed requests:
 * s3-presign.ts. Multipart puts: s3-multipart.ts. Error mapping: s3-errors.ts.
 *
 * Put: a body of at most `partSize` bytes is gathered in memory, metered
 * (size, SHA-256, maxSize) and then sent in one PutObject carrying its
 * SHA-256 (x-amz-checksum-sha256, which S3 verifies). A larger body goes by
 * multipart upload: parts are sent as they fill (one part uploading while the
 * next one fills, so a put holds at most two parts in memory), and the upload
 * is completed only once the whole body has passed the meter; on any failure
 * (mismatch, maxSize, a broken body) it is aborted. Either way an object whose
 * bytes break the put's terms never becomes visible, and S3 makes the new
 * object visible atomically. Incomplete uploads a crash leaves behind are
 * invisible; a bucket lifecycle rule `AbortIncompleteMultipartUpload` removes
 * them (see docs/operations.md).
 */
import { Readable } from 'node:stream';
import { DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { InvalidArgumentError, NotFoundError } from '@stowage/sdk/common/errors.js';
import { assertValidKey, isValidKey, type BlobBody, type BlobInfo, type BlobStore, type ByteRange, type PutOptions, type SignedRequest, type SignOptions } from '../blob-store.js';
import { BodyMeter, bodyChunks, checkPutOptions } from '../blob-store-checks.js';
import { s3OptionsFromUrl, setUpS3, type S3BlobStoreOptions } from './s3-config.js';
import { describeS3Error, mapError, sendS3, statusOf } from './s3-errors.js';
import { PartReader, putMultipart } from './s3-multipart.js';
import { presign } from './s3-presign.js';

// The options and their URL form are part of this backend's face (the registry and tests open stores by them).
export { s3OptionsFromUrl, type S3BlobStoreOptions } from './s3-config.js';

/** A BlobStore over one S3 bucket. */
export class S3BlobStore implements BlobStore {
  readonly bucket: string;
  readonly prefix: string;
  /** Where the store is, for messages: endpoint (or "AWS S3 <region>") and bucket, never credentials. */
  readonly where: string;
  readonly #client: S3Client;
  readonly #partSize: number;
  readonly #listPageSize: number;

  /** Does no I/O; prefer open(), which checks that the bucket is usable. */
  constructor(options: S3BlobStoreOptions) {
    const setup = setUpS3(options);
    this.bucket = setup.bucket;
    this.prefix = setup.prefix;
    this.where = setup.where;
    this.#partSize = setup.partSize;
    this.#listPageSize = setup.listPageSize;
    this.#client = setup.client;
  }

  /** Creates the store and checks that the bucket exists and the credentials may use it. */
  static async open(options: S3BlobStoreOptions): Promise<S3BlobStore> {
    const store = new S3BlobStore(options);
    try {
      await store.#client.send(new HeadBucketCommand({ Bucket: store.bucket }));
    } catch (err) {
      store.#client.destroy();
      const reason = describeS3Error(err);
      const mapped = mapError(err, `cannot use S3 bucket "${store.bucket}" at ${store.where}: ${reason}`);
      throw mapped;
    }
    return store;
  }

  /** The underlying client (tests and operator tools). */
  get client(): S3Client {
    return this.#client;
  }

  async put(key: string, body: BlobBody, options?: PutOptions): Promise<BlobInfo> {
    const objectKey = this.#objectKey(key);
    const checked = checkPutOptions(key, options);
    const meter = new BodyMeter(key, checked);
    const reader = new PartReader(bodyChunks(body), meter, this.#partSize);
    // Gather up to one part; a body that ends within it is one PutObject.
    const first = await reader.next();
    if (!first.more) {
      const data = first.data;
      const { sha256 } = meter.finish();
      await this.#send((c) => c.send(new PutObjectCommand({
        Bucket: this.bucket,
        Key: objectKey,
        Body: data,
        ContentLength: data.byteLength,
        ChecksumSHA256: Buffer.from(sha256, 'hex').toString('base64'),
      })), `put of blob "${key}"`);
      return { key, size: data.byteLength, lastModified: new Date() };
    }
    return putMultipart({ client: this.#client, bucket: this.bucket, key, objectKey, partSize: this.#partSize }, first.data, reader, meter);
  }

  async get(key: string, range?: ByteRange): Promise<Readable> {
    const objectKey = this.#objectKey(key);
    if (range !== undefined) checkRange(key, range);
    try {
      const res = await this.#client.send(new GetObjectCommand({
        Bucket: this.bucket,
        Key: objectKey,
        ...(range ? { Range: `bytes=${range.start}-${range.end ?? ''}` } : {}),
      }));
      const body = res.Body;
      if (body === undefined) return Readable.from([], { objectMode: false });
      if (body instanceof Readable) return body;
      return Readable.from(body as AsyncIterable<Uint8Array>, { objectMode: false });
    } catch (err) {
      if (statusOf(err) === 416 && range) {
        // S3 answers 416 to any range of an empty object; the contract serves it as no bytes.
        const info = await this.head(key);
        if (info === undefined) throw new NotFoundError(`blob ${JSON.stringify(key)} not found`);
        if (info.size === 0) return Readable.from([], { objectMode: false });
        throw new InvalidArgumentError(`range start ${range.start} is past the end of blob "${key}" (${info.size} bytes)`, { details: { start: range.start, size: info.size } });
      }
      throw mapError(err, `get of blob "${key}"`, key);
    }
  }

  async head(key: string): Promise<BlobInfo | undefined> {
    const objectKey = this.#objectKey(key);
    try {
      const res = await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: objectKey }));
      return { key, size: res.ContentLength ?? 0, lastModified: res.LastModified ?? new Date(0) };
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw mapError(err, `head of blob "${key}"`, key);
    }
  }

  async delete(key: string): Promise<void> {
    const objectKey = this.#objectKey(key);
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: objectKey }));
    } catch (err) {
      if (statusOf(err) === 404) return; // some S3-compatible stores answer 404 for a missing key
      throw mapError(err, `delete of blob "${key}"`, key);
    }
  }

  async *list(prefix: string): AsyncIterable<BlobInfo> {
    if (typeof prefix !== 'string') throw new InvalidArgumentError('list prefix must be a string');
    const full = this.prefix === '' ? prefix : `${this.prefix}/${prefix}`;
    const strip = this.prefix === '' ? 0 : this.prefix.length + 1;
    let token: string | undefined;
    do {
      const page = await this.#send((c) => c.send(new ListObjectsV2Command({
        Bucket: this.bucket,
        Prefix: full,
        MaxKeys: this.#listPageSize,
        ...(token ? { ContinuationToken: token } : {}),
      })), `list of blobs under "${prefix}"`);
      for (const o of page.Contents ?? []) {
        if (o.Key === undefined) continue;
        const key = o.Key.slice(strip);
        if (!isValidKey(key)) continue; // objects not written through a BlobStore are not ours
        yield { key, size: o.Size ?? 0, lastModified: o.LastModified ?? new Date(0) };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async sign(key: string, method: 'GET' | 'PUT', options: SignOptions): Promise<SignedRequest> {
    const objectKey = this.#objectKey(key);
    return presign(this.#client, this.bucket, objectKey, method, options);
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  /** Sends a command, mapping its failure to a StowageError naming `what`. */
  #send<O>(run: (client: S3Client) => Promise<O>, what: string): Promise<O> {
    return sendS3(this.#client, run, what);
  }

  #objectKey(key: string): string {
    assertValidKey(key);
    return this.prefix === '' ? key : `${this.prefix}/${key}`;
  }
}

/** Validates a range before asking the store (which cannot tell a bad range from a missing key). */
function checkRange(key: string, range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
    throw new InvalidArgumentError(`invalid byte range ${start}-${end ?? ''} for blob "${key}": expected 0 <= start <= end`);
  }
}

/** Opens the store an `s3://` URL names, checking the bucket. */
export function openS3BlobStore(url: URL): Promise<S3BlobStore> {
  return S3BlobStore.open(s3OptionsFromUrl(url));
}
