/**
 * @module test/sandbox-spares.test
 * Spare supervisors with prepared sandboxes, end to end on real sandboxes: a
 * create takes a spare's sandbox of the image the host ran last and shapes it
 * (its id, host name, limits, environment, volumes are checked elsewhere
 * through the API); a create of another image or disk size starts cold and
 * the spares follow the new image; spares that die or are let go leave
 * nothing behind (state disks, loop devices, cgroups).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { LocalSandboxHost } from '../src/sandbox/daemon/local-host.js';
import { detectCgroups } from '../src/sandbox/host/cgroups.js';
import { loopDevicesUnder, mountsUnder } from '../src/sandbox/host/mounts.js';
import { SANDBOXES_DIR, sandboxPaths } from '../src/sandbox/host/state-disk.js';
import { DEFAULT_DISK_GIB, type OutputEvent, type SandboxLaunch } from '../src/sandbox/runtime.js';
import { cgroupNameOf, runPaths, spareSlot } from '../src/sandbox/supervisor/supervisor-files.js';
import { sandboxHostname } from '../src/sandbox/supervisor/supervisor.js';
import { busyboxImage, debianImage, testImageStore } from './helpers/sandbox-images.js';

let dataDir: string;
let host: LocalSandboxHost;
let n = 0;

function launch(over: Partial<SandboxLaunch> = {}): SandboxLaunch {
  return {
    id: `sb_sparetest${process.pid}x${n++}`,
    image: { base: 'busybox' },
    cpu: 0.5,
    memoryMib: 300,
    diskGib: DEFAULT_DISK_GIB,
    env: { GREETING: 'hello' },
    expiresAt: new Date(Date.now() + 600_000),
    volumes: [],
    ...over,
  };
}

async function run(id: string, argv: string[]): Promise<string> {
  const rec = await host.exec(id, { argv });
  let out = '';
  for await (const e of host.output(id, rec.id, { stdout: 0, stderr: 0 }) as AsyncIterable<OutputEvent>)
    if (!('end' in e)) out += e.data.toString();
  return out;
}

/** The memory limit of a cgroup in bytes, v2 or v1. */
function memoryLimit(name: string): string {
  for (const dir of detectCgroups().group(name).paths) {
    for (const file of ['memory.max', 'memory.limit_in_bytes'])
      if (existsSync(join(dir, file))) return readFileSync(join(dir, file), 'utf8').trim();
  }
  throw new Error(`no memory limit file for cgroup ${name}`);
}

/** Whether cgroup `name` exists, without making it (group() does). */
async function cgroupExists(name: string): Promise<boolean> {
  const probe = detectCgroups().group(`probe-${process.pid}`);
  const parents = probe.paths.map((p) => dirname(p));
  await probe.remove();
  return parents.some((p) => existsSync(join(p, name)));
}

/** The pids of this data dir's spare supervisors. */
function sparePids(): number[] {
  try {
    return execFileSync('pgrep', ['-f', `supervisor-main.js ${dataDir} --spare`], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function openHost(): Promise<LocalSandboxHost> {
  return LocalSandboxHost.open({ dataDir, images: testImageStore() });
}

before(async () => {
  await Promise.all([busyboxImage(), debianImage()]);
  dataDir = await mkdtemp(join(tmpdir(), 'stowage-spares-'));
  host = await openHost();
});

after(async () => {
  for (const id of host?.liveIds() ?? []) await host.terminate(id, 'test over').catch(() => undefined);
  await host?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('spare supervisors with prepared sandboxes', () => {
  it('gives a create the prepared sandbox of the last image, with its own id, name, limits and env', async () => {
    const first = launch();
    await host.create(first);
    const l = launch();
    await host.create(l);
    const log = readFileSync(runPaths(dataDir, l.id).log, 'utf8');
    assert.match(log, /started \(ms: warm/, 'the second create of the image claimed a prepared sandbox');
    const cgroup = cgroupNameOf(dataDir, l.id);
    assert.match(cgroup, /^spare-\d+$/, 'its cgroup keeps the name the spare made it under');
    assert.equal(memoryLimit(cgroup), String(300 * 1024 * 1024));
    assert.equal(await run(l.id, ['sh', '-c', 'hostname; echo $GREETING']), `${sandboxHostname(l.id)}\nhello\n`);
    assert.ok(existsSync(sandboxPaths(dataDir, l.id).dir), 'its state disk is under its id');
    assert.equal(existsSync(join(dataDir, SANDBOXES_DIR, cgroup)), false, 'and no longer under the spare name');
    // Its disk is its own: what the first sandbox wrote is not there.
    await run(first.id, ['sh', '-c', 'echo mine > /first.txt']);
    assert.equal(
      await run(l.id, ['sh', '-c', 'cat /first.txt 2>&1 || true']),
      "cat: can't open '/first.txt': No such file or directory\n",
    );
    for (const s of [first, l]) await host.terminate(s.id, 'done');
    assert.equal(await cgroupExists(cgroup), false, 'its cgroup went with it');
  });

  it('starts cold for another image or disk size, then prepares spares of the new image', async () => {
    const other = launch({ image: { base: 'debian' } });
    await host.create(other);
    assert.doesNotMatch(readFileSync(runPaths(dataDir, other.id).log, 'utf8'), /started \(ms: warm/);
    const small = launch({ image: { base: 'debian' }, diskGib: 1 });
    await host.create(small);
    assert.doesNotMatch(readFileSync(runPaths(dataDir, small.id).log, 'utf8'), /started \(ms: warm/);
    const again = launch({ image: { base: 'debian' } });
    await host.create(again);
    assert.match(readFileSync(runPaths(dataDir, again.id).log, 'utf8'), /started \(ms: warm/);
    assert.match(await run(again.id, ['cat', '/etc/debian_version']), /^\d+/);
    for (const s of [other, small, again]) await host.terminate(s.id, 'done');
  });

  it('leaves nothing of a spare killed while it waits, nor of spares let go', async () => {
    const [victim] = await until('a spare with its sandbox prepared', () => {
      const ready = sparePids().filter((pid) => existsSync(sandboxPaths(dataDir, spareSlot(pid)).root));
      return ready.length > 0 ? ready : undefined;
    });
    const slot = spareSlot(victim!);
    await until('the prepared sandbox to run', () =>
      existsSync(join(sandboxPaths(dataDir, slot).dir, 'guest')) ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 500));
    process.kill(victim!, 'SIGKILL');
    await host.close();
    host = await openHost();
    assert.equal(existsSync(join(dataDir, SANDBOXES_DIR, slot)), false, 'the sweep removed its state disk');
    assert.equal(await cgroupExists(slot), false, 'and its cgroup');
    await host.close();
    // Closed: every spare has removed what it made.
    assert.deepEqual(sparePids(), []);
    const sandboxes = join(dataDir, SANDBOXES_DIR);
    assert.deepEqual(readdirSync(sandboxes), []);
    assert.deepEqual(await mountsUnder(sandboxes), []);
    assert.deepEqual(await loopDevicesUnder(sandboxes), []);
    host = await openHost();
  });
});
