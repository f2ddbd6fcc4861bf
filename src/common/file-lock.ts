/**
 * @module common/file-lock
 * An exclusive lock between processes on one host, held on a lock file with
 * flock(2). Node has no flock binding, so the util-linux `flock` command
 * takes the lock on an open file description this process shares with it:
 * the lock belongs to that description, outlives the short-lived command and
 * is released when this process closes its descriptor — or dies, so a crash
 * never leaves a stale lock behind (unlike a pid file or a lock directory).
 * Two descriptors opened by one process conflict too, so the lock also
 * serialises callers inside one process.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';

/** A held lock; `release()` is idempotent. */
export interface FileLock {
  release(): void;
}

function flock(fd: number, wait: boolean): Promise<boolean> {
  return new Promise((done, fail) => {
    // The descriptor is the child's fd 3; `flock -n` exits 1 when another holder has it.
    const child = spawn('flock', wait ? ['-x', '3'] : ['-x', '-n', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', fail);
    child.on('close', (status) => {
      if (status === 0) done(true);
      else if (status === 1 && !wait) done(false);
      else fail(new Error(`flock exited ${status}: ${err.trim()} (util-linux's flock is needed)`));
    });
  });
}

function held(fd: number): FileLock {
  let open = true;
  return {
    release() {
      if (open) closeSync(fd);
      open = false;
    },
  };
}

/** Waits until the lock on `path` (created if missing) is this caller's. */
export async function acquireFileLock(path: string): Promise<FileLock> {
  const fd = openSync(path, 'a', 0o600);
  try {
    await flock(fd, true);
  } catch (e) {
    closeSync(fd);
    throw e;
  }
  return held(fd);
}

/** The lock on `path` if nobody holds it now, else undefined (never waits). */
export async function tryFileLock(path: string): Promise<FileLock | undefined> {
  const fd = openSync(path, 'a', 0o600);
  let got = false;
  try {
    got = await flock(fd, false);
  } finally {
    if (!got) closeSync(fd);
  }
  return got ? held(fd) : undefined;
}
