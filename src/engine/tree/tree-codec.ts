/**
 * @module engine/tree/tree-codec
 * Directory nodes of a commit's Merkle tree and their canonical encoding.
 *
 * A directory is a tree of nodes over its entries sorted by name (see
 * engine/tree/dir-pages for how the entries are cut into pages):
 * - a **leaf** (`{"v":1,"entries":[...]}`, tag "stowage-tree:v1") holds
 *   entries; a small directory is exactly one leaf, byte for byte the node
 *   format of before paging, so trees written then still read and hash equal;
 * - an **interior** node (`{"v":2,"level":L,"children":[...]}`, tag
 *   "stowage-tree:v2") holds references to the nodes one level below, each
 *   with its first name, entry count and totals.
 * A directory entry names its directory's top node by hash and carries its
 * totals (bytes and file count), so a commit's size is known from its root
 * alone. A node's hash is SHA-256 over its version tag and canonical JSON,
 * and a node whose bytes do not hash to its claimed id is rejected when read.
 * Entries may record an owner and nanosecond times (EntryMeta); absent ones
 * are not encoded, so entries without them keep the bytes of before.
 */
import { createHash } from 'node:crypto';
import type { ChunkHash, CommitId, TreeHash, VolumeId } from '@stowage/sdk/common/ids.js';
import { InternalError } from '@stowage/sdk/common/errors.js';
import type * as wire from '@stowage/sdk/api/wire.js';

/**
 * Ownership and times beyond `mtime`, recorded on any entry when a writer
 * gives them (a mount's chown/utimensat). Absent fields are not encoded at
 * all, so an entry without them has the bytes (and its tree the hash) it had
 * before they existed. Absent uid/gid: no owner recorded (a mount shows its
 * own). Absent `mtimeNs`: 0. Absent atime/ctime: the same as mtime (with its
 * ns). Canonical form (canonicalEntry) drops what equals its default.
 */
export type EntryMeta = wire.EntryAttributes;

export interface FileEntry extends EntryMeta {
  type: 'file';
  name: string;
  mode: number;
  mtime: number;
  size: number;
  chunkSize: number;
  chunks: ChunkHash[];
}

export interface DirEntry extends EntryMeta {
  type: 'dir';
  name: string;
  mode: number;
  mtime: number;
  tree: TreeHash;
  /** Bytes of all files below. */
  size: number;
  /** Regular files below. */
  fileCount: number;
}

export interface SymlinkEntry extends EntryMeta {
  type: 'symlink';
  name: string;
  mode: number;
  mtime: number;
  target: string;
}

export type Entry = FileEntry | DirEntry | SymlinkEntry;

/** A leaf node: a run of a directory's entries (a whole small directory). */
export interface LeafNode {
  kind: 'leaf';
  hash: TreeHash;
  /** Sorted by name. */
  entries: readonly Entry[];
  /** Encoded size, for cache accounting. */
  bytes: number;
}

/** A reference from an interior node to a node one level below. */
export interface ChildRef {
  /** Name of the first entry below. */
  first: string;
  tree: TreeHash;
  /** Entries below. */
  count: number;
  /** Bytes of all files below (recursively, like a DirEntry's size). */
  size: number;
  /** Regular files below (recursively). */
  fileCount: number;
}

/** An interior node: references to the pages of one level below (level 1 points at leaves). */
export interface InteriorNode {
  kind: 'interior';
  hash: TreeHash;
  level: number;
  /** Sorted by `first`. */
  children: readonly ChildRef[];
  bytes: number;
}

/** A decoded node of a directory. */
export type TreeNode = LeafNode | InteriorNode;

const TREE_TAG = 'stowage-tree:v1\n';
const INTERIOR_TAG = 'stowage-tree:v2\n';
const COMMIT_TAG = 'stowage-commit:v1\n';

function sha256(tag: string, body: string | Uint8Array): string {
  return createHash('sha256').update(tag).update(body).digest('hex');
}

/** Entry with its keys in a fixed order, so equal entries encode equally. */
export function canonicalEntry(e: Entry): Entry {
  switch (e.type) {
    case 'file':
      return {
        type: 'file',
        name: e.name,
        mode: e.mode,
        mtime: e.mtime,
        size: e.size,
        chunkSize: e.chunkSize,
        chunks: e.chunks,
        ...canonicalMeta(e),
      };
    case 'dir':
      return {
        type: 'dir',
        name: e.name,
        mode: e.mode,
        mtime: e.mtime,
        tree: e.tree,
        size: e.size,
        fileCount: e.fileCount,
        ...canonicalMeta(e),
      };
    case 'symlink':
      return { type: 'symlink', name: e.name, mode: e.mode, mtime: e.mtime, target: e.target, ...canonicalMeta(e) };
  }
}

/** Every time of an entry with its defaults filled in (absent atime/ctime: mtime's). */
export interface EntryTimes {
  mtime: number;
  mtimeNs: number;
  atime: number;
  atimeNs: number;
  ctime: number;
  ctimeNs: number;
}

/** The effective times of an entry: what a reader of the tree sees. */
export function entryTimes(e: { mtime: number } & EntryMeta): EntryTimes {
  const mtimeNs = e.mtimeNs ?? 0;
  return {
    mtime: e.mtime,
    mtimeNs,
    atime: e.atime ?? e.mtime,
    atimeNs: e.atime === undefined ? mtimeNs : (e.atimeNs ?? 0),
    ctime: e.ctime ?? e.mtime,
    ctimeNs: e.ctime === undefined ? mtimeNs : (e.ctimeNs ?? 0),
  };
}

/**
 * The EntryMeta fields that differ from their defaults, in canonical key
 * order: an owner when recorded, mtimeNs unless 0, atime/ctime (with their
 * ns unless 0) unless equal to mtime. Equal attributes so encode equally
 * whether a writer spelt the defaults out or not.
 */
export function canonicalMeta(e: { mtime: number } & EntryMeta): EntryMeta {
  // Most entries record none of them: skip the work (every re-cut page re-encodes its entries).
  if (
    e.uid === undefined &&
    e.gid === undefined &&
    e.mtimeNs === undefined &&
    e.atime === undefined &&
    e.ctime === undefined
  )
    return {};
  const out: EntryMeta = {};
  if (e.uid !== undefined) out.uid = e.uid;
  if (e.gid !== undefined) out.gid = e.gid;
  const t = entryTimes(e);
  if (t.mtimeNs !== 0) out.mtimeNs = t.mtimeNs;
  if (t.atime !== t.mtime || t.atimeNs !== t.mtimeNs) {
    out.atime = t.atime;
    if (t.atimeNs !== 0) out.atimeNs = t.atimeNs;
  }
  if (t.ctime !== t.mtime || t.ctimeNs !== t.mtimeNs) {
    out.ctime = t.ctime;
    if (t.ctimeNs !== 0) out.ctimeNs = t.ctimeNs;
  }
  return out;
}

/** Name order used in every tree (UTF-16 code-unit order, deterministic). */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A node, encoded, with its decoded form. */
export interface EncodedNode {
  hash: TreeHash;
  data: Uint8Array;
  tree: TreeNode;
}

/** Encodes entries (any order) into one leaf; returns its hash and bytes. */
export function encodeTree(entries: Iterable<Entry>): { hash: TreeHash; data: Uint8Array; tree: LeafNode } {
  const sorted = [...entries].map(canonicalEntry).sort((a, b) => compareNames(a.name, b.name));
  return encodeLeaf(
    sorted,
    sorted.map((e) => JSON.stringify(e)),
  );
}

/** The canonical JSON of one entry, as it appears in a leaf. */
export function entryJson(e: Entry): string {
  return JSON.stringify(canonicalEntry(e));
}

/** The canonical JSON of one child reference, as it appears in an interior node. */
export function refJson(r: ChildRef): string {
  return JSON.stringify({ first: r.first, tree: r.tree, count: r.count, size: r.size, fileCount: r.fileCount });
}

/**
 * A leaf of sorted entries whose canonical JSON is `jsons` (one per entry).
 * The bytes equal `JSON.stringify({ v: 1, entries })`, the format of before
 * paging, so a small directory keeps its hash.
 */
export function encodeLeaf(
  sorted: readonly Entry[],
  jsons: readonly string[],
): { hash: TreeHash; data: Uint8Array; tree: LeafNode } {
  const data = Buffer.from(`{"v":1,"entries":[${jsons.join(',')}]}`, 'utf8');
  const hash = sha256(TREE_TAG, data) as TreeHash;
  return { hash, data, tree: { kind: 'leaf', hash, entries: sorted, bytes: data.length } };
}

/** An interior node of `level` over sorted references whose canonical JSON is `jsons`. */
export function encodeInterior(
  level: number,
  refs: readonly ChildRef[],
  jsons: readonly string[],
): { hash: TreeHash; data: Uint8Array; tree: InteriorNode } {
  const data = Buffer.from(`{"v":2,"level":${level},"children":[${jsons.join(',')}]}`, 'utf8');
  const hash = sha256(INTERIOR_TAG, data) as TreeHash;
  return { hash, data, tree: { kind: 'interior', hash, level, children: refs, bytes: data.length } };
}

const INTERIOR_PREFIX = Buffer.from('{"v":2,');

/** Decodes a stored node, refusing bytes that do not hash to `hash`. */
export function decodeTree(hash: TreeHash, data: Uint8Array): TreeNode {
  // The version is the first key of every node; it picks the tag the hash was made with.
  const interior = Buffer.from(data.buffer, data.byteOffset, Math.min(data.byteLength, INTERIOR_PREFIX.length)).equals(
    INTERIOR_PREFIX,
  );
  if (sha256(interior ? INTERIOR_TAG : TREE_TAG, data) !== hash)
    throw new InternalError(`tree ${hash} is corrupt: its content does not match its hash`);
  const parsed = JSON.parse(Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('utf8')) as {
    v: number;
    entries?: Entry[];
    level?: number;
    children?: ChildRef[];
  };
  if (parsed.v === 1 && Array.isArray(parsed.entries))
    return { kind: 'leaf', hash, entries: parsed.entries, bytes: data.byteLength };
  if (parsed.v === 2 && Array.isArray(parsed.children) && Number.isSafeInteger(parsed.level) && parsed.level! >= 1) {
    return { kind: 'interior', hash, level: parsed.level!, children: parsed.children, bytes: data.byteLength };
  }
  throw new InternalError(`tree ${hash} has unknown version ${String(parsed.v)}`);
}

/** Level of a node: 0 for a leaf. */
export function nodeLevel(node: TreeNode): number {
  return node.kind === 'leaf' ? 0 : node.level;
}

/** The node of an empty directory. */
export const EMPTY_TREE = encodeTree([]);

/** Index of the child whose range holds `name`: the last child whose first name is at or before it; -1 when `name` precedes them all. */
export function childIndexFor(children: readonly ChildRef[], name: string): number {
  let lo = 0;
  let hi = children.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (children[mid]!.first <= name) lo = mid + 1;
    else hi = mid;
  }
  return lo - 1;
}

/** Index of the first entry whose name is at or after `name` (entries.length when none). */
export function entryIndexFrom(entries: readonly Entry[], name: string): number {
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (entries[mid]!.name < name) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Entries and totals of everything below a node. */
export function nodeTotals(node: TreeNode): { count: number; size: number; fileCount: number } {
  if (node.kind === 'leaf') return { count: node.entries.length, ...treeTotals(node.entries) };
  let count = 0;
  let size = 0;
  let fileCount = 0;
  for (const c of node.children) {
    count += c.count;
    size += c.size;
    fileCount += c.fileCount;
  }
  return { count, size, fileCount };
}

/** Totals of a directory's entries: bytes and regular files, recursively (dirs carry their own totals). */
export function treeTotals(entries: Iterable<Entry>): { size: number; fileCount: number } {
  let size = 0;
  let fileCount = 0;
  for (const e of entries) {
    if (e.type === 'file') {
      size += e.size;
      fileCount += 1;
    } else if (e.type === 'dir') {
      size += e.size;
      fileCount += e.fileCount;
    }
  }
  return { size, fileCount };
}

/** Stable identity of an entry's content, for "did this path change?" checks. */
export function entryFingerprint(e: Entry | undefined): string {
  return e === undefined ? '-' : JSON.stringify(canonicalEntry(e));
}

/** The id of a commit: a hash over a version tag and everything the commit says. */
export function commitId(c: {
  volumeId: VolumeId;
  parent: CommitId | null;
  tree: TreeHash;
  seq: number;
  createdAt: Date;
  author: string;
  message: string;
}): CommitId {
  const body = JSON.stringify([c.volumeId, c.parent, c.tree, c.seq, c.createdAt.getTime(), c.author, c.message]);
  return sha256(COMMIT_TAG, body) as CommitId;
}
