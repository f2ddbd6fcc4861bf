/**
 * @module url-signer
 * Signed URLs for blob stores that cannot sign their own (the local
 * directory, the in-memory store): the Stowage server serves them at
 * `/v1/blobs/<key>`, playing the part S3 presigned URLs play for an S3 store.
 *
 * A signed URL carries its terms in the query: the method, the expiry (unix
 * seconds), optionally the SHA-256 and size a PUT must have or the byte range
 * a GET may read, and an HMAC-SHA256 signature. The *string to sign* starts
 * with a version tag and holds method, key, expiry, sha256, size and range one
 * per line, so a signature is bound to one key and one method and its terms
 * cannot be changed (no other key, no other method, no longer expiry, no other
 * checksum, no other bytes of the object).
 *
 * @example
 * const signer = new UrlSigner({ secret, baseUrl: () => `http://127.0.0.1:${port}` });
 * const req = signer.sign('chunks/ab/abcd', 'PUT', { expiresIn: 900, sha256, size });
 * // server route PUT /v1/blobs/*:
 * const { sha256, size } = signer.verify({ method: 'PUT', key, query: url.searchParams });
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { ForbiddenError, InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { assertValidKey, type SignedRequest, type SignOptions } from '../blob-store.js';
import { checkSignOptions, rangeHeader } from '../blob-store-checks.js';

/** First line of every string to sign; bump it when the format changes so old signatures stop verifying. */
export const SIGNED_URL_VERSION = 'stowage-url:v2';

/** Path under the base URL where the server serves signed blob requests; the key follows it. */
export const SIGNED_URL_PATH = '/v1/blobs/';

/** Names of the query parameters of a signed URL. */
export const SIGNED_URL_PARAMS = {
  method: 'X-Stowage-Method',
  expires: 'X-Stowage-Expires',
  sha256: 'X-Stowage-Sha256',
  size: 'X-Stowage-Size',
  range: 'X-Stowage-Range',
  signature: 'X-Stowage-Signature',
} as const;

/** Shortest secret accepted: HMAC keys shorter than this are guessable. */
const MIN_SECRET_BYTES = 16;

/** Options of a UrlSigner. */
export interface UrlSignerOptions {
  /** HMAC key; use 32 random bytes and keep it the same across restarts and replicas. */
  secret: Buffer | string;
  /** Origin the server listens on, e.g. `http://127.0.0.1:7420`; a function because the port may be known only after listen. */
  baseUrl: string | (() => string);
}

/** What the server passes to verify for one incoming request. */
export interface VerifyInput {
  /** The HTTP method of the request. */
  method: string;
  /** The blob key from the request path (after `/v1/blobs/`, URL-decoded). */
  key: string;
  /** The request's query string. */
  query: URLSearchParams;
  /** The time to check the expiry against; defaults to now. */
  now?: Date;
}

/** The terms of a verified request: what a PUT must meet (pass them to BlobStore.put), the bytes a GET may read. */
export interface SignedTerms {
  sha256?: string;
  size?: number;
  /** Inclusive; a GET signed with a range may read nothing outside it. */
  range?: { start: number; end: number };
}

/** Signs and verifies URLs for one secret. */
export class UrlSigner {
  readonly #secret: Buffer;
  readonly #baseUrl: () => string;

  /** Throws InvalidArgumentError for a secret shorter than 16 bytes. */
  constructor(options: UrlSignerOptions) {
    const secret =
      typeof options.secret === 'string' ? Buffer.from(options.secret, 'utf8') : Buffer.from(options.secret);
    if (secret.length < MIN_SECRET_BYTES) {
      throw new InvalidArgumentError(
        `URL signing secret is ${secret.length} bytes; use at least ${MIN_SECRET_BYTES} (32 random bytes recommended, e.g. \`openssl rand -hex 32\`)`,
      );
    }
    this.#secret = secret;
    const { baseUrl } = options;
    this.#baseUrl = typeof baseUrl === 'function' ? baseUrl : () => baseUrl;
  }

  /** Returns a URL that lets its holder make exactly this request until `now + expiresIn`. */
  sign(key: string, method: 'GET' | 'PUT', options: SignOptions, now: Date = new Date()): SignedRequest {
    assertValidKey(key);
    const { expiresIn, sha256, size, range } = checkSignOptions(method, options);
    // Rounded up to whole seconds so the URL never lives shorter than asked.
    const expires = Math.ceil(now.getTime() / 1000 + expiresIn);
    const p = SIGNED_URL_PARAMS;
    const query = new URLSearchParams();
    query.set(p.method, method);
    query.set(p.expires, String(expires));
    if (sha256 !== undefined) query.set(p.sha256, sha256);
    if (size !== undefined) query.set(p.size, String(size));
    const span = range === undefined ? undefined : `${range.start}-${range.end}`;
    if (span !== undefined) query.set(p.range, span);
    query.set(
      p.signature,
      this.#mac(method, key, String(expires), sha256, size === undefined ? undefined : String(size), span),
    );
    const base = this.#baseUrl().replace(/\/+$/, '');
    // Key segments are [A-Za-z0-9._-] only, so the key needs no escaping in a path.
    // The range travels as a header too, as with S3, so one client code path serves both stores.
    const headers: Record<string, string> = range === undefined ? {} : { range: rangeHeader(range) };
    return {
      url: `${base}${SIGNED_URL_PATH}${key}?${query.toString()}`,
      method,
      headers,
      expiresAt: new Date(expires * 1000),
    };
  }

  /** Checks a request against its signed URL; returns the terms a PUT must meet, or throws ForbiddenError saying why not. */
  verify(input: VerifyInput): SignedTerms {
    const { method, key, query } = input;
    const now = input.now ?? new Date();
    const p = SIGNED_URL_PARAMS;
    const signedMethod = param(query, p.method, true);
    const expires = param(query, p.expires, true);
    const signature = param(query, p.signature, true);
    const sha256 = param(query, p.sha256, false);
    const size = param(query, p.size, false);
    const span = param(query, p.range, false);
    if (signedMethod !== 'GET' && signedMethod !== 'PUT') throw malformed(p.method);
    if (!/^\d{1,12}$/.test(expires)) throw malformed(p.expires);
    if (sha256 !== undefined && !/^[0-9a-f]{64}$/.test(sha256)) throw malformed(p.sha256);
    if (size !== undefined && !(/^\d{1,16}$/.test(size) && Number.isSafeInteger(Number(size)))) throw malformed(p.size);
    const rangeMatch = span === undefined ? undefined : /^(\d{1,16})-(\d{1,16})$/.exec(span);
    if (span !== undefined && (!rangeMatch || Number(rangeMatch[1]) > Number(rangeMatch[2]))) throw malformed(p.range);
    if (!/^[0-9a-f]{64}$/.test(signature)) throw malformed(p.signature);
    try {
      assertValidKey(key);
    } catch {
      throw new ForbiddenError('signed URL names an invalid blob key: request a new signed URL');
    }
    const expected = Buffer.from(this.#mac(signedMethod, key, expires, sha256, size, span), 'hex');
    if (!timingSafeEqual(expected, Buffer.from(signature, 'hex'))) {
      throw new ForbiddenError(
        'signed URL signature does not match: the URL was altered, is used for another key, or was signed with another secret; request a new signed URL',
      );
    }
    if (method.toUpperCase() !== signedMethod) {
      throw new ForbiddenError(`signed URL allows ${signedMethod}, not ${method.toUpperCase()}`);
    }
    const expiresAt = new Date(Number(expires) * 1000);
    if (now.getTime() > expiresAt.getTime()) {
      throw new ForbiddenError(`signed URL expired at ${expiresAt.toISOString()}: request a new signed URL`);
    }
    const terms: SignedTerms = {};
    if (sha256 !== undefined) terms.sha256 = sha256;
    if (size !== undefined) terms.size = Number(size);
    if (rangeMatch) terms.range = { start: Number(rangeMatch[1]), end: Number(rangeMatch[2]) };
    return terms;
  }

  #mac(
    method: string,
    key: string,
    expires: string,
    sha256: string | undefined,
    size: string | undefined,
    range: string | undefined,
  ): string {
    // Every field is validated to hold no newline, so this encoding is unambiguous;
    // an absent sha256, size or range signs as an empty line, which no present value can equal.
    const input = [SIGNED_URL_VERSION, method, key, expires, sha256 ?? '', size ?? '', range ?? ''].join('\n');
    return createHmac('sha256', this.#secret).update(input, 'utf8').digest('hex');
  }
}

function param(query: URLSearchParams, name: string, required: true): string;
function param(query: URLSearchParams, name: string, required: false): string | undefined;
function param(query: URLSearchParams, name: string, required: boolean): string | undefined {
  const values = query.getAll(name);
  // A repeated parameter could make the server and the signature read different values.
  if (values.length > 1) throw new ForbiddenError(`signed URL repeats ${name}: request a new signed URL`);
  if (values.length === 0 && required)
    throw new ForbiddenError(`signed URL is missing ${name}: use the URL exactly as it was issued`);
  return values[0];
}

function malformed(name: string): ForbiddenError {
  return new ForbiddenError(`signed URL has a malformed ${name}: use the URL exactly as it was issued`);
}
