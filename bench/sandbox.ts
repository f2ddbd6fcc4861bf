/**
 * Sandboxes as users get them (issue 12): a real server started in this
 * process on a temp data dir with this machine's sandbox host
 * (`sandboxes: 'local'`: one detached supervisor per sandbox), driven over
 * HTTP by the SDK's `Sandbox`. Prints markdown tables:
 *
 * 1. create -> running, create -> first exec done, terminate (p50/p95), on a
 *    warm host (a create every --gap-ms) and back to back;
 * 2. exec round trip on a running sandbox (50 x `true`);
 * 3. N sandboxes at once: wall time to all running, memory per idle sandbox
 *    (supervisor RSS/PSS, the cgroup's usage, the host's MemAvailable drop),
 *    then one exec in each at once;
 * 4. file write/read through the API and the agent vs `cp`/`cat` on the host;
 * 5. the same start-up below the HTTP layer (disk, root, cgroup, launch,
 *    first exec without supervisor or server), to show what the layers add.
 *
 * Needs root (as sandboxes do). The images come from the shared test cache.
 *
 *   npm run build && node dist/bench/sandbox.js [--rounds N] [--image busybox|debian] [--parallel N] [--gap-ms MS] [--big]
 *
 * Peer figures (create -> first command, median): Daytona 0.11 s, E2B 0.44 s.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox, Stowage } from '@stowage/sdk';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { detectCgroups } from '../src/sandbox/host/cgroups.js';
import { attachToSandbox } from '../src/sandbox/host/ns-attach.js';
import { SUBORDINATE_BASE, SUBORDINATE_COUNT } from '../src/sandbox/host/subordinate-ids.js';
import { ExecRecords } from '../src/sandbox/supervisor/exec-records.js';
import { ExecService } from '../src/sandbox/supervisor/exec-service.js';
import { PreparedSandbox } from '../src/sandbox/supervisor/prepared-sandbox.js';
import { RUNS_DIR, cgroupNameOf } from '../src/sandbox/supervisor/supervisor-files.js';
import { DEFAULT_DISK_GIB } from '../src/sandbox/runtime.js';
import { type RunningServer, startServer } from '../src/server/serve.js';
import { TEST_IMAGES_DATA_DIR, busyboxImage, debianImage } from '../test/helpers/sandbox-images.js';
import { randomFile } from './bench-server.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const rounds = Number(option('--rounds', '20'));
const base = option('--image', 'busybox');
const parallel = Number(option('--parallel', '20'));
const big = process.argv.includes('--big');
if (base !== 'busybox' && base !== 'debian') throw new Error(`--image is busybox or debian, not ${base}`);
if (!(rounds >= 1) || !(parallel >= 1)) throw new Error('--rounds and --parallel are positive numbers');

/** What every sandbox of the bench asks for: the default disk (spare supervisors keep one formatted), room for --big. */
const SPEC = { image: { base }, cpu: 1, memoryMib: 512, diskGib: DEFAULT_DISK_GIB, timeout: 1800 } as const;

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const ms = (x: number): string => (x >= 10 ? x.toFixed(0) : x.toFixed(1));
const mib = (bytes: number): string => (bytes / MiB).toFixed(1);
const since = (t0: number): number => performance.now() - t0;
const latencyRow = (what: string, xs: number[]): string =>
  `| ${what} | ${xs.length} | ${ms(pct(xs, 50))} ms | ${ms(pct(xs, 95))} ms |`;
const latencyHeader = ['| step | n | p50 | p95 |', '|---|---|---|---|'];

function meminfo(field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'));
  return Number(m![1]) * 1024;
}

function procField(pid: number, file: 'status' | 'smaps_rollup', field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/${file}`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

const alive = (pid: number): boolean => existsSync(`/proc/${pid}`);

// ---- the server and cleanup -------------------------------------------------

const dataDir = await mkdtemp(join(tmpdir(), 'stowage-bench-'));
let server: RunningServer | undefined;
const live = new Map<string, Sandbox>();

function supervisorPid(id: string): number | undefined {
  try {
    return Number(readFileSync(join(dataDir, RUNS_DIR, id, 'supervisor.pid'), 'utf8').trim());
  } catch {
    return undefined;
  }
}

async function terminate(sb: Sandbox): Promise<number> {
  const t0 = performance.now();
  await sb.terminate();
  live.delete(sb.id);
  return since(t0);
}

let cleaning: Promise<void> | undefined;
/**
 * Terminates what is left, closes the server and removes the data dir. A
 * supervisor that outlives its terminate is killed, and a second server on
 * the same data dir then finds its sandbox gone and sweeps its mounts, loop
 * devices and cgroup (the daemon's recovery path).
 */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    const ids = [...live.keys()];
    await Promise.allSettled([...live.values()].map((sb) => terminate(sb)));
    await server?.close().catch(() => undefined);
    server = undefined;
    const stray = ids.map(supervisorPid).filter((p): p is number => p !== undefined && alive(p));
    if (stray.length > 0) {
      console.error(`cleanup: killing ${stray.length} supervisor(s) left running: ${stray.join(' ')}`);
      for (const pid of stray) process.kill(pid, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 500));
      const again = await startServer({ ...serverOptions(), port: 0 }).catch(() => undefined);
      await again?.close();
    }
    await rm(dataDir, { recursive: true, force: true });
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    console.error(`${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

function serverOptions() {
  return {
    dataDir,
    host: '127.0.0.1',
    log: () => undefined,
    sandboxes: 'local' as const,
    imageCacheDir: TEST_IMAGES_DATA_DIR,
  };
}

async function create(client: Stowage): Promise<Sandbox> {
  const sb = await Sandbox.create({ client, ...SPEC });
  live.set(sb.id, sb);
  if (sb.info.status !== 'running') throw new Error(`sandbox ${sb.id} is ${sb.info.status} after create`);
  return sb;
}

async function execTrue(sb: Sandbox): Promise<number> {
  const t0 = performance.now();
  const r = await (await sb.exec(['true'])).wait();
  if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode} (${r.signal}) in ${sb.id}: ${r.stderr}`);
  return since(t0);
}

// ---- 1 and 2: start-up and exec round trips ---------------------------------

/** Pause between creates for a warm host: spare supervisors prepare the next sandboxes meanwhile. */
const WARM_GAP_MS = Number(option('--gap-ms', '1500'));

async function startup(client: Stowage): Promise<string[]> {
  const rows: string[] = [];
  const roundTrips: number[] = [];
  // A warm host (a create every so often, spares ready), then creates back to back (spares still starting).
  for (const [label, gapMs] of [
    [`a create every ${WARM_GAP_MS / 1000} s`, WARM_GAP_MS],
    ['back to back', 0],
  ] as const) {
    const toRunning: number[] = [];
    const toFirstExec: number[] = [];
    const terminates: number[] = [];
    for (let i = 0; i < rounds; i++) {
      if (gapMs > 0) await new Promise((r) => setTimeout(r, gapMs));
      const t0 = performance.now();
      const sb = await create(client);
      toRunning.push(since(t0));
      await execTrue(sb);
      toFirstExec.push(since(t0));
      if (roundTrips.length === 0) for (let j = 0; j < 50; j++) roundTrips.push(await execTrue(sb));
      terminates.push(await terminate(sb));
    }
    rows.push(
      latencyRow(`\`Sandbox.create\` -> running (${label})`, toRunning),
      latencyRow(`\`Sandbox.create\` -> first \`exec([true])\` + \`wait()\` done (${label})`, toFirstExec),
      latencyRow(`\`terminate()\` (${label})`, terminates),
    );
  }
  return [
    ...latencyHeader,
    ...rows,
    latencyRow('exec round trip (`exec([true])` + `wait()`) on a running sandbox', roundTrips),
  ];
}

// ---- 3: N sandboxes at once -------------------------------------------------

/** The memory cgroup directory of sandbox `id` (v1: memory controller; v2: the unified group). */
function cgroupMemory(id: string): { usage: number; procs: number[] } {
  // A sandbox a spare prepared keeps the spare's cgroup name.
  const name = cgroupNameOf(dataDir, id);
  const v1 = `/sys/fs/cgroup/memory/stowage/${name}`;
  const dir = existsSync(v1) ? v1 : detectCgroups().group(name).paths[0]!;
  const usageFile = existsSync(join(dir, 'memory.usage_in_bytes'))
    ? join(dir, 'memory.usage_in_bytes')
    : join(dir, 'memory.current');
  const procs = readFileSync(join(dir, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean).map(Number);
  return { usage: Number(readFileSync(usageFile, 'utf8').trim()), procs };
}

async function atOnce(client: Stowage): Promise<string[]> {
  const availableBefore = meminfo('MemAvailable');
  const t0 = performance.now();
  const settled = await Promise.allSettled(Array.from({ length: parallel }, () => create(client)));
  const wall = since(t0);
  const failed = settled.filter((s) => s.status === 'rejected');
  if (failed.length > 0) throw (failed[0] as PromiseRejectedResult).reason;
  const sandboxes = settled.map((s) => (s as PromiseFulfilledResult<Sandbox>).value);
  // Let start-up work (page faults, JIT, first GCs) settle before calling them idle.
  await new Promise((r) => setTimeout(r, 3000));
  const availableDrop = availableBefore - meminfo('MemAvailable');
  let supRss = 0;
  let supPss = 0;
  let cgUsage = 0;
  let inRss = 0;
  let inPss = 0;
  let inProcs = 0;
  for (const sb of sandboxes) {
    const pid = supervisorPid(sb.id);
    if (pid === undefined || !alive(pid)) throw new Error(`no supervisor process for ${sb.id}`);
    supRss += procField(pid, 'status', 'VmRSS');
    supPss += procField(pid, 'smaps_rollup', 'Pss');
    const cg = cgroupMemory(sb.id);
    cgUsage += cg.usage;
    for (const p of cg.procs) {
      if (!alive(p)) continue;
      inProcs++;
      inRss += procField(p, 'status', 'VmRSS') || 0;
      inPss += procField(p, 'smaps_rollup', 'Pss') || 0;
    }
  }
  const n = sandboxes.length;
  const execWall0 = performance.now();
  const trips = await Promise.all(sandboxes.map((sb) => execTrue(sb)));
  const execWall = since(execWall0);
  const terms0 = performance.now();
  await Promise.all(sandboxes.map((sb) => terminate(sb)));
  const termWall = since(terms0);
  const memRow = (what: string, total: number) => `| ${what} | ${mib(total / n)} MiB | ${mib(total)} MiB |`;
  return [
    `| ${n} sandboxes at once | wall time |`,
    '|---|---|',
    `| create all (\`Promise.all\` of \`Sandbox.create\`) -> all running | ${ms(wall)} ms |`,
    `| one \`exec([true])\` + \`wait()\` in each at once | ${ms(execWall)} ms (round trips p50 ${ms(pct(trips, 50))} / p95 ${ms(pct(trips, 95))} ms) |`,
    `| terminate all at once | ${ms(termWall)} ms |`,
    '',
    `| memory of an idle sandbox (${n} running, 3 s after start) | per sandbox | total |`,
    '|---|---|---|',
    memRow('(a) supervisor process RSS (VmRSS)', supRss),
    memRow('(a) supervisor process PSS (shared pages split)', supPss),
    memRow('(b) cgroup memory usage (the sandbox: agent, page cache, kernel memory)', cgUsage),
    memRow(`(b') RSS of the processes in the cgroup (${inProcs / n} per sandbox)`, inRss),
    memRow("(b') PSS of the processes in the cgroup", inPss),
    memRow('(c) host MemAvailable drop, before create -> all idle', availableDrop),
  ];
}

// ---- 4: file throughput -----------------------------------------------------

function run(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(since(t0)) : reject(new Error(`${argv.join(' ')} exited ${code}`)),
    );
  });
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function throughput(client: Stowage): Promise<string[]> {
  const sizes = big ? [64 * MiB, 256 * MiB] : [64 * MiB];
  const lines = ['| file | path | write | read |', '|---|---|---|---|'];
  const findings: string[] = [];
  const rate = (bytes: number, t: number) => `${((bytes / MiB) * (1000 / t)).toFixed(0)} MiB/s`;
  const sb = await create(client);
  try {
    for (const size of sizes) {
      const label = `${size / MiB} MiB`;
      const src = join(dataDir, `src-${label.replace(' ', '')}`);
      const dst = join(dataDir, 'dst');
      await randomFile(src, size);
      const want = await sha256File(src);

      const w0 = performance.now();
      const info = await sb.write('/work/big.bin', createReadStream(src));
      const writeMs = since(w0);
      if (info.size !== size) throw new Error(`sb.write stored ${info.size} bytes of ${size}`);
      let readCell: string;
      try {
        const r0 = performance.now();
        const h = createHash('sha256');
        let got = 0;
        for await (const chunk of await sb.readStream('/work/big.bin')) {
          got += (chunk as Buffer).length;
          h.update(chunk as Buffer);
        }
        const readMs = since(r0);
        if (got !== size) throw new Error(`read ${got} bytes of ${size}`);
        if (h.digest('hex') !== want) throw new Error('the bytes read back differ from the bytes written (SHA-256)');
        readCell = `${rate(size, readMs)} (SHA-256 ok)`;
      } catch (e) {
        readCell = `fails: ${(e as Error).message.slice(0, 160)}`;
        findings.push(`${label} read: ${(e as Error).message}`);
      }
      lines.push(
        `| ${label} | \`sb.write\` (streamed) / \`sb.readStream\`, API -> supervisor -> agent | ${rate(size, writeMs)} | ${readCell} |`,
      );
      await sb.remove('/work/big.bin');

      // The host's own copy of the same bytes on the same disk (the page cache holds the source, as for the API).
      const cpMs = await run(['cp', src, dst]);
      const cpSyncMs = await run(['sh', '-c', `rm -f '${dst}' && cp '${src}' '${dst}' && sync '${dst}'`]);
      const catMs = await run(['sh', '-c', `cat '${dst}' > /dev/null`]);
      lines.push(`| ${label} | host \`cp\` / \`cat > /dev/null\` | ${rate(size, cpMs)} | ${rate(size, catMs)} |`);
      lines.push(`| ${label} | host \`cp\` + \`sync\` | ${rate(size, cpSyncMs)} | |`);
      rmSync(dst, { force: true });
      rmSync(src, { force: true });
    }
  } finally {
    await terminate(sb);
  }
  return [...lines, ...(findings.length > 0 ? ['', ...findings.map((f) => `Finding: ${f}`)] : [])];
}

// ---- 5: below the HTTP layer ------------------------------------------------

async function belowHttp(): Promise<string[]> {
  const image = await (base === 'busybox' ? busyboxImage() : debianImage());
  const dir = join(dataDir, 'below-http');
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const ids = { hostUid: SUBORDINATE_BASE, hostGid: SUBORDINATE_BASE, count: SUBORDINATE_COUNT };
  const toReady: number[] = [];
  const toClaimed: number[] = [];
  const toFirstExec: number[] = [];
  const roundTrips: number[] = [];
  let agentWrite = Number.NaN;
  let agentRead = Number.NaN;
  for (let i = 0; i < rounds; i++) {
    const id = `bench-${process.pid}-${i}`;
    const t0 = performance.now();
    // What a cold start runs, and what a spare runs ahead of a create.
    const sb = await PreparedSandbox.prepare({ dataDir: dir, slot: `${id}-prep`, imageRoot: image.root, ids, ...SPEC });
    try {
      toReady.push(since(t0));
      await sb.warmUp();
      // What a create that finds a spare waits for (without volumes, HTTP or the supervisor process).
      const t1 = performance.now();
      await sb.claim(id);
      sb.cgroup.setLimits({ cpuCores: SPEC.cpu, memoryBytes: SPEC.memoryMib * MiB, pidsMax: 512 });
      await attachToSandbox(sb.launched.pid, ids, { hostname: id });
      toClaimed.push(since(t1));
      const execs = new ExecService(sb.launched.agent, new ExecRecords(join(dir, 'records', id)));
      const first = await execs.exec({ argv: ['true'] });
      await execs.wait(first.id);
      toFirstExec.push(since(t1));
      if (i === 0) {
        for (let j = 0; j < 50; j++) {
          const t = performance.now();
          const e = await execs.exec({ argv: ['true'] });
          await execs.wait(e.id);
          roundTrips.push(since(t));
        }
        // The agent's own file path (no HTTP, no supervisor): which layer the API's throughput is lost in.
        const bytes = randomBytes(64 * MiB);
        const w = performance.now();
        await sb.launched.agent.writeFile('/work/big.bin', bytes);
        agentWrite = since(w);
        const r = performance.now();
        const back = await sb.launched.agent.readFile('/work/big.bin');
        agentRead = since(r);
        if (!back.equals(bytes)) throw new Error('the agent read back other bytes than it wrote');
      }
    } finally {
      await sb.discard();
    }
  }
  return [
    ...latencyHeader,
    latencyRow('prepare: state disk, root, cgroup, launch -> agent ready (a cold start)', toReady),
    latencyRow('claim a prepared sandbox: its id, limits, host name (a spare)', toClaimed),
    latencyRow('claim -> first exec done (exec service, no supervisor, no HTTP)', toFirstExec),
    latencyRow('exec round trip (`true`) on the exec service', roundTrips),
    '',
    '| 64 MiB file, agent protocol alone (`agent.writeFile` of a buffer / `agent.readFile`) | write | read |',
    '|---|---|---|',
    `| once | ${(64_000 / agentWrite).toFixed(0)} MiB/s | ${(64_000 / agentRead).toFixed(0)} MiB/s |`,
  ];
}

// ---- main -------------------------------------------------------------------

const out: string[] = [];
const say = (...lines: string[]) => {
  out.push(...lines);
  console.error(lines.join('\n'));
};
let failed = false;
try {
  await (base === 'busybox' ? busyboxImage() : debianImage());
  server = await startServer({ ...serverOptions(), port: 0 });
  const client = new Stowage({ url: server.url, token: server.adminToken! });
  const load = readFileSync('/proc/loadavg', 'utf8').trim().split(' ').slice(0, 3).join(' ');
  say(
    `Image ${base}; each sandbox: ${SPEC.cpu} cpu, ${SPEC.memoryMib} MiB, ${SPEC.diskGib} GiB disk. ` +
      `${rounds} rounds, ${parallel} at once. Load average at start: ${load}.`,
    '',
  );
  // One sandbox first: the first start after a server start pays for warm-ups users pay once per host.
  await terminate(await create(client));
  say('### Start-up and exec through the API (SDK -> HTTP -> server -> supervisor -> agent)', '');
  say(...(await startup(client)), '');
  say(`### ${parallel} sandboxes at once`, '');
  say(...(await atOnce(client)), '');
  say('### Files through the API vs the host', '');
  say(...(await throughput(client)), '');
  say('### Start-up below the HTTP layer (no server, no supervisor process)', '');
  say(...(await belowHttp()), '');
  say(
    `Load average at the end: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(' ')}.`,
  );
} catch (e) {
  failed = true;
  console.error('bench failed:', e);
} finally {
  await cleanup();
}
console.log(out.join('\n'));
if (failed) process.exitCode = 1;
// Open sockets of the SDK's keep-alive agent would hold the process.
process.exit();
