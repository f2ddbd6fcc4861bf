/**
 * @module test/sandbox-escape.test
 * The escape suite, run the way an attacker gets in: code executed in a
 * sandbox through the public API (`sb.exec`), and files moved through it.
 * Each case tries something a sandbox must never do and checks that it
 * failed and that nothing on the host changed: mounting, new namespaces,
 * reaching the host's processes, the agent's memory and environment, the
 * server's data dir and tokens, the server's API, and host paths through
 * symlinks the sandbox made (for the files API and for volume commits).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Sandbox, Stowage, Volume } from '@stowage/sdk';
import { startServer, type RunningServer } from '../src/server/serve.js';
import { TEST_IMAGES_DATA_DIR, busyboxImage } from './helpers/sandbox-images.js';

let dataDir: string;
let server: RunningServer;
let client: Stowage;
let sb: Sandbox;
let vol: Volume;

/** Runs a shell command in the sandbox through the API. */
async function sh(command: string): Promise<{ stdout: string; stderr: string; exitCode: number | null }> {
  return (await sb.exec(command)).wait();
}

before(async () => {
  await busyboxImage();
  dataDir = await mkdtemp(join(tmpdir(), 'stowage-escape-'));
  server = await startServer({
    dataDir,
    port: 0,
    host: '127.0.0.1',
    log: () => undefined,
    sandboxes: 'local',
    imageCacheDir: TEST_IMAGES_DATA_DIR,
  });
  client = new Stowage({ url: server.url, token: server.adminToken! });
  vol = await Volume.get('loot', { client, mintIfMissing: true });
  sb = await Sandbox.create({ client, image: { base: 'busybox' }, volumes: { '/mnt/loot': vol }, memoryMib: 256 });
});

after(async () => {
  await sb?.terminate().catch(() => undefined);
  await server?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

describe('escape attempts through the API', () => {
  it('cannot mount, make namespaces, or change its limits', async () => {
    for (const attempt of [
      'mount -t tmpfs none /mnt',
      'mount -t proc proc /tmp',
      'unshare -U true',
      'unshare -m true',
      'unshare -n true',
      'echo 999999999 > /sys/fs/cgroup/memory/memory.limit_in_bytes',
      'echo 1 > /proc/sys/kernel/sysrq',
    ]) {
      const r = await sh(attempt);
      assert.notEqual(r.exitCode, 0, `${attempt} succeeded: ${r.stdout}${r.stderr}`);
    }
    const r = await sh('id -u; cat /proc/self/status | grep -E "^(CapEff|Seccomp):"');
    assert.match(r.stdout, /^0\n/, 'root inside');
    assert.match(r.stdout, /Seccomp:\s+2/, 'under the seccomp filter');
  });

  it('sees only its own processes, and cannot read the agent', async () => {
    const pids = (await sh('ls /proc | grep -E "^[0-9]+$"')).stdout.trim().split('\n');
    assert.ok(pids.length < 12, `only the sandbox's processes: ${pids.join(' ')}`);
    // The agent is the process whose argv[4] is its script (argv: loader, --library-path, dir, node, script).
    const agent = (
      await sh(
        'for p in /proc/[0-9]*; do tr "\\0" " " < $p/cmdline | grep -q "^/.stowage/lib/ld.*agent-main.js" && basename $p; done',
      )
    ).stdout.trim();
    assert.match(agent, /^\d+$/, 'the agent runs inside');
    const environ = await sh(`cat /proc/${agent}/environ`);
    assert.notEqual(environ.exitCode, 0, 'the agent is not dumpable: its environment is closed to sandbox code');
    const mem = await sh(`head -c 16 /proc/${agent}/mem`);
    assert.notEqual(mem.exitCode, 0);
  });

  it("cannot reach the server's data dir, its tokens or the volume's scoped token", async () => {
    const token = server.adminToken!;
    const found = await sh(
      `ls ${dataDir} 2>&1; grep -rl ${token} / --exclude-dir=proc --exclude-dir=sys 2>/dev/null | head -3`,
    );
    assert.doesNotMatch(found.stdout, /admin-token|metadata\.db/);
    assert.equal(found.stdout.includes(token), false);
    const config = await sh('grep -rl "\\"token\\"" / --exclude-dir=proc --exclude-dir=sys 2>/dev/null | head -3');
    assert.equal(config.stdout.trim(), '', `a mount config is visible: ${config.stdout}`);
  });

  it('cannot reach the server API or any network', async () => {
    const port = new URL(server.url).port;
    const r = await sh(`wget -q -T 3 -O - http://127.0.0.1:${port}/v1/health`);
    assert.notEqual(r.exitCode, 0);
    const links = (await sh("tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '")).stdout.trim().split(/\s+/);
    assert.deepEqual(links, ['lo']);
  });

  it('cannot make the host follow its symlinks out of the sandbox (files API and volume commits)', async () => {
    const outside = join(dataDir, 'host-only.txt');
    await writeFile(outside, 'host secret');
    await sh(`mkdir -p /work && ln -s ${outside} /work/link && ln -s / /work/root`);
    await assert.rejects(sb.read('/work/link'), (e: Error & { code?: string }) => e.code === 'NotFound');
    await sb.write('/work/link', 'written through the link');
    assert.equal(await readFile(outside, 'utf8'), 'host secret', 'the host file is untouched');
    await assert.rejects(
      sb.stat(`/work/root${outside}`),
      (e: Error & { code?: string }) => e.code === 'NotFound',
      'a link to / is the sandbox root, where host paths do not exist',
    );

    await sh(`ln -s ${outside} /mnt/loot/escape && ln -s /etc /mnt/loot/etc-link`);
    await sb.terminate();
    assert.equal(await readFile(outside, 'utf8'), 'host secret');
    const info = await vol.files.stat('/escape');
    assert.equal(info.type, 'symlink', 'committed as a link, never followed');
  });
});
