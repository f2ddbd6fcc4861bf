/**
 * @module errors
 * The short list of error codes every layer speaks. Each direction has
 * exactly one table: code -> HTTP status (ERROR_HTTP_STATUS, answered by the
 * server through server/error-map.ts), HTTP status -> code for answers that
 * carry no Stowage error body (HTTP_STATUS_ERROR_CODE, read by the SDK),
 * code -> exit status (cli/output.ts) and code -> errno (mount/fs-error.ts).
 */

/** Every code a Stowage error can carry. */
export const ERROR_CODES = [
  'NotFound',
  'AlreadyExists',
  'Conflict',
  'InvalidArgument',
  'PreconditionFailed',
  'QuotaExceeded',
  'Unauthenticated',
  'Forbidden',
  'ReadOnly',
  'PayloadTooLarge',
  'InsufficientStorage',
  'Unavailable',
  'Internal',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** Base class: an error with a stable code and a message a user can act on. */
/** HTTP status of every error code; exhaustive by type (a new code fails to compile until it is mapped). */
export const ERROR_HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  NotFound: 404,
  AlreadyExists: 409,
  Conflict: 409,
  InvalidArgument: 400,
  PreconditionFailed: 412,
  QuotaExceeded: 413,
  Unauthenticated: 401,
  Forbidden: 403,
  ReadOnly: 403,
  PayloadTooLarge: 413,
  InsufficientStorage: 507,
  Unavailable: 503,
  Internal: 500,
};

/**
 * Error code of an HTTP error status that came without a Stowage ErrorBody
 * (a proxy's page, a blob store's XML, a framework's own answer). Where
 * ERROR_HTTP_STATUS sends two codes to one status (403, 409, 413) the body
 * tells them apart; without one the broader code stands. Statuses not
 * listed: see errorCodeOfStatus.
 */
export const HTTP_STATUS_ERROR_CODE: Readonly<Record<number, ErrorCode>> = {
  400: 'InvalidArgument',
  401: 'Unauthenticated',
  403: 'Forbidden',
  404: 'NotFound',
  408: 'Unavailable',
  409: 'Conflict',
  412: 'PreconditionFailed',
  413: 'PayloadTooLarge',
  416: 'InvalidArgument',
  429: 'Unavailable',
  500: 'Internal',
  502: 'Unavailable',
  503: 'Unavailable',
  504: 'Unavailable',
  507: 'InsufficientStorage',
};

/** The code of an error status by HTTP_STATUS_ERROR_CODE; other 4xx are InvalidArgument, anything else Internal. */
export function errorCodeOfStatus(status: number): ErrorCode {
  return HTTP_STATUS_ERROR_CODE[status] ?? (status >= 400 && status < 500 ? 'InvalidArgument' : 'Internal');
}

export class StowageError extends Error {
  readonly code: ErrorCode;
  /** Extra machine-readable facts (e.g. cap and size for QuotaExceeded). */
  readonly details?: Record<string, unknown>;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = `${code}Error`;
    this.code = code;
    if (options?.details) this.details = options.details;
  }
}

type Opts = { cause?: unknown; details?: Record<string, unknown> };

export class NotFoundError extends StowageError {
  constructor(message: string, o?: Opts) {
    super('NotFound', message, o);
  }
}
export class AlreadyExistsError extends StowageError {
  constructor(message: string, o?: Opts) {
    super('AlreadyExists', message, o);
  }
}
export class ConflictError extends StowageError {
  constructor(message: string, o?: Opts) {
    super('Conflict', message, o);
  }
}
export class InvalidArgumentError extends StowageError {
  constructor(message: string, o?: Opts) {
    super('InvalidArgument', message, o);
  }
}
export class PreconditionFailedError extends StowageError {
  constructor(message: string, o?: Opts) {
    super('PreconditionFailed', message, o);
  }
}
export class QuotaExceededError extends StowageError {
  constructor(message: string, o?: Opts) {
    super('QuotaExceeded', message, o);
  }
}
export class UnauthenticatedError extends StowageError {
  constructor(message: string, o?: Opts) {
    super('Unauthenticated', message, o);
  }
}
export class ForbiddenError extends StowageError {
  constructor(message: string, o?: Opts) {
    super('Forbidden', message, o);
  }
}
export class ReadOnlyError extends StowageError {
  constructor(message: string, o?: Opts) {
    super('ReadOnly', message, o);
  }
}
export class PayloadTooLargeError extends StowageError {
  constructor(message: string, o?: Opts) {
    super('PayloadTooLarge', message, o);
  }
}
/** The server's own disk (blob directory, upload staging) is full: nothing was stored; free space and retry. */
export class InsufficientStorageError extends StowageError {
  constructor(message: string, o?: Opts) {
    super('InsufficientStorage', message, o);
  }
}
export class UnavailableError extends StowageError {
  constructor(message: string, o?: Opts) {
    super('Unavailable', message, o);
  }
}
export class InternalError extends StowageError {
  constructor(message: string, o?: Opts) {
    super('Internal', message, o);
  }
}

/** Errno codes of a file system with no room left (ENOSPC: no space; EDQUOT: over a disk quota). */
const DISK_FULL_ERRNO = new Set(['ENOSPC', 'EDQUOT']);

/** True when `err` is a file-system error saying the disk (or the quota on it) is full. */
export function isDiskFull(err: unknown): boolean {
  const code = typeof err === 'object' && err !== null && 'code' in err ? (err as { code: unknown }).code : undefined;
  return typeof code === 'string' && DISK_FULL_ERRNO.has(code);
}

/**
 * `err` as the InsufficientStorage error of `what` when it says the disk is
 * full; any other error unchanged. The message starts with "disk full" and
 * says what to do.
 *
 * @example
 * catch (err) { throw diskFullOr(err, `storing blob ${key}`); }
 */
export function diskFullOr(err: unknown, what: string): unknown {
  if (!isDiskFull(err)) return err;
  return new InsufficientStorageError(
    `disk full: ${what} failed: the server's disk has no space left (${(err as { code: string }).code}); nothing was stored. Free space on the server (or grow its disk), then retry`,
    { cause: err },
  );
}

/** True when `e` is a StowageError, optionally of the given code. */
export function isStowageError(e: unknown, code?: ErrorCode): e is StowageError {
  return e instanceof StowageError && (code === undefined || e.code === code);
}

/** The subclass of each code, so errors rebuilt from the wire work with `instanceof`. */
const ERROR_CLASSES: Readonly<Record<ErrorCode, new (message: string, o?: Opts) => StowageError>> = {
  NotFound: NotFoundError,
  AlreadyExists: AlreadyExistsError,
  Conflict: ConflictError,
  InvalidArgument: InvalidArgumentError,
  PreconditionFailed: PreconditionFailedError,
  QuotaExceeded: QuotaExceededError,
  Unauthenticated: UnauthenticatedError,
  Forbidden: ForbiddenError,
  ReadOnly: ReadOnlyError,
  PayloadTooLarge: PayloadTooLargeError,
  InsufficientStorage: InsufficientStorageError,
  Unavailable: UnavailableError,
  Internal: InternalError,
};

/** Builds the subclass for a code received over the wire; unknown codes become InternalError. */
export function errorFromCode(code: string, message: string, details?: Record<string, unknown>): StowageError {
  const known = (ERROR_CODES as readonly string[]).includes(code) ? (code as ErrorCode) : 'Internal';
  return new ERROR_CLASSES[known](message, details ? { details } : undefined);
}
