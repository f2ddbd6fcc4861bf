/**
 * Foundation benchmarks: runs a real `stowage serve` child process on a temp
 * data dir and drives it through the SDK over loopback, then prints a table.
 *
 *   npm run bench             # full sizes (1 GiB and 2 GiB files; ~6 GiB of temp disk)
 *   npm run bench -- --quick  # small sizes, for a smoke run
 *
 * Measures: snapshot and fork time at 1k/10k/100k files; a one-file commit on
 * volumes of those sizes; uploading a large file and re-uploading it
 * unchanged; the server's peak RSS while a client uploads a 2 GiB file; a
 * 1,000,000-entry directory (bench/wide-dir.ts).
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { formatSize, GiB, MiB } from '@stowage/sdk/common/sizes.js';
import { Stowage, Volume, type Change } from '@stowage/sdk';
import { peakRss, randomFile, startServerProcess, stopServer } from './bench-server.js';
import { wideDirBenchmarks } from './wide-dir.js';

const quick = process.argv.includes('--quick');
const FILE_COUNTS = quick ? [1_000, 10_000] : [1_000, 10_000, 100_000];
const BIG_FILE = quick ? 128 * MiB : 1 * GiB;
const HUGE_FILE = quick ? 256 * MiB : 2 * GiB;
const REPEATS = 7;

interface Row {
  name: string;
  value: string;
  target: string;
  ok: boolean | null;
}
const rows: Row[] = [];
function record(name: string, value: string, target: string, ok: boolean | null): void {
  rows.push({ name, value, target, ok });
  process.stderr.write(`  ${name}: ${value}\n`);
}

async function time<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = process.hrtime.bigint();
  const out = await fn();
  return [Number(process.hrtime.bigint() - t0) / 1e6, out];
}

async function median(fn: (i: number) => Promise<unknown>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < REPEATS; i++) times.push((await time(() => fn(i)))[0]);
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

/** A volume of `count` one-chunk files in directories of 1,000, built with metadata-only commits. */
async function populate(client: Stowage, name: string, count: number): Promise<Volume> {
  const vol = await Volume.create(name, { client, cap: '1T' });
  const seed = 'benchmark file body\n';
  await vol.files.write('/seed.txt', seed);
  const hash = createHash('sha256').update(seed).digest('hex');
  const batch = 20_000;
  for (let start = 0; start < count; start += batch) {
    const changes: Change[] = [];
    for (let i = start; i < Math.min(count, start + batch); i++) {
      changes.push({
        op: 'put',
        path: `/d${String(Math.floor(i / 1000)).padStart(3, '0')}/f${String(i % 1000).padStart(4, '0')}.txt`,
        size: seed.length,
        chunkSize: SMALL_CHUNK_SIZE,
        chunks: [hash],
      });
    }
    await vol.commitChanges(changes, { message: `populate ${start}` });
  }
  return vol;
}

/** Runs `fn` against its own `stowage serve` process, stopped afterwards. */
async function withServer(dataDir: string, fn: (client: Stowage, pid: number) => Promise<void>): Promise<void> {
  const server = await startServerProcess(dataDir);
  try {
    await fn(new Stowage({ url: server.url, token: server.token }), server.child.pid!);
  } finally {
    await stopServer(server);
  }
}

/** Snapshot, fork and one-file commits by volume size; a large upload and its unchanged re-upload. */
async function volumeBenchmarks(work: string, client: Stowage, pid: number): Promise<void> {
  process.stderr.write('snapshot, fork and one-file commits by volume size\n');
  for (const count of FILE_COUNTS) {
    const vol = await populate(client, `files-${count}`, count);
    const snap = await median((i) => vol.snapshot(`s${i}`));
    record(`snapshot, ${count.toLocaleString('en')} files`, `${snap.toFixed(1)} ms`, '< 50 ms, flat', snap < 50);
    const fork = await median((i) => vol.fork(`files-${count}-fork-${i}`));
    record(`fork, ${count.toLocaleString('en')} files`, `${fork.toFixed(1)} ms`, '< 50 ms, flat', fork < 50);
    const commit = await median((i) => vol.files.write(`/d000/f0007.txt`, `changed ${i}\n`));
    record(
      `commit 1 changed file (SDK write), ${count.toLocaleString('en')} files`,
      `${commit.toFixed(1)} ms`,
      '< 200 ms',
      commit < 200,
    );
  }
  const deep = await populate(client, 'deep', 1000);
  const deepPath = '/a/b/c/d/e/f/g/h/deep.txt';
  await deep.files.write(deepPath, 'x');
  const deepCommit = await median((i) => deep.files.write(deepPath, `deep ${i}`));
  record('commit 1 changed file at depth 9, 1,000 files', `${deepCommit.toFixed(1)} ms`, 'grows with depth', null);

  process.stderr.write(`upload of a ${formatSize(BIG_FILE)} file\n`);
  const big = join(work, 'big.bin');
  await randomFile(big, BIG_FILE);
  const bigVol = await Volume.create('big', { client, cap: '8G' });
  const [first, r1] = await time(() => bigVol.files.writeFile('/big.bin', big));
  record(
    `upload ${formatSize(BIG_FILE)} file`,
    `${(first / 1000).toFixed(2)} s, ${(BIG_FILE / MiB / (first / 1000)).toFixed(0)} MiB/s, sent ${formatSize(r1.uploadedBytes)}`,
    'streams',
    null,
  );
  const [second, r2] = await time(() => bigVol.files.writeFile('/big.bin', big));
  record(
    `re-upload unchanged ${formatSize(BIG_FILE)} file`,
    `${(second / 1000).toFixed(2)} s, sent ${r2.uploadedBytes} chunk bytes`,
    '0 chunk bytes',
    r2.uploadedBytes === 0,
  );
  await rm(big);
  record('server peak RSS after the runs above', formatSize(await peakRss(pid)), 'informational', null);
}

/** Peak RSS of a fresh server while a client uploads one huge file. */
async function uploadMemoryBenchmark(work: string, client: Stowage, pid: number): Promise<void> {
  process.stderr.write(`server RSS while uploading a ${formatSize(HUGE_FILE)} file\n`);
  const huge = join(work, 'huge.bin');
  await randomFile(huge, HUGE_FILE);
  const before = await peakRss(pid);
  const vol = await Volume.create('huge', { client, cap: '8G' });
  const [ms] = await time(() => vol.files.writeFile('/huge.bin', huge));
  const peak = await peakRss(pid);
  record(
    `server peak RSS, upload ${formatSize(HUGE_FILE)} file`,
    `${formatSize(peak)} (${formatSize(before)} at start; ${(ms / 1000).toFixed(1)} s)`,
    '< 300 MB',
    peak < 300e6,
  );
  await rm(huge);
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'stowage-bench-'));
  try {
    await withServer(join(work, 'data'), (client, pid) => volumeBenchmarks(work, client, pid));
    // A fresh server, so its peak RSS reflects only the upload.
    await withServer(join(work, 'data-rss'), (client, pid) => uploadMemoryBenchmark(work, client, pid));
    const wide = await startServerProcess(join(work, 'data-wide'));
    try {
      await wideDirBenchmarks(wide, record, quick ? 100_000 : 1_000_000);
    } finally {
      await stopServer(wide);
    }
  } finally {
    await rm(work, { recursive: true, force: true });
  }

  const w = [
    Math.max(...rows.map((r) => r.name.length), 9),
    Math.max(...rows.map((r) => r.value.length), 6),
    Math.max(...rows.map((r) => r.target.length), 6),
  ];
  const line = (a: string, b: string, c: string, d: string) =>
    `| ${a.padEnd(w[0]!)} | ${b.padEnd(w[1]!)} | ${c.padEnd(w[2]!)} | ${d.padEnd(4)} |`;
  console.log(`\nStowage foundation benchmarks (${quick ? 'quick' : 'full'} run, Node ${process.version})\n`);
  console.log(line('benchmark', 'result', 'target', 'met'));
  console.log(line('-'.repeat(w[0]!), '-'.repeat(w[1]!), '-'.repeat(w[2]!), '----'));
  for (const r of rows) console.log(line(r.name, r.value, r.target, r.ok === null ? '' : r.ok ? 'yes' : 'NO'));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
