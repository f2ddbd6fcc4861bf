/**
 * @module sandbox/host/uid-shift
 * Moves every file of a freshly built image root into the subordinate id
 * range (uid/gid N becomes SUBORDINATE_BASE + N), so sandbox root owns what
 * image root owned. lchown never follows a symlink; chown clears setuid and
 * setgid bits, so those modes are written back; a hard-linked inode is
 * shifted once. File capabilities (security.capability) do not survive a
 * chown and are not restored: a binary that needs one falls back as it
 * would without it (Debian's minbase carries none).
 *
 * The walk uses synchronous calls (one thread-pool round trip per call made
 * it ten times slower on a busy host) and yields to the event loop every
 * few hundred files.
 */
import { chmodSync, lchownSync, lstatSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { SUBORDINATE_BASE, SUBORDINATE_COUNT } from './subordinate-ids.js';

/** Shifts every id under `root` (root included) by SUBORDINATE_BASE; returns how many inodes it shifted. */
export async function shiftIds(root: string): Promise<number> {
  const seen = new Set<number>();
  let shifted = 0;
  const visit = async (path: string, rel: string): Promise<void> => {
    const st = lstatSync(path);
    if (st.nlink > 1 && !st.isDirectory()) {
      if (seen.has(st.ino)) return;
      seen.add(st.ino);
    }
    if (st.uid >= SUBORDINATE_COUNT || st.gid >= SUBORDINATE_COUNT) {
      throw new InvalidArgumentError(
        `image file /${rel} is owned by ${st.uid}:${st.gid}, outside the ids a sandbox maps (0-${SUBORDINATE_COUNT - 1}); change its owner in the build steps`,
      );
    }
    lchownSync(path, st.uid + SUBORDINATE_BASE, st.gid + SUBORDINATE_BASE);
    // chown dropped the setuid/setgid bits of a regular file: put the mode back.
    if (st.isFile() && (st.mode & 0o6000) !== 0) chmodSync(path, st.mode & 0o7777);
    if (++shifted % 500 === 0) await new Promise((r) => setImmediate(r));
    if (st.isDirectory()) {
      for (const name of readdirSync(path)) await visit(join(path, name), rel === '' ? name : `${rel}/${name}`);
    }
  };
  await visit(root, '');
  return shifted;
}
