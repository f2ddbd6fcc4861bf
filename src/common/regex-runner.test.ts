/**
 * Unit tests of the pattern runner: deadlines, validation, and the bound on
 * worker threads.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { isStowageError } from '@stowage/sdk/common/errors.js';
import { checkRegex, compileGlob, MAX_RUNNERS, RegexRunner, RegexTimeout } from './regex-runner.js';

describe('RegexRunner', () => {
  it('searches, replaces and globs in the worker', async () => {
    const r = new RegexRunner({ regex: checkRegex('b(.)', 'i'), glob: '*.md' }, Date.now() + 10_000);
    try {
      assert.deepEqual(await r.search('ab1\nxx\nB2 b3', 10), [
        { line: 1, column: 2, text: 'ab1' },
        { line: 3, column: 1, text: 'B2 b3' },
      ]);
      assert.deepEqual(await r.replace('ab1 B2', '<$1>'), { text: 'a<1> <2>', count: 2 });
      assert.deepEqual(await r.glob(['/a.md', '/x/.b.md', '/c.txt']), [true, true, false]);
    } finally {
      r.close();
    }
  });

  it('rejects in-flight and later calls once the deadline passes', async () => {
    const r = new RegexRunner({ regex: checkRegex('(a+)+$') }, Date.now() + 200);
    try {
      await assert.rejects(r.search(`${'a'.repeat(50)}!`, 1), RegexTimeout);
      await assert.rejects(r.search('a', 1), RegexTimeout);
    } finally {
      r.close();
    }
  });

  it('bounds the worker threads alive at once', () => {
    const before = RegexRunner.alive;
    const runners: RegexRunner[] = [];
    try {
      while (RegexRunner.alive < MAX_RUNNERS) runners.push(new RegexRunner({ glob: '*' }, Date.now() + 10_000));
      assert.throws(
        () => new RegexRunner({ glob: '*' }, Date.now() + 10_000),
        (e) => isStowageError(e, 'Unavailable'),
      );
    } finally {
      for (const r of runners) r.close();
    }
    assert.equal(RegexRunner.alive, before);
  });

  it('names what is wrong with a pattern', () => {
    assert.throws(() => checkRegex('a(', ''), /invalid regex/);
    assert.throws(() => checkRegex('a', 'gi'), /flags/);
    assert.throws(() => checkRegex('a', 'ii'), /flags/);
    assert.throws(() => checkRegex(''), /non-empty/);
    assert.throws(() => compileGlob(''), /glob/);
    assert.equal(compileGlob('src/*.ts')('/src/a.ts'), true);
    assert.equal(compileGlob('*.ts')('/deep/er/a.ts'), true);
  });
});
