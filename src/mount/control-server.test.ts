/**
 * The control socket's two faces: the mount owner's (every route) and a
 * sandbox's guest socket (its own file, owned by the sandbox's root, no
 * unmount), over a real Unix socket and the SDK's MountHandle.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { MountStatus } from '@stowage/sdk/common/mount-state.js';
import { MountHandle } from '@stowage/sdk/client/mount-control.js';
import {
  type ControlHandler,
  type ControlServer,
  startControlServer,
  startGuestControlServer,
} from './control-server.js';

let dir: string;
let full: ControlServer;
let guest: ControlServer;
const calls: string[] = [];

const handler: ControlHandler = {
  status: async () => ({ volume: 'v', mountPath: '/host/path', pending: 0 }) as unknown as MountStatus,
  commit: async (message) => {
    calls.push(`commit ${message}`);
    return { commit: null, changes: 0, uploadedChunks: 0, uploadedBytes: 0, overwritten: [], skipped: [] };
  },
  reload: async (o) => {
    calls.push(`reload ${o.force === true}`);
    return { commit: 'c', discarded: 0, overwrittenByOthers: [] };
  },
  unmount: async (o) => {
    calls.push(`unmount ${o.force === true}`);
  },
};

function call(socketPath: string, method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((done, fail) => {
    const req = request({ socketPath, method, path }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => done({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'stowage-control-'));
  full = await startControlServer(dir, handler);
  guest = await startGuestControlServer(dir, handler, {
    uid: 100000,
    gid: 100001,
    controlDir: '/.stowage/volumes/0',
    mountPath: '/mnt/data',
  });
});

after(async () => {
  await full?.close();
  await guest?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('control sockets', () => {
  it('serves the full socket at control.sock, 0600, with every route', async () => {
    assert.equal(full.path, join(dir, 'control.sock'));
    assert.equal(statSync(full.path).mode & 0o777, 0o600);
    const handle = new MountHandle('/anywhere', { stateDir: dir });
    assert.equal(
      handle.socketPath,
      full.path,
      'a handle given the state dir goes there, whatever the mount table says',
    );
    await handle.commit({ message: 'm' });
    await handle.unmount({ force: true });
    assert.deepEqual(calls.splice(0), ['commit m', 'unmount true']);
  });

  it('serves a guest socket owned by the given ids that commits and reloads but never unmounts', async () => {
    assert.equal(guest.path, join(dir, 'guest.sock'));
    const st = statSync(guest.path);
    assert.deepEqual([st.uid, st.gid, st.mode & 0o777], [100000, 100001, 0o600]);
    const status = await call(guest.path, 'GET', '/status');
    assert.equal(JSON.parse(status.body).mountPath, '/mnt/data', 'the path inside, never the host path');
    assert.equal((await call(guest.path, 'POST', '/commit')).status, 200);
    assert.equal((await call(guest.path, 'POST', '/reload')).status, 200);
    const refused = await call(guest.path, 'POST', '/unmount');
    assert.equal(refused.status, 403);
    assert.match(refused.body, /"Forbidden".*unmounted when the sandbox ends/);
    assert.equal((await call(guest.path, 'GET', '/config')).status, 404);
    assert.deepEqual(calls.splice(0), ['commit undefined', 'reload false'], 'the unmount never reached the handler');
  });
});
