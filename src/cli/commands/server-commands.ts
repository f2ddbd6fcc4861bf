/**
 * @module cli/commands/server-commands
 * Commands that run on the server's machine: `serve` runs the server;
 * `gc` and `tenant create` open the data dir's stores directly and call the
 * engine (operator work that no API token may do).
 *
 * Server and store modules (Hono, better-sqlite3) are loaded with dynamic
 * imports here only, so the SDK-only commands never load them.
 */
import { readFileSync } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from 'commander';
import { BLOBS_DIR, METADATA_FILE } from '../../common/data-dir.js';
import { InvalidArgumentError, NotFoundError } from '@stowage/sdk/common/errors.js';
import { parseSize } from '@stowage/sdk/common/sizes.js';
import type { VolumeEngine } from '../../engine/types.js';
import { parseDuration, parsePort } from '../arg-parsers.js';
import { dataDirOf } from '../client-config.js';
import { bytes, printFields, printJson, printLine, printNote } from '../output.js';
import { stopSignal } from './stop-signal.js';

/** Where an operator command finds the stores: the data dir's, unless --metadata / --blobs name others. */
interface StoreOptions {
  metadata?: string;
  blobs?: string;
}

/**
 * Opens the engine over the stores for one operator call, and closes them
 * after: the data dir's SQLite database and blob directory by default (which
 * must exist), or the PostgreSQL / S3 stores the server runs on.
 */
async function withEngine<T>(
  dataDir: string,
  fn: (engine: VolumeEngine) => Promise<T>,
  stores: StoreOptions = {},
): Promise<T> {
  const metadataUrl = stores.metadata ?? join(dataDir, METADATA_FILE);
  if (stores.metadata === undefined) {
    try {
      await access(metadataUrl);
    } catch {
      throw new NotFoundError(
        `no Stowage data in ${dataDir} (${METADATA_FILE} is missing): pass --data DIR or set STOWAGE_DATA, pass --metadata URL, or run \`stowage serve\` once to create it`,
      );
    }
  }
  const [{ openMetadataStore, openBlobStore }, { createEngine }] = await Promise.all([
    import('../../stores/registry.js'),
    import('../../engine/engine.js'),
  ]);
  const metadata = await openMetadataStore(metadataUrl);
  try {
    const blobs = await openBlobStore(stores.blobs ?? join(dataDir, BLOBS_DIR));
    try {
      return await fn(createEngine({ metadata, blobs }));
    } finally {
      await blobs.close();
    }
  } finally {
    await metadata.close();
  }
}

/** --data, --metadata and --blobs: where the server keeps its state; every operator command takes the same three. */
function withStoreOptions(command: Command): Command {
  return command
    .option('--data <dir>', 'data dir (default: $STOWAGE_DATA or ~/.stowage)')
    .option(
      '--metadata <url>',
      'metadata store: postgres://USER:PASSWORD@HOST:PORT/DB?pool=10 for PostgreSQL (default: SQLite at <data>/metadata.db)',
    )
    .option(
      '--blobs <url>',
      'blob store: s3://BUCKET[/prefix]?endpoint=URL&region=R&forcePathStyle=true for any S3-compatible store (default: the directory <data>/blobs)',
    );
}

/** Registers serve, gc and tenant. */
export function registerServerCommands(program: Command): void {
  withStoreOptions(program.command('serve'))
    .description('run the Stowage server: by default SQLite metadata and a local blob directory under one data dir')
    .option('--port <port>', 'TCP port; 0 picks a free one', '7420')
    .option('--host <host>', 'interface to listen on (0.0.0.0 for all)', '127.0.0.1')
    .option('--public-url <url>', 'URL clients reach this server at, when not the listening address')
    .option('--no-sandboxes', 'run no sandbox host here (volumes only; sandbox calls answer 503)')
    .option('--image-cache <dir>', 'where this machine keeps built sandbox images (default: <data>/images)')
    .option(
      '--low-latency-volumes',
      "mount sandboxes' volumes with --low-latency: idle CPUs poll while a volume serves a burst of requests (see stowage mount --help); the default where this runs as root; fails without root",
    )
    .option('--no-low-latency-volumes', "mount sandboxes' volumes with --no-low-latency")
    .option('--sandbox-host <url>', 'drive the sandbox host at this URL (`stowage sandbox-host` on another machine)')
    .option('--sandbox-host-secret <file>', "that host's secret file (a copy of its <data>/host-secret)")
    .action(
      async (opts: {
        data?: string;
        port: string;
        host: string;
        publicUrl?: string;
        metadata?: string;
        blobs?: string;
        sandboxes: boolean;
        imageCache?: string;
        lowLatencyVolumes?: boolean;
        sandboxHost?: string;
        sandboxHostSecret?: string;
      }) => {
        const port = parsePort(opts.port);
        const dataDir = dataDirOf(opts.data);
        if ((opts.sandboxHost === undefined) !== (opts.sandboxHostSecret === undefined))
          throw new InvalidArgumentError('--sandbox-host and --sandbox-host-secret go together');
        const sandboxes = !opts.sandboxes
          ? undefined
          : opts.sandboxHost !== undefined
            ? { url: opts.sandboxHost, secret: readFileSync(opts.sandboxHostSecret!, 'utf8').trim() }
            : ('local' as const);
        const { startServer } = await import('../../server/serve.js');
        const server = await startServer({
          dataDir,
          port,
          host: opts.host,
          ...(sandboxes ? { sandboxes } : {}),
          ...(opts.imageCache !== undefined ? { imageCacheDir: opts.imageCache } : {}),
          ...(opts.lowLatencyVolumes !== undefined ? { lowLatencyVolumes: opts.lowLatencyVolumes } : {}),
          ...(opts.publicUrl !== undefined ? { publicUrl: opts.publicUrl } : {}),
          ...(opts.metadata !== undefined ? { metadataUrl: opts.metadata } : {}),
          ...(opts.blobs !== undefined ? { blobUrl: opts.blobs } : {}),
          log: (line) => printLine(line),
        });
        const signal = await stopSignal();
        printNote(`stowage: ${signal} received, stopping`);
        await server.close();
      },
    );

  withStoreOptions(program.command('gc'))
    .description('delete chunks and trees nothing references (plan, then execute)')
    .option('--dry-run', 'only report what would be deleted')
    .option('--grace <duration>', 'keep anything touched this recently (protects commits in flight)', '1h')
    .option('--retention <duration>', 'keep commits this young restorable', '7d')
    .option('--json', 'print the report as JSON')
    .action(
      async (
        opts: { data?: string; dryRun?: boolean; grace: string; retention: string; json?: boolean } & StoreOptions,
      ) => {
        const grace = parseDuration(opts.grace);
        const retention = parseDuration(opts.retention);
        const report = await withEngine(
          dataDirOf(opts.data),
          (engine) => engine.gc({ dryRun: opts.dryRun ?? false, grace, retention }),
          opts,
        );
        if (opts.json) {
          printJson(report);
          return;
        }
        const verb = report.dryRun ? 'would delete' : 'deleted';
        printFields([
          ['mode', report.dryRun ? 'dry run (nothing deleted)' : 'executed'],
          ['pruned commits', String(report.prunedCommits)],
          ['live trees', String(report.liveTrees)],
          [`trees ${verb}`, String(report.deletedTrees)],
          ['live chunks', String(report.liveChunks)],
          [`chunks ${verb}`, String(report.deletedChunks)],
          [`objects ${verb}`, String(report.deletedObjects)],
          [`bytes ${verb}`, `${bytes(report.deletedBytes)} (${report.deletedBytes} bytes)`],
        ]);
      },
    );

  const tenant = program.command('tenant').description('operator commands for tenants (run on the server machine)');
  withStoreOptions(tenant.command('create'))
    .description("create a tenant and print its admin token's secret (shown only once)")
    .argument('<name>', 'tenant name')
    .option('--default-cap <size>', 'cap of volumes created without one, e.g. 2G')
    .option('--storage-quota <size>', 'most bytes all its volumes may hold together, e.g. 1T (default: unlimited)')
    .option('--uncommitted-quota <size>', 'most bytes it may have uploaded but not yet committed (default: 16G)')
    .option('--json', 'print the tenant, token and secret as JSON')
    .action(
      async (
        name: string,
        opts: {
          data?: string;
          defaultCap?: string;
          storageQuota?: string;
          uncommittedQuota?: string;
          json?: boolean;
        } & StoreOptions,
      ) => {
        const settings = {
          ...(opts.defaultCap !== undefined ? { defaultCap: parseSize(opts.defaultCap) } : {}),
          ...(opts.storageQuota !== undefined ? { storageQuota: parseSize(opts.storageQuota) } : {}),
          ...(opts.uncommittedQuota !== undefined ? { uncommittedQuota: parseSize(opts.uncommittedQuota) } : {}),
        };
        const res = await withEngine(dataDirOf(opts.data), (engine) => engine.createTenant(name, settings), opts);
        if (opts.json) {
          printJson({
            tenant: {
              id: res.tenant.id,
              name: res.tenant.name,
              defaultCap: res.tenant.defaultCap,
              storageQuota: res.tenant.storageQuota,
              uncommittedQuota: res.tenant.uncommittedQuota,
              createdAt: res.tenant.createdAt.toISOString(),
            },
            token: { id: res.token.id, name: res.token.name },
            secret: res.secret,
          });
          return;
        }
        printLine(res.secret);
        printNote(
          `created tenant ${res.tenant.name} (${res.tenant.id}, default cap ${bytes(res.tenant.defaultCap)}); the admin token above is shown only once`,
        );
      },
    );

  withStoreOptions(tenant.command('quota'))
    .description("set a tenant's storage quota (sum of its volumes) and uncommitted-upload quota")
    .argument('<name>', 'tenant name')
    .option('--storage-quota <size>', 'most bytes all its volumes may hold together, e.g. 1T, or "none" for unlimited')
    .option(
      '--uncommitted-quota <size>',
      'most bytes it may have uploaded but not yet committed, e.g. 32G, or "default" (16G)',
    )
    .option('--json', 'print the tenant as JSON')
    .action(
      async (
        name: string,
        opts: { data?: string; storageQuota?: string; uncommittedQuota?: string; json?: boolean } & StoreOptions,
      ) => {
        const quotas = {
          ...(opts.storageQuota !== undefined
            ? { storageQuota: opts.storageQuota === 'none' ? null : parseSize(opts.storageQuota) }
            : {}),
          ...(opts.uncommittedQuota !== undefined
            ? { uncommittedQuota: opts.uncommittedQuota === 'default' ? null : parseSize(opts.uncommittedQuota) }
            : {}),
        };
        const t = await withEngine(dataDirOf(opts.data), (engine) => engine.setTenantQuotas(name, quotas), opts);
        if (opts.json) {
          printJson({ id: t.id, name: t.name, storageQuota: t.storageQuota, uncommittedQuota: t.uncommittedQuota });
          return;
        }
        printFields([
          ['tenant', `${t.name} (${t.id})`],
          [
            'storage quota',
            t.storageQuota === null ? 'unlimited' : `${bytes(t.storageQuota)} (${t.storageQuota} bytes)`,
          ],
          [
            'uncommitted quota',
            t.uncommittedQuota === null ? 'default' : `${bytes(t.uncommittedQuota)} (${t.uncommittedQuota} bytes)`,
          ],
        ]);
      },
    );
}
