/**
 * @module mount/mount-view
 * A mount's file tree: the base commit, fetched lazily one directory at a
 * time, with the dirty overlay on top. Every namespace change is applied to
 * the in-memory nodes and appended to the overlay journal before it answers,
 * so a restarted agent rebuilds the same view by replaying the journal onto
 * the same base (`replay`).
 *
 * Paths here are relative to the mount root ("/a/b"); `volumePath` maps them
 * into the volume when the mount is of a subtree (`--subpath`).
 */
import type * as wire from '@stowage/sdk/api/wire.js';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { isStowageError } from '@stowage/sdk/common/errors.js';
import { FileContent, type ContentContext } from './file-content.js';
import { fsError } from './fs-error.js';
import {
  ChildMap,
  isAttached,
  nowNs,
  pathOf,
  type DirNode,
  type FileNode,
  type Node,
  type NodeMeta,
  type NsTime,
  type SpecialNode,
} from './nodes.js';
import { journalTime, type JournalOp } from './overlay-store.js';
import { creatorOf, joinVolumePath, newMeta, NOBODY, nodeFromInfo, splitRel, type Creator } from './view-nodes.js';

/** Longest name a directory entry may have (bytes), as on Linux. */
export const NAME_MAX = 255;

export interface ViewOptions extends ContentContext {
  /** The volume path the mount root shows ("/" for the whole volume). */
  subpath: string;
  readOnly: boolean;
}

export class MountView {
  readonly root: DirNode;
  readonly content: FileContent;
  /** Live local files by data id: what a commit uploads. */
  readonly localFiles = new Map<string, FileNode>();
  /** Fifos, sockets and devices made here (see SpecialNode). */
  readonly specials = new Set<SpecialNode>();
  /** Special nodes of the view this one replaced, by the path of their directory: put back as it is listed. */
  #adopted = new Map<string, SpecialNode[]>();
  #replaying = false;

  constructor(
    readonly opts: ViewOptions,
    rootMeta: NodeMeta,
  ) {
    this.root = {
      type: 'dir',
      name: '',
      parent: null,
      ...rootMeta,
      children: null,
      subdirs: 0,
      basePath: opts.subpath,
      loading: null,
    };
    this.content = new FileContent(opts);
  }

  volumePath(rel: string): string {
    return joinVolumePath(this.opts.subpath, rel);
  }

  /** The children of a directory, listing it from the base on first access. */
  async children(dir: DirNode): Promise<ChildMap> {
    if (dir.children) return dir.children;
    dir.loading ??= (async () => {
      let entries: wire.FileInfo[] = [];
      if (dir.basePath !== null) {
        try {
          entries = await this.opts.remote.list(this.opts.base(), dir.basePath);
        } catch (e) {
          if (!isStowageError(e, 'NotFound')) throw e;
        }
      }
      const map = new ChildMap();
      for (const info of entries) map.set(info.name, nodeFromInfo(info, dir));
      for (const s of this.#adopted.get(pathOf(dir)) ?? []) {
        if (map.has(s.name)) continue;
        const copy: SpecialNode = { ...s, parent: dir };
        map.set(s.name, copy);
        this.specials.add(copy);
      }
      dir.subdirs = entries.filter((e) => e.type === 'dir').length;
      dir.children = map;
    })().finally(() => {
      dir.loading = null;
    });
    await dir.loading;
    return dir.children!;
  }

  /** Carries the special nodes of the view this one replaces over (lazily, as their directories are listed). */
  adoptSpecials(old: MountView): void {
    for (const s of old.specials) {
      if (!s.parent || !isAttached(s, old.root)) continue;
      const dir = pathOf(s.parent);
      const list = this.#adopted.get(dir) ?? [];
      list.push(s);
      this.#adopted.set(dir, list);
    }
  }

  /** The child `name` of `dir`, or undefined; ENAMETOOLONG for a name no directory can hold. */
  async child(dir: DirNode, name: string): Promise<Node | undefined> {
    if (Buffer.byteLength(name) > NAME_MAX) throw fsError('ENAMETOOLONG');
    return (await this.children(dir)).get(name);
  }

  /** The node at `path`; ENOENT / ENOTDIR as the kernel expects. */
  async resolve(path: string): Promise<Node> {
    let node: Node = this.root;
    for (const part of splitRel(path)) {
      if (node.type !== 'dir') throw fsError('ENOTDIR');
      const next: Node | undefined = await this.child(node, part);
      if (!next) throw fsError('ENOENT');
      node = next;
    }
    return node;
  }

  async #parentOf(path: string): Promise<{ dir: DirNode; name: string }> {
    const parts = splitRel(path);
    const name = parts.pop();
    if (name === undefined) throw fsError('EBUSY', 'the mount root');
    if (Buffer.byteLength(name) > NAME_MAX) throw fsError('ENAMETOOLONG');
    const dir = await this.resolve('/' + parts.join('/'));
    if (dir.type !== 'dir') throw fsError('ENOTDIR');
    await this.children(dir);
    return { dir, name };
  }

  #writable(): void {
    if (this.opts.readOnly) throw fsError('EROFS');
  }

  #journal(op: JournalOp): void {
    if (!this.#replaying) this.opts.overlay.append(op);
  }

  /** Journals a change to `node` unless it is a special node (which the volume never holds). */
  #journalFor(node: Node, op: JournalOp): void {
    if (node.type !== 'special') this.#journal(op);
  }

  #touch(dir: DirNode): void {
    dir.mtime = dir.ctime = nowNs();
  }

  /** Removes a node from the tree (unlink, rmdir, or replaced by a rename) and forgets its local bytes. */
  #detach(node: Node): void {
    if (node.parent?.children?.delete(node.name) && node.type === 'dir') node.parent.subdirs--;
    node.ctime = nowNs();
    if (node.type === 'special') this.specials.delete(node);
    if (node.type === 'file' && node.local) {
      this.content.close(node.local);
      this.localFiles.delete(node.local.dataId);
    }
  }

  async readdir(path: string): Promise<string[]> {
    const dir = await this.resolve(path);
    if (dir.type !== 'dir') throw fsError('ENOTDIR');
    return [...(await this.children(dir)).keys()];
  }

  async mkdir(path: string, mode: number, creator: Creator = NOBODY): Promise<DirNode> {
    this.#writable();
    const { dir, name } = await this.#parentOf(path);
    if (dir.children!.has(name)) throw fsError('EEXIST');
    const node: DirNode = {
      type: 'dir',
      name,
      parent: dir,
      ...newMeta(mode, creator),
      children: new ChildMap(),
      subdirs: 0,
      basePath: null,
      loading: null,
    };
    dir.children!.set(name, node);
    dir.subdirs++;
    this.#touch(dir);
    this.#journal({ op: 'mkdir', path, mode: node.mode, ...creator });
    return node;
  }

  async symlink(target: string, path: string, creator: Creator = NOBODY): Promise<Node> {
    this.#writable();
    const { dir, name } = await this.#parentOf(path);
    if (dir.children!.has(name)) throw fsError('EEXIST');
    const node: Node = { type: 'symlink', name, parent: dir, ...newMeta(0o777, creator), target };
    dir.children!.set(name, node);
    this.#touch(dir);
    this.#journal({ op: 'symlink', path, target, ...creator });
    return node;
  }

  /** A fifo, socket or device node: in this mount only (see SpecialNode). */
  async mknod(path: string, kind: number, mode: number, rdev: number, creator: Creator = NOBODY): Promise<SpecialNode> {
    this.#writable();
    const { dir, name } = await this.#parentOf(path);
    if (dir.children!.has(name)) throw fsError('EEXIST');
    const node: SpecialNode = { type: 'special', name, parent: dir, ...newMeta(mode, creator), kind, rdev };
    dir.children!.set(name, node);
    this.specials.add(node);
    this.#touch(dir);
    return node;
  }

  /** Creates an empty regular file (or, when replaying, re-attaches its data file). */
  async create(path: string, mode: number, creator: Creator = NOBODY, dataId?: string): Promise<FileNode> {
    this.#writable();
    const { dir, name } = await this.#parentOf(path);
    const existing = dir.children!.get(name);
    if (existing) {
      if (existing.type !== 'file') throw fsError('EEXIST');
      this.#detach(existing);
    }
    const node: FileNode = {
      type: 'file',
      name,
      parent: dir,
      ...newMeta(mode, creator),
      size: 0,
      chunkSize: SMALL_CHUNK_SIZE,
      baseChunks: [],
      basePath: null,
      local: null,
      lastReadEnd: -1,
    };
    if (dataId === undefined) node.local = this.content.createLocal();
    else this.content.restore(node, dataId, true);
    this.#journal({ op: 'create', path, mode: node.mode, dataId: node.local!.dataId, ...creator });
    dir.children!.set(name, node);
    this.localFiles.set(node.local!.dataId, node);
    this.#touch(dir);
    return node;
  }

  /** The file at `path`, made local so it can be written (journaled the first time). */
  async writableFile(path: string): Promise<FileNode> {
    this.#writable();
    const node = await this.resolve(path);
    if (node.type === 'dir') throw fsError('EISDIR');
    if (node.type !== 'file') throw fsError('EINVAL');
    return this.localizeNode(node, path);
  }

  localizeNode(node: FileNode, path: string, dataId?: string): FileNode {
    if (node.local) return node;
    if (dataId === undefined) node.local = this.content.localize(node);
    else this.content.restore(node, dataId, false);
    this.localFiles.set(node.local!.dataId, node);
    this.#journal({ op: 'localize', path, dataId: node.local!.dataId });
    return node;
  }

  /**
   * Makes a file that is no longer in the tree (unlinked or replaced while
   * open) writable: its bytes go to a data file no commit uploads.
   */
  localizeDetached(node: FileNode): FileNode {
    this.#writable();
    if (!node.local) node.local = this.content.localize(node);
    return node;
  }

  async unlink(path: string): Promise<Node> {
    this.#writable();
    const { dir, name } = await this.#parentOf(path);
    const node = dir.children!.get(name);
    if (!node) throw fsError('ENOENT');
    if (node.type === 'dir') throw fsError('EISDIR');
    this.#detach(node);
    this.#touch(dir);
    this.#journalFor(node, { op: 'unlink', path });
    return node;
  }

  async rmdir(path: string): Promise<Node> {
    this.#writable();
    const { dir, name } = await this.#parentOf(path);
    const node = dir.children!.get(name);
    if (!node) throw fsError('ENOENT');
    if (node.type !== 'dir') throw fsError('ENOTDIR');
    if ((await this.children(node)).size > 0) throw fsError('ENOTEMPTY');
    this.#detach(node);
    this.#touch(dir);
    this.#journal({ op: 'rmdir', path });
    return node;
  }

  /** Moves `from` to `to`, replacing what is there; answers the node replaced, if any. */
  async rename(from: string, to: string, noReplace = false): Promise<Node | undefined> {
    this.#writable();
    const src = await this.#parentOf(from);
    const dst = await this.#parentOf(to);
    const node = src.dir.children!.get(src.name);
    if (!node) throw fsError('ENOENT');
    for (let d: DirNode | null = dst.dir; d; d = d.parent)
      if (d === node) throw fsError('EINVAL', 'cannot move a directory into itself');
    const existing = dst.dir.children!.get(dst.name);
    if (existing && noReplace) throw fsError('EEXIST');
    if (existing === node) return undefined;
    if (existing) {
      if (node.type === 'dir' && existing.type !== 'dir') throw fsError('ENOTDIR');
      if (node.type !== 'dir' && existing.type === 'dir') throw fsError('EISDIR');
      if (existing.type === 'dir' && (await this.children(existing)).size > 0) throw fsError('ENOTEMPTY');
      this.#detach(existing);
    }
    src.dir.children!.delete(src.name);
    if (node.type === 'dir') src.dir.subdirs--;
    node.name = dst.name;
    node.parent = dst.dir;
    node.ctime = nowNs();
    dst.dir.children!.set(dst.name, node);
    if (node.type === 'dir') dst.dir.subdirs++;
    this.#touch(src.dir);
    this.#touch(dst.dir);
    // A special node moves in this mount only; what it replaced is gone from the volume all the same.
    if (node.type !== 'special') this.#journal({ op: 'rename', from, to });
    else if (existing && existing.type !== 'special') this.#journal({ op: 'unlink', path: to });
    return existing;
  }

  async chmod(path: string, mode: number): Promise<void> {
    this.#writable();
    const node = await this.resolve(path);
    node.mode = mode & 0o7777;
    node.ctime = nowNs();
    if (node === this.root) return; // the mount root is not an entry of the volume: nothing to commit
    this.#journalFor(node, { op: 'chmod', path, mode: node.mode });
  }

  /** Records a new owner: a number, or null for the mount's owner; undefined leaves it. */
  async chown(path: string, uid: number | null | undefined, gid: number | null | undefined): Promise<void> {
    this.#writable();
    const node = await this.resolve(path);
    if (uid !== undefined) node.uid = uid;
    if (gid !== undefined) node.gid = gid;
    node.ctime = nowNs();
    if (node === this.root) return;
    this.#journalFor(node, {
      op: 'chown',
      path,
      ...(uid !== undefined ? { uid } : {}),
      ...(gid !== undefined ? { gid } : {}),
    });
  }

  async utimens(path: string, times: { atime?: NsTime; mtime?: NsTime }): Promise<void> {
    this.#writable();
    const node = await this.resolve(path);
    if (times.atime !== undefined) node.atime = times.atime;
    if (times.mtime !== undefined) {
      if (node.type === 'file') await this.content.setMtime(node, times.mtime);
      else node.mtime = times.mtime;
    }
    node.ctime = nowNs();
    if (node === this.root) return;
    this.#journalFor(node, {
      op: 'utimens',
      path,
      ...(times.atime !== undefined ? { atime: String(times.atime) } : {}),
      ...(times.mtime !== undefined ? { mtime: String(times.mtime) } : {}),
    });
  }

  async truncate(path: string, size: number): Promise<void> {
    const node = await this.writableFile(path);
    await this.content.truncate(node, size);
  }

  /** Rebuilds the overlay view after a restart: the journal applied again to the same base, without journaling it twice. */
  async replay(ops: readonly JournalOp[]): Promise<void> {
    this.#replaying = true;
    try {
      for (const op of ops) {
        switch (op.op) {
          case 'mkdir':
            await this.mkdir(op.path, op.mode, creatorOf(op));
            break;
          case 'symlink':
            await this.symlink(op.target, op.path, creatorOf(op));
            break;
          case 'create':
            await this.create(op.path, op.mode, creatorOf(op), op.dataId);
            break;
          case 'localize': {
            const node = await this.resolve(op.path);
            if (node.type !== 'file') throw new Error(`journal: ${op.path} is not a file`);
            this.localizeNode(node, op.path, op.dataId);
            break;
          }
          case 'unlink':
            await this.unlink(op.path);
            break;
          case 'rmdir':
            await this.rmdir(op.path);
            break;
          case 'rename':
            await this.rename(op.from, op.to);
            break;
          case 'chmod':
            await this.chmod(op.path, op.mode);
            break;
          case 'chown':
            await this.chown(op.path, op.uid, op.gid);
            break;
          case 'utimens': {
            const node = await this.resolve(op.path);
            const mtime = journalTime(op.mtime);
            const atime = journalTime(op.atime);
            if (node.type === 'file' && node.local && mtime !== undefined) {
              // A local file's mtime is its data file's (writes after this change it); the journal only restores the
              // nanoseconds the data file's clock could not hold, when it still shows this time.
              const diff = node.mtime - mtime;
              if (diff > -2000n && diff < 2000n) node.mtime = mtime;
              if (atime !== undefined) node.atime = atime;
            } else await this.utimens(op.path, { atime, mtime });
            break;
          }
        }
      }
    } finally {
      this.#replaying = false;
    }
  }

  /** Closes data files (before the overlay is reset or the agent stops). */
  closeAll(): void {
    this.content.closeAll();
  }
}
