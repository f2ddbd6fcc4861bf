/**
 * @module stores/registry
 * The one explicit table of storage backends, picked by URL scheme (restic's
 * "backends registered in one list"). A backend entry parses its URL and
 * opens the store; adding a backend (s3:, postgres:) is one line in its
 * table plus its own module.
 *
 * Accepted forms:
 * - blobs: `file:///abs/dir`, or a plain filesystem path -> LocalBlobStore;
 *   `s3://BUCKET[/prefix]?endpoint=...&region=...&forcePathStyle=true` -> S3BlobStore
 *   (parameters in stores/s3/s3-blob-store.ts)
 * - metadata: `sqlite:///abs/file.db`, or a plain path ending in `.db` -> SQLite;
 *   `postgres://user:pass@host:port/db?pool=10&schema=name` (or postgresql://) -> PostgreSQL
 *
 * URLs may carry credentials (later: postgres passwords, S3 keys); log them
 * only through `redactUrl`.
 */
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import type { BlobStore } from './blob-store.js';
import { LocalBlobStore } from './local/local-blob-store.js';
import type { UrlSigner } from './local/url-signer.js';
import type { MetadataStore } from './metadata-store.js';
import { openS3BlobStore } from './s3/s3-blob-store.js';
import { openPostgresMetadataStore } from './sql/postgres-dialect.js';
import { openSqliteMetadataStore } from './sql/sqlite-dialect.js';

/** What blob backends may need besides their URL. */
export interface BlobStoreDeps {
  /** Signs URLs for stores that cannot sign their own (the local directory); operator tools that never sign omit it. */
  signer?: UrlSigner;
}

/** One blob backend of the table. */
interface BlobBackend {
  open(url: URL, deps: BlobStoreDeps): Promise<BlobStore>;
  /** True when the Stowage server must serve the store's signed URLs at /v1/blobs/ (the store is not reachable by clients itself). */
  servedByServer: boolean;
}

/** One metadata backend of the table. */
interface MetadataBackend {
  open(url: URL): Promise<MetadataStore>;
}

/** Blob backends by URL scheme. */
const BLOB_BACKENDS: Readonly<Record<string, BlobBackend>> = {
  'file:': {
    open: (url, { signer }) => LocalBlobStore.open({ dir: fileURLToPath(url), ...(signer ? { signer } : {}) }),
    servedByServer: true,
  },
  's3:': { open: (url) => openS3BlobStore(url), servedByServer: false },
};

/** Metadata backends by URL scheme. */
const METADATA_BACKENDS: Readonly<Record<string, MetadataBackend>> = {
  'sqlite:': { open: async (url) => openSqliteMetadataStore({ path: sqlitePath(url) }) },
  'postgres:': { open: async (url) => openPostgresMetadataStore({ url: url.href }) },
  'postgresql:': { open: async (url) => openPostgresMetadataStore({ url: url.href }) },
};

/** A scheme is two or more letters before ":" (one letter would be a Windows drive). */
const SCHEME = /^[a-z][a-z0-9+.-]+:/i;

function parseStoreUrl(
  input: string,
  kind: string,
  plainPathScheme: (path: string) => string | undefined,
  supported: readonly string[],
): URL {
  if (typeof input !== 'string' || input.trim() === '')
    throw new InvalidArgumentError(`empty ${kind} store URL; supported: ${supported.join(', ')}`);
  if (!SCHEME.test(input)) {
    const scheme = plainPathScheme(input);
    if (scheme === undefined)
      throw new InvalidArgumentError(
        `cannot tell the ${kind} store from ${JSON.stringify(redactUrl(input))}; use a URL with one of: ${supported.join(', ')}`,
      );
    const fileUrl = pathToFileURL(resolve(input));
    return scheme === 'file:' ? fileUrl : new URL(`${scheme}//${fileUrl.pathname}`);
  }
  try {
    return new URL(input);
  } catch {
    throw new InvalidArgumentError(`malformed ${kind} store URL ${JSON.stringify(redactUrl(input))}`);
  }
}

function lookup<T>(table: Readonly<Record<string, T>>, url: URL, kind: string): T {
  const backend = Object.hasOwn(table, url.protocol) ? table[url.protocol] : undefined;
  if (!backend) {
    throw new InvalidArgumentError(
      `unsupported ${kind} store scheme ${JSON.stringify(url.protocol)}; supported: ${supportedSchemes(table).join(', ')}`,
    );
  }
  return backend;
}

function supportedSchemes(table: Readonly<Record<string, unknown>>): string[] {
  return Object.keys(table).map((s) => `${s}//`);
}

function sqlitePath(url: URL): string {
  if (url.host !== '' && url.host !== 'localhost')
    throw new InvalidArgumentError(
      `sqlite URL must name a local file (sqlite:///abs/file.db), not host ${JSON.stringify(url.host)}`,
    );
  const path = decodeURIComponent(url.pathname);
  if (path === '' || path === '/')
    throw new InvalidArgumentError('sqlite URL names no file: use sqlite:///abs/file.db');
  return path;
}

const blobPlainPath = () => 'file:';
const metadataPlainPath = (p: string) => (p.endsWith('.db') ? 'sqlite:' : undefined);

/**
 * Opens the blob store a URL names.
 *
 * @example
 * const blobs = await openBlobStore('file:///var/lib/stowage/blobs', { signer });
 */
export async function openBlobStore(url: string, deps: BlobStoreDeps = {}): Promise<BlobStore> {
  const parsed = parseStoreUrl(url, 'blob', blobPlainPath, supportedSchemes(BLOB_BACKENDS));
  return lookup(BLOB_BACKENDS, parsed, 'blob').open(parsed, deps);
}

/** True when the server must serve the signed URLs of the blob store at `url` (the local directory). */
export function blobStoreServedByServer(url: string): boolean {
  const parsed = parseStoreUrl(url, 'blob', blobPlainPath, supportedSchemes(BLOB_BACKENDS));
  return lookup(BLOB_BACKENDS, parsed, 'blob').servedByServer;
}

/**
 * Opens the metadata store a URL names (migrated to the latest schema).
 *
 * @example
 * const metadata = await openMetadataStore('sqlite:///var/lib/stowage/metadata.db');
 */
export async function openMetadataStore(url: string): Promise<MetadataStore> {
  const parsed = parseStoreUrl(url, 'metadata', metadataPlainPath, supportedSchemes(METADATA_BACKENDS));
  return lookup(METADATA_BACKENDS, parsed, 'metadata').open(parsed);
}

const SECRET_PARAM = /pass|secret|token|key|signature|credential|auth/i;

/** The URL with its password and secret-looking query parameters replaced by "***", for logs and error messages. */
export function redactUrl(url: string): string {
  if (!SCHEME.test(url)) return url;
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    // Unparseable: hide anything between "//" and "@", where a password would sit.
    return url.replace(/\/\/[^/@]*@/, '//***@');
  }
  if (u.password) u.password = '***';
  for (const name of [...u.searchParams.keys()]) {
    if (SECRET_PARAM.test(name)) u.searchParams.set(name, '***');
  }
  return u.toString();
}
