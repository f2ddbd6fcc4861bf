/**
 * @module test/sandbox-launch.test
 * A whole sandbox, as the supervisor starts one: the busybox test image under
 * an overlay root on a capped state disk, the agent on the host's Node in the
 * subordinate id range, bwrap's namespaces, seccomp and a cgroup; then
 * commands through the durable exec service.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SandboxCgroup, detectCgroups } from '../src/sandbox/host/cgroups.js';
import { createStateDisk, destroyStateDisk, mountRoot } from '../src/sandbox/host/state-disk.js';
import { ExecRecords } from '../src/sandbox/supervisor/exec-records.js';
import { ExecService } from '../src/sandbox/supervisor/exec-service.js';
import { type LaunchedSandbox, launchSandbox } from '../src/sandbox/supervisor/launcher.js';
import { busyboxImage } from './helpers/sandbox-images.js';
import { TEST_IDS } from './helpers/sandbox-run.js';

const ID = `launch-${process.pid}`;
let dataDir: string;
let cgroup: SandboxCgroup;
let sandbox: LaunchedSandbox;
let execs: ExecService;
let records: ExecRecords;
let launchMs = 0;

async function run(argv: string[]): Promise<{ out: string; err: string; code: number | undefined }> {
  const started = await execs.exec({ argv });
  const done = await execs.wait(started.id);
  return {
    out: records.read(started.id, 'stdout', 0).toString(),
    err: records.read(started.id, 'stderr', 0).toString(),
    code: done?.exitCode,
  };
}

before(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'stowage-launch-test-'));
  const image = await busyboxImage();
  const disk = await createStateDisk(dataDir, ID, 1);
  const root = await mountRoot(image, disk);
  cgroup = detectCgroups().group(ID);
  cgroup.setLimits({ memoryBytes: 256 * 1024 * 1024, pidsMax: 128 });
  const t0 = performance.now();
  const guestDir = join(dataDir, 'guest');
  mkdirSync(guestDir);
  sandbox = await launchSandbox({
    root,
    cgroup,
    ids: TEST_IDS,
    hostname: 'sb-test',
    cacheDir: join(dataDir, 'cache'),
    guestDir,
    sandboxesDir: join(dataDir, 'sandboxes'),
  });
  launchMs = performance.now() - t0;
  records = new ExecRecords(join(dataDir, 'records'));
  execs = new ExecService(sandbox.agent, records);
});

after(async () => {
  sandbox?.agent.close('test over');
  sandbox?.child.kill('SIGKILL');
  await cgroup?.remove();
  if (dataDir) {
    await destroyStateDisk(dataDir, ID).catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
});

describe('a launched sandbox', () => {
  it('starts its agent and runs commands as its own root, in its own namespaces', async (t) => {
    t.diagnostic(`launch to agent ready: ${launchMs.toFixed(0)} ms`);
    assert.equal((await run(['id', '-u'])).out, '0\n');
    assert.equal((await run(['hostname'])).out, 'sb-test\n');
    const net = (await run(['cat', '/proc/net/dev'])).out;
    assert.deepEqual(
      net
        .split('\n')
        .slice(2)
        .filter(Boolean)
        .map((l) => l.trim().split(':')[0]),
      ['lo'],
      'loopback only',
    );
    const top = (await run(['ls', '/'])).out.split('\n');
    assert.ok(!top.includes('work') && !top.includes('root-of-host'), `no host path in /: ${top.join(' ')}`);
  });

  it('is seen from the host as the subordinate uid, every process inside its cgroup', async () => {
    const pids = cgroup.processes();
    assert.ok(pids.length >= 1, 'the sandbox has processes in its cgroup');
    const agentPid = (await sandbox.agent.ready).pid; // the agent's pid inside its namespace
    assert.equal(agentPid, 2, 'the agent runs under bwrap in its own pid namespace');
    const sandboxed = pids.filter((p) => {
      try {
        const status = readFileSync(`/proc/${p}/status`, 'utf8');
        return /^Uid:\s+100000\b/m.test(status);
      } catch {
        return false;
      }
    });
    assert.ok(sandboxed.length >= 1, `a process of uid 100000 in the group: ${pids.join(',')}`);
  });

  it('writes files onto its state disk, owned by the subordinate root on the host', async () => {
    await sandbox.agent.writeFile('/data/hello.txt', Buffer.from('hi'), { mode: 0o600 });
    assert.equal((await run(['cat', '/data/hello.txt'])).out, 'hi');
    const onDisk = statSync(join(dataDir, 'sandboxes', ID, 'disk', 'upper', 'data', 'hello.txt'));
    assert.equal(onDisk.uid, 100000);
    assert.equal(onDisk.mode & 0o777, 0o600);
  });

  it('keeps its agent out of reach of the code it runs (non-dumpable: no /proc/PID/environ, no ptrace)', async () => {
    const agentPid = (await sandbox.agent.ready).pid;
    const r = await run([
      'sh',
      '-c',
      `cat /proc/${agentPid}/environ >/dev/null 2>&1; echo rc=$?; cat /proc/self/environ >/dev/null; echo self=$?`,
    ]);
    assert.match(r.out, /rc=[1-9]/, "the agent's environment cannot be read");
    assert.match(r.out, /self=0/, 'while a plain process can read its own');
  });

  it('refuses mount and new user namespaces inside', async () => {
    const r = await run(['sh', '-c', 'mount -t tmpfs x /mnt 2>&1; echo rc=$?']);
    assert.match(r.out, /rc=[1-9]/);
    assert.match(r.out, /not permitted|denied/i);
  });
});
