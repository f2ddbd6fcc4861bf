/**
 * @module client/local-write
 * Writing downloads into the local file system safely (see client/download):
 * files land through a temp file and a rename, and a directory download's
 * parents are checked so nothing is written through a symlink.
 */
import { randomBytes } from 'node:crypto';
import { createWriteStream, type Stats } from 'node:fs';
import { chmod, lstat, mkdir, rename, unlink, utimes, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { LongPaths } from './long-paths.js';

/** A temp name beside `target`, so the final rename stays on one file system. */
function tempBeside(target: string): string {
  return join(dirname(target), `.${basename(target).slice(0, 100)}.stowage-${randomBytes(6).toString('hex')}.part`);
}

/** Writes a stream to `target` through a temp file and a rename; the temp file is removed on failure. `meta.mode` is written as given (callers mask it with localMode). */
export async function writeAtomically(
  source: Readable,
  target: string,
  meta?: { mode: number; mtime: number },
): Promise<void> {
  const tmp = tempBeside(target);
  try {
    // 'wx': the temp name must be new, so an existing file or symlink there is never opened.
    await pipeline(source, createWriteStream(tmp, { flags: 'wx', mode: 0o600, highWaterMark: 1024 * 1024 }));
    if (meta) {
      await chmod(tmp, meta.mode);
      const t = new Date(meta.mtime);
      await utimes(tmp, t, t);
    } else {
      await chmod(tmp, 0o644);
    }
    // rename replaces a symlink at the target itself; it never follows it.
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** writeAtomically for bytes already in memory: fewer system calls than a stream. */
export async function writeBytesAtomically(
  data: Buffer,
  target: string,
  meta: { mode: number; mtime: number },
): Promise<void> {
  const tmp = tempBeside(target);
  try {
    await writeFile(tmp, data, { flag: 'wx', mode: 0o600 });
    await chmod(tmp, meta.mode);
    const t = new Date(meta.mtime);
    await utimes(tmp, t, t);
    await rename(tmp, target);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** lstat, or undefined when nothing is there. */
export async function lstatOrNone(p: string): Promise<Stats | undefined> {
  try {
    return await lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/**
 * Makes sure every directory between `root` and the entry's parent is a real
 * directory (creating missing ones); returns why not when one is a symlink
 * or a non-directory.
 */
export async function confinedParent(
  root: string,
  segments: readonly string[],
  verified: Set<string>,
  lp: LongPaths,
): Promise<string | undefined> {
  let cur = root;
  for (const seg of segments.slice(0, -1)) {
    cur = join(cur, seg);
    if (verified.has(cur)) continue;
    const st = await lstatOrNone(lp.short(cur));
    if (!st) await mkdir(lp.short(cur), { mode: 0o755 });
    else if (st.isSymbolicLink()) return `${cur} is a symlink: refusing to write through it`;
    else if (!st.isDirectory()) return `${cur} is not a directory`;
    verified.add(cur);
  }
  return undefined;
}

/** True when `e` says a local path is longer than the system takes. */
export function isTooLong(e: unknown): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === 'ENAMETOOLONG';
}
