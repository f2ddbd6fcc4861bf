/**
 * @module cli/arg-parsers.test
 * VOLUME:/path targets, durations, modes and counts: accepted forms and
 * clear refusals of hostile or malformed input.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseCount, parseDuration, parseMode, parsePort, parseTarget } from './arg-parsers.js';

const invalid = (re: RegExp) => (e: Error & { code?: string }) => e.code === 'InvalidArgument' && re.test(e.message);

test('parses VOLUME:/path', () => {
  assert.deepEqual(parseTarget('data:/notes/a.txt'), { volume: 'data', path: '/notes/a.txt' });
  assert.deepEqual(parseTarget('my-vol.1:/'), { volume: 'my-vol.1', path: '/' });
  // Only the first colon separates: later ones belong to the path.
  assert.deepEqual(parseTarget('data:/a:b'), { volume: 'data', path: '/a:b' });
});

test('a bare volume means its root only where allowed', () => {
  assert.deepEqual(parseTarget('data', { allowBare: true }), { volume: 'data', path: '/' });
  assert.deepEqual(parseTarget('data:', { allowBare: true }), { volume: 'data', path: '/' });
  assert.throws(() => parseTarget('data'), invalid(/expected VOLUME:\/path/));
  assert.throws(() => parseTarget('data:'), invalid(/missing path after "data:"/));
});

test('refuses bad volume names', () => {
  assert.throws(() => parseTarget('Data:/x'), invalid(/invalid volume name "Data"/));
  assert.throws(() => parseTarget('-x:/x'), invalid(/invalid volume name/));
  assert.throws(() => parseTarget(':/x'), invalid(/missing volume name/));
  assert.throws(() => parseTarget('a/b:/x'), invalid(/invalid volume name/));
  assert.throws(() => parseTarget(`${'a'.repeat(64)}:/x`), invalid(/invalid volume name/));
});

test('refuses relative, dotted and empty-segment paths', () => {
  assert.throws(() => parseTarget('vol:../x'), invalid(/must be absolute: write vol:\/x/));
  assert.throws(() => parseTarget('vol:x/y'), invalid(/must be absolute: write vol:\/x\/y/));
  assert.throws(() => parseTarget('vol:/a/../b'), invalid(/"\." or "\.\." segments/));
  assert.throws(() => parseTarget('vol:/a//b'), invalid(/empty segment/));
  assert.throws(() => parseTarget('vol:/a/'), invalid(/empty segment|trailing/));
  assert.throws(() => parseTarget('vol:/a\0b'), invalid(/NUL/));
  assert.throws(() => parseTarget(`vol:/${'x'.repeat(256)}`), invalid(/too long/));
});

test('parses durations', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('30m'), 1_800_000);
  assert.equal(parseDuration('1h'), 3_600_000);
  assert.equal(parseDuration('7d'), 604_800_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration('250ms'), 250);
  for (const bad of ['', '1', 'h', '-1h', '1y', '1 hour'])
    assert.throws(() => parseDuration(bad), invalid(/invalid duration/), bad);
});

test('parses octal modes', () => {
  assert.equal(parseMode('644'), 0o644);
  assert.equal(parseMode('0755'), 0o755);
  assert.equal(parseMode('0o600'), 0o600);
  assert.equal(parseMode('4755'), 0o4755);
  for (const bad of ['', '8', '999', 'rwx', '77777', '0x1ff'])
    assert.throws(() => parseMode(bad), invalid(/invalid mode/), bad);
});

test('parses counts and ports', () => {
  assert.equal(parseCount('20', 'limit'), 20);
  assert.equal(parseCount('0', 'seq', 0), 0);
  assert.throws(() => parseCount('0', 'limit'), invalid(/at least 1/));
  assert.throws(() => parseCount('1.5', 'limit'), invalid(/invalid limit/));
  assert.equal(parsePort('0'), 0);
  assert.equal(parsePort('7420'), 7420);
  assert.throws(() => parsePort('65536'), invalid(/invalid port/));
  assert.throws(() => parsePort('http'), invalid(/invalid port/));
});
