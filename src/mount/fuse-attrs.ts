/**
 * @module mount/fuse-attrs
 * What the kernel is told about a node: its attributes (mode, owner, size,
 * times as seconds and nanoseconds), lookup entries with their cache
 * timeouts, and the content signature that decides whether the kernel may
 * keep a file's pages across opens. Pure functions over nodes and inodes;
 * no state of their own but a memo of base files' signatures.
 */
import { createHash } from 'node:crypto';
import type { Attr, Entry, Timespec } from './fuse/types.js';
import type { MountView } from './mount-view.js';
import { isAttached, nowNs, type FileNode, type Node, type NsTime } from './nodes.js';

/** Seconds the kernel keeps names and attributes (a swap invalidates them sooner). */
export const TTL = 1;
export const ROOT_INO = 1;
export const S_IFMT = 0o170000;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;
export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_IXGRP = 0o0010;
export const BLOCK = 4096;
const S_IFIFO = 0o010000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFSOCK = 0o140000;
/** What mknod makes besides regular files: kept in the mount only (see SpecialNode). */
export const SPECIAL_KINDS = new Set([S_IFIFO, S_IFCHR, S_IFBLK, S_IFSOCK]);
/** Largest file a mount holds: what its overlay's data file can be on ext4 (16 TiB). */
export const MAX_FILE_SIZE = 2 ** 44;

/** A node as the kernel holds it: an inode number with the kernel's lookup count and open handles. */
export interface Inode {
  ino: number;
  /** Lookups the kernel holds; the inode lives while this or `opens` is above 0. */
  nlookup: number;
  opens: number;
  node: Node;
  /** The view `node` belongs to. */
  view: MountView;
  /** Its node left the tree (unlinked, replaced, or gone after a swap): it keeps its old bytes. */
  orphan: boolean;
  /** The content signature of the pages the kernel may hold of it; null when none. */
  cached: string | null;
}

/** Who owns entries that record no owner. */
export interface Owner { uid: number; gid: number }

export function typeBits(node: Node): number {
  switch (node.type) {
    case 'dir': return S_IFDIR;
    case 'symlink': return S_IFLNK;
    case 'file': return S_IFREG;
    case 'special': return node.kind;
  }
}

function timespec(t: NsTime): Timespec {
  return { sec: Number(t / 1_000_000_000n), nsec: Number(t % 1_000_000_000n) };
}

export function nsOf(t: Timespec | 'now'): NsTime {
  return t === 'now' ? nowNs() : BigInt(t.sec) * 1_000_000_000n + BigInt(t.nsec);
}

/** Bytes one readdirplus entry takes in the reply (fuse_direntplus: entry_out 128 + dirent 24 + name, 8-aligned). */
export function direntPlusSize(name: string): number {
  return (152 + Buffer.byteLength(name) + 7) & ~7;
}

/** Bytes one readdir entry takes in the reply (fuse_dirent 24 + name, 8-aligned). */
export function direntSize(name: string): number {
  return (24 + Buffer.byteLength(name) + 7) & ~7;
}

const signatures = new WeakMap<FileNode, string>();

/** What identifies a file's bytes: its local data file, or its base chunk list. */
export function signature(node: FileNode): string {
  if (node.local) return `L${node.local.dataId}`;
  let sig = signatures.get(node);
  if (sig === undefined) {
    sig = `B${node.size}:${createHash('sha1').update(node.baseChunks.join(',')).digest('hex')}`;
    signatures.set(node, sig);
  }
  return sig;
}

export function joinPath(dir: string, name: string): string {
  return dir === '/' ? `/${name}` : `${dir}/${name}`;
}

/** The attributes of an inode's node; entries that record no owner show `owner`. */
export function attrOf(inode: Inode, node: Node, owner: Owner): Attr {
  const linked = inode.ino === ROOT_INO || isAttached(node, inode.view.root);
  let mode: number, nlink: number, size: number, blocks: number, rdev: number | undefined;
  switch (node.type) {
    case 'dir':
      mode = S_IFDIR | node.mode;
      nlink = node.children ? 2 + node.subdirs : 1; // not listed yet: 1 is "unknown" to find and fts
      size = BLOCK;
      blocks = BLOCK / 512;
      break;
    case 'symlink':
      mode = S_IFLNK | 0o777;
      nlink = 1;
      size = Buffer.byteLength(node.target);
      blocks = 0;
      break;
    case 'file':
      mode = S_IFREG | node.mode;
      nlink = 1;
      size = node.size;
      blocks = Math.ceil(node.size / 512);
      break;
    case 'special':
      mode = node.kind | node.mode;
      nlink = 1;
      size = blocks = 0;
      rdev = node.rdev;
      break;
  }
  // One literal, no spread: this runs for every lookup, getattr and setattr, and V8 copies a spread
  // object of this shape on a slow path (~15 µs, more than the rest of a getattr).
  return {
    ino: inode.ino, mode, nlink: linked ? nlink : 0, uid: node.uid ?? owner.uid, gid: node.gid ?? owner.gid, rdev, size, blocks,
    blksize: BLOCK, atime: timespec(node.atime), mtime: timespec(node.mtime), ctime: timespec(node.ctime),
  };
}

/** A lookup answer for an inode, cached by the kernel for TTL. */
export function entryOf(inode: Inode, node: Node, owner: Owner): Entry {
  return { ino: inode.ino, attr: attrOf(inode, node, owner), attrTimeout: TTL, entryTimeout: TTL };
}
