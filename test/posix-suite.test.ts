/**
 * @module test/posix-suite.test
 * pjdfstest, the POSIX conformance suite, against a real read-write mount
 * (the compiled CLI's agent over FUSE, a real server) and, in the same run, a
 * local directory of this machine (ext4 here: a temp dir) as the reference.
 * Prints one table, a row per pjdfstest directory, local and mount side by
 * side (checks, passed, failed, %), counted from the TAP lines (see
 * test/helpers/pjdfstest.ts), and asserts a floor per directory: what the
 * mount passes today. Raise a floor when a fix lands; a drop below it fails.
 * Runs as root (pjdfstest switches users itself); docs/posix.md lists the
 * failures by cause; STOWAGE_PJDFSTEST_REPORT=FILE.json saves every result
 * and failed check of the run there.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Volume } from '@stowage/sdk';
import { mountTestbed } from './helpers/mount.js';
import {
  applyReferencePlans,
  formatSideBySide,
  PJDFSTEST_DIRS,
  runPjdfstest,
  type DirResult,
  type RunOptions,
} from './helpers/pjdfstest.js';
import { testTools, type TestTools } from './helpers/test-tools.js';

/**
 * Checks the mount must pass, per directory: the counts of the libfuse 3
 * mount of 2026-11-30 (8,600 of 8,798; the fuse-native mount passed 3,618).
 * Every check still failing needs hard links (docs/posix.md). The planned
 * checks per directory are fixed by pjdfstest's source; the table shows both.
 */
const FLOORS: Record<(typeof PJDFSTEST_DIRS)[number], number> = {
  chflags: 14,
  chmod: 327,
  chown: 1490, // its ctime checks sleep a second between steps: a little room for a loaded machine
  ftruncate: 89,
  granular: 7,
  link: 229,
  mkdir: 118,
  mkfifo: 120,
  mknod: 186,
  open: 337,
  posix_fallocate: 1,
  rename: 4807,
  rmdir: 145,
  symlink: 95,
  truncate: 84,
  unlink: 422,
  utimensat: 122,
};

/**
 * Test files run at once on each side (local and mount run at the same time).
 * pjdfstest spends most of its time in `sleep 1` between timestamp checks
 * (chown/00.t alone takes 90 s), so this is about waiting, not cores.
 */
const RUN: RunOptions = {
  concurrency: 4,
  // A test file that runs longer is killed and counts as all its checks failed: a hang fails clearly.
  fileTimeoutMs: 240_000,
  // Files not started by then count as failed.
  deadlineMs: 360_000,
};

const bed = mountTestbed('posix-suite');
let tools: TestTools;
let localRoot: string | undefined;

before(async () => {
  tools = await testTools();
  localRoot = await mkdtemp(join(tmpdir(), 'stowage-pjdfstest-local-'));
});
after(async () => {
  if (localRoot) await rm(localRoot, { recursive: true, force: true });
});

describe('pjdfstest (POSIX conformance) on a read-write mount, beside a local directory', {
  timeout: 15 * 60_000,
}, () => {
  test('runs as root (pjdfstest chowns and switches users itself)', () => {
    assert.equal(process.getuid?.(), 0, 'run the POSIX suite as root: pjdfstest needs to chown and switch users');
  });

  test('the local directory passes every directory and the mount passes at least its floor in each', async () => {
    const vol = await Volume.create(bed.fresh('posix'), { client: bed.client, cap: '1T' });
    // pjdfstest plays other users: they must reach the mount (the test's work dir is made 0700) and be let in.
    await chmod(bed.work, 0o755);
    const m = await bed.mountPoint();
    await chmod(m, 0o755);
    await bed.mounts.mountOk(vol.name, m, ['--allow-other']);
    const t0 = performance.now();
    const [local, mounted] = await Promise.all([
      runPjdfstest(tools.pjdfstestTests, PJDFSTEST_DIRS, localRoot!, RUN),
      runPjdfstest(tools.pjdfstestTests, PJDFSTEST_DIRS, join(m, 'pjdfstest'), RUN),
    ]);
    applyReferencePlans(mounted, local);
    const table = formatSideBySide(local, mounted, ['local', 'mount']);
    process.stdout.write(
      `\npjdfstest per directory, local directory (${localRoot}) vs Stowage mount, ${((performance.now() - t0) / 1000).toFixed(0)} s:\n${table}\n`,
    );
    const dead = (rs: readonly DirResult[]) =>
      rs.flatMap((d) => d.files.filter((f) => f.died !== undefined).map((f) => `${f.file}: ${f.died}`));
    // Every failed check with what pjdfstest tried, expected and got (docs/posix.md is written from it).
    const report = process.env.STOWAGE_PJDFSTEST_REPORT;
    if (report) await writeFile(report, JSON.stringify({ local, mount: mounted }, null, 1));
    if (dead(mounted).length > 0)
      process.stdout.write(
        `test files that died on the mount (counted as all failed):\n  ${dead(mounted).join('\n  ')}\n`,
      );

    // The reference: a local directory passes everything (a local failure means the tools or the machine are broken).
    const localChecks = local.reduce((a, r) => a + r.checks, 0);
    assert.ok(localChecks > 8000, `pjdfstest planned only ${localChecks} checks locally: the build is incomplete`);
    assert.deepEqual(dead(local), [], 'pjdfstest test files died on the local directory');
    const localFailures = local.flatMap((d) => d.files.flatMap((f) => f.failures.map((x) => `${f.file} ${x.line}`)));
    assert.deepEqual(
      localFailures,
      [],
      'the local directory failed pjdfstest checks: the tools or this machine are broken',
    );

    const below = mounted
      .filter((r) => r.passed < FLOORS[r.dir as keyof typeof FLOORS])
      .map((r) => `${r.dir}: ${r.passed} passed, floor ${FLOORS[r.dir as keyof typeof FLOORS]}`);
    assert.deepEqual(below, [], `the mount fell below its pjdfstest floor:\n${below.join('\n')}\n${table}`);
    // Issue 10's goal: 95% of every directory but link (hard links are not supported: docs/posix.md).
    const short = mounted
      .filter((r) => r.dir !== 'link' && r.passed < 0.95 * r.checks)
      .map((r) => `${r.dir}: ${r.passed} of ${r.checks}`);
    assert.deepEqual(short, [], `below 95% of pjdfstest:\n${short.join('\n')}`);
  });
});
