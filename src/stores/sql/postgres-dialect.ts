/**
 * @module postgres-dialect
 * Opens the SQL metadata store on PostgreSQL (the scale-out deployment:
 * any number of stateless servers over one database). Connection pooling,
 * error classification and start-up checks live here; every query is the
 * shared code of the *-queries.ts modules (composed by sql-metadata-store.ts).
 *
 * URL: `postgres://USER:PASSWORD@HOST:PORT/DATABASE?pool=10&schema=NAME`
 * (`postgresql://` too). `pool` is the most connections this process opens
 * (default 10); `schema` puts the tables in a schema other than the user's
 * default one (created if missing). Other parameters (sslmode, ...) go to
 * the pg driver unchanged.
 *
 * Migrations run at open with Kysely's Migrator, which holds a PostgreSQL
 * session advisory lock while it works: replicas starting at once wait for
 * each other and each migration runs once.
 *
 * Transactions are SERIALIZABLE. PostgreSQL may refuse one that conflicts
 * with a concurrent transaction (SQLSTATE 40001) or pick it as a deadlock
 * victim (40P01); the shared transaction wrapper runs it again (see
 * SqlDialectInfo.isRetryableConflict). Connection loss, server shutdown and
 * "too many connections" become UnavailableError naming the server; the pool
 * drops broken connections and opens new ones, so the store recovers by
 * itself once the server is back.
 */
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { InvalidArgumentError, UnavailableError } from '@stowage/sdk/common/errors.js';
import type { MetadataStore } from '../metadata-store.js';
import { migrateToLatest } from './migrations.js';
import type { Database } from './schema.js';
import type { SqlDialectInfo } from './sql-dialect-info.js';
import { createSqlMetadataStore } from './sql-metadata-store.js';

/** Options of {@link openPostgresMetadataStore}. */
export interface PostgresMetadataStoreOptions {
  /** postgres:// or postgresql:// URL (see the module comment for its parameters). */
  url: string;
  /** Most pooled connections; overrides the URL's `pool` parameter. Default 10. */
  max?: number;
  /** Schema of the tables; overrides the URL's `schema` parameter. Default: the user's default (usually public). */
  schema?: string;
  /** Milliseconds to wait for a new connection before failing with Unavailable. Default 10 s. */
  connectTimeoutMs?: number;
  /** The setting the URL came from, named in start-up errors. Default "--metadata". */
  settingName?: string;
}

export const DEFAULT_POOL_SIZE = 10;
const MAX_POOL_SIZE = 1000;
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Idle pooled connections close after this long. */
const IDLE_TIMEOUT_MS = 30_000;

/** OID of int8 (bigint): read as a JS number (every stored int8 stays below 2^53). */
const INT8_OID = 20;

/** Network errors of the socket under a pg connection. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

/** SQLSTATEs that mean "cannot use the database now" (besides class 08, connection exception). */
const UNAVAILABLE_SQLSTATES = new Set([
  '40001', // serialization_failure (after the wrapper's retries ran out)
  '40P01', // deadlock_detected (idem)
  '53000', // insufficient_resources
  '53200', // out_of_memory
  '53300', // too_many_connections
  '55P03', // lock_not_available
  '57014', // query_canceled (statement timeout)
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now (starting up, shutting down)
  '58000', // system_error
  '58030', // io_error
]);

/** Messages of node-postgres errors that carry no code but mean the connection is gone. */
const CONNECTION_LOST = /connection terminated|connection error|not queryable|timeout exceeded when trying to connect|terminating connection|Connection refused|socket hang up|Cannot use a pool after calling end/i;

function sqlState(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True for errors of a lost or refused connection (the server is down, restarting or unreachable). */
export function isPostgresConnectionError(err: unknown): boolean {
  const code = sqlState(err);
  if (code !== undefined) {
    if (NETWORK_CODES.has(code) || code.startsWith('08') || code === '57P01' || code === '57P02' || code === '57P03') return true;
  }
  // AggregateError (several addresses refused) carries the reasons in `errors`.
  const inner = (err as { errors?: unknown } | null)?.errors;
  if (Array.isArray(inner) && inner.some(isPostgresConnectionError)) return true;
  return err instanceof Error && code === undefined && CONNECTION_LOST.test(err.message);
}

/**
 * How the shared SQL code recognises node-postgres errors; `server` (host:port)
 * is named in messages so an operator knows which database is meant.
 */
export function postgresDialectInfo(server: string): SqlDialectInfo {
  return {
    name: 'postgres',
    explicitSerializable: true,
    isUniqueViolation: (err) => sqlState(err) === '23505',
    isRetryableConflict: (err) => {
      const code = sqlState(err);
      return code === '40001' || code === '40P01';
    },
    // 53100 disk_full: the server could not extend a file.
    isDiskFull: (err) => sqlState(err) === '53100',
    isUnavailable: (err) => {
      const code = sqlState(err);
      return isPostgresConnectionError(err) || (code !== undefined && UNAVAILABLE_SQLSTATES.has(code));
    },
    describe: (err) => `PostgreSQL at ${server}: ${errorMessage(err)}`,
  };
}

function errorMessage(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(errorMessage).join('; ');
  return err instanceof Error ? err.message || String(err) : String(err);
}

/** The URL with any password removed, for messages. */
export function describePostgresUrl(url: URL): string {
  const u = new URL(url.href);
  if (u.password) u.password = '***';
  for (const name of [...u.searchParams.keys()]) if (/pass|secret|key|token/i.test(name)) u.searchParams.set(name, '***');
  return u.href;
}

/** The pg.Pool settings a URL and options describe (exported for tests). */
export function parsePostgresUrl(options: PostgresMetadataStoreOptions): { config: pg.PoolConfig; schema: string | undefined; server: string; shown: string } {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new InvalidArgumentError('malformed PostgreSQL URL; expected postgres://USER:PASSWORD@HOST:PORT/DATABASE');
  }
  if (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') {
    throw new InvalidArgumentError(`a PostgreSQL URL starts with postgres:// or postgresql://, not ${url.protocol}//`);
  }
  const shown = describePostgresUrl(url);
  let max = DEFAULT_POOL_SIZE;
  const poolParam = url.searchParams.get('pool');
  if (poolParam !== null) max = parsePoolSize(poolParam, shown);
  if (options.max !== undefined) max = parsePoolSize(String(options.max), shown);
  const schema = options.schema ?? url.searchParams.get('schema') ?? undefined;
  if (schema !== undefined && !/^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(schema)) {
    throw new InvalidArgumentError(`bad schema ${JSON.stringify(schema)} in ${shown}: use letters, digits and _ (not starting with a digit)`);
  }
  // The driver gets the URL without our own parameters.
  const driverUrl = new URL(url.href);
  driverUrl.searchParams.delete('pool');
  driverUrl.searchParams.delete('schema');
  const server = `${url.hostname || 'localhost'}:${url.port || '5432'}`;
  const int8 = (value: string) => Number(value);
  const config: pg.PoolConfig = {
    connectionString: driverUrl.href.replace(/^postgresql:/, 'postgres:'),
    max,
    connectionTimeoutMillis: options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    idleTimeoutMillis: IDLE_TIMEOUT_MS,
    keepAlive: true,
    application_name: 'stowage',
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === INT8_OID && format !== 'binary' ? int8 : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
    },
    ...(schema !== undefined ? { options: `-c search_path=${schema}` } : {}),
  };
  return { config, schema, server, shown };
}

function parsePoolSize(value: string, shown: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_POOL_SIZE) {
    throw new InvalidArgumentError(`bad pool size ${JSON.stringify(value)} in ${shown}: use a whole number from 1 to ${MAX_POOL_SIZE}`);
  }
  return n;
}

/**
 * Opens (migrating if needed) a PostgreSQL metadata store. Fails fast with
 * UnavailableError naming the URL (password hidden) and the setting it came
 * from when the server cannot be reached, the credentials are refused or the
 * database does not exist; InvalidArgumentError for a malformed URL.
 *
 * @example
 * const store = await openPostgresMetadataStore({ url: 'postgres://stowage:pw@db:5432/stowage?pool=20' });
 * try { await store.listTenants(); } finally { await store.close(); }
 */
export async function openPostgresMetadataStore(options: PostgresMetadataStoreOptions): Promise<MetadataStore> {
  const { config, schema, server, shown } = parsePostgresUrl(options);
  const setting = options.settingName ?? '--metadata';
  const pool = new pg.Pool(config);
  // An idle connection the server closes (restart, idle timeout) is reported
  // here; the pool has already dropped it. Without a listener it would crash
  // the process.
  pool.on('error', () => undefined);
  // A connection checked out (e.g. holding a transaction open) that the
  // server closes emits 'error' on its client, where the pool is not
  // listening; the client's next query then fails, we report Unavailable,
  // and the pool drops it on release.
  pool.on('connect', (client) => {
    client.on('error', () => undefined);
  });

  const fail = async (err: unknown, what: string): Promise<never> => {
    await pool.end().catch(() => undefined);
    throw new UnavailableError(`cannot ${what} PostgreSQL metadata at ${shown}: ${errorMessage(err)} (check the ${setting} setting)`, { cause: err });
  };

  try {
    await pool.query('select 1');
  } catch (err) {
    return fail(err, 'open');
  }

  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  try {
    await migrateToLatest(db, 'postgres', schema !== undefined ? { schema } : {});
  } catch (err) {
    await db.destroy().catch(() => undefined);
    if (err instanceof UnavailableError) {
      throw new UnavailableError(`cannot migrate PostgreSQL metadata at ${shown}: ${errorMessage(err.cause ?? err)} (check the ${setting} setting)`, { cause: err });
    }
    throw err;
  }
  return createSqlMetadataStore(db, postgresDialectInfo(server));
}
