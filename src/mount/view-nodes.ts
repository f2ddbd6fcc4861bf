/**
 * @module mount/view-nodes
 * The mount view's nodes as they are made: from the base tree's entries
 * (owner, mode and nanosecond times as the volume holds them), or new, owned
 * by whoever created them; and the mount-relative paths that find them.
 */
import type * as wire from '@stowage/sdk/api/wire.js';
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { joinNanos } from '@stowage/sdk/common/times.js';
import { nowNs, type DirNode, type Node, type NodeMeta } from './nodes.js';

/** Who a new entry belongs to (null: the mount's owner, see nodes.ts). */
export interface Creator {
  uid: number | null;
  gid: number | null;
}

export const NOBODY: Creator = { uid: null, gid: null };

export function splitRel(path: string): string[] {
  return path.split('/').filter((p) => p.length > 0);
}

export function joinVolumePath(root: string, rel: string): string {
  const parts = [...splitRel(root), ...splitRel(rel)];
  return '/' + parts.join('/');
}

/** A node's owner and times from the tree entry that holds them. */
export function metaFromInfo(
  info: Pick<wire.FileInfo, 'mode' | 'mtime' | 'mtimeNs' | 'atime' | 'atimeNs' | 'ctime' | 'ctimeNs' | 'uid' | 'gid'>,
): NodeMeta {
  const mtime = joinNanos(info.mtime, info.mtimeNs ?? 0);
  return {
    mode: info.mode & 0o7777,
    mtime,
    atime: info.atime === undefined ? mtime : joinNanos(info.atime, info.atimeNs ?? 0),
    ctime: info.ctime === undefined ? mtime : joinNanos(info.ctime, info.ctimeNs ?? 0),
    uid: info.uid ?? null,
    gid: info.gid ?? null,
  };
}

export function nodeFromInfo(info: wire.FileInfo, parent: DirNode): Node {
  const base = { name: info.name, parent, ...metaFromInfo(info) };
  switch (info.type) {
    case 'dir':
      return { ...base, type: 'dir', children: null, subdirs: 0, basePath: info.path, loading: null };
    case 'symlink':
      return { ...base, type: 'symlink', target: info.target ?? '' };
    case 'file':
      return {
        ...base,
        type: 'file',
        size: info.size,
        chunkSize: info.chunkSize ?? SMALL_CHUNK_SIZE,
        baseChunks: info.chunks ?? [],
        basePath: info.path,
        local: null,
        lastReadEnd: -1,
      };
  }
}

export function newMeta(mode: number, creator: Creator): NodeMeta {
  const now = nowNs();
  return { mode: mode & 0o7777, mtime: now, atime: now, ctime: now, uid: creator.uid, gid: creator.gid };
}

export function creatorOf(op: { uid?: number | null; gid?: number | null }): Creator {
  return { uid: op.uid ?? null, gid: op.gid ?? null };
}
