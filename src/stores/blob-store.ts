/**
 * @module blob-store
 * The object-store contract every blob backend implements (local directory
 * now; S3-compatible later). A BlobStore stores opaque bytes under string
 * keys; it knows nothing of volumes, chunks or tenants.
 *
 * Keys are relative, "/"-separated, made of [A-Za-z0-9._-] segments, never
 * empty, never "." or "..". Implementations MUST refuse any other key with
 * InvalidArgumentError (so a key can never escape a local directory).
 */
import type { Readable } from 'node:stream';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';

/** What a store knows about one object. */
export interface BlobInfo {
  key: string;
  size: number;
  lastModified: Date;
}

/** An inclusive byte range; `end` defaults to the last byte. */
export interface ByteRange {
  start: number;
  end?: number;
}

/** A request a client can make without credentials of its own. */
export interface SignedRequest {
  url: string;
  method: 'GET' | 'PUT';
  /** Headers the client MUST send with the request (e.g. a checksum the signature covers). */
  headers: Record<string, string>;
  expiresAt: Date;
}

/** Options of a signed request. */
export interface SignOptions {
  /** Lifetime in seconds. */
  expiresIn: number;
  /** For PUT: the SHA-256 (hex) the uploaded bytes MUST have; the store refuses other bytes. */
  sha256?: string;
  /** For PUT: the exact byte length the upload MUST have. */
  size?: number;
  /**
   * For GET: the inclusive byte range the request may read. The signed request
   * carries it (a `range` header the client MUST send) and the store MUST serve
   * no byte outside it, so a URL for one chunk of a pack yields that chunk only.
   */
  range?: { start: number; end: number };
}

/** A body to store: whole bytes or a stream of them. */
export type BlobBody = Uint8Array | Readable | AsyncIterable<Uint8Array>;

export interface PutOptions {
  /** When given, the store MUST verify the bytes hash to this SHA-256 (hex) and, on mismatch, throw InvalidArgumentError and leave no object behind. */
  sha256?: string;
  /** When given, the store MUST refuse (InvalidArgumentError) a body of another length, leaving no object behind. */
  size?: number;
  /** When given, the store MUST stop reading and throw PayloadTooLargeError once the body exceeds this many bytes, leaving no object behind. */
  maxSize?: number;
}

/**
 * The blob store contract. Every method is safe to call concurrently and to
 * retry: put and delete are idempotent.
 */
export interface BlobStore {
  /** Atomically creates or replaces the object: readers see the old object, the whole new one, or nothing, never a torn write. Durable when the promise resolves. */
  put(key: string, body: BlobBody, options?: PutOptions): Promise<BlobInfo>;
  /** Streams the object, or the inclusive `range` of it. Throws NotFoundError when the key does not exist; InvalidArgumentError for a range past the end. */
  get(key: string, range?: ByteRange): Promise<Readable>;
  /** Returns the object's info, or undefined when the key does not exist (never throws NotFound). */
  head(key: string): Promise<BlobInfo | undefined>;
  /** Deletes the object; deleting a missing key succeeds. */
  delete(key: string): Promise<void>;
  /** Lists the objects whose key starts with `prefix`, in ascending key order. */
  list(prefix: string): AsyncIterable<BlobInfo>;
  /** Returns a short-lived request that lets a client GET or PUT exactly this one key with this one method, and nothing else. */
  sign(key: string, method: 'GET' | 'PUT', options: SignOptions): Promise<SignedRequest>;
  /** Releases resources (open handles, sockets). */
  close(): Promise<void>;
}

const KEY_SEGMENT = /^[A-Za-z0-9._-]+$/;

/** Shared key check for implementations: throws on any key outside the contract. */
export function assertValidKey(key: string): void {
  if (typeof key !== 'string' || key.length === 0 || key.length > 1024) throw new InvalidKey(key);
  for (const seg of key.split('/')) {
    if (!KEY_SEGMENT.test(seg) || seg === '.' || seg === '..') throw new InvalidKey(key);
  }
}

/** Whether `key` is one a BlobStore may hold (listings skip anything else: it was not written through a BlobStore). */
export function isValidKey(key: string): boolean {
  try {
    assertValidKey(key);
    return true;
  } catch {
    return false;
  }
}

class InvalidKey extends InvalidArgumentError {
  constructor(key: unknown) {
    super(`invalid blob key ${JSON.stringify(String(key).slice(0, 120))}`);
  }
}
