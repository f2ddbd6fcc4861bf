/**
 * @module mount/fuse-ops
 * The mount's file system as libfuse 3's low-level API sees it: inodes, not
 * paths. This module wires the operations together and serves the namespace
 * ones (lookup, getattr, setattr, mknod, mkdir, unlink, rmdir, symlink,
 * rename, readlink, statfs); the rest live beside it, one job each:
 *
 *   fuse-inodes.ts    inode numbers <-> the view's nodes, across swaps; what the kernel cached
 *   fuse-attrs.ts     attributes, entries and content signatures the kernel is told
 *   fuse-setattr.ts   truncate, chmod, chown, utimens, and the owner new entries record
 *   fuse-file-ops.ts  create, open, read, write, release (file handles)
 *   fuse-dir-ops.ts   readdir(plus) without per-open state (no opendir round trips)
 *
 * Caching: names and attributes are cached by the kernel for TTL seconds,
 * names that do not exist too (negative entries: git, sqlite and module
 * loaders probe the same missing paths again and again), and file pages
 * across opens (keep_cache) while the file's content signature is the one
 * the kernel last saw. A swap invalidates every name and attribute the
 * kernel holds, missing names included, and the pages of open files that
 * changed, so nothing stale is served after `reload` (issue 10, bug 3).
 *
 * Permissions are the kernel's (default_permissions): this module records
 * owners and modes and never second-guesses the checks. Entries that record
 * no owner show the mount's owner (`--uid/--gid`); entries created or
 * chowned to that owner record none, so a volume moves between sandboxes
 * whose users have different uids.
 *
 * Operations that change the tree hold the agent's gate shared (host.mutate);
 * commit and reload hold it exclusively. Reads and lookups do not wait.
 */
import { fsError } from './fs-error.js';
import { BLOCK, S_IFMT, S_IFREG, S_ISGID, SPECIAL_KINDS, TTL, attrOf, entryOf, joinPath } from './fuse-attrs.js';
import { DirOps, type DirOpNames } from './fuse-dir-ops.js';
import { FileOps, type FileOpNames } from './fuse-file-ops.js';
import { mutation, type FsContext, type FsHost } from './fuse-host.js';
import { InodeTable } from './fuse-inodes.js';
import { applySetattr, creatorOf } from './fuse-setattr.js';
import type { ConnInfo, FuseSession, LowLevelOps, Statvfs } from './fuse/types.js';
import type { MountView } from './mount-view.js';

export type { FsHost } from './fuse-host.js';

const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;

/** The file system a FUSE session serves. `session` is set once mounted (invalidation needs it). */
export class FuseFs {
  readonly #host: FsHost;
  readonly #inodes: InodeTable;
  readonly #fs: FsContext;
  readonly #files: FileOps;
  readonly #dirs: DirOps;
  conn: ConnInfo | null = null;
  /** What the session serves. */
  readonly ops: LowLevelOps;

  constructor(host: FsHost) {
    this.#host = host;
    this.#inodes = new InodeTable(host);
    this.#fs = { host, inodes: this.#inodes };
    this.#files = new FileOps(this.#fs);
    this.#dirs = new DirOps(this.#fs);
    this.ops = { ...this.#namespaceOps(), ...this.#files.ops, ...this.#dirs.ops };
  }

  get session(): FuseSession | null {
    return this.#inodes.session;
  }

  set session(session: FuseSession | null) {
    this.#inodes.session = session;
  }

  /**
   * Called by the agent under its exclusive gate, right after a commit or reload replaced the view (see
   * InodeTable). Resolves once the kernel dropped what it cached of the old view: await it only after the gate
   * is released, since the kernel may hold a directory's lock for a request that waits on the gate.
   */
  viewChanged(old: MountView, next: MountView, sameTree = false): Promise<void> {
    return this.#inodes.viewChanged(old, next, sameTree);
  }

  /** Data files that open handles still read (a commit or reload must keep them). */
  openDataIds(): Set<string> {
    return this.#files.openDataIds();
  }

  #namespaceOps(): Omit<LowLevelOps, FileOpNames | DirOpNames> {
    return {
      init: (conn) => {
        this.conn = conn;
        this.#dirs.capable = conn.capable;
      },

      lookup: async (_ctx, parent, name) => {
        const dirInode = this.#inodes.get(parent);
        const dir = await this.#inodes.nodeOf(dirInode);
        if (dir.type !== 'dir') throw fsError('ENOTDIR');
        // After nodeOf the directory's view is the current one (or, orphaned, its own).
        const node = await dirInode.view.child(dir, name);
        if (!node) return this.#inodes.negative(parent, name);
        return entryOf(this.#inodes.lookupOf(node, dirInode.view), node, this.#host.owner);
      },

      forget: (ino, nlookup) => {
        this.#inodes.forget(ino, nlookup);
      },

      getattr: async (_ctx, ino) => {
        const inode = this.#inodes.get(ino);
        const node = await this.#inodes.nodeOf(inode);
        return { attr: attrOf(inode, node, this.#host.owner), timeout: TTL };
      },

      setattr: async (ctx, ino, set, _fh) => {
        const inode = this.#inodes.get(ino);
        // chown(-1, -1) reaches us as a setattr of nothing (the kernel sends no kill flag without a new owner), yet
        // Linux clears the bits for it too; nothing else sends an empty setattr but a writer's file_remove_privs, which
        // clears them as well. Without KILLPRIV_V2 the kernel clears them itself (it sends the new mode).
        const empty =
          set.mode === undefined &&
          set.uid === undefined &&
          set.gid === undefined &&
          set.size === undefined &&
          set.atime === undefined &&
          set.mtime === undefined;
        const kill = ctx.killSuidgid || (empty && this.conn?.handleKillprivV2 === true);
        const changed = await this.#host.mutate(async (view) => applySetattr(this.#fs, view, inode, set, kill));
        if (changed) this.#host.changed();
        const node = await this.#inodes.nodeOf(inode);
        return { attr: attrOf(inode, node, this.#host.owner), timeout: TTL };
      },

      readlink: async (_ctx, ino) => {
        const node = await this.#inodes.nodeOf(this.#inodes.get(ino));
        if (node.type !== 'symlink') throw fsError('EINVAL');
        return node.target;
      },

      mknod: async (ctx, parent, name, mode, rdev) => {
        const kind = mode & S_IFMT;
        if (kind !== 0 && kind !== S_IFREG && !SPECIAL_KINDS.has(kind)) throw fsError('EINVAL');
        return mutation(this.#host, async (view) => {
          const { dir, path } = await this.#inodes.dirOf(parent, view);
          if (await view.child(dir, name)) throw fsError('EEXIST');
          const creator = creatorOf(this.#host, ctx, dir);
          const node = SPECIAL_KINDS.has(kind)
            ? await view.mknod(joinPath(path, name), kind, mode, rdev, creator)
            : await view.create(joinPath(path, name), mode, creator);
          return entryOf(this.#inodes.lookupOf(node, view), node, this.#host.owner);
        });
      },

      mkdir: async (ctx, parent, name, mode) =>
        mutation(this.#host, async (view) => {
          const { dir, path } = await this.#inodes.dirOf(parent, view);
          const inherit = dir.mode & S_ISGID;
          const node = await view.mkdir(joinPath(path, name), mode | inherit, creatorOf(this.#host, ctx, dir));
          return entryOf(this.#inodes.lookupOf(node, view), node, this.#host.owner);
        }),

      unlink: async (_ctx, parent, name) =>
        mutation(this.#host, async (view) => {
          const { path } = await this.#inodes.dirOf(parent, view);
          await view.unlink(joinPath(path, name));
        }),

      rmdir: async (_ctx, parent, name) =>
        mutation(this.#host, async (view) => {
          const { path } = await this.#inodes.dirOf(parent, view);
          await view.rmdir(joinPath(path, name));
        }),

      symlink: async (ctx, target, parent, name) =>
        mutation(this.#host, async (view) => {
          const { dir, path } = await this.#inodes.dirOf(parent, view);
          const node = await view.symlink(target, joinPath(path, name), creatorOf(this.#host, ctx, dir));
          return entryOf(this.#inodes.lookupOf(node, view), node, this.#host.owner);
        }),

      rename: async (_ctx, parent, name, newParent, newName, flags) => {
        if ((flags & RENAME_EXCHANGE) !== 0) throw fsError('EINVAL', 'RENAME_EXCHANGE is not supported');
        return mutation(this.#host, async (view) => {
          const from = await this.#inodes.dirOf(parent, view);
          const to = await this.#inodes.dirOf(newParent, view);
          await view.rename(joinPath(from.path, name), joinPath(to.path, newName), (flags & RENAME_NOREPLACE) !== 0);
        });
      },

      link: async () => {
        throw fsError('EPERM', 'hard links are not supported');
      },

      statfs: async (): Promise<Statvfs> => {
        const { cap, used } = this.#host.statfs();
        const blocks = Math.max(1, Math.floor(cap / BLOCK));
        const free = Math.max(0, Math.floor((cap - used) / BLOCK));
        return {
          bsize: BLOCK,
          frsize: BLOCK,
          blocks,
          bfree: free,
          bavail: free,
          files: 1_000_000,
          ffree: 1_000_000,
          favail: 1_000_000,
          namemax: 255,
        };
      },
    };
  }
}
