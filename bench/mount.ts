/**
 * Mount benchmarks: the real `stowage mount` agent (FUSE) against a real
 * `stowage serve` child process on a temp data dir. Every file system access
 * is made by a child process (`stat`, `ls`, `cat`, `dd`, a small node
 * script), never by this process, whose event loop keeps running while the
 * agent serves them. Prints one table.
 *
 *   npm run bench:mount             # 100,000-file volume, 1 GiB file (~4 GiB of temp disk)
 *   npm run bench:mount -- --quick  # 10,000 files, 256 MiB file
 *   ... --sweep                     # also cold reads at other --prefetch / --buffer-size values
 *   ... --workloads                 # only the workloads (bench/mount-workloads.ts: git, npm ci, venv, sqlite, tar x, creates)
 *   ... --no-workloads              # everything but the workloads
 *
 * Measures: mount-to-first-stat of a large volume and the agent's RSS;
 * reload after a new commit (CLI and control socket); cold and warm
 * sequential reads of a large file; commits of many new small files and of a
 * one-byte change in the large file.
 */
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { formatSize, GiB, KiB, MiB } from '@stowage/sdk/common/sizes.js';
import { MountHandle, Stowage, Volume, type MountCommitResult, type MountStatus, type wire } from '@stowage/sdk';
import {
  cliMain,
  randomFile,
  run,
  startServerProcess,
  stopServer,
  type RunResult,
  type ServerProcess,
} from './bench-server.js';
import { formatWorkloads, machineNote, workloadBenchmarks, type WorkloadRow } from './mount-workloads.js';

const quick = process.argv.includes('--quick');
const sweep = process.argv.includes('--sweep');
const onlyWorkloads = process.argv.includes('--workloads');
const withWorkloads = !process.argv.includes('--no-workloads');
const DIRS = quick ? 10 : 100;
const FILES_PER_DIR = 1000;
const FILE_COUNT = DIRS * FILES_PER_DIR;
const BIG_FILE = quick ? 256 * MiB : 1 * GiB;
const NEW_FILES = 2_000;
const NEW_FILE_SIZE = 4 * KiB;
const RELOAD_REPEATS = 5;
/** A child process that takes longer than this is killed and the benchmark fails. */
const CHILD_TIMEOUT_MS = 300_000;

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

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
const mbps = (bytes: number, millis: number) => bytes / 1e6 / (millis / 1000);
const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;

/** A child process with this benchmark's time bound. */
function exec(
  cmd: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; check?: boolean } = {},
): Promise<RunResult> {
  return run(cmd, args, { ...options, timeoutMs: CHILD_TIMEOUT_MS });
}

/** A shell command line with positional arguments ($1, $2...). */
function sh(script: string, ...args: string[]): Promise<RunResult> {
  return exec('sh', ['-c', script, 'sh', ...args]);
}

/** One mount made by this benchmark: its path and its own mount state root. */
interface Mount {
  path: string;
  stateRoot: string;
  env: NodeJS.ProcessEnv;
}
const mounts = new Set<Mount>();

let server: ServerProcess | undefined;

function cliEnv(stateRoot: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('STOWAGE_')) env[k] = v;
  return Object.assign(env, {
    STOWAGE_URL: server!.url,
    STOWAGE_TOKEN: server!.token,
    STOWAGE_MOUNT_STATE: stateRoot,
    STOWAGE_STATE_DIR: join(stateRoot, 'cli-state'),
  });
}

function cli(m: Mount, args: string[]): Promise<RunResult> {
  return exec(process.execPath, [cliMain, ...args], { env: m.env });
}

/** `stowage mount` on `path` with its own mount state root (a new root: an empty chunk cache). */
async function mountAt(
  path: string,
  stateRoot: string,
  volume: string,
  flags: string[] = [],
): Promise<Mount & { mountMs: number }> {
  await mkdir(path, { recursive: true });
  const m: Mount & { mountMs: number } = { path, stateRoot, env: cliEnv(stateRoot), mountMs: 0 };
  mounts.add(m);
  m.mountMs = (await cli(m, ['mount', volume, path, ...flags])).ms;
  return m;
}

/** A fresh mount path with a fresh state root. */
function mount(work: string, name: string, volume: string, flags: string[] = []): Promise<Mount & { mountMs: number }> {
  return mountAt(join(work, `mnt-${name}`), join(work, `state-${name}`), volume, flags);
}

/** Unmounts; then removes the mount's state root (its chunk cache) unless `keepState`. */
async function unmount(m: Mount, options: { keepState?: boolean } = {}): Promise<void> {
  const r = await exec(process.execPath, [cliMain, 'unmount', m.path, '--force'], { env: m.env, check: false });
  if (r.code !== 0) {
    process.stderr.write(`  (unmount ${m.path} failed: ${r.stderr.trim()}; fusermount -uz)\n`);
    await exec('fusermount', ['-uz', m.path], { check: false });
  }
  mounts.delete(m);
  if (options.keepState !== true) await rm(m.stateRoot, { recursive: true, force: true });
}

async function status(m: Mount): Promise<MountStatus> {
  return JSON.parse((await cli(m, ['mount-status', m.path, '--json'])).stdout) as MountStatus;
}

async function commit(m: Mount): Promise<[number, MountCommitResult]> {
  const r = await cli(m, ['commit', m.path, '--json']);
  return [r.ms, JSON.parse(r.stdout) as MountCommitResult];
}

/** Resident set of a process now (VmRSS) and its high-water mark (VmHWM). */
async function rss(pid: number): Promise<{ rss: number; hwm: number }> {
  const s = await readFile(`/proc/${pid}/status`, 'utf8');
  const kb = (key: string) => Number(new RegExp(`${key}:\\s+(\\d+) kB`).exec(s)![1]) * 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
}

/** A volume of DIRS x 1,000 tiny files sharing four distinct chunks, built with metadata-only commits. */
async function populate(client: Stowage, name: string): Promise<Volume> {
  const vol = await Volume.create(name, { client, cap: '1T' });
  const seeds = [0, 1, 2, 3].map((i) => `stowage mount benchmark file ${i}\n`);
  await vol.files.writeMany(seeds.map((data, i) => ({ path: `/seed/${i}.txt`, data })));
  const hashes = seeds.map((s) => createHash('sha256').update(s).digest('hex'));
  const batch = 20_000;
  for (let start = 0; start < FILE_COUNT; start += batch) {
    const changes: wire.Change[] = [];
    for (let i = start; i < Math.min(FILE_COUNT, start + batch); i++) {
      const k = i % seeds.length;
      changes.push({
        op: 'put',
        path: `/d${String(Math.floor(i / FILES_PER_DIR)).padStart(3, '0')}/f${String(i % FILES_PER_DIR).padStart(4, '0')}.txt`,
        size: seeds[k]!.length,
        chunkSize: SMALL_CHUNK_SIZE,
        chunks: [hashes[k]!],
      });
    }
    await vol.commitChanges(changes, { message: `populate ${start}` });
  }
  return vol;
}

/** 1-2: mount-to-first-stat and RSS of a large volume; reload after a new commit. */
async function treeBenchmarks(work: string, client: Stowage): Promise<void> {
  const label = `${FILE_COUNT.toLocaleString('en')}-file volume`;
  process.stderr.write(`building a ${label}\n`);
  const vol = await populate(client, 'tree');
  const lastDir = `d${String(DIRS - 1).padStart(3, '0')}`;
  const deep = `${lastDir}/f${String(FILES_PER_DIR - 1).padStart(4, '0')}.txt`;

  process.stderr.write(`mount-to-first-stat of the ${label}\n`);
  const path = join(work, 'mnt-tree');
  const stateRoot = join(work, 'state-tree');
  const t0 = process.hrtime.bigint();
  const m = await mountAt(path, stateRoot, 'tree');
  let statMs = 0;
  let tries = 0;
  for (;;) {
    tries++;
    const s0 = process.hrtime.bigint();
    const r = await exec('stat', ['-c', '%s', join(path, deep)], { check: false });
    statMs = ms(s0);
    if (r.code === 0 && r.stdout.trim() !== '') break;
    if (ms(t0) > 30_000) throw new Error(`stat ${deep} in the mount kept failing: ${r.stderr.trim()}`);
    await new Promise((res) => setTimeout(res, 5));
  }
  const first = ms(t0);
  const { pid } = await status(m);
  const after = await rss(pid);
  record(
    `mount-to-first-stat, ${label} (/${deep})`,
    `${first.toFixed(0)} ms (stowage mount ${m.mountMs.toFixed(0)} ms, stat ${statMs.toFixed(0)} ms${tries > 1 ? `, ${tries} tries` : ''})`,
    '< 1 s',
    first < 1000,
  );
  record('agent RSS right after the first stat', mib(after.rss), '< 150 MB', after.rss < 150e6);
  const ls = await exec('ls', ['-R', join(path, 'd000')]);
  const afterLs = await rss(pid);
  record(
    `agent RSS after ls -R of one directory (${FILES_PER_DIR.toLocaleString('en')} entries, ${ls.ms.toFixed(0)} ms)`,
    `${mib(afterLs.rss)} (peak ${mib(afterLs.hwm)})`,
    '< 150 MB',
    afterLs.hwm < 150e6,
  );

  process.stderr.write('reload after a new commit\n');
  const cliTimes: number[] = [];
  const socketTimes: number[] = [];
  // The SDK handle finds the control socket under $STOWAGE_MOUNT_STATE, read when it is constructed.
  const savedState = process.env.STOWAGE_MOUNT_STATE;
  process.env.STOWAGE_MOUNT_STATE = stateRoot;
  const handle = new MountHandle(path);
  if (savedState === undefined) delete process.env.STOWAGE_MOUNT_STATE;
  else process.env.STOWAGE_MOUNT_STATE = savedState;
  for (let i = 0; i < RELOAD_REPEATS; i++) {
    await vol.files.write(`/${lastDir}/reload-cli-${i}.txt`, `reload ${i}\n`);
    const r = await cli(m, ['reload', path, '--json']);
    cliTimes.push(r.ms);
    await vol.files.write(`/${lastDir}/reload-sock-${i}.txt`, `reload ${i}\n`);
    const s0 = process.hrtime.bigint();
    await handle.reload();
    socketTimes.push(ms(s0));
  }
  // The reloaded view shows the new commits, and the deep file still stats.
  await exec('stat', ['-c', '%s', join(path, lastDir, `reload-sock-${RELOAD_REPEATS - 1}.txt`), join(path, deep)]);
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  record(
    `reload after a commit, stowage reload CLI (median of ${RELOAD_REPEATS})`,
    `${med(cliTimes).toFixed(0)} ms (min ${Math.min(...cliTimes).toFixed(0)}, max ${Math.max(...cliTimes).toFixed(0)})`,
    '< 200 ms',
    med(cliTimes) < 200,
  );
  record(
    `reload after a commit, control socket (median of ${RELOAD_REPEATS})`,
    `${med(socketTimes).toFixed(1)} ms (min ${Math.min(...socketTimes).toFixed(1)}, max ${Math.max(...socketTimes).toFixed(1)})`,
    '< 200 ms',
    med(socketTimes) < 200,
  );
  const startup: number[] = [];
  for (let i = 0; i < 3; i++) startup.push((await exec(process.execPath, [cliMain, '--help'], { env: m.env })).ms);
  const floor = med(startup);
  record(
    '  reference: stowage --help (CLI process start-up, median of 3)',
    `${floor.toFixed(0)} ms`,
    'informational',
    null,
  );
  const afterReload = await rss(pid);
  record(
    'agent RSS after the reloads',
    `${mib(afterReload.rss)} (peak ${mib(afterReload.hwm)})`,
    'informational',
    null,
  );
  await unmount(m);
}

/** `cat FILE > /dev/null`: milliseconds. */
async function catTime(file: string): Promise<number> {
  return (await sh('cat "$1" > /dev/null', file)).ms;
}

/** The first re-read is measured against the target; the second shows whether a miss was transient. */
function warmRead(name: string, first: number, second: number): void {
  const rate = mbps(BIG_FILE, first);
  record(
    name,
    `${rate.toFixed(0)} MB/s (${(first / 1000).toFixed(2)} s; next re-read ${mbps(BIG_FILE, second).toFixed(0)} MB/s)`,
    '>= 2 GB/s',
    rate >= 2000,
  );
}

/** 3-6: cold and warm reads of a large file; commits of new small files and of a one-byte change. */
async function bigFileBenchmarks(work: string, client: Stowage): Promise<void> {
  const size = formatSize(BIG_FILE);
  process.stderr.write(`writing a ${size} file through the SDK\n`);
  const local = join(work, 'big.bin');
  await randomFile(local, BIG_FILE);
  const vol = await Volume.create('big', { client, cap: '8G' });
  const written = await vol.files.writeFile('/big.bin', local);
  await rm(local);
  const chunkNote = `${written.chunks} chunks of ${formatSize(Math.ceil(BIG_FILE / written.chunks))}`;

  const coldRead = async (name: string, flags: string[]): Promise<{ m: Mount; millis: number; st: MountStatus }> => {
    const m = await mount(work, name, 'big', flags);
    const millis = await catTime(join(m.path, 'big.bin'));
    return { m, millis, st: await status(m) };
  };

  process.stderr.write(`cold and warm reads of the ${size} file\n`);
  {
    const { m, millis, st } = await coldRead('big-p0', []);
    const rate = mbps(BIG_FILE, millis);
    record(
      `cold sequential read, ${size} file (cat, prefetch 0, ${chunkNote})`,
      `${rate.toFixed(0)} MB/s (${(millis / 1000).toFixed(2)} s; ${st.cache.misses} chunk misses)`,
      '>= 300 MB/s',
      rate >= 300,
    );
    warmRead(
      `warm re-read, ${size} file (cat, page cache)`,
      await catTime(join(m.path, 'big.bin')),
      await catTime(join(m.path, 'big.bin')),
    );
    const { pid } = st;
    record(
      'agent RSS after cold + warm read (prefetch 0)',
      `${mib((await rss(pid)).rss)} (peak ${mib((await rss(pid)).hwm)})`,
      'informational',
      null,
    );
    await unmount(m, { keepState: true });
    // The same path and state root again: the agent's chunk cache is full, the kernel's page cache is not (a new FUSE inode).
    const again = await mountAt(m.path, m.stateRoot, 'big');
    const hit = await catTime(join(again.path, 'big.bin'));
    const hitStatus = await status(again);
    record(
      `  diagnostic: re-read through a new mount, agent chunk cache full (${hitStatus.cache.hits} hits, ${hitStatus.cache.misses} misses)`,
      `${mbps(BIG_FILE, hit).toFixed(0)} MB/s (${(hit / 1000).toFixed(2)} s)`,
      'informational',
      null,
    );
    await unmount(again);
    const dl = join(work, 'big.download');
    const down = await cli(again, ['download', 'big:/big.bin', dl]);
    await rm(dl);
    record(
      `  reference: stowage download of the ${size} file (no mount, to local disk)`,
      `${mbps(BIG_FILE, down.ms).toFixed(0)} MB/s (${(down.ms / 1000).toFixed(2)} s)`,
      'informational',
      null,
    );
  }
  // Read-ahead needs room: bufferSize bounds every chunk held in memory, and the default 32M holds less than one 64 MiB chunk.
  const ahead = ['--prefetch', '2', '--buffer-size', '256M'];
  const { m, millis, st } = await coldRead('big-p2', ahead);
  const rate = mbps(BIG_FILE, millis);
  record(
    `cold sequential read, ${size} file (cat, ${ahead.join(' ')})`,
    `${rate.toFixed(0)} MB/s (${(millis / 1000).toFixed(2)} s; ${st.cache.misses} chunk misses)`,
    '>= 300 MB/s',
    rate >= 300,
  );
  warmRead(
    `warm re-read, ${size} file (cat, ${ahead.join(' ')} mount)`,
    await catTime(join(m.path, 'big.bin')),
    await catTime(join(m.path, 'big.bin')),
  );
  record(
    `agent RSS after cold + warm read (${ahead.join(' ')})`,
    `${mib((await rss(st.pid)).rss)} (peak ${mib((await rss(st.pid)).hwm)})`,
    'informational',
    null,
  );

  process.stderr.write(`commit of ${NEW_FILES.toLocaleString('en')} new files written into the mount\n`);
  const writer = `
    const { mkdirSync, writeFileSync } = require('node:fs');
    const { randomFillSync } = require('node:crypto');
    const [root, count, size] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
    for (let i = 0; i < count; i++) {
      const dir = root + '/new/d' + String(Math.floor(i / 1000)).padStart(3, '0');
      if (i % 1000 === 0) mkdirSync(dir, { recursive: true });
      writeFileSync(dir + '/f' + String(i % 1000).padStart(4, '0') + '.bin', randomFillSync(Buffer.alloc(size)));
    }`;
  const w = await exec(process.execPath, ['-e', writer, m.path, String(NEW_FILES), String(NEW_FILE_SIZE)]);
  const [newMs, newRes] = await commit(m);
  record(
    `commit ${NEW_FILES.toLocaleString('en')} new files of ${formatSize(NEW_FILE_SIZE)} (written in ${(w.ms / 1000).toFixed(1)} s)`,
    `${(newMs / 1000).toFixed(2)} s (${newRes.changes} changes, ${newRes.uploadedChunks} chunks, ${formatSize(newRes.uploadedBytes)})`,
    '< 5 s',
    newMs < 5000 && newRes.uploadedChunks === NEW_FILES,
  );

  process.stderr.write(`commit of a 1-byte change in the ${size} file\n`);
  const dd = await sh('printf x | dd of="$1" bs=1 seek=12345 conv=notrunc status=none', join(m.path, 'big.bin'));
  const [oneMs, oneRes] = await commit(m);
  record(
    `commit after a 1-byte change in the ${size} file (dd ${dd.ms.toFixed(0)} ms)`,
    `${oneMs.toFixed(0)} ms (${oneRes.changes} change, ${oneRes.uploadedChunks} chunk, ${formatSize(oneRes.uploadedBytes)})`,
    '< 1 s, 1 chunk',
    oneMs < 1000 && oneRes.uploadedChunks === 1,
  );
  // The same through the control socket, as Volume.fromMount(path).commit() does: the agent's own time, without the ~0.2 s a CLI process takes to start.
  await sh('printf y | dd of="$1" bs=1 seek=54321 conv=notrunc status=none', join(m.path, 'big.bin'));
  const sockStart = performance.now();
  const sockRes = await new MountHandle(m.path).commit();
  const sockMs = performance.now() - sockStart;
  record(
    `commit after a 1-byte change in the ${size} file, control socket`,
    `${sockMs.toFixed(0)} ms (${sockRes.uploadedChunks} chunk, ${formatSize(sockRes.uploadedBytes)})`,
    '< 1 s, 1 chunk',
    sockMs < 1000 && sockRes.uploadedChunks === 1,
  );
  const check = await vol.files.read('/big.bin', { range: { start: 12344, end: 12346 } });
  if (check.toString('latin1')[1] !== 'x')
    throw new Error(
      `the committed file does not hold the changed byte (got ${JSON.stringify(check.toString('latin1'))})`,
    );
  await unmount(m);

  if (sweep) {
    process.stderr.write('cold reads at other --prefetch / --buffer-size\n');
    const combos: string[][] = [
      ['--prefetch', '1'],
      ['--prefetch', '4'],
      ['--buffer-size', '128M'],
      ['--buffer-size', '256M', '--prefetch', '2'],
      ['--buffer-size', '512M', '--prefetch', '4'],
    ];
    let n = 0;
    for (const flags of combos) {
      const r = await coldRead(`sweep-${n++}`, flags);
      const v = mbps(BIG_FILE, r.millis);
      record(
        `cold sequential read, ${size} file (cat, ${flags.join(' ')})`,
        `${v.toFixed(0)} MB/s (${(r.millis / 1000).toFixed(2)} s; peak RSS ${mib((await rss(r.st.pid)).hwm)})`,
        '>= 300 MB/s',
        v >= 300,
      );
      await unmount(r.m);
    }
  }
}

async function main(): Promise<void> {
  const work = await mkdtemp(join(tmpdir(), 'stowage-bench-mount-'));
  let failure: unknown;
  let workloadRows: WorkloadRow[] = [];
  try {
    server = await startServerProcess(join(work, 'data'));
    const client = new Stowage({ url: server.url, token: server.token });
    if (!onlyWorkloads) {
      await treeBenchmarks(work, client);
      await bigFileBenchmarks(work, client);
    }
    if (withWorkloads) workloadRows = await workloadBenchmarks(server, work);
  } catch (e) {
    failure = e;
  } finally {
    for (const m of [...mounts]) await unmount(m).catch(() => undefined);
    if (server) await stopServer(server).catch(() => undefined);
    await rm(work, { recursive: true, force: true }).catch((e: unknown) =>
      process.stderr.write(`could not remove ${work}: ${String(e)}\n`),
    );
  }

  const cols = ['benchmark', 'result', 'target', 'met'] as const;
  const cells = rows.map((r) => [r.name, r.value, r.target, r.ok === null ? '' : r.ok ? 'yes' : 'NO']);
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (parts: readonly string[]) => `| ${parts.map((p, i) => p.padEnd(widths[i]!)).join(' | ')} |`;
  if (rows.length > 0) {
    console.log(`\nStowage mount benchmarks (${quick ? 'quick' : 'full'} run, Node ${process.version})\n`);
    console.log(line(cols));
    console.log(line(widths.map((n) => '-'.repeat(n))));
    for (const c of cells) console.log(line(c));
  }
  if (workloadRows.length > 0)
    console.log(
      `\nWorkloads inside a mount vs local disk, one after the other (${machineNote()})\n\n${formatWorkloads(workloadRows)}`,
    );
  if (failure !== undefined) throw failure;
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
