/**
 * @module stores/wrappers/fault-store
 * `withFaults(store, plan)`: a BlobStore or MetadataStore that fails the
 * calls a `FaultPlan` picks, for tests of what happens when a store
 * misbehaves (the wrapped store is real: every call that is not faulted
 * reaches it). The plan counts every call and every injected fault per
 * method, so a test can check that faults really happened and were retried.
 * A faulted call never reaches the store.
 *
 * @example
 * const plan = new FaultPlan().fail('get', 2, () => new UnavailableError('blob store down'));
 * const blobs = withRetry(withFaults(realBlobs, plan));
 * await blobs.get(key);                      // rides out both faults
 * assert.equal(plan.calls('get'), 3);        // 2 faulted + 1 that passed
 */
import { interceptMethods } from './method-proxy.js';

/** One rule: which calls fail (method name or '*', an optional predicate), how many more times, and with what. */
interface FaultRule {
  method: string;
  remaining: number;
  when?: ((method: string, args: unknown[]) => boolean) | undefined;
  error: (method: string, args: unknown[]) => unknown;
}

/** Which calls of a wrapped store fail, and a record of every call. Rules apply first added, first matched. */
export class FaultPlan {
  readonly #rules: FaultRule[] = [];
  readonly #calls = new Map<string, { calls: number; faulted: number }>();

  /**
   * Fails the next `times` calls of `method` ('*': any method) that `when`
   * accepts (default: all) with `error(method, args)`; Infinity: until cleared.
   */
  fail(
    method: string,
    times: number,
    error: (method: string, args: unknown[]) => unknown,
    when?: (method: string, args: unknown[]) => boolean,
  ): this {
    if (!(times >= 0)) throw new RangeError(`fault count must be >= 0, not ${times}`);
    this.#rules.push({ method, remaining: times, when, error });
    return this;
  }

  /** Drops every rule (calls pass again); the counts stay. */
  clear(): this {
    this.#rules.length = 0;
    return this;
  }

  /** Calls of `method` (default: all methods) so far, faulted ones included. */
  calls(method?: string): number {
    return this.#sum(method, 'calls');
  }

  /** Calls of `method` (default: all methods) that were failed by the plan. */
  faulted(method?: string): number {
    return this.#sum(method, 'faulted');
  }

  /** The error for this call, or undefined to let it through; counts it either way. */
  decide(method: string, args: unknown[]): { error: unknown } | undefined {
    const count = this.#calls.get(method) ?? { calls: 0, faulted: 0 };
    this.#calls.set(method, count);
    count.calls++;
    const rule = this.#rules.find(
      (r) => r.remaining > 0 && (r.method === '*' || r.method === method) && (r.when?.(method, args) ?? true),
    );
    if (!rule) return undefined;
    rule.remaining--;
    count.faulted++;
    return { error: rule.error(method, args) };
  }

  #sum(method: string | undefined, field: 'calls' | 'faulted'): number {
    if (method !== undefined) return this.#calls.get(method)?.[field] ?? 0;
    let n = 0;
    for (const c of this.#calls.values()) n += c[field];
    return n;
  }
}

/** Methods that answer with an AsyncIterable rather than a promise (BlobStore.list): a fault fails the first page. */
const STREAMING = new Set(['list']);

/** `store` failing the calls `plan` picks (see the module comment). `close()` is never faulted. */
export function withFaults<S extends object>(store: S, plan: FaultPlan): S {
  return interceptMethods(store, (method, args, call) => {
    if (method === 'close') return call();
    const fault = plan.decide(method, args);
    if (!fault) return call();
    if (STREAMING.has(method)) return failingIterable(fault.error);
    return Promise.reject(fault.error);
  });
}

/** An iterable whose first step fails with `error`. */
function failingIterable(error: unknown): AsyncIterable<never> {
  return {
    [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(error) }),
  };
}
