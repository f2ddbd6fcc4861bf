/**
 * @module client/http-client.test
 * How the SDK reads an error answer: the body's code wins (so 403 ReadOnly
 * and 413 QuotaExceeded keep their class), a body-less status goes through
 * the one status table, and a hostile body can neither invent a code nor
 * flood the message.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES, ERROR_HTTP_STATUS, HTTP_STATUS_ERROR_CODE, QuotaExceededError, ReadOnlyError, StowageError } from '../common/errors.js';
import { errorFromResponse } from './http-client.js';

describe('errorFromResponse', () => {
  it('rebuilds every code the server sends, as its own class, with message and details', () => {
    for (const code of ERROR_CODES) {
      const e = errorFromResponse(ERROR_HTTP_STATUS[code], JSON.stringify({ error: { code, message: `m-${code}`, details: { n: 1 } } }), 'GET /x');
      assert.equal(e.code, code);
      assert.equal(e.name, `${code}Error`);
      assert.equal(e.message, `m-${code}`);
      assert.deepEqual(e.details, { n: 1 });
    }
    assert.ok(errorFromResponse(403, '{"error":{"code":"ReadOnly","message":"ro"}}', 'x') instanceof ReadOnlyError);
    assert.ok(errorFromResponse(413, '{"error":{"code":"QuotaExceeded","message":"q"}}', 'x') instanceof QuotaExceededError);
  });

  it('reads a body-less answer by the status table, naming what failed', () => {
    for (const [status, code] of Object.entries(HTTP_STATUS_ERROR_CODE)) {
      const e = errorFromResponse(Number(status), '<html>Bad Gateway</html>', 'PUT chunk');
      assert.equal(e.code, code, `HTTP ${status}`);
      assert.match(e.message, new RegExp(`^PUT chunk failed with HTTP ${status}: <html>Bad Gateway</html>$`));
    }
    assert.equal(errorFromResponse(418, '', 'x').code, 'InvalidArgument');
    assert.equal(errorFromResponse(501, '', 'x').code, 'Internal');
  });

  it('gives a hostile body no say beyond the known codes, and a bounded message', () => {
    assert.equal(errorFromResponse(404, '{"error":{"code":"__proto__","message":"x"}}', 'x').code, 'Internal');
    assert.equal(errorFromResponse(404, '{"error":{"code":"NotFound"}}', 'x').code, 'NotFound', 'no message: read by the status');
    assert.equal(errorFromResponse(503, 'null', 'x').code, 'Unavailable');
    const e = errorFromResponse(502, 'A'.repeat(1_000_000), 'x');
    assert.ok(e instanceof StowageError && e.message.length < 300, `message length ${e.message.length}`);
  });
});
