/**
 * @module limits
 * Bounds the server enforces and clients plan for, in one place both sides import.
 */
import { PayloadTooLargeError } from './errors.js';

/**
 * Largest change set one commit accepts (413 above it). A bigger one would
 * hold a volume's commit lock and the server's memory for seconds; clients
 * split (the SDK's directory upload does) or are told to.
 */
export const MAX_COMMIT_CHANGES = 100_000;

/** The 413 for a change set over MAX_COMMIT_CHANGES, saying what to do instead. */
export function tooManyChanges(count?: number): PayloadTooLargeError {
  return new PayloadTooLargeError(
    `a commit may hold at most ${MAX_COMMIT_CHANGES} changes${count === undefined ? '' : `, this one has ${count}`}: split it into several commits of at most ${MAX_COMMIT_CHANGES} changes each`,
    { details: { maxChanges: MAX_COMMIT_CHANGES, ...(count === undefined ? {} : { changes: count }) } },
  );
}

/** Largest uid/gid a tree records: 2^32 - 2 (2^32 - 1 is (uid_t)-1, chown's "no change"). */
export const MAX_OWNER_ID = 4294967294;

/** Most milliseconds a tree time may lie either side of the epoch: the range of a Date. */
export const MAX_TIME_MS = 8.64e15;

/** Largest nanoseconds-past-the-millisecond part of a tree time. */
export const MAX_TIME_NS = 999_999;
