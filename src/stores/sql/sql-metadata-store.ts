/**
 * @module sql-metadata-store
 * The one SQL implementation of MetadataStore, over Kysely, for SQLite and
 * PostgreSQL alike (the JuiceFS way: one body of queries, a dialect file per
 * engine that only opens connections and classifies errors). Nothing here
 * may depend on the engine behind `db`; what differs is asked of a small
 * {@link SqlDialectInfo}.
 *
 * The queries live a module per table group (tenant-, attachment-, sandbox-, volume-,
 * commit-, chunk-, upload- and setting-queries.ts), each a function of a
 * {@link SqlRunner}: the handle they run on (the database, or a transaction)
 * with the store's error translation and conflict retry. This module composes
 * them into MetadataOps, once over the database and once per transaction.
 *
 * Conventions (see schema.ts): times are epoch milliseconds, booleans 0/1,
 * JSON as text. Lists of hashes are split into batches (sql-batches.ts).
 * Outside a transaction each batch commits on its own; that is safe because
 * every batched write is idempotent, so a call that fails midway is repaired
 * by repeating it.
 *
 * Errors: as sql-runner.ts translates them. Errors thrown by the function
 * given to `transaction` pass through untouched.
 */
import type { Kysely } from 'kysely';
import { UnavailableError } from '@stowage/sdk/common/errors.js';
import { retry } from '@stowage/sdk/common/retry.js';
import type { MetadataOps, MetadataStore } from '../metadata-store.js';
import { attachmentQueries } from './attachment-queries.js';
import { chunkQueries } from './chunk-queries.js';
import { commitQueries } from './commit-queries.js';
import type { Database } from './schema.js';
import type { SqlDialectInfo } from './sql-dialect-info.js';
import { sandboxQueries } from './sandbox-queries.js';
import { settingQueries } from './setting-queries.js';
import { SqlRunner } from './sql-runner.js';
import { tenantQueries } from './tenant-queries.js';
import { uploadQueries } from './upload-queries.js';
import { volumeQueries } from './volume-queries.js';

// The bound on conflict reruns is part of this store's behaviour (its tests count them).
export { MAX_CONFLICT_ATTEMPTS } from './sql-runner.js';

/** MetadataOps over one handle: every table group's queries run by `runner`. */
function sqlMetadataOps(runner: SqlRunner): MetadataOps {
  return {
    ...tenantQueries(runner),
    ...attachmentQueries(runner),
    ...sandboxQueries(runner),
    ...volumeQueries(runner),
    ...commitQueries(runner),
    ...chunkQueries(runner),
    ...uploadQueries(runner),
    ...settingQueries(runner),
  };
}

/**
 * A MetadataStore over a Kysely database of the schema in schema.ts (run
 * migrateToLatest first; the dialect files do). Used by
 * openSqliteMetadataStore and openPostgresMetadataStore.
 */
export function createSqlMetadataStore(db: Kysely<Database>, dialect: SqlDialectInfo): MetadataStore {
  const runner = new SqlRunner(db, dialect, { closed: false });
  const { state } = runner;

  const transactionOnce = async <T>(fn: (tx: MetadataOps) => Promise<T>): Promise<T> => {
    if (state.closed) throw new UnavailableError('metadata store is closed');
    const NONE = Symbol('none');
    let thrownByFn: unknown = NONE;
    try {
      return await runner.beginTransaction().execute(async (trx) => {
        try {
          return await fn(sqlMetadataOps(runner.on(trx)));
        } catch (err) {
          thrownByFn = err;
          throw err;
        }
      });
    } catch (err) {
      // The caller's own error comes back as is; begin/commit failures are ours to classify.
      if (err === thrownByFn) throw err;
      throw runner.translate(err, 'run a transaction');
    }
  };

  return {
    ...sqlMetadataOps(runner),

    /**
     * Runs `fn` in one transaction with ops bound to it. Keep it short: on
     * SQLite the store's one connection (and the database's write lock) is
     * held until `fn` settles, so other calls on this store wait for it, and
     * calling the store itself (instead of `tx`) inside `fn` never returns.
     */
    async transaction<T>(fn: (tx: MetadataOps) => Promise<T>): Promise<T> {
      // A serialisable transaction may be refused by a concurrent one
      // (PostgreSQL: serialization failure or deadlock); the whole body runs
      // again, a bounded number of times with jittered backoff. The body must
      // therefore only work through `tx` (which the contract asks anyway).
      return retry(runner.conflictRetry, () => transactionOnce(fn));
    },

    /** Closes the connection(s); later calls throw UnavailableError. Idempotent. */
    async close(): Promise<void> {
      if (state.closed) return;
      state.closed = true;
      await db.destroy();
    },
  };
}
