/**
 * @module cli/output.test
 * The exit table covers every error code with the documented statuses, and
 * errors are reported as exactly one line.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { CommanderError } from 'commander';
import { ERROR_CODES, StowageError, type ErrorCode } from '@stowage/sdk/common/errors.js';
import { errorFromCode } from '@stowage/sdk/common/errors.js';
import {
  EXIT_TABLE,
  errorMessageOf,
  escapeControl,
  exitStatusOf,
  formatTable,
  reportError,
  safeJson,
} from './output.js';

const EXPECTED: Record<ErrorCode, number> = {
  InvalidArgument: 2,
  NotFound: 3,
  AlreadyExists: 4,
  Conflict: 4,
  PreconditionFailed: 4,
  Unauthenticated: 5,
  Forbidden: 5,
  ReadOnly: 5,
  QuotaExceeded: 6,
  PayloadTooLarge: 6,
  InsufficientStorage: 6,
  Unavailable: 7,
  Internal: 1,
};

test('every error code has its documented exit status', () => {
  assert.deepEqual(Object.keys(EXIT_TABLE).sort(), [...ERROR_CODES].sort());
  for (const code of ERROR_CODES) {
    assert.equal(EXIT_TABLE[code].status, EXPECTED[code], code);
    assert.equal(exitStatusOf(new StowageError(code, 'x')), EXPECTED[code], code);
    // Errors that crossed the wire map the same way.
    assert.equal(exitStatusOf(errorFromCode(code, 'x')), EXPECTED[code], code);
  }
});

test('no error exits 0', () => {
  for (const code of ERROR_CODES) assert.notEqual(EXIT_TABLE[code].status, 0);
});

test('command-line mistakes exit 2 and unexpected errors exit 1', () => {
  assert.equal(exitStatusOf(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'")), 2);
  assert.equal(exitStatusOf(new TypeError('boom')), 1);
  assert.equal(exitStatusOf('a string'), 1);
});

test('local file-system errors exit with the status of their class', () => {
  const errno = (code: string) => Object.assign(new Error(`${code}: something, open '/x'`), { code });
  assert.equal(exitStatusOf(errno('ENOENT')), 3);
  assert.equal(exitStatusOf(errno('EACCES')), 5);
  assert.equal(exitStatusOf(errno('EISDIR')), 2);
  assert.equal(exitStatusOf(errno('ENOSPC')), 6);
  assert.equal(exitStatusOf(errno('EWEIRD')), 1);
  assert.doesNotMatch(errorMessageOf(errno('ENOENT')), /unexpected/);
});

test('an error is reported as exactly one stderr line starting with "stowage: "', () => {
  let out = '';
  const sink = new Writable({
    write(chunk, _enc, cb) {
      out += String(chunk);
      cb();
    },
  });
  const status = reportError(new StowageError('NotFound', 'volume "x" not found\nsecond line'), sink);
  assert.equal(status, 3);
  assert.equal(out, 'stowage: volume "x" not found second line\n');
});

test('messages carry the hint of their code once', () => {
  const m = errorMessageOf(new StowageError('Unauthenticated', 'invalid API token'));
  assert.match(m, /^invalid API token \(check --token or STOWAGE_TOKEN\)$/);
  assert.equal(
    errorMessageOf(new CommanderError(1, 'commander.unknownOption', "error: unknown option '--x'")),
    "unknown option '--x'",
  );
  assert.match(errorMessageOf(new TypeError('boom')), /^unexpected error: boom/);
});

test('tables align columns and right-align numbers', () => {
  const t = formatTable(
    ['NAME', 'SIZE', 'NOTE'],
    [
      ['a', '1 KiB', 'x'],
      ['longer', '20 MiB', 'y'],
    ],
    ['left', 'right'],
  );
  assert.equal(t, ['NAME      SIZE  NOTE', 'a        1 KiB  x', 'longer  20 MiB  y'].join('\n'));
});

test('escapeControl renders every terminal control visibly, and is idempotent', () => {
  assert.equal(escapeControl('a\x1b[2J\rb\nc'), 'a\\x1b[2J\\rb\\nc');
  assert.equal(escapeControl('\x00\x07\x7f\x9b\x85'), '\\x00\\x07\\x7f\\x9b\\x85');
  assert.equal(escapeControl('rtl\u202egnp.exe\u2028x'), 'rtl\\u{202e}gnp.exe\\u{2028}x');
  assert.equal(escapeControl('tab\tstays, é and 日本 too'), 'tab\tstays, é and 日本 too');
  const s = 'x\x1b\x9b\n\u2066';
  assert.equal(escapeControl(escapeControl(s)), escapeControl(s));
});

test('safeJson is the same JSON value with C1 and bidi controls as \\u escapes', () => {
  const v = { name: 'a\x1b\x9b\u202e\n' };
  const text = safeJson(v, 2);
  assert.doesNotMatch(text, /[\x00-\x09\x0b-\x1f\x7f-\x9f\u202e]/);
  assert.deepEqual(JSON.parse(text), v);
});

test('tables escape names before aligning them', () => {
  const t = formatTable(
    ['NAME', 'SIZE'],
    [
      ['a\nb', '1'],
      ['cc', '2'],
    ],
    ['left', 'right'],
  );
  assert.equal(t.split('\n').length, 3);
  assert.deepEqual(t.split('\n').slice(1), ['a\\nb     1', 'cc       2']);
});
