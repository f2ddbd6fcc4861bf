/**
 * @module s3-blob-store
 * The scale-out BlobStore: one bucket (optionally a key prefix inside it) of
 * any S3-compatible object store (AWS S3, Cloudflare R2, MinIO, Ceph RGW),
 * through @aws-sdk/client-s3. Object `key` lives at `<prefix>/<key>`.
 * Clients move chunk bytes straight to and from the bucket through S3
 * presigned URLs (sign), so the Stowage server never carries them.
 *
 * URL form (the `--blobs` setting):
 *
 *   s3://BUCKET[/PREFIX]?endpoint=URL&region=R&forcePathStyle=true
 *
 * Query parameters, all optional:
 * - `endpoint`: the S3 API origin, e.g. `http://127.0.0.1:9000` (MinIO) or
 *   `https://<account>.r2.cloudflarestorage.com` (R2). Default: AWS S3 of
 *   `region`.
 * - `region`: the signing region; default `AWS_REGION` / `AWS_DEFAULT_REGION`
 *   from the environment, else `us-east-1` (R2 wants `auto`).
 * - `forcePathStyle`: `true` for `http://host/bucket/key` addressing
 *   (MinIO, Ceph RGW, moto, any endpoint without wildcard DNS); default false
 *   (virtual-hosted `http://bucket.host/key`).
 * - `accessKeyId`, `secretAccessKey`, `sessionToken`: static credentials, for
 *   tests and quick setups. Without them the standard AWS chain is used
 *   (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`, `AWS_PROFILE` and
 *   ~/.aws files, SSO, web identity, container and instance roles). URLs are
 *   logged only through redactUrl, which hides the secret ones.
 * - `maxAttempts`: attempts per S3 request, the first included (default 4);
 *   throttling (429, SlowDown), 5xx and network errors are retried with the
 *   SDK's standard exponential backoff with jitter.
 * - `timeoutMs`: a request with no answer (or a stalled body) for this long
 *   fails and is retried (default 30000); `connectTimeoutMs` bounds TCP
 *   connect (default 5000).
 * - `partSize`: bytes per multipart part, and the size above which a put
 *   uses multipart (default 16 MiB, at least 5 MiB: S3's minimum part).
 * - `listPageSize`: keys per ListObjectsV2 page (default and maximum 1000).
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
 *
 * Sign: PUTs are presigned with `content-length` and, when known,
 * `x-amz-checksum-sha256` as signed headers, so S3 refuses any other length
 * or bytes; SignedRequest.headers lists both, and the client must send them
 * exactly. A GET signed for a byte range signs the `range` header the same
 * way, so the URL yields that range only (a chunk inside a pack).
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
  type CompletedPart,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { ForbiddenError, InternalError, InvalidArgumentError, NotFoundError, StowageError, UnauthenticatedError, UnavailableError } from '@stowage/sdk/common/errors.js';
import { assertValidKey, isValidKey, type BlobBody, type BlobInfo, type BlobStore, type ByteRange, type PutOptions, type SignedRequest, type SignOptions } from '../blob-store.js';
import { BodyMeter, bodyChunks, checkPutOptions, checkSignOptions, rangeHeader } from '../blob-store-checks.js';

const MiB = 1024 * 1024;

/** Default bytes per multipart part (and the size above which put goes multipart). */
export const DEFAULT_PART_SIZE = 16 * MiB;
/** S3's smallest part (all but the last). */
export const MIN_PART_SIZE = 5 * MiB;
/** S3's largest part. */
const MAX_PART_SIZE = 5 * 1024 * MiB;
/** S3's largest number of parts per upload. */
const MAX_PARTS = 10_000;
/** Default attempts per request, the first included. */
export const DEFAULT_MAX_ATTEMPTS = 4;
/** Default idle timeout of a request, in ms. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Default TCP connect timeout, in ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Most keys a ListObjectsV2 page holds. */
const MAX_LIST_PAGE = 1000;

/** Options of an S3BlobStore. */
export interface S3BlobStoreOptions {
  /** Bucket name. */
  bucket: string;
  /** Key prefix inside the bucket ("" or "a/b", no leading or trailing slash). */
  prefix?: string;
  /** S3 API origin; default AWS S3 of the region. */
  endpoint?: string;
  /** Signing region; default from the environment, else us-east-1. */
  region?: string;
  /** Path-style addressing (MinIO, Ceph RGW, moto). */
  forcePathStyle?: boolean;
  /** Static credentials; without them the standard AWS chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  /** Attempts per request, the first included (default 4). */
  maxAttempts?: number;
  /** Idle timeout per request, in ms (default 30000). */
  timeoutMs?: number;
  /** TCP connect timeout, in ms (default 5000). */
  connectTimeoutMs?: number;
  /** Bytes per multipart part; bodies larger than this go multipart (default 16 MiB, min 5 MiB). */
  partSize?: number;
  /** Keys per list page (default and max 1000). */
  listPageSize?: number;
}

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
    const { bucket } = options;
    if (typeof bucket !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9._-]{1,254}$/.test(bucket)) {
      throw new InvalidArgumentError(`invalid S3 bucket name ${JSON.stringify(String(bucket))}`);
    }
    this.bucket = bucket;
    const prefix = options.prefix ?? '';
    if (prefix !== '') assertValidKey(prefix);
    this.prefix = prefix;
    this.#partSize = options.partSize ?? DEFAULT_PART_SIZE;
    if (!Number.isSafeInteger(this.#partSize) || this.#partSize < MIN_PART_SIZE || this.#partSize > MAX_PART_SIZE) {
      throw new InvalidArgumentError(`invalid S3 partSize ${options.partSize}: expected ${MIN_PART_SIZE} to ${MAX_PART_SIZE} bytes`);
    }
    this.#listPageSize = options.listPageSize ?? MAX_LIST_PAGE;
    if (!Number.isSafeInteger(this.#listPageSize) || this.#listPageSize < 1 || this.#listPageSize > MAX_LIST_PAGE) {
      throw new InvalidArgumentError(`invalid S3 listPageSize ${options.listPageSize}: expected 1 to ${MAX_LIST_PAGE}`);
    }
    const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
    if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 20) throw new InvalidArgumentError(`invalid S3 maxAttempts ${options.maxAttempts}: expected 1 to 20`);
    const region = options.region ?? process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? 'us-east-1';
    this.where = `${options.endpoint ?? `AWS S3 (${region})`}`;
    const config: S3ClientConfig = {
      region,
      forcePathStyle: options.forcePathStyle ?? false,
      maxAttempts,
      retryMode: 'standard',
      // Checksums are ours to choose (SHA-256 on single puts); the SDK's default CRC32 trailers are not understood by every S3-compatible store.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      requestHandler: {
        requestTimeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
        connectionTimeout: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
        // A stalled request fails (and is retried) rather than only logging a warning.
        throwOnRequestTimeout: true,
      },
    };
    if (options.endpoint !== undefined) config.endpoint = options.endpoint;
    if (options.credentials) config.credentials = { ...options.credentials }; // a copy: the SDK annotates the object it is given
    this.#client = new S3Client(config);
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
    return this.#putMultipart(key, objectKey, first.data, reader, meter);
  }

  async #putMultipart(key: string, objectKey: string, firstPart: Buffer, reader: PartReader, meter: BodyMeter): Promise<BlobInfo> {
    const what = `multipart put of blob "${key}"`;
    const created = await this.#send((c) => c.send(new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey })), what);
    const uploadId = created.UploadId;
    if (!uploadId) throw new InternalError(`${what}: the object store returned no upload id`);
    const parts: CompletedPart[] = [];
    let inFlight: Promise<void> | undefined;
    const upload = (n: number, data: Buffer): Promise<void> =>
      this.#send((c) => c.send(new UploadPartCommand({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId, PartNumber: n, Body: data, ContentLength: data.byteLength })), what).then((r) => {
        parts[n - 1] = { PartNumber: n, ETag: r.ETag };
      });
    try {
      let n = 1;
      inFlight = upload(n, firstPart);
      for (;;) {
        const next = await reader.next();
        await inFlight; // at most one part uploading while the next fills
        inFlight = undefined;
        if (next.data.byteLength === 0 && !next.more) break;
        if (++n > MAX_PARTS) throw new InvalidArgumentError(`blob "${key}" needs more than ${MAX_PARTS} parts of ${this.#partSize} bytes: raise partSize`);
        inFlight = upload(n, next.data);
        if (!next.more) {
          await inFlight;
          inFlight = undefined;
          break;
        }
      }
      meter.finish();
      await this.#send((c) => c.send(new CompleteMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId, MultipartUpload: { Parts: parts } })), what);
      return { key, size: meter.size, lastModified: new Date() };
    } catch (err) {
      await inFlight?.catch(() => undefined);
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: objectKey, UploadId: uploadId })).catch(() => undefined);
      throw err;
    }
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
    const { expiresIn, sha256, size, range } = checkSignOptions(method, options);
    const seconds = Math.max(1, Math.floor(expiresIn));
    const expiresAt = new Date(Date.now() + seconds * 1000);
    if (method === 'GET' && range !== undefined) {
      // The range is a signed header (not hoisted into the query): S3 refuses the request unless it carries exactly
      // this Range, so the URL yields these bytes and no others.
      const value = rangeHeader(range);
      const url = await getSignedUrl(this.#client, new GetObjectCommand({ Bucket: this.bucket, Key: objectKey, Range: value }), {
        expiresIn: seconds, signableHeaders: new Set(['range']), unhoistableHeaders: new Set(['range']),
      });
      return { url, method, headers: { range: value }, expiresAt };
    }
    if (method === 'GET') {
      const url = await getSignedUrl(this.#client, new GetObjectCommand({ Bucket: this.bucket, Key: objectKey }), { expiresIn: seconds });
      return { url, method, headers: {}, expiresAt };
    }
    const headers: Record<string, string> = {};
    const signable = new Set<string>();
    if (size !== undefined) {
      headers['content-length'] = String(size);
      signable.add('content-length');
    }
    let checksum: string | undefined;
    if (sha256 !== undefined) {
      checksum = Buffer.from(sha256, 'hex').toString('base64');
      headers['x-amz-checksum-sha256'] = checksum;
      signable.add('x-amz-checksum-sha256');
    }
    const command = new PutObjectCommand({
      Bucket: this.bucket,
      Key: objectKey,
      ...(size !== undefined ? { ContentLength: size } : {}),
      ...(checksum !== undefined ? { ChecksumSHA256: checksum } : {}),
    });
    const url = await getSignedUrl(this.#client, command, {
      expiresIn: seconds,
      signableHeaders: signable,
      // Kept as headers (not hoisted into the query) so the store checks them against the body.
      unhoistableHeaders: new Set(['x-amz-checksum-sha256']),
    });
    return { url, method, headers, expiresAt };
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  /** Sends a command, mapping its failure to a StowageError naming `what`. */
  async #send<O>(run: (client: S3Client) => Promise<O>, what: string): Promise<O> {
    try {
      return await run(this.#client);
    } catch (err) {
      throw mapError(err, what);
    }
  }

  #objectKey(key: string): string {
    assertValidKey(key);
    return this.prefix === '' ? key : `${this.prefix}/${key}`;
  }
}

/** Cuts a metered body into parts of `limit` bytes; bytes read past a part's end start the next one. */
class PartReader {
  readonly #chunks: AsyncGenerator<Uint8Array>;
  readonly #meter: BodyMeter;
  readonly #limit: number;
  #leftover: Uint8Array | undefined;
  #ended = false;

  constructor(chunks: AsyncGenerator<Uint8Array>, meter: BodyMeter, limit: number) {
    this.#chunks = chunks;
    this.#meter = meter;
    this.#limit = limit;
  }

  /** The next part (up to `limit` bytes) and whether the body may go on after it. */
  async next(): Promise<{ data: Buffer; more: boolean }> {
    const parts: Uint8Array[] = [];
    let size = 0;
    if (this.#leftover) {
      parts.push(this.#leftover);
      size = this.#leftover.byteLength;
      this.#leftover = undefined;
    }
    while (size < this.#limit && !this.#ended) {
      const { value, done } = await this.#chunks.next();
      if (done) {
        this.#ended = true;
        break;
      }
      this.#meter.add(value);
      parts.push(value);
      size += value.byteLength;
    }
    const data = concat(parts, size);
    if (size > this.#limit) {
      this.#leftover = data.subarray(this.#limit);
      return { data: data.subarray(0, this.#limit), more: true };
    }
    return { data, more: !this.#ended };
  }
}

function concat(parts: Uint8Array[], size: number): Buffer {
  if (parts.length === 1) return Buffer.from(parts[0]!.buffer, parts[0]!.byteOffset, parts[0]!.byteLength);
  return Buffer.concat(parts, size);
}

/** Validates a range before asking the store (which cannot tell a bad range from a missing key). */
function checkRange(key: string, range: ByteRange): void {
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
    throw new InvalidArgumentError(`invalid byte range ${start}-${end ?? ''} for blob "${key}": expected 0 <= start <= end`);
  }
}

function statusOf(err: unknown): number | undefined {
  if (err instanceof S3ServiceException) return err.$metadata?.httpStatusCode;
  const meta = (err as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata;
  return meta?.httpStatusCode;
}

/** Names the SDK gives errors it could not read a code for (HEAD answers have no body). */
const GENERIC_NAMES = new Set(['Unknown', 'UnknownError', 'NotFound', 'Forbidden', 'BadRequest', 'MovedPermanently']);

/** A short reason for an S3 failure: the error code (NoSuchBucket, InvalidAccessKeyId…) or the network error, never a credential. */
export function describeS3Error(err: unknown): string {
  if (err instanceof StowageError) return err.message;
  const status = statusOf(err);
  const name = (err as { name?: string } | undefined)?.name;
  const code = (err as { code?: string } | undefined)?.code;
  if (status !== undefined) {
    // HEAD answers carry no body, so the SDK names the error after the status: give it a readable name.
    const byStatus: Record<number, string> = { 301: 'wrong region or endpoint (301 redirect)', 400: 'bad request (400)', 403: 'access denied: wrong credentials or no permission (403)', 404: 'NoSuchBucket (404)' };
    if (name && !GENERIC_NAMES.has(name) && !/^\d+$/.test(name)) return `${name} (${status})`;
    return byStatus[status] ?? `HTTP ${status}`;
  }
  if (code) return `${code}${err instanceof Error && err.message && !err.message.includes(code) ? `: ${err.message}` : ''}`;
  if (name === 'TimeoutError') return 'timed out';
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err);
}

/** Maps an SDK failure to the StowageError of the contract. */
function mapError(err: unknown, what: string, key?: string): StowageError {
  if (err instanceof StowageError) return err;
  const status = statusOf(err);
  const reason = describeS3Error(err);
  const message = what.includes(reason) ? what : `${what}: ${reason}`;
  const opts = { cause: err };
  if (status === 404 && key !== undefined) return new NotFoundError(`blob ${JSON.stringify(key)} not found`, opts);
  if (status === 404) return new NotFoundError(message, opts);
  if (status === 401 || (status === 403 && /InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|InvalidToken/.test(reason))) return new UnauthenticatedError(message, opts);
  if (status === 403) return new ForbiddenError(message, opts);
  if (status === 400 && /BadDigest|InvalidDigest|XAmzContentSHA256Mismatch|InvalidRequest/.test(reason)) return new InvalidArgumentError(message, opts);
  if (status === 416) return new InvalidArgumentError(message, opts);
  if (status === undefined || status === 408 || status === 429 || status >= 500) return new UnavailableError(message, opts);
  return new InternalError(message, opts);
}

/** Hashes bytes to hex SHA-256 (tests, tools). */
export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

const TRUE = new Set(['1', 'true', 'yes']);
const FALSE = new Set(['0', 'false', 'no', '']);

/**
 * Parses an `s3://BUCKET[/PREFIX]?...` URL into store options (see the module
 * doc for the parameters). Unknown parameters are refused, so a typo never
 * silently falls back to a default.
 */
export function s3OptionsFromUrl(url: URL): S3BlobStoreOptions {
  if (url.protocol !== 's3:') throw new InvalidArgumentError(`not an s3:// URL: ${url.protocol}`);
  const bucket = decodeURIComponent(url.hostname);
  if (bucket === '') throw new InvalidArgumentError('s3 URL names no bucket: use s3://BUCKET[/prefix]?endpoint=...');
  if (url.username || url.password) throw new InvalidArgumentError('s3 URL must not carry user:password; use accessKeyId and secretAccessKey parameters or the AWS credential chain');
  const prefix = decodeURIComponent(url.pathname).replace(/^\/+|\/+$/g, '');
  const options: S3BlobStoreOptions = { bucket, ...(prefix ? { prefix } : {}) };
  const q = url.searchParams;
  const known = new Set(['endpoint', 'region', 'forcePathStyle', 'accessKeyId', 'secretAccessKey', 'sessionToken', 'maxAttempts', 'timeoutMs', 'connectTimeoutMs', 'partSize', 'listPageSize']);
  for (const name of q.keys()) {
    if (!known.has(name)) throw new InvalidArgumentError(`unknown s3 URL parameter ${JSON.stringify(name)}; known: ${[...known].join(', ')}`);
  }
  const int = (name: string): number | undefined => {
    const v = q.get(name);
    if (v === null) return undefined;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n <= 0) throw new InvalidArgumentError(`s3 URL parameter ${name} must be a positive whole number, got ${JSON.stringify(v)}`);
    return n;
  };
  const endpoint = q.get('endpoint');
  if (endpoint !== null) {
    let parsed: URL;
    try {
      parsed = new URL(endpoint);
    } catch {
      throw new InvalidArgumentError(`s3 URL parameter endpoint is not a URL: ${JSON.stringify(endpoint)}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw new InvalidArgumentError(`s3 endpoint must be http:// or https://, got ${JSON.stringify(endpoint)}`);
    options.endpoint = endpoint.replace(/\/+$/, '');
  }
  const region = q.get('region');
  if (region !== null && region !== '') options.region = region;
  const fps = q.get('forcePathStyle');
  if (fps !== null) {
    if (TRUE.has(fps.toLowerCase())) options.forcePathStyle = true;
    else if (FALSE.has(fps.toLowerCase())) options.forcePathStyle = false;
    else throw new InvalidArgumentError(`s3 URL parameter forcePathStyle must be true or false, got ${JSON.stringify(fps)}`);
  }
  const accessKeyId = q.get('accessKeyId');
  const secretAccessKey = q.get('secretAccessKey');
  if ((accessKeyId === null) !== (secretAccessKey === null)) throw new InvalidArgumentError('s3 URL needs both accessKeyId and secretAccessKey, or neither (then the AWS credential chain is used)');
  if (accessKeyId !== null && secretAccessKey !== null) {
    const sessionToken = q.get('sessionToken');
    options.credentials = { accessKeyId, secretAccessKey, ...(sessionToken ? { sessionToken } : {}) };
  }
  const maxAttempts = int('maxAttempts');
  if (maxAttempts !== undefined) options.maxAttempts = maxAttempts;
  const timeoutMs = int('timeoutMs');
  if (timeoutMs !== undefined) options.timeoutMs = timeoutMs;
  const connectTimeoutMs = int('connectTimeoutMs');
  if (connectTimeoutMs !== undefined) options.connectTimeoutMs = connectTimeoutMs;
  const partSize = int('partSize');
  if (partSize !== undefined) options.partSize = partSize;
  const listPageSize = int('listPageSize');
  if (listPageSize !== undefined) options.listPageSize = listPageSize;
  return options;
}

/** Opens the store an `s3://` URL names, checking the bucket. */
export function openS3BlobStore(url: URL): Promise<S3BlobStore> {
  return S3BlobStore.open(s3OptionsFromUrl(url));
}
