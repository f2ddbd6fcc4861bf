/**
 * The isolation pieces put together as the launcher will (the recipe of
 * ../shared/SANDBOX-HOST.md): as root, the host probe gives the subordinate
 * range, a fresh cgroup with limits holds the launch, `unshare` maps the
 * sandbox into the range and `bwrap --seccomp 3` makes the namespaces. Seen
 * from inside: uid 0, only `lo`, mount and unshare refused with EPERM; seen
 * from the host: the process runs as uid 100000 in the cgroup, and a file it
 * writes into a host directory bound read-write is owned by 100000.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { detectCgroups, type CgroupHost, type SandboxCgroup } from '../src/sandbox/host/cgroups.js';
import { describeReadiness, probeHost } from '../src/sandbox/host/host-probe.js';
import { sandboxLaunchArgv, type IdRange, type SandboxMount } from '../src/sandbox/host/launch-args.js';
import { sandboxSeccompProgram, serializeSeccomp } from '../src/sandbox/host/seccomp.js';
import { probeResults, syscallProbe } from './helpers/syscall-probe.js';
import { sandboxMounts } from './helpers/sandbox-run.js';

const isRoot = process.getuid?.() === 0;

/** A sandbox started held (it waits for a line on stdin before running), so it joins its cgroup before it forks. */
function launchHeld(ids: IdRange, mounts: SandboxMount[], command: string[], seccompFile: string) {
  const argv = sandboxLaunchArgv({ ids, mounts, command, seccompFd: 3, env: { PATH: '/usr/bin:/bin', HOME: '/tmp' } });
  const fd = openSync(seccompFile, 'r');
  const child = spawn('/bin/sh', ['-c', 'read _ && exec "$@"', 'sh', ...argv], { stdio: ['pipe', 'pipe', 'pipe', fd] });
  closeSync(fd);
  const exited = once(child, 'exit');
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    err += d.toString();
  });
  return {
    child,
    exited,
    out: () => out,
    err: () => err,
    send: (line = '') => child.stdin!.write(`${line}\n`),
    async until(text: string, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      while (!out.includes(text)) {
        if (Date.now() > end || child.exitCode !== null)
          assert.fail(`no "${text}" from the sandbox; out: ${out} err: ${err}`);
        await sleep(2);
      }
    },
  };
}

/** The Uid line of a host process (real, effective, saved, fs). */
function hostUids(pid: number): number[] {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Uid:'))!;
  return line.split(/\s+/).slice(1).map(Number);
}

/** Host pids of the processes whose command line contains marker. */
function pidsWithArg(pids: number[], marker: string): number[] {
  return pids.filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(marker);
    } catch {
      return false;
    }
  });
}

describe('sandbox isolation end to end (probe + cgroup + unshare + bwrap + seccomp)', {
  skip: !isRoot && 'sandboxes need root (CI runs as root)',
}, () => {
  let ids: IdRange;
  let cgroups: CgroupHost;
  let dir: string;
  let seccompFile: string;
  let probeDir: string;
  const groups: SandboxCgroup[] = [];
  const group = (name: string) => {
    const g = cgroups.group(`e2e-${process.pid}-${name}`);
    groups.push(g);
    g.setLimits({ cpuCores: 1, memoryBytes: 256 << 20, pidsMax: 64 });
    return g;
  };

  before(() => {
    const ready = probeHost();
    assert.ok(ready.ready, describeReadiness(ready));
    ids = ready.ids;
    cgroups = detectCgroups();
    dir = mkdtempSync(join(tmpdir(), 'stowage-e2e-'));
    chmodSync(dir, 0o755); // bwrap runs as the sandbox's host uid and must reach the bind sources
    seccompFile = join(dir, 'seccomp.bpf');
    writeFileSync(seccompFile, serializeSeccomp(sandboxSeccompProgram()));
    probeDir = dirname(syscallProbe());
  });
  after(async () => {
    for (const g of groups) await g.remove();
    rmSync(dir, { recursive: true, force: true });
  });

  it('inside uid 0 is host uid 100000, only lo, mount/unshare EPERM, files written to a bound host dir are owned by 100000 (uid 1000 by 101000)', async (t) => {
    const shared = join(dir, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o777); // owned by host root; writable by the sandbox's unprivileged uid
    const g = group('main');
    const marker = `stowage-e2e-${process.pid}`;
    const script = [
      'echo "uid=$(id -u) gid=$(id -g)"',
      'echo "net=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " " | tr "\\n" ,)"',
      '/tmp/probe/probe mount unshare_user clone_newuser setns',
      'mount -t tmpfs x /mnt 2>&1 | head -1 | sed "s/^/mount-cmd: /"',
      'unshare -U true 2>&1 | head -1 | sed "s/^/unshare-cmd: /"',
      'echo hello > /tmp/shared/from-sandbox && echo write=ok',
      'echo x > /tmp/shared/by-1000 && chown 1000:1000 /tmp/shared/by-1000 && echo chown=ok',
      'cat /etc/shadow >/dev/null 2>&1 && echo shadow=readable || echo shadow=denied',
      'echo ready',
      'read _',
    ].join('\n');
    const binds: SandboxMount[] = [
      { kind: 'ro-bind', source: probeDir, target: '/tmp/probe' },
      { kind: 'bind', source: shared, target: '/tmp/shared' },
    ];
    const sb = launchHeld(ids, sandboxMounts(binds), ['/bin/sh', '-c', script, marker], seccompFile);
    g.addProcess(sb.child.pid!);
    const started = performance.now();
    sb.send();
    await sb.until('uid=');
    const firstOutputMs = performance.now() - started;
    await sb.until('ready');

    const out = sb.out();
    assert.match(out, /^uid=0 gid=0$/m);
    assert.match(out, /^net=lo,$/m, 'only the loopback interface');
    assert.deepEqual(
      Object.fromEntries(
        Object.entries(probeResults(out)).filter(([k]) =>
          ['mount', 'unshare_user', 'clone_newuser', 'setns'].includes(k),
        ),
      ),
      { mount: 'EPERM', unshare_user: 'EPERM', clone_newuser: 'EPERM', setns: 'EPERM' },
    );
    assert.match(out, /^mount-cmd: .*(permission denied|Operation not permitted)/im);
    assert.match(out, /^unshare-cmd: unshare: unshare failed: Operation not permitted$/m);
    assert.match(out, /^write=ok$/m);
    assert.match(out, /^shadow=denied$/m, 'host root-only files stay closed to the sandbox root');

    // From the host: every process of the sandbox is in its cgroup and runs as the subordinate uid.
    const inGroup = g.processes();
    const [shell] = pidsWithArg(inGroup, marker);
    assert.ok(shell, `the sandbox shell is in the cgroup (${inGroup.join(',')})`);
    assert.deepEqual(hostUids(shell), [ids.hostUid, ids.hostUid, ids.hostUid, ids.hostUid]);
    for (const pid of inGroup)
      assert.equal(hostUids(pid)[0], ids.hostUid, `pid ${pid} runs as host uid ${hostUids(pid)[0]}`);
    const st = statSync(join(shared, 'from-sandbox'));
    assert.deepEqual([st.uid, st.gid], [ids.hostUid, ids.hostGid]);
    assert.equal(readFileSync(join(shared, 'from-sandbox'), 'utf8'), 'hello\n');
    // The whole range is mapped (no nested single-uid namespace): sandbox uid 1000 is host uid 101000.
    assert.match(out, /^chown=ok$/m);
    const by1000 = statSync(join(shared, 'by-1000'));
    assert.deepEqual([by1000.uid, by1000.gid], [ids.hostUid + 1000, ids.hostGid + 1000]);

    sb.send();
    const [code] = await sb.exited;
    assert.equal(code, 0, sb.err());
    // Every process of the sandbox ends with it (the kernel may list an exiting one for a moment).
    const end = Date.now() + 5000;
    while (g.processes().length > 0 && Date.now() < end) await sleep(5);
    assert.deepEqual(g.processes(), []);
    t.diagnostic(
      `launch to first output of the sandbox shell: ${firstOutputMs.toFixed(1)} ms (cgroup ${cgroups.mode})`,
    );
  });

  it('the sandbox root cannot trace or read a non-dumpable process (the agent) but can trace its own', async () => {
    const g = group('ptrace');
    // python stands in for the agent: changing its euid makes the kernel mark it non-dumpable, as the agent will do.
    const script = [
      'python3 -c "import os, time; os.seteuid(1000); os.seteuid(0); print(1, flush=True); time.sleep(30)" > /tmp/agent-up &',
      'agent=$!',
      'sleep 30 & plain=$!',
      'while [ ! -s /tmp/agent-up ]; do sleep 0.01; done',
      'cat /proc/$agent/environ >/dev/null 2>&1 && echo agent-environ=readable || echo agent-environ=denied',
      'cat /proc/$plain/environ >/dev/null 2>&1 && echo plain-environ=readable || echo plain-environ=denied',
      '/tmp/probe/probe ptrace_pid:$agent ptrace_pid:$plain | sed -e "s/:$agent=/:agent=/" -e "s/:$plain=/:plain=/"',
      'kill $agent $plain',
      'echo done',
    ].join('\n');
    const sb = launchHeld(
      ids,
      sandboxMounts([{ kind: 'ro-bind', source: probeDir, target: '/tmp/probe' }]),
      ['/bin/sh', '-c', script],
      seccompFile,
    );
    g.addProcess(sb.child.pid!);
    sb.send();
    await sb.until('done');
    const out = sb.out();
    assert.match(out, /^agent-environ=denied$/m);
    assert.match(out, /^plain-environ=readable$/m);
    assert.match(out, /^ptrace_pid:agent=EPERM$/m);
    assert.match(out, /^ptrace_pid:plain=ok$/m);
    await sb.exited;
  });

  it('launches /bin/true through the whole recipe fast enough for the create → first exec budget', async (t) => {
    const g = group('timing');
    const times: number[] = [];
    for (let i = 0; i < 10; i++) {
      const sb = launchHeld(ids, sandboxMounts(), ['/bin/true'], seccompFile);
      g.addProcess(sb.child.pid!);
      const t0 = performance.now();
      sb.send();
      const [code] = await sb.exited;
      times.push(performance.now() - t0);
      assert.equal(code, 0, sb.err());
    }
    times.sort((a, b) => a - b);
    t.diagnostic(
      `unshare + bwrap + seccomp + /bin/true in a cgroup: p50 ${times[5]!.toFixed(1)} ms, min ${times[0]!.toFixed(1)}, max ${times[9]!.toFixed(1)} ms`,
    );
    // Loose: the budget is 150 ms create → first exec, and this is only part of it.
    assert.ok(times[5]! < 1000, `p50 ${times[5]} ms`);
  });
});
