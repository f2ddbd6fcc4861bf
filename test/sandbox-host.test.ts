/**
 * @module test/sandbox-host.test
 * The host daemon end to end with real sandboxes: supervisors in their own
 * processes, a daemon that restarts and finds them again, timeouts, crashes
 * of a supervisor, and a host that cannot run sandboxes.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { LocalSandboxHost } from '../src/sandbox/daemon/local-host.js';
import { sandboxPaths } from '../src/sandbox/host/state-disk.js';
import type { OutputEvent, RuntimeState, SandboxLaunch } from '../src/sandbox/runtime.js';
import { runPaths } from '../src/sandbox/supervisor/supervisor-files.js';

import { busyboxImage, testImageStore } from './helpers/sandbox-images.js';

let dataDir: string;
let host: LocalSandboxHost;
let n = 0;

function launch(over: Partial<SandboxLaunch> = {}): SandboxLaunch {
  return {
    id: `sb_hosttest${process.pid}x${n++}`,
    image: { base: 'busybox' },
    cpu: 1,
    memoryMib: 256,
    diskGib: 1,
    env: { GREETING: 'hello' },
    expiresAt: new Date(Date.now() + 600_000),
    volumes: [],
    ...over,
  };
}

async function collect(events: AsyncIterable<OutputEvent>): Promise<{ stdout: string; stderr: string; end?: unknown }> {
  const out = { stdout: '', stderr: '', end: undefined as unknown };
  for await (const e of events) {
    if ('end' in e) out.end = e.end;
    else out[e.stream] += e.data.toString();
  }
  return out;
}

function openHost(): Promise<LocalSandboxHost> {
  return LocalSandboxHost.open({ dataDir, images: testImageStore() });
}

before(async () => {
  await busyboxImage();
  dataDir = await mkdtemp(join(tmpdir(), 'stowage-host-'));
  host = await openHost();
});

after(async () => {
  for (const id of host?.liveIds() ?? []) await host.terminate(id, 'test over').catch(() => undefined);
  await host?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('sandbox host daemon', () => {
  it('runs a sandbox: execs with the sandbox env, output with offsets, files through the agent', async () => {
    const l = launch();
    await host.create(l);
    assert.deepEqual(await host.state(l.id), { id: l.id, status: 'running' });
    const rec = await host.exec(l.id, { argv: ['sh', '-c', 'echo $GREETING; echo oops >&2; exit 3'] });
    const out = await collect(host.output(l.id, rec.id, { stdout: 0, stderr: 0 }));
    assert.equal(out.stdout, 'hello\n');
    assert.equal(out.stderr, 'oops\n');
    assert.equal((out.end as { exitCode: number }).exitCode, 3);
    const again = await collect(host.output(l.id, rec.id, { stdout: 3, stderr: 0 }));
    assert.equal(again.stdout, 'lo\n', 're-attached from an offset');

    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const info = await host.writeFile(l.id, '/data/bytes.bin', Readable.from([bytes]), {
      mode: 0o600,
      createParents: true,
    });
    assert.equal(info.size, 256);
    assert.equal(info.mode & 0o777, 0o600);
    const back: Buffer[] = [];
    for await (const b of await host.readFile(l.id, '/data/bytes.bin')) back.push(b as Buffer);
    assert.deepEqual(Buffer.concat(back), bytes);
    await assert.rejects(host.stat(l.id, '/nope'), (e: Error & { code?: string }) => e.code === 'ENOENT');
    const listed = await host.list(l.id, '/data');
    assert.deepEqual(
      listed.entries.map((e) => e.name),
      ['bytes.bin'],
    );
    assert.equal((await host.execs(l.id)).length, 1);

    const state = await host.terminate(l.id, 'terminated by request');
    assert.equal(state.status, 'terminated');
    assert.equal(existsSync(sandboxPaths(dataDir, l.id).dir), false, 'the state disk is gone');
    assert.equal((await host.getExec(l.id, rec.id))?.exitCode, 3, 'exec records outlive the sandbox');
    await assert.rejects(host.exec(l.id, { argv: ['true'] }), /terminated/);
    assert.deepEqual(await host.terminate(l.id, 'again'), state, 'terminate is idempotent');
  });

  it("streams files of any size out of a sandbox (past the agent protocol's 64 MiB buffered read)", async () => {
    const l = launch({ diskGib: 1 });
    await host.create(l);
    const made = await host.exec(l.id, {
      argv: ['sh', '-c', 'dd if=/dev/urandom of=/big bs=1M count=80 2>/dev/null && sha256sum /big | cut -d" " -f1'],
    });
    let inside = '';
    for await (const e of host.output(l.id, made.id, { stdout: 0, stderr: 0 })) if (!('end' in e)) inside += e.data;
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const b of await host.readFile(l.id, '/big')) {
      hash.update(b as Buffer);
      bytes += (b as Buffer).length;
    }
    assert.equal(bytes, 80 * 1024 * 1024);
    assert.equal(hash.digest('hex'), inside.trim());
    await assert.rejects(host.readFile(l.id, '/missing'), (e: Error & { code?: string }) => e.code === 'ENOENT');
    await host.terminate(l.id, 'done');
  });

  it('runs a command on a terminal: stdin, resize with SIGWINCH, the exit code', async () => {
    const l = launch();
    await host.create(l);
    const rec = await host.exec(l.id, {
      argv: [
        'sh',
        '-c',
        'test -t 0 && test -t 1 && echo is-a-tty; stty size; read a; stty size; echo "got $a"; exit 5',
      ],
      pty: { rows: 24, cols: 80 },
      stdin: true,
    });
    assert.equal(rec.pty, true);
    let seen = '';
    let end: { exitCode?: number } | undefined;
    for await (const e of host.output(l.id, rec.id, { stdout: 0, stderr: 0 })) {
      if ('end' in e) {
        end = e.end;
        break;
      }
      assert.equal(e.stream, 'stdout', 'a terminal has one output stream');
      const before = seen;
      seen += e.data.toString();
      if (!before.includes('24 80') && seen.includes('24 80')) {
        await host.resize(l.id, rec.id, 40, 120);
        await new Promise((r) => setTimeout(r, 100));
        await host.writeStdin(l.id, rec.id, Buffer.from('hello\n'), true);
      }
    }
    const lines = seen.replace(/\r/g, '').split('\n');
    assert.ok(lines.includes('is-a-tty'), seen);
    assert.ok(lines.includes('24 80'), seen);
    assert.ok(lines.includes('40 120'), seen);
    assert.ok(lines.includes('got hello'), seen);
    assert.equal(end?.exitCode, 5);
    await host.terminate(l.id, 'done');
  });

  it('keeps sandboxes running across a daemon restart and finds them again', async () => {
    const l = launch();
    await host.create(l);
    const bg = await host.exec(l.id, {
      argv: ['sh', '-c', 'for i in 1 2 3 4 5 6; do echo tick$i; sleep 0.3; done'],
      background: true,
    });
    await host.close();
    host = await openHost();
    assert.ok(host.liveIds().includes(l.id), 'the restarted daemon found the sandbox');
    const out = await collect(host.output(l.id, bg.id, { stdout: 0, stderr: 0 }));
    assert.equal(out.stdout, 'tick1\ntick2\ntick3\ntick4\ntick5\ntick6\n', 'output followed across the restart');
    const rec = await host.exec(l.id, { argv: ['echo', 'after'] });
    assert.equal((await collect(host.output(l.id, rec.id, { stdout: 0, stderr: 0 }))).stdout, 'after\n');
    await host.terminate(l.id, 'done');
  });

  it('terminates a sandbox at its timeout, and tells the daemon', async () => {
    const ended = new Promise<RuntimeState>((resolve) => host.onEnded(resolve));
    const l = launch({ expiresAt: new Date(Date.now() + 1500) });
    await host.create(l);
    const state = await ended;
    assert.equal(state.id, l.id);
    assert.equal(state.status, 'terminated');
    assert.equal(state.reason, 'timeout');
    assert.equal(existsSync(sandboxPaths(dataDir, l.id).dir), false);
  });

  it('records a sandbox whose supervisor died as failed, and sweeps what it left', async () => {
    const l = launch();
    await host.create(l);
    const rec = await host.exec(l.id, { argv: ['sleep', '60'], background: true });
    await host.close();
    const pid = Number(readFileSync(runPaths(dataDir, l.id).pid, 'utf8'));
    process.kill(pid, 'SIGKILL');
    await new Promise((r) => setTimeout(r, 500));
    host = await openHost();
    assert.ok(!host.liveIds().includes(l.id));
    // Found dead, it is buried in the background (its volumes may need the server): its state says so after.
    let state: RuntimeState | undefined;
    for (let i = 0; i < 100 && !state; i++) {
      state = await host.state(l.id).catch((e: Error & { code?: string }) => {
        assert.equal(e.code, 'Unavailable');
        return undefined;
      });
      if (!state) await new Promise((r) => setTimeout(r, 100));
    }
    assert.equal(state?.status, 'failed');
    assert.match(state?.reason ?? '', /supervisor is gone/);
    assert.equal(existsSync(sandboxPaths(dataDir, l.id).dir), false, 'the sweep removed its state disk');
    const lost = await host.getExec(l.id, rec.id);
    assert.equal(lost?.status, 'failed');
  });

  it('refuses every sandbox call with what is missing on a host that cannot run them', async () => {
    const bare = await LocalSandboxHost.open({
      dataDir,
      readiness: { ready: false, missing: [{ what: 'bwrap not found on PATH', fix: 'apt-get install bubblewrap' }] },
    });
    assert.match(bare.unavailable() ?? '', /bwrap not found on PATH.*apt-get install bubblewrap/);
    await assert.rejects(bare.create(launch()), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'Unavailable');
      assert.match(e.message, /bubblewrap/);
      return true;
    });
    await bare.close();
  });
});
