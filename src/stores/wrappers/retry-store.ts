/**
 * @module stores/wrappers/retry-store
 * `withRetry(store, policy)`: a BlobStore or MetadataStore whose calls are
 * retried on the failures the store reports as transient (restic's
 * RetryBackend). Stores translate what may pass (a dropped connection, a
 * throttled request, a restarting database) into UnavailableError, so the
 * default policy retries exactly those; everything else (NotFound, Conflict,
 * a full disk) is thrown at once.
 *
 * What is not retried, because a second try would not be the same call:
 * - `close()`;
 * - methods that stream (BlobStore.list returns an AsyncIterable): pages
 *   already handed out cannot be taken back;
 * - a `put` whose body is a stream: the first try consumed it.
 * A MetadataStore `transaction(fn)` is retried whole (`fn` runs again on a
 * fresh transaction, as on a serialization conflict: the contract makes
 * `fn` work only through its `tx`).
 */
import { isPromiseLike } from '@stowage/sdk/common/concurrency.js';
import { isStowageError } from '@stowage/sdk/common/errors.js';
import { retry, type RetryOptions, type RetryPolicy } from '@stowage/sdk/common/retry.js';
import { interceptMethods } from './method-proxy.js';

/** Store calls: the store's transient failures, 4 tries, from 50 ms doubling up to 1 s, fully jittered. */
export const STORE_RETRY: RetryPolicy = {
  name: 'store call',
  attempts: 4,
  baseDelayMs: 50,
  maxDelayMs: 1_000,
  jitter: 'full',
  retryable: (e) => isStowageError(e, 'Unavailable'),
};

const NEVER_RETRIED = new Set(['close']);

/** True when the arguments of `method` can be given to a second try (a put's stream body cannot). */
function replayable(method: string, args: unknown[]): boolean {
  return method !== 'put' || args[1] instanceof Uint8Array;
}

/**
 * `store` with each call retried under `policy` (`options` adds a signal,
 * a deadline, or an onRetry hook for logging).
 *
 * @example
 * const blobs = withRetry(await openBlobStore(url), STORE_RETRY, { onRetry: (e, n) => log(`blob store: ${e}; retry ${n}`) });
 */
export function withRetry<S extends object>(
  store: S,
  policy: RetryPolicy = STORE_RETRY,
  options: RetryOptions = {},
): S {
  return interceptMethods(store, (method, args, call) => {
    if (NEVER_RETRIED.has(method) || !replayable(method, args)) return call();
    const first = call();
    // A method that streams answered at once: hand its stream over as it is.
    if (!isPromiseLike(first)) return first;
    return retry(policy, (attempt) => (attempt === 1 ? first : call()) as Promise<unknown>, options);
  });
}
