/**
 * @module blob-store-checks
 * The parts of the BlobStore contract that do not depend on where bytes live,
 * shared by every implementation so each backend file holds only its storage
 * logic: validating put, range and sign options, reading a body chunk by
 * chunk, and metering it (length, SHA-256, maxSize) while it streams.
 *
 * Vocabulary: a *meter* watches a body go by without keeping it; it throws as
 * soon as the body is known to break its options (too large, too long) and
 * checks the declared size and SHA-256 once the body has ended.
 */
import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { InvalidArgumentError, PayloadTooLargeError } from '@stowage/sdk/common/errors.js';
import type { BlobBody, ByteRange, PutOptions, SignOptions } from './blob-store.js';

/** The longest lifetime a signed request may have: S3's limit, so every store accepts the same options. */
export const MAX_SIGN_EXPIRES_IN = 7 * 24 * 60 * 60;

const SHA256_HEX = /^[0-9a-f]{64}$/i;

/** True when `s` is a SHA-256 digest in hex (either case). */
export function isSha256Hex(s: unknown): s is string {
  return typeof s === 'string' && SHA256_HEX.test(s);
}

function assertByteCount(what: string, n: unknown): asserts n is number | undefined {
  if (n !== undefined && (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0)) {
    throw new InvalidArgumentError(`invalid ${what} ${String(n)}: expected a whole number of bytes`);
  }
}

/** Validates put options before any byte is read; returns them with sha256 lowercased. */
export function checkPutOptions(key: string, options: PutOptions | undefined): PutOptions {
  const { sha256, size, maxSize } = options ?? {};
  if (sha256 !== undefined && !isSha256Hex(sha256)) {
    throw new InvalidArgumentError(
      `invalid sha256 ${JSON.stringify(String(sha256).slice(0, 80))} for blob "${key}": expected 64 hex characters`,
    );
  }
  assertByteCount('size', size);
  assertByteCount('maxSize', maxSize);
  // Refuse before reading: a declared size over the limit can only end one way.
  if (size !== undefined && maxSize !== undefined && size > maxSize) {
    throw new PayloadTooLargeError(`blob "${key}" of ${size} bytes exceeds the limit of ${maxSize} bytes`, {
      details: { size, maxSize },
    });
  }
  const out: PutOptions = {};
  if (sha256 !== undefined) out.sha256 = sha256.toLowerCase();
  if (size !== undefined) out.size = size;
  if (maxSize !== undefined) out.maxSize = maxSize;
  return out;
}

/**
 * Yields a body's bytes chunk by chunk, whatever its shape. A Readable body is
 * not destroyed when the caller stops early (e.g. on maxSize): it belongs to
 * the caller, which may still want to answer on the same HTTP connection.
 */
export async function* bodyChunks(body: BlobBody): AsyncGenerator<Uint8Array, void, undefined> {
  if (body instanceof Uint8Array) {
    yield body;
    return;
  }
  const source: AsyncIterable<unknown> =
    body instanceof Readable ? { [Symbol.asyncIterator]: () => body.iterator({ destroyOnReturn: false }) } : body;
  for await (const chunk of source) {
    if (!(chunk instanceof Uint8Array)) {
      throw new InvalidArgumentError(`blob body chunks must be bytes (Uint8Array), got ${typeof chunk}`);
    }
    yield chunk;
  }
}

/** Counts and hashes a body as it streams, enforcing PutOptions without buffering it. */
export class BodyMeter {
  /** Bytes seen so far. */
  size = 0;
  readonly #hash: Hash = createHash('sha256');
  readonly #key: string;
  readonly #options: PutOptions;

  /** `options` must come from checkPutOptions. */
  constructor(key: string, options: PutOptions) {
    this.#key = key;
    this.#options = options;
  }

  /** Accounts for one chunk; throws as soon as the body exceeds maxSize or its declared size. */
  add(chunk: Uint8Array): void {
    this.size += chunk.byteLength;
    const { maxSize, size } = this.#options;
    if (maxSize !== undefined && this.size > maxSize) {
      throw new PayloadTooLargeError(`blob "${this.#key}" exceeds the limit of ${maxSize} bytes`, {
        details: { maxSize },
      });
    }
    if (size !== undefined && this.size > size) {
      throw new InvalidArgumentError(
        `size mismatch for blob "${this.#key}": expected ${size} bytes, got at least ${this.size}`,
        { details: { expected: size, actual: this.size } },
      );
    }
    this.#hash.update(chunk);
  }

  /** Checks the declared size and SHA-256 once the body has ended; returns the actual ones. */
  finish(): { size: number; sha256: string } {
    const { size, sha256 } = this.#options;
    if (size !== undefined && this.size !== size) {
      throw new InvalidArgumentError(
        `size mismatch for blob "${this.#key}": expected ${size} bytes, got ${this.size}`,
        { details: { expected: size, actual: this.size } },
      );
    }
    const actual = this.#hash.digest('hex');
    if (sha256 !== undefined && actual !== sha256) {
      throw new InvalidArgumentError(`sha256 mismatch for blob "${this.#key}": expected ${sha256}, got ${actual}`, {
        details: { expected: sha256, actual },
      });
    }
    return { size: this.size, sha256: actual };
  }
}

/**
 * Resolves an inclusive range against an object's size into a start and a
 * length. An end past the last byte is clamped (as HTTP does); a start past
 * the end of a non-empty object is an InvalidArgumentError; any range of an
 * empty object is empty.
 */
export function resolveRange(
  key: string,
  range: ByteRange | undefined,
  size: number,
): { start: number; length: number } {
  if (range === undefined) return { start: 0, length: size };
  const { start, end } = range;
  if (!Number.isSafeInteger(start) || start < 0 || (end !== undefined && (!Number.isSafeInteger(end) || end < start))) {
    throw new InvalidArgumentError(
      `invalid byte range ${start}-${end ?? ''} for blob "${key}": expected 0 <= start <= end`,
    );
  }
  if (size === 0) return { start: 0, length: 0 };
  if (start >= size) {
    throw new InvalidArgumentError(`range start ${start} is past the end of blob "${key}" (${size} bytes)`, {
      details: { start, size },
    });
  }
  const last = Math.min(end ?? size - 1, size - 1);
  return { start, length: last - start + 1 };
}

/** The `Range` header value of an inclusive byte range. */
export function rangeHeader(range: { start: number; end: number }): string {
  return `bytes=${range.start}-${range.end}`;
}

/** Validates sign arguments; returns the options with sha256 lowercased. */
export function checkSignOptions(method: unknown, options: SignOptions): SignOptions {
  if (method !== 'GET' && method !== 'PUT') {
    throw new InvalidArgumentError(`cannot sign method ${JSON.stringify(method)}: only GET and PUT are signed`);
  }
  const { expiresIn, sha256, size, range } = options ?? ({} as Partial<SignOptions>);
  if (
    typeof expiresIn !== 'number' ||
    !Number.isFinite(expiresIn) ||
    expiresIn <= 0 ||
    expiresIn > MAX_SIGN_EXPIRES_IN
  ) {
    throw new InvalidArgumentError(
      `invalid expiresIn ${String(expiresIn)}: expected seconds in (0, ${MAX_SIGN_EXPIRES_IN}]`,
    );
  }
  if (sha256 !== undefined && !isSha256Hex(sha256)) {
    throw new InvalidArgumentError(
      `invalid sha256 ${JSON.stringify(String(sha256).slice(0, 80))}: expected 64 hex characters`,
    );
  }
  assertByteCount('size', size);
  if (range !== undefined) {
    if (method !== 'GET') throw new InvalidArgumentError('only a GET can be signed for a byte range');
    const { start, end } = range;
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
      throw new InvalidArgumentError(
        `invalid signed range ${String(start)}-${String(end)}: expected 0 <= start <= end`,
      );
    }
  }
  const out: SignOptions = { expiresIn };
  if (sha256 !== undefined) out.sha256 = sha256.toLowerCase();
  if (size !== undefined) out.size = size;
  if (range !== undefined) out.range = { start: range.start, end: range.end };
  return out;
}
