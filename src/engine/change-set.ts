/**
 * @module engine/change-set
 * Turns the changes a client sends (wire `Change`s) into validated edits,
 * applies them to a tree editor in order, and finds the paths where applying
 * them overwrites work committed after the client's base.
 */
import type { Change, SkippedChange } from '@stowage/sdk/api/wire.js';
import { ALLOWED_CHUNK_SIZES, chunkCount, chunkLength } from '@stowage/sdk/common/chunking.js';
import { Pacer } from '@stowage/sdk/common/concurrency.js';
import { AlreadyExistsError, ConflictError, InvalidArgumentError, NotFoundError } from '@stowage/sdk/common/errors.js';
import { ChunkHash, type TreeHash } from '@stowage/sdk/common/ids.js';
import {
  MAX_COMMIT_CHANGES,
  MAX_OWNER_ID,
  MAX_TIME_MS,
  MAX_TIME_NS,
  tooManyChanges,
} from '@stowage/sdk/common/limits.js';
import { MAX_PATH_BYTES, parsePath, type VolumePath } from '@stowage/sdk/common/paths.js';
import { entryFingerprint, type Entry, type EntryMeta, type FileEntry } from './tree/tree-codec.js';
import type { TreeEditor } from './tree/tree-editor.js';
import type { TreeReader } from './tree/tree-reader.js';
import type { SetAttrs } from './tree/tree-editor.js';

/** A change whose paths, modes and chunk lists have been checked. */
export type Edit =
  | { op: 'put'; path: VolumePath; entry: Entry; createParents: boolean }
  | { op: 'mkdir'; path: VolumePath; mode: number; mtime: number; meta: EntryMeta }
  | { op: 'delete'; path: VolumePath; recursive: boolean; mustExist: boolean }
  | { op: 'move'; from: VolumePath; to: VolumePath; overwrite: boolean }
  | ({ op: 'setattr'; path: VolumePath } & SetAttrs);

/** Largest change set one commit accepts (common/limits). */
export const MAX_CHANGES = MAX_COMMIT_CHANGES;
const MAX_FILE_SIZE = Number.MAX_SAFE_INTEGER;

function mode(value: unknown, fallback: number, where: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0o7777)
    throw new InvalidArgumentError(`${where}: mode must be an integer between 0 and 0o7777`);
  return value;
}

function time(value: unknown, where: string, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || Math.abs(value) > MAX_TIME_MS) {
    throw new InvalidArgumentError(
      `${where}: ${name} must be a whole number of milliseconds since the epoch, within ±${MAX_TIME_MS} (the range of a Date)`,
    );
  }
  return value;
}

function mtime(value: unknown, fallback: number, where: string): number {
  return value === undefined ? fallback : time(value, where, 'mtime');
}

function nanos(value: unknown, where: string, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_TIME_NS) {
    throw new InvalidArgumentError(
      `${where}: ${name} must be a whole number of nanoseconds past the millisecond, between 0 and ${MAX_TIME_NS}`,
    );
  }
  return value;
}

function ownerId(value: unknown, where: string, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > MAX_OWNER_ID) {
    throw new InvalidArgumentError(`${where}: ${name} must be a whole number between 0 and ${MAX_OWNER_ID}`);
  }
  return value;
}

type MetaInput = Partial<Record<keyof EntryMeta, unknown>> & { mtime?: unknown };

/**
 * The optional ownership and time fields of a put, symlink or mkdir change.
 * A nanosecond field needs its millisecond field in the same change: alone it
 * would refine a time the writer never stated.
 */
function meta(c: MetaInput, where: string): EntryMeta {
  const out: EntryMeta = {};
  if (c.uid !== undefined) out.uid = ownerId(c.uid, where, 'uid');
  if (c.gid !== undefined) out.gid = ownerId(c.gid, where, 'gid');
  for (const [ms, ns] of [
    ['mtime', 'mtimeNs'],
    ['atime', 'atimeNs'],
    ['ctime', 'ctimeNs'],
  ] as const) {
    if (ms !== 'mtime' && c[ms] !== undefined) out[ms] = time(c[ms], where, ms);
    if (c[ns] === undefined) continue;
    if (c[ms] === undefined)
      throw new InvalidArgumentError(
        `${where}: ${ns} needs ${ms} in the same change (send both, e.g. ${ms}: 1700000000123, ${ns}: 456789)`,
      );
    out[ns] = nanos(c[ns], where, ns);
  }
  return out;
}

const META_FIELDS = ['uid', 'gid', 'mtimeNs', 'atime', 'atimeNs', 'ctime', 'ctimeNs', 'mode', 'mtime'] as const;

/** Delete and move carry no attributes: a client sending some expects them applied, so say it instead of dropping them. */
function refuseAttributes(c: object, op: string, where: string): void {
  const given = META_FIELDS.filter((k) => (c as Record<string, unknown>)[k] !== undefined);
  if (given.length > 0)
    throw new InvalidArgumentError(
      `${where}: ${op} takes no ${given.join(', ')}; set attributes with put, mkdir, symlink or setattr`,
    );
}

function flag(value: unknown, fallback: boolean, where: string, name: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new InvalidArgumentError(`${where}: ${name} must be true or false`);
  return value;
}

function path(value: unknown, where: string): VolumePath {
  try {
    return parsePath(value);
  } catch (e) {
    throw new InvalidArgumentError(`${where}: ${(e as Error).message}`);
  }
}

/**
 * Why a symlink at `path` with `target` leaves the volume, or undefined when
 * it stays inside: an absolute target, a relative one that climbs above
 * "/" from the link's directory ("/a/link" -> "../../x"), or one with ".."
 * after a name ("r/../x"): the name may be a link, and ".." climbs from
 * where it leads. With every ".." first, each link stays inside on its own,
 * so any chain of them does too.
 *
 * @example
 * symlinkEscape('/a/link', '../b'); // undefined: "/b"
 * symlinkEscape('/a/link', '/usr/bin/python3'); // "its target is absolute"
 * symlinkEscape('/link', 'r/../x'); // refused: r may be a link ("r" -> "..")
 */
export function symlinkEscape(path: string, target: string): string | undefined {
  if (target.startsWith('/')) return 'its target is absolute';
  let depth = path.split('/').length - 2; // directories between "/" and the link
  let named = false;
  for (const part of target.split('/')) {
    if (part === '..') {
      // A system resolves "x/.." after x, and x may itself be a link (to "..", say): then the ".." climbs from
      // wherever x led, possibly the volume's top. Counting alone would pass "r/../../etc" with r -> "../..".
      if (named)
        return 'its target has ".." after a name, which climbs out of the volume when that name is a link; put every ".." first (e.g. "../../data/file")';
      depth--;
    } else if (part !== '' && part !== '.') {
      depth++;
      named = true;
    }
    if (depth < 0) return 'its target climbs out of the volume';
  }
  return undefined;
}

/**
 * Refuses symlink edits whose target leaves the volume (symlinkEscape). The
 * engine applies it to every writer but mounts: a mount stores what its
 * programs make (a Python venv's bin/python -> /usr/bin/python3), while the
 * file API and uploads have no reason to store a link into the reader's
 * own machine.
 */
export function refuseEscapingSymlinks(edits: readonly Edit[]): void {
  edits.forEach((e, i) => {
    if (e.op !== 'put' || e.entry.type !== 'symlink') return;
    const why = symlinkEscape(e.path, e.entry.target);
    if (why) {
      throw new InvalidArgumentError(
        `changes[${i}]: symlink ${e.path} -> ${JSON.stringify(e.entry.target.slice(0, 200))} is refused: ${why}. Links written through the API must stay inside the volume (use a relative target such as "../data/file"); only a mount stores links that leave it`,
      );
    }
  });
}

/**
 * Refuses a commit whose moves leave a symlink pointing out of the volume:
 * whether a link escapes depends on its depth, so moving it (or a directory
 * holding it) towards "/" can turn an inside link into one that climbs out.
 * Checked on the tree the edits produced (`root`, read through a reader that
 * also sees the commit's new nodes), at every move's target: whatever a move
 * carried ends under the target of the last move that carried it. A moved
 * directory is walked, so the cost is that of the moved subtrees.
 */
export async function refuseEscapingMovedLinks(
  reader: TreeReader,
  root: TreeHash,
  edits: readonly Edit[],
): Promise<void> {
  const targets = new Set<VolumePath>();
  for (const e of edits) if (e.op === 'move') targets.add(e.to);
  const pacer = new Pacer();
  const refuse = (path: string, target: string, why: string) =>
    new InvalidArgumentError(
      `moving it would leave symlink ${path} -> ${JSON.stringify(target.slice(0, 200))} pointing out of the volume: ${why}. Links written through the API must stay inside the volume; move it where its target stays inside, or rewrite the link`,
    );
  for (const to of targets) {
    const entry = await reader.lookup(root, to);
    if (entry?.type === 'symlink') {
      const why = symlinkEscape(to, entry.target);
      if (why) throw refuse(to, entry.target, why);
    } else if (entry?.type === 'dir') {
      for await (const { path: below, entry: e } of reader.walk(entry.tree, to)) {
        await pacer.tick();
        if (e.type !== 'symlink') continue;
        const why = symlinkEscape(below, e.target);
        if (why) throw refuse(below, e.target, why);
      }
    }
  }
}

/** Validates a change set; `now` is the default mtime. Gives the event loop a turn now and then: a set may hold 100,000 changes. */
export async function parseChanges(changes: readonly Change[], now: number): Promise<Edit[]> {
  if (!Array.isArray(changes) || changes.length === 0)
    throw new InvalidArgumentError('a commit needs at least one change');
  if (changes.length > MAX_CHANGES) throw tooManyChanges(changes.length);
  const pacer = new Pacer();
  const edits: Edit[] = [];
  for (const [i, c] of changes.entries()) {
    edits.push(parseChange(c, now, `changes[${i}]`));
    await pacer.tick();
  }
  return edits;
}

function parseChange(c: Change, now: number, where: string): Edit {
  switch (c?.op) {
    case 'put': {
      const p = path(c.path, where);
      if (p === '/') throw new InvalidArgumentError(`${where}: cannot write a file at "/"`);
      const size = c.size;
      if (!Number.isSafeInteger(size) || size < 0 || size > MAX_FILE_SIZE)
        throw new InvalidArgumentError(`${where}: size must be a whole number of bytes`);
      if (!ALLOWED_CHUNK_SIZES.includes(c.chunkSize))
        throw new InvalidArgumentError(`${where}: chunkSize must be one of ${ALLOWED_CHUNK_SIZES.join(', ')}`);
      if (!Array.isArray(c.chunks) || c.chunks.length !== chunkCount(size, c.chunkSize)) {
        throw new InvalidArgumentError(
          `${where}: a file of ${size} bytes cut in ${c.chunkSize}-byte chunks has ${chunkCount(size, c.chunkSize)} chunks, got ${Array.isArray(c.chunks) ? c.chunks.length : 'none'}`,
        );
      }
      const chunks = c.chunks.map((h) => {
        if (typeof h !== 'string' || !ChunkHash.is(h))
          throw new InvalidArgumentError(`${where}: chunk hashes must be 64 lowercase hex characters`);
        return h as ChunkHash;
      });
      const entry: FileEntry = {
        type: 'file',
        name: '',
        mode: mode(c.mode, 0o644, where),
        mtime: mtime(c.mtime, now, where),
        size,
        chunkSize: c.chunkSize,
        chunks,
        ...meta(c, where),
      };
      return { op: 'put', path: p, entry, createParents: flag(c.createParents, true, where, 'createParents') };
    }
    case 'symlink': {
      const p = path(c.path, where);
      if (p === '/') throw new InvalidArgumentError(`${where}: cannot create a symlink at "/"`);
      if (
        typeof c.target !== 'string' ||
        c.target.length === 0 ||
        c.target.includes('\0') ||
        Buffer.byteLength(c.target) > MAX_PATH_BYTES
      ) {
        throw new InvalidArgumentError(
          `${where}: symlink target must be a non-empty string without NUL, at most ${MAX_PATH_BYTES} bytes`,
        );
      }
      const entry: Entry = {
        type: 'symlink',
        name: '',
        mode: 0o777,
        mtime: mtime(c.mtime, now, where),
        target: c.target,
        ...meta(c, where),
      };
      return { op: 'put', path: p, entry, createParents: flag(c.createParents, true, where, 'createParents') };
    }
    case 'mkdir': {
      const p = path(c.path, where);
      if (p === '/') throw new InvalidArgumentError(`${where}: "/" always exists; mkdir needs a path below it`);
      return {
        op: 'mkdir',
        path: p,
        mode: mode(c.mode, 0o755, where),
        mtime: mtime(c.mtime, now, where),
        meta: meta(c, where),
      };
    }
    case 'delete':
      refuseAttributes(c, 'delete', where);
      return {
        op: 'delete',
        path: path(c.path, where),
        recursive: flag(c.recursive, false, where, 'recursive'),
        mustExist: flag(c.mustExist, false, where, 'mustExist'),
      };
    case 'move':
      refuseAttributes(c, 'move', where);
      return {
        op: 'move',
        from: path(c.from, `${where}.from`),
        to: path(c.to, `${where}.to`),
        overwrite: flag(c.overwrite, false, where, 'overwrite'),
      };
    case 'setattr': {
      const edit: Edit = { op: 'setattr', path: path(c.path, where) };
      if (c.mode !== undefined) edit.mode = mode(c.mode, 0, where);
      if (c.mtime !== undefined) edit.mtime = mtime(c.mtime, 0, where);
      // null removes the recorded owner (the entry then shows as the mount's own again).
      const { uid, gid, ...rest } = c;
      Object.assign(edit, meta(rest, where));
      if (uid !== undefined) edit.uid = uid === null ? null : ownerId(uid, where, 'uid');
      if (gid !== undefined) edit.gid = gid === null ? null : ownerId(gid, where, 'gid');
      return edit;
    }
    default:
      throw new InvalidArgumentError(
        `${where}: unknown op ${JSON.stringify((c as { op?: unknown })?.op)}; expected put, symlink, mkdir, delete, move or setattr`,
      );
  }
}

/** Every chunk the edits reference, with the length each must have. */
export function referencedChunks(edits: readonly Edit[]): Map<ChunkHash, number> {
  const out = new Map<ChunkHash, number>();
  for (const e of edits) {
    if (e.op !== 'put' || e.entry.type !== 'file') continue;
    const { size, chunkSize, chunks } = e.entry;
    chunks.forEach((h, i) => {
      const len = chunkLength(size, chunkSize, i);
      const seen = out.get(h);
      if (seen !== undefined && seen !== len)
        throw new InvalidArgumentError(`chunk ${h} is referenced with two different lengths (${seen} and ${len})`);
      out.set(h, len);
    });
  }
  return out;
}

/**
 * Applies the edits in order. With `bestEffort`, an edit that does not apply
 * to this tree (its path is gone, a parent became a file, a target is in the
 * way: NotFound, Conflict, AlreadyExists) is skipped and reported instead of
 * failing the whole set. That is safe because every TreeEditor operation
 * checks before it mutates, so a refused edit leaves the editor as it was.
 * Any other error (invalid edits) still fails.
 */
export async function applyEdits(
  editor: TreeEditor,
  edits: readonly Edit[],
  opts: { bestEffort?: boolean } = {},
): Promise<SkippedChange[]> {
  const skipped: SkippedChange[] = [];
  const pacer = new Pacer();
  for (const [index, e] of edits.entries()) {
    await pacer.tick();
    try {
      await applyEdit(editor, e);
    } catch (err) {
      if (!opts.bestEffort || !isInapplicable(err)) throw err;
      skipped.push({ index, path: e.op === 'move' ? e.from : e.path, reason: (err as Error).message });
    }
  }
  return skipped;
}

async function applyEdit(editor: TreeEditor, e: Edit): Promise<void> {
  switch (e.op) {
    case 'put':
      await editor.put(e.path, e.entry, e.createParents);
      break;
    case 'mkdir':
      await editor.mkdir(e.path, e.mode, e.mtime, e.meta);
      break;
    case 'delete': {
      const removed = await editor.remove(e.path, e.recursive);
      if (!removed && e.mustExist) throw new NotFoundError(`cannot remove ${e.path}: no such file or directory`);
      break;
    }
    case 'move':
      await editor.move(e.from, e.to, e.overwrite);
      break;
    case 'setattr':
      await editor.setattr(e.path, e);
      break;
  }
}

/** Errors that mean "this edit no longer fits the tree", as opposed to "this edit is wrong". */
function isInapplicable(err: unknown): boolean {
  return err instanceof NotFoundError || err instanceof ConflictError || err instanceof AlreadyExistsError;
}

/** The paths an edit writes (mkdir only adds, so it can overwrite nothing). */
function writtenPaths(e: Edit): VolumePath[] {
  switch (e.op) {
    case 'put':
    case 'delete':
    case 'setattr':
      return [e.path];
    case 'move':
      return [e.from, e.to];
    case 'mkdir':
      return [];
  }
}

/**
 * Paths the edits write that changed between `base` and `head`: there the
 * edits overwrite someone else's newer commit (last writer wins, made visible).
 */
export async function overwrittenPaths(
  reader: TreeReader,
  base: TreeHash,
  head: TreeHash,
  edits: readonly Edit[],
): Promise<string[]> {
  if (base === head) return [];
  const paths = new Set<VolumePath>();
  for (const e of edits) for (const p of writtenPaths(e)) paths.add(p);
  const out: string[] = [];
  const pacer = new Pacer();
  for (const p of paths) {
    if (p === '/') continue;
    await pacer.tick();
    const [before, after] = await Promise.all([reader.lookup(base, p), reader.lookup(head, p)]);
    if (entryFingerprint(before) !== entryFingerprint(after)) out.push(p);
  }
  return out.sort();
}
