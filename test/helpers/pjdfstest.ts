/**
 * @module test/helpers/pjdfstest
 * Runs pjdfstest (the POSIX file-system conformance suite, built by
 * test/helpers/test-tools.ts) in a directory and counts its checks from the
 * TAP each test file prints, not from prove's summary:
 *   - a check is one "ok N" or "not ok N" line ("not ok N # TODO" is a failure
 *     too: pjdfstest marks known-broken checks that way, and they are broken);
 *   - a test file that dies (killed at its timeout, or printing fewer results
 *     than its "1..N" plan, or no plan at all) counts as all its planned checks
 *     failed: a crash or a hang must never look like a pass.
 * Every test file runs as its own `sh FILE.t` child process (the directory
 * under test may be a FUSE mount served by an agent that needs this process's
 * event loop), one at a time, from a fresh sub-directory of `cwd`.
 */
import { spawn } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/** The pjdfstest directories the suite runs, one per system call family. */
export const PJDFSTEST_DIRS = [
  'chflags', 'chmod', 'chown', 'ftruncate', 'granular', 'link', 'mkdir', 'mkfifo', 'mknod',
  'open', 'posix_fallocate', 'rename', 'rmdir', 'symlink', 'truncate', 'unlink', 'utimensat',
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
  /** Set when the directory's time ran out: the files not run count as dead. */
  timedOut?: boolean;
  ms: number;
}

/** Parses the TAP of one test file. `knownPlan` stands in for a plan the file never printed (e.g. from a run elsewhere). */
export function countTap(file: string, tap: string, exit: { status: number | null; killed: boolean }, knownPlan?: number): Omit<FileResult, 'ms'> {
  let plan: number | undefined;
  let passed = 0;
  const failures: FailedCheck[] = [];
  for (const line of tap.split('\n')) {
    const p = /^1\.\.(\d+)/.exec(line);
    if (p && plan === undefined) plan = Number(p[1]);
    const ok = /^(not )?ok (\d+)/.exec(line);
    if (!ok) continue;
    if (ok[1]) failures.push({ n: Number(ok[2]), line: line.trim() });
    else passed++;
  }
  const seen = passed + failures.length;
  let died: string | undefined;
  if (exit.killed) died = 'killed at its timeout (a hang)';
  else if (plan === undefined) died = `printed no plan (exit ${exit.status})`;
  else if (seen < plan) died = `printed ${seen} of ${plan} planned results (exit ${exit.status})`;
  const planned = plan ?? knownPlan ?? Math.max(seen, 1);
  if (died !== undefined) return { file, planned, passed: 0, failed: planned, died, failures };
  return { file, planned, passed, failed: failures.length, failures };
}

/** Runs `sh FILE` in `cwd` (made if missing) with a timeout; resolves with its stdout and how it ended. */
function runTestFile(path: string, cwd: string, timeoutMs: number): Promise<{ stdout: string; status: number | null; killed: boolean }> {
  return new Promise((done, fail) => {
    // detached: its own process group, so a timeout kills the pjdfstest children too.
    // The directory is made by the child too: this process never touches the directory under test.
    const child = spawn('sh', ['-c', 'mkdir -p "$1" && cd "$1" && exec sh "$2"', 'sh', cwd, path], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
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

/** Options of one directory's run. */
export interface RunDirOptions {
  /** Each test file is killed after this long (counted as dead). */
  fileTimeoutMs: number;
  /** The directory stops after this long; files not started count as dead. */
  dirTimeoutMs: number;
  /** Plans of files seen in another run ("chmod/00.t" -> 119), for files that die before printing theirs. */
  knownPlans?: ReadonlyMap<string, number>;
}

/**
 * Runs every test file of pjdfstest directory `dir` (from `testsRoot`) inside
 * a fresh sub-directory `cwd/dir`.
 */
export async function runPjdfstestDir(testsRoot: string, dir: string, cwd: string, options: RunDirOptions): Promise<DirResult> {
  const t0 = performance.now();
  const work = join(cwd, dir);
  const names = (await readdir(join(testsRoot, dir))).filter((n) => n.endsWith('.t')).sort();
  const files: FileResult[] = [];
  let timedOut = false;
  for (const name of names) {
    const file = `${dir}/${name}`;
    const left = options.dirTimeoutMs - (performance.now() - t0);
    if (left <= 0) {
      timedOut = true;
      const planned = options.knownPlans?.get(file) ?? 1;
      files.push({ file, planned, passed: 0, failed: planned, died: 'not run: the directory ran out of time', failures: [], ms: 0 });
      continue;
    }
    const f0 = performance.now();
    const r = await runTestFile(join(testsRoot, dir, name), work, Math.min(options.fileTimeoutMs, left));
    files.push({ ...countTap(file, r.stdout, r, options.knownPlans?.get(file)), ms: performance.now() - f0 });
  }
  const sum = (k: 'planned' | 'passed' | 'failed') => files.reduce((a, f) => a + f[k], 0);
  return { dir, checks: sum('planned'), passed: sum('passed'), failed: sum('failed'), files, ...(timedOut ? { timedOut } : {}), ms: performance.now() - t0 };
}

/** "97.3" (passed / checks, one decimal; "-" for no checks). */
export function percent(passed: number, checks: number): string {
  return checks === 0 ? '-' : ((100 * passed) / checks).toFixed(1);
}

/** A plain-text table: local directory and mount side by side, one row per pjdfstest directory, plus a total. */
export function formatSideBySide(local: readonly DirResult[], mount: readonly DirResult[], labels: [string, string]): string {
  const rows: string[][] = [['directory', `${labels[0]} checks`, 'passed', 'failed', '%', `${labels[1]} checks`, 'passed', 'failed', '%', 'time (s)']];
  const total = (rs: readonly DirResult[]) => ({ checks: rs.reduce((a, r) => a + r.checks, 0), passed: rs.reduce((a, r) => a + r.passed, 0), failed: rs.reduce((a, r) => a + r.failed, 0) });
  const cells = (r: { checks: number; passed: number; failed: number } | undefined) => (r ? [String(r.checks), String(r.passed), String(r.failed), percent(r.passed, r.checks)] : ['', '', '', '']);
  for (const m of mount) {
    const l = local.find((x) => x.dir === m.dir);
    rows.push([m.dir + (m.timedOut ? ' (TIMED OUT)' : ''), ...cells(l), ...cells(m), (m.ms / 1000).toFixed(1)]);
  }
  rows.push(['total', ...cells(total(local)), ...cells(total(mount)), (mount.reduce((a, r) => a + r.ms, 0) / 1000).toFixed(1)]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ')).join('\n');
}
