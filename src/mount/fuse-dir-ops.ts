/**
 * @module mount/fuse-dir-ops
 * Directory listings through FUSE, with no per-open state: the kernel is
 * told opendir is not needed (ENOSYS with FUSE_CAP_NO_OPENDIR_SUPPORT, so it
 * sends no opendir or releasedir: two round trips less per listing, and
 * sqlite fsyncs its directory once per transaction), and readdir and
 * readdirplus arrive with no handle.
 *
 * So the offset the kernel passes back (telldir's cookie) must find its
 * place in a directory that may have changed since: entries are listed in
 * the order of a keyed 52-bit hash of their names, and an entry's cookie is
 * its hash. A readdir from cookie C lists the entries whose hash is above C.
 * An entry that exists throughout a listing is therefore listed exactly
 * once whatever is created, removed or renamed meanwhile, and seekdir to any
 * cookie works. The key is random per agent, so names cannot be crafted to
 * collide; names of one directory that still share a hash are kept in one
 * reply (an entry could be skipped only if a reader's buffer ended between
 * two of them: about 1 directory of a million names in 20,000 has such a
 * pair at all).
 *
 * Without opendir the kernel caches listings in the directory's pages (its
 * default then is FOPEN_CACHE_DIR): it drops them itself when it changes the
 * directory, and a swap of the view drops them (InodeTable.viewChanged).
 *
 * The sorted order is kept per directory version (ChildMap.version), so a
 * listing costs one sort per change of the directory, not one per page.
 * readdirplus answers each entry as a lookup too, so `ls -l` costs no
 * lookup or getattr per name.
 */
import { createHash, randomBytes } from 'node:crypto';
import { fsError } from './fs-error.js';
import { direntPlusSize, direntSize, entryOf, typeBits } from './fuse-attrs.js';
import type { FsContext } from './fuse-host.js';
import type { DirEntry, DirEntryPlus, LowLevelOps, RequestContext } from './fuse/types.js';
import type { MountView } from './mount-view.js';
import type { ChildMap, DirNode, Node } from './nodes.js';

/** FUSE_CAP_NO_OPENDIR_SUPPORT: the kernel takes ENOSYS from opendir as "no opendir needed" (Linux 5.1+). */
const CAP_NO_OPENDIR_SUPPORT = 1 << 24;
const KEY = randomBytes(16);

/** A name's cookie: 1 .. 2^52, the same for the agent's life (0 is "from the start"). */
export function cookieOf(name: string): number {
  const h = createHash('sha256').update(KEY).update(name).digest();
  return h.readUIntBE(0, 6) * 16 + (h[6]! >> 4) + 1;
}

interface Listing {
  version: number;
  /** By cookie, then name. */
  cookies: number[];
  names: string[];
}

/** One directory's entries in cookie order (memoized per version of its ChildMap). */
const listings = new WeakMap<ChildMap, Listing>();

function listingOf(children: ChildMap): Listing {
  let l = listings.get(children);
  if (l && l.version === children.version) return l;
  const old = l ? new Map(l.names.map((n, i) => [n, l!.cookies[i]!])) : undefined;
  const all = [...children.keys()].map((name) => ({ name, cookie: old?.get(name) ?? cookieOf(name) }));
  all.sort((a, b) => a.cookie - b.cookie || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  l = { version: children.version, cookies: all.map((e) => e.cookie), names: all.map((e) => e.name) };
  listings.set(children, l);
  return l;
}

/** Index of the first entry whose cookie is above `offset`. */
function firstAfter(cookies: readonly number[], offset: number): number {
  let lo = 0, hi = cookies.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (cookies[mid]! <= offset) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * The entries after `offset` that fit in `size` bytes, whole groups of equal cookies only (unless the first
 * group alone is too big, which only names crafted against a known key could make).
 */
function page(children: ChildMap, offset: number, size: number, bytes: (name: string) => number): Array<[string, Node, number]> {
  const { cookies, names } = listingOf(children);
  const out: Array<[string, Node, number]> = [];
  let room = size;
  for (let i = firstAfter(cookies, offset); i < names.length;) {
    let j = i, need = 0;
    while (j < names.length && cookies[j] === cookies[i]) need += bytes(names[j++]!);
    if (need > room && out.length > 0) break;
    for (let k = i; k < j; k++) {
      room -= bytes(names[k]!);
      if (room < 0) return out;
      out.push([names[k]!, children.get(names[k]!)!, cookies[k]!]);
    }
    i = j;
  }
  return out;
}

export type DirOpNames = 'opendir' | 'readdir' | 'readdirplus' | 'releasedir';

export class DirOps {
  readonly #fs: FsContext;
  /** The kernel's capabilities (set at init): whether it can do without opendir. */
  capable = 0;

  constructor(fs: FsContext) {
    this.#fs = fs;
  }

  async #dir(ino: number): Promise<{ view: MountView; dir: DirNode; children: ChildMap }> {
    const inode = this.#fs.inodes.get(ino);
    const node = await this.#fs.inodes.nodeOf(inode);
    if (node.type !== 'dir') throw fsError('ENOTDIR');
    // After nodeOf the directory's view is the current one (or, orphaned, its own).
    return { view: inode.view, dir: node, children: await inode.view.children(node) };
  }

  readonly ops: Pick<LowLevelOps, DirOpNames> = {
    opendir: async (_ctx: RequestContext, ino: number) => {
      if ((this.capable & CAP_NO_OPENDIR_SUPPORT) !== 0) throw fsError('ENOSYS', 'no opendir needed: listings keep no state');
      await this.#dir(ino); // a kernel without it still gets ENOTDIR here
      return { fh: 0 };
    },

    readdir: async (_ctx, ino, size, offset) => {
      const { children } = await this.#dir(ino);
      return page(children, offset, size, direntSize).map(([name, node, off]): DirEntry => (
        { name, ino: this.#fs.inodes.inoOf(node) ?? 0xffffffff, mode: typeBits(node), off }));
    },

    readdirplus: async (_ctx, ino, size, offset) => {
      const { view, children } = await this.#dir(ino);
      return page(children, offset, size, direntPlusSize).map(([name, node, off]): DirEntryPlus => (
        { name, entry: entryOf(this.#fs.inodes.lookupOf(node, view), node, this.#fs.host.owner), off }));
    },

    releasedir: async () => {},
  };
}
