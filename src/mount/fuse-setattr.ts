/**
 * @module mount/fuse-setattr
 * Attribute changes through FUSE: size (truncate), mode, owner and times,
 * journaled when the inode's node is in the tree and applied to the node
 * alone when it is an orphan; and the owner a new entry records. Owners are
 * recorded relative to the mount's owner (`--uid/--gid`): that owner records
 * none, so a volume moves between sandboxes whose users have other uids.
 *
 * Set-user-ID and set-group-ID are cleared here, not by the kernel
 * (FUSE_HANDLE_KILLPRIV_V2: it then sends no getattr before each chown).
 * The kernel decides when, as it does for a local disk, and says so in the
 * request (`ctx.killSuidgid`): on chown/chgrp of a non-directory whoever
 * calls (chown(-1, -1) too, which arrives as an empty setattr: see
 * fuse-ops.ts), and on truncate, write and open(O_TRUNC) by a
 * caller without CAP_FSETID (the kernel checks the capability; the agent,
 * which sees only a uid, never guesses). What is cleared is what ext4
 * clears: set-user-ID always, set-group-ID only with group-exec (without it
 * the bit is a locking mark, not a privilege).
 */
import { fsError } from './fs-error.js';
import { MAX_FILE_SIZE, S_ISGID, S_ISUID, S_IXGRP, nsOf, signature, type Inode } from './fuse-attrs.js';
import type { FsContext, FsHost } from './fuse-host.js';
import type { RequestContext, SetattrRequest } from './fuse/types.js';
import type { MountView } from './mount-view.js';
import { nowNs, pathOf, type DirNode, type FileNode, type Node } from './nodes.js';
import type { Creator } from './view-nodes.js';

/** The owner a new entry records: the caller's, relative to the mount's owner; a setgid directory passes on its group. */
export function creatorOf(host: FsHost, ctx: RequestContext, dir: DirNode): Creator {
  const { owner } = host;
  const gid = (dir.mode & S_ISGID) !== 0 ? (dir.gid ?? owner.gid) : ctx.gid;
  return { uid: ctx.uid === owner.uid ? null : ctx.uid, gid: gid === owner.gid ? null : gid };
}

function recorded(id: number | undefined, ownerId: number): number | null | undefined {
  return id === undefined ? undefined : id === ownerId ? null : id;
}

/** The inode's file, local so it can be written: journaled when it is in the tree, a private copy when orphaned. */
export async function writable(fs: FsContext, view: MountView, inode: Inode): Promise<FileNode> {
  const node = await fs.inodes.nodeOf(inode);
  if (node.type !== 'file') throw fsError('EISDIR');
  if (node.local) return node;
  if (fs.inodes.attached(inode, view)) return view.localizeNode(node, pathOf(node));
  return inode.view.localizeDetached(node);
}

/** A mode without its privileges: set-user-ID, and set-group-ID when group-exec is set. */
export function withoutPrivs(mode: number): number {
  return (mode & S_IXGRP) !== 0 ? mode & ~(S_ISUID | S_ISGID) : mode & ~S_ISUID;
}

/** Clears a non-directory's privilege bits (journaled when in the tree); answers whether the mode changed. */
export async function dropPrivs(fs: FsContext, view: MountView, inode: Inode, node: Node): Promise<boolean> {
  if (node.type === 'dir' || node.type === 'symlink') return false;
  const mode = withoutPrivs(node.mode);
  if (mode === node.mode) return false;
  if (fs.inodes.attached(inode, view)) await view.chmod(pathOf(node), mode);
  else {
    node.mode = mode;
    node.ctime = nowNs();
  }
  return true;
}

/**
 * Applies a setattr; answers whether it changed the tree (a journaled change).
 * `killPrivs`: the kernel asked to clear set-user-ID/set-group-ID with it (a chown, or a truncate by a caller without CAP_FSETID).
 */
export async function applySetattr(
  fs: FsContext,
  view: MountView,
  inode: Inode,
  set: SetattrRequest,
  killPrivs = false,
): Promise<boolean> {
  let node = await fs.inodes.nodeOf(inode);
  const attached = fs.inodes.attached(inode, view);
  const path = attached ? pathOf(node) : null;
  const { owner } = fs.host;
  if (set.size !== undefined) {
    if (node.type === 'dir') throw fsError('EISDIR');
    if (node.type !== 'file') throw fsError('EINVAL');
    if (set.size > MAX_FILE_SIZE) throw fsError('EFBIG');
    node = await writable(fs, view, inode);
    await inode.view.content.truncate(node as FileNode, set.size);
    inode.cached = signature(node as FileNode);
  }
  if (set.mode !== undefined) {
    if (path !== null) await view.chmod(path, set.mode);
    else {
      node.mode = set.mode & 0o7777;
      node.ctime = nowNs();
    }
  }
  if (set.uid !== undefined || set.gid !== undefined) {
    const uid = recorded(set.uid, owner.uid);
    const gid = recorded(set.gid, owner.gid);
    if (path !== null) await view.chown(path, uid, gid);
    else {
      if (uid !== undefined) node.uid = uid;
      if (gid !== undefined) node.gid = gid;
      node.ctime = nowNs();
    }
  }
  if (killPrivs) await dropPrivs(fs, view, inode, node);
  if (set.atime !== undefined || set.mtime !== undefined) {
    const times = {
      ...(set.atime !== undefined ? { atime: nsOf(set.atime) } : {}),
      ...(set.mtime !== undefined ? { mtime: nsOf(set.mtime) } : {}),
    };
    if (path !== null) await view.utimens(path, times);
    else {
      if (times.atime !== undefined) node.atime = times.atime;
      if (times.mtime !== undefined) node.mtime = times.mtime;
      node.ctime = nowNs();
    }
  }
  return path !== null;
}
