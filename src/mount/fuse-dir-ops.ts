/**
 * @module mount/fuse-dir-ops
 * Directory listings through FUSE: opendir takes a snapshot of the
 * directory's entries, readdir and readdirplus page through it by index
 * (the offset the kernel passes back is the index of the next entry), and
 * releasedir drops it. readdirplus answers each entry as a lookup too, so
 * `ls -l` costs no lookup or getattr per name.
 */
import { fsError } from './fs-error.js';
import { direntPlusSize, direntSize, entryOf, typeBits } from './fuse-attrs.js';
import type { FsContext } from './fuse-host.js';
import type { DirEntry, DirEntryPlus, LowLevelOps } from './fuse/types.js';
import type { MountView } from './mount-view.js';
import type { Node } from './nodes.js';

interface DirHandle {
  view: MountView;
  entries: Array<[string, Node]>;
}

export type DirOpNames = 'opendir' | 'readdir' | 'readdirplus' | 'releasedir';

export class DirOps {
  readonly #fs: FsContext;
  readonly #dirs = new Map<number, DirHandle>();
  #nextFh = 1;

  constructor(fs: FsContext) {
    this.#fs = fs;
  }

  #dir(fh: number): DirHandle {
    const h = this.#dirs.get(fh);
    if (!h) throw fsError('EBADF');
    return h;
  }

  readonly ops: Pick<LowLevelOps, DirOpNames> = {
    opendir: async (_ctx, ino) => {
      const { inodes } = this.#fs;
      const inode = inodes.get(ino);
      const node = await inodes.nodeOf(inode);
      if (node.type !== 'dir') throw fsError('ENOTDIR');
      const children = await inode.view.children(node);
      const fh = this.#nextFh++;
      this.#dirs.set(fh, { view: inode.view, entries: [...children] });
      return { fh };
    },

    readdir: async (_ctx, _ino, size, offset, fh) => {
      const handle = this.#dir(fh);
      const out: DirEntry[] = [];
      let room = size;
      for (let i = offset; i < handle.entries.length; i++) {
        const [name, node] = handle.entries[i]!;
        room -= direntSize(name);
        if (room < 0) break;
        const ino = this.#fs.inodes.inoOf(node) ?? 0xffffffff;
        out.push({ name, ino, mode: typeBits(node), off: i + 1 });
      }
      return out;
    },

    readdirplus: async (_ctx, _ino, size, offset, fh) => {
      const handle = this.#dir(fh);
      const out: DirEntryPlus[] = [];
      let room = size;
      for (let i = offset; i < handle.entries.length; i++) {
        const [name, node] = handle.entries[i]!;
        room -= direntPlusSize(name);
        if (room < 0) break;
        const inode = this.#fs.inodes.lookupOf(node, handle.view);
        out.push({ name, entry: entryOf(inode, node, this.#fs.host.owner), off: i + 1 });
      }
      return out;
    },

    releasedir: async (_ctx, _ino, fh) => {
      this.#dirs.delete(fh);
    },
  };
}
