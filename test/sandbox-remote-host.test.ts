/**
 * @module test/sandbox-remote-host.test
 * A sandbox host on "another machine" (`stowage sandbox-host`'s server, on
 * loopback here) driven through HttpSandboxRuntime, as the Stowage server
 * drives it: the shared secret is required, calls and errors cross HTTP
 * unchanged, and sandboxes that end on their own are reported.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { hostSecret, startHostServer, type RunningHostServer } from '../src/sandbox/daemon/host-server.js';
import { HttpSandboxRuntime } from '../src/sandbox/runtime-http/runtime-client.js';
import type { RuntimeState, SandboxLaunch } from '../src/sandbox/runtime.js';
import { busyboxImage, testImageStore } from './helpers/sandbox-images.js';

let dataDir: string;
let server: RunningHostServer;
let secret: string;
let remote: HttpSandboxRuntime;

function launch(id: string, over: Partial<SandboxLaunch> = {}): SandboxLaunch {
  return {
    id,
    image: { base: 'busybox' },
    cpu: 1,
    memoryMib: 256,
    diskGib: 1,
    env: {},
    expiresAt: new Date(Date.now() + 600_000),
    volumes: [],
    ...over,
  };
}

before(async () => {
  await busyboxImage();
  dataDir = await mkdtemp(join(tmpdir(), 'stowage-remote-host-'));
  const made = hostSecret(dataDir);
  secret = made.secret;
  assert.equal(made.created, true);
  assert.equal((await readFile(made.file, 'utf8')).trim(), secret);
  assert.equal(hostSecret(dataDir).secret, secret, 'the next start reads the same secret');
  server = await startHostServer({
    dataDir,
    serverUrl: 'http://127.0.0.1:9',
    port: 0,
    secret,
    images: testImageStore(),
  });
  remote = await HttpSandboxRuntime.connect({ url: server.url, secret });
});

after(async () => {
  for (const id of server?.runtime.liveIds() ?? [])
    await server.runtime.terminate(id, 'test over').catch(() => undefined);
  await remote?.close();
  await server?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('remote sandbox host', () => {
  it('refuses calls without the shared secret', async () => {
    await assert.rejects(
      HttpSandboxRuntime.connect({ url: server.url, secret: 'x'.repeat(64) }),
      (e: Error & { code?: string }) => e.code === 'Unauthenticated',
    );
    const res = await fetch(`${server.url}/host`);
    assert.equal(res.status, 401);
  });

  it('runs sandboxes for the server: exec, output, files, errors, and ends reported as events', async () => {
    const id = `sb_remote${process.pid}`;
    await remote.create(launch(id));
    assert.equal((await remote.state(id))?.status, 'running');
    const rec = await remote.exec(id, { argv: ['sh', '-c', 'echo remote; hostname'] });
    let out = '';
    for await (const e of remote.output(id, rec.id, { stdout: 0, stderr: 0 })) if (!('end' in e)) out += e.data;
    assert.equal(out, `remote\n${id.replace(/_/g, '-')}\n`);
    await remote.writeFile(id, '/x/y.txt', Readable.from([Buffer.from('file')]), { mode: 0o644, createParents: true });
    const back: Buffer[] = [];
    for await (const b of await remote.readFile(id, '/x/y.txt')) back.push(b as Buffer);
    assert.equal(Buffer.concat(back).toString(), 'file');
    await assert.rejects(remote.stat(id, '/missing'), (e: Error & { code?: string }) => e.code === 'ENOENT');
    await assert.rejects(
      remote.exec('sb_nosuch', { argv: ['true'] }),
      (e: Error & { code?: string }) => e.code === 'NotFound',
    );

    const ended = new Promise<RuntimeState>((resolve) => remote.onEnded(resolve));
    const short = `sb_remoteshort${process.pid}`;
    await remote.create(launch(short, { expiresAt: new Date(Date.now() + 1500) }));
    const state = await ended;
    assert.deepEqual([state.id, state.status, state.reason], [short, 'terminated', 'timeout']);
    assert.equal((await remote.terminate(id, 'done')).status, 'terminated');
  });
});
