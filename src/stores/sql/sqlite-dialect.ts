/**
 * @module sqlite-dialect
 * Opens the SQL metadata store on a SQLite file (the embedded default of
 * `stowage serve`): connection setup, error classification, and the one
 * driver change SQLite needs. All queries live in the shared *-queries.ts
 * modules, composed by sql-metadata-store.ts.
 *
 * Transactions begin IMMEDIATE, taking the write lock up front. SQLite's
 * default (DEFERRED) upgrades a read transaction to a write one at the first
 * write, which fails with SQLITE_BUSY when another connection wrote in
 * between; IMMEDIATE makes each transaction serialisable and lets the busy
 * timeout queue writers instead.
 *
 * One store holds one connection, and Kysely runs one statement or
 * transaction on it at a time. Several processes may open the same file;
 * they queue on SQLite's lock for up to the busy timeout. (That wait blocks
 * the waiting process's event loop, so two stores on one file in one process
 * must not hold transactions open across each other's writes.)
 */
import BetterSqlite3 from 'better-sqlite3';
import { CompiledQuery, Kysely, SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver, type SqliteDialectConfig } from 'kysely';
import { UnavailableError } from '@stowage/sdk/common/errors.js';
import type { MetadataStore } from '../metadata-store.js';
import { migrateToLatest } from './migrations.js';
import type { Database } from './schema.js';
import type { SqlDialectInfo } from './sql-dialect-info.js';
import { createSqlMetadataStore } from './sql-metadata-store.js';

/** Options of {@link openSqliteMetadataStore}. */
export interface SqliteMetadataStoreOptions {
  /** Path of the database file (created if missing; its directory must exist), or ':memory:'. */
  path: string;
}

/** Milliseconds a statement waits for another connection's lock before failing with Unavailable. */
const BUSY_TIMEOUT_MS = 5000;

/** Result codes (extended included) that mean "cannot use the database now", not "bad request". */
const UNAVAILABLE_CODES = ['SQLITE_BUSY', 'SQLITE_LOCKED', 'SQLITE_CANTOPEN', 'SQLITE_IOERR', 'SQLITE_READONLY', 'SQLITE_PROTOCOL'];

/** How the shared SQL code recognises better-sqlite3 errors. */
export const sqliteDialectInfo: SqlDialectInfo = {
  name: 'sqlite',
  explicitSerializable: false,
  isUniqueViolation(err) {
    const code = errorCode(err);
    return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
  },
  isDiskFull(err) {
    const code = errorCode(err);
    // SQLite says SQLITE_FULL, or an I/O error whose errno was ENOSPC when the WAL or journal could not grow.
    return code === 'SQLITE_FULL' || (code?.startsWith('SQLITE_IOERR') === true && /disk is full|no space left/i.test(String((err as Error).message)));
  },
  isUnavailable(err) {
    const code = errorCode(err);
    if (code !== undefined) return UNAVAILABLE_CODES.some((c) => code === c || code.startsWith(`${c}_`));
    // better-sqlite3 throws a plain TypeError once its connection is closed.
    return err instanceof TypeError && /database connection is not open/i.test(err.message);
  },
};

/**
 * Opens (creating and migrating if needed) a SQLite metadata store.
 * Throws UnavailableError when the file cannot be opened, InternalError when
 * a migration fails.
 *
 * @example
 * const store = await openSqliteMetadataStore({ path: join(dataDir, 'metadata.db') });
 * try { await store.getTenantByName('acme'); } finally { await store.close(); }
 */
export async function openSqliteMetadataStore(options: SqliteMetadataStoreOptions): Promise<MetadataStore> {
  let sqlite: BetterSqlite3.Database;
  try {
    sqlite = new BetterSqlite3(options.path, { timeout: BUSY_TIMEOUT_MS });
  } catch (err) {
    const detail = err instanceof Error ? err.message : String(err);
    throw new UnavailableError(
      `cannot open the SQLite metadata database at "${options.path}": ${detail}. Check that the directory exists and is writable.`,
      { cause: err },
    );
  }
  try {
    // WAL lets readers run alongside the writer. synchronous=FULL syncs the
    // WAL at every commit: a commit is Stowage's durability boundary, so an
    // acknowledged commit must survive a power loss, not only a process crash
    // (NORMAL could drop the last commits on power loss). Blob writes are
    // fsynced too, so the two agree.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
    sqlite.pragma('foreign_keys = ON');
  } catch (err) {
    sqlite.close();
    const detail = err instanceof Error ? err.message : String(err);
    throw new UnavailableError(`cannot set up the SQLite metadata database at "${options.path}": ${detail}`, { cause: err });
  }

  const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: sqlite }) });
  try {
    await migrateToLatest(db, 'sqlite');
  } catch (err) {
    await db.destroy();
    throw err;
  }
  return createSqlMetadataStore(db, sqliteDialectInfo);
}

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Kysely's SQLite driver with BEGIN IMMEDIATE transactions (see the module comment). */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

/** Kysely's SQLite dialect, with {@link ImmediateSqliteDriver}. */
class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: SqliteDialectConfig;

  constructor(config: SqliteDialectConfig) {
    super(config);
    this.#config = config;
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}
