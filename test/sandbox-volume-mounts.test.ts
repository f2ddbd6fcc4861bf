/**
 * @module test/sandbox-volume-mounts.test
 * Volumes inside a sandbox, end to end: a real server, volumes attached
 * through its attach route (what the control plane hands the runtime: an
 * attachment id and its scoped token), real FUSE mounts started by
 * volume-mounts.ts, bound by the launcher into a real busybox sandbox
 * (unshare + bwrap + seccomp + cgroup), commands run by the sandbox's agent,
 * and the SDK run inside on the host's Node to commit through the mount's
 * guest control socket.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Stowage } from '@stowage/sdk/client/http-client.js';
import { Volume } from '@stowage/sdk/client/volume.js';
import { type SandboxCgroup, detectCgroups } from '../src/sandbox/host/cgroups.js';
import { createStateDisk, destroyStateDisk, mountRoot } from '../src/sandbox/host/state-disk.js';
import type { RuntimeVolume } from '../src/sandbox/runtime.js';
import { ExecRecords } from '../src/sandbox/supervisor/exec-records.js';
import { ExecService } from '../src/sandbox/supervisor/exec-service.js';
import {
  AGENT_MOUNT,
  hostNodeRuntime,
  type LaunchedSandbox,
  launchSandbox,
} from '../src/sandbox/supervisor/launcher.js';
import { attachToSandbox } from '../src/sandbox/host/ns-attach.js';
import {
  type VolumeMount,
  type VolumeStopResult,
  exposeGuestSockets,
  startVolumeMount,
  startVolumeMounts,
  stopVolumeMount,
  stopVolumeMounts,
} from '../src/sandbox/supervisor/volume-mounts.js';
import { busyboxImage } from './helpers/sandbox-images.js';
import { TEST_IDS } from './helpers/sandbox-run.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const ID = `vols-${process.pid}`;
/** packages/sdk on the host (package.json says "module"; dist/ holds the compiled SDK), bound read-only at /sdk. */
const SDK_DIR = fileURLToPath(new URL('../../packages/sdk', import.meta.url));

let srv: TestServer;
let client: Stowage;
let dataDir: string;
let sandboxDir: string;
let cgroup: SandboxCgroup;
let sandbox: LaunchedSandbox | undefined;
let execs: ExecService;
let records: ExecRecords;
let mounts: VolumeMount[] = [];
let data: Volume;
let ref: Volume;
let volumes: RuntimeVolume[];

async function attach(vol: Volume, path: string, readOnly: boolean, subpath?: string): Promise<RuntimeVolume> {
  const res = await vol.attach({ host: `sandbox:${ID}`, path, readOnly });
  return {
    path,
    readOnly,
    ...(subpath !== undefined ? { subpath } : {}),
    volume: vol.name,
    attachmentId: res.attachment.id,
    token: res.token,
    serverUrl: srv.url,
  };
}

async function run(script: string): Promise<{ out: string; err: string; code: number | undefined }> {
  const started = await execs.exec({ argv: ['sh', '-c', script] });
  const done = await execs.wait(started.id);
  return {
    out: records.read(started.id, 'stdout', 0).toString(),
    err: records.read(started.id, 'stderr', 0).toString(),
    code: done?.exitCode,
  };
}

/** Runs an ES module with the host's Node inside the sandbox (as the launcher starts its agent). */
function node(source: string): Promise<{ out: string; err: string; code: number | undefined }> {
  const loader = `${AGENT_MOUNT}/lib/${basename(hostNodeRuntime().loader)}`;
  const quoted = `'${source.replace(/'/g, `'\\''`)}'`;
  return run(`${loader} --library-path ${AGENT_MOUNT}/lib ${AGENT_MOUNT}/node --input-type=module -e ${quoted}`);
}

before(async () => {
  srv = await startTestServer();
  client = new Stowage({ url: srv.url, token: srv.token });
  data = await Volume.create('sb-data', { client });
  ref = await Volume.create('sb-ref', { client });
  await data.files.write('/hello.txt', 'written on the host');
  await data.files.write('/sub/only.txt', 'in the subpath');
  await ref.files.write('/ref.txt', 'reference');
  volumes = [
    await attach(data, '/mnt/data', false),
    await attach(ref, '/mnt/ref', true),
    await attach(data, '/mnt/sub', true, '/sub'),
  ];
  dataDir = mkdtempSync(join(tmpdir(), 'stowage-vols-test-'));
  sandboxDir = join(dataDir, 'sandboxes', ID);
  // The state disk makes the sandbox's directory; the mounts go under it.
  const image = await busyboxImage();
  const disk = await createStateDisk(dataDir, ID, 1);
  const root = await mountRoot(image, disk);
  mounts = await startVolumeMounts(sandboxDir, volumes, { ids: TEST_IDS, host: 'test-host' });
  cgroup = detectCgroups().group(ID);
  cgroup.setLimits({ memoryBytes: 512 * 1024 * 1024, pidsMax: 256 });
  const guestDir = join(sandboxDir, 'guest');
  mkdirSync(guestDir);
  sandbox = await launchSandbox({
    root,
    cgroup,
    ids: TEST_IDS,
    cacheDir: join(dataDir, 'cache'),
    guestDir,
    sandboxesDir: join(dataDir, 'sandboxes'),
  });
  // As a supervisor does: the volumes reach the running sandbox.
  exposeGuestSockets(guestDir, mounts);
  await attachToSandbox(sandbox.pid, TEST_IDS, {
    binds: [...mounts.map((m) => m.bind), { source: SDK_DIR, target: '/sdk', readOnly: true }],
  });
  records = new ExecRecords(join(dataDir, 'records'));
  execs = new ExecService(sandbox.agent, records);
});

function endSandbox(): void {
  sandbox?.agent.close('test over');
  sandbox?.child.kill('SIGKILL');
  sandbox = undefined;
}

after(async () => {
  endSandbox();
  await stopVolumeMounts(mounts, 'test over');
  await cgroup?.remove();
  if (dataDir) {
    await destroyStateDisk(dataDir, ID).catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  }
  await srv?.close();
});

describe('volumes inside a sandbox', () => {
  it('shows a file written through the API to the sandbox, owned by its root', async () => {
    const r = await run('id -u; cat /mnt/data/hello.txt; echo; stat -c %u:%g /mnt/data/hello.txt /mnt/data');
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, '0\nwritten on the host\n0:0\n0:0\n');
  });

  it('keeps what the sandbox writes owned by uid 0 inside, and commits it through fromMount with no credential', async () => {
    const w = await run('echo made inside > /mnt/data/inside.txt && stat -c %u:%g /mnt/data/inside.txt');
    assert.equal(w.code, 0, w.err);
    assert.equal(w.out, '0:0\n');
    assert.equal(await data.files.exists('/inside.txt'), false, 'nothing reaches the volume before a commit');
    // Volume.fromMount(path) is `new MountHandle(path)` (client/volume.ts); the SDK's index needs npm packages the
    // sandbox does not have, so the module is imported directly.
    const r = await node(`
      const { MountHandle } = await import('/sdk/dist/client/mount-control.js');
      const vol = new MountHandle('/mnt/data');
      const res = await vol.commit({ message: 'from inside' });
      const st = await vol.status();
      console.log(JSON.stringify({ commit: res.commit, changes: res.changes, mountPath: st.mountPath, pending: st.pending }));
    `);
    assert.equal(r.code, 0, r.err);
    const res = JSON.parse(r.out) as { commit: { id: string }; changes: number; mountPath: string; pending: number };
    assert.ok(res.commit?.id, r.out);
    assert.equal(res.mountPath, '/mnt/data', "the guest's status names the path inside, not the host's");
    assert.equal(res.pending, 0);
    assert.equal((await data.files.read('/inside.txt')).toString(), 'made inside\n');
    const info = await data.files.stat('/inside.txt');
    assert.equal(info.uid ?? 100000, 100000, 'written by the sandbox root: no owner recorded, or its host uid');
  });

  it('reloads through fromMount inside to see a later commit made through the API', async () => {
    await data.files.write('/later.txt', 'later');
    const r = await node(`
      const { MountHandle } = await import('/sdk/dist/client/mount-control.js');
      await new MountHandle('/mnt/data').reload();
      const { readFileSync } = await import('node:fs');
      console.log(readFileSync('/mnt/data/later.txt', 'utf8'));
    `);
    assert.equal(r.code, 0, r.err);
    assert.equal(r.out, 'later\n');
  });

  it('refuses an unmount through the guest socket, and its answers never carry the token', async () => {
    const r = await node(`
      const { request } = await import('node:http');
      const call = (method, path) => new Promise((done, fail) => {
        const req = request({ socketPath: '/.stowage/volumes/0/control.sock', method, path }, (res) => {
          let text = '';
          res.on('data', (d) => (text += d));
          res.on('end', () => done({ status: res.statusCode, text }));
        });
        req.on('error', fail);
        req.end();
      });
      console.log(JSON.stringify([await call('POST', '/unmount'), await call('GET', '/status'), await call('GET', '/config')]));
    `);
    assert.equal(r.code, 0, r.err);
    const [unmount, status, config] = JSON.parse(r.out) as Array<{ status: number; text: string }>;
    assert.equal(unmount!.status, 403, unmount!.text);
    assert.equal(status!.status, 200);
    assert.equal(config!.status, 404);
    for (const v of volumes) assert.ok(!r.out.includes(v.token), 'no answer holds a scoped token');
    assert.equal((await run('cat /mnt/data/hello.txt')).out, 'written on the host', 'still mounted');
  });

  it("keeps the guest socket to the sandbox's root: another user inside cannot commit", async () => {
    const loader = `${AGENT_MOUNT}/lib/${basename(hostNodeRuntime().loader)}`;
    await sandbox!.agent.writeFile(
      '/tmp/commit.mjs',
      Buffer.from(
        "const { MountHandle } = await import('/sdk/dist/client/mount-control.js');\n" +
          "await new MountHandle('/mnt/data').commit().then(() => console.log('committed'), (e) => console.log(e.code, e.message));\n",
      ),
      { mode: 0o644 },
    );
    const r = await run(
      `su -s /bin/sh nobody -c 'id -u; ${loader} --library-path ${AGENT_MOUNT}/lib ${AGENT_MOUNT}/node /tmp/commit.mjs'`,
    );
    assert.equal(r.code, 0, r.out + r.err);
    assert.match(r.out, /^65534\n/);
    assert.match(r.out, /^Forbidden no permission to use the control socket of \/mnt\/data/m);
    assert.doesNotMatch(r.out, /^committed$/m);
  });

  it('refuses writes to a read-only volume inside (EROFS)', async () => {
    const r = await run(
      'cat /mnt/ref/ref.txt; echo; echo x > /mnt/ref/new.txt; echo rc=$?; rm /mnt/ref/ref.txt; echo rc=$?',
    );
    assert.match(r.out, /^reference\n/);
    assert.match(r.err, /Read-only file system/);
    assert.doesNotMatch(r.out, /rc=0/);
    assert.equal(await ref.files.exists('/new.txt'), false);
  });

  it('shows only the subpath of a volume mounted with one', async () => {
    const r = await run('ls /mnt/sub; cat /mnt/sub/only.txt; ls /mnt/sub/sub; echo rc=$?');
    assert.equal(r.out, 'only.txt\nin the subpathrc=1\n', 'no /sub inside /sub: the root is the subpath');
  });

  it('never shows the state dir: no config.json, no token, only the guest socket', async () => {
    const m = mounts[0]!;
    assert.ok(existsSync(join(m.stateDir, 'config.json')), 'the config is there on the host');
    const token = volumes[0]!.token;
    const r = await run(
      `ls -a ${AGENT_MOUNT}/volumes/0; cat ${m.stateDir}/config.json; echo rc=$?; ls ${m.stateDir}; echo rc=$?`,
    );
    assert.equal(r.out, '.\n..\ncontrol.sock\nrc=1\nrc=1\n');
    // grep lists the files holding the token (none); it may stop on what it cannot read (a socket): exit 1 or 2.
    const g = await run(
      `grep -rl '${token}' ${AGENT_MOUNT}/volumes /mnt /root /tmp /etc /proc/self/environ 2>/dev/null; echo grep=$?`,
    );
    assert.match(g.out, /^grep=[12]\n$/, 'the token is nowhere inside');
    const table = (await run('grep fuse.stowage /proc/self/mounts')).out;
    assert.ok(!table.includes(dataDir), `no host path in the volumes' mount table: ${table}`);
    assert.match(table, /^stowage:\/\.stowage\/volumes\/0 \/mnt\/data fuse\.stowage /m);
  });

  it('commits what was written inside and releases every attachment when the sandbox ends', async () => {
    const w = await run('echo last words > /mnt/data/final.txt');
    assert.equal(w.code, 0, w.err);
    endSandbox();
    const results: VolumeStopResult[] = await stopVolumeMounts(mounts, 'terminated by request');
    mounts = [];
    assert.deepEqual(
      results.map((r) => [r.volume, r.error]),
      [
        ['sb-data', undefined],
        ['sb-ref', undefined],
        ['sb-data', undefined],
      ],
    );
    assert.ok(results[0]!.commit, 'a final commit');
    assert.equal((await data.files.read('/final.txt')).toString(), 'last words\n');
    const states = new Map(
      [...(await data.attachments({ all: true })), ...(await ref.attachments({ all: true }))].map((a) => [
        a.id,
        a.state,
      ]),
    );
    for (const v of volumes) assert.equal(states.get(v.attachmentId), 'released', v.path);
    assert.equal(
      readFileSync('/proc/self/mounts', 'utf8').includes(join(sandboxDir, 'volumes')),
      false,
      'no volume left mounted',
    );
  });
});

describe('a volume mount whose agent dies', () => {
  it('comes back with its uncommitted work when started again, then commits it at the end', async () => {
    const vol = await Volume.create('sb-crash', { client });
    const v = await attach(vol, '/mnt/crash', false);
    const dir = join(dataDir, 'sandboxes', `${ID}-crash`);
    const exits: Array<NodeJS.Signals | null> = [];
    const options = {
      ids: TEST_IDS,
      onAgentExit: (_m: VolumeMount, _c: number | null, s: NodeJS.Signals | null) => exits.push(s),
    };
    let m = await startVolumeMount(dir, 0, v, options);
    try {
      // Asynchronous file calls only: the agent serves them through the server in this very process.
      await writeFile(join(m.mountPath, 'pending.txt'), 'not committed yet');
      process.kill(m.pid, 'SIGKILL');
      for (let i = 0; i < 50 && exits.length === 0; i++) await new Promise((r) => setTimeout(r, 100));
      assert.deepEqual(exits, ['SIGKILL'], 'the supervisor hears of the crash');
      m = await startVolumeMount(dir, 0, v, options);
      assert.equal(await readFile(join(m.mountPath, 'pending.txt'), 'utf8'), 'not committed yet');
      const again = await startVolumeMount(dir, 0, v, options);
      assert.equal(again.pid, m.pid, 'a running agent of the same attachment is adopted, not replaced');
    } finally {
      const res = await stopVolumeMount(m, 'test over');
      assert.equal(res.error, undefined);
    }
    assert.equal((await vol.files.read('/pending.txt')).toString(), 'not committed yet');
    const [att] = (await vol.attachments({ all: true })).filter((a) => a.id === v.attachmentId);
    assert.equal(att?.state, 'released');
    assert.deepEqual(exits, ['SIGKILL'], 'a stop on purpose is not reported as a crash');
  });

  it('reports a final commit that cannot reach the server, still unmounts, and keeps the work in the overlay', async () => {
    const other = await startTestServer();
    let m: VolumeMount | undefined;
    try {
      const vol = await Volume.create('sb-lost', { client: new Stowage({ url: other.url, token: other.token }) });
      const res = await vol.attach({ host: `sandbox:${ID}`, path: '/mnt/lost', readOnly: false });
      const v: RuntimeVolume = {
        path: '/mnt/lost',
        readOnly: false,
        volume: vol.name,
        attachmentId: res.attachment.id,
        token: res.token,
        serverUrl: other.url,
      };
      m = await startVolumeMount(join(dataDir, 'sandboxes', `${ID}-lost`), 0, v, { ids: TEST_IDS });
      await writeFile(join(m.mountPath, 'unsaved.txt'), 'kept on the host');
    } finally {
      await other.close();
    }
    const result = await stopVolumeMount(m, 'terminated by request');
    assert.equal(result.commit, null);
    assert.match(result.error ?? '', /^final commit failed: /);
    assert.equal(readFileSync('/proc/self/mounts', 'utf8').includes(m.mountPath), false, 'unmounted anyway');
    assert.ok(
      statSync(join(m.stateDir, 'overlay', 'journal.log')).size > 0,
      'the uncommitted work stays in the overlay',
    );
  });

  it('refuses a volume at the root, a reserved or an unnormalised path before mounting anything', async () => {
    const vol = await Volume.create('sb-bad', { client });
    for (const path of ['/', '/proc/x', `${AGENT_MOUNT}/volumes`, '/a/../b']) {
      const v = await attach(vol, '/mnt/x', false);
      await assert.rejects(
        startVolumeMount(join(dataDir, 'bad'), 0, { ...v, path }, { ids: TEST_IDS }),
        (e: Error) => /path|mounted at/.test(e.message),
        path,
      );
      assert.equal(existsSync(join(dataDir, 'bad')), false, 'nothing made on the host');
      // Refused before anything started: the attachment stays for the control plane to release.
      await client.request('POST', `/v1/attachments/${v.attachmentId}/release`, { body: {} });
    }
  });
});
