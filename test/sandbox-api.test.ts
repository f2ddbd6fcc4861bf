/**
 * @module test/sandbox-api.test
 * Sandboxes end to end, the way users reach them: the SDK's `Sandbox` over
 * real HTTP to a server running this machine's sandbox host, with real
 * supervisors, bwrap, cgroups, FUSE volume mounts and state disks. Covers a
 * server restart (sandboxes keep running and are found again), volumes
 * committed at terminate, access modes, timeouts and an out-of-memory kill.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox, Stowage, Volume } from '@stowage/sdk';
import { MountHandle } from '@stowage/sdk/client/mount-control.js';
import { detectCgroups } from '../src/sandbox/host/cgroups.js';
import { SANDBOX_PIDS_MAX } from '../src/sandbox/supervisor/prepared-sandbox.js';
import { cgroupNameOf } from '../src/sandbox/supervisor/supervisor-files.js';
import { DEFAULT_DISK_GIB } from '../src/sandbox/runtime.js';
import { startServer, type RunningServer } from '../src/server/serve.js';
import { TEST_IMAGES_DATA_DIR, busyboxImage, debianImage } from './helpers/sandbox-images.js';

const execFileP = promisify(execFile);
let dataDir: string;
let server: RunningServer;
let client: Stowage;
let token: string;
const made: Sandbox[] = [];

async function start(port = 0): Promise<RunningServer> {
  return startServer({
    dataDir,
    port,
    host: '127.0.0.1',
    log: () => undefined,
    sandboxes: 'local',
    imageCacheDir: TEST_IMAGES_DATA_DIR,
  });
}

async function create(options: Parameters<typeof Sandbox.create>[0] = {}): Promise<Sandbox> {
  const sb = await Sandbox.create({ client, image: { base: 'busybox' }, memoryMib: 256, diskGib: 1, ...options });
  made.push(sb);
  return sb;
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  await Promise.all([busyboxImage(), debianImage()]);
  dataDir = await mkdtemp(join(tmpdir(), 'stowage-sb-api-'));
  server = await start();
  token = server.adminToken!;
  client = new Stowage({ url: server.url, token });
});

after(async () => {
  // Through the current server (handles made before a restart hold the old one's URL).
  for (const sb of made) await (await Sandbox.connect(sb.id, { client })).terminate().catch(() => undefined);
  await server?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('sandboxes through the API', () => {
  it('creates a sandbox, runs commands with live output and stdin, and moves files', async () => {
    const sb = await create({ env: { GREETING: 'hi' } });
    assert.equal(sb.info.status, 'running');
    assert.deepEqual(sb.info.envNames, ['GREETING']);
    const run = await sb.exec('echo $GREETING; echo err >&2; exit 4');
    const res = await run.wait();
    assert.deepEqual([res.stdout, res.stderr, res.exitCode], ['hi\n', 'err\n', 4]);

    const cat = await sb.exec(['cat'], { stdin: 'piped in' });
    assert.equal((await cat.wait()).stdout, 'piped in');

    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const info = await sb.write('/work/bytes.bin', bytes, { mode: 0o600 });
    assert.equal(info.size, 256);
    assert.equal(info.mode & 0o777, 0o600);
    assert.deepEqual(await sb.read('/work/bytes.bin'), bytes);
    // A stream goes as it is read (node:http), in pieces of any size.
    const pieces = Array.from({ length: 40 }, (_, i) => randomBytes(1000 + i * 4099));
    const streamed = await sb.write('/work/streamed.bin', Readable.from(pieces));
    assert.equal(streamed.size, Buffer.concat(pieces).length);
    assert.deepEqual(await sb.read('/work/streamed.bin'), Buffer.concat(pieces));
    await sb.remove('/work/streamed.bin');
    assert.deepEqual(
      (await sb.list('/work')).entries.map((e) => e.name),
      ['bytes.bin'],
    );
    await assert.rejects(sb.read('/nope'), (e: Error & { code?: string }) => e.code === 'NotFound');
    assert.equal((await sb.execs()).length, 2);

    // Another client re-attaches to the output from an offset.
    const other = await (await Sandbox.connect(sb.id, { client })).getExec(run.id);
    let from1 = '';
    for await (const p of other.output({ stdout: 1 })) if (p.stream === 'stdout') from1 += p.data;
    assert.equal(from1, 'i\n');

    await sb.terminate();
    assert.equal(sb.info.status, 'terminated');
    await assert.rejects(sb.exec('true'), (e: Error & { code?: string }) => e.code === 'Conflict');
    assert.equal((await run.refresh()).exitCode, 4, 'exec records outlive the sandbox');
  });

  it('mounts a volume: files from the API are inside, work inside is committed at terminate, RWO holds', async () => {
    const vol = await Volume.get('nb', { client, mintIfMissing: true });
    await vol.files.write('/hello.txt', 'from the API');
    const sb = await create({ volumes: { '/mnt/nb': vol } });
    const read = await (await sb.exec('cat /mnt/nb/hello.txt; id -u; stat -c %u /mnt/nb/hello.txt')).wait();
    assert.equal(read.stdout, 'from the API0\n0\n');
    await (await sb.exec('echo made inside > /mnt/nb/inside.txt')).wait();
    await sb.write('/mnt/nb/written.txt', 'through the files API');

    await assert.rejects(create({ volumes: { '/data': 'nb' } }), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'Conflict');
      assert.match(e.message, new RegExp(sb.id));
      return true;
    });
    const ro = await create({ volumes: { '/ro': { volume: 'nb', readOnly: true } } });
    const denied = await (await ro.exec('echo x > /ro/nope.txt')).wait();
    assert.notEqual(denied.exitCode, 0);
    assert.match(denied.stderr, /Read-only/i);

    await sb.terminate();
    assert.equal((await vol.files.read('/inside.txt')).toString(), 'made inside\n');
    assert.equal((await vol.files.read('/written.txt')).toString(), 'through the files API');
    const attachments = await client.request<{ attachments: Array<{ host: string; state: string }> }>(
      'GET',
      '/v1/volumes/nb/attachments',
      { query: { all: 'true' } },
    );
    const mine = attachments.attachments.filter((a) => a.host === `sandbox:${sb.id}`);
    assert.deepEqual(
      mine.map((a) => a.state),
      ['released'],
    );
    await ro.terminate();
  });

  it('mounts volumes into a sandbox a spare prepared: a new nested path, a read-only subpath', async () => {
    const vol = await Volume.get('deep', { client, mintIfMissing: true });
    await vol.files.write('/top.txt', 'top');
    await vol.files.write('/sub/inner.txt', 'inner');
    const volumes = {
      '/mnt/a/b/work': vol,
      '/srv/inner': { volume: 'deep', readOnly: true, subpath: '/sub' },
    };
    // The default disk size, twice: the second create claims a sandbox a spare made before it was asked.
    const first = await create({ diskGib: DEFAULT_DISK_GIB });
    // A spare is ready once its sandbox is prepared and its mount agent waits (started last).
    const pgrep = (...args: string[]) =>
      execFileP('pgrep', args).then(
        (r) => r.stdout.split('\n').filter(Boolean),
        () => [] as string[],
      );
    await until('a spare with a waiting mount agent', async () => {
      for (const spare of await pgrep('-f', `supervisor-main.js ${dataDir} --spare`))
        if ((await pgrep('-P', spare, '-f', 'agent-main.js --spare')).length > 0) return true;
      return undefined;
    });
    await new Promise((r) => setTimeout(r, 1000));
    const warm = await create({ diskGib: DEFAULT_DISK_GIB, volumes });
    const log = await readFile(join(dataDir, 'sandbox-runs', warm.id, 'supervisor.log'), 'utf8');
    assert.match(log, /started \(ms: warm/);
    const seen = await (
      await warm.exec(
        'hostname; cat /mnt/a/b/work/top.txt; echo; ls /srv/inner; echo x > /srv/inner/no.txt 2>/dev/null || echo ro; ' +
          'test -S /.stowage/volumes/0/control.sock && echo socket; stat -c %u /mnt/a',
      )
    ).wait();
    assert.equal(seen.stdout, `${warm.id.replace(/_/g, '-')}\ntop\ninner.txt\nro\nsocket\n0\n`);
    // The first volume ran in the mount agent the spare kept waiting, which logs to the mount's state dir.
    const stateDir = join(dataDir, 'sandboxes', warm.id, 'volume-state', '0');
    const handle = new MountHandle(join(dataDir, 'sandboxes', warm.id, 'volumes', '0'), { stateDir });
    const agentPid = (await handle.status()).pid;
    assert.match(await readFile(`/proc/${agentPid}/cmdline`, 'utf8'), /--spare/);
    assert.match(await readFile(join(stateDir, 'agent.log'), 'utf8'), /mounted deep at /);
    await (await warm.exec('echo from the warm one > /mnt/a/b/work/made.txt')).wait();
    await warm.terminate();
    await first.terminate();
    assert.equal((await vol.files.read('/made.txt')).toString(), 'from the warm one\n');
  });

  it('refuses bad mount paths before anything starts', async () => {
    for (const path of ['/', 'relative', '/proc/x', '/a/../b', '/sys']) {
      await assert.rejects(
        Sandbox.create({ client, image: { base: 'busybox' }, volumes: { [path]: 'nb' } }),
        (e: Error & { code?: string }) => e.code === 'InvalidArgument',
        path,
      );
    }
    const live = (await Sandbox.list({ client })).map((s) => s.id);
    assert.deepEqual(
      live.filter((id) => !made.some((m) => m.id === id)),
      [],
    );
  });

  it('keeps sandboxes running across a server restart, output re-attached from an offset', async () => {
    const sb = await create();
    const bg = await sb.exec('for i in 1 2 3 4 5; do echo tick$i; sleep 0.3; done', { background: true });
    await server.close();
    server = await start();
    client = new Stowage({ url: server.url, token });
    const again = await Sandbox.connect(sb.id, { client });
    assert.equal(again.info.status, 'running');
    const exec = await again.getExec(bg.id);
    const { stdout } = await exec.wait();
    assert.equal(stdout, 'tick1\ntick2\ntick3\ntick4\ntick5\n');
    assert.equal((await (await again.exec('echo still here')).wait()).stdout, 'still here\n');
    await again.terminate();
  });

  it('records a sandbox whose supervisor was killed as failed, keeping what its volume held', async () => {
    await Volume.get('crash', { client, mintIfMissing: true });
    const sb = await create({ volumes: { '/mnt/c': 'crash' } });
    await (await sb.exec('echo survived > /mnt/c/kept.txt')).wait();
    const pid = Number(await readFile(join(dataDir, 'sandbox-runs', sb.id, 'supervisor.pid'), 'utf8'));
    process.kill(pid, 'SIGKILL');
    const info = await until('the failure to be recorded', async () => {
      const i = await sb.refresh();
      return i.status === 'running' ? undefined : i;
    });
    assert.equal(info.status, 'failed');
    assert.match(info.reason ?? '', /supervisor is gone/);
    const vol = await Volume.get('crash', { client });
    assert.equal((await vol.files.read('/kept.txt')).toString(), 'survived\n');
    assert.equal(existsSync(join(dataDir, 'sandboxes', sb.id)), false, 'its state disk was removed');
  });

  it('commits what a volume held after a crash of everything (server, supervisor, mount agent)', async () => {
    await Volume.get('machine', { client, mintIfMissing: true });
    const sb = await create({ volumes: { '/mnt/m': 'machine' } });
    await (await sb.exec('echo written before the crash > /mnt/m/crash.txt')).wait();
    const run = join(dataDir, 'sandbox-runs', sb.id);
    const supervisor = Number(await readFile(join(run, 'supervisor.pid'), 'utf8'));
    const sandboxDir = join(dataDir, 'sandboxes', sb.id);
    const mount = new MountHandle(join(sandboxDir, 'volumes', '0'), {
      stateDir: join(sandboxDir, 'volume-state', '0'),
    });
    const agent = (await mount.status()).pid;
    await server.close();
    // Everything at once, as a power cut: the mount agent first, so nothing gets to commit on its way out.
    process.kill(agent, 'SIGKILL');
    process.kill(supervisor, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 300));
    // The same address, as a machine that comes back: the sandbox's volume was attached for it.
    server = await start(Number(new URL(server.url).port));
    client = new Stowage({ url: server.url, token });
    const vol = await Volume.get('machine', { client });
    // A mount agent started again, once the server answers: a Node start and a replay, slow on a loaded machine.
    const committed = await until(
      'the overlay to be committed',
      async () =>
        vol.files.read('/crash.txt').then(
          (b) => b.toString(),
          () => undefined,
        ),
      60_000,
    );
    assert.equal(committed, 'written before the crash\n', 'a mount agent started again replayed it and committed');
    await until('its state to be removed', async () => (existsSync(sandboxDir) ? undefined : true));
    const info = await until('the failure to be recorded', async () => {
      const i = await (await Sandbox.connect(sb.id, { client })).refresh();
      return i.status === 'running' ? undefined : i;
    });
    assert.equal(info.status, 'failed');
    assert.match(info.reason ?? '', /supervisor is gone/);
  });

  it('ends a sandbox at its timeout', async () => {
    const sb = await create({ timeout: 2 });
    const info = await until('the timeout', async () => {
      const i = await sb.refresh();
      return i.status === 'running' ? undefined : i;
    });
    assert.equal(info.status, 'terminated');
    assert.equal(info.reason, 'timeout');
  });

  it('answers execs while the sandbox is out of processes, and recovers when they go', async () => {
    const sb = await create({ image: { base: 'debian' }, memoryMib: 1024 });
    // bash, not busybox's sh: a failed fork ends ash's loop (and the exec, racing the kill below); bash's goes on.
    const bomb = await sb.exec(['bash', '-c', 'while :; do sleep 1000 & done 2>/dev/null'], { background: true });
    const group = detectCgroups().group(cgroupNameOf(dataDir, sb.id));
    await until('the process limit to be reached', async () =>
      // The limit counts threads too (the agent has a dozen): processes stop a little below it.
      group.processes().length >= SANDBOX_PIDS_MAX - 64 ? true : undefined,
    );
    // At the limit an exec still answers: it runs if a process slot is free at that instant, or fails saying so.
    const answered = await Promise.race([
      (await sb.exec(['true'])).wait(),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 15_000)),
    ]);
    assert.ok(answered, 'the exec answered');
    if (answered.record.status === 'failed') assert.match(answered.record.error ?? '', /EAGAIN|resource/i);
    await bomb.kill('SIGKILL');
    const again = await until('processes to be free again', async () => {
      const r = await (await sb.exec(['echo', 'back'])).wait();
      return r.exitCode === 0 ? r : undefined;
    });
    assert.equal(again.stdout, 'back\n');
  });

  it('reports an out-of-memory kill on the exec, and the sandbox still answers', async () => {
    const sb = await create({ image: { base: 'debian' }, memoryMib: 64 });
    const res = await (await sb.exec(['python3', '-c', 'a = bytearray(256 << 20); print(len(a))'])).wait();
    assert.equal(res.signal, 'SIGKILL');
    assert.equal(res.record.oomKilled, true);
    assert.equal((await (await sb.exec(['python3', '-c', 'print(6 * 7)'])).wait()).stdout, '42\n');
  });
});
