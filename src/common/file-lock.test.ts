import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireFileLock, tryFileLock } from './file-lock.js';

describe('file lock', () => {
  it('admits one holder at a time and hands over on release', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-lock-'));
    try {
      const path = join(dir, 'x.lock');
      const first = await acquireFileLock(path);
      assert.equal(await tryFileLock(path), undefined, 'a second holder is refused while the first holds it');
      let secondGot = false;
      const second = acquireFileLock(path).then((l) => {
        secondGot = true;
        return l;
      });
      await new Promise((r) => setTimeout(r, 150));
      assert.equal(secondGot, false, 'a waiter waits');
      first.release();
      first.release();
      const l2 = await second;
      assert.equal(secondGot, true);
      l2.release();
      const l3 = await tryFileLock(path);
      assert.ok(l3, 'free again after release');
      l3.release();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('is released when the holding process dies', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'stowage-lock-'));
    try {
      const path = join(dir, 'x.lock');
      const { spawn } = await import('node:child_process');
      // Another process takes the lock through this module and is killed without releasing it.
      const mod = new URL('./file-lock.js', import.meta.url).href;
      const script = `import(${JSON.stringify(mod)}).then((m) => m.acquireFileLock(${JSON.stringify(path)})).then(() => { console.log('held'); setInterval(() => {}, 1000); });`;
      const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      await new Promise<void>((r) => child.stdout.once('data', () => r()));
      assert.equal(await tryFileLock(path), undefined, 'held by the other process');
      child.kill('SIGKILL');
      await new Promise((r) => child.on('close', r));
      const l = await tryFileLock(path);
      assert.ok(l, 'a dead holder leaves no stale lock');
      l.release();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
