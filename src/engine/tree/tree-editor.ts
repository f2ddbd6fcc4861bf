/**
 * @module engine/tree/tree-editor
 * Applies edits to an immutable tree by opening only the directories on the
 * edited paths, then writes new nodes bottom-up for the directories that
 * changed. Untouched subtrees keep their hashes and are shared, so the cost
 * of a commit follows the depth of the paths it edits, not the size of the
 * volume. An open directory is its old top node plus the entries changed in
 * it: nothing of a wide directory is read but the pages that hold the edited
 * names, and flushing rewrites only the pages around them (engine/tree/dir-pages).
 *
 * Invariant: every operation checks before it mutates. An operation that
 * throws (NotFound, Conflict, AlreadyExists, InvalidArgument) leaves the
 * editor as it was, so a best-effort commit can skip it and go on. Parents
 * created on the way (`createParents`) are only created once nothing can
 * fail any more: below a directory just created, nothing exists to clash.
 */
import { AlreadyExistsError, ConflictError, InvalidArgumentError, NotFoundError } from '@stowage/sdk/common/errors.js';
import type { TreeHash } from '@stowage/sdk/common/ids.js';
import { isWithin, splitPath, type VolumePath } from '@stowage/sdk/common/paths.js';
import type { MetadataOps, TreeRecord } from '../../stores/metadata-store.js';
import { Pacer } from '@stowage/sdk/common/concurrency.js';
import { compareNames, EMPTY_TREE, entryTimes, type DirEntry, type Entry, type EntryMeta } from './tree-codec.js';
import { DEFAULT_PAGE_RULES, editDir, type PageRules } from './dir-pages.js';
import type { TreeReader } from './tree-reader.js';

/** A directory opened for editing: its old top node and what changed in it. */
class OpenDir {
  /** Entries set (an entry) or removed (null) since opening; the rest are as in `base`. */
  readonly changes = new Map<string, Entry | null>();
  readonly children = new Map<string, OpenDir>();
  dirty = false;
  /** Entries added minus entries removed, against `base`. */
  delta = 0;
  constructor(public base: TreeHash) {}
}

/** What a setattr sets: only the given fields change; `uid`/`gid` null removes the recorded owner. */
export interface SetAttrs {
  mode?: number;
  mtime?: number;
  mtimeNs?: number;
  atime?: number;
  atimeNs?: number;
  ctime?: number;
  ctimeNs?: number;
  uid?: number | null;
  gid?: number | null;
}

export interface FlushResult {
  root: TreeHash;
  size: number;
  fileCount: number;
  /** Nodes that did not exist before this edit, to be stored. */
  newTrees: TreeRecord[];
}

export class TreeEditor {
  private readonly pacer = new Pacer();

  private constructor(
    private readonly reader: TreeReader,
    private readonly root: OpenDir,
    private readonly rules: PageRules,
  ) {}

  /** Opens the tree `root` for editing; `rules` say where wide directories are cut into pages. */
  static async open(reader: TreeReader, root: TreeHash, rules: PageRules = DEFAULT_PAGE_RULES): Promise<TreeEditor> {
    await reader.get(root);
    return new TreeEditor(reader, new OpenDir(root), rules);
  }

  /** The current entry `name` of an open directory. */
  private async entryOf(dir: OpenDir, name: string): Promise<Entry | undefined> {
    const changed = dir.changes.get(name);
    if (changed !== undefined) return changed ?? undefined;
    return this.reader.find(dir.base, name);
  }

  /** Sets entry `name`; `existed` says whether one was there (the caller looked it up already). */
  private setEntry(dir: OpenDir, name: string, entry: Entry, existed: boolean): void {
    if (!existed) dir.delta++;
    dir.changes.set(name, entry);
  }

  /** Removes entry `name`, which the caller found there. */
  private deleteEntry(dir: OpenDir, name: string): void {
    dir.delta--;
    dir.changes.set(name, null);
  }

  /** The current entry at `path` (directories' hashes may be stale until flush). */
  async get(path: VolumePath): Promise<Entry | undefined> {
    const parts = splitPath(path);
    if (parts.length === 0) return undefined;
    const chain = await this.walk(parts.slice(0, -1), path, false);
    return chain ? this.entryOf(chain.at(-1)!, parts.at(-1)!) : undefined;
  }

  /** Creates or replaces a file or symlink. Parents are created when `createParents`, else NotFound. Replacing a directory is a Conflict. */
  async put(path: VolumePath, entry: Entry, createParents: boolean): Promise<void> {
    const { chain, name } = await this.parentOf(path, createParents);
    const dir = chain.at(-1)!;
    const existing = await this.entryOf(dir, name);
    if (existing?.type === 'dir') throw new ConflictError(`cannot write ${path}: it is a directory`);
    this.setEntry(dir, name, { ...entry, name }, existing !== undefined);
    markDirty(chain);
  }

  /** Creates a directory and its parents (which get the same mode, times and owner); an existing directory is kept as it is. */
  async mkdir(path: VolumePath, mode: number, mtime: number, meta: EntryMeta = {}): Promise<void> {
    const parts = splitPath(path);
    if (parts.length === 0) return;
    const chain = await this.walk(parts.slice(0, -1), path, true, mode, mtime, meta);
    const dir = chain!.at(-1)!;
    const name = parts.at(-1)!;
    const existing = await this.entryOf(dir, name);
    if (existing?.type === 'dir') return;
    if (existing) throw new ConflictError(`cannot create directory ${path}: a ${existing.type} exists there`);
    this.setEntry(dir, name, newDirEntry(name, mode, mtime, meta), false);
    dir.children.set(name, new OpenDir(EMPTY_TREE.hash));
    markDirty(chain!);
  }

  /** Removes a file, symlink or (recursive) directory. Returns false when nothing was there. */
  async remove(path: VolumePath, recursive: boolean): Promise<boolean> {
    const parts = splitPath(path);
    if (parts.length === 0) {
      if (!recursive)
        throw new InvalidArgumentError('cannot remove the root directory (pass recursive to empty the volume)');
      this.root.base = EMPTY_TREE.hash;
      this.root.changes.clear();
      this.root.children.clear();
      this.root.delta = 0;
      this.root.dirty = true;
      return true;
    }
    const chain = await this.walk(parts.slice(0, -1), path, false);
    const dir = chain?.at(-1);
    const name = parts.at(-1)!;
    const existing = dir && (await this.entryOf(dir, name));
    if (!dir || !existing) return false;
    if (existing.type === 'dir' && !recursive && !(await this.isEmptyDir(dir, name, existing))) {
      throw new ConflictError(`directory not empty: ${path} (remove it recursively)`);
    }
    this.deleteEntry(dir, name);
    dir.children.delete(name);
    markDirty(chain!);
    return true;
  }

  /** Moves a file or directory. The target's parents are created; an existing target needs `overwrite`. */
  async move(from: VolumePath, to: VolumePath, overwrite: boolean): Promise<void> {
    if (from === '/' || to === '/') throw new InvalidArgumentError('cannot move the root directory');
    if (from === to) return;
    if (isWithin(to, from)) throw new InvalidArgumentError(`cannot move ${from} into itself (${to})`);
    const src = await this.parentOf(from, false).catch((e: unknown) => {
      if (e instanceof NotFoundError) throw new NotFoundError(`cannot move ${from}: no such file or directory`);
      throw e;
    });
    const srcDir = src.chain.at(-1)!;
    const entry = await this.entryOf(srcDir, src.name);
    if (!entry) throw new NotFoundError(`cannot move ${from}: no such file or directory`);
    const dst = await this.parentOf(to, true);
    const dstDir = dst.chain.at(-1)!;
    const existing = await this.entryOf(dstDir, dst.name);
    if (existing) {
      if (!overwrite) throw new AlreadyExistsError(`cannot move ${from} to ${to}: the target exists`);
      if ((existing.type === 'dir') !== (entry.type === 'dir'))
        throw new ConflictError(`cannot move ${from} to ${to}: one is a directory and the other is not`);
      if (existing.type === 'dir' && !(await this.isEmptyDir(dstDir, dst.name, existing)))
        throw new ConflictError(`cannot move ${from} to ${to}: the target directory is not empty`);
    }
    const opened = srcDir.children.get(src.name);
    this.deleteEntry(srcDir, src.name);
    srcDir.children.delete(src.name);
    this.setEntry(dstDir, dst.name, { ...entry, name: dst.name }, existing !== undefined);
    dstDir.children.delete(dst.name);
    if (opened) dstDir.children.set(dst.name, opened);
    markDirty(src.chain);
    markDirty(dst.chain);
  }

  /**
   * Changes the given attributes of an existing entry; every other one keeps
   * the value a reader saw before. A time given without its ns has ns 0. An
   * atime or ctime that was absent ("same as mtime") is spelt out first when
   * mtime changes without it, so a mtime-only change (`touch -m`) leaves it
   * where it was. uid/gid null removes the recorded owner.
   */
  async setattr(path: VolumePath, attrs: SetAttrs): Promise<void> {
    const { chain, name } = await this.parentOf(path, false);
    const dir = chain.at(-1)!;
    const existing = await this.entryOf(dir, name);
    if (!existing) throw new NotFoundError(`no such file or directory: ${path}`);
    const t = entryTimes(existing);
    const next: Entry = {
      ...existing,
      mode: attrs.mode ?? existing.mode,
      mtime: attrs.mtime ?? t.mtime,
      mtimeNs: attrs.mtime !== undefined ? (attrs.mtimeNs ?? 0) : t.mtimeNs,
      atime: attrs.atime ?? t.atime,
      atimeNs: attrs.atime !== undefined ? (attrs.atimeNs ?? 0) : t.atimeNs,
      ctime: attrs.ctime ?? t.ctime,
      ctimeNs: attrs.ctime !== undefined ? (attrs.ctimeNs ?? 0) : t.ctimeNs,
    };
    for (const k of ['uid', 'gid'] as const) {
      const v = attrs[k];
      if (v === null) delete next[k];
      else if (v !== undefined) next[k] = v;
    }
    this.setEntry(dir, name, next, true);
    markDirty(chain);
  }

  /** Encodes every changed directory, children first, re-cutting only the pages around each change. */
  async flush(): Promise<FlushResult> {
    const newTrees: TreeRecord[] = [];
    const { hash, size, fileCount } = await this.flushDir(this.root, newTrees);
    return { root: hash ?? this.root.base, size, fileCount, newTrees };
  }

  private async flushDir(
    dir: OpenDir,
    out: TreeRecord[],
  ): Promise<{ hash: TreeHash | undefined; size: number; fileCount: number }> {
    if (!dir.dirty) return { hash: undefined, ...(await this.reader.totals(dir.base)) };
    for (const [name, child] of dir.children) {
      if (!child.dirty) continue;
      const entry = await this.entryOf(dir, name);
      if (entry?.type !== 'dir') continue;
      const flushed = await this.flushDir(child, out);
      if (flushed.hash)
        dir.changes.set(name, { ...entry, tree: flushed.hash, size: flushed.size, fileCount: flushed.fileCount });
    }
    const edits = [...dir.changes].sort(([a], [b]) => compareNames(a, b));
    const edited = await editDir(this.reader, dir.base, edits, this.rules, this.pacer);
    for (const node of edited.nodes) {
      this.reader.remember(node.tree);
      out.push({ hash: node.hash, data: node.data });
    }
    return { hash: edited.hash, size: edited.size, fileCount: edited.fileCount };
  }

  private async isEmptyDir(parent: OpenDir, name: string, entry: DirEntry): Promise<boolean> {
    const opened = parent.children.get(name);
    return opened ? (await this.reader.totals(opened.base)).count + opened.delta === 0 : entry.tree === EMPTY_TREE.hash;
  }

  /** The chain of open directories down to the parent of `path`, and the last name. */
  private async parentOf(path: VolumePath, create: boolean): Promise<{ chain: OpenDir[]; name: string }> {
    const parts = splitPath(path);
    if (parts.length === 0) throw new InvalidArgumentError('this operation needs a path below "/"');
    const chain = await this.walk(parts.slice(0, -1), path, create);
    if (!chain) throw new NotFoundError(`parent directory of ${path} does not exist`);
    return { chain, name: parts.at(-1)! };
  }

  /**
   * Opens each directory along `parts`, creating missing ones when `create`.
   * Returns undefined when one is missing and `create` is false; a
   * non-directory on the way is a Conflict.
   */
  private async walk(
    parts: string[],
    fullPath: string,
    create: boolean,
    mode = 0o755,
    mtime = Date.now(),
    meta: EntryMeta = {},
  ): Promise<OpenDir[] | undefined> {
    const chain = [this.root];
    let dir = this.root;
    for (let i = 0; i < parts.length; i++) {
      const name = parts[i]!;
      let child = dir.children.get(name);
      if (!child) {
        const entry = await this.entryOf(dir, name);
        if (!entry) {
          if (!create) return undefined;
          this.setEntry(dir, name, newDirEntry(name, mode, mtime, meta), false);
          child = new OpenDir(EMPTY_TREE.hash);
          markDirty(chain);
        } else if (entry.type !== 'dir') {
          throw new ConflictError(`not a directory: /${parts.slice(0, i + 1).join('/')} (on the way to ${fullPath})`);
        } else {
          child = new OpenDir(entry.tree);
        }
        dir.children.set(name, child);
      }
      chain.push(child);
      dir = child;
    }
    return chain;
  }
}

function newDirEntry(name: string, mode: number, mtime: number, meta: EntryMeta = {}): DirEntry {
  return { type: 'dir', name, mode, mtime, tree: EMPTY_TREE.hash, size: 0, fileCount: 0, ...meta };
}

function markDirty(chain: OpenDir[]): void {
  for (const d of chain) d.dirty = true;
}

/**
 * Stores new nodes in slices of about 256 KiB with a turn of the event loop
 * between them: an embedded store writes synchronously, and the nodes of a
 * 100,000-entry commit (~13 MiB) would otherwise hold the loop for a few
 * hundred ms.
 * Nodes are content-addressed, so storing them in several statements is safe.
 */
export async function storeTrees(
  md: Pick<MetadataOps, 'putTrees'>,
  trees: readonly TreeRecord[],
  now: Date,
): Promise<void> {
  let start = 0;
  while (start < trees.length) {
    let end = start;
    let bytes = 0;
    while (end < trees.length && (end === start || bytes + trees[end]!.data.byteLength <= 256 * 1024))
      bytes += trees[end++]!.data.byteLength;
    await md.putTrees(trees.slice(start, end), now);
    start = end;
    if (start < trees.length) await new Promise<void>((resolve) => setImmediate(resolve));
  }
}
