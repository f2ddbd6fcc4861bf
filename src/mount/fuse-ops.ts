/**
 * @module mount/fuse-ops
 * The FUSE operations of a mount, as fuse-native calls them, mapped onto the
 * mount view. Each operation runs async and always answers: a FsError as its
 * errno, anything unexpected as EIO after logging, so a bug or an
 * unreachable server never leaves a process hanging in the kernel.
 *
 * Operations that change the tree hold the agent's gate shared; commit and
 * reload hold it exclusively, so a commit sees a still overlay and a reload
 * never shows a half-switched tree. Reads do not wait for the gate.
 *
 * Open files are tracked by handle number so reads and writes skip the path
 * walk; a handle opened before a commit or reload finds its file again by
 * path in the new view.
 */
import { constants as fsConstants } from 'node:fs';
import { constants } from 'node:os';
import { FsError } from './fs-error.js';
import type { MountView } from './mount-view.js';
import type { FileNode, Node } from './nodes.js';

export interface FsHost {
  view(): MountView;
  /** Runs a change to the tree while no commit or reload runs. */
  mutate<T>(fn: (view: MountView) => Promise<T>): Promise<T>;
  /** Called after every change (writeback schedules a commit). */
  changed(): void;
  statfs(): { cap: number; used: number };
  log(message: string): void;
}

interface Handle {
  view: MountView;
  node: FileNode;
  wrote: boolean;
}

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const O_ACCMODE = 3;
const BLOCK = 4096;
/** Largest time a Date can hold. */
const MAX_DATE_MS = 8.64e15;

function statOf(node: Node, uid: number, gid: number): Record<string, unknown> {
  const mtime = new Date(node.mtime);
  const common = { mtime, atime: mtime, ctime: mtime, uid, gid };
  switch (node.type) {
    case 'dir': return { ...common, mode: S_IFDIR | node.mode, size: BLOCK, nlink: 2 };
    case 'symlink': return { ...common, mode: S_IFLNK | 0o777, size: Buffer.byteLength(node.target), nlink: 1 };
    case 'file': return { ...common, mode: S_IFREG | node.mode, size: node.size, nlink: 1, blocks: Math.ceil(node.size / 512), blksize: BLOCK };
  }
}

export function fuseOps(host: FsHost): Record<string, (...args: any[]) => void> {
  const uid = process.getuid?.() ?? 0;
  const gid = process.getgid?.() ?? 0;
  const handles = new Map<number, Handle>();
  let nextHandle = 1;

  const fail = (name: string, e: unknown): number => {
    if (e instanceof FsError) return e.errno;
    host.log(`${name}: ${(e as Error)?.stack ?? String(e)}`);
    return -constants.errno.EIO;
  };
  /** An op answering (0, result) or (errno). */
  const op = <A extends unknown[]>(name: string, fn: (...args: A) => Promise<unknown>) =>
    (...args: [...A, (err: number, ...r: unknown[]) => void]) => {
      const cb = args.pop() as (err: number, ...r: unknown[]) => void;
      fn(...(args as unknown as A)).then((r) => (r === undefined ? cb(0) : cb(0, r)), (e) => cb(fail(name, e)));
    };
  /** An op answering a byte count or (negative) errno. */
  const io = <A extends unknown[]>(name: string, fn: (...args: A) => Promise<number>) =>
    (...args: [...A, (n: number) => void]) => {
      const cb = args.pop() as (n: number) => void;
      fn(...(args as unknown as A)).then(cb, (e) => cb(fail(name, e)));
    };
  const mutation = <A extends unknown[]>(name: string, fn: (view: MountView, ...args: A) => Promise<unknown>) =>
    op(name, async (...args: A) => {
      const r = await host.mutate((view) => fn(view, ...args));
      host.changed();
      return r;
    });

  /** The file behind a handle, found again by path when the view changed since open. */
  const fileOf = async (path: string, fh: number): Promise<FileNode> => {
    const h = handles.get(fh);
    const view = host.view();
    if (h && h.view === view) return h.node;
    const node = await view.resolve(path);
    if (node.type !== 'file') throw new FsError('EISDIR');
    if (h) {
      h.view = view;
      h.node = node;
    }
    return node;
  };
  const open = (view: MountView, node: FileNode): number => {
    const fh = nextHandle++;
    handles.set(fh, { view, node, wrote: false });
    return fh;
  };

  return {
    init: (cb: (err: number) => void) => cb(0),
    getattr: op('getattr', async (path: string) => statOf(await host.view().resolve(path), uid, gid)),
    fgetattr: op('fgetattr', async (path: string, fh: number) => {
      const h = handles.get(fh);
      return statOf(h && h.view === host.view() ? h.node : await host.view().resolve(path), uid, gid);
    }),
    access: op('access', async (path: string) => {
      await host.view().resolve(path);
    }),
    statfs: op('statfs', async () => {
      const { cap, used } = host.statfs();
      const blocks = Math.max(1, Math.floor(cap / BLOCK));
      const free = Math.max(0, Math.floor((cap - used) / BLOCK));
      return { bsize: BLOCK, frsize: BLOCK, blocks, bfree: free, bavail: free, files: 1_000_000, ffree: 1_000_000, favail: 1_000_000, fsid: 0, flag: 0, namemax: 255 };
    }),
    readdir: op('readdir', async (path: string) => host.view().readdir(path)),
    readlink: op('readlink', async (path: string) => {
      const node = await host.view().resolve(path);
      if (node.type !== 'symlink') throw new FsError('EINVAL');
      return node.target;
    }),
    open: op('open', async (path: string, flags: number) => {
      if ((flags & fsConstants.O_TRUNC) !== 0) {
        return host.mutate(async (view) => open(view, await view.writableFile(path)));
      }
      // Opening for writing does not make the file local yet: write/ftruncate do that on first use.
      // Localizing here made every O_RDWR open a pending change (sqlite3 opens its database O_RDWR even
      // for a SELECT, git opens files O_RDWR), so a mount that was only read refused `unmount`.
      if ((flags & O_ACCMODE) !== fsConstants.O_RDONLY && host.view().opts.readOnly) throw new FsError('EROFS');
      const view = host.view();
      const node = await view.resolve(path);
      if (node.type !== 'file') throw new FsError('EISDIR');
      return open(view, node);
    }),
    create: mutation('create', async (view, path: string, mode: number) => open(view, await view.create(path, mode))),
    read: io('read', async (path: string, fh: number, buf: Buffer, len: number, pos: number) => host.view().content.read(await fileOf(path, fh), buf, len, pos)),
    write: io('write', async (path: string, fh: number, buf: Buffer, len: number, pos: number) => {
      const n = await host.mutate(async (view) => {
        let node = await fileOf(path, fh);
        if (!node.local) node = await view.writableFile(path);
        return view.content.write(node, buf, len, pos);
      });
      const h = handles.get(fh);
      if (h) h.wrote = true;
      return n;
    }),
    flush: op('flush', async () => undefined),
    fsync: op('fsync', async () => undefined),
    release: op('release', async (_path: string, fh: number) => {
      const h = handles.get(fh);
      handles.delete(fh);
      if (h?.wrote) host.changed();
    }),
    truncate: mutation('truncate', async (view, path: string, size: number) => view.truncate(path, size)),
    ftruncate: mutation('ftruncate', async (view, path: string, fh: number, size: number) => {
      let node = await fileOf(path, fh);
      if (!node.local) node = await view.writableFile(path);
      await view.content.truncate(node, size);
    }),
    mkdir: mutation('mkdir', (view, path: string, mode: number) => view.mkdir(path, mode)),
    rmdir: mutation('rmdir', (view, path: string) => view.rmdir(path)),
    unlink: mutation('unlink', (view, path: string) => view.unlink(path)),
    rename: mutation('rename', (view, from: string, to: string) => view.rename(from, to)),
    symlink: mutation('symlink', (view, target: string, path: string) => view.symlink(target, path)),
    link: op('link', async () => {
      throw new FsError('EPERM', 'hard links are not supported');
    }),
    chmod: mutation('chmod', (view, path: string, mode: number) => view.chmod(path, mode)),
    // Ownership is the mount's, whoever asks: accept chown so tar and cp -a work, and keep nothing.
    chown: op('chown', async (path: string) => {
      await host.view().resolve(path);
    }),
    // mtime beyond any Date is UTIME_OMIT (see patches/fuse-native+2.2.6.patch): only atime was set, which is not kept.
    utimens: mutation('utimens', async (view, path: string, _atime: number, mtime: number) => {
      if (mtime > MAX_DATE_MS) await view.resolve(path);
      else await view.utimens(path, mtime);
    }),
    mknod: op('mknod', async () => {
      throw new FsError('EPERM', 'only regular files, directories and symlinks are supported');
    }),
  };
}
