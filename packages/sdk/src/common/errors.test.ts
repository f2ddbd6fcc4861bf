/**
 * @module common/errors.test
 * The two HTTP tables agree: every status the server answers with reads back
 * as the same code (or, where two codes share a status, one the body tells
 * apart), and statuses nobody listed fall back sensibly.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES, ERROR_HTTP_STATUS, HTTP_STATUS_ERROR_CODE, errorCodeOfStatus, type ErrorCode } from './errors.js';

describe('HTTP status -> error code table', () => {
  it('reads every status the server answers with back as that code, or as the code that shares its status', () => {
    for (const code of ERROR_CODES) {
      const status = ERROR_HTTP_STATUS[code];
      const back = errorCodeOfStatus(status);
      const sharing = ERROR_CODES.filter((c) => ERROR_HTTP_STATUS[c] === status);
      assert.ok(sharing.includes(back), `${code} -> ${status} -> ${back}`);
      if (sharing.length === 1) assert.equal(back, code);
    }
  });

  it('uses the documented codes', () => {
    const expected: Record<number, ErrorCode> = {
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
    assert.deepEqual(HTTP_STATUS_ERROR_CODE, expected);
  });

  it('falls back to InvalidArgument for other 4xx and Internal for anything else, odd numbers included', () => {
    assert.equal(errorCodeOfStatus(418), 'InvalidArgument');
    assert.equal(errorCodeOfStatus(451), 'InvalidArgument');
    assert.equal(errorCodeOfStatus(501), 'Internal');
    assert.equal(errorCodeOfStatus(599), 'Internal');
    assert.equal(errorCodeOfStatus(200), 'Internal');
    assert.equal(errorCodeOfStatus(0), 'Internal');
    assert.equal(errorCodeOfStatus(Number.NaN), 'Internal');
    assert.equal(errorCodeOfStatus(-404), 'Internal');
  });
});
