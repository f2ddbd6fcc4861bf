/**
 * @module test/pjdfstest-tap.test
 * How the POSIX suite counts pjdfstest's checks (test/helpers/pjdfstest.ts):
 * from the TAP lines of each test file, with a file that dies or hangs
 * counted as all its planned checks failed, never as a pass. Fast: real
 * `sh` children running small TAP scripts, no mount.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyReferencePlans, countTap, runPjdfstest } from './helpers/pjdfstest.js';

describe('counting pjdfstest checks from TAP', () => {
  test('counts ok and not ok lines, keeps each failure line, and counts TODO failures as passed (as prove does)', () => {
    const tap = [
      '1..5',
      'ok 1',
      "not ok 2 - tried 'chmod x 0644', expected 0, got EACCES",
      'ok 3',
      'not ok 4 # TODO POSIX leaves this open',
      'not ok 5',
    ].join('\n');
    const r = countTap('chmod/00.t', tap, { status: 0, killed: false });
    assert.deepEqual(
      { planned: r.planned, passed: r.passed, failed: r.failed, died: r.died },
      { planned: 5, passed: 3, failed: 2, died: undefined },
    );
    assert.deepEqual(
      r.failures.map((f) => f.n),
      [2, 5],
    );
    assert.match(r.failures[0]!.line, /expected 0, got EACCES/);
  });

  test('a file that stops before its plan counts as all its planned checks failed, even those it passed', () => {
    const r = countTap('utimensat/09.t', '1..7\nok 1\nBail out!\n', { status: 1, killed: false });
    assert.equal(r.planned, 7);
    assert.equal(r.passed, 0);
    assert.equal(r.failed, 7);
    assert.match(r.died!, /1 of 7/);
  });

  test('a file killed at its timeout counts as dead even when it had printed every result', () => {
    const r = countTap('rename/09.t', '1..2\nok 1\nok 2\n', { status: null, killed: true });
    assert.equal(r.failed, 2);
    assert.match(r.died!, /timeout/);
  });

  test('a file that prints lines that only look like TAP (ok 1 mid-line, "nok 2") does not gain passes', () => {
    const r = countTap('open/00.t', '1..2\nnot ok 1\n  ok 1\nnok 2\nrok 2\n', { status: 0, killed: false });
    assert.equal(r.passed, 0);
    assert.equal(r.failed, 2);
    assert.match(r.died!, /1 of 2/);
  });

  test('a file that prints more results than its plan gains nothing: all its planned checks fail', () => {
    const r = countTap('chmod/00.t', '1..2\nok 1\nok 2\nok 2\nok 3\n', { status: 0, killed: false });
    assert.deepEqual({ planned: r.planned, passed: r.passed, failed: r.failed }, { planned: 2, passed: 0, failed: 2 });
    assert.match(r.died!, /more than its plan/);
  });

  test('a dead file with no plan takes the plan the reference run printed', () => {
    const dead = countTap('mknod/00.t', 'sh: cannot open\n', { status: 2, killed: false });
    assert.equal(dead.planUnknown, true);
    const mount = [
      { dir: 'mknod', checks: dead.planned, passed: 0, failed: dead.failed, files: [{ ...dead, ms: 1 }], ms: 1 },
    ];
    const local = [
      {
        dir: 'mknod',
        checks: 36,
        passed: 36,
        failed: 0,
        files: [
          {
            ...countTap('mknod/00.t', `1..36\n${Array.from({ length: 36 }, (_, i) => `ok ${i + 1}`).join('\n')}\n`, {
              status: 0,
              killed: false,
            }),
            ms: 1,
          },
        ],
        ms: 1,
      },
    ];
    applyReferencePlans(mount, local);
    assert.deepEqual(
      { checks: mount[0]!.checks, failed: mount[0]!.failed, passed: mount[0]!.passed },
      { checks: 36, failed: 36, passed: 0 },
    );
  });
});

describe('running pjdfstest directories', () => {
  let root: string;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'stowage-pjdfstest-unit-'));
    await mkdir(join(root, 'tests', 'a'), { recursive: true });
    await mkdir(join(root, 'tests', 'b'), { recursive: true });
    // a/00.t passes and shows where it ran; a/01.t hangs; b/00.t exits early.
    await writeFile(
      join(root, 'tests', 'a', '00.t'),
      'echo 1..2\necho ok 1\n[ "$(basename "$(pwd)")" = 00 ] && echo ok 2 || echo not ok 2\n',
    );
    await writeFile(join(root, 'tests', 'a', '01.t'), 'echo 1..3\necho ok 1\nsleep 30\necho ok 2\necho ok 3\n');
    await writeFile(join(root, 'tests', 'b', '00.t'), 'echo 1..4\necho ok 1\nexit 3\n');
    await writeFile(join(root, 'tests', 'b', 'notes.txt'), 'not a test file\n');
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
  });

  test('each file runs in its own fresh directory; a hang is killed at its timeout and the others still count', async () => {
    const t0 = performance.now();
    const [a, b] = await runPjdfstest(join(root, 'tests'), ['a', 'b'], join(root, 'work'), {
      concurrency: 2,
      fileTimeoutMs: 3000,
      deadlineMs: 20_000,
    });
    assert.ok(performance.now() - t0 < 10_000, 'the hanging file was not killed at its timeout');
    assert.deepEqual({ checks: a!.checks, passed: a!.passed, failed: a!.failed }, { checks: 5, passed: 2, failed: 3 });
    assert.match(a!.files.find((f) => f.file === 'a/01.t')!.died!, /timeout/);
    assert.deepEqual(
      { checks: b!.checks, passed: b!.passed, failed: b!.failed, files: b!.files.length },
      { checks: 4, passed: 0, failed: 4, files: 1 },
    );
  });

  test('files not started by the deadline count as failed', async () => {
    const [a] = await runPjdfstest(join(root, 'tests'), ['a'], join(root, 'work2'), {
      concurrency: 1,
      fileTimeoutMs: 1500,
      deadlineMs: 1,
    });
    assert.equal(a!.passed, 0);
    assert.ok(a!.files.every((f) => f.died !== undefined));
  });
});
