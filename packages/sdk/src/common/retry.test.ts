/** Unit tests of common/retry: what is retried, how often, how long it waits, and when it stops early. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConflictError, UnavailableError, isStowageError } from './errors.js';
import { backoffDelay, retry, type RetryPolicy } from './retry.js';

const transient: RetryPolicy = {
  name: 'test',
  attempts: 4,
  baseDelayMs: 1,
  retryable: (e) => isStowageError(e, 'Unavailable'),
};

/** A function that fails with `errors` in turn, then answers `value`; counts its calls. */
function flaky<T>(errors: unknown[], value: T) {
  const calls: number[] = [];
  const fn = async (attempt: number): Promise<T> => {
    calls.push(attempt);
    const e = errors.shift();
    if (e !== undefined) throw e;
    return value;
  };
  return { fn, calls };
}

describe('retry', () => {
  it('retries a retryable failure until it passes, numbering the attempts', async () => {
    const f = flaky([new UnavailableError('a'), new UnavailableError('b')], 'ok');
    const seen: Array<[string, number]> = [];
    assert.equal(await retry(transient, f.fn, { onRetry: (e, n) => seen.push([(e as Error).message, n]) }), 'ok');
    assert.deepEqual(f.calls, [1, 2, 3]);
    assert.deepEqual(seen, [
      ['a', 1],
      ['b', 2],
    ]);
  });

  it('throws the last error unchanged once the attempts are spent', async () => {
    const last = new UnavailableError('4th');
    const f = flaky(
      [
        new UnavailableError('1'),
        new UnavailableError('2'),
        new UnavailableError('3'),
        last,
        new UnavailableError('never'),
      ],
      'ok',
    );
    await assert.rejects(retry(transient, f.fn), (e) => e === last);
    assert.deepEqual(f.calls, [1, 2, 3, 4]);
  });

  it('throws a failure the policy does not retry at once', async () => {
    const f = flaky([new ConflictError('permanent')], 'ok');
    await assert.rejects(retry(transient, f.fn), { code: 'Conflict' });
    assert.deepEqual(f.calls, [1]);
  });

  it('takes a per-call attempts override, and refuses a policy that would never run', async () => {
    const f = flaky([new UnavailableError('1'), new UnavailableError('2')], 'ok');
    await assert.rejects(retry(transient, f.fn, { attempts: 2 }), /2/);
    assert.deepEqual(f.calls, [1, 2]);
    await assert.rejects(
      retry({ ...transient, attempts: 0 }, async () => 1),
      RangeError,
    );
    await assert.rejects(
      retry({ ...transient, attempts: Number.NaN }, async () => 1),
      RangeError,
    );
  });

  it('stops waiting when the signal aborts, with the abort reason, and never starts after an abort', async () => {
    const slow: RetryPolicy = { ...transient, attempts: Infinity, baseDelayMs: 60_000 };
    const ac = new AbortController();
    const f = flaky(
      Array.from({ length: 100 }, () => new UnavailableError('down')),
      'ok',
    );
    const started = Date.now();
    setTimeout(() => ac.abort(new Error('stop')), 20);
    await assert.rejects(retry(slow, f.fn, { signal: ac.signal }), /stop/);
    assert.ok(Date.now() - started < 5_000, 'a 60 s backoff was cut short');
    assert.deepEqual(f.calls, [1]);
    let ran = false;
    await assert.rejects(
      retry(
        transient,
        async () => {
          ran = true;
        },
        { signal: ac.signal },
      ),
      /stop/,
    );
    assert.equal(ran, false);
  });

  it('starts no retry that would end past the deadline', async () => {
    const f = flaky([new UnavailableError('1'), new UnavailableError('2')], 'ok');
    await assert.rejects(retry({ ...transient, baseDelayMs: 10_000 }, f.fn, { deadline: Date.now() + 1_000 }), /1/);
    assert.deepEqual(f.calls, [1]);
  });

  it('backs off exponentially up to the cap, with the chosen jitter', () => {
    const p: RetryPolicy = { name: 'b', attempts: 10, baseDelayMs: 8, maxDelayMs: 250, retryable: () => true };
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7].map((n) => backoffDelay(p, n)),
      [8, 16, 32, 64, 128, 250, 250],
    );
    assert.equal(backoffDelay({ ...p, factor: 1 }, 5), 8);
    assert.equal(
      backoffDelay({ ...p, jitter: 'full' }, 3, () => 0.5),
      16,
    );
    assert.equal(
      backoffDelay({ ...p, jitter: 'full' }, 3, () => 0),
      0,
    );
    assert.equal(
      backoffDelay({ ...p, jitter: 'spread' }, 3, () => 0),
      24,
    );
    assert.equal(backoffDelay({ ...p, jitter: 'spread' }, 3, () => 0.999999) < 40, true);
    for (let i = 0; i < 100; i++) {
      const d = backoffDelay({ ...p, jitter: 'full' }, 9);
      assert.ok(d >= 0 && d < 250, `full jitter stays under the cap: ${d}`);
    }
  });
});
