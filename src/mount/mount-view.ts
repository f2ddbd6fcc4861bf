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
import type * as wire from '../api/wire.js';
import { SMALL_CHUNK_SIZE } from '../common/chunking.js';
import { isStowageError } from '../common/errors.js';
import { FileContent, type ContentContext } from './file-content.js';
import { fsError } from './fs-error.js';
import type { DirNode, FileNode, Node } from './nodes.js';
import type { JournalOp } from './overlay-store.js';

/** Longest name a directory entry may have (bytes), as on Linux. */
const NAME_MAX = 255;

export interface ViewOptions extends ContentContext {
  /** The volume path the mount root shows ("/" for the whole volume). */
  subpath: string;
  readOnly: boolean;
}

/**
 * The name libfuse (mounted without hard_remove) gives a file unlinked while
 * still open: it renames it to this name in the same directory and unlinks
 * it on the last close. Such a file is deleted as far as the volume goes: the
 * hiding rename is journaled as the unlink it stands for, and nothing done to
 * the hidden name is journaled (or committed, see commit-builder.ts).
 * Without this, a commit while the file was open published
 * ".fuse_hidden…" files into the volume, and the final unlink after the
 * close left the mount with a pending change nobody made.
 */
export const FUSE_HIDDEN_RE = /^\.fuse_hidden[0-9a-f]{16}$/;

function isFuseHidden(path: string): boolean {
  return FUSE_HIDDEN_RE.test(path.slice(path.lastIndexOf('/') + 1));
}

function splitRel(path: string): string[] {
  return path.split('/').filter((p) => p.length > 0);
}

export function joinVolumePath(root: string, rel: string): string {
  const parts = [...splitRel(root), ...splitRel(rel)];
  return '/' + parts.join('/');
}

function nodeFromInfo(info: wire.FileInfo, parent: DirNode): Node {
  const base = { name: info.name, parent, mode: info.mode & 0o7777, mtime: info.mtime };
  switch (info.type) {
    case 'dir':
      return { ...base, type: 'dir', children: null, basePath: info.path, loading: null };
    case 'symlink':
      return { ...base, type: 'symlink', target: info.target ?? '' };
    case 'file':
      return { ...base, type: 'file', size: info.size, chunkSize: info.chunkSize ?? SMALL_CHUNK_SIZE, baseChunks: info.chunks ?? [], basePath: info.path, local: null, lastReadEnd: -1 };
  }
}

export class MountView {
  readonly root: DirNode;
  readonly content: FileContent;
  /** Live local files by data id: what a commit uploads. */
  readonly localFiles = new Map<string, FileNode>();
  #replaying = false;

  constructor(readonly opts: ViewOptions, rootMeta: { mode: number; mtime: number }) {
    this.root = { type: 'dir', name: '', parent: null, mode: rootMeta.mode, mtime: rootMeta.mtime, children: null, basePath: opts.subpath, loading: null };
    this.content = new FileContent(opts);
  }

  volumePath(rel: string): string {
    return joinVolumePath(this.opts.subpath, rel);
  }

  /** The children of a directory, listing it from the base on first access. */
  async children(dir: DirNode): Promise<Map<string, Node>> {
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
      const map = new Map<string, Node>();
      for (const info of entries) map.set(info.name, nodeFromInfo(info, dir));
      dir.children = map;
    })().finally(() => {
      dir.loading = null;
    });
    await dir.loading;
    return dir.children!;
  }

  /** The node at `path`; ENOENT / ENOTDIR as the kernel expects. */
  async resolve(path: string): Promise<Node> {
    let node: Node = this.root;
    for (const part of splitRel(path)) {
      if (node.type !== 'dir') throw fsError('ENOTDIR');
      const next: Node | undefined = (await this.children(node)).get(part);
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
    if ('path' in op && isFuseHidden(op.path)) return; // a file libfuse hid: already deleted for the volume
    if (!this.#replaying) this.opts.overlay.append(op);
  }

  #touch(dir: DirNode): void {
    dir.mtime = Date.now();
  }

  /** Removes a node from the tree (unlink, rmdir, or replaced by a rename) and forgets its local bytes. */
  #detach(node: Node): void {
    node.parent?.children?.delete(node.name);
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

  async mkdir(path: string, mode: number): Promise<void> {
    this.#writable();
    const { dir, name } = await this.#parentOf(path);
    if (dir.children!.has(name)) throw fsError('EEXIST');
    dir.children!.set(name, { type: 'dir', name, parent: dir, mode: mode & 0o7777, mtime: Date.now(), children: new Map(), basePath: null, loading: null });
    this.#touch(dir);
    this.#journal({ op: 'mkdir', path, mode: mode & 0o7777 });
  }

  async symlink(target: string, path: string): Promise<void> {
    this.#writable();
    const { dir, name } = await this.#parentOf(path);
    if (dir.children!.has(name)) throw fsError('EEXIST');
    dir.children!.set(name, { type: 'symlink', name, parent: dir, mode: 0o777, mtime: Date.now(), target });
    this.#touch(dir);
    this.#journal({ op: 'symlink', path, target });
  }

  /** Creates an empty regular file (or, when replaying, re-attaches its data file). */
  async create(path: string, mode: number, dataId?: string): Promise<FileNode> {
    this.#writable();
    const { dir, name } = await this.#parentOf(path);
    const existing = dir.children!.get(name);
    if (existing) {
      if (existing.type !== 'file') throw fsError('EEXIST');
      this.#detach(existing);
    }
    const node: FileNode = { type: 'file', name, parent: dir, mode: mode & 0o7777, mtime: Date.now(), size: 0, chunkSize: SMALL_CHUNK_SIZE, baseChunks: [], basePath: null, local: null, lastReadEnd: -1 };
    if (dataId === undefined) node.local = this.content.createLocal();
    else this.content.restore(node, dataId);
    dir.children!.set(name, node);
    this.localFiles.set(node.local!.dataId, node);
    this.#touch(dir);
    this.#journal({ op: 'create', path, mode: node.mode, dataId: node.local!.dataId });
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
    else this.content.restore(node, dataId);
    this.localFiles.set(node.local!.dataId, node);
    this.#journal({ op: 'localize', path, dataId: node.local!.dataId });
    return node;
  }

  async unlink(path: string): Promise<void> {
    this.#writable();
    const { dir, name } = await this.#parentOf(path);
    const node = dir.children!.get(name);
    if (!node) throw fsError('ENOENT');
    if (node.type === 'dir') throw fsError('EISDIR');
    this.#detach(node);
    this.#touch(dir);
    this.#journal({ op: 'unlink', path });
  }

  async rmdir(path: string): Promise<void> {
    this.#writable();
    const { dir, name } = await this.#parentOf(path);
    const node = dir.children!.get(name);
    if (!node) throw fsError('ENOENT');
    if (node.type !== 'dir') throw fsError('ENOTDIR');
    if ((await this.children(node)).size > 0) throw fsError('ENOTEMPTY');
    this.#detach(node);
    this.#touch(dir);
    this.#journal({ op: 'rmdir', path });
  }

  async rename(from: string, to: string): Promise<void> {
    this.#writable();
    const src = await this.#parentOf(from);
    const dst = await this.#parentOf(to);
    const node = src.dir.children!.get(src.name);
    if (!node) throw fsError('ENOENT');
    for (let d: DirNode | null = dst.dir; d; d = d.parent) if (d === node) throw fsError('EINVAL', 'cannot move a directory into itself');
    const existing = dst.dir.children!.get(dst.name);
    if (existing === node) return;
    if (existing) {
      if (node.type === 'dir' && existing.type !== 'dir') throw fsError('ENOTDIR');
      if (node.type !== 'dir' && existing.type === 'dir') throw fsError('EISDIR');
      if (existing.type === 'dir' && (await this.children(existing)).size > 0) throw fsError('ENOTEMPTY');
      this.#detach(existing);
    }
    src.dir.children!.delete(src.name);
    node.name = dst.name;
    node.parent = dst.dir;
    dst.dir.children!.set(dst.name, node);
    this.#touch(src.dir);
    this.#touch(dst.dir);
    if (node.type !== 'dir' && isFuseHidden(to) && !isFuseHidden(from)) this.#journal({ op: 'unlink', path: from });
    else this.#journal({ op: 'rename', from, to });
  }

  async chmod(path: string, mode: number): Promise<void> {
    this.#writable();
    const node = await this.resolve(path);
    if (node === this.root) return;
    node.mode = mode & 0o7777;
    this.#journal({ op: 'chmod', path, mode: node.mode });
  }

  async utimens(path: string, mtime: number): Promise<void> {
    this.#writable();
    const node = await this.resolve(path);
    if (node === this.root) return;
    if (node.type === 'file') this.content.setMtime(node, mtime);
    else node.mtime = mtime;
    this.#journal({ op: 'utimens', path, mtime });
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
          case 'mkdir': await this.mkdir(op.path, op.mode); break;
          case 'symlink': await this.symlink(op.target, op.path); break;
          case 'create': await this.create(op.path, op.mode, op.dataId); break;
          case 'localize': {
            const node = await this.resolve(op.path);
            if (node.type !== 'file') throw new Error(`journal: ${op.path} is not a file`);
            this.localizeNode(node, op.path, op.dataId);
            break;
          }
          case 'unlink': await this.unlink(op.path); break;
          case 'rmdir': await this.rmdir(op.path); break;
          case 'rename': await this.rename(op.from, op.to); break;
          case 'chmod': await this.chmod(op.path, op.mode); break;
          case 'utimens': {
            const node = await this.resolve(op.path);
            if (node.type !== 'file' || !node.local) await this.utimens(op.path, op.mtime); // a local file's mtime is its data file's
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
