/**
 * @module test/posix-suite.test
 * pjdfstest, the POSIX conformance suite, against a real read-write mount
 * (the compiled CLI's agent over FUSE, a real server) and, in the same run, a
 * local directory of this machine (ext4 or whatever backs the temp dir) as
 * the reference. Prints one table per pjdfstest directory, local and mount
 * side by side (checks, passed, failed, %), counted from the TAP lines (see
 * test/helpers/pjdfstest.ts), and asserts a floor per directory: what the
 * mount passes today. Raise a floor when a fix lands; a drop below it fails.
 * Runs as root (pjdfstest switches users itself); docs/posix.md lists the
 * failures by cause.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Volume } from '../src/sdk/index.js';
import { mountTestbed } from './helpers/mount.js';
import { formatSideBySide, percent, PJDFSTEST_DIRS, runPjdfstestDir, type DirResult } from './helpers/pjdfstest.js';
import { testTools, type TestTools } from './helpers/test-tools.js';

/**
 * Checks the mount must pass per directory (today's counts; raise them as the
 * libfuse 3 port and the mount fixes land). The planned checks per directory
 * are fixed by pjdfstest's source; the table printed by the test shows both.
 */
const FLOORS: Record<(typeof PJDFSTEST_DIRS)[number], number> = {
  chflags: 0,
  chmod: 0,
  chown: 0,
  ftruncate: 0,
  granular: 0,
  link: 0,
  mkdir: 0,
  mkfifo: 0,
  mknod: 0,
  open: 0,
  posix_fallocate: 0,
  rename: 0,
  rmdir: 0,
  symlink: 0,
  truncate: 0,
  unlink: 0,
  utimensat: 0,
};

/** A test file that runs longer than this is killed and counts as all its checks failed (a hang fails clearly). */
const FILE_TIMEOUT_MS = 60_000;
/** A directory that runs longer than this stops; its remaining files count as failed. */
const DIR_TIMEOUT_MS = 150_000;

const bed = mountTestbed('posix-suite');
let tools: TestTools;
let localRoot: string;
let mountRoot: string;
const local: DirResult[] = [];
const mounted: DirResult[] = [];

before(async () => {
  tools = await testTools();
  localRoot = await mkdtemp(join(tmpdir(), 'stowage-pjdfstest-local-'));
});
after(async () => {
  if (localRoot) await rm(localRoot, { recursive: true, force: true });
});

describe('pjdfstest (POSIX conformance) on a read-write mount, beside a local directory', { timeout: 20 * 60_000 }, () => {
  test('pjdfstest must run as root (it switches users and owners itself)', () => {
    assert.equal(process.getuid?.(), 0, 'run the POSIX suite as root: pjdfstest needs to chown and switch users');
  });

  test('the local directory passes (the reference: the tools and this machine work)', async () => {
    for (const dir of PJDFSTEST_DIRS) local.push(await runPjdfstestDir(tools.pjdfstestTests, dir, localRoot, { fileTimeoutMs: FILE_TIMEOUT_MS, dirTimeoutMs: DIR_TIMEOUT_MS }));
    const checks = local.reduce((a, r) => a + r.checks, 0);
    const passed = local.reduce((a, r) => a + r.passed, 0);
    // A local ext4 directory passes every check; the margin allows a different local file system.
    assert.ok(checks > 8000, `pjdfstest planned only ${checks} checks locally: the build is incomplete`);
    assert.ok(passed / checks > 0.98, `the local directory passes only ${passed} of ${checks} checks: the tools or this machine are broken`);
  });

  test('the mount passes at least its floor in every directory', async () => {
    const vol = await Volume.create(bed.fresh('posix'), { client: bed.client, cap: '1T' });
    const m = await bed.mountPoint();
    await bed.mounts.mountOk(vol.name, m);
    mountRoot = join(m, 'pjdfstest');
    const knownPlans = new Map(local.flatMap((d) => d.files.map((f) => [f.file, f.planned] as const)));
    for (const dir of PJDFSTEST_DIRS) {
      const r = await runPjdfstestDir(tools.pjdfstestTests, dir, mountRoot, { fileTimeoutMs: FILE_TIMEOUT_MS, dirTimeoutMs: DIR_TIMEOUT_MS, knownPlans });
      mounted.push(r);
      process.stderr.write(`pjdfstest ${dir} on the mount: ${r.passed}/${r.checks} (${percent(r.passed, r.checks)}%) in ${(r.ms / 1000).toFixed(1)} s\n`);
    }
    const table = formatSideBySide(local, mounted, ['local', 'mount']);
    process.stdout.write(`\npjdfstest per directory (local directory ${localRoot} vs Stowage mount):\n${table}\n`);
    const dead = mounted.flatMap((d) => d.files.filter((f) => f.died !== undefined).map((f) => `${f.file}: ${f.died}`));
    if (dead.length > 0) process.stdout.write(`test files that died on the mount (counted as all failed):\n  ${dead.join('\n  ')}\n`);
    const below = mounted.filter((r) => r.passed < FLOORS[r.dir as keyof typeof FLOORS]).map((r) => `${r.dir}: ${r.passed} passed, floor ${FLOORS[r.dir as keyof typeof FLOORS]}`);
    assert.deepEqual(below, [], `the mount fell below its pjdfstest floor:\n${below.join('\n')}\n${table}`);
  });
});
