/**
 * @module mount/fuse/reply-encoding
 * Checks a file system's answers and flattens them into the number arrays the
 * binding replies with. A malformed answer throws MalformedReply, which the
 * session turns into EIO (logged), so the kernel always gets a reply.
 */
import { FsError } from '../fs-error.js';
import type { Attr, Entry, OpenReply, Timespec } from './types.js';

export class MalformedReply extends Error {}

export function int(v: unknown, what: string, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new MalformedReply(`${what} must be an integer in ${min}..${max}, got ${String(v)}`);
  return v;
}

export function seconds(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
    throw new MalformedReply(`${what} must be a non-negative number of seconds, got ${String(v)}`);
  return v;
}

function time(t: unknown, what: string): [number, number] {
  const ts = t as Timespec | undefined;
  if (!ts || typeof ts !== 'object') throw new MalformedReply(`${what} must be {sec, nsec}`);
  return [int(ts.sec, `${what}.sec`, -Number.MAX_SAFE_INTEGER), int(ts.nsec, `${what}.nsec`, 0, 999_999_999)];
}

export function attrNumbers(a: Attr | undefined): number[] {
  if (!a || typeof a !== 'object') throw new MalformedReply('attr is missing');
  return [
    int(a.ino, 'attr.ino'),
    int(a.mode, 'attr.mode', 0, 0xffffffff),
    int(a.nlink, 'attr.nlink', 0, 0xffffffff),
    int(a.uid, 'attr.uid', 0, 0xffffffff),
    int(a.gid, 'attr.gid', 0, 0xffffffff),
    int(a.rdev ?? 0, 'attr.rdev', 0, 0xffffffff),
    int(a.size, 'attr.size'),
    int(a.blocks, 'attr.blocks'),
    int(a.blksize ?? 4096, 'attr.blksize', 0, 0x7fffffff),
    ...time(a.atime, 'attr.atime'),
    ...time(a.mtime, 'attr.mtime'),
    ...time(a.ctime, 'attr.ctime'),
  ];
}

const NO_ATTR: Attr = {
  ino: 0,
  mode: 0,
  nlink: 0,
  uid: 0,
  gid: 0,
  size: 0,
  blocks: 0,
  atime: { sec: 0, nsec: 0 },
  mtime: { sec: 0, nsec: 0 },
  ctime: { sec: 0, nsec: 0 },
};

export function entryNumbers(e: Entry | undefined): number[] {
  if (!e || typeof e !== 'object') throw new MalformedReply('entry is missing');
  const ino = int(e.ino, 'entry.ino');
  // A negative entry (ino 0) carries no attributes worth checking.
  const attr = ino === 0 && !e.attr ? NO_ATTR : e.attr!;
  return [
    ino,
    int(e.generation ?? 0, 'entry.generation'),
    seconds(e.attrTimeout, 'entry.attrTimeout'),
    seconds(e.entryTimeout, 'entry.entryTimeout'),
    ...attrNumbers(attr),
  ];
}

export function openNumbers(o: OpenReply | undefined): Float64Array {
  if (!o || typeof o !== 'object') throw new MalformedReply('open reply is missing');
  return Float64Array.of(
    int(o.fh, 'fh'),
    o.directIo ? 1 : 0,
    o.keepCache ? 1 : 0,
    o.nonseekable ? 1 : 0,
    o.cacheReaddir ? 1 : 0,
  );
}

export function dirName(name: unknown): string {
  if (
    typeof name !== 'string' ||
    name === '' ||
    name.includes('/') ||
    name.includes('\0') ||
    Buffer.byteLength(name) > 1000
  ) {
    throw new MalformedReply(
      `a directory entry name must be a non-empty string without "/" or NUL, got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

export function list<T>(v: unknown, what: string): T[] {
  if (!Array.isArray(v)) throw new MalformedReply(`${what} must be an array`);
  return v as T[];
}

export function errnoOf(e: unknown): number | undefined {
  if (e instanceof FsError) {
    const n = -e.errno;
    if (Number.isInteger(n) && n > 0 && n < 4096) return n;
  }
  return undefined;
}
