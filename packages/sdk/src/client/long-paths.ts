/**
 * @module client/long-paths
 * Local paths longer than the kernel takes in one system call. A volume path
 * may be 4,096 bytes (Linux PATH_MAX), so the local path of a downloaded or
 * uploaded entry, which adds the local directory in front, can be longer
 * than any single open(2) or mkdir(2) accepts (ENAMETOOLONG). Node has no
 * openat(2), so this does the same thing through procfs: a directory early
 * in the path is opened once, and the rest of the path is named relative to
 * it as `/proc/self/fd/<fd>/<rest>`, repeatedly until the name is short.
 * No chdir (process-wide), no change to what is resolved: each prefix is a
 * directory the caller already made or checked.
 */
import { closeSync, constants, openSync } from 'node:fs';

/** Paths up to this many bytes are used as they are (PATH_MAX is 4,096 with its NUL; room for a temp name's suffix). */
const DIRECT_BYTES = 3_800;

/**
 * Hands out short names for long local paths; `close()` releases the
 * directory handles it opened. Linux only (procfs); elsewhere long paths fail
 * as the kernel says.
 *
 * @example
 * const lp = new LongPaths();
 * try { await mkdir(lp.short(veryLongPath)); } finally { lp.close(); }
 */
export class LongPaths {
  readonly #fds = new Map<string, number>();

  /** A name of `path` short enough for one system call (the path itself when it already is). */
  short(path: string): string {
    if (Buffer.byteLength(path) <= DIRECT_BYTES || process.platform !== 'linux') return path;
    // Cut at the last "/" that keeps the prefix short (never after the last component: that is what gets made).
    let cut = path.lastIndexOf('/', path.length - 2);
    while (cut > 0 && Buffer.byteLength(path.slice(0, cut)) > DIRECT_BYTES) cut = path.lastIndexOf('/', cut - 1);
    if (cut <= 0) return path;
    const prefix = path.slice(0, cut);
    let fd = this.#fds.get(prefix);
    if (fd === undefined) {
      fd = openSync(prefix, constants.O_RDONLY | constants.O_DIRECTORY);
      this.#fds.set(prefix, fd);
    }
    return this.short(`/proc/self/fd/${fd}${path.slice(cut)}`);
  }

  /** Closes every directory handle opened. */
  close(): void {
    for (const fd of this.#fds.values()) closeSync(fd);
    this.#fds.clear();
  }
}
