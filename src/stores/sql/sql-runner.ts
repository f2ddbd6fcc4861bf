/**
 * @module sql-runner
 * How every SQL store operation runs: on one Kysely handle (the database, or
 * a transaction), refused once the store is closed, with driver errors
 * translated into Stowage errors, and (outside a transaction) rerun when the
 * dialect calls the failure a retryable conflict.
 *
 * Errors: unique violations become AlreadyExistsError with a message naming
 * the record; a full disk becomes InsufficientStorageError; errors the dialect
 * calls "unavailable" (connection lost, locked) become UnavailableError;
 * everything else InternalError. Stowage errors pass through untouched.
 */
import type { Kysely } from 'kysely';
import { AlreadyExistsError, InsufficientStorageError, InternalError, UnavailableError, isStowageError } from '@stowage/sdk/common/errors.js';
import { retry, type RetryPolicy } from '@stowage/sdk/common/retry.js';
import type { Database } from './schema.js';
import type { SqlDialectInfo } from './sql-dialect-info.js';

/** Most runs of one transaction (or autocommit statement) that keeps hitting retryable conflicts. */
export const MAX_CONFLICT_ATTEMPTS = 10;

/**
 * Reruns of a transaction (or autocommit statement) that hit a retryable
 * conflict: exponential from 8 ms with full jitter, capped at 250 ms, so
 * contenders spread out. `retryable` is bound per store (the dialect knows).
 */
export const SQL_CONFLICT_RETRY: Omit<RetryPolicy, 'retryable'> = { name: 'sql conflict', attempts: MAX_CONFLICT_ATTEMPTS, baseDelayMs: 8, maxDelayMs: 250, jitter: 'full' };

/** Shared between a store and the runners of its transactions. */
export interface StoreState {
  closed: boolean;
}

/** Runs store operations on one Kysely handle: the database itself, or a transaction. */
export class SqlRunner {
  constructor(
    readonly db: Kysely<Database>,
    readonly dialect: SqlDialectInfo,
    readonly state: StoreState,
  ) {}

  /** A runner of the same store on `trx` (a transaction of this handle's database). */
  on(trx: Kysely<Database>): SqlRunner {
    return new SqlRunner(trx, this.dialect, this.state);
  }

  /** Runs `f` in a transaction, or directly when this handle already is one (transactions do not nest). */
  atomically<T>(f: (db: Kysely<Database>) => Promise<T>): Promise<T> {
    if (this.db.isTransaction) return f(this.db);
    return this.beginTransaction().execute(f);
  }

  /** A transaction builder at the isolation the contract promises. */
  beginTransaction() {
    const builder = this.db.transaction();
    return this.dialect.explicitSerializable ? builder.setIsolationLevel('serializable') : builder;
  }

  /**
   * Runs one store operation, translating driver errors into Stowage errors.
   * Outside a transaction, an operation that hit a retryable conflict (a
   * deadlock between two multi-row statements) runs again: every operation is
   * idempotent and the failed statement changed nothing. Inside one, the
   * conflict goes up to the transaction wrapper, which reruns the whole body.
   */
  async run<T>(action: string, f: () => Promise<T>, uniqueMessage?: string): Promise<T> {
    const once = async (): Promise<T> => {
      if (this.state.closed) throw new UnavailableError('metadata store is closed');
      return f();
    };
    try {
      return await (this.db.isTransaction ? once() : retry(this.conflictRetry, once));
    } catch (err) {
      throw this.translate(err, action, uniqueMessage);
    }
  }

  /** SQL_CONFLICT_RETRY with this dialect's idea of a retryable conflict. */
  readonly conflictRetry: RetryPolicy = { ...SQL_CONFLICT_RETRY, retryable: (err) => this.isRetryableConflict(err) };

  /** True when `err`, or an error in its cause chain, is a conflict the dialect says a rerun cures. */
  isRetryableConflict(err: unknown): boolean {
    const check = this.dialect.isRetryableConflict;
    if (!check) return false;
    for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; depth++) {
      if (check(e)) return true;
      e = (e as { cause?: unknown }).cause;
    }
    return false;
  }

  /** Maps a driver error to AlreadyExists, Unavailable or Internal. */
  translate(err: unknown, action: string, uniqueMessage?: string): Error {
    if (isStowageError(err)) return err;
    const detail = this.dialect.describe ? this.dialect.describe(err) : err instanceof Error ? err.message : String(err);
    if (uniqueMessage !== undefined && this.dialect.isUniqueViolation(err)) return new AlreadyExistsError(uniqueMessage, { cause: err });
    if (this.state.closed) return new UnavailableError('metadata store is closed', { cause: err });
    if (this.dialect.isDiskFull(err)) {
      return new InsufficientStorageError(`disk full: the metadata database could not ${action} (${detail}); nothing was changed. Free space on its disk (or grow it), then retry`, { cause: err });
    }
    if (this.dialect.isUnavailable(err)) {
      return new UnavailableError(`metadata store unavailable, could not ${action} (${detail}); retry later`, { cause: err });
    }
    return new InternalError(`metadata store could not ${action}: ${detail}`, { cause: err });
  }
}
