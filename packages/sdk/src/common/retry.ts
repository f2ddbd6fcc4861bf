/**
 * @module common/retry
 * The one retry loop. Every place that tries something again (a store
 * statement that hit a conflict, a signed transfer, a commit whose server is
 * unreachable, a read plan whose signature expired) names a `RetryPolicy`
 * and calls `retry(policy, fn)`: how often, how long to wait between tries,
 * and which failures are worth another try are data, not a hand-written loop.
 *
 * Backoff before retry n (n = 1 for the first retry) is
 * `min(maxDelayMs, baseDelayMs * factor^(n-1))`, then jittered:
 * - 'full': a uniform draw in [0, d) (AWS "full jitter": spreads contenders best);
 * - 'spread': a uniform draw in [0.75 d, 1.25 d) (keeps the pace, breaks lockstep);
 * - 'none': exactly d.
 */
import { UnavailableError } from './errors.js';

/** How a delay is randomised (see the module comment). */
export type Jitter = 'full' | 'spread' | 'none';

/** What `retry` does; policies are constants named after what they retry. */
export interface RetryPolicy {
  /** For messages and logs ("sql conflict", "signed transfer"). */
  readonly name: string;
  /** Tries in all, the first included (>= 1; Infinity for "until aborted"). */
  readonly attempts: number;
  /** Backoff before the first retry, in milliseconds (0: retry at once). */
  readonly baseDelayMs: number;
  /** Largest backoff, before jitter (default: no cap). */
  readonly maxDelayMs?: number;
  /** Growth of the backoff per retry (default 2; 1 for a fixed delay). */
  readonly factor?: number;
  /** Default 'none'. */
  readonly jitter?: Jitter;
  /** True when `err` may pass on another try; anything else is thrown at once. */
  readonly retryable: (err: unknown) => boolean;
}

/** Per-call additions to a policy. */
export interface RetryOptions {
  /** Stops waiting and trying once aborted: the abort reason (or the last error) is thrown. */
  signal?: AbortSignal;
  /** No retry starts after this time (epoch ms); the last error is thrown instead. */
  deadline?: number;
  /** Called before each backoff, for logging: the error, the attempt that failed (1-based), the wait. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** Overrides the policy's `attempts` (e.g. a user's option). */
  attempts?: number;
}

/** The backoff before retry `n` (1-based) of `policy`, jitter included (`random` is for tests). */
export function backoffDelay(policy: RetryPolicy, n: number, random: () => number = Math.random): number {
  const d = Math.min(policy.maxDelayMs ?? Infinity, policy.baseDelayMs * (policy.factor ?? 2) ** (n - 1));
  switch (policy.jitter ?? 'none') {
    case 'full':
      return d * random();
    case 'spread':
      return d * (0.75 + random() / 2);
    case 'none':
      return d;
  }
}

/** Resolves after `ms`, or rejects with the signal's reason once it aborts. */
function wait(ms: number, signal?: AbortSignal): Promise<void> {
  if (ms <= 0 && !signal) return Promise.resolve();
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortReason(signal));
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal!));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new UnavailableError('aborted');
}

/**
 * Runs `fn` (given the 1-based attempt number) until it resolves, throws
 * something the policy does not retry, or the attempts, the deadline or the
 * signal run out; then the last error is thrown unchanged.
 *
 * @example
 * const TRANSFER: RetryPolicy = { name: 'signed transfer', attempts: 4, baseDelayMs: 200, jitter: 'spread', retryable: isTransient };
 * const bytes = await retry(TRANSFER, () => getOnce(url));
 */
export async function retry<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? policy.attempts;
  if (!(attempts >= 1))
    throw new RangeError(`retry policy "${policy.name}": attempts must be at least 1, not ${attempts}`);
  for (let attempt = 1; ; attempt++) {
    if (options.signal?.aborted) throw abortReason(options.signal);
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= attempts || !policy.retryable(err)) throw err;
      if (options.signal?.aborted) throw err;
      const delay = backoffDelay(policy, attempt);
      if (options.deadline !== undefined && Date.now() + delay >= options.deadline) throw err;
      options.onRetry?.(err, attempt, delay);
      await wait(delay, options.signal);
    }
  }
}
