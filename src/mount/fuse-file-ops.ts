/**
 * @module mount/fuse-file-ops
 * File data through FUSE: create and open hand out handles, read and write
 * go to the file's content (base chunks, or the overlay's data file once
 * written), release gives the handle back. A handle holds its inode, so a
 * file unlinked or replaced while open keeps its own bytes.
 *
 * Page cache: the kernel keeps a file's pages across opens (keep_cache)
 * while its content signature is the one the kernel last saw.
 *
 * No flush, fsync or fsyncdir: nothing is buffered here (bytes are in the
 * overlay when write answers; commit is the durability boundary), and
 * answering ENOSYS once makes the kernel stop asking: a round trip less per
 * close and per fsync (sqlite3 and git sync often).
 */
import { constants as fsConstants } from 'node:fs';
import { fsError } from './fs-error.js';
import { entryOf, joinPath, signature, type Inode } from './fuse-attrs.js';
import type { FsContext } from './fuse-host.js';
import { applySetattr, creatorOf, dropPrivs, writable } from './fuse-setattr.js';
import type { CreateReply, LowLevelOps, OpenReply } from './fuse/types.js';
import type { FileNode } from './nodes.js';

const O_ACCMODE = 3;

interface FileHandle {
  inode: Inode;
  wrote: boolean;
}

export type FileOpNames = 'open' | 'read' | 'write' | 'release' | 'create';

export class FileOps {
  readonly #fs: FsContext;
  readonly #files = new Map<number, FileHandle>();
  #nextFh = 1;

  constructor(fs: FsContext) {
    this.#fs = fs;
  }

  /** Data files that open handles still read (a commit or reload must keep them). */
  openDataIds(): Set<string> {
    const ids = new Set<string>();
    for (const h of this.#files.values()) {
      const node = h.inode.node;
      if (node.type === 'file' && node.local) ids.add(node.local.dataId);
    }
    return ids;
  }

  #handle(fh: number): FileHandle {
    const h = this.#files.get(fh);
    if (!h) throw fsError('EBADF');
    return h;
  }

  #openFile(inode: Inode, node: FileNode): OpenReply {
    const fh = this.#nextFh++;
    this.#files.set(fh, { inode, wrote: false });
    inode.opens++;
    const sig = signature(node);
    const keepCache = inode.cached === sig;
    inode.cached = sig;
    return { fh, keepCache };
  }

  /** The kernel still holds the old mode (open and write replies carry no attributes): have it ask again. */
  #modeChanged(inode: Inode): void {
    this.#fs.inodes.session?.invalidateInode(inode.ino, -1, 0).catch((e: unknown) => this.#fs.host.log(`invalidating attributes after clearing set-user-ID: ${(e as Error).message}`));
  }

  readonly ops: Pick<LowLevelOps, FileOpNames> = {
    open: async (ctx, ino, flags) => {
      const { host, inodes } = this.#fs;
      const inode = inodes.get(ino);
      let node = await inodes.nodeOf(inode);
      if (node.type === 'dir') throw fsError('EISDIR');
      if (node.type !== 'file') throw fsError('ENXIO'); // the kernel opens fifos, sockets and devices itself
      const writing = (flags & O_ACCMODE) !== fsConstants.O_RDONLY;
      if (writing && host.view().opts.readOnly && !inode.orphan) throw fsError('EROFS');
      if ((flags & fsConstants.O_TRUNC) !== 0 && writing) {
        const dropped = await host.mutate(async (view) => {
          await applySetattr(this.#fs, view, inode, { size: 0 });
          // open(O_TRUNC) by a caller without CAP_FSETID clears set-user-ID/set-group-ID (the kernel says so).
          return ctx.killSuidgid && dropPrivs(this.#fs, view, inode, await inodes.nodeOf(inode));
        });
        host.changed();
        if (dropped) this.#modeChanged(inode);
        node = await inodes.nodeOf(inode);
      }
      // Opening for writing does not make the file local: write/truncate do that on first use (sqlite3 and git
      // open files O_RDWR just to read them; a mount that was only read must have nothing to commit).
      return this.#openFile(inode, node as FileNode);
    },

    read: async (_ctx, _ino, size, offset, fh) => {
      const inode = this.#handle(fh).inode;
      const node = await this.#fs.inodes.nodeOf(inode);
      if (node.type !== 'file') throw fsError('EISDIR');
      const buf = Buffer.allocUnsafe(Math.max(0, Math.min(size, node.size - offset)));
      if (buf.length === 0) return buf;
      const n = await inode.view.content.read(node, buf, buf.length, offset);
      return n === buf.length ? buf : buf.subarray(0, n);
    },

    write: async (ctx, _ino, data, offset, fh) => {
      const handle = this.#handle(fh);
      const inode = handle.inode;
      let dropped = false;
      const n = await this.#fs.host.mutate(async (view) => {
        const node = await writable(this.#fs, view, inode);
        const written = await inode.view.content.write(node, data, data.length, offset);
        inode.cached = signature(node); // the kernel's pages are what was just written
        // A write by a caller without CAP_FSETID clears set-user-ID/set-group-ID (the kernel says so: ctx.killSuidgid).
        if (ctx.killSuidgid) dropped = await dropPrivs(this.#fs, view, inode, node);
        return written;
      });
      handle.wrote = true;
      if (dropped) this.#modeChanged(inode);
      return n;
    },

    release: async (_ctx, _ino, fh) => {
      const handle = this.#files.get(fh);
      if (!handle) return;
      this.#files.delete(fh);
      handle.inode.opens--;
      this.#fs.inodes.release(handle.inode);
      const node = handle.inode.node;
      if (node.type === 'file' && node.local && !this.openDataIds().has(node.local.dataId)) this.#fs.host.released(node.local.dataId);
      if (handle.wrote) this.#fs.host.changed();
    },

    create: async (ctx, parent, name, mode, flags): Promise<CreateReply> => {
      const { host, inodes } = this.#fs;
      const reply = await host.mutate(async (view) => {
        const { dir, path } = await inodes.dirOf(parent, view);
        const existing = await view.child(dir, name);
        if (existing) {
          // The kernel asks to create only what its lookup did not find; another writer may have made it since.
          if ((flags & fsConstants.O_EXCL) !== 0) throw fsError('EEXIST');
          if (existing.type !== 'file') throw fsError('EISDIR');
          const inode = inodes.lookupOf(existing, view);
          if ((flags & fsConstants.O_TRUNC) !== 0) await applySetattr(this.#fs, view, inode, { size: 0 }, ctx.killSuidgid);
          return { entry: entryOf(inode, existing, host.owner), open: this.#openFile(inode, existing) };
        }
        const node = await view.create(joinPath(path, name), mode, creatorOf(host, ctx, dir));
        const inode = inodes.lookupOf(node, view);
        return { entry: entryOf(inode, node, host.owner), open: this.#openFile(inode, node) };
      });
      host.changed();
      return reply;
    },
  };
}
