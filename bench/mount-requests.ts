/**
 * FUSE requests per unit of work inside a `stowage mount` (issue 10): on this
 * VM every round trip costs ~70-100 µs of thread wake-ups whatever the agent
 * does, and timings move with the machine's load, so this counts requests
 * instead of timing them. It mounts a fresh volume of a `stowage serve` child
 * process, runs each workload as a child process (`sh -c ...`) in a fresh
 * directory of the mount, and reads the agent's per-operation counters
 * (`mount-status`'s `fuse.requests`, through the control socket) before and
 * after.
 *
 *   npm run build && node dist/bench/mount-requests.js [--files N] [--transactions N]
 *
 * Workloads:
 *   tar x    of N small files (default 1,000: 10 directories of 100, 1-16 KiB), as root: tar
 *            restores owners, modes and times (chown, chmod, utimens per file); per file
 *   sqlite   the sqlite3 CLI, N transactions (default 100) of 100 INSERTs, rollback journal,
 *            synchronous=FULL (bench/mount-workloads.ts's script); per transaction
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { MountHandle } from '@stowage/sdk';
import {
  mountFreshVolume,
  run,
  startServerProcess,
  stopServer,
  unmountFreshVolume,
  type ServerProcess,
} from './bench-server.js';

const CHILD_TIMEOUT_MS = 600_000;
const ROWS_PER_TX = 100;

function sh(script: string, args: string[] = [], env: NodeJS.ProcessEnv = process.env): Promise<unknown> {
  return run('sh', ['-c', script, 'sh', ...args], { env, timeoutMs: CHILD_TIMEOUT_MS });
}

function option(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isInteger(v) || v <= 0) throw new Error(`${name} takes a positive integer`);
  return v;
}

/** One workload's requests by operation, divided by its units (files, transactions). */
export interface RequestRow {
  workload: string;
  unit: string;
  units: number;
  total: number;
  byOp: Record<string, number>;
}

async function inputs(
  dir: string,
  files: number,
  transactions: number,
): Promise<{ tarball: string; sqlScript: string }> {
  await mkdir(dir, { recursive: true });
  const tree = join(dir, 'tree');
  const tarball = join(dir, 'tree.tar');
  await sh(
    `node -e '
    const { mkdirSync, writeFileSync } = require("node:fs");
    const { randomBytes } = require("node:crypto");
    const [root, n] = [process.argv[1], Number(process.argv[2])];
    for (let i = 0; i < n; i++) {
      const d = root + "/d" + String(Math.floor(i / 100)).padStart(3, "0");
      mkdirSync(d, { recursive: true });
      writeFileSync(d + "/f" + String(i % 100).padStart(3, "0") + ".bin", randomBytes(1024 * (1 + (i % 16))));
    }' "$1" "$2" && tar -C "$1" -cf "$3" .`,
    [tree, String(files), tarball],
  );
  const sql: string[] = ['CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, value REAL, payload BLOB);'];
  for (let t = 0; t < transactions; t++) {
    sql.push('BEGIN;');
    for (let j = 0; j < ROWS_PER_TX; j++)
      sql.push(`INSERT INTO t (name, value, payload) VALUES ('row ${t}-${j}', ${j * 1.5}, randomblob(100));`);
    sql.push('COMMIT;');
  }
  const sqlScript = join(dir, 'inserts.sql');
  await writeFile(sqlScript, sql.join('\n') + '\n');
  return { tarball, sqlScript };
}

async function counts(handle: MountHandle): Promise<Record<string, number>> {
  // release is sent after close() returns: give the kernel's last requests of the child time to arrive.
  await sleep(300);
  const status = await handle.status();
  if (!status.fuse) throw new Error('the agent reports no FUSE counters');
  return status.fuse.requests;
}

function diff(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [op, n] of Object.entries(after)) if (n - (before[op] ?? 0) > 0) out[op] = n - (before[op] ?? 0);
  return out;
}

export async function requestCounts(
  server: ServerProcess,
  work: string,
  files: number,
  transactions: number,
): Promise<RequestRow[]> {
  const { tarball, sqlScript } = await inputs(join(work, 'inputs'), files, transactions);
  const { mnt, env } = await mountFreshVolume(server, work, 'requests');
  const prev = process.env.STOWAGE_MOUNT_STATE;
  process.env.STOWAGE_MOUNT_STATE = env.STOWAGE_MOUNT_STATE;
  const handle = new MountHandle(mnt);
  const rows: RequestRow[] = [];
  const workloads = [
    {
      workload: `tar x of ${files} files (1-16 KiB)`,
      unit: 'file',
      units: files,
      script: 'mkdir "$1/tar" && tar -C "$1/tar" -xf "$2"',
      args: [mnt, tarball],
    },
    {
      workload: `sqlite3: ${transactions} transactions of ${ROWS_PER_TX} INSERTs (synchronous=FULL)`,
      unit: 'transaction',
      units: transactions,
      script: 'mkdir "$1/sql" && sqlite3 "$1/sql/bench.db" < "$2"',
      args: [mnt, sqlScript],
    },
  ];
  try {
    for (const w of workloads) {
      const before = await counts(handle);
      await sh(w.script, w.args);
      const byOp = diff(before, await counts(handle));
      rows.push({
        workload: w.workload,
        unit: w.unit,
        units: w.units,
        total: Object.values(byOp).reduce((a, b) => a + b, 0),
        byOp,
      });
    }
  } finally {
    if (prev === undefined) delete process.env.STOWAGE_MOUNT_STATE;
    else process.env.STOWAGE_MOUNT_STATE = prev;
    await unmountFreshVolume({ mnt, env });
  }
  return rows;
}

/** One Markdown table per workload: requests by operation, in all and per unit. */
export function formatRequests(rows: readonly RequestRow[]): string {
  return rows
    .map((r) => {
      const ops = Object.entries(r.byOp).sort(([, a], [, b]) => b - a);
      const lines = [
        `${r.workload}: ${r.total} requests, ${(r.total / r.units).toFixed(2)} per ${r.unit}`,
        '',
        `| operation | requests | per ${r.unit} |`,
        '| --- | ---: | ---: |',
      ];
      for (const [op, n] of ops) lines.push(`| ${op} | ${n} | ${(n / r.units).toFixed(2)} |`);
      return lines.join('\n');
    })
    .join('\n\n');
}

async function main(): Promise<void> {
  const files = option('--files', 1000);
  const transactions = option('--transactions', 100);
  const work = await mkdtemp(join(tmpdir(), 'stowage-bench-requests-'));
  let server: ServerProcess | undefined;
  try {
    server = await startServerProcess(join(work, 'data'));
    console.log(formatRequests(await requestCounts(server, work, files, transactions)));
  } finally {
    if (server) await stopServer(server).catch(() => undefined);
    await rm(work, { recursive: true, force: true }).catch(() => undefined);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
