/**
 * @module engine/tree/list-pages
 * Pages of a directory listing. The cursor is the last path a page returned;
 * the order is stable (names within a directory; depth-first, parents before
 * children, when recursive), so the next page starts right after the cursor
 * by descending along its path, without re-reading what came before: in a
 * paged (wide) directory the descent goes straight to the leaf that holds the
 * cursor's name.
 */
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { splitPath, type VolumePath } from '@stowage/sdk/common/paths.js';
import type { TreeHash } from '@stowage/sdk/common/ids.js';
import { compareNames, type Entry } from './tree-codec.js';
import type { TreeReader } from './tree-reader.js';

/**
 * Entries of directory `dir` (whose path is `prefix`, "" for the root) that
 * come after the path `after` in listing order (all of them when undefined).
 */
export async function* entriesAfter(
  reader: Pick<TreeReader, 'entries'>,
  dir: TreeHash,
  prefix: string,
  after: readonly string[] | undefined,
  recursive: boolean,
): AsyncGenerator<{ path: string; entry: Entry }> {
  for await (const entry of reader.entries(dir, after?.[0])) {
    const path = `${prefix}/${entry.name}`;
    let rest: readonly string[] | undefined;
    if (after !== undefined && after.length > 0) {
      const order = compareNames(entry.name, after[0]!);
      if (order < 0) continue;
      if (order === 0) {
        // The cursor is this entry (returned already) or lies below it.
        if (recursive && entry.type === 'dir') yield* entriesAfter(reader, entry.tree, path, after.slice(1), recursive);
        continue;
      }
      rest = undefined;
    }
    yield { path, entry };
    if (recursive && entry.type === 'dir') yield* entriesAfter(reader, entry.tree, path, rest, recursive);
  }
}

/** The cursor's names below the listed directory (undefined without a cursor); InvalidArgument when it does not lie below it. */
export function cursorParts(dir: VolumePath, after: VolumePath | undefined): string[] | undefined {
  if (after === undefined) return undefined;
  const d = splitPath(dir);
  const a = splitPath(after);
  if (a.length <= d.length || d.some((n, i) => a[i] !== n))
    throw new InvalidArgumentError(`cursor ${after} is not below ${dir}: pass the nextCursor of the previous page`);
  return a.slice(d.length);
}
