/**
 * @module sql-dialect-info
 * What the shared SQL code asks of the engine behind a connection. Each
 * dialect file (sqlite-dialect.ts, postgres-dialect.ts) answers it: little
 * more than how to classify the driver's errors.
 */

/** The SQL engines the store runs on. */
export type SqlDialectName = 'sqlite' | 'postgres';

/** What the shared SQL code needs to know about the engine behind a connection. */
export interface SqlDialectInfo {
  readonly name: SqlDialectName;
  /** True when `err` is a UNIQUE or PRIMARY KEY violation. */
  isUniqueViolation(err: unknown): boolean;
  /** True when `err` means the database cannot be reached or used right now (connection lost, busy). */
  isUnavailable(err: unknown): boolean;
  /** True when `err` says the database's disk is full (checked before isUnavailable: the cure is space, not a retry). */
  isDiskFull(err: unknown): boolean;
  /**
   * True when transactions must ask for SERIALIZABLE explicitly (PostgreSQL
   * defaults to READ COMMITTED); false when BEGIN already is (SQLite's
   * driver begins IMMEDIATE transactions, which run one at a time).
   */
  readonly explicitSerializable: boolean;
  /**
   * True when `err` is a transient conflict that running the whole
   * transaction (or statement) again cures: PostgreSQL's serialization
   * failure (40001) and deadlock (40P01). Omitted by engines that never
   * report one (SQLite runs one write transaction at a time).
   */
  isRetryableConflict?(err: unknown): boolean;
  /** The driver error as a message for users (e.g. naming the server, never a password); defaults to its message. */
  describe?(err: unknown): string;
}
