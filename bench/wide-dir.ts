/**
 * Wide-directory benchmark: one directory of 1,000,000 entries on a real
 * `stowage serve` process, driven over loopback HTTP through the SDK.
 *
 *   npm run bench              # runs it with the other benchmarks
 *   npm run bench:wide         # this one alone (add -- --quick for 100,000 entries)
 *
 * Measures: building the directory (commits of 100,000 metadata-only puts,
 * the most one commit holds), a one-entry commit into it, a stat of an entry
 * in it, and the latency another client sees for small requests (stat of a
 * file in another volume) while the directory is built, against idle.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { MAX_COMMIT_CHANGES } from '@stowage/sdk/common/limits.js';
import { formatSize } from '@stowage/sdk/common/sizes.js';
import { Stowage, Volume, type Change } from '@stowage/sdk';
import { peakRss, startServerProcess, stopServer, type ServerProcess } from './bench-server.js';

/** Receives one result row. */
export type Record = (name: string, value: string, target: string, ok: boolean | null) => void;

const name = (i: number) => `f${String(i * 2).padStart(7, '0')}.txt`;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function ms(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function median(times: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) out.push(await ms(() => fn(i)));
  return out.sort((a, b) => a - b)[Math.floor(out.length / 2)]!;
}

/**
 * Another client: a separate process sending sequential small requests (stat
 * of a file in another volume) until stopped; their latencies, sorted. It
 * runs apart so that building the big commits' bodies here never delays it.
 */
const PROBE = `
const [url, token] = process.argv.slice(-2);
const latencies = [];
let running = true;
process.on('message', () => { running = false; });
while (running) {
  const t0 = performance.now();
  const res = await fetch(url, { headers: { authorization: 'Bearer ' + token } });
  await res.arrayBuffer();
  if (!res.ok) throw new Error('probe got ' + res.status);
  latencies.push(performance.now() - t0);
}
process.send(latencies, () => process.exit(0));
`;

function probe(server: ServerProcess, volume: string): { stop: () => Promise<number[]> } {
  const url = `${server.url}/v1/volumes/${volume}/stat?path=/probe.txt`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', PROBE, url, server.token], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const result = new Promise<number[]>((resolve, reject) => {
    child.once('message', (m) => resolve((m as number[]).sort((a, b) => a - b)));
    child.once('exit', (code) => reject(new Error(`probe exited with ${code}`)));
  });
  return {
    stop: async () => {
      child.send('stop');
      return result;
    },
  };
}

/** Runs the benchmark against a server process; `entries` is the directory's width. */
export async function wideDirBenchmarks(server: ServerProcess, record: Record, entries = 1_000_000): Promise<void> {
  const client = new Stowage({ url: server.url, token: server.token });
  const pid = server.child.pid!;
  const width = entries.toLocaleString('en');
  process.stderr.write(`a directory of ${width} entries\n`);
  const vol = await Volume.create('wide', { client, cap: '1T' });
  const seed = 'wide directory entry\n';
  await vol.files.write('/seed.txt', seed);
  const hash = createHash('sha256').update(seed).digest('hex');
  const other = await Volume.create('other', { client });
  await other.files.write('/probe.txt', 'probe');

  // Another client, idle server.
  const idleProbe = probe(server, 'other');
  await new Promise((r) => setTimeout(r, 3000));
  const idle = await idleProbe.stop();

  // Another client while the directory is built, 100,000 entries per commit.
  const busyProbe = probe(server, 'other');
  const rssBefore = await peakRss(pid);
  const build = await ms(async () => {
    for (let start = 0; start < entries; start += MAX_COMMIT_CHANGES) {
      const changes: Change[] = [];
      for (let i = start; i < Math.min(entries, start + MAX_COMMIT_CHANGES); i++) {
        changes.push({
          op: 'put',
          path: `/dir/${name(i)}`,
          size: seed.length,
          chunkSize: SMALL_CHUNK_SIZE,
          chunks: [hash],
        });
      }
      await vol.commitChanges(changes, { message: `entries from ${start}` });
    }
  });
  const busy = await busyProbe.stop();
  const peak = await peakRss(pid);
  record(
    `build ${width}-entry directory (commits of ${MAX_COMMIT_CHANGES.toLocaleString('en')})`,
    `${(build / 1000).toFixed(1)} s; server peak RSS ${formatSize(peak)} (${formatSize(rssBefore)} before)`,
    'informational',
    null,
  );

  // Let the server settle (the build leaves a large heap for the collector) before timing single requests.
  await new Promise((r) => setTimeout(r, 3000));
  const put = (path: string): Change => ({
    op: 'put',
    path,
    size: seed.length,
    chunkSize: SMALL_CHUNK_SIZE,
    chunks: [hash],
  });
  const commit = await median(9, (i) =>
    vol.commitChanges([put(`/dir/${name(Math.floor((entries * (i + 0.5)) / 9))}.new`)]),
  );
  record(
    `commit 1 entry into the ${width}-entry directory`,
    `${commit.toFixed(1)} ms (median of 9, HTTP)`,
    '< 50 ms',
    commit < 50,
  );
  const stat = await median(25, (i) => vol.files.stat(`/dir/${name(Math.floor((entries * (i + 0.5)) / 25))}`));
  record(
    `stat an entry of the ${width}-entry directory`,
    `${stat.toFixed(1)} ms (median of 25, HTTP)`,
    '< 10 ms',
    stat < 10,
  );
  // One page straight from the API (the SDK's list would walk every page).
  const page = await median(9, (i) =>
    client.request('GET', '/v1/volumes/wide/list', {
      query: { path: '/dir', limit: 1000, after: `/dir/${name(Math.floor((entries * (i + 0.5)) / 9))}` },
    }),
  );
  record(
    `list 1,000 entries from the middle of the ${width}-entry directory`,
    `${page.toFixed(1)} ms (median of 9, HTTP)`,
    'informational',
    null,
  );

  const idle99 = percentile(idle, 99);
  const busy99 = percentile(busy, 99);
  record(
    "another client's stat p50 / p99, idle server",
    `${percentile(idle, 50).toFixed(1)} / ${idle99.toFixed(1)} ms (${idle.length} requests)`,
    'informational',
    null,
  );
  // "Unaffected" relative to idle on the same machine: at most twice the idle p99 plus 10 ms.
  const bound = 2 * idle99 + 10;
  record(
    `another client's stat p50 / p99, during the ${width}-entry build`,
    `${percentile(busy, 50).toFixed(1)} / ${busy99.toFixed(1)} ms (${busy.length} requests, max ${busy.at(-1)!.toFixed(0)} ms)`,
    `p99 < 2 x idle p99 + 10 ms (${bound.toFixed(0)} ms)`,
    busy99 < bound,
  );
}

/** Standalone: its own server on a temp data dir, then a table. */
async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const work = await mkdtemp(join(tmpdir(), 'stowage-bench-wide-'));
  const rows: Array<[string, string, string, string]> = [];
  const record: Record = (n, v, t, ok) => {
    rows.push([n, v, t, ok === null ? '' : ok ? 'yes' : 'NO']);
    process.stderr.write(`  ${n}: ${v}\n`);
  };
  const server = await startServerProcess(join(work, 'data'));
  try {
    await wideDirBenchmarks(server, record, quick ? 100_000 : 1_000_000);
  } finally {
    await stopServer(server);
    await rm(work, { recursive: true, force: true });
  }
  console.log(`\nStowage wide-directory benchmark (Node ${process.version})\n`);
  for (const r of [['benchmark', 'result', 'target', 'met'], ['-', '-', '-', '-'], ...rows])
    console.log(`| ${r.join(' | ')} |`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
