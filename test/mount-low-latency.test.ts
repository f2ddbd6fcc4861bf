/**
 * `stowage mount --low-latency`, the default for root: while requests come
 * back to back the agent holds a 0 µs CPU latency request
 * (/dev/cpu_dma_latency), and drops it once the burst is over, when it
 * unmounts, and when it is killed; `--no-low-latency` never holds; a sandbox
 * host mounts its sandboxes' volumes that way too. The machine's current
 * limit is read from the device itself (every holder's minimum), so
 * scripts/run-tests.mjs runs this file alone, after the others (whose
 * mounts hold it as well).
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Volume } from '@stowage/sdk';
import {
  CPU_LATENCY_DEVICE,
  NO_LATENCY_LIMIT,
  WakeLatencyHold,
  type WakeLatencyPolicy,
} from '../src/mount/fuse/wake-latency.js';
import { startVolumeMount, stopVolumeMount } from '../src/sandbox/supervisor/volume-mounts.js';
import { alive, mountTestbed } from './helpers/mount.js';
import { TEST_IDS } from './helpers/sandbox-run.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The machine's CPU latency limit in µs, as the kernel reports it. */
function latencyLimit(): number {
  const fd = openSync(CPU_LATENCY_DEVICE, 'r');
  try {
    const b = Buffer.alloc(4);
    assert.equal(readSync(fd, b), 4);
    return b.readInt32LE();
  } finally {
    closeSync(fd);
  }
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** The int32 values written so far to a file standing in for the device. */
function written(path: string): number[] {
  const b = readFileSync(path);
  return Array.from({ length: b.length / 4 }, (_, i) => b.readInt32LE(i * 4));
}

const bed = mountTestbed('lowlat');
const fast: WakeLatencyPolicy = { tickMs: 5, burstRequests: 3, quietTicks: 3 };

describe('the wake latency hold (a file standing in for the device)', () => {
  it('holds 0 during a burst, lets go after the quiet ticks, and stops its timer', async () => {
    const file = join(bed.work, 'qos-a');
    writeFileSync(file, '');
    const hold = new WakeLatencyHold(openSync(file, 'w'), fast);
    assert.deepEqual(hold.status(), { holding: false, holds: 0, heldMs: 0 });
    const burst = setInterval(() => {
      for (let i = 0; i < 5; i++) hold.note();
    }, 1);
    await until('a hold', () => hold.status().holding);
    assert.deepEqual(written(file), [0]);
    await sleep(30);
    assert.deepEqual(written(file), [0], 'one write per hold, not per tick');
    clearInterval(burst);
    await until('the release', () => !hold.status().holding);
    assert.deepEqual(written(file), [0, NO_LATENCY_LIMIT]);
    const s = hold.status();
    assert.equal(s.holds, 1);
    assert.ok(s.heldMs >= 20, `held ${s.heldMs} ms`);
    // A trickle (one request now and then) is no burst.
    hold.note();
    await sleep(40);
    assert.equal(hold.status().holds, 1);
    hold.close();
    hold.close();
    assert.deepEqual(written(file), [0, NO_LATENCY_LIMIT]);
  });

  it('close ends a hold; a failing write stops the hold without throwing', async () => {
    const file = join(bed.work, 'qos-b');
    writeFileSync(file, '');
    const hold = new WakeLatencyHold(openSync(file, 'w'), fast);
    const burst = setInterval(() => {
      for (let i = 0; i < 5; i++) hold.note();
    }, 1);
    await until('a hold', () => hold.status().holding);
    clearInterval(burst);
    hold.close();
    assert.deepEqual(written(file), [0, NO_LATENCY_LIMIT]);

    const logged: string[] = [];
    const readOnly = new WakeLatencyHold(openSync(file, 'r'), fast, (m) => logged.push(m));
    for (let i = 0; i < 10; i++) readOnly.note();
    await until('the failure', () => logged.length > 0);
    assert.match(logged[0]!, /--low-latency stopped: writing \/dev\/cpu_dma_latency failed/);
    assert.equal(readOnly.status().holding, false);
    for (let i = 0; i < 10; i++) readOnly.note();
    readOnly.close();
  });

  it('a machine without the device gets a clear error, and a mount there does without', () => {
    const missing = join(bed.work, 'no-such-device');
    assert.throws(
      () => WakeLatencyHold.open(missing),
      /low-latency mounts are not available here: this kernel has no .*no-such-device$/,
    );
    assert.equal(WakeLatencyHold.available(missing), false);
    assert.equal(WakeLatencyHold.available(), true, 'root may hold it');
  });

  it('a user who may not open the device: the default does without, asking for it is a clear error', () => {
    const module = new URL('../src/mount/fuse/wake-latency.js', import.meta.url).href;
    const probe = `import(${JSON.stringify(module)}).then((m) => {
      console.log(m.WakeLatencyHold.available());
      try { m.WakeLatencyHold.open(); } catch (e) { console.log(e.message); }
    })`;
    const r = spawnSync(
      'setpriv',
      ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '-e', probe],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      'false',
      'low-latency mounts are not available here: only root may open /dev/cpu_dma_latency',
    ]);
  });
});

describe('stowage mount: low latency by default as root, --low-latency, --no-low-latency', () => {
  before(async () => {
    await Volume.create('lowlat', { client: bed.client });
  });

  /** A child process issuing stat(2) of new names back to back (each a FUSE lookup) for `ms`. */
  function statBurst(mnt: string, ms: number): Promise<void> {
    const child = spawn(process.execPath, [
      '-e',
      `const fs = require('node:fs'); const end = Date.now() + ${ms}; let i = 0;
       while (Date.now() < end) { try { fs.statSync(process.argv[1] + '/n' + i++); } catch {} }`,
      mnt,
    ]);
    return new Promise((resolve) => child.on('close', () => resolve()));
  }

  it('by default (root) holds idle CPUs awake during a burst of requests, and lets them sleep after it', async () => {
    const mnt = join(bed.work, 'm1');
    assert.equal(latencyLimit(), NO_LATENCY_LIMIT, 'no other holder on this machine');
    const idle = await bed.mounts.mountOk('lowlat', mnt);
    assert.deepEqual(idle.lowLatency, { holding: false, holds: 0, heldMs: 0 });
    const burst = statBurst(mnt, 3000);
    await until('the 0 µs limit', () => latencyLimit() === 0);
    assert.equal((await bed.mounts.status(mnt)).lowLatency?.holding, true);
    await burst;
    const text = await bed.mounts.cli(['mount-status', mnt]);
    assert.match(text.stdout, /^low latency: .* \(\d+ bursts? held, \d+\.\d s in all\)$/m);
    await until('the limit to go back', () => latencyLimit() === NO_LATENCY_LIMIT);
    const after = (await bed.mounts.status(mnt)).lowLatency;
    assert.equal(after?.holding, false);
    assert.ok((after?.holds ?? 0) >= 1 && (after?.heldMs ?? 0) > 0, JSON.stringify(after));
    await bed.mounts.unmountOk(mnt);
  });

  it('a killed agent leaves no limit behind, and a mount with --no-low-latency never sets one', async () => {
    const mnt = join(bed.work, 'm2');
    const s = await bed.mounts.mountOk('lowlat', mnt, ['--low-latency']);
    const burst = statBurst(mnt, 5000);
    await until('the 0 µs limit', () => latencyLimit() === 0);
    process.kill(s.pid, 'SIGKILL');
    await until('the agent to die', () => !alive(s.pid));
    // The main thread shows as a zombie before the agent's other threads are gone, and the descriptor goes with the last.
    await until('the limit to go back', () => latencyLimit() === NO_LATENCY_LIMIT);
    await burst;
    await bed.mounts.teardown(mnt);

    const plain = join(bed.work, 'm3');
    const p = await bed.mounts.mountOk('lowlat', plain, ['--no-low-latency']);
    assert.equal(p.lowLatency, undefined);
    assert.match((await bed.mounts.cli(['mount-status', plain])).stdout, /^low latency: off$/m);
    let lowest = NO_LATENCY_LIMIT;
    const b2 = statBurst(plain, 1000);
    let done = false;
    void b2.then(() => {
      done = true;
    });
    while (!done) {
      lowest = Math.min(lowest, latencyLimit());
      await sleep(5);
    }
    assert.equal(lowest, NO_LATENCY_LIMIT);
    await bed.mounts.unmountOk(plain);
  });

  it("a sandbox's volume mounted for a host with --low-latency-volumes holds it too", async () => {
    const vol = await Volume.create('lowlat-sb', { client: bed.client });
    const res = await vol.attach({ host: 'sandbox:lowlat', path: '/mnt/v', readOnly: false });
    const volume = {
      path: '/mnt/v',
      readOnly: false,
      volume: vol.name,
      attachmentId: res.attachment.id,
      token: res.token,
      serverUrl: bed.srv.url,
    };
    const m = await startVolumeMount(join(bed.work, 'sandbox-lowlat'), 0, volume, { ids: TEST_IDS, lowLatency: true });
    try {
      assert.deepEqual((await m.handle.status()).lowLatency, { holding: false, holds: 0, heldMs: 0 });
      const burst = statBurst(m.mountPath, 3000);
      await until('the 0 µs limit', () => latencyLimit() === 0);
      await burst;
      await until('the limit to go back', () => latencyLimit() === NO_LATENCY_LIMIT);
    } finally {
      assert.equal((await stopVolumeMount(m, 'test over')).error, undefined);
    }
  });
});
