/**
 * A mount agent whose control socket misbehaves (resets the connection,
 * cuts its answer off, answers garbage) is reported as Unavailable, naming
 * the mount and the agent's log: never a raw "write EPIPE" the CLI would call
 * a bug. The agent here is a real Unix-socket server that does each of those.
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTROL_SOCKET, mountStateDir } from '../common/mount-state.js';
import { MountHandle } from './mount-control.js';

describe('MountHandle against a broken control socket', () => {
  let root: string;
  let server: Server;
  const sockets = new Set<Socket>();
  let behaviour: 'reset' | 'cut' | 'garbage' = 'reset';
  const mountPath = '/nonexistent/stowage-broken-mount';
  const saved = process.env.STOWAGE_MOUNT_STATE;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'stowage-ctl-'));
    process.env.STOWAGE_MOUNT_STATE = root;
    const stateDir = mountStateDir(mountPath);
    mkdirSync(stateDir, { recursive: true });
    server = createServer((sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
      sock.once('data', () => {
        // Closed on the first bytes of the request: a client still sending a large body gets EPIPE or ECONNRESET.
        if (behaviour === 'reset') sock.destroy();
        else if (behaviour === 'cut')
          sock.end('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"volume":');
        else
          sock.end(
            'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 9\r\nconnection: close\r\n\r\nnot json!',
          );
      });
    });
    await new Promise<void>((r) => server.listen(join(stateDir, CONTROL_SOCKET), r));
  });
  after(async () => {
    for (const sock of sockets) sock.destroy();
    await new Promise<void>((r) => server.close(() => r()));
    if (saved === undefined) delete process.env.STOWAGE_MOUNT_STATE;
    else process.env.STOWAGE_MOUNT_STATE = saved;
    rmSync(root, { recursive: true, force: true });
  });

  for (const b of ['reset', 'cut', 'garbage'] as const) {
    it(`a ${b} answer is Unavailable, naming the mount and the agent log`, async () => {
      behaviour = b;
      const handle = new MountHandle(mountPath);
      for (const call of [() => handle.status(), () => handle.commit({ message: 'x'.repeat(200_000) })]) {
        await assert.rejects(call(), (e: Error & { code?: string }) => {
          assert.equal(e.code, 'Unavailable', e.message);
          assert.ok(e.message.includes(mountPath), e.message);
          assert.ok(e.message.includes(join(mountStateDir(mountPath), 'agent.log')), e.message);
          assert.doesNotMatch(e.message, /this is a bug/);
          return true;
        });
      }
    });
  }
});
