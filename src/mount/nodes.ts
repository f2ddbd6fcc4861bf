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
  /** Whether the data file exists: a new file gets one on its first write, truncate or utimens (an empty one never). */
  made: boolean;
  /** A spare data file (overlay-store takeSpare) not written yet: its first use asks for more spares. */
  spare?: boolean;
}

/** Nanoseconds since the epoch (a Date's milliseconds lose what tar and make compare). */
export type NsTime = bigint;

export interface NodeMeta {
  /** Permission bits only (0o7777). */
  mode: number;
  mtime: NsTime;
  atime: NsTime;
  ctime: NsTime;
  /** The recorded owner; null = the mount's owner (so a volume moves between sandboxes of different uids). */
  uid: number | null;
  gid: number | null;
}

interface NodeBase extends NodeMeta {
  name: string;
  parent: DirNode | null;
}

let childVersions = 0;

/**
 * A directory's entries by name, with a version that changes (never to a
 * value it had, whichever map) on every set, delete or clear: listings key
 * their order on it (fuse-dir-ops.ts) instead of keeping per-open copies.
 */
export class ChildMap extends Map<string, Node> {
  version = ++childVersions;

  override set(name: string, node: Node): this {
    this.version = ++childVersions;
    return super.set(name, node);
  }

  override delete(name: string): boolean {
    const had = super.delete(name);
    if (had) this.version = ++childVersions;
    return had;
  }

  override clear(): void {
    this.version = ++childVersions;
    super.clear();
  }
}

export interface DirNode extends NodeBase {
  type: 'dir';
  /** null until listed from the base. */
  children: ChildMap | null;
  /** How many of `children` are directories (its link count is 2 + this), kept as they change. */
  subdirs: number;
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

/**
 * A fifo, socket or device node. It lives in this mount only: never
 * journaled or committed (the volume has no such entries), carried into the
 * new view when a commit or reload swaps it, gone when the agent stops.
 */
export interface SpecialNode extends NodeBase {
  type: 'special';
  /** The file type bits: S_IFIFO, S_IFSOCK, S_IFCHR or S_IFBLK. */
  kind: number;
  rdev: number;
}

export type Node = DirNode | FileNode | SymlinkNode | SpecialNode;

// Date.now() has milliseconds only: nanoseconds come from the monotonic clock, anchored to the wall clock and
// re-anchored when the two drift apart (an NTP step), so times taken in a row never go backwards within a run.
let hrOrigin = process.hrtime.bigint();
let wallOrigin = BigInt(Date.now()) * 1_000_000n;

export function nowNs(): NsTime {
  const t = process.hrtime.bigint() - hrOrigin + wallOrigin;
  const wall = BigInt(Date.now()) * 1_000_000n;
  if (t - wall > 10_000_000n || wall - t > 10_000_000n) {
    hrOrigin = process.hrtime.bigint();
    wallOrigin = wall;
    return wall;
  }
  return t;
}



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
