/**
 * @module sql-batches
 * Splitting long lists into statements: lists of hashes are cut into batches
 * of BATCH so that a 100,000-hash call stays under SQLite's bound-variable
 * limit and PostgreSQL's parameter limit, and deduplicated first (PostgreSQL
 * refuses an upsert that hits the same row twice in one statement).
 */

/** Most hashes (or rows) per statement. */
export const BATCH = 500;

export function unique<T>(xs: readonly T[]): T[] {
  return [...new Set(xs)];
}

/** The first item of each key, in input order. */
export function uniqueBy<T>(xs: readonly T[], key: (x: T) => string): T[] {
  const seen = new Map<string, T>();
  for (const x of xs) if (!seen.has(key(x))) seen.set(key(x), x);
  return [...seen.values()];
}

export function* batches<T>(xs: readonly T[], size: number): Generator<T[]> {
  for (let i = 0; i < xs.length; i += size) yield xs.slice(i, i + size);
}

/** Batches of at most `size` items and about `maxBytes` bytes (a single larger item gets a batch of its own). */
export function* batchesBySize<T>(xs: readonly T[], size: number, maxBytes: number, bytes: (x: T) => number): Generator<T[]> {
  let batch: T[] = [];
  let total = 0;
  for (const x of xs) {
    const n = bytes(x);
    if (batch.length > 0 && (batch.length >= size || total + n > maxBytes)) {
      yield batch;
      batch = [];
      total = 0;
    }
    batch.push(x);
    total += n;
  }
  if (batch.length > 0) yield batch;
}
