/**
 * Sandbox start-up (issue 12), measured below the HTTP layer: each round
 * makes a state disk, mounts the overlay root over a cached image, creates a
 * cgroup, launches the agent (unshare, bwrap, seccomp) and runs a first
 * command through the durable exec service; then an exec round trip on a
 * running sandbox. Prints a table of p50/p95. Needs root (as sandboxes do).
 *
 *   npm run build && node dist/bench/sandbox.js [--rounds N] [--image busybox|debian]
 *
 * Peer figures (create -> first command, median): Daytona 0.11 s, E2B 0.44 s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectCgroups } from '../src/sandbox/host/cgroups.js';
import { ImageStore } from '../src/sandbox/host/images.js';
import { SUBORDINATE_BASE, SUBORDINATE_COUNT } from '../src/sandbox/host/subordinate-ids.js';
import { createStateDisk, destroyStateDisk, mountRoot } from '../src/sandbox/host/state-disk.js';
import { ExecRecords } from '../src/sandbox/supervisor/exec-records.js';
import { ExecService } from '../src/sandbox/supervisor/exec-service.js';
import { launchSandbox } from '../src/sandbox/supervisor/launcher.js';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

const rounds = Number(option('--rounds', '20'));
const base = option('--image', 'busybox') as 'busybox' | 'debian';
const dataDir = mkdtempSync(join(tmpdir(), 'stowage-bench-sandbox-'));
const images = new ImageStore({ dataDir: join(tmpdir(), 'stowage-test-images') });
const { image } = await images.ensure({ base });
const cgroups = detectCgroups();
const ids = { hostUid: SUBORDINATE_BASE, hostGid: SUBORDINATE_BASE, count: SUBORDINATE_COUNT };
const toFirstExec: number[] = [];
const toReady: number[] = [];
const roundTrips: number[] = [];
try {
  for (let i = 0; i < rounds; i++) {
    const id = `bench-${process.pid}-${i}`;
    const t0 = performance.now();
    const disk = await createStateDisk(dataDir, id, 1);
    const root = await mountRoot(image, disk);
    const cgroup = cgroups.group(id);
    cgroup.setLimits({ memoryBytes: 512 * 1024 * 1024, pidsMax: 512 });
    const sb = await launchSandbox({ root, cgroup, ids, cacheDir: join(dataDir, 'cache') });
    toReady.push(performance.now() - t0);
    const execs = new ExecService(sb.agent, new ExecRecords(join(dataDir, 'records', id)));
    const first = await execs.exec({ argv: ['true'] });
    await execs.wait(first.id);
    toFirstExec.push(performance.now() - t0);
    if (i === 0) {
      for (let j = 0; j < 50; j++) {
        const t = performance.now();
        const e = await execs.exec({ argv: ['true'] });
        await execs.wait(e.id);
        roundTrips.push(performance.now() - t);
      }
    }
    sb.agent.close('bench');
    sb.child.kill('SIGKILL');
    await cgroup.remove();
    await destroyStateDisk(dataDir, id);
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
const row = (what: string, xs: number[]): string =>
  `| ${what} | ${xs.length} | ${pct(xs, 50).toFixed(0)} ms | ${pct(xs, 95).toFixed(0)} ms |`;
console.log(`image: ${base}`);
console.log('| step | n | p50 | p95 |');
console.log('|---|---|---|---|');
console.log(row('create (disk, root, cgroup, launch) -> agent ready', toReady));
console.log(row('create -> first exec done', toFirstExec));
console.log(row('exec round trip (`true`) on a running sandbox', roundTrips));
