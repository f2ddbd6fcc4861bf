/**
 * Scale-out benchmarks: commit throughput with 1, 2 and 3 server replicas on
 * one PostgreSQL metadata store (blobs in one moto S3 bucket), beside a
 * single SQLite server (local blobs); then chunk upload throughput to the S3
 * endpoint through signed URLs, beside a plain loop of signed PUTs with curl
 * on the same endpoint as the ceiling. Prints one table.
 *
 *   npm run build && node dist/bench/scale.js          # 10 s per commit run, 256 MiB upload
 *   npm run build && node dist/bench/scale.js --quick  # 3 s per commit run, 64 MiB upload
 *
 * Every replica is a real `stowage serve` child process (its own event loop,
 * as in a deployment), so replicas can use more than one core; the SDK
 * clients run in this process. PostgreSQL (test/helpers/postgres) and moto
 * (test/helpers/moto) are throwaway and deleted at the end, even on error.
 *
 * Commit runs: CLIENTS concurrent SDK clients, spread round-robin over the
 * replicas, each writing one ~100-byte file (a distinct path) per commit to
 * one shared volume for a fixed time. Afterwards every acknowledged write is
 * looked up in the volume, and the acknowledged seqs must be distinct and
 * consecutive, ending at the head.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { formatSize, MiB } from '@stowage/sdk/common/sizes.js';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { Stowage, Volume, type wire } from '@stowage/sdk';
import { createBucket, deleteBucket, motoBlobUrl, startMoto } from '../test/helpers/moto.js';
import { startTestPostgres } from '../test/helpers/postgres.js';
import { cliMain, randomFile } from './bench-server.js';
import { freePort } from '../test/helpers/free-port.js';

const quick = process.argv.includes('--quick');
const RUN_SECONDS = quick ? 3 : 10;
const CLIENTS = 16;
const SMALL_FILE = 100;
const UPLOAD_SIZE = quick ? 64 * MiB : 256 * MiB;
const CHUNK = SMALL_CHUNK_SIZE;
/** The SDK's default transfer concurrency (StowageOptions.concurrency). */
const CONCURRENCY = 4;

interface Row {
  name: string;
  value: string;
  notes: string;
}
const rows: Row[] = [];
function record(row: Row): void {
  rows.push(row);
  process.stderr.write(`  ${row.name}: ${row.value} (${row.notes})\n`);
}

// --- cleanup of everything started, in reverse order, even on error ---

const cleanups: Array<() => Promise<void>> = [];
async function cleanupAll(): Promise<void> {
  while (cleanups.length > 0) {
    const fn = cleanups.pop()!;
    await fn().catch((e: unknown) => process.stderr.write(`cleanup: ${String(e)}\n`));
  }
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    process.stderr.write(`${sig}: cleaning up\n`);
    void cleanupAll().finally(() => process.exit(130));
  });
}

// --- replicas: `stowage serve` child processes ---

interface Replica {
  url: string;
  dataDir: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Starts one replica on its own data dir (staging files, admin token) with the given stores. */
async function startReplica(dataDir: string, stores: { metadata?: string; blobs?: string }): Promise<Replica> {
  await mkdir(dataDir, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const args = [cliMain, 'serve', '--data', dataDir, '--port', String(port)];
  if (stores.metadata) args.push('--metadata', stores.metadata);
  if (stores.blobs) args.push('--blobs', stores.blobs);
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let exited = false;
  const exit = once(child, 'exit').then(() => {
    exited = true;
  });
  const stop = async (): Promise<void> => {
    if (exited) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exit;
    clearTimeout(timer);
  };
  cleanups.push(stop);
  for (let i = 0; ; i++) {
    if (exited) throw new Error(`stowage serve exited before answering: ${stderr}`);
    try {
      if ((await fetch(`${url}/v1/health`)).ok) break;
    } catch {
      /* not up yet */
    }
    if (i > 600) throw new Error(`stowage serve did not answer at ${url} within 30 s: ${stderr}`);
    await sleep(50);
  }
  return { url, dataDir, child, stop };
}

async function adminToken(dataDir: string): Promise<string> {
  return (await readFile(join(dataDir, 'admin-token'), 'utf8')).trim();
}

// --- commit throughput ---

interface Ack {
  path: string;
  seq: number;
  ms: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** Drives CLIENTS clients over the replicas for RUN_SECONDS; verifies and records one row. */
async function commitRun(label: string, replicas: Replica[], token: string, stores: string): Promise<void> {
  const volName = `scale-${replicas.length}`;
  const clients = Array.from(
    { length: CLIENTS },
    (_, i) => new Stowage({ url: replicas[i % replicas.length]!.url, token }),
  );
  await Volume.create(volName, { client: clients[0]!, cap: '1G' });
  const vols = await Promise.all(clients.map((client) => Volume.get(volName, { client })));
  const acks: Ack[] = [];
  const errors: string[] = [];
  const payload = (i: number, k: number) => `client ${i} write ${k} `.padEnd(SMALL_FILE, '.');

  // One warm-up write per client (connections, caches), acknowledged and verified like the rest.
  await Promise.all(
    vols.map(async (v, i) => {
      const r = await v.files.write(`/warm/c${i}.txt`, payload(i, -1));
      acks.push({ path: r.path, seq: r.commit.seq, ms: 0 });
    }),
  );
  const measured: Ack[] = [];
  process.stderr.write(`${label}: ${CLIENTS} clients for ${RUN_SECONDS} s\n`);
  const t0 = performance.now();
  const end = t0 + RUN_SECONDS * 1000;
  await Promise.all(
    vols.map(async (v, i) => {
      for (let k = 0; performance.now() < end; k++) {
        const path = `/c${String(i).padStart(2, '0')}/f${String(k).padStart(6, '0')}.txt`;
        const s = performance.now();
        try {
          const r = await v.files.write(path, payload(i, k));
          const ack = { path: r.path, seq: r.commit.seq, ms: performance.now() - s };
          acks.push(ack);
          measured.push(ack);
        } catch (e) {
          errors.push(`${path}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
    }),
  );
  const elapsed = (performance.now() - t0) / 1000;

  // Verification: every acknowledged path is in the volume with its size; seqs distinct, consecutive, ending at head.
  const listed = await vols[0]!.files.list('/', { recursive: true });
  const files = new Map(listed.filter((e) => e.type === 'file').map((e) => [e.path, e.size]));
  const lost = acks.filter((a) => files.get(a.path) !== SMALL_FILE);
  const seqs = acks.map((a) => a.seq).sort((a, b) => a - b);
  let gaps = 0;
  let dups = 0;
  for (let j = 1; j < seqs.length; j++) {
    if (seqs[j] === seqs[j - 1]) dups++;
    else if (seqs[j]! !== seqs[j - 1]! + 1) gaps++;
  }
  const head: wire.Commit | undefined = (await vols[0]!.history({ limit: 1 })).commits[0];
  const headOk = head !== undefined && head.seq === seqs[seqs.length - 1];
  const ok = lost.length === 0 && gaps === 0 && dups === 0 && headOk && errors.length === 0;
  if (errors.length > 0)
    process.stderr.write(`  ${errors.length} failed writes, e.g. ${errors.slice(0, 3).join('; ')}\n`);
  if (lost.length > 0)
    process.stderr.write(
      `  LOST: ${lost
        .slice(0, 5)
        .map((a) => a.path)
        .join(', ')}\n`,
    );

  const lat = measured.map((a) => a.ms).sort((a, b) => a - b);
  const verdict = ok
    ? `all ${acks.length} acked writes present, seqs ${seqs[0]}..${seqs[seqs.length - 1]} consecutive`
    : `CHECK FAILED: ${lost.length} lost, ${gaps} seq gaps, ${dups} duplicate seqs, head ${head?.seq} vs last ack ${seqs[seqs.length - 1]}, ${errors.length} failed writes`;
  record({
    name: `commit throughput, ${label}`,
    value: `${(measured.length / elapsed).toFixed(0)} commits/s (p50 ${percentile(lat, 50).toFixed(0)} ms, p99 ${percentile(lat, 99).toFixed(0)} ms)`,
    notes: `${CLIENTS} clients, ${measured.length} commits in ${elapsed.toFixed(1)} s; ${stores}; ${verdict}`,
  });
}

// --- chunk upload throughput ---

/** Runs curl; resolves with its stdout; rejects on a non-zero exit. */
function curl(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`curl exited ${code}: ${err.trim()}`)),
    );
  });
}

/** One signed PUT with curl, every header the signed request lists (plus the SDK's content-type). */
async function curlPut(req: wire.SignedRequest, file: string, baseUrl: string): Promise<void> {
  const headers: Record<string, string> = { 'content-type': 'application/octet-stream', ...req.headers };
  const args = [
    '-sS',
    '-o',
    '/dev/null',
    '-w',
    '%{http_code}',
    '-X',
    req.method,
    '--data-binary',
    `@${file}`,
    '-H',
    'Expect:',
  ];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
  args.push(new URL(req.url, baseUrl).href);
  const code = await curl(args);
  if (!code.startsWith('2')) throw new Error(`curl PUT ${req.url} answered ${code}`);
}

async function withConcurrency<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

const mbps = (bytes: number, s: number) => `${(bytes / 1e6 / s).toFixed(0)} MB/s`;

async function uploadRuns(work: string, replica: Replica, token: string): Promise<void> {
  const client = new Stowage({ url: replica.url, token, concurrency: CONCURRENCY });
  const vol = await Volume.create('upload', { client, cap: '4G' });
  const nChunks = UPLOAD_SIZE / CHUNK;

  // SDK path: writeFile of one file, hashed, then its chunks PUT directly to moto with the SDK's bounded concurrency.
  process.stderr.write(`SDK writeFile of ${formatSize(UPLOAD_SIZE)}\n`);
  const big = join(work, 'big.bin');
  await randomFile(big, UPLOAD_SIZE);
  let uploadStart = 0;
  let uploadEnd = 0;
  const t0 = performance.now();
  const r = await vol.files.writeFile('/big.bin', big, {
    onProgress: (e) => {
      if (e.phase !== 'upload') return;
      if (uploadStart === 0) uploadStart = performance.now();
      uploadEnd = performance.now();
    },
  });
  const total = (performance.now() - t0) / 1000;
  if (r.uploadedChunks !== nChunks) throw new Error(`SDK uploaded ${r.uploadedChunks} chunks, expected ${nChunks}`);
  await rm(big);
  // Upload progress events come as chunks finish, so first-to-last spans all but the first chunk's PUT.
  record({
    name: `chunk upload, SDK writeFile ${formatSize(UPLOAD_SIZE)} (${nChunks} x ${formatSize(CHUNK)}, concurrency ${CONCURRENCY})`,
    value: `${mbps(UPLOAD_SIZE, total)} end to end`,
    notes: `${total.toFixed(2)} s including the hashing pass and the commit; chunks PUT directly to moto through signed URLs${uploadEnd > uploadStart ? `; first to last chunk finished in ${((uploadEnd - uploadStart) / 1000).toFixed(2)} s` : ''}`,
  });

  // Ceiling: the same number of fresh 8 MiB chunks, PUT with curl to the signed URLs the server hands out.
  process.stderr.write(`curl ceiling: ${nChunks} chunks\n`);
  const chunkDir = join(work, 'chunks');
  await mkdir(chunkDir);
  const chunks: Array<{ hash: string; size: number; file: string }> = [];
  const buf = Buffer.alloc(CHUNK);
  for (let i = 0; i < nChunks; i++) {
    randomFillSync(buf);
    const file = join(chunkDir, `c${i}.bin`);
    await writeFile(file, buf);
    chunks.push({ hash: createHash('sha256').update(buf).digest('hex'), size: CHUNK, file });
  }
  const plan = async (): Promise<Array<{ req: wire.SignedRequest; file: string }>> => {
    const res = await client.request<wire.UploadResponse>('POST', `/v1/volumes/upload/uploads`, {
      body: { chunks: chunks.map(({ hash, size }) => ({ hash, size })) },
    });
    if (res.missing.length !== nChunks)
      throw new Error(`the server asked for ${res.missing.length} of ${nChunks} fresh chunks`);
    return res.missing.map((m) => ({ req: m.request, file: chunks.find((c) => c.hash === m.hash)!.file }));
  };
  // Both plans are asked for before anything is uploaded, so each gets a full set of signed PUTs.
  const seqPlan = await plan();
  const parPlan = await plan();
  const curlRun = async (p: Array<{ req: wire.SignedRequest; file: string }>, n: number): Promise<number> => {
    const s = performance.now();
    await withConcurrency(p, n, (x) => curlPut(x.req, x.file, replica.url));
    return (performance.now() - s) / 1000;
  };
  const seqS = await curlRun(seqPlan, 1);
  record({
    name: `chunk upload, curl signed PUTs, sequential (${nChunks} x ${formatSize(CHUNK)})`,
    value: mbps(UPLOAD_SIZE, seqS),
    notes: `${seqS.toFixed(2)} s; one curl process per PUT, every signed header, Expect: off; ceiling for one stream`,
  });
  const parS = await curlRun(parPlan, CONCURRENCY);
  record({
    name: `chunk upload, curl signed PUTs, ${CONCURRENCY} at once (${nChunks} x ${formatSize(CHUNK)})`,
    value: mbps(UPLOAD_SIZE, parS),
    notes: `${parS.toFixed(2)} s; same as above with the SDK's concurrency; ceiling for the SDK row`,
  });
  await rm(chunkDir, { recursive: true, force: true });
}

// --- main ---

const loadAtStart = loadavg()[0]!;

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'stowage-bench-scale-'));
  cleanups.push(() => rm(work, { recursive: true, force: true }));

  // SQLite single server: the embedded default (metadata.db and blobs/ in the data dir).
  process.stderr.write('SQLite single server\n');
  {
    const dataDir = join(work, 'sqlite');
    const r = await startReplica(dataDir, {});
    await commitRun('SQLite, 1 server', [r], await adminToken(dataDir), 'SQLite + local blobs (PUTs go to the server)');
    await r.stop();
  }

  process.stderr.write('starting PostgreSQL and moto\n');
  const pgsrv = await startTestPostgres();
  cleanups.push(() => pgsrv.stop());
  const moto = await startMoto();
  cleanups.push(() => moto.stop());

  for (const n of [1, 2, 3]) {
    const metadata = await pgsrv.createDatabase(`scale${n}`);
    const bucket = await createBucket(moto.endpoint, 'stowage-scale');
    const blobs = motoBlobUrl(moto.endpoint, bucket);
    const replicas: Replica[] = [];
    // Sequentially: the first start creates the tenant and writes its admin token.
    for (let i = 0; i < n; i++) replicas.push(await startReplica(join(work, `pg${n}-r${i}`), { metadata, blobs }));
    await commitRun(
      `PostgreSQL, ${n} replica${n > 1 ? 's' : ''}`,
      replicas,
      await adminToken(replicas[0]!.dataDir),
      'PostgreSQL + moto S3 (PUTs go to moto)',
    );
    for (const r of replicas) await r.stop();
    await deleteBucket(moto.endpoint, bucket).catch(() => undefined);
  }

  {
    const metadata = await pgsrv.createDatabase('upload');
    const bucket = await createBucket(moto.endpoint, 'stowage-upload');
    const dataDir = join(work, 'upload');
    const r = await startReplica(dataDir, { metadata, blobs: motoBlobUrl(moto.endpoint, bucket) });
    await uploadRuns(work, r, await adminToken(dataDir));
    await r.stop();
    await deleteBucket(moto.endpoint, bucket).catch(() => undefined);
  }
}

async function printTable(): Promise<void> {
  const cols = ['benchmark', 'result', 'notes'] as const;
  const cells = rows.map((r) => [r.name, r.value, r.notes]);
  const w = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (parts: readonly string[]) => `| ${parts.map((p, i) => p.padEnd(w[i]!)).join(' | ')} |`;
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `\nStowage scale-out benchmarks (${quick ? 'quick' : 'full'} run, Node ${process.version}, ${availableParallelism()} CPUs: ${cpu}; PostgreSQL, moto, replicas and clients share them; load average ${loadAtStart.toFixed(1)} at start, ${loadavg()[0]!.toFixed(1)} at end)\n`,
  );
  console.log(line(cols));
  console.log(line(w.map((n) => '-'.repeat(n))));
  for (const c of cells) console.log(line(c));
}

main()
  .then(async () => {
    await cleanupAll();
    await printTable();
  })
  .catch(async (e: unknown) => {
    console.error(e);
    await cleanupAll();
    if (rows.length > 0) await printTable();
    process.exit(1);
  });
