/**
 * @module mount/fs-error
 * A failure the kernel should see as an errno. The agent's file system code
 * throws these; the FUSE layer turns them into negative errno answers, and
 * anything else into EIO (after logging it), so a bug never hangs a caller.
 * Errors from the server (StowageErrors) become errnos by one table,
 * ERRNO_OF_CODE, applied to every operation by withErrnoMapping.
 */
import { constants } from 'node:os';
import { isPromiseLike } from '@stowage/sdk/common/concurrency.js';
import { StowageError, type ErrorCode } from '@stowage/sdk/common/errors.js';

export type Errno = keyof typeof constants.errno;

export class FsError extends Error {
  constructor(
    readonly code: Errno,
    message?: string,
  ) {
    // An errno is an answer, not a fault: no stack (capturing one cost more than the rest of a failed lookup).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message ?? code);
    Error.stackTraceLimit = limit;
  }

  /** The negative errno number FUSE expects. */
  get errno(): number {
    return -constants.errno[this.code];
  }
}

export function fsError(code: Errno, message?: string): FsError {
  return new FsError(code, message);
}

/**
 * The errno the kernel sees for each Stowage error code (the mount's one
 * table; the server's is ERROR_HTTP_STATUS). Exhaustive by type: a new code
 * fails to compile until it has an errno. EIO answers are logged, since they
 * say nothing by themselves.
 */
export const ERRNO_OF_CODE: Readonly<Record<ErrorCode, Errno>> = {
  NotFound: 'ENOENT',
  AlreadyExists: 'EEXIST',
  Conflict: 'EBUSY',
  InvalidArgument: 'EINVAL',
  PreconditionFailed: 'ESTALE',
  QuotaExceeded: 'EDQUOT',
  Unauthenticated: 'EACCES',
  Forbidden: 'EACCES',
  ReadOnly: 'EROFS',
  PayloadTooLarge: 'EFBIG',
  InsufficientStorage: 'ENOSPC',
  Unavailable: 'EIO',
  Internal: 'EIO',
};

/**
 * `err` as the FsError the kernel should see: an FsError as it is, a
 * StowageError by ERRNO_OF_CODE, anything else EIO. Every EIO that is not
 * already an FsError is logged with its cause (a server that cannot be
 * reached, a bug), so the log says what the caller's EIO was.
 */
export function toFsError(err: unknown, log: (message: string) => void): FsError {
  if (err instanceof FsError) return err;
  const errno = err instanceof StowageError ? (ERRNO_OF_CODE[err.code] ?? 'EIO') : 'EIO';
  const message = err instanceof Error ? err.message : String(err);
  if (errno === 'EIO')
    log(`EIO: ${err instanceof Error && !(err instanceof StowageError) ? (err.stack ?? message) : message}`);
  return new FsError(errno, message);
}

/**
 * FUSE operations whose failures reach the kernel through toFsError: a
 * rejected operation answers the errno of its error (a StowageError from the
 * server included) instead of a bare EIO. Synchronous results and throws
 * pass unchanged.
 */
export function withErrnoMapping<O extends object>(ops: O, log: (message: string) => void): O {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(ops)) {
    if (typeof value !== 'function') {
      out[name] = value;
      continue;
    }
    const fn = value as (...args: unknown[]) => unknown;
    out[name] = (...args: unknown[]): unknown => {
      const result = fn.apply(ops, args);
      if (!isPromiseLike(result)) return result;
      return Promise.resolve(result).then(undefined, (e: unknown) => {
        throw toFsError(e, (m) => log(`${name} failed: ${m}`));
      });
    };
  }
  return out as O;
}
