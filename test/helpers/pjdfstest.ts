/**
 * @module test/helpers/pjdfstest
 * Runs pjdfstest (the POSIX file-system conformance suite, built by
 * test/helpers/test-tools.ts) in a directory and counts its checks from the
 * TAP each test file prints, not from prove's summary:
 *   - a check is one "ok N" or "not ok N" line; "not ok N # TODO ..." counts
 *     as passed, as TAP and prove count it (pjdfstest marks with TODO the
 *     checks POSIX leaves open, e.g. chown/00.t's "if both owner and group
 *     are -1, the times need not be updated", which ext4 "fails");
 *   - a test file that dies (killed at its timeout, or printing fewer results
 *     than its "1..N" plan, or no plan at all) counts as all its planned checks
 *     failed: a crash or a hang must never look like a pass; so does one that
 *     prints more results than its plan (extra "ok" lines never add passes).
 * Every test file runs as its own `sh FILE.t` child process (the directory
 * under test may be a FUSE mount served by an agent that needs this process's
 * event loop; this process never touches it), from a fresh sub-directory.
 */
import { spawn } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** The pjdfstest directories the suite runs, one per system call family. */
export const PJDFSTEST_DIRS = [
  'chflags',
  'chmod',
  'chown',
  'ftruncate',
  'granular',
  'link',
  'mkdir',
  'mkfifo',
  'mknod',
  'open',
  'posix_fallocate',
  'rename',
  'rmdir',
  'symlink',
  'truncate',
  'unlink',
  'utimensat',
] as const;

/** One failed check: its number and the line pjdfstest printed (what it tried, expected and got). */
export interface FailedCheck {
  n: number;
  line: string;
}

/** The outcome of one test file (e.g. chmod/00.t). */
export interface FileResult {
  /** e.g. "chmod/00.t". */
  file: string;
  /** Checks the file planned ("1..N"), or the results it printed when it printed no plan. */
  planned: number;
  passed: number;
  failed: number;
  /** Why the file counts as dead (all its planned checks failed), if it does. */
  died?: string;
  /** A dead file that printed no plan: `planned` is a guess until applyReferencePlans. */
  planUnknown?: boolean;
  failures: FailedCheck[];
  ms: number;
}

/** The outcome of one pjdfstest directory. */
export interface DirResult {
  dir: string;
  checks: number;
  passed: number;
  failed: number;
  files: FileResult[];
  /** From its first file's start to its last file's end (files of other directories run meanwhile). */
  ms: number;
}

/** Parses the TAP of one test file and how its process ended. */
export function countTap(
  file: string,
  tap: string,
  exit: { status: number | null; killed: boolean },
): Omit<FileResult, 'ms'> {
  let plan: number | undefined;
  let passed = 0;
  const failures: FailedCheck[] = [];
  for (const line of tap.split('\n')) {
    const p = /^1\.\.(\d+)/.exec(line);
    if (p && plan === undefined) plan = Number(p[1]);
    const ok = /^(not )?ok (\d+)/.exec(line);
    if (!ok) continue;
    if (ok[1] && !/#\s*TODO/i.test(line)) failures.push({ n: Number(ok[2]), line: line.trim() });
    else passed++;
  }
  const seen = passed + failures.length;
  let died: string | undefined;
  if (exit.killed) died = 'killed at its timeout (a hang)';
  else if (plan === undefined) died = `printed no plan (exit ${exit.status})`;
  else if (seen < plan) died = `printed ${seen} of ${plan} planned results (exit ${exit.status})`;
  else if (seen > plan)
    died = `printed ${seen} results, more than its plan of ${plan} (a bad plan: prove fails it too)`;
  const planned = plan ?? Math.max(seen, 1);
  if (died !== undefined)
    return {
      file,
      planned,
      passed: 0,
      failed: planned,
      died,
      ...(plan === undefined ? { planUnknown: true } : {}),
      failures,
    };
  return { file, planned, passed, failed: failures.length, failures };
}

/** Runs `sh FILE` in `cwd` (made if missing) with a timeout; resolves with its stdout and how it ended. */
function runTestFile(
  path: string,
  cwd: string,
  timeoutMs: number,
): Promise<{ stdout: string; status: number | null; killed: boolean }> {
  return new Promise((done, fail) => {
    // detached: its own process group, so a timeout kills the pjdfstest children too.
    // The directory is made by the child too: this process never touches the directory under test.
    const child = spawn('sh', ['-c', 'mkdir -p "$1" && cd "$1" && exec sh "$2"', 'sh', cwd, path], {
      stdio: ['ignore', 'pipe', 'ignore'],
      detached: true,
    });
    let stdout = '';
    let killed = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const timer = setTimeout(() => {
      killed = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      done({ stdout, status, killed });
    });
  });
}

/** Options of a run. */
export interface RunOptions {
  /** Test files run at once (pjdfstest mostly sleeps between checks of timestamps, so more than the cores). */
  concurrency: number;
  /** Each test file is killed after this long and counts as dead: a hang fails its directory clearly. */
  fileTimeoutMs: number;
  /** Files not started this long after the run began count as dead ("not run"). */
  deadlineMs: number;
}

/**
 * Runs every test file of the pjdfstest directories `dirs` (from
 * `testsRoot`), each from a fresh sub-directory `cwd/DIR/NAME` (made by the
 * child), `concurrency` files at a time, longest scripts first (the longest
 * run longest: chown/00.t and rename/09.t take over a minute each).
 */
export async function runPjdfstest(
  testsRoot: string,
  dirs: readonly string[],
  cwd: string,
  options: RunOptions,
): Promise<DirResult[]> {
  const t0 = performance.now();
  const jobs: { dir: string; name: string; size: number }[] = [];
  for (const dir of dirs) {
    for (const name of (await readdir(join(testsRoot, dir))).filter((n) => n.endsWith('.t')).sort()) {
      jobs.push({ dir, name, size: (await stat(join(testsRoot, dir, name))).size });
    }
  }
  const queue = [...jobs].sort((a, b) => b.size - a.size);
  const results = new Map<string, FileResult>();
  const dirStart = new Map<string, number>();
  const dirEnd = new Map<string, number>();
  const worker = async (): Promise<void> => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const file = `${job.dir}/${job.name}`;
      const f0 = performance.now();
      if (!dirStart.has(job.dir)) dirStart.set(job.dir, f0);
      const left = options.deadlineMs - (f0 - t0);
      if (left <= 0) {
        results.set(file, {
          file,
          planned: 1,
          passed: 0,
          failed: 1,
          died: 'not run: the run ran out of time',
          planUnknown: true,
          failures: [],
          ms: 0,
        });
        continue;
      }
      const r = await runTestFile(
        join(testsRoot, job.dir, job.name),
        join(cwd, job.dir, job.name.replace(/\.t$/, '')),
        Math.min(options.fileTimeoutMs, left),
      );
      results.set(file, { ...countTap(file, r.stdout, r), ms: performance.now() - f0 });
      dirEnd.set(job.dir, Math.max(dirEnd.get(job.dir) ?? 0, performance.now()));
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  return dirs.map((dir) => {
    const files = jobs.filter((j) => j.dir === dir).map((j) => results.get(`${dir}/${j.name}`)!);
    return { dir, ...totals(files), files, ms: (dirEnd.get(dir) ?? 0) - (dirStart.get(dir) ?? 0) };
  });
}

function totals(files: readonly FileResult[]): { checks: number; passed: number; failed: number } {
  const sum = (k: 'planned' | 'passed' | 'failed') => files.reduce((a, f) => a + f[k], 0);
  return { checks: sum('planned'), passed: sum('passed'), failed: sum('failed') };
}

/**
 * A dead test file that never printed its plan counts as 1 check until this
 * runs: it takes the plan the same file printed in `reference` (another run
 * of the same build, e.g. on a local directory; plans differ by OS, not by
 * file system), then recounts the directory.
 */
export function applyReferencePlans(results: DirResult[], reference: readonly DirResult[]): void {
  const plans = new Map(
    reference.flatMap((d) => d.files.filter((f) => f.planUnknown !== true).map((f) => [f.file, f.planned] as const)),
  );
  for (const d of results) {
    for (const f of d.files) {
      const plan = plans.get(f.file);
      if (f.planUnknown === true && plan !== undefined) {
        f.planned = plan;
        f.failed = plan;
        delete f.planUnknown;
      }
    }
    Object.assign(d, totals(d.files));
  }
}

/** "97.3" (passed / checks, one decimal; "-" for no checks). */
export function percent(passed: number, checks: number): string {
  return checks === 0 ? '-' : ((100 * passed) / checks).toFixed(1);
}

/** A plain-text table: local directory and mount side by side, one row per pjdfstest directory, plus a total. */
export function formatSideBySide(
  local: readonly DirResult[],
  mount: readonly DirResult[],
  labels: [string, string],
): string {
  const rows: string[][] = [
    ['directory', `${labels[0]} checks`, 'passed', 'failed', '%', `${labels[1]} checks`, 'passed', 'failed', '%'],
  ];
  const total = (rs: readonly DirResult[]) => ({
    checks: rs.reduce((a, r) => a + r.checks, 0),
    passed: rs.reduce((a, r) => a + r.passed, 0),
    failed: rs.reduce((a, r) => a + r.failed, 0),
  });
  const cells = (r: { checks: number; passed: number; failed: number } | undefined) =>
    r ? [String(r.checks), String(r.passed), String(r.failed), percent(r.passed, r.checks)] : ['', '', '', ''];
  for (const m of mount) {
    const l = local.find((x) => x.dir === m.dir);
    rows.push([m.dir + (m.files.some((f) => f.died !== undefined) ? ' (files died)' : ''), ...cells(l), ...cells(m)]);
  }
  rows.push(['total', ...cells(total(local)), ...cells(total(mount))]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows
    .map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  '))
    .join('\n');
}
