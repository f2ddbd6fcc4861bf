/**
 * @module engine/upload-intake.test
 * Upload metadata validation: accepted forms and clear refusals of hostile
 * or malformed metadata, before any byte is staged.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseUploadMetadata } from './upload-intake.js';

const SHA = 'a'.repeat(64);
const invalid = (re: RegExp) => (e: Error & { code?: string }) => e.code === 'InvalidArgument' && re.test(e.message);

test('accepts volume, path, sha256 and optional mode and mtime', () => {
  assert.deepEqual(
    parseUploadMetadata(
      {
        volume: 'data',
        path: '/a/b.bin',
        sha256: SHA.toUpperCase(),
        mode: '0755',
        mtime: '1700000000000',
        filename: 'ignored',
      },
      10,
    ),
    {
      volume: 'data',
      path: '/a/b.bin',
      size: 10,
      sha256: SHA,
      mode: 0o755,
      mtime: 1_700_000_000_000,
    },
  );
  assert.deepEqual(parseUploadMetadata({ volume: 'data', path: '/x', sha256: SHA, mode: null }, 0), {
    volume: 'data',
    path: '/x',
    size: 0,
    sha256: SHA,
  });
});

test('refuses missing, hostile or malformed metadata', () => {
  const ok = { volume: 'data', path: '/x', sha256: SHA };
  assert.throws(() => parseUploadMetadata({ path: '/x', sha256: SHA }, 1), invalid(/"volume" is required/));
  assert.throws(() => parseUploadMetadata({ ...ok, volume: null }, 1), invalid(/"volume" is required/));
  assert.throws(() => parseUploadMetadata({ ...ok, volume: '../other' }, 1), invalid(/./));
  assert.throws(() => parseUploadMetadata({ ...ok, path: '/a/../../etc/passwd' }, 1), invalid(/./));
  assert.throws(() => parseUploadMetadata({ ...ok, path: 'no-slash' }, 1), invalid(/./));
  assert.throws(() => parseUploadMetadata({ ...ok, path: '/a\u0000b' }, 1), invalid(/./));
  assert.throws(() => parseUploadMetadata({ ...ok, path: '/' }, 1), invalid(/root/));
  assert.throws(() => parseUploadMetadata({ ...ok, sha256: 'z'.repeat(64) }, 1), invalid(/64 hex/));
  assert.throws(() => parseUploadMetadata({ ...ok, mode: '8' }, 1), invalid(/octal/));
  assert.throws(() => parseUploadMetadata({ ...ok, mode: '77777' }, 1), invalid(/octal/));
  assert.throws(() => parseUploadMetadata({ ...ok, mtime: '-1' }, 1), invalid(/mtime/));
  assert.throws(() => parseUploadMetadata(ok, -1), invalid(/Upload-Length/));
  assert.throws(() => parseUploadMetadata(ok, 1.5), invalid(/Upload-Length/));
});
