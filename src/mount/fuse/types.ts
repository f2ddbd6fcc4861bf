/**
 * @module mount/fuse/types
 * The contract between Stowage's libfuse 3 binding (native/fuse3, loaded by
 * session.ts) and the file system it serves (mount/fuse-ops.ts).
 *
 * The binding speaks libfuse 3's low-level API: the kernel names files by
 * inode number, and every inode the file system hands out (lookup, create,
 * mkdir, mknod, symlink, link, readdirplus) adds one to that inode's lookup
 * count, which the kernel later takes back with `forget`. Operations are
 * async functions: the value they resolve with is the reply; an FsError they
 * throw is answered as its errno, anything else as EIO (and logged).
 *
 * Times are seconds and nanoseconds, not milliseconds: the kernel keeps
 * nanoseconds and tools (tar, rsync, make) compare them.
 */

export interface Timespec {
  sec: number;
  nsec: number;
}

/** Who asked: the calling process's credentials (as the mount's user namespace sees them). */
export interface RequestContext {
  uid: number;
  gid: number;
  pid: number;
  umask: number;
  /**
   * The kernel asks the file system to clear set-user-ID, and set-group-ID
   * when group-exec is set, as part of this request (FUSE_HANDLE_KILLPRIV_V2,
   * see ConnInfo.handleKillprivV2): on setattr for a chown of a
   * non-directory, or a truncate by a caller without CAP_FSETID; on write and
   * on open with O_TRUNC by a caller without CAP_FSETID. Always false
   * without v2 (the kernel then clears the bits itself with a setattr).
   */
  killSuidgid: boolean;
}

export interface Attr {
  ino: number;
  /** File type and permission bits (S_IFREG | 0o644, ...). */
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  rdev?: number;
  size: number;
  /** 512-byte blocks. */
  blocks: number;
  blksize?: number;
  atime: Timespec;
  mtime: Timespec;
  ctime: Timespec;
}

/** A lookup answer. `ino: 0` is a negative entry the kernel may cache for `entryTimeout` (it needs no `attr`). */
export interface Entry {
  ino: number;
  generation?: number;
  attr?: Attr;
  /** Seconds the kernel may keep the attributes / the name → inode binding. */
  attrTimeout: number;
  entryTimeout: number;
}

/** What a setattr changes: only the fields present. */
export interface SetattrRequest {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  /** 'now' is UTIME_NOW; an absent field is UTIME_OMIT (not to change). */
  atime?: Timespec | 'now';
  mtime?: Timespec | 'now';
}

export interface OpenReply {
  fh: number;
  directIo?: boolean;
  /** Keep the kernel's cached pages of this file from an earlier open. */
  keepCache?: boolean;
  nonseekable?: boolean;
  /** Directories: let the kernel cache the listing. */
  cacheReaddir?: boolean;
}

export interface CreateReply {
  entry: Entry;
  open: OpenReply;
}

/** One readdir entry; `off` is the cookie of the entry after it (what the next readdir passes). */
export interface DirEntry {
  name: string;
  ino: number;
  /** Only the type bits of it are used. */
  mode: number;
  off: number;
}

/** One readdirplus entry: a lookup answer as well (the kernel counts it as a lookup). */
export interface DirEntryPlus {
  name: string;
  entry: Entry;
  off: number;
}

export interface Statvfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

/**
 * The operations a file system implements. A missing one answers ENOSYS
 * (for the xattr family the kernel then stops asking).
 *
 * Lookup counting: every Entry returned by lookup, mknod, mkdir, symlink,
 * link, create and every DirEntryPlus returned by readdirplus counts one
 * lookup of its inode (none for `ino: 0`). When the kernel does not take an
 * entry (a readdirplus reply that fills up, an interrupted request) the
 * session calls `forget(ino, 1)` for it, so the file system's count stays
 * the kernel's. The kernel never counts the "." and ".." entries of a
 * readdirplus reply, so the session forgets those too (count them like any
 * other entry, or return them with `ino: 0`).
 */
export interface LowLevelOps {
  init?(conn: ConnInfo): void;
  destroy?(): void;
  lookup(ctx: RequestContext, parent: number, name: string): Promise<Entry>;
  forget(ino: number, nlookup: number): void;
  getattr(ctx: RequestContext, ino: number, fh: number | null): Promise<{ attr: Attr; timeout: number }>;
  setattr(
    ctx: RequestContext,
    ino: number,
    set: SetattrRequest,
    fh: number | null,
  ): Promise<{ attr: Attr; timeout: number }>;
  readlink(ctx: RequestContext, ino: number): Promise<string>;
  mknod(ctx: RequestContext, parent: number, name: string, mode: number, rdev: number): Promise<Entry>;
  mkdir(ctx: RequestContext, parent: number, name: string, mode: number): Promise<Entry>;
  unlink(ctx: RequestContext, parent: number, name: string): Promise<void>;
  rmdir(ctx: RequestContext, parent: number, name: string): Promise<void>;
  symlink(ctx: RequestContext, target: string, parent: number, name: string): Promise<Entry>;
  /** `flags`: RENAME_NOREPLACE (1), RENAME_EXCHANGE (2). */
  rename(
    ctx: RequestContext,
    parent: number,
    name: string,
    newParent: number,
    newName: string,
    flags: number,
  ): Promise<void>;
  link(ctx: RequestContext, ino: number, newParent: number, newName: string): Promise<Entry>;
  open(ctx: RequestContext, ino: number, flags: number): Promise<OpenReply>;
  /** Resolves with the bytes read (at most `size`; fewer only at end of file). */
  read(ctx: RequestContext, ino: number, size: number, offset: number, fh: number): Promise<Buffer>;
  /** `data` is the binding's copy: it may be kept. Resolves with the count written. */
  write(ctx: RequestContext, ino: number, data: Buffer, offset: number, fh: number): Promise<number>;
  /** Absent: ENOSYS, and the kernel stops sending flushes (one round trip less per close). */
  flush?(ctx: RequestContext, ino: number, fh: number): Promise<void>;
  release(ctx: RequestContext, ino: number, fh: number, flags: number): Promise<void>;
  /** Absent: ENOSYS, which the kernel takes as "nothing to sync" for good (fsync succeeds at once). */
  fsync?(ctx: RequestContext, ino: number, datasync: boolean, fh: number): Promise<void>;
  opendir(ctx: RequestContext, ino: number, flags: number): Promise<OpenReply>;
  readdir?(ctx: RequestContext, ino: number, size: number, offset: number, fh: number): Promise<DirEntry[]>;
  readdirplus(ctx: RequestContext, ino: number, size: number, offset: number, fh: number): Promise<DirEntryPlus[]>;
  releasedir(ctx: RequestContext, ino: number, fh: number): Promise<void>;
  fsyncdir?(ctx: RequestContext, ino: number, datasync: boolean, fh: number): Promise<void>;
  statfs(ctx: RequestContext, ino: number): Promise<Statvfs>;
  access?(ctx: RequestContext, ino: number, mask: number): Promise<void>;
  /** `flags` are open(2)'s. */
  create(ctx: RequestContext, parent: number, name: string, mode: number, flags: number): Promise<CreateReply>;
  fallocate?(ctx: RequestContext, ino: number, mode: number, offset: number, length: number, fh: number): Promise<void>;
}

/** What the kernel and libfuse agreed at init. */
export interface ConnInfo {
  protoMajor: number;
  protoMinor: number;
  maxWrite: number;
  maxRead: number;
  /** Largest request in pages (max_pages); 0 when the kernel did not offer FUSE_MAX_PAGES. */
  maxPages: number;
  maxReadahead: number;
  /** Capabilities in effect (FUSE_CAP_* bits). */
  want: number;
  capable: number;
  /**
   * FUSE_HANDLE_KILLPRIV_V2 is in effect (the kernel offered it; the binding
   * adds it to libfuse 3.14's INIT reply): the file system clears
   * set-user-ID/set-group-ID when a request's `killSuidgid` says so, and the
   * kernel no longer fetches attributes before each chown to do it itself.
   */
  handleKillprivV2: boolean;
}

export interface MountOptions {
  /** Mount options as for mount.fuse3: 'fsname=...', 'subtype=stowage', 'allow_other', 'default_permissions', 'ro'. */
  options: string[];
  /** Enable the kernel's writeback cache (FUSE_CAP_WRITEBACK_CACHE). Off by default. */
  writebackCache?: boolean;
  /** Lazily unmount a stale mount left at the path (a killed agent's "transport endpoint is not connected") first. */
  force?: boolean;
  /** Where unexpected errors of operations are reported (EIO is answered). */
  log?: (message: string) => void;
  /**
   * Read-ahead of the mount in bytes (its bdi's read_ahead_kb, so buffered
   * reads arrive as requests up to this size, at most max_pages). The kernel
   * starts FUSE mounts at 128 KiB. Needs root; otherwise logged and ignored.
   */
  readahead?: number;
  /**
   * Once every request is answered, how long (µs) the JS thread keeps polling
   * /dev/fuse before it sleeps in the event loop (default 200; 0: never). A
   * process issuing system calls back to back then finds the agent awake; a
   * wake-up of a sleeping thread costs ~100 µs on some virtual machines. It
   * costs CPU only while requests keep coming.
   */
  spinMicros?: number;
  /** Called once per request before it is served (a rate watcher such as wake-latency.ts); must be cheap and never throw. */
  onRequest?: () => void;
}

export interface FuseSession {
  readonly mountpoint: string;
  /** Known once the kernel's INIT was answered (mount() resolves after that). */
  readonly conn: ConnInfo;
  /**
   * Drops the kernel's cached attributes of an inode and its pages from
   * `offset` on (`length` 0: to the end; 0/0 is all of them); a negative
   * `offset` drops the attributes only (libfuse's notify_inval_inode).
   * Runs off the JS thread (the kernel may wait on a request this process
   * has yet to answer). ENOENT (the kernel no longer knows the inode) resolves.
   */
  invalidateInode(ino: number, offset?: number, length?: number): Promise<void>;
  /** Drops the kernel's cached name → inode binding of `name` in `parent`. ENOENT resolves. */
  invalidateEntry(parent: number, name: string): Promise<void>;
  /**
   * Requests the kernel sent since the mount, by operation name ('lookup',
   * 'getattr', ...; a batch of forgets counts one per inode), whatever their
   * answer, ENOSYS included: what a workload costs in round trips.
   */
  requestCounts(): Record<string, number>;
  /** Unmounts (the kernel sends no more requests) and ends the session. */
  unmount(): Promise<void>;
  /** Resolves when the session ends (unmount, `fusermount3 -u` from outside, or the device closing). */
  readonly closed: Promise<void>;
}
