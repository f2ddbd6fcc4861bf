/**
 * @module sandbox/agent/file-ops
 * The agent's file operations. They run inside the sandbox, as the sandbox's
 * root, in its own mount namespace: a symlink the sandbox made resolves
 * inside the sandbox, never against host paths, which is why the host does
 * file work through the agent rather than through the state disk's mount.
 * Writes go to a temp file renamed over the target, so a reader never sees
 * half a file.
 */
import { randomBytes } from 'node:crypto';
import { lstat, mkdir, open, readdir, rename, rm, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize } from 'node:path';
import type { Stats } from 'node:fs';
import type { AgentFileInfo } from '../protocol/messages.js';

/** An error with an errno-style code, answered to the supervisor as is. */
export class AgentFileError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** An absolute, normalised path, or an error naming what is wrong with it. */
export function checkPath(path: string): string {
  if (typeof path !== 'string' || path.length === 0) throw new AgentFileError('EINVAL', 'a path is required');
  if (path.includes('\0')) throw new AgentFileError('EINVAL', 'a path cannot contain NUL');
  if (!isAbsolute(path)) throw new AgentFileError('EINVAL', `paths are absolute: ${path}`);
  if (Buffer.byteLength(path) > 4095) throw new AgentFileError('ENAMETOOLONG', 'path longer than 4095 bytes');
  return normalize(path);
}

export function infoOf(name: string, st: Stats): AgentFileInfo {
  const type = st.isFile() ? 'file' : st.isDirectory() ? 'directory' : st.isSymbolicLink() ? 'symlink' : 'other';
  return { name, type, size: st.size, mode: st.mode & 0o7777, mtimeMs: st.mtimeMs, uid: st.uid, gid: st.gid };
}

export async function statPath(path: string): Promise<AgentFileInfo> {
  const p = checkPath(path);
  return infoOf(p, await lstat(p));
}

/** Most entries one listing answers with (the answer must fit one frame); `truncated` says there were more. */
export const MAX_LIST_ENTRIES = 5000;

export async function listDir(path: string): Promise<{ entries: AgentFileInfo[]; truncated: boolean }> {
  const p = checkPath(path);
  const all = (await readdir(p)).sort();
  const names = all.slice(0, MAX_LIST_ENTRIES);
  const entries: AgentFileInfo[] = [];
  for (const name of names) {
    try {
      entries.push(infoOf(name, await lstat(join(p, name))));
    } catch {
      // Removed while listed.
    }
  }
  return { entries, truncated: all.length > names.length };
}

export async function removePath(path: string, recursive: boolean): Promise<void> {
  const p = checkPath(path);
  if (p === '/') throw new AgentFileError('EPERM', 'refusing to remove /');
  const st = await lstat(p);
  if (st.isDirectory()) await rm(p, { recursive });
  else await unlink(p);
}

export async function makeDir(path: string, parents: boolean, mode: number): Promise<void> {
  await mkdir(checkPath(path), { recursive: parents, mode });
}

/** A write in progress: bytes go to a temp file beside the target until `commit`. */
export class PendingWrite {
  private constructor(
    readonly path: string,
    readonly temp: string,
    readonly handle: FileHandle,
    readonly mode: number,
  ) {}

  static async open(path: string, mode: number, createParents: boolean): Promise<PendingWrite> {
    const p = checkPath(path);
    if (p === '/') throw new AgentFileError('EISDIR', '/ is a directory');
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw new AgentFileError('EINVAL', `mode ${mode} is not a permission mode`);
    if (createParents) await mkdir(dirname(p), { recursive: true, mode: 0o755 });
    const existing = await lstat(p).catch(() => undefined);
    if (existing?.isDirectory()) throw new AgentFileError('EISDIR', `${p} is a directory`);
    const temp = join(dirname(p), `.${randomBytes(6).toString('hex')}.stowage-write`);
    const handle = await open(temp, 'wx', 0o600);
    return new PendingWrite(p, temp, handle, mode);
  }

  async append(data: Buffer): Promise<void> {
    await this.handle.write(data);
  }

  async commit(): Promise<number> {
    try {
      await this.handle.chmod(this.mode);
      const { size } = await this.handle.stat();
      await this.handle.close();
      await rename(this.temp, this.path);
      return size;
    } catch (e) {
      await this.abort();
      throw e;
    }
  }

  async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await unlink(this.temp).catch(() => undefined);
  }
}
