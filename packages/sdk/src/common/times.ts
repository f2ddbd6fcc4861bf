/**
 * @module common/times
 * Times as the tree records them: whole milliseconds since the epoch plus the
 * nanoseconds past that millisecond (0..999999), so a nanosecond time fits in
 * two JSON numbers without losing precision.
 */

/** Nanoseconds in a millisecond. */
const NS_PER_MS = 1_000_000n;

/**
 * Splits nanoseconds since the epoch (a bigint, as `fs.stat(..., { bigint: true })`
 * gives them) into milliseconds and the nanoseconds past them; the
 * remainder is never negative, also before 1970.
 *
 * @example
 * splitNanos(1_700_000_000_123_456_789n); // { ms: 1700000000123, ns: 456789 }
 * splitNanos(-1n); // { ms: -1, ns: 999999 }
 */
/** Milliseconds (whole, floored) and the nanoseconds past them as one nanosecond count: splitNanos undone. */
export function joinNanos(ms: number, ns = 0): bigint {
  return BigInt(Math.floor(ms)) * NS_PER_MS + BigInt(ns);
}

export function splitNanos(total: bigint): { ms: number; ns: number } {
  let ms = total / NS_PER_MS;
  let ns = total % NS_PER_MS;
  if (ns < 0n) {
    ms -= 1n;
    ns += NS_PER_MS;
  }
  return { ms: Number(ms), ns: Number(ns) };
}
