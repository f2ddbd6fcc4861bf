/**
 * @module server/serve
 * Runs the embedded deployment (SPEC section 7): one process, one data dir
 * holding `metadata.db` (SQLite) and `blobs/` (the local blob store, whose
 * signed URLs this server answers). Vocabulary:
 *
 * - URL-signing secret: kept in the metadata store (`url-signing-secret`),
 *   so every replica sharing the store verifies every replica's URLs.
 * - admin token: on first start (no tenant yet) the tenant "default" is
 *   created; its admin token is printed once and saved to
 *   `<dataDir>/admin-token` (mode 0600).
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serve } from '@hono/node-server';
import { isStowageError } from '@stowage/sdk/common/errors.js';
import { randomHex } from '@stowage/sdk/common/ids.js';
import { createEngine } from '../engine/engine.js';
import type { VolumeEngine } from '../engine/types.js';
import type { SandboxRuntime } from '../sandbox/runtime.js';
import type { BlobStore } from '../stores/blob-store.js';
import { UrlSigner } from '../stores/local/url-signer.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { blobStoreServedByServer, openBlobStore, openMetadataStore, redactUrl } from '../stores/registry.js';
import { createApp, type AppOptions } from './app.js';
import { ShareSigner } from './share-links.js';
import { createUploadService } from './routes/uploads-routes.js';
import { ADMIN_TOKEN_FILE, BLOBS_DIR, METADATA_FILE } from '../common/data-dir.js';

/** Default TCP port of `stowage serve`. */
export const DEFAULT_PORT = 7420;
/** Name of the tenant created on first start. */
export const DEFAULT_TENANT = 'default';
/** Sub-directory of the data dir holding staging files of resumable uploads. */
export const UPLOADS_DIR = 'uploads';
/** How often expired resumable uploads are swept. */
const UPLOAD_SWEEP_MS = 60 * 60_000;
/** Metadata setting holding the HMAC key of signed blob URLs. */
export const URL_SIGNING_SECRET_SETTING = 'url-signing-secret';

/** Options of `startServer`. */
export interface StartServerOptions {
  /** Directory holding metadata.db, blobs/ and admin-token; created (mode 0700) if missing. */
  dataDir: string;
  /** TCP port; 0 picks a free one (default 7420). */
  port?: number;
  /** Interface to listen on (default 127.0.0.1). */
  host?: string;
  /** URL clients reach this server at, when not the listening address (proxies, containers); signed blob URLs use it. */
  publicUrl?: string;
  /** Metadata store URL (default: sqlite at `<dataDir>/metadata.db`). */
  metadataUrl?: string;
  /** Blob store URL (default: the directory `<dataDir>/blobs`). */
  blobUrl?: string;
  /** Request body limits. */
  limits?: AppOptions['limits'];
  /** Where startup lines go (default: stdout). */
  log?: (line: string) => void;
  /** Unfinished resumable uploads older than this are deleted (default 24 h). */
  uploadExpiryMs?: number;
  /** Lease of mounted attachments and their tokens, in ms (default 60 s; tests shorten it). */
  attachmentLease?: number;
  /**
   * The sandbox host this server drives: `'local'` runs this machine's host daemon in this process (when the
   * machine cannot run sandboxes, every sandbox call answers 503 naming what is missing); `{ url, secret }`
   * drives one started elsewhere with `stowage sandbox-host`. Default: none, and sandbox calls answer 503;
   * `stowage serve` asks for `'local'` unless --no-sandboxes.
   */
  sandboxes?: 'local' | { url: string; secret: string };
  /** Where this machine's sandbox host keeps built images (default `<dataDir>/images`). */
  imageCacheDir?: string;
  /** Whether this machine's sandbox host mounts volumes with `--low-latency`; absent, where it may (LocalHostOptions.lowLatencyVolumes). */
  lowLatencyVolumes?: boolean;
  /** A sandbox runtime of the embedder's own (takes the place of `sandboxes`). */
  sandboxRuntime?: SandboxRuntime;
}

/** The sandbox runtime the options ask for, if any. */
async function openSandboxRuntime(
  options: StartServerOptions,
  log: (line: string) => void,
): Promise<SandboxRuntime | undefined> {
  if (options.sandboxRuntime) return options.sandboxRuntime;
  const which = options.sandboxes;
  if (which === undefined) return undefined;
  if (which === 'local') {
    const [{ LocalSandboxHost }, { ImageStore }] = await Promise.all([
      import('../sandbox/daemon/local-host.js'),
      import('../sandbox/host/images.js'),
    ]);
    const host = await LocalSandboxHost.open({
      dataDir: options.dataDir,
      ...(options.imageCacheDir ? { images: new ImageStore({ dataDir: options.imageCacheDir }) } : {}),
      ...(options.lowLatencyVolumes !== undefined ? { lowLatencyVolumes: options.lowLatencyVolumes } : {}),
      log: (line) => log(`sandbox host: ${line}`),
    });
    log(`sandbox host: ${host.unavailable() ?? `this machine runs sandboxes (${host.liveIds().length} running)`}`);
    return host;
  }
  const { HttpSandboxRuntime } = await import('../sandbox/runtime-http/runtime-client.js');
  log(`sandbox host: ${which.url}`);
  return new HttpSandboxRuntime({ url: which.url, secret: which.secret }, new URL(which.url).host);
}

/** A running server. */
export interface RunningServer {
  /** Where the API listens, e.g. http://127.0.0.1:7420 (no trailing slash). */
  url: string;
  engine: VolumeEngine;
  /** The admin token of the tenant created on this (first) start; undefined on later starts. */
  adminToken?: string;
  /** Stops listening, ends open connections, and closes the stores. */
  close(): Promise<void>;
}

/** The host part of a URL for a listening address (wildcards become loopback, IPv6 gets brackets). */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

function listen(app: ReturnType<typeof createApp>, port: number, host: string): Promise<Server> {
  return new Promise((resolvePromise, reject) => {
    const server = serve({ fetch: app.fetch, port, hostname: host }) as Server;
    // Close idle keep-alive connections only long after clients drop them. A client whose event loop was busy
    // (building a large body) reuses a connection after its own idle timer should have fired; had the server
    // closed it meanwhile (Node's default is 5 s), that request would fail with ECONNRESET instead of an answer.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    server.once('listening', () => {
      server.off('error', onError);
      resolvePromise(server);
    });
  });
}

/** Creates the first tenant when there is none; returns its admin token, or undefined when a tenant exists. */
async function bootstrapTenant(
  engine: VolumeEngine,
  metadata: MetadataStore,
  dataDir: string,
  log: (line: string) => void,
): Promise<string | undefined> {
  if ((await metadata.listTenants()).length > 0) return undefined;
  let secret: string;
  try {
    ({ secret } = await engine.createTenant(DEFAULT_TENANT));
  } catch (err) {
    // Another replica sharing the store won the race: its token is the one.
    if (isStowageError(err, 'AlreadyExists')) return undefined;
    throw err;
  }
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  await writeFile(file, `${secret}\n`, { mode: 0o600 });
  await chmod(file, 0o600);
  log(`Admin token (shown once, also saved to ${file}): ${secret}`);
  return secret;
}

/**
 * Starts the Stowage server on a data dir.
 *
 * @example
 * const server = await startServer({ dataDir: '/var/lib/stowage', port: 0 });
 * console.log(server.url, server.adminToken);
 * await server.close();
 */
export async function startServer(options: StartServerOptions): Promise<RunningServer> {
  const { dataDir, port = DEFAULT_PORT, host = '127.0.0.1', publicUrl } = options;
  const log = options.log ?? ((line: string) => process.stdout.write(`${line}\n`));
  await mkdir(dataDir, { recursive: true, mode: 0o700 });

  const metadataUrl = options.metadataUrl ?? join(dataDir, METADATA_FILE);
  const blobUrl = options.blobUrl ?? join(dataDir, BLOBS_DIR);
  const opened: Array<{ close(): Promise<void> }> = [];
  const closeStores = async () => {
    for (const s of opened.reverse()) await s.close().catch(() => undefined);
  };

  try {
    const metadata = await openMetadataStore(metadataUrl);
    opened.push(metadata);
    const secret = await metadata.putSettingIfAbsent(URL_SIGNING_SECRET_SETTING, randomHex(32));

    let baseUrl = publicUrl?.replace(/\/+$/, '') ?? '';
    const signer = new UrlSigner({ secret, baseUrl: () => baseUrl });
    const blobs: BlobStore = await openBlobStore(blobUrl, { signer }).catch((err: unknown) => {
      throw namingSetting(err, `--blobs ${redactUrl(blobUrl)}`);
    });
    opened.push(blobs);

    const sandboxRuntime = await openSandboxRuntime(options, log);
    if (sandboxRuntime && !options.sandboxRuntime) opened.push(sandboxRuntime);
    const engine = createEngine({
      metadata,
      blobs,
      ...(options.attachmentLease !== undefined ? { attachmentLease: options.attachmentLease } : {}),
      ...(sandboxRuntime ? { sandboxRuntime } : {}),
      // Mount agents of sandboxes reach the API where clients do (known once the server listens).
      serverUrl: () => baseUrl,
    });
    // Volumes from before the chunk-ownership index must own what they hold, or their next commit would be refused.
    const backfilled = await engine.backfillChunkOwners();
    if (backfilled > 0) log(`recorded chunk ownership of ${backfilled} existing volume(s)`);
    const adminToken = await bootstrapTenant(engine, metadata, dataDir, log);
    // Sandboxes recorded live on this host that its runtime lost or saw end while the server was down.
    // A failure here must not keep volumes from being served: it is logged, and the next start tries again.
    await engine.reconcileSandboxes().then(
      (n) => n > 0 && log(`ended ${n} sandbox record(s) their host no longer runs`),
      (err: unknown) => log(`sandbox reconciliation failed: ${err instanceof Error ? err.message : String(err)}`),
    );
    // Staging files of resumable uploads; expired ones are swept at start and every hour.
    const uploads = createUploadService(engine, {
      directory: join(dataDir, UPLOADS_DIR),
      ...(options.uploadExpiryMs !== undefined ? { expireAfterMs: options.uploadExpiryMs } : {}),
    });
    const sweep = () =>
      void uploads
        .cleanup()
        .catch((err: unknown) => log(`upload cleanup failed: ${err instanceof Error ? err.message : String(err)}`));
    sweep();
    const sweeper = setInterval(sweep, UPLOAD_SWEEP_MS);
    sweeper.unref();
    opened.push({ close: async () => clearInterval(sweeper) });
    const app = createApp({
      engine,
      uploads,
      shares: new ShareSigner({ secret, baseUrl: () => baseUrl }),
      ...(blobStoreServedByServer(blobUrl) ? { blobRoute: { signer, store: blobs } } : {}),
      ...(options.limits ? { limits: options.limits } : {}),
    });

    const server = await listen(app, port, host);
    const address = server.address() as AddressInfo;
    const url = `http://${urlHost(host)}:${address.port}`;
    if (!publicUrl) baseUrl = url;
    log(`Stowage listening on ${url} (metadata ${redactUrl(metadataUrl)}, blobs ${redactUrl(blobUrl)})`);

    let closing: Promise<void> | undefined;
    const close = () =>
      (closing ??= (async () => {
        await new Promise<void>((res) => {
          server.close(() => res());
          server.closeAllConnections();
        });
        await closeStores();
      })());

    return { url, engine, ...(adminToken !== undefined ? { adminToken } : {}), close };
  } catch (err) {
    await closeStores();
    throw err;
  }
}

/** The same error with the setting that caused it (e.g. `--blobs s3://...`, secrets redacted) in front of its message. */
function namingSetting(err: unknown, setting: string): unknown {
  if (err instanceof Error && !err.message.includes(setting)) err.message = `${setting}: ${err.message}`;
  return err;
}
