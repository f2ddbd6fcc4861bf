/**
 * @module mount/fuse/session
 * Serves a LowLevelOps file system (types.ts) through the libfuse 3 binding
 * in native/fuse3. The binding hands each kernel request to this thread as
 * `dispatch(op, id, ctx, s1, s2, data, numbers)`; here the operation runs on
 * the arguments request-decoding.ts makes of that message, its answer is
 * checked and flattened into numbers (reply-encoding.ts), and the binding
 * (native.ts) replies.
 *
 * Every request gets exactly one answer: the operation's value, its FsError's
 * errno, or EIO (logged) for anything else, a malformed value included. When
 * the kernel does not take an entry it was given (a full readdirplus buffer,
 * an interrupted lookup, "." and ".." of readdirplus, which the kernel never
 * counts) the session forgets it, so the file system's lookup counts stay the
 * kernel's.
 *
 * @example
 * const session = await mountFuse('/mnt/x', ops, { options: ['fsname=x', 'subtype=stowage'], force: true });
 * await session.unmount();
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import { resolve } from 'node:path';
import { fuseMountAt } from './mountinfo.js';
import { binding, type Dispatch, type Native, type NativeHandle } from './native.js';
import {
  attrNumbers,
  dirName,
  entryNumbers,
  errnoOf,
  int,
  list,
  MalformedReply,
  openNumbers,
  seconds,
} from './reply-encoding.js';
import { requestArgs } from './request-decoding.js';
import type {
  Attr,
  ConnInfo,
  CreateReply,
  DirEntry,
  DirEntryPlus,
  Entry,
  FuseSession,
  LowLevelOps,
  MountOptions,
  OpenReply,
  RequestContext,
  Statvfs,
} from './types.js';

const DEFAULT_SPIN_MICROS = 200;
const ENOSYS = constants.errno.ENOSYS;
const EIO = constants.errno.EIO;

function describe(e: unknown): string {
  return e instanceof Error ? (e.stack ?? e.message) : String(e);
}

class Session implements FuseSession {
  conn!: ConnInfo;
  readonly closed: Promise<void>;
  readonly #native: Native;
  readonly #ops: LowLevelOps;
  readonly #log: (message: string) => void;
  readonly #onRequest: (() => void) | undefined;
  #handle!: NativeHandle;
  #ending: Promise<void> | undefined;
  #notifying: Promise<void> = Promise.resolve();
  /** Requests served by opcode (forgets counted one per inode), for tracing what a workload costs. */
  readonly #requests = new Map<string, number>();
  #resolveClosed!: () => void;
  #inited!: (conn: ConnInfo) => void;
  #failed!: (e: Error) => void;
  readonly ready: Promise<ConnInfo>;

  constructor(
    readonly mountpoint: string,
    ops: LowLevelOps,
    options: MountOptions,
    native: Native,
  ) {
    this.#native = native;
    this.#ops = ops;
    this.#log = options.log ?? ((m) => process.stderr.write(`fuse: ${m}\n`));
    this.#onRequest = options.onRequest;
    this.closed = new Promise((res) => {
      this.#resolveClosed = res;
    });
    this.ready = new Promise((res, rej) => {
      this.#inited = res;
      this.#failed = rej;
    });
    this.ready.catch(() => {});
  }

  start(options: MountOptions): void {
    const spin = options.spinMicros ?? DEFAULT_SPIN_MICROS;
    this.#handle = this.#native.mount(
      this.mountpoint,
      options.options,
      options.writebackCache === true,
      this.#dispatch,
      spin,
    );
  }

  invalidateInode(ino: number, offset = 0, length = 0): Promise<void> {
    return this.#invalidate(() => this.#native.invalidate(this.#handle, ino, offset, length, undefined));
  }

  invalidateEntry(parent: number, name: string): Promise<void> {
    if (typeof name !== 'string' || name === '') return Promise.reject(new TypeError('invalidateEntry needs a name'));
    return this.#invalidate(() => this.#native.invalidate(this.#handle, parent, 0, 0, name));
  }

  /**
   * One invalidation at a time: each runs on a libuv pool thread and may wait
   * there for a request the JS thread has yet to answer; if they took all four
   * pool threads, an answer that needs the pool (fs/promises) could never come.
   */
  #invalidate(run: () => Promise<void>): Promise<void> {
    const result = this.#notifying.then(run);
    this.#notifying = result.catch(() => {});
    return result;
  }

  unmount(): Promise<void> {
    this.#ending ??= this.#native.unmount(this.#handle).then(() => {
      this.#failed(new Error(`the FUSE session at ${this.mountpoint} ended before the kernel's INIT`));
      try {
        this.#ops.destroy?.();
      } catch (e) {
        this.#log(`destroy failed: ${describe(e)}`);
      }
      this.#resolveClosed();
    });
    return this.#ending;
  }

  requestCounts(): Record<string, number> {
    return Object.fromEntries([...this.#requests].sort(([a], [b]) => a.localeCompare(b)));
  }

  readonly #dispatch: Dispatch = (op, id, c, s1, s2, data, n) => {
    if (op !== 'init' && op !== 'closed') {
      this.#requests.set(op, (this.#requests.get(op) ?? 0) + 1);
      this.#onRequest?.();
    }
    switch (op) {
      case 'init': {
        const [protoMajor, protoMinor, maxWrite, maxRead, maxPages, maxReadahead, want, capable, killprivV2] =
          n as number[] as [number, number, number, number, number, number, number, number, number];
        this.conn = {
          protoMajor,
          protoMinor,
          maxWrite,
          maxRead,
          maxPages,
          maxReadahead,
          want,
          capable,
          handleKillprivV2: killprivV2 === 1,
        };
        try {
          this.#ops.init?.(this.conn);
        } catch (e) {
          this.#log(`init failed: ${describe(e)}`);
        }
        this.#inited(this.conn);
        return;
      }
      case 'closed': // the kernel side ended (unmount, fusermount3 -u, umount): end ours
        void this.unmount();
        return;
      case 'forget':
        this.#forget(n[0]!, n[1]!);
        return;
    }
    const ctx: RequestContext = { uid: c[0]!, gid: c[1]!, pid: c[2]!, umask: c[3]!, killSuidgid: c[4] === 1 };
    void this.#serve(op, id, ctx, s1, s2, data, n);
  };

  #forget(ino: number, nlookup: number): void {
    if (ino === 0) return;
    try {
      this.#ops.forget(ino, nlookup);
    } catch (e) {
      this.#log(`forget(${ino}, ${nlookup}) failed: ${describe(e)}`);
    }
  }

  /** The kernel did not take these (the open's reply failed): the file system should not keep them. */
  #releaseUntaken(ctx: RequestContext, dir: boolean, ino: number, fh: number, flags: number): void {
    const p = dir ? this.#ops.releasedir(ctx, ino, fh) : this.#ops.release(ctx, ino, fh, flags);
    p.catch((e: unknown) => this.#log(`release of an untaken handle failed: ${describe(e)}`));
  }

  #answerErr(id: number, errno: number): void {
    try {
      this.#native.replyErr(this.#handle, id, errno);
    } catch (e) {
      // Only after the session ended (its requests were answered EIO then).
      this.#log(`answer dropped: ${describe(e)}`);
    }
  }

  async #serve(
    op: string,
    id: number,
    ctx: RequestContext,
    s1: string | undefined,
    s2: string | undefined,
    data: Buffer | undefined,
    n: number[],
  ): Promise<void> {
    const ops = this.#ops as unknown as Record<string, ((...args: unknown[]) => Promise<unknown>) | undefined>;
    const fn = ops[op];
    if (typeof fn !== 'function') {
      this.#answerErr(id, ENOSYS);
      return;
    }
    const args = requestArgs(op, ctx, s1, s2, data, n);
    let value: unknown;
    try {
      value = await fn.apply(this.#ops, args);
    } catch (e) {
      const errno = errnoOf(e);
      if (errno === undefined) this.#log(`${op} failed: ${describe(e)}`);
      this.#answerErr(id, errno ?? EIO);
      return;
    }
    try {
      this.#reply(op, id, ctx, n, value, data?.length ?? 0);
    } catch (e) {
      if (e instanceof MalformedReply) {
        this.#log(`${op} returned a malformed answer (EIO sent): ${e.message}`);
        this.#answerErr(id, EIO);
      } else {
        this.#log(`${op}: answer dropped: ${describe(e)}`);
      }
    }
  }

  #reply(op: string, id: number, ctx: RequestContext, n: number[], value: unknown, written: number): void {
    const native = this.#native;
    const h = this.#handle;
    switch (op) {
      case 'lookup':
      case 'mknod':
      case 'mkdir':
      case 'symlink':
      case 'link': {
        const entry = value as Entry;
        const numbers = Float64Array.from(entryNumbers(entry));
        if (native.replyEntry(h, id, numbers) !== 0) this.#forget(entry.ino, 1);
        return;
      }
      case 'create': {
        const r = value as CreateReply;
        if (!r || typeof r !== 'object') throw new MalformedReply('create must resolve with {entry, open}');
        const entry = Float64Array.from(entryNumbers(r.entry));
        const open = openNumbers(r.open);
        if (native.replyCreate(h, id, entry, open) !== 0) {
          this.#forget(r.entry.ino, 1);
          this.#releaseUntaken(ctx, false, r.entry.ino, r.open.fh, n[2]!);
        }
        return;
      }
      case 'getattr':
      case 'setattr': {
        const r = value as { attr: Attr; timeout: number };
        if (!r || typeof r !== 'object') throw new MalformedReply(`${op} must resolve with {attr, timeout}`);
        native.replyAttr(h, id, Float64Array.from(attrNumbers(r.attr)), seconds(r.timeout, 'timeout'));
        return;
      }
      case 'readlink':
        if (typeof value !== 'string' || value === '' || value.includes('\0'))
          throw new MalformedReply('readlink must resolve with a non-empty string');
        native.replyReadlink(h, id, value);
        return;
      case 'open':
      case 'opendir': {
        const r = value as OpenReply;
        if (native.replyOpen(h, id, openNumbers(r)) !== 0)
          this.#releaseUntaken(ctx, op === 'opendir', n[0]!, r.fh, n[1]!);
        return;
      }
      case 'read': {
        let buf = value;
        if (buf instanceof Uint8Array && !Buffer.isBuffer(buf))
          buf = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
        if (!Buffer.isBuffer(buf) || buf.length > n[1]!)
          throw new MalformedReply(`read must resolve with a Buffer of at most ${n[1]} bytes`);
        native.replyBuf(h, id, buf);
        return;
      }
      case 'write':
        native.replyWrite(h, id, int(value, 'write count', 0, written));
        return;
      case 'statfs': {
        const s = value as Statvfs;
        if (!s || typeof s !== 'object') throw new MalformedReply('statfs must resolve with a Statvfs');
        const keys = ['bsize', 'frsize', 'blocks', 'bfree', 'bavail', 'files', 'ffree', 'favail', 'namemax'] as const;
        native.replyStatfs(h, id, Float64Array.from(keys.map((k) => int(s[k], `statfs.${k}`))));
        return;
      }
      case 'readdir': {
        const entries = list<DirEntry>(value, 'readdir');
        const names = entries.map((e) => dirName(e?.name));
        const numbers = new Float64Array(entries.length * 3);
        for (const [i, e] of entries.entries())
          numbers.set([int(e.ino, 'ino'), int(e.mode, 'mode', 0, 0xffffffff), int(e.off, 'off')], i * 3);
        native.replyDir(h, id, names, numbers, false);
        return;
      }
      case 'readdirplus': {
        const entries = list<DirEntryPlus>(value, 'readdirplus');
        const names = entries.map((e) => dirName(e?.name));
        const stride = 20;
        const numbers = new Float64Array(entries.length * stride);
        for (const [i, e] of entries.entries()) numbers.set([int(e.off, 'off'), ...entryNumbers(e.entry)], i * stride);
        const sent = native.replyDir(h, id, names, numbers, true);
        // Forget what the kernel did not count: entries that did not fit (all of
        // them if the reply failed), and "." and "..", which it never counts.
        entries.forEach((e, i) => {
          if (i >= sent || sent < 0 || e.name === '.' || e.name === '..') this.#forget(e.entry.ino, 1);
        });
        return;
      }
      default: // the operations that answer nothing but success
        native.replyErr(h, id, 0);
    }
  }
}

/** Ends a stale FUSE mount at `path` (a killed agent's, "transport endpoint is not connected"); leaves other mounts alone. */
function clearStaleMount(path: string, native: Native): void {
  if (!fuseMountAt(path)) return;
  const err = native.lazyUnmount(path);
  if (err !== 0 && fuseMountAt(path)) {
    throw new Error(
      `cannot unmount the stale FUSE mount at ${path} (errno ${err}); unmount it by hand: fusermount3 -uz ${path}`,
    );
  }
}

/**
 * Mounts `ops` at `mountpoint` and resolves once the kernel's INIT was answered
 * (session.conn holds what was agreed). With `force`, a stale FUSE mount at
 * the path is lazily unmounted first and a missing directory is created.
 */
export async function mountFuse(mountpoint: string, ops: LowLevelOps, options: MountOptions): Promise<FuseSession> {
  const native = binding();
  const path = resolve(mountpoint);
  if (options.force) {
    clearStaleMount(path, native);
    mkdirSync(path, { recursive: true });
  }
  const session = new Session(path, ops, options, native);
  session.start(options);
  await session.ready;
  if (options.readahead !== undefined) setReadahead(path, options.readahead, options.log);
  return session;
}

/** Sets the mount's read-ahead through sysfs (the FUSE INIT reply cannot raise it past the kernel's offer). */
function setReadahead(
  path: string,
  bytes: number,
  log: (message: string) => void = (m) => void process.stderr.write(`fuse: ${m}\n`),
): void {
  const device = fuseMountAt(path)?.device;
  try {
    if (!Number.isInteger(bytes) || bytes < 0) throw new Error(`readahead must be a byte count, got ${bytes}`);
    if (!device) throw new Error(`no FUSE mount found at ${path}`);
    writeFileSync(`/sys/class/bdi/${device}/read_ahead_kb`, String(Math.ceil(bytes / 1024)));
  } catch (e) {
    log(`read-ahead of ${path} left at the kernel's default: ${(e as Error).message}`);
  }
}
