/**
 * @module test/helpers/fsx
 * Running fsx (xfstests' file-system exerciser, built by
 * test/helpers/test-tools.ts) from a child process, and making a second run
 * elsewhere repeat exactly the same operations.
 *
 * fsx checks every read against its in-memory copy, but writes that copy to
 * FILE.fsxgood only when it fails, and its --record-ops log keeps only the
 * last 10,000 operations. The reference for a run's final bytes is therefore
 * the same run, same seed and flags, against a local file. fsx disables at
 * start-up the optional operations a file system refuses (fallocate modes,
 * copy_file_range ...), and which ones are enabled changes how many random
 * numbers each operation draws: so a short probe on the file system under
 * test finds what it refuses, and both runs get those operations switched off
 * by flag.
 */
import { sh, type ShResult } from './mount.js';

/** fsx's start-up message for an optional operation it switches off -> the flag that switches it off up front. */
const DISABLED_TO_FLAG: ReadonlyArray<readonly [RegExp, string]> = [
  [/fallocate mode 0,/, '-F'],
  [/fallocate mode FALLOC_FL_KEEP_SIZE,/, '-K'],
  [/fallocate mode FALLOC_FL_UNSHARE_RANGE,/, '-u'],
  [/fallocate mode FALLOC_FL_PUNCH_HOLE \| FALLOC_FL_KEEP_SIZE,/, '-H'],
  [/fallocate mode FALLOC_FL_ZERO_RANGE,/, '-z'],
  [/fallocate mode FALLOC_FL_COLLAPSE_RANGE,/, '-C'],
  [/fallocate mode FALLOC_FL_INSERT_RANGE,/, '-I'],
  [/copy range/, '-E'],
  [/clone range/, '-J'],
  [/dedupe range/, '-B'],
  [/exchange range/, '-0'],
  [/atomic writes/, '-a'],
];

/**
 * The "disabling!" lines of an fsx run that change its random sequence.
 * (dontcache IO is left out: it only picks a read/write flag, draws no random
 * number, and fsx has no working option to switch it off.)
 */
export function fsxDisabled(output: string): string[] {
  return output
    .split('\n')
    .filter((l) => l.includes('disabling!') && !l.includes('dontcache'))
    .map((l) => l.trim());
}

/** The flags that switch off up front what `disabled` (from fsxDisabled) says fsx switched off; throws on a message it does not know. */
export function fsxFlagsFor(disabled: readonly string[]): string[] {
  return disabled.map((line) => {
    const hit = DISABLED_TO_FLAG.find(([re]) => re.test(line));
    if (!hit) throw new Error(`fsx disabled an operation this helper has no flag for: ${line}`);
    return hit[1];
  });
}

/** One fsx run. */
export interface FsxRun {
  file: string;
  maxLen: number;
  ops: number;
  seed: number;
  /** Extra flags (e.g. from fsxFlagsFor). */
  flags: string[];
  /** Where fsx writes its .fsxlog/.fsxgood (never inside a mount under test). */
  logDir: string;
  timeoutMs: number;
}

/** Runs fsx in a child process; resolves with its output and wall time (it does not check the outcome). */
export async function runFsx(fsx: string, run: FsxRun): Promise<ShResult & { ms: number; command: string }> {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [
    fsx,
    '-N',
    String(run.ops),
    '-l',
    String(run.maxLen),
    '-S',
    String(run.seed),
    '-P',
    run.logDir,
    ...run.flags,
    run.file,
  ]
    .map(q)
    .join(' ');
  const t0 = performance.now();
  const r = await sh(`${command} 2>&1`, { timeoutMs: run.timeoutMs });
  return { ...r, ms: performance.now() - t0, command };
}

/** Whether an fsx run ended well: exit 0 and its own "All N operations completed A-OK!". */
export function fsxOk(r: ShResult, ops: number): boolean {
  return r.status === 0 && r.stdout.includes(`All ${ops} operations completed A-OK!`);
}
