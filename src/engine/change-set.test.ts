/**
 * @module engine/change-set.test
 * Symlink targets that leave the volume: absolute ones and relative ones
 * climbing above "/" from the link's own directory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseChanges, refuseEscapingSymlinks, symlinkEscape } from './change-set.js';

test('symlinkEscape keeps links that stay inside the volume and names the rest', () => {
  assert.equal(symlinkEscape('/link', 'a/b'), undefined);
  assert.equal(symlinkEscape('/a/link', '../b'), undefined);
  assert.equal(symlinkEscape('/a/b/link', '../../c'), undefined);
  assert.equal(symlinkEscape('/a/link', './x/./y'), undefined);
  assert.equal(symlinkEscape('/a/b/link', './../.././c//d'), undefined);
  // ".." after a name is resolved after that name, which may be a link to "/" (or to "..", or to "../.."): on the
  // reader's disk x/.. is then the parent of the volume. Lexically it never climbs out, so only its order tells.
  assert.match(symlinkEscape('/a/link', './x/../y') ?? '', /after a name/);
  assert.match(symlinkEscape('/s', 'p/q/r/../../etc/passwd') ?? '', /after a name/);
  assert.match(symlinkEscape('/link', '../x') ?? '', /climbs out/);
  assert.match(symlinkEscape('/a/link', '../../x') ?? '', /climbs out/);
  // Climbing out and back in still passes through the parent of "/" on the reader's disk.
  assert.match(symlinkEscape('/a/link', '../../a/x') ?? '', /climbs out/);
  assert.match(symlinkEscape('/a/link', 'b/../../../x') ?? '', /climbs out/);
  assert.match(symlinkEscape('/link', '/etc/passwd') ?? '', /absolute/);
});

test('refuseEscapingSymlinks refuses a change set holding one escaping link, naming it', async () => {
  const ok = await parseChanges(
    [
      { op: 'symlink', path: '/a/l', target: '../b' },
      { op: 'mkdir', path: '/d' },
    ],
    0,
  );
  assert.doesNotThrow(() => refuseEscapingSymlinks(ok));
  const bad = await parseChanges(
    [
      { op: 'mkdir', path: '/d' },
      { op: 'symlink', path: '/d/venv/python', target: '/usr/bin/python3' },
    ],
    0,
  );
  assert.throws(
    () => refuseEscapingSymlinks(bad),
    (e: Error & { code?: string }) =>
      e.code === 'InvalidArgument' &&
      /changes\[1\]: symlink \/d\/venv\/python -> "\/usr\/bin\/python3" is refused: its target is absolute/.test(
        e.message,
      ),
  );
});
