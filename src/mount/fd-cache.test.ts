/**
 * The data-file descriptor cache over real files: the bound holds however
 * many files are used, a descriptor in use is never closed under its user
 * (not by eviction, not by drop), and dropped ones close at the last release.
 */
import { describe, it, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { fstatSync, mkdtempSync, readdirSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FdCache } from './fd-cache.js';

const ownFds = (): number => readdirSync('/proc/self/fd').length;

describe('FdCache', () => {
  let dir: string;
  const pathOf = (id: string) => join(dir, id);

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'stowage-fds-'));
    for (let i = 0; i < 100; i++) writeFileSync(pathOf(`f${i}`), `content ${i}`);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps at most `capacity` descriptors open however many files are used', async () => {
    const before = ownFds();
    const fds = new FdCache(pathOf, 8);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 100; i++) {
        const got = await fds.use(`f${i}`, (fd) => {
          const buf = Buffer.alloc(32);
          return buf.subarray(0, readSync(fd, buf, 0, 32, 0)).toString();
        });
        assert.equal(got, `content ${i}`);
        assert.ok(fds.stats().open <= 8, `${fds.stats().open} open`);
      }
    }
    assert.ok(ownFds() - before <= 8, 'the process holds no more than the bound');
    fds.dropAll();
    assert.equal(fds.stats().open, 0);
    assert.equal(ownFds(), before, 'dropAll closed every idle descriptor');
  });

  it('never closes a descriptor in use: not when it is the oldest past the bound, not when dropped', () => {
    const fds = new FdCache(pathOf, 2);
    const held = fds.acquire('f0');
    // Many other files come and go while f0's operation is in flight.
    for (let i = 1; i < 50; i++) fds.release(`f${i}`, fds.acquire(`f${i}`));
    assert.doesNotThrow(() => fstatSync(held), 'the descriptor in use is still open');
    fds.drop('f0');
    assert.doesNotThrow(() => fstatSync(held), 'a dropped descriptor stays open while in use');
    // Used again after the drop: a fresh descriptor, the held one is not handed out twice.
    const again = fds.acquire('f0');
    assert.notEqual(again, held);
    fds.release('f0', again);
    fds.release('f0', held);
    assert.throws(() => fstatSync(held), { code: 'EBADF' }, 'closed at its last release');
    assert.ok(fds.stats().open <= 2);
    assert.equal(fds.stats().inUse, 0);
  });

  it('dropAll while operations run closes their descriptors only when they finish', async () => {
    const fds = new FdCache(pathOf, 4);
    let seen = -1;
    let go!: () => void;
    const gate = new Promise<void>((r) => {
      go = r;
    });
    const op = fds.use('f3', async (fd) => {
      await gate;
      seen = fstatSync(fd).size;
      return fd;
    });
    fds.dropAll();
    go();
    const fd = await op;
    assert.equal(seen, 'content 3'.length, 'the operation read through its descriptor after dropAll');
    assert.throws(() => fstatSync(fd), { code: 'EBADF' });
    assert.equal(fds.stats().open, 0);
  });

  it('a release with a stale or foreign descriptor changes nothing; a missing file fails to open and leaks nothing', () => {
    const fds = new FdCache(pathOf, 4);
    const fd = fds.acquire('f1');
    fds.release('f1', fd + 1000);
    fds.release('nope', fd);
    assert.doesNotThrow(() => fstatSync(fd));
    assert.equal(fds.stats().inUse, 1);
    fds.release('f1', fd);
    assert.throws(() => fds.acquire('missing'), { code: 'ENOENT' });
    assert.equal(fds.stats().open, 1);
    assert.throws(() => new FdCache(pathOf, 0), RangeError);
  });
});
