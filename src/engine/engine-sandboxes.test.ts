/** The sandbox control plane: validation, records, authority, attachments, over an in-memory runtime. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { MemoryBlobStore } from '../stores/memory/memory-blob-store.js';
import type { MetadataStore } from '../stores/metadata-store.js';
import { openSqliteMetadataStore } from '../stores/sql/sqlite-dialect.js';
import { createEngine, type Engine } from './engine.js';
import { FakeSandboxRuntime } from './fake-sandbox-runtime.test-helper.js';
import type { Actor } from './types.js';

const busybox = { base: 'busybox' as const };

describe('engine sandboxes', () => {
  let dir: string;
  let md: MetadataStore;
  let rt: FakeSandboxRuntime;
  let engine: Engine;
  let admin: Actor;
  let n = 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'stowage-sandboxes-'));
    md = await openSqliteMetadataStore({ path: join(dir, 'meta.db') });
    rt = new FakeSandboxRuntime();
    engine = createEngine({
      metadata: md,
      blobs: new MemoryBlobStore(),
      sandboxRuntime: rt,
      serverUrl: 'http://127.0.0.1:7420',
    });
    admin = await engine.authenticate((await engine.createTenant('acme')).secret);
  });
  after(async () => {
    await md.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const vol = async (accessMode: 'RWO' | 'RWX' = 'RWO') => {
    const name = `v${++n}`;
    await engine.createVolume(admin, name, { accessMode });
    return name;
  };
  const attachmentsOf = async (volume: string) =>
    (await engine.listAttachments(admin, volume, { all: true })).map((a) => [a.host, a.path, a.state]);

  it('refuses every malformed create before anything starts, naming the field', async () => {
    const v = await vol();
    const cases: Array<[string, unknown, RegExp]> = [
      ['relative mount path', { volumes: { 'mnt/data': v } }, /absolute/],
      ['mount at /', { volumes: { '/': v } }, /cannot be mounted at \//],
      ['trailing slash', { volumes: { '/mnt/data/': v } }, /not normalised.*"\/mnt\/data"/],
      ['dot-dot', { volumes: { '/mnt/../etc': v } }, /not normalised/],
      ['double slash', { volumes: { '/mnt//data': v } }, /not normalised/],
      ['over /proc', { volumes: { '/proc': v } }, /\/proc/],
      ['under /proc', { volumes: { '/proc/self/x': v } }, /\/proc/],
      ['under /dev', { volumes: { '/dev/shm': v } }, /\/dev/],
      ['under /sys', { volumes: { '/sys/fs': v } }, /\/sys/],
      ["the agent's dir", { volumes: { '/.stowage/agent': v } }, /\/\.stowage/],
      ['NUL in a path', { volumes: { '/mnt/a\0b': v } }, /NUL/],
      ['overlap', { volumes: { '/mnt/a': v, '/mnt/a/b': v } }, /overlap/],
      ['9 volumes', { volumes: Object.fromEntries([...Array(9).keys()].map((i) => [`/m${i}`, v])) }, /at most 8/],
      ['relative subpath', { volumes: { '/m': { volume: v, subpath: 'x' } } }, /subpath/],
      ['unnormalised subpath', { volumes: { '/m': { volume: v, subpath: '/a/../b' } } }, /subpath/],
      ['readOnly not boolean', { volumes: { '/m': { volume: v, readOnly: 'yes' } } }, /readOnly/],
      ['unknown volume field', { volumes: { '/m': { volume: v, mode: 'rw' } } }, /unknown field "mode"/],
      ['cpu too small', { cpu: 0.05 }, /cpu/],
      ['cpu over the cores', { cpu: 100_000 }, /cpu/],
      ['cpu not a number', { cpu: '2' }, /cpu/],
      ['memory too small', { memoryMib: 63 }, /memoryMib/],
      ['memory too big', { memoryMib: 65537 }, /memoryMib/],
      ['memory fraction', { memoryMib: 100.5 }, /memoryMib/],
      ['disk 0', { diskGib: 0 }, /diskGib/],
      ['disk too big', { diskGib: 65 }, /diskGib/],
      ['timeout 0', { timeout: 0 }, /timeout/],
      ['timeout over a day', { timeout: 86401 }, /timeout/],
      ['timeout NaN-like', { timeout: null }, /timeout/],
      ['env name with =', { env: { 'A=B': 'x' } }, /env/],
      ['env name starting with a digit', { env: { '1A': 'x' } }, /env/],
      ['env value not a string', { env: { A: 1 } }, /env\.A/],
      ['env value with NUL', { env: { A: 'a\0b' } }, /NUL/],
      ['env too large', { env: { A: 'x'.repeat(200_000) } }, /larger than/],
      ['copy step', { image: { base: 'busybox', steps: [{ copy: { from: 'a', to: '/a' } }] } }, /copy step/],
      ['unknown base', { image: { base: 'alpine' } }, /image/],
      ['not an object', [1, 2], /JSON object/],
    ];
    const launches = rt.launches.length;
    const before = (await engine.listSandboxes(admin, { all: true })).length;
    for (const [label, req, message] of cases) {
      await assert.rejects(
        engine.createSandbox(admin, Array.isArray(req) ? req : { image: busybox, ...(req as object) }),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'InvalidArgument', `${label}: ${err.message}`);
          assert.match(err.message, message, label);
          return true;
        },
        label,
      );
    }
    assert.equal(rt.launches.length, launches, 'nothing was launched');
    assert.equal((await engine.listSandboxes(admin, { all: true })).length, before, 'nothing was recorded');
    assert.deepEqual(await attachmentsOf(v), [], 'nothing was attached');
  });

  it('creates with defaults, keeps env for the runtime but lists names only, and lists newest first', async () => {
    const sb = await engine.createSandbox(admin, { env: { SECRET: 's3cr3t', A: '' } });
    assert.equal(sb.status, 'running');
    assert.deepEqual(sb.image, { base: 'debian', steps: [] });
    assert.deepEqual([sb.cpu, sb.memoryMib, sb.diskGib, sb.timeout], [1, 1024, 4, 300]);
    assert.equal(sb.expiresAt.getTime() - sb.createdAt.getTime(), 300_000);
    assert.equal(sb.host, 'fake-host');
    assert.match(sb.id, /^sb_[0-9a-z]{20}$/);
    const launch = rt.launches.at(-1)!;
    assert.deepEqual(launch.env, { SECRET: 's3cr3t', A: '' });
    assert.equal(launch.expiresAt.getTime(), sb.expiresAt.getTime());
    const second = await engine.createSandbox(admin, {
      image: { base: undefined, steps: [{ env: { X: '1' } }] },
      cpu: 0.5,
      timeout: 10,
    });
    assert.deepEqual(second.image, { base: 'debian', steps: [{ env: { X: '1' } }] });
    const list = await engine.listSandboxes(admin);
    assert.deepEqual(
      list.slice(0, 2).map((s) => s.id),
      [second.id, sb.id],
    );
    assert.equal((await engine.getSandbox(admin, second.id)).cpu, 0.5);
  });

  it('attaches each volume for the sandbox, with a scoped token the mount runs on', async () => {
    const data = await vol();
    const ref = await vol('RWX');
    const sb = await engine.createSandbox(admin, {
      image: busybox,
      volumes: { '/mnt/data': data, '/mnt/ref': { volume: ref, readOnly: true, subpath: '/sub' } },
    });
    assert.deepEqual(
      sb.volumes.map((v) => [v.path, v.volume, v.readOnly, v.subpath]),
      [
        ['/mnt/data', data, false, null],
        ['/mnt/ref', ref, true, '/sub'],
      ],
    );
    assert.deepEqual(await attachmentsOf(data), [[`sandbox:${sb.id}`, '/mnt/data', 'mounted']]);
    const launch = rt.launches.at(-1)!;
    assert.equal(launch.volumes[1]!.subpath, '/sub');
    assert.equal(launch.volumes[0]!.serverUrl, 'http://127.0.0.1:7420');
    const mount = await engine.authenticate(launch.volumes[1]!.token);
    assert.equal(mount.attachmentId, sb.volumes[1]!.attachmentId);
    assert.equal(mount.readOnly, true);
    // The mount's token can do nothing with sandboxes.
    await assert.rejects(engine.listSandboxes(mount), { code: 'Forbidden' });
    await assert.rejects(engine.getSandbox(mount, sb.id), { code: 'Forbidden' });
  });

  it('refuses a second read-write sandbox on an RWO volume, naming the holder, and releases what it attached', async () => {
    const shared = await vol('RWX');
    const data = await vol();
    const holder = await engine.createSandbox(admin, { image: busybox, volumes: { '/d': data } });
    const launches = rt.launches.length;
    await assert.rejects(
      engine.createSandbox(admin, { image: busybox, volumes: { '/s': shared, '/d': data } }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'Conflict');
        assert.match(err.message, new RegExp(`RWO.*sandbox:${holder.id}:/d`));
        return true;
      },
    );
    assert.equal(rt.launches.length, launches, 'the runtime was never asked');
    const failed = (await engine.listSandboxes(admin, { all: true }))[0]!;
    assert.equal(failed.status, 'failed');
    assert.match(failed.reason!, /could not start: .*RWO/);
    assert.deepEqual(await attachmentsOf(shared), [[`sandbox:${failed.id}`, '/s', 'failed']]);
    assert.deepEqual(await attachmentsOf(data), [[`sandbox:${holder.id}`, '/d', 'mounted']]);
    // Read-only is still allowed next to the read-write holder.
    await engine.createSandbox(admin, { image: busybox, volumes: { '/d': { volume: data, readOnly: true } } });
  });

  it('a create the runtime refuses fails the record, releases its attachments and revokes their tokens', async () => {
    const data = await vol();
    rt.failNextCreate = new Error('mmdebstrap failed: no mirror');
    await assert.rejects(engine.createSandbox(admin, { volumes: { '/d': data } }), /mmdebstrap failed/);
    const failed = (await engine.listSandboxes(admin, { all: true }))[0]!;
    assert.equal(failed.status, 'failed');
    assert.match(failed.reason!, /mmdebstrap failed: no mirror/);
    assert.ok(failed.endedAt);
    assert.deepEqual(await attachmentsOf(data), [[`sandbox:${failed.id}`, '/d', 'failed']]);
    await assert.rejects(engine.authenticate(rt.launches.at(-1)!.volumes[0]!.token), { code: 'Unauthenticated' });
    assert.deepEqual(await engine.listExecs(admin, failed.id), [], 'it ran nothing: its execs are an empty list');
    // The volume is free again.
    await engine.createSandbox(admin, { image: busybox, volumes: { '/d': data } });
  });

  it('terminate releases the attachments and is idempotent; execs and files then answer 409', async () => {
    const data = await vol();
    const sb = await engine.createSandbox(admin, { image: busybox, volumes: { '/d': data } });
    const token = rt.launches.at(-1)!.volumes[0]!.token;
    const done = await engine.terminateSandbox(admin, sb.id);
    assert.equal(done.status, 'terminated');
    assert.equal(done.reason, 'terminated by request');
    assert.equal(rt.sandboxes.get(sb.id)!.state.status, 'terminated');
    assert.deepEqual(await attachmentsOf(data), [[`sandbox:${sb.id}`, '/d', 'released']]);
    await assert.rejects(engine.authenticate(token), { code: 'Unauthenticated' });
    const again = await engine.terminateSandbox(admin, sb.id);
    assert.deepEqual(again, done);
    const conflict = { code: 'Conflict', message: new RegExp(`sandbox ${sb.id} is terminated`) };
    await assert.rejects(engine.execSandbox(admin, sb.id, { argv: ['echo'] }), conflict);
    await assert.rejects(engine.statSandboxFile(admin, sb.id, '/tmp'), conflict);
    await assert.rejects(engine.writeSandboxFile(admin, sb.id, '/f', Readable.from([Buffer.from('x')])), conflict);
    assert.ok(!(await engine.listSandboxes(admin)).some((s) => s.id === sb.id), 'not listed as live');
  });

  it('a sandbox terminated while it starts is stopped once its runtime has started it, never left running', async () => {
    const data = await vol();
    let open!: () => void;
    rt.gate = new Promise((r) => {
      open = r;
    });
    const creating = engine.createSandbox(admin, { image: busybox, volumes: { '/d': data } });
    const findStarting = async () =>
      (await engine.listSandboxes(admin)).find((s) => s.status === 'starting' && s.volumes.length > 0);
    await waitFor(async () => (await findStarting()) !== undefined);
    const starting = (await findStarting())!;
    const terminated = await engine.terminateSandbox(admin, starting.id);
    assert.equal(terminated.status, 'terminated');
    rt.gate = undefined;
    open();
    const created = await creating;
    assert.deepEqual([created.id, created.status], [starting.id, 'terminated']);
    assert.equal(rt.sandboxes.get(starting.id)!.state.status, 'terminated', 'the runtime stopped it');
    assert.deepEqual(await attachmentsOf(data), [[`sandbox:${starting.id}`, '/d', 'released']]);
  });

  it('a sandbox that ends on its own (timeout, crash) is recorded so, and its attachments released', async () => {
    const a = await vol();
    const b = await vol();
    const timedOut = await engine.createSandbox(admin, { image: busybox, volumes: { '/a': a } });
    const crashed = await engine.createSandbox(admin, { image: busybox, volumes: { '/b': b } });
    rt.end(timedOut.id, 'terminated', 'timeout');
    rt.end(crashed.id, 'failed', 'the supervisor died');
    await waitFor(async () => (await engine.getSandbox(admin, crashed.id)).status === 'failed');
    await waitFor(async () => (await engine.getSandbox(admin, timedOut.id)).status === 'terminated');
    assert.equal((await engine.getSandbox(admin, timedOut.id)).reason, 'timeout');
    assert.equal((await engine.getSandbox(admin, crashed.id)).reason, 'the supervisor died');
    assert.deepEqual(await attachmentsOf(a), [[`sandbox:${timedOut.id}`, '/a', 'released']]);
    assert.deepEqual(await attachmentsOf(b), [[`sandbox:${crashed.id}`, '/b', 'failed']]);
    // A late report never revives or re-ends a sandbox.
    rt.end(timedOut.id, 'failed', 'late');
    await new Promise((r) => setTimeout(r, 50));
    assert.equal((await engine.getSandbox(admin, timedOut.id)).reason, 'timeout');
  });

  it('reconcile ends the live records its runtime lost or saw end, and keeps the running ones', async () => {
    for (const s of await engine.listSandboxes(admin)) await engine.terminateSandbox(admin, s.id);
    const data = await vol();
    const lost = await engine.createSandbox(admin, { image: busybox, volumes: { '/d': data } });
    const ended = await engine.createSandbox(admin, { image: busybox });
    const alive = await engine.createSandbox(admin, { image: busybox });
    rt.forget(lost.id);
    // Ended while this server was down: nobody heard the report.
    rt.sandboxes.get(ended.id)!.state = { id: ended.id, status: 'terminated', reason: 'timeout' };
    assert.equal(await engine.reconcileSandboxes(), 2);
    const got = async (id: string) => {
      const s = await engine.getSandbox(admin, id);
      return [s.status, s.reason];
    };
    assert.deepEqual(await got(lost.id), [
      'failed',
      'lost: its host no longer knows it (the host restarted without it)',
    ]);
    assert.deepEqual(await got(ended.id), ['terminated', 'timeout']);
    assert.deepEqual(await got(alive.id), ['running', null]);
    assert.deepEqual(await attachmentsOf(data), [[`sandbox:${lost.id}`, '/d', 'failed']]);
    assert.equal(await engine.reconcileSandboxes(), 0, 'a second pass changes nothing');
  });

  it("another tenant's sandbox is NotFound, and only an admin token runs anything", async () => {
    const sb = await engine.createSandbox(admin, { image: busybox });
    const other = await engine.authenticate((await engine.createTenant(`other${++n}`)).secret);
    const nf = { code: 'NotFound' };
    await assert.rejects(engine.getSandbox(other, sb.id), nf);
    await assert.rejects(engine.terminateSandbox(other, sb.id), nf);
    await assert.rejects(engine.execSandbox(other, sb.id, { argv: ['echo'] }), nf);
    await assert.rejects(engine.readSandboxFile(other, sb.id, '/tmp'), nf);
    await assert.rejects(engine.listExecs(other, sb.id), nf);
    assert.deepEqual(await engine.listSandboxes(other, { all: true }), []);
    await assert.rejects(engine.getSandbox(admin, 'sb_../../etc'), nf);
    await assert.rejects(engine.getSandbox(admin, 'att_0123456789abcdefghij'), nf);
    const ro = await engine.authenticate((await engine.createToken(admin, { name: 'ro', readOnly: true })).secret);
    assert.equal((await engine.getSandbox(ro, sb.id)).id, sb.id);
    assert.deepEqual(await engine.statSandboxFile(ro, sb.id, '/tmp').then((f) => f.type), 'directory');
    await assert.rejects(engine.createSandbox(ro, {}), { code: 'ReadOnly' });
    await assert.rejects(engine.execSandbox(ro, sb.id, { argv: ['echo'] }), { code: 'ReadOnly' });
    await assert.rejects(engine.terminateSandbox(ro, sb.id), { code: 'ReadOnly' });
    const v = await vol();
    const scoped = await engine.authenticate((await engine.createToken(admin, { name: 's', volume: v })).secret);
    await assert.rejects(engine.listSandboxes(scoped), { code: 'Forbidden' });
    await assert.rejects(engine.createSandbox(scoped, {}), { code: 'Forbidden' });
  });

  it('checks exec requests, turns a command into sh -c and seconds into ms, and streams output from offsets', async () => {
    const sb = await engine.createSandbox(admin, { image: busybox });
    const bad: Array<[unknown, RegExp]> = [
      [{}, /exactly one of argv/],
      [{ argv: ['echo'], command: 'echo' }, /exactly one of argv/],
      [{ argv: [] }, /argv/],
      [{ argv: [''] }, /argv\[0\]/],
      [{ argv: ['echo', 1] }, /argv\[1\]/],
      [{ argv: ['echo', 'a\0b'] }, /NUL/],
      [{ command: '   ' }, /command/],
      [{ command: 'echo \0' }, /NUL/],
      [{ argv: ['echo'], cwd: 'tmp' }, /cwd/],
      [{ argv: ['echo'], timeout: -1 }, /timeout/],
      [{ argv: ['echo'], timeout: 86401 }, /timeout/],
      [{ argv: ['echo'], env: { 'BAD-NAME': 'x' } }, /env/],
      [{ argv: ['echo'], background: 'yes' }, /background/],
    ];
    for (const [req, message] of bad)
      await assert.rejects(engine.execSandbox(admin, sb.id, req), { code: 'InvalidArgument', message });
    const e = await engine.execSandbox(admin, sb.id, { command: 'echo hello world', timeout: 1.5, cwd: '/tmp' });
    assert.deepEqual(e.argv, ['/bin/sh', '-c', 'echo hello world']);
    assert.equal(e.timeoutMs, 1500);
    assert.equal(e.cwd, '/tmp');
    const events = [];
    for await (const ev of await engine.execOutput(admin, sb.id, e.id, { stdout: 6, stderr: 0 })) events.push(ev);
    assert.deepEqual(events[0], { stream: 'stdout', offset: 6, data: Buffer.from('world\n') });
    assert.equal('end' in events[1]! && events[1].end.exitCode, 0);
    await assert.rejects(engine.execOutput(admin, sb.id, e.id, { stdout: -1, stderr: 0 }), { code: 'InvalidArgument' });
    await assert.rejects(engine.getExec(admin, sb.id, '../x'), { code: 'NotFound' });
    await assert.rejects(engine.getExec(admin, sb.id, 'e999999'), { code: 'NotFound' });
    const cat = await engine.execSandbox(admin, sb.id, { argv: ['cat'], stdin: true });
    await engine.writeExecStdin(admin, sb.id, cat.id, Buffer.from('in'), true);
    assert.equal((await engine.getExec(admin, sb.id, cat.id)).stdoutBytes, 2);
    const sleeper = await engine.execSandbox(admin, sb.id, { argv: ['sleep', '100'], background: true });
    await assert.rejects(engine.signalExec(admin, sb.id, sleeper.id, 'SIGNOPE'), { code: 'InvalidArgument' });
    await engine.signalExec(admin, sb.id, sleeper.id, 'TERM');
    assert.equal((await engine.getExec(admin, sb.id, sleeper.id)).signal, 'SIGTERM');
    assert.equal((await engine.listExecs(admin, sb.id)).length, 3);
  });

  it("maps the agent's file errors to Stowage errors naming the path", async () => {
    const sb = await engine.createSandbox(admin, { image: busybox });
    const info = await engine.writeSandboxFile(admin, sb.id, '/a/b/f.txt', Readable.from([Buffer.from('hi')]), {
      mode: 0o600,
    });
    assert.deepEqual([info.size, info.mode], [2, 0o600]);
    assert.equal(await text(await engine.readSandboxFile(admin, sb.id, '/a/b/f.txt')), 'hi');
    await assert.rejects(engine.readSandboxFile(admin, sb.id, '/nope'), {
      code: 'NotFound',
      message: /^\/nope: no such file or directory \(ENOENT in sandbox sb_/,
    });
    await assert.rejects(engine.readSandboxFile(admin, sb.id, '/a'), {
      code: 'InvalidArgument',
      message: /\/a: is a directory/,
    });
    await assert.rejects(engine.mkdirSandboxFile(admin, sb.id, '/a'), { code: 'AlreadyExists', message: /\/a/ });
    await assert.rejects(engine.removeSandboxFile(admin, sb.id, '/a'), { code: 'Conflict', message: /recursive/ });
    await assert.rejects(engine.writeSandboxFile(admin, sb.id, '/x/y', Readable.from([]), { createParents: false }), {
      code: 'NotFound',
    });
    await engine.removeSandboxFile(admin, sb.id, '/a', true);
    assert.deepEqual(
      (await engine.listSandboxFiles(admin, sb.id, '/')).entries.map((e) => e.name),
      ['tmp'],
    );
    for (const p of ['relative', '/a\0b', `/${'x'.repeat(5000)}`])
      await assert.rejects(engine.statSandboxFile(admin, sb.id, p), { code: 'InvalidArgument' });
    await assert.rejects(engine.mkdirSandboxFile(admin, sb.id, '/m', { mode: 0o10000 }), { code: 'InvalidArgument' });
  });

  it('answers 503 naming what is missing when the runtime is absent or unavailable', async () => {
    rt.missing = 'bubblewrap is not installed: apt-get install bubblewrap';
    try {
      await assert.rejects(engine.createSandbox(admin, { image: busybox }), {
        code: 'Unavailable',
        message: /cannot run sandboxes: bubblewrap is not installed: apt-get install bubblewrap/,
      });
    } finally {
      rt.missing = undefined;
    }
    // Volumes need a URL their mount agents reach the API at: without one, nothing is attached or started.
    const noUrl = new FakeSandboxRuntime();
    const urlless = createEngine({ metadata: md, blobs: new MemoryBlobStore(), sandboxRuntime: noUrl });
    const data = await vol();
    await assert.rejects(urlless.createSandbox(admin, { image: busybox, volumes: { '/d': data } }), {
      code: 'Unavailable',
      message: /no URL its mount agents can reach/,
    });
    assert.deepEqual([noUrl.launches.length, await attachmentsOf(data)], [0, []]);
    const bare = createEngine({ metadata: md, blobs: new MemoryBlobStore() });
    await assert.rejects(bare.createSandbox(admin, {}), { code: 'Unavailable', message: /--no-sandboxes/ });
    assert.equal(await bare.reconcileSandboxes(), 0);
    // Records stay readable without a runtime.
    assert.ok((await bare.listSandboxes(admin, { all: true })).length > 0);
  });
});

async function waitFor(cond: () => Promise<boolean>, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}
