/**
 * The cgroup component against the host's real cgroups (as root; v1 on the
 * hybrid machines here, v2 on a stock Debian 12 host): an OOM kill stays in
 * the group and is counted, pids.max contains a fork storm, the CPU quota is
 * written and holds a busy loop down, freezing stops a counter, kill-all
 * empties the group. Each process starts held (waiting on stdin) and is let
 * go only once it is inside its group, so nothing runs unlimited on the host.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { detectCgroups, type SandboxCgroup } from '../src/sandbox/host/cgroups.js';

const isRoot = process.getuid?.() === 0;
const PY = '/usr/bin/python3';

/** Starts argv held: it runs only after go() writes a line to its stdin. */
function held(argv: string[]): { child: ChildProcess; exited: Promise<unknown[]>; go(): void; out(): string } {
  const child = spawn('/bin/sh', ['-c', 'read _ && exec "$@"', 'sh', ...argv], { stdio: ['pipe', 'pipe', 'pipe'] });
  // Listen now: the process may be gone before the test awaits its end.
  const exited = once(child, 'exit');
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  return { child, exited, go: () => child.stdin!.write('\n'), out: () => out };
}

function inGroup(g: SandboxCgroup, h: ReturnType<typeof held>): void {
  g.addProcess(h.child.pid!);
  assert.ok(g.processes().includes(h.child.pid!), 'the process is in the group before it runs');
}

describe('sandbox cgroups on this host', { skip: !isRoot && 'cgroups need root (CI runs as root)' }, () => {
  const host = isRoot ? detectCgroups() : undefined!;
  const groups: SandboxCgroup[] = [];
  let n = 0;
  const group = () => {
    const g = host.group(`test-${process.pid}-${n++}`);
    groups.push(g);
    return g;
  };
  after(async () => {
    for (const g of groups) await g.remove();
  });

  it('detects the mode of this host and says which', () => {
    assert.ok(host.mode === 'v1' || host.mode === 'v2');
    assert.match(host.description, new RegExp(`^cgroup ${host.mode}`));
    // The machines here are hybrid: their controllers are v1. A stock Debian 12 host is v2.
    if (existsSync('/sys/fs/cgroup/memory/cgroup.procs') && !existsSync('/sys/fs/cgroup/cgroup.controllers'))
      assert.equal(host.mode, 'v1');
  });

  it('an allocation over the memory limit is OOM-killed inside the group only, and the group counts it', async () => {
    const g = group();
    g.setLimits({ memoryBytes: 64 << 20 });
    const h = held([PY, '-c', 'b = b"x" * (256 << 20); print("survived", len(b))']);
    inGroup(g, h);
    h.go();
    const [code, signal] = await h.exited;
    assert.deepEqual([code, signal], [null, 'SIGKILL'], h.out());
    assert.doesNotMatch(h.out(), /survived/);
    assert.ok(g.oomKills() >= 1, `oom kills: ${g.oomKills()}`);
    // The test process lives on, outside the group; a fresh group has counted nothing.
    assert.equal(group().oomKills(), 0);
  });

  it('pids.max 32 contains a process that tries to fork 200 children', async (t) => {
    const g = group();
    g.setLimits({ pidsMax: 32 });
    const storm =
      'import os, time\nok = failed = 0\nfor _ in range(200):\n  try:\n    if os.fork() == 0:\n      time.sleep(30); os._exit(0)\n    ok += 1\n  except OSError:\n    failed += 1\nprint(ok, failed, flush=True)\ntime.sleep(30)';
    const h = held([PY, '-c', storm]);
    inGroup(g, h);
    h.go();
    while (!h.out().includes('\n')) await sleep(20);
    const [ok, failed] = h.out().trim().split(' ').map(Number);
    assert.ok(ok! <= 31 && failed! >= 169, `forked ${ok}, refused ${failed}`);
    t.diagnostic(`pids.max 32: forked ${ok}, refused ${failed}`);
    assert.ok(g.processes().length <= 32, `${g.processes().length} processes`);
    await g.killAll();
    assert.deepEqual(g.processes(), []);
  });

  it('a CPU quota of 0.5 cores is written to the kernel and holds a busy loop to about half a core', async (t) => {
    const g = group();
    g.setLimits({ cpuCores: 0.5 });
    const quotaFile = host.mode === 'v2' ? join(g.paths[0]!, 'cpu.max') : join(g.paths[0]!, 'cpu.cfs_quota_us');
    assert.equal(readFileSync(quotaFile, 'utf8').trim(), host.mode === 'v2' ? '50000 100000' : '50000');
    const h = held([
      PY,
      '-c',
      'import time, os\nt = time.monotonic()\nwhile time.monotonic() - t < 1.5: pass\nprint(os.times().user + os.times().system, time.monotonic() - t)',
    ]);
    inGroup(g, h);
    h.go();
    await h.exited;
    const [cpu, wall] = h.out().trim().split(' ').map(Number);
    // Only an upper bound: a loaded machine gives the loop less, never more, than its quota.
    assert.ok(cpu! <= wall! * 0.7, `used ${cpu} s of CPU in ${wall} s`);
    t.diagnostic(`cpu 0.5: a busy loop used ${cpu!.toFixed(2)} s of CPU in ${wall!.toFixed(2)} s`);
  });

  it('freezing stops a counter, thawing lets it go on', async (ctx) => {
    const g = group();
    const dir = mkdtempSync(join(tmpdir(), 'stowage-freeze-'));
    const file = join(dir, 'count');
    const h = held([
      PY,
      '-c',
      `import os, time\nf = ${JSON.stringify(file)}\ni = 0\nwhile True:\n  i += 1\n  open(f + ".tmp", "w").write(str(i))\n  os.replace(f + ".tmp", f)  # never a half-written file for the reader\n  time.sleep(0.005)`,
    ]);
    inGroup(g, h);
    h.go();
    const count = () => {
      try {
        return Number(readFileSync(file, 'utf8')) || 0;
      } catch {
        return 0;
      }
    };
    while (count() < 3) await sleep(10);
    const t = Date.now();
    await g.freeze();
    const frozeMs = Date.now() - t;
    const at = count();
    await sleep(300);
    assert.equal(count(), at, 'the counter moved while frozen');
    await g.thaw();
    const deadline = Date.now() + 5000;
    while (count() === at && Date.now() < deadline) await sleep(10);
    assert.ok(count() > at, 'the counter did not move after thawing');
    await g.killAll();
    rmSync(dir, { recursive: true });
    assert.ok(frozeMs < 5000, `freeze took ${frozeMs} ms`);
    ctx.diagnostic(`freeze took ${frozeMs} ms (${host.mode})`);
  });

  it('kill-all empties a group of a shell and its background children, and remove deletes it', async () => {
    const g = group();
    const h = held(['/bin/sh', '-c', 'sleep 60 & sleep 60 & (sleep 60; sleep 60) & wait']);
    inGroup(g, h);
    h.go();
    while (g.processes().length < 5) await sleep(10);
    await g.killAll();
    assert.deepEqual(g.processes(), []);
    const [, signal] = await h.exited;
    assert.equal(signal, 'SIGKILL');
    await g.remove();
    for (const p of g.paths) assert.equal(existsSync(p), false, `${p} still exists`);
    await g.remove(); // idempotent
  });
});
