/**
 * @module mount/fuse/request-decoding
 * Turns the binding's flat request message (s1, s2, data, numbers) into the
 * arguments of the LowLevelOps method it names (types.ts).
 */
import type { RequestContext, SetattrRequest } from './types.js';

const SET = {
  MODE: 1 << 0,
  UID: 1 << 1,
  GID: 1 << 2,
  SIZE: 1 << 3,
  ATIME: 1 << 4,
  MTIME: 1 << 5,
  ATIME_NOW: 1 << 7,
  MTIME_NOW: 1 << 8,
};

function toSetattr(n: number[]): SetattrRequest {
  const [, valid, mode, uid, gid, size, asec, ansec, msec, mnsec] = n as [
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const set: SetattrRequest = {};
  if (valid & SET.MODE) set.mode = mode;
  if (valid & SET.UID) set.uid = uid;
  if (valid & SET.GID) set.gid = gid;
  if (valid & SET.SIZE) set.size = size;
  if (valid & SET.ATIME_NOW) set.atime = 'now';
  else if (valid & SET.ATIME) set.atime = { sec: asec, nsec: ansec };
  if (valid & SET.MTIME_NOW) set.mtime = 'now';
  else if (valid & SET.MTIME) set.mtime = { sec: msec, nsec: mnsec };
  return set;
}

const fhOrNull = (v: number | undefined): number | null => (v === undefined || Number.isNaN(v) ? null : v);

/** The operation's arguments from the binding's (s1, s2, data, numbers) message. */
export function requestArgs(
  op: string,
  ctx: RequestContext,
  s1?: string,
  s2?: string,
  data?: Buffer,
  n: number[] = [],
): unknown[] {
  switch (op) {
    case 'lookup':
    case 'unlink':
    case 'rmdir':
      return [ctx, n[0], s1];
    case 'getattr':
      return [ctx, n[0], fhOrNull(n[1])];
    case 'setattr':
      return [ctx, n[0], toSetattr(n), fhOrNull(n[10])];
    case 'readlink':
    case 'statfs':
      return [ctx, n[0]];
    case 'mknod':
      return [ctx, n[0], s1, n[1], n[2]];
    case 'mkdir':
      return [ctx, n[0], s1, n[1]];
    case 'symlink':
      return [ctx, s1, n[0], s2];
    case 'rename':
      return [ctx, n[0], s1, n[1], s2, n[2]];
    case 'link':
      return [ctx, n[0], n[1], s1];
    case 'open':
    case 'opendir':
    case 'access':
    case 'flush':
    case 'releasedir':
      return [ctx, n[0], n[1]];
    case 'read':
    case 'readdir':
    case 'readdirplus':
      return [ctx, n[0], n[1], n[2], n[3]];
    case 'write':
      return [ctx, n[0], data, n[1], n[2]];
    case 'release':
      return [ctx, n[0], n[1], n[2]];
    case 'fsync':
    case 'fsyncdir':
      return [ctx, n[0], n[1] !== 0, n[2]];
    case 'create':
      return [ctx, n[0], s1, n[1], n[2]];
    case 'fallocate':
      return [ctx, n[0], n[1], n[2], n[3], n[4]];
    default:
      return [ctx, ...n];
  }
}
