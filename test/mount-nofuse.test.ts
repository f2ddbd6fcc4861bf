/**
 * A mount where FUSE cannot run fails at once with the cause, never a hang
 * and never an empty directory, and its attachment records why. Two real
 * situations, each made in a private mount namespace: /dev/fuse owned by
 * another user with every capability dropped (no permission), and an empty
 * /dev (no FUSE at all).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Stowage, Volume } from '@stowage/sdk';
import { CLI_MAIN, cliEnv } from './helpers/cli.js';
import { startTestServer, type TestServer } from './helpers/server.js';

function run(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ status: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr, ms: Date.now() - started }));
  });
}

describe('mount without FUSE', () => {
  let srv: TestServer;
  let dir: string;
  let vol: Volume;

  before(async () => {
    srv = await startTestServer();
    vol = await Volume.create('nofuse', { client: new Stowage({ url: srv.url, token: srv.token }) });
    dir = mkdtempSync(join(tmpdir(), 'stowage-nofuse-'));
  });
  after(async () => {
    await srv.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const env = (state: string) =>
    cliEnv({ STOWAGE_URL: srv.url, STOWAGE_TOKEN: srv.token, STOWAGE_MOUNT_STATE: join(dir, state) });

  it('without permission on /dev/fuse: a clear error at once, exit 7, attachment failed with the reason', async () => {
    const mnt = join(dir, 'mnt-perm');
    // A copy of the FUSE device that belongs to nobody, over /dev/fuse; root without CAP_DAC_OVERRIDE may not open it.
    const script = `mknod -m 600 "$DEV" c 10 229 && chown 65534 "$DEV" && mount --bind "$DEV" /dev/fuse && exec setpriv --inh-caps=-all --bounding-set=-all "$@"`;
    const r = await run(
      'unshare',
      ['-m', 'sh', '-c', script, 'sh', process.execPath, CLI_MAIN, 'mount', 'nofuse', mnt],
      { ...env('state-perm'), DEV: join(dir, 'fuse-of-nobody') },
    );
    assert.equal(r.status, 7, r.stderr);
    assert.match(r.stderr, /no permission to use \/dev\/fuse/);
    assert.doesNotMatch(r.stderr, /stowage serve/, 'no hint about the server: it is not the problem');
    assert.ok(r.ms < 10_000, `failed in ${r.ms} ms`);
    const failed = (await vol.attachments({ all: true })).filter((a) => a.path === mnt);
    assert.equal(failed.length, 1);
    assert.equal(failed[0]!.state, 'failed');
    assert.match(failed[0]!.reason ?? '', /no permission/);
  });

  it('without /dev/fuse: a clear error at once, and the directory is not left looking like an empty mount', async () => {
    const mnt = join(dir, 'mnt-none');
    const script = `mount -t tmpfs none /dev && mknod -m 666 /dev/null c 1 3 && exec "$@"`;
    const r = await run(
      'unshare',
      ['-m', 'sh', '-c', script, 'sh', process.execPath, CLI_MAIN, 'mount', 'nofuse', mnt],
      env('state-none'),
    );
    assert.equal(r.status, 7, r.stderr);
    assert.match(r.stderr, /FUSE is not available here \(\/dev\/fuse does not exist/);
    let entries: string[] = [];
    try {
      entries = readdirSync(mnt);
    } catch {
      /* never created: fine */
    }
    assert.deepEqual(entries, []);
    const [att] = (await vol.attachments({ all: true })).filter((a) => a.path === mnt);
    assert.equal(att?.state, 'failed');
  });
});
