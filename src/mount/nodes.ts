/**
 * @module mount/nodes
 * The in-memory nodes of a mount's view. A node starts as a copy of an entry
 * of the base commit (with `basePath`, where it is in that commit, so its
 * directory listing or chunks can be fetched lazily) or is created locally.
 * Directory children are loaded on first access (`children === null` until
 * then); a file's bytes come from base chunks, the overlay's data file, or
 * both (see file-content.ts).
 */
export interface LocalFile {
  dataId: string;
  /** Chunk indexes rewritten locally; indexes >= baseChunks.length are always local. */
  dirty: Set<number>;
  /** Chunks being copied from the base into the data file (one copy each, however many writers). */
  materializing: Map<number, Promise<void>>;
}

interface NodeBase {
  name: string;
  parent: DirNode | null;
  /** Permission bits only (0o7777). */
  mode: number;
  /** Milliseconds since the epoch. */
  mtime: number;
}

export interface DirNode extends NodeBase {
  type: 'dir';
  /** null until listed from the base. */
  children: Map<string, Node> | null;
  /** Where to list it in the base commit; null for directories created here. */
  basePath: string | null;
  loading: Promise<void> | null;
}

export interface FileNode extends NodeBase {
  type: 'file';
  size: number;
  chunkSize: number;
  /** Base chunk hashes still shared with the base version. */
  baseChunks: string[];
  basePath: string | null;
  local: LocalFile | null;
  /** Byte offset the last read ended at, to spot sequential reads for prefetch. */
  lastReadEnd: number;
}

export interface SymlinkNode extends NodeBase {
  type: 'symlink';
  target: string;
}

export type Node = DirNode | FileNode | SymlinkNode;

/** The node's path from the mount root ("/" for the root). */
export function pathOf(node: Node): string {
  const parts: string[] = [];
  for (let n: Node | null = node; n && n.parent; n = n.parent) parts.push(n.name);
  return '/' + parts.reverse().join('/');
}

/** Whether `node` is still part of the tree (not unlinked, not replaced). */
export function isAttached(node: Node, root: DirNode): boolean {
  let n: Node = node;
  while (n.parent) {
    if (n.parent.children?.get(n.name) !== n) return false;
    n = n.parent;
  }
  return n === root;
}
