/**
 * @module engine/tree-codec
 * Directory nodes of a commit's Merkle tree and their canonical encoding.
 *
 * A tree is one directory: its entries sorted by name. A directory entry
 * names its child tree by hash and carries the child's totals (bytes and
 * file count), so a commit's size is known from its root alone. A tree's
 * hash is SHA-256 over a version tag and the canonical JSON, and a node whose
 * bytes do not hash to its claimed id is rejected when read.
 */
import { createHash } from 'node:crypto';
import type { ChunkHash, CommitId, TreeHash, VolumeId } from '../common/ids.js';
import { InternalError } from '../common/errors.js';

export interface FileEntry {
  type: 'file';
  name: string;
  mode: number;
  mtime: number;
  size: number;
  chunkSize: number;
  chunks: ChunkHash[];
}

export interface DirEntry {
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

export interface SymlinkEntry {
  type: 'symlink';
  name: string;
  mode: number;
  mtime: number;
  target: string;
}

export type Entry = FileEntry | DirEntry | SymlinkEntry;

/** A decoded directory node. */
export interface Tree {
  hash: TreeHash;
  /** Sorted by name. */
  entries: readonly Entry[];
  byName: ReadonlyMap<string, Entry>;
  /** Encoded size, for cache accounting. */
  bytes: number;
}

const TREE_TAG = 'stowage-tree:v1\n';
const COMMIT_TAG = 'stowage-commit:v1\n';

function sha256(tag: string, body: string | Uint8Array): string {
  return createHash('sha256').update(tag).update(body).digest('hex');
}

/** Entry with its keys in a fixed order, so equal entries encode equally. */
function canonicalEntry(e: Entry): Entry {
  switch (e.type) {
    case 'file':
      return { type: 'file', name: e.name, mode: e.mode, mtime: e.mtime, size: e.size, chunkSize: e.chunkSize, chunks: e.chunks };
    case 'dir':
      return { type: 'dir', name: e.name, mode: e.mode, mtime: e.mtime, tree: e.tree, size: e.size, fileCount: e.fileCount };
    case 'symlink':
      return { type: 'symlink', name: e.name, mode: e.mode, mtime: e.mtime, target: e.target };
  }
}

/** Name order used in every tree (UTF-16 code-unit order, deterministic). */
export function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Encodes entries (any order) into a node; returns its hash and bytes. */
export function encodeTree(entries: Iterable<Entry>): { hash: TreeHash; data: Uint8Array; tree: Tree } {
  const sorted = [...entries].map(canonicalEntry).sort((a, b) => compareNames(a.name, b.name));
  const json = JSON.stringify({ v: 1, entries: sorted });
  const data = Buffer.from(json, 'utf8');
  const hash = sha256(TREE_TAG, data) as TreeHash;
  return { hash, data, tree: makeTree(hash, sorted, data.length) };
}

/** Decodes a stored node, refusing bytes that do not hash to `hash`. */
export function decodeTree(hash: TreeHash, data: Uint8Array): Tree {
  if (sha256(TREE_TAG, data) !== hash) throw new InternalError(`tree ${hash} is corrupt: its content does not match its hash`);
  const parsed = JSON.parse(Buffer.from(data).toString('utf8')) as { v: number; entries: Entry[] };
  if (parsed.v !== 1) throw new InternalError(`tree ${hash} has unknown version ${parsed.v}`);
  return makeTree(hash, parsed.entries, data.length);
}

function makeTree(hash: TreeHash, entries: Entry[], bytes: number): Tree {
  return { hash, entries, byName: new Map(entries.map((e) => [e.name, e])), bytes };
}

/** The node of an empty directory. */
export const EMPTY_TREE = encodeTree([]);

/** Totals of a directory's entries: bytes and regular files, recursively (dirs carry their own totals). */
export function treeTotals(entries: Iterable<Entry>): { size: number; fileCount: number } {
  let size = 0;
  let fileCount = 0;
  for (const e of entries) {
    if (e.type === 'file') { size += e.size; fileCount += 1; }
    else if (e.type === 'dir') { size += e.size; fileCount += e.fileCount; }
  }
  return { size, fileCount };
}

/** Stable identity of an entry's content, for "did this path change?" checks. */
export function entryFingerprint(e: Entry | undefined): string {
  return e === undefined ? '-' : JSON.stringify(canonicalEntry(e));
}

/** The id of a commit: a hash over a version tag and everything the commit says. */
export function commitId(c: { volumeId: VolumeId; parent: CommitId | null; tree: TreeHash; seq: number; createdAt: Date; author: string; message: string }): CommitId {
  const body = JSON.stringify([c.volumeId, c.parent, c.tree, c.seq, c.createdAt.getTime(), c.author, c.message]);
  return sha256(COMMIT_TAG, body) as CommitId;
}
