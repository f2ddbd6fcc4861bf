/**
 * @module concurrency
 * Bounded parallelism without a dependency: run at most `limit` tasks at once.
 */

/** Maps `items` through `fn` with at most `limit` calls in flight; results keep input order. The first rejection rejects the whole call (remaining items are not started). */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  async function worker(): Promise<void> {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        results[i] = await fn(items[i]!, i);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
}

/** True for a promise (or any thenable), as opposed to a value answered at once. */
export function isPromiseLike(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/** Resolves after `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Lets a long synchronous-looking loop (cached tree work awaits only resolved
 * promises, which never let I/O in) give the event loop a turn once it has run
 * for `budgetMs`, so one big commit or walk does not stall other requests.
 */
export class Pacer {
  private last = performance.now();
  constructor(private readonly budgetMs = 4) {}

  /** Resolves at once, or after a turn of the event loop when the budget is spent. */
  async tick(): Promise<void> {
    if (performance.now() - this.last < this.budgetMs) return;
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.last = performance.now();
  }
}
