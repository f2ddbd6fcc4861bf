/**
 * Transfer benchmarks: the real `stowage` CLI binary against a real
 * `stowage serve` child process on a temp data dir, each transfer beside
 * `cp` / `cp -r` on the same disk as the physical reference. Prints a table.
 *
 *   npm run build && node dist/bench/transfers.js          # 1 GiB file, 10,000 files of 4 KiB
 *   npm run build && node dist/bench/transfers.js --quick  # 128 MiB file, 2,000 files
 *
 * Measures: upload (`stowage upload`) and download (`stowage download`) of a
 * large file and of a directory of many small files; a tar.gz download
 * (`stowage download --archive`) of the many-file directory with the peak RSS
 * of a freshly started server (the kernel's VmHWM), so it reflects only the
 * archive.
 */
import { spawn } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatSize, GiB, KiB, MiB } from '@stowage/sdk/common/sizes.js';
import { cliMain, peakRss, randomFile, startServerProcess, stopServer, type ServerProcess } from './bench-server.js';

const quick = process.argv.includes('--quick');
const BIG_FILE = quick ? 128 * MiB : 1 * GiB;
const SMALL_COUNT = quick ? 2_000 : 10_000;
const SMALL_SIZE = 4 * KiB;

interface Row {
  name: string;
  value: string;
  reference: string;
  target: string;
  ok: boolean | null;
}
const rows: Row[] = [];
function record(row: Row): void {
  rows.push(row);
  process.stderr.write(`  ${row.name}: ${row.value} (${row.reference})\n`);
}

/** Runs a command to completion; throws with its stderr on a non-zero exit. Returns the wall time in seconds. */
async function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<number> {
  const t0 = process.hrtime.bigint();
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err.trim()}`);
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

function cli(server: ServerProcess, args: string[]): Promise<number> {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('STOWAGE_')) env[k] = v;
  Object.assign(env, {
    STOWAGE_URL: server.url,
    STOWAGE_TOKEN: server.token,
    STOWAGE_STATE_DIR: join(tmpdir(), `stowage-bench-state-${process.pid}`),
  });
  return run(process.execPath, [cliMain, ...args], env);
}

/** `count` distinct random files of `size` bytes in directories of 1,000. */
async function smallFiles(root: string, count: number, size: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const dir = join(root, `d${String(Math.floor(i / 1000)).padStart(3, '0')}`);
    if (i % 1000 === 0) await mkdir(dir, { recursive: true });
    await writeFile(join(dir, `f${String(i % 1000).padStart(4, '0')}.bin`), randomFillSync(Buffer.alloc(size)));
  }
}

const rate = (bytes: number, s: number) => `${(bytes / MiB / s).toFixed(0)} MiB/s`;

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'stowage-bench-transfers-'));
  const dataDir = join(work, 'data');
  try {
    process.stderr.write(
      `preparing a ${formatSize(BIG_FILE)} file and ${SMALL_COUNT.toLocaleString('en')} files of ${formatSize(SMALL_SIZE)}\n`,
    );
    const big = join(work, 'big.bin');
    await randomFile(big, BIG_FILE);
    const many = join(work, 'many');
    await smallFiles(many, SMALL_COUNT, SMALL_SIZE);

    let server = await startServerProcess(dataDir);
    try {
      await cli(server, ['volume', 'create', 'bench', '--cap', '8G']);

      process.stderr.write('large file\n');
      const cpBig = await run('cp', [big, join(work, 'big.cp')]);
      await rm(join(work, 'big.cp'));
      const upBig = await cli(server, ['upload', big, 'bench:/big.bin']);
      record({
        name: `upload ${formatSize(BIG_FILE)} file (stowage upload)`,
        value: `${upBig.toFixed(2)} s, ${rate(BIG_FILE, upBig)}`,
        reference: `cp ${cpBig.toFixed(2)} s, ${rate(BIG_FILE, cpBig)}`,
        target: '>= 50% of cp',
        ok: cpBig / upBig >= 0.5,
      });
      const downBig = await cli(server, ['download', 'bench:/big.bin', join(work, 'big.down')]);
      const same = (await stat(join(work, 'big.down'))).size === BIG_FILE;
      await rm(join(work, 'big.down'));
      record({
        name: `download ${formatSize(BIG_FILE)} file (stowage download)`,
        value: `${downBig.toFixed(2)} s, ${rate(BIG_FILE, downBig)}${same ? '' : ' (SIZE MISMATCH)'}`,
        reference: `cp ${cpBig.toFixed(2)} s, ${rate(BIG_FILE, cpBig)}`,
        target: '>= 50% of cp',
        ok: same && cpBig / downBig >= 0.5,
      });

      process.stderr.write('many small files\n');
      const label = `${SMALL_COUNT.toLocaleString('en')} files of ${formatSize(SMALL_SIZE)}`;
      const cpMany = await run('cp', ['-r', many, join(work, 'many.cp')]);
      await rm(join(work, 'many.cp'), { recursive: true });
      const upMany = await cli(server, ['upload', many, 'bench:/many']);
      record({
        name: `upload ${label} (stowage upload DIR)`,
        value: `${upMany.toFixed(2)} s`,
        reference: `cp -r ${cpMany.toFixed(2)} s`,
        target: '< 10 s',
        ok: upMany < 10,
      });
      const downMany = await cli(server, ['download', 'bench:/many', join(work, 'many.down')]);
      await rm(join(work, 'many.down'), { recursive: true });
      record({
        name: `download ${label} (stowage download DIR)`,
        value: `${downMany.toFixed(2)} s`,
        reference: `cp -r ${cpMany.toFixed(2)} s`,
        target: '< 10 s',
        ok: downMany < 10,
      });
    } finally {
      await stopServer(server);
    }

    // A fresh server on the same data, so its peak RSS reflects the archive alone.
    process.stderr.write('tar.gz of the many-file directory\n');
    server = await startServerProcess(dataDir);
    try {
      const before = await peakRss(server.child.pid!);
      const out = join(work, 'many.tar.gz');
      const tgz = await cli(server, ['download', 'bench:/many', '--archive', out]);
      const peak = await peakRss(server.child.pid!);
      const size = (await stat(out)).size;
      const tarRef = await run('tar', ['-czf', join(work, 'ref.tar.gz'), '-C', many, '.']);
      record({
        name: `tar.gz download of ${SMALL_COUNT.toLocaleString('en')} files (server peak RSS)`,
        value: `${tgz.toFixed(2)} s, ${formatSize(size)}; RSS ${formatSize(peak)} (${formatSize(before)} at start)`,
        reference: `tar -czf ${tarRef.toFixed(2)} s`,
        target: 'RSS < 200 MB',
        ok: peak < 200e6,
      });
    } finally {
      await stopServer(server);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
    await rm(join(tmpdir(), `stowage-bench-state-${process.pid}`), { recursive: true, force: true });
  }

  const cols = ['benchmark', 'result', 'reference (same disk)', 'target', 'met'] as const;
  const cells = rows.map((r) => [r.name, r.value, r.reference, r.target, r.ok === null ? '' : r.ok ? 'yes' : 'NO']);
  const w = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (parts: readonly string[]) => `| ${parts.map((p, i) => p.padEnd(w[i]!)).join(' | ')} |`;
  console.log(`\nStowage transfer benchmarks (${quick ? 'quick' : 'full'} run, Node ${process.version})\n`);
  console.log(line(cols));
  console.log(line(w.map((n) => '-'.repeat(n))));
  for (const c of cells) console.log(line(c));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
