/**
 * @module engine/tree/tree-diff
 * What changed between two trees, path by path: the change feed behind
 * `watch`. Directories whose tree hashes are equal hold equal content and are
 * skipped without being read, so a diff costs the nodes along the changed
 * paths, not a walk of the volume.
 *
 * Vocabulary: a change is `added` (a path absent before), `deleted` (a path
 * absent after) or `modified` (same path, other content, mode, owner, times
 * or type). A directory that appears or disappears reports itself and every
 * entry below it, so a watcher never has to list what arrived.
 */
import type { TreeHash } from '@stowage/sdk/common/ids.js';
import { canonicalMeta, compareNames, nodeLevel, type Entry } from './tree-codec.js';
import type { TreeReader } from './tree-reader.js';
import type { TreeChange } from '../types.js';

/** Ownership and every time, in canonical form (defaults dropped), for comparison. */
function attrsKey(e: Entry): string {
  const { uid, gid, mtimeNs, atime, atimeNs, ctime, ctimeNs } = canonicalMeta(e);
  return JSON.stringify([e.mode, e.mtime, uid, gid, mtimeNs, atime, atimeNs, ctime, ctimeNs]);
}

/**
 * Whether two entries of the same name and type differ: in mode, owner, a
 * time, or content (directories: their content is diffed below, so only
 * their own attributes count here).
 */
function entryChanged(a: Entry, b: Entry): boolean {
  if (attrsKey(a) !== attrsKey(b)) return true;
  if (a.type === 'file' && b.type === 'file')
    return a.size !== b.size || a.chunks.length !== b.chunks.length || a.chunks.some((h, i) => h !== b.chunks[i]);
  if (a.type === 'symlink' && b.type === 'symlink') return a.target !== b.target;
  return false;
}

/** What is left to visit of one side of a directory: node references (not yet opened, with their level) and entries, in name order. */
type Pending = { ref: TreeHash; level: number } | { entry: Entry };

/**
 * Yields the changes from directory `from` to directory `to`, in path order
 * (names within a directory, parents before children), skipping equal
 * subtrees and, inside a wide directory, equal pages: when both sides next
 * hold a node with the same hash, both nodes are passed over unread.
 */
export async function* diffTrees(
  reader: Pick<TreeReader, 'get' | 'walk'>,
  from: TreeHash,
  to: TreeHash,
  prefix = '',
): AsyncGenerator<TreeChange> {
  if (from === to) return;
  // Each side is a stack, next item last. Equal pages start at the same name on both sides whenever both
  // are next: everything before them was merged already, so skipping both skips equal entries only.
  // Opening the higher node first keeps both sides at the same level, where equal pages meet.
  const top = async (hash: TreeHash): Promise<Pending> => ({ ref: hash, level: nodeLevel(await reader.get(hash)) });
  const a: Pending[] = [await top(from)];
  const b: Pending[] = [await top(to)];
  const open = async (side: Pending[]): Promise<void> => {
    const node = await reader.get((side.pop() as { ref: TreeHash }).ref);
    if (node.kind === 'leaf') for (let k = node.entries.length - 1; k >= 0; k--) side.push({ entry: node.entries[k]! });
    else
      for (let k = node.children.length - 1; k >= 0; k--)
        side.push({ ref: node.children[k]!.tree, level: node.level - 1 });
  };
  while (a.length > 0 || b.length > 0) {
    const x = a.at(-1);
    const y = b.at(-1);
    const rx = x && 'ref' in x ? x : undefined;
    const ry = y && 'ref' in y ? y : undefined;
    if (rx && ry) {
      if (rx.ref === ry.ref) {
        a.pop();
        b.pop();
      } else if (rx.level >= ry.level) await open(a);
      else await open(b);
      continue;
    }
    if (rx) {
      await open(a);
      continue;
    }
    if (ry) {
      await open(b);
      continue;
    }
    const ex = x && (x as { entry: Entry }).entry;
    const ey = y && (y as { entry: Entry }).entry;
    const order = ex === undefined ? 1 : ey === undefined ? -1 : compareNames(ex.name, ey.name);
    if (order < 0) {
      a.pop();
      yield* whole(reader, ex!, `${prefix}/${ex!.name}`, 'deleted');
    } else if (order > 0) {
      b.pop();
      yield* whole(reader, ey!, `${prefix}/${ey!.name}`, 'added');
    } else {
      a.pop();
      b.pop();
      const path = `${prefix}/${ex!.name}`;
      if (ex!.type !== ey!.type) {
        // A file became a directory (or the reverse): the old one went, the new one came.
        yield* whole(reader, ex!, path, 'deleted');
        yield* whole(reader, ey!, path, 'added');
      } else {
        if (entryChanged(ex!, ey!)) yield { path, kind: 'modified', type: ey!.type };
        if (ex!.type === 'dir' && ey!.type === 'dir' && ex!.tree !== ey!.tree)
          yield* diffTrees(reader, ex!.tree, ey!.tree, path);
      }
    }
  }
}

/** An entry that appeared or disappeared, with everything below it. */
async function* whole(
  reader: Pick<TreeReader, 'get' | 'walk'>,
  entry: Entry,
  path: string,
  kind: 'added' | 'deleted',
): AsyncGenerator<TreeChange> {
  yield { path, kind, type: entry.type };
  if (entry.type !== 'dir') return;
  for await (const below of reader.walk(entry.tree, path)) yield { path: below.path, kind, type: below.entry.type };
}
