/**
 * @module engine/tree-diff
 * What changed between two trees, path by path: the change feed behind
 * `watch`. Directories whose tree hashes are equal hold equal content and are
 * skipped without being read, so a diff costs the nodes along the changed
 * paths, not a walk of the volume.
 *
 * Vocabulary: a change is `added` (a path absent before), `deleted` (a path
 * absent after) or `modified` (same path, other content, mode, mtime or
 * type). A directory that appears or disappears reports itself and every
 * entry below it, so a watcher never has to list what arrived.
 */
import type { TreeHash } from '../common/ids.js';
import { compareNames, type Entry } from './tree-codec.js';
import type { TreeReader } from './tree-reader.js';

/** One changed path. */
export interface TreeChange {
  path: string;
  kind: 'added' | 'modified' | 'deleted';
  type: Entry['type'];
}

/** Whether two entries of the same name and type differ (directories: only their own mode; their content is diffed below). */
function entryChanged(a: Entry, b: Entry): boolean {
  if (a.mode !== b.mode) return true;
  if (a.type === 'file' && b.type === 'file') return a.size !== b.size || a.mtime !== b.mtime || a.chunks.length !== b.chunks.length || a.chunks.some((h, i) => h !== b.chunks[i]);
  if (a.type === 'symlink' && b.type === 'symlink') return a.target !== b.target || a.mtime !== b.mtime;
  return false;
}

/**
 * Yields the changes from tree `from` to tree `to`, in path order (names
 * within a directory, parents before children), skipping equal subtrees.
 */
export async function* diffTrees(reader: Pick<TreeReader, 'get' | 'walk'>, from: TreeHash, to: TreeHash, prefix = ''): AsyncGenerator<TreeChange> {
  if (from === to) return;
  const [a, b] = await Promise.all([reader.get(from), reader.get(to)]);
  let i = 0;
  let j = 0;
  while (i < a.entries.length || j < b.entries.length) {
    const x = a.entries[i];
    const y = b.entries[j];
    const order = x === undefined ? 1 : y === undefined ? -1 : compareNames(x.name, y.name);
    if (order < 0) {
      yield* whole(reader, x!, `${prefix}/${x!.name}`, 'deleted');
      i++;
    } else if (order > 0) {
      yield* whole(reader, y!, `${prefix}/${y!.name}`, 'added');
      j++;
    } else {
      const path = `${prefix}/${x!.name}`;
      if (x!.type !== y!.type) {
        // A file became a directory (or the reverse): the old one went, the new one came.
        yield* whole(reader, x!, path, 'deleted');
        yield* whole(reader, y!, path, 'added');
      } else {
        if (entryChanged(x!, y!)) yield { path, kind: 'modified', type: y!.type };
        if (x!.type === 'dir' && y!.type === 'dir' && x!.tree !== y!.tree) yield* diffTrees(reader, x!.tree, y!.tree, path);
      }
      i++;
      j++;
    }
  }
}

/** An entry that appeared or disappeared, with everything below it. */
async function* whole(reader: Pick<TreeReader, 'get' | 'walk'>, entry: Entry, path: string, kind: 'added' | 'deleted'): AsyncGenerator<TreeChange> {
  yield { path, kind, type: entry.type };
  if (entry.type !== 'dir') return;
  for await (const below of reader.walk(await reader.get(entry.tree), path)) yield { path: below.path, kind, type: below.entry.type };
}
