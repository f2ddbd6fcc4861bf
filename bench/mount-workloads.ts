/**
 * Workloads inside a mount (issue 10, "Speed inside a mount"): real tools run
 * in a local directory of this machine and inside a `stowage mount` of a
 * `stowage serve` child process, in the same run, one after the other, each
 * in a fresh directory. Prints one table: local time, the time in a mount
 * with the default options (low latency where this process may hold the
 * CPU latency device, i.e. as root) and its ratio, the same in a
 * `--no-low-latency` mount, the target and whether the default mount
 * meets it. Every workload is one child process
 * (`sh -c ...`); this process never touches the mount, and its event loop
 * stays free while the agent serves the child.
 *
 *   npm run bench:mount                       # the mount benchmarks, then these
 *   node dist/bench/mount-workloads.js        # only these (after npm run build)
 *
 * Workloads (inputs are made once, outside both directories, and not timed):
 *   git      `git clone --no-local` of this repository's history, then 20 commits (edit, `git commit -qam`)
 *   npm ci   `npm ci --offline --ignore-scripts` of a small project (8 of this project's pure-JS
 *            dependencies, 45 packages): package.json and lock cut from this project's lock, packages
 *            from the local npm cache
 *   venv     `python3 -m venv` (with pip, as by default)
 *   sqlite   10,000 INSERTs by the sqlite3 CLI in 100 transactions of 100 (rollback journal,
 *            synchronous=FULL: the defaults; a journal file created and deleted per transaction);
 *            again with synchronous=OFF, as a mount's fsync does nothing (commit is its durability point)
 *   tar x    of 10,000 files (100 directories of 100 files, 1-16 KiB of random bytes, ~80 MiB)
 *   creates  one node process creating 10,000 empty files in one directory (open O_CREAT + close)
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { WakeLatencyHold } from '../src/mount/fuse/wake-latency.js';
import {
  mountFreshVolume,
  unmountFreshVolume,
  run,
  startServerProcess,
  stopServer,
  type RunResult,
  type ServerProcess,
} from './bench-server.js';

/** The repository this script was built from (dist/bench -> ../..). */
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** A workload that takes longer than this is killed and the benchmark fails. */
const CHILD_TIMEOUT_MS = 600_000;
const COMMITS = 20;
const SQLITE_ROWS = 10_000;
const SQLITE_PER_TX = 100;
const TAR_FILES = 10_000;
const CREATES = 10_000;
/** The npm ci project: these of this project's dependencies, with their own dependencies, from package-lock.json. */
const NPM_PACKAGES = ['commander', 'picomatch', 'cli-progress', 'zod', 'hono', 'kysely', 'tus-js-client', 'tar-stream'];

/** Runs `sh -c script` (positional args $1...) without blocking this process; fails on a non-zero exit. */
function sh(script: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<RunResult> {
  return run('sh', ['-c', script, 'sh', ...args], { env, timeoutMs: CHILD_TIMEOUT_MS });
}

/** One workload: made ready (untimed) in a fresh directory, then timed there. */
interface Workload {
  name: string;
  /** e.g. '<= 2x'. */
  target: string;
  /** Whether a row meets its target, from the two times (ms). */
  met(local: number, mount: number): boolean;
  /** The value shown for each side (default: seconds). */
  show?(ms: number): string;
  /** The timed part, run by a child process in `dir` (a fresh directory, already made). */
  run(dir: string): Promise<RunResult>;
}

/** Inputs shared by both sides, made once under `inputs/` (local disk). */
interface Inputs {
  repo: string;
  npmProject: string;
  tarball: string;
  sqlScript: string;
  creator: string;
}

async function makeInputs(dir: string): Promise<Inputs> {
  await mkdir(dir, { recursive: true });
  // git: a bare copy of this repository's history, so both clones read the same local source.
  const repo = join(dir, 'repo.git');
  await sh('git clone -q --bare "$1" "$2"', [REPO, repo]);

  // npm ci: package.json and a lockfile cut from this project's lock (every package is in the npm cache: this project was installed from it).
  const npmProject = join(dir, 'npm-project');
  await mkdir(npmProject);
  const lock = JSON.parse(await readFile(join(REPO, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version: string; dependencies?: Record<string, string>; dev?: boolean }>;
  };
  const packages: Record<string, unknown> = {};
  const queue = [...NPM_PACKAGES];
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    const key = `node_modules/${name}`;
    if (packages[key]) continue;
    const entry = lock.packages[key];
    if (!entry) throw new Error(`package-lock.json has no hoisted ${key}; pick other packages for the npm ci workload`);
    const { dev: _dev, ...kept } = entry;
    packages[key] = kept;
    queue.push(...Object.keys(entry.dependencies ?? {}));
  }
  const dependencies = Object.fromEntries(NPM_PACKAGES.map((n) => [n, lock.packages[`node_modules/${n}`]!.version]));
  const manifest = { name: 'bench-npm-ci', version: '1.0.0', private: true, dependencies };
  await writeFile(join(npmProject, 'package.json'), JSON.stringify(manifest, null, 2));
  await writeFile(
    join(npmProject, 'package-lock.json'),
    JSON.stringify(
      {
        ...manifest,
        lockfileVersion: 3,
        requires: true,
        packages: { '': { name: manifest.name, version: manifest.version, dependencies }, ...packages },
      },
      null,
      2,
    ),
  );

  // tar x: 100 directories of 100 files of 1-16 KiB random bytes.
  const tree = join(dir, 'tree');
  const tarball = join(dir, 'tree.tar');
  await sh(
    `node -e '
    const { mkdirSync, writeFileSync } = require("node:fs");
    const { randomBytes } = require("node:crypto");
    const [root, n] = [process.argv[1], Number(process.argv[2])];
    for (let i = 0; i < n; i++) {
      const d = root + "/d" + String(Math.floor(i / 100)).padStart(3, "0");
      if (i % 100 === 0) mkdirSync(d, { recursive: true });
      writeFileSync(d + "/f" + String(i % 100).padStart(3, "0") + ".bin", randomBytes(1024 * (1 + (i % 16))));
    }' "$1" "$2" && tar -C "$1" -cf "$3" .`,
    [tree, String(TAR_FILES), tarball],
  );
  await rm(tree, { recursive: true });

  // sqlite: one script, 100 transactions of 100 INSERTs.
  const sql: string[] = ['CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, value REAL, payload BLOB);'];
  for (let i = 0; i < SQLITE_ROWS; i += SQLITE_PER_TX) {
    sql.push('BEGIN;');
    for (let j = i; j < i + SQLITE_PER_TX; j++)
      sql.push(`INSERT INTO t (name, value, payload) VALUES ('row ${j}', ${j * 1.5}, randomblob(100));`);
    sql.push('COMMIT;');
  }
  const sqlScript = join(dir, 'inserts.sql');
  await writeFile(sqlScript, sql.join('\n') + '\n');

  // creates: one process, open(O_CREAT) + close per file.
  const creator = join(dir, 'creates.js');
  await writeFile(
    creator,
    `const { openSync, closeSync } = require('node:fs');
const [dir, n] = [process.argv[2], Number(process.argv[3])];
for (let i = 0; i < n; i++) closeSync(openSync(dir + '/f' + i, 'w'));
`,
  );
  return { repo, npmProject, tarball, sqlScript, creator };
}

function workloads(inputs: Inputs): Workload[] {
  const ratio = (max: number) => (local: number, mount: number) => mount / local <= max;
  const gitEnv = {
    ...process.env,
    GIT_AUTHOR_NAME: 'bench',
    GIT_AUTHOR_EMAIL: 'bench@example.com',
    GIT_COMMITTER_NAME: 'bench',
    GIT_COMMITTER_EMAIL: 'bench@example.com',
  };
  return [
    {
      name: `git clone (${'this repository'}) + ${COMMITS} commits`,
      target: '<= 2x',
      met: ratio(2),
      run: (dir) =>
        sh(
          `git clone -q --no-local "$1" "$2/clone" && cd "$2/clone" && for i in $(seq ${COMMITS}); do echo "change $i" >> README.md && git commit -qam "change $i" || exit 1; done`,
          [inputs.repo, dir],
          gitEnv,
        ),
    },
    {
      name: `npm ci --offline --ignore-scripts (${NPM_PACKAGES.length} deps, their packages from the npm cache)`,
      target: '<= 1.5x',
      met: ratio(1.5),
      run: (dir) =>
        sh(
          'cp "$1/package.json" "$1/package-lock.json" "$2/" && cd "$2" && npm ci --offline --ignore-scripts --no-audit --no-fund --loglevel=error',
          [inputs.npmProject, dir],
        ),
    },
    {
      name: 'python3 -m venv (with pip)',
      target: '<= 2x',
      met: ratio(2),
      run: (dir) => sh('python3 -m venv "$1/venv"', [dir]),
    },
    {
      name: `sqlite3: ${SQLITE_ROWS.toLocaleString('en')} INSERTs in ${SQLITE_ROWS / SQLITE_PER_TX} transactions (rollback journal, synchronous=FULL)`,
      target: '<= 2x',
      met: ratio(2),
      run: (dir) => sh('sqlite3 "$1/bench.db" < "$2"', [dir, inputs.sqlScript]),
    },
    {
      // A mount's fsync returns at once (commit is its durability boundary), so the row above compares fsyncs on ext4 with none; this one has none on either side.
      name: `sqlite3: the same with PRAGMA synchronous=OFF (no fsync on either side)`,
      target: '<= 2x',
      met: ratio(2),
      run: (dir) => sh('(echo "PRAGMA synchronous=OFF;"; cat "$2") | sqlite3 "$1/bench.db"', [dir, inputs.sqlScript]),
    },
    {
      name: `tar x of ${TAR_FILES.toLocaleString('en')} files (1-16 KiB, 100 directories)`,
      target: '<= 3x',
      met: ratio(3),
      run: (dir) => sh('tar -C "$1" -xf "$2"', [dir, inputs.tarball]),
    },
    {
      name: `file creates: ${CREATES.toLocaleString('en')} empty files, one process (files/s)`,
      target: '>= 3,000/s (mount)',
      met: (_local, mount) => CREATES / (mount / 1000) >= 3000,
      show: (ms) => `${Math.round(CREATES / (ms / 1000)).toLocaleString('en')}/s (${(ms / 1000).toFixed(2)} s)`,
      run: (dir) => sh('node "$1" "$2" "$3"', [inputs.creator, dir, String(CREATES)]),
    },
  ];
}

/** A table row. */
export interface WorkloadRow {
  name: string;
  local: string;
  mount: string;
  ratio: string;
  /** The same inside a `--no-low-latency` mount. */
  sleepy: string;
  sleepyRatio: string;
  target: string;
  /** Judged on the default mount. */
  met: boolean;
}

/**
 * Runs every workload locally under `work/local`, inside a fresh mount of a
 * new volume, and inside a `--no-low-latency` mount of another; returns the rows.
 * Each run starts after a `sync`, so none pays for the dirty pages of the one before.
 */
export async function workloadBenchmarks(
  server: ServerProcess,
  work: string,
  log: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Promise<WorkloadRow[]> {
  log('workloads: making the inputs (a bare clone, an npm project, a 10,000-file tarball, an SQL script)');
  const inputs = await makeInputs(join(work, 'inputs'));
  const plain = await mountFreshVolume(server, work, 'workloads');
  const sleepy = await mountFreshVolume(server, work, 'workloads-nll', ['--no-low-latency']);
  if (!WakeLatencyHold.available())
    log('  (this process may not hold /dev/cpu_dma_latency: the default mount is --no-low-latency as well)');
  const rows: WorkloadRow[] = [];
  try {
    let n = 0;
    for (const w of workloads(inputs)) {
      n++;
      const times: number[] = [];
      for (const root of [join(work, 'local'), plain.mnt, sleepy.mnt]) {
        const dir = join(root, `w${n}`);
        await sh('mkdir -p "$1" && sync', [dir]);
        const r = await w.run(dir);
        times.push(r.ms);
      }
      const [local, mount, slow] = times as [number, number, number];
      const show = w.show ?? ((ms: number) => `${(ms / 1000).toFixed(2)} s`);
      const row = {
        name: w.name,
        local: show(local),
        mount: show(mount),
        ratio: `${(mount / local).toFixed(2)}x`,
        sleepy: show(slow),
        sleepyRatio: `${(slow / local).toFixed(2)}x`,
        target: w.target,
        met: w.met(local, mount),
      };
      rows.push(row);
      log(
        `  ${row.name}: local ${row.local}, mount ${row.mount} (${row.ratio}), --no-low-latency ${row.sleepy} (${row.sleepyRatio})`,
      );
    }
  } finally {
    await unmountFreshVolume(plain);
    await unmountFreshVolume(sleepy);
  }
  return rows;
}

/** The machine and its load (other processes skew both columns alike, but not always by the same factor). */
export function machineNote(): string {
  const [one, five] = loadavg();
  return `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), load average ${one!.toFixed(1)} (1 min) / ${five!.toFixed(1)} (5 min) at the end, Node ${process.version}`;
}

/** The rows as a Markdown table. */
export function formatWorkloads(rows: readonly WorkloadRow[]): string {
  const cols = ['workload', 'local disk', 'mount', 'ratio', 'mount --no-low-latency', 'ratio', 'target', 'met'];
  const cells = rows.map((r) => [
    r.name,
    r.local,
    r.mount,
    r.ratio,
    r.sleepy,
    r.sleepyRatio,
    r.target,
    r.met ? 'yes' : 'NO',
  ]);
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (parts: readonly string[]) => `| ${parts.map((p, i) => p.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(cols), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'stowage-bench-workloads-'));
  let server: ServerProcess | undefined;
  try {
    server = await startServerProcess(join(work, 'data'));
    const rows = await workloadBenchmarks(server, work);
    console.log(`\nWorkloads inside a mount vs local disk (${machineNote()})\n`);
    console.log(formatWorkloads(rows));
  } finally {
    if (server) await stopServer(server).catch(() => undefined);
    await rm(work, { recursive: true, force: true }).catch((e: unknown) =>
      process.stderr.write(`could not remove ${work}: ${String(e)}\n`),
    );
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
