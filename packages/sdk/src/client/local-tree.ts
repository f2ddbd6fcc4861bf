/**
 * @module client/local-tree
 * The walk of a local directory for `vol.upload`: every file, directory and
 * inner symlink, never following links. A symlink is kept only when it stays
 * inside the uploaded directory twice over: its target, read as text,
 * neither is absolute nor climbs out, and resolved for real on this disk
 * (component by component as the kernel does) it lands inside the
 * directory's own realpath; others are skipped and reported. Paths past
 * PATH_MAX are reached relative to open directories (sdk/long-paths).
 */
import type { Dir, Stats } from 'node:fs';
import { lstat, opendir, readlink, realpath } from 'node:fs/promises';
import { dirname, isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { InvalidArgumentError, type StowageError } from '../common/errors.js';
import { parsePath } from '../common/paths.js';
import type { LongPaths } from './long-paths.js';

/** A directory entry that was not uploaded, and why. */
export interface SkippedEntry {
  /** Path relative to the uploaded directory. */
  path: string;
  reason: string;
  /** The link target, for skipped symlinks. */
  target?: string;
}

/** A local file or directory that cannot be read, as the error an upload reports. */
export function localError(e: unknown, path: string): StowageError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return new InvalidArgumentError(`no such local file or directory: ${path}`, { cause: e });
  if (code === 'EACCES' || code === 'EPERM') return new InvalidArgumentError(`cannot read ${path}: permission denied`, { cause: e });
  return new InvalidArgumentError(`cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
}

/** What a walk of a local tree found (paths relative to its root, "/"-separated). */
export interface LocalTree {
  files: Array<{ rel: string; abs: string }>;
  dirs: Array<{ rel: string; mode: number; mtimeNs: bigint }>;
  links: Array<{ rel: string; target: string }>;
  skipped: SkippedEntry[];
}

/**
 * Why a symlink at `rel` (relative to the uploaded root) with `target` may
 * not be stored, or undefined when it stays inside the tree.
 *
 * @example
 * escapeReason('a/link', '../b'); // undefined: resolves to "b"
 * escapeReason('a/link', '../../etc/passwd'); // "points outside the uploaded directory"
 */
export function escapeReason(rel: string, target: string): string | undefined {
  if (target === '') return 'empty symlink target';
  if (target.startsWith('/') || /^[A-Za-z]:[\\/]/.test(target) || target.startsWith('\\')) return 'absolute symlink target';
  const resolved = posix.normalize(posix.join(posix.dirname(rel), target));
  if (resolved === '..' || resolved.startsWith('../')) return 'points outside the uploaded directory';
  // The server refuses these (a name before ".." may be a link that leads to the top, and ".." then climbs out);
  // skipping the one link is better than failing the whole upload.
  const parts = target.split('/').filter((x) => x !== '' && x !== '.');
  if (parts.some((x, i) => x === '..' && parts.slice(0, i).some((y) => y !== '..'))) return 'has ".." after a name (write its target with every ".." first)';
  return undefined;
}

/** True when `p` is `root` or below it (both absolute and resolved). */
function isWithin(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * The path a link's text names, from its directory, NOT normalised: "a/../b"
 * must be walked as written, since "a" may itself be a symlink (path
 * normalisation would drop the "a/..").
 */
function linkPath(dir: string, target: string): string {
  return target.startsWith('/') ? target : `${dir}/${target}`;
}

/** Symlinks followed while resolving one path before it counts as a loop (Linux's limit). */
const MAX_LINK_HOPS = 40;

/**
 * Where a path lands once every symlink on it is followed on this disk, as
 * the kernel would: component by component, a symlink's text replacing it
 * (an absolute one restarting from "/"), ".." going up from where the walk
 * really is. A component that does not exist ends the walk; the rest is
 * joined as text. Done here rather than by realpath(3), which cannot answer
 * for paths past PATH_MAX. Throws ELOOP for a loop of links.
 */
async function landing(p: string, lp: LongPaths): Promise<string> {
  const todo = p.split('/').filter((c) => c !== '' && c !== '.');
  let at: string[] = [];
  let hops = 0;
  while (todo.length > 0) {
    const c = todo.shift()!;
    if (c === '..') {
      at.pop();
      continue;
    }
    const next = `/${[...at, c].join('/')}`;
    let st: Stats;
    try {
      st = await lstat(lp.short(next));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
      // Nothing there: the rest is plain text.
      return resolve(next, ...todo);
    }
    if (!st.isSymbolicLink()) {
      at.push(c);
      continue;
    }
    if (++hops > MAX_LINK_HOPS) throw Object.assign(new Error(`too many levels of symlinks at ${next}`), { code: 'ELOOP' });
    const target = await readlink(lp.short(next));
    if (target.startsWith('/')) at = [];
    todo.unshift(...target.split('/').filter((x) => x !== '' && x !== '.'));
  }
  return `/${at.join('/')}`;
}

/**
 * Why the symlink at `abs` (`rel` in the tree, pointing at `target`) may not
 * be stored, or undefined: escapeReason on its text, then where it lands for
 * real against the realpath of the uploaded root.
 */
async function linkEscapeReason(realRoot: string, abs: string, rel: string, target: string, lp: LongPaths): Promise<string | undefined> {
  const lexical = escapeReason(rel, target);
  if (lexical) return lexical;
  let lands: string;
  try {
    lands = await landing(linkPath(dirname(abs), target), lp);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ELOOP' ? 'a loop of symlinks' : `cannot resolve it: ${code ?? String(e)}`;
  }
  return isWithin(realRoot, lands) ? undefined : `resolves outside the uploaded directory (to ${lands}), through another symlink`;
}

/** Walks a local tree; `lp` names paths past PATH_MAX relative to open directories (its handles must outlive the reads of the files found). */
export async function walkTree(root: string, lp: LongPaths): Promise<LocalTree> {
  const tree: LocalTree = { files: [], dirs: [], links: [], skipped: [] };
  let realRoot: string;
  try {
    realRoot = await realpath(root);
  } catch (e) {
    throw localError(e, root);
  }
  const visit = async (absDir: string, relDir: string): Promise<void> => {
    let dir: Dir;
    try {
      dir = await opendir(lp.short(absDir));
    } catch (e) {
      throw localError(e, absDir);
    }
    // Dirents carry lstat types: a symlink is reported as a symlink, never followed.
    const subdirs: Array<{ abs: string; rel: string }> = [];
    for await (const d of dir) {
      const rel = relDir === '' ? d.name : `${relDir}/${d.name}`;
      const abs = join(absDir, d.name);
      try {
        parsePath(`/${rel}`);
      } catch (e) {
        tree.skipped.push({ path: rel, reason: `name not allowed in a volume (${e instanceof Error ? e.message : String(e)})` });
        continue;
      }
      if (d.isSymbolicLink()) {
        const target = await readlink(lp.short(abs));
        const why = await linkEscapeReason(realRoot, abs, rel, target, lp);
        if (why) tree.skipped.push({ path: rel, target, reason: why });
        else tree.links.push({ rel, target });
      } else if (d.isFile()) {
        tree.files.push({ rel, abs });
      } else if (d.isDirectory()) {
        subdirs.push({ abs, rel });
      } else {
        tree.skipped.push({ path: rel, reason: 'not a regular file, directory or symlink' });
      }
    }
    for (const s of subdirs) {
      const st = await lstat(lp.short(s.abs), { bigint: true });
      tree.dirs.push({ rel: s.rel, mode: Number(st.mode) & 0o7777, mtimeNs: st.mtimeNs });
      await visit(s.abs, s.rel);
    }
  };
  await visit(root, '');
  return tree;
}
