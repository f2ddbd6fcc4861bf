/**
 * @module memory-blob-store
 * An in-memory BlobStore for fast engine tests. It runs the same conformance
 * suite as the real stores, so tests written against it hold for them too.
 *
 * An object is replaced only once its whole body has arrived and passed its
 * checks, which gives the same atomicity as a rename. Signed URLs come from a
 * UrlSigner: by default one with a random secret and a `memory://` base, so
 * they cannot be fetched; pass the server's signer to make them servable.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { InvalidArgumentError, NotFoundError } from '@stowage/sdk/common/errors.js';
import {
  assertValidKey,
  type BlobBody,
  type BlobInfo,
  type BlobStore,
  type ByteRange,
  type PutOptions,
  type SignedRequest,
  type SignOptions,
} from '../blob-store.js';
import { BodyMeter, bodyChunks, checkPutOptions, resolveRange } from '../blob-store-checks.js';
import { UrlSigner } from '../local/url-signer.js';

/** Options of a MemoryBlobStore. */
export interface MemoryBlobStoreOptions {
  /** Signs the URLs sign() returns; default: a private signer with base URL `memory://blobs`. */
  signer?: UrlSigner;
}

interface StoredObject {
  bytes: Buffer;
  lastModified: Date;
}

/** A BlobStore that keeps objects in a Map. */
export class MemoryBlobStore implements BlobStore {
  /** The signer sign() delegates to. */
  readonly signer: UrlSigner;
  readonly #objects = new Map<string, StoredObject>();

  /** Creates an empty store. */
  constructor(options: MemoryBlobStoreOptions = {}) {
    this.signer = options.signer ?? new UrlSigner({ secret: randomBytes(32), baseUrl: 'memory://blobs' });
  }

  /** Collects the metered body, then swaps it in whole. */
  async put(key: string, body: BlobBody, options?: PutOptions): Promise<BlobInfo> {
    assertValidKey(key);
    const meter = new BodyMeter(key, checkPutOptions(key, options));
    const parts: Buffer[] = [];
    for await (const chunk of bodyChunks(body)) {
      meter.add(chunk);
      // Copied: a producer may reuse its buffer for the next chunk.
      parts.push(Buffer.from(chunk));
    }
    meter.finish();
    const stored: StoredObject = { bytes: Buffer.concat(parts), lastModified: new Date() };
    this.#objects.set(key, stored);
    return info(key, stored);
  }

  /** Streams a view of the stored bytes, which are never mutated. */
  async get(key: string, range?: ByteRange): Promise<Readable> {
    assertValidKey(key);
    const stored = this.#objects.get(key);
    if (!stored) throw new NotFoundError(`blob ${JSON.stringify(key)} not found`);
    const { start, length } = resolveRange(key, range, stored.bytes.length);
    const parts = length === 0 ? [] : [stored.bytes.subarray(start, start + length)];
    return Readable.from(parts, { objectMode: false });
  }

  /** Returns the info of the stored object, if any. */
  async head(key: string): Promise<BlobInfo | undefined> {
    assertValidKey(key);
    const stored = this.#objects.get(key);
    return stored && info(key, stored);
  }

  /** Removes the key from the map. */
  async delete(key: string): Promise<void> {
    assertValidKey(key);
    this.#objects.delete(key);
  }

  /** Lists the keys present when iteration starts, skipping those deleted since. */
  async *list(prefix: string): AsyncIterable<BlobInfo> {
    if (typeof prefix !== 'string') throw new InvalidArgumentError('list prefix must be a string');
    const keys = [...this.#objects.keys()]
      .filter((k) => k.startsWith(prefix))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const key of keys) {
      const stored = this.#objects.get(key);
      if (stored) yield info(key, stored);
    }
  }

  /** Delegates to the signer. */
  async sign(key: string, method: 'GET' | 'PUT', options: SignOptions): Promise<SignedRequest> {
    assertValidKey(key);
    return this.signer.sign(key, method, options);
  }

  /** Holds nothing to release; the objects stay readable so a test can still inspect them. */
  async close(): Promise<void> {}
}

function info(key: string, stored: StoredObject): BlobInfo {
  return { key, size: stored.bytes.length, lastModified: new Date(stored.lastModified) };
}
