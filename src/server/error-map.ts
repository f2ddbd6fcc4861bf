/**
 * @module server/error-map
 * The one place where Stowage error codes become HTTP statuses. Handlers
 * never pick an error status themselves: they throw (or let the engine throw)
 * a StowageError, and the app's error handler answers with
 * `toErrorResponse`. Errors raised by Hono itself (malformed JSON, wrong
 * Content-Type) are first translated to codes by `fromHttpException`, through
 * the same status -> code table the SDK reads answers with
 * (common/errors.ts HTTP_STATUS_ERROR_CODE).
 *
 * Anything that is not a StowageError is a bug: the client gets a generic 500
 * and the real error goes to the log, never into the response.
 */
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { HTTPException } from 'hono/http-exception';
import type { ErrorBody } from '@stowage/sdk/api/wire.js';
import {
  ERROR_CODES,
  ERROR_HTTP_STATUS,
  errorCodeOfStatus,
  StowageError,
  type ErrorCode,
} from '@stowage/sdk/common/errors.js';

/** HTTP status of every error code (the table lives in common/errors.ts, shared with the mount agent's control socket). */
export const HTTP_STATUS = ERROR_HTTP_STATUS as Readonly<Record<ErrorCode, ContentfulStatusCode>>;

/** Status of a Range request that no byte of the object satisfies (RFC 9110 §15.5.17); a protocol answer of the blob route, not an error code. */
export const RANGE_NOT_SATISFIABLE = 416;

/** Where unexpected errors are reported (stderr by default). */
export type ErrorLog = (message: string, err: unknown) => void;

const defaultLog: ErrorLog = (message, err) => {
  console.error(message, err);
};

/** An error answer: the status and the `ErrorBody` to send. */
export interface ErrorResponse {
  status: ContentfulStatusCode;
  body: ErrorBody;
}

/** HTTP status of an error code. */
export function statusOf(code: ErrorCode): ContentfulStatusCode {
  return HTTP_STATUS[code];
}

/**
 * Translates an exception Hono raised on its own (body parsing, media-type
 * gate) to a StowageError, so that it is answered through the same table.
 */
export function fromHttpException(e: HTTPException): StowageError {
  if (e.status === 415)
    return new StowageError('InvalidArgument', 'unsupported Content-Type: send the body as application/json', {
      cause: e,
    });
  // A 5xx Hono raises itself is this server failing, never an upstream being unavailable.
  const code = e.status >= 500 ? 'Internal' : errorCodeOfStatus(e.status);
  if (code === 'Internal') return new StowageError('Internal', 'internal error', { cause: e });
  return new StowageError(code, e.message || HONO_DEFAULT_MESSAGE[code] || 'bad request', { cause: e });
}

/** Messages of Hono exceptions raised without one. */
const HONO_DEFAULT_MESSAGE: Partial<Record<ErrorCode, string>> = {
  Unauthenticated: 'authentication required',
  Forbidden: 'forbidden',
  NotFound: 'not found',
  PayloadTooLarge: 'request body too large',
};

/**
 * The status and body to answer for any thrown value. StowageErrors keep
 * their code, message and details; anything else is logged and answered as
 * a generic 500 Internal.
 *
 * @example
 * app.onError((err, c) => { const r = toErrorResponse(err); return c.json(r.body, r.status); });
 */
export function toErrorResponse(err: unknown, log: ErrorLog = defaultLog): ErrorResponse {
  let e: unknown = err;
  if (e instanceof HTTPException) e = fromHttpException(e);
  if (e instanceof StowageError && (ERROR_CODES as readonly string[]).includes(e.code)) {
    if (e.code === 'Internal') log('stowage: internal error:', err);
    const body: ErrorBody = { error: { code: e.code, message: e.message } };
    if (e.details && Object.keys(e.details).length > 0) body.error.details = e.details;
    return { status: statusOf(e.code), body };
  }
  log('stowage: unexpected error:', err);
  return {
    status: 500,
    body: {
      error: { code: 'Internal', message: 'internal error: the server failed unexpectedly; see the server log' },
    },
  };
}
