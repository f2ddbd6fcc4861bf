/**
 * @module mount/fs-error.test
 * The mount's error -> errno table: every code has the errno the brief
 * names, FUSE operations answer it (through withErrnoMapping) instead of a
 * bare EIO, and every EIO leaves a log line saying why.
 */
import assert from 'node:assert/strict';
import { constants } from 'node:os';
import { describe, it } from 'node:test';
import {
  ERROR_CODES,
  InternalError,
  NotFoundError,
  QuotaExceededError,
  ReadOnlyError,
  StowageError,
  UnavailableError,
} from '@stowage/sdk/common/errors.js';
import { ERRNO_OF_CODE, FsError, fsError, toFsError, withErrnoMapping } from './fs-error.js';

describe('error -> errno table', () => {
  it('maps every error code, and nothing else, to a real errno', () => {
    assert.deepEqual(Object.keys(ERRNO_OF_CODE).sort(), [...ERROR_CODES].sort());
    for (const code of ERROR_CODES)
      assert.ok(constants.errno[ERRNO_OF_CODE[code]] > 0, `${code} -> ${ERRNO_OF_CODE[code]}`);
  });

  it('uses the documented errnos', () => {
    assert.deepEqual(ERRNO_OF_CODE, {
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
    });
  });

  it('turns each error into its errno; logs every EIO with its cause, nothing else', () => {
    const logged: string[] = [];
    const log = (m: string) => logged.push(m);
    assert.equal(toFsError(new NotFoundError('no such file'), log).code, 'ENOENT');
    assert.equal(toFsError(new ReadOnlyError('read-only token'), log).errno, -constants.errno.EROFS);
    assert.equal(toFsError(new QuotaExceededError('over cap'), log).code, 'EDQUOT');
    const own = fsError('ENOTDIR');
    assert.equal(toFsError(own, log), own, 'an FsError is already an answer');
    assert.deepEqual(logged, []);
    assert.equal(toFsError(new UnavailableError('server unreachable'), log).code, 'EIO');
    assert.equal(toFsError(new InternalError('bug on the server'), log).code, 'EIO');
    assert.equal(toFsError(new TypeError('x is undefined'), log).code, 'EIO');
    assert.equal(toFsError('a string', log).code, 'EIO');
    assert.equal(logged.length, 4);
    assert.match(logged[0]!, /server unreachable/);
    assert.match(logged[2]!, /TypeError: x is undefined\n\s+at /, 'a bug is logged with its stack');
  });

  it('treats a StowageError with a foreign code as EIO', () => {
    const odd = new StowageError('NotFound', 'x');
    (odd as unknown as { code: string }).code = 'Bogus';
    assert.equal(toFsError(odd, () => undefined).code, 'EIO');
  });

  it("answers a FUSE operation's rejection with its errno, and leaves sync answers and other properties alone", async () => {
    const logged: string[] = [];
    const ops = {
      lookup: async (name: string) => {
        throw new NotFoundError(`${name} is gone`);
      },
      read: async () => {
        throw new UnavailableError('blob store down');
      },
      getattr: async () => ({ ino: 1 }),
      forget: (n: number) => n * 2,
      mode: 0o755,
    };
    const mapped = withErrnoMapping(ops, (m) => logged.push(m));
    await assert.rejects(
      mapped.lookup('a'),
      (e) => e instanceof FsError && e.code === 'ENOENT' && /a is gone/.test(e.message),
    );
    await assert.rejects(mapped.read(), (e) => e instanceof FsError && e.code === 'EIO');
    assert.deepEqual(await mapped.getattr(), { ino: 1 });
    assert.equal(mapped.forget(21), 42);
    assert.equal(mapped.mode, 0o755);
    assert.deepEqual(logged, ['read failed: EIO: blob store down']);
  });
});
