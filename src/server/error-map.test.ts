/**
 * @module server/error-map.test
 * The code -> status table is exhaustive and answers errors without leaking
 * anything a client should not see.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HTTPException } from 'hono/http-exception';
import {
  ERROR_CODES,
  HTTP_STATUS_ERROR_CODE,
  NotFoundError,
  QuotaExceededError,
  StowageError,
} from '@stowage/sdk/common/errors.js';
import { HTTP_STATUS, fromHttpException, statusOf, toErrorResponse } from './error-map.js';

const silent = () => undefined;

describe('error map', () => {
  it('maps every error code, and nothing else, to an error status', () => {
    assert.deepEqual(Object.keys(HTTP_STATUS).sort(), [...ERROR_CODES].sort());
    for (const code of ERROR_CODES) {
      const status = statusOf(code);
      assert.ok(Number.isInteger(status) && status >= 400 && status <= 599, `${code} -> ${status}`);
    }
  });

  it('uses the documented statuses', () => {
    assert.deepEqual(HTTP_STATUS, {
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
    });
  });

  it('answers a StowageError with its code, message and details', () => {
    const r = toErrorResponse(new QuotaExceededError('too big', { details: { cap: 10, size: 20 } }), silent);
    assert.equal(r.status, 413);
    assert.deepEqual(r.body, { error: { code: 'QuotaExceeded', message: 'too big', details: { cap: 10, size: 20 } } });
    assert.deepEqual(toErrorResponse(new NotFoundError('gone'), silent).body, {
      error: { code: 'NotFound', message: 'gone' },
    });
  });

  it('answers unknown errors with a generic 500 and logs the real one', () => {
    const logged: unknown[] = [];
    const secret = new Error('db password is hunter2');
    const r = toErrorResponse(secret, (_m, e) => logged.push(e));
    assert.equal(r.status, 500);
    assert.equal(r.body.error.code, 'Internal');
    assert.doesNotMatch(JSON.stringify(r.body), /hunter2|at .*\.js/);
    assert.deepEqual(logged, [secret]);
  });

  it('treats a StowageError with a foreign code as unknown', () => {
    const odd = new StowageError('NotFound', 'x');
    (odd as unknown as { code: string }).code = 'Bogus';
    assert.equal(toErrorResponse(odd, silent).status, 500);
  });

  it('translates Hono exceptions through the same table', () => {
    assert.equal(
      toErrorResponse(new HTTPException(400, { message: 'Malformed JSON in request body' }), silent).body.error.code,
      'InvalidArgument',
    );
    assert.equal(toErrorResponse(new HTTPException(413), silent).status, 413);
    assert.equal(fromHttpException(new HTTPException(415)).code, 'InvalidArgument');
    assert.equal(fromHttpException(new HTTPException(502)).code, 'Internal');
  });

  it("reads Hono's own 4xx statuses by the one status table, and its 5xx as this server's failure", () => {
    for (const [status, code] of Object.entries(HTTP_STATUS_ERROR_CODE)) {
      const e = fromHttpException(new HTTPException(Number(status) as 400));
      assert.equal(e.code, Number(status) >= 500 ? 'Internal' : code, `HTTP ${status}`);
    }
    assert.equal(fromHttpException(new HTTPException(401)).message, 'authentication required');
    assert.equal(fromHttpException(new HTTPException(503)).message, 'internal error');
  });
});
