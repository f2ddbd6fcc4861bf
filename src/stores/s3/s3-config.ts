/**
 * @module s3-config
 * What an S3BlobStore is opened with: its options, their defaults and bounds,
 * the `s3://` URL they are parsed from, and the SDK client built from them.
 * Nothing here does I/O.
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
 */
import { S3Client, type S3ClientConfig } from '@aws-sdk/client-s3';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { assertValidKey } from '../blob-store.js';

const MiB = 1024 * 1024;

/** Default bytes per multipart part (and the size above which put goes multipart). */
export const DEFAULT_PART_SIZE = 16 * MiB;
/** S3's smallest part (all but the last). */
export const MIN_PART_SIZE = 5 * MiB;
/** S3's largest part. */
export const MAX_PART_SIZE = 5 * 1024 * MiB;
/** Default attempts per request, the first included. */
export const DEFAULT_MAX_ATTEMPTS = 4;
/** Default idle timeout of a request, in ms. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** Default TCP connect timeout, in ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
/** Most keys a ListObjectsV2 page holds. */
export const MAX_LIST_PAGE = 1000;

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

/** Options checked and defaulted, with the client they configure. */
export interface S3Setup {
  bucket: string;
  prefix: string;
  /** Where the store is, for messages: endpoint (or "AWS S3 <region>") and bucket, never credentials. */
  where: string;
  partSize: number;
  listPageSize: number;
  client: S3Client;
}

/** Checks `options` (InvalidArgumentError naming the bad one) and builds the client; does no I/O. */
export function setUpS3(options: S3BlobStoreOptions): S3Setup {
  const { bucket } = options;
  if (typeof bucket !== 'string' || !/^[a-zA-Z0-9][a-zA-Z0-9._-]{1,254}$/.test(bucket)) {
    throw new InvalidArgumentError(`invalid S3 bucket name ${JSON.stringify(String(bucket))}`);
  }
  const prefix = options.prefix ?? '';
  if (prefix !== '') assertValidKey(prefix);
  const partSize = options.partSize ?? DEFAULT_PART_SIZE;
  if (!Number.isSafeInteger(partSize) || partSize < MIN_PART_SIZE || partSize > MAX_PART_SIZE) {
    throw new InvalidArgumentError(`invalid S3 partSize ${options.partSize}: expected ${MIN_PART_SIZE} to ${MAX_PART_SIZE} bytes`);
  }
  const listPageSize = options.listPageSize ?? MAX_LIST_PAGE;
  if (!Number.isSafeInteger(listPageSize) || listPageSize < 1 || listPageSize > MAX_LIST_PAGE) {
    throw new InvalidArgumentError(`invalid S3 listPageSize ${options.listPageSize}: expected 1 to ${MAX_LIST_PAGE}`);
  }
  const maxAttempts = options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 20) throw new InvalidArgumentError(`invalid S3 maxAttempts ${options.maxAttempts}: expected 1 to 20`);
  const region = options.region ?? process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? 'us-east-1';
  const where = `${options.endpoint ?? `AWS S3 (${region})`}`;
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
  return { bucket, prefix, where, partSize, listPageSize, client: new S3Client(config) };
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
