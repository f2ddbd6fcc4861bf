/**
 * @module engine/change-feed
 * The changes of a volume after a given commit, commit by commit, each as
 * the per-path diff from its predecessor (engine/tree/tree-diff): what `watch`
 * streams. Commits are found by their sequence numbers, so any replica can
 * answer from the metadata store alone, and a watcher that resumes from the
 * last commit it saw misses nothing.
 */
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import type { CommitId } from '@stowage/sdk/common/ids.js';
import type { FileOpsHost } from './file-ops-host.js';
import { diffTrees } from './tree/tree-diff.js';
import type { Actor, CommitChanges, TreeChange } from './types.js';

/** Paths reported per commit at most; a larger commit is marked `truncated`. */
export const MAX_CHANGES_PER_COMMIT = 10_000;

/**
 * The commits after `since` (oldest first, at most `limit`), each with its
 * changes, and the volume's head. NotFound when `since` is not a commit of
 * this volume.
 */
export async function changesSince(
  host: FileOpsHost,
  actor: Actor,
  volume: string,
  since: string,
  limit = 100,
): Promise<{ head: CommitId; commits: CommitChanges[] }> {
  const vol = await host.volumeFor(actor, volume, 'read');
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000)
    throw new InvalidArgumentError('limit must be between 1 and 1000');
  const from = await host.resolveCommit(vol, since);
  const head = await host.resolveCommit(vol, vol.head);
  if (head.seq <= from.seq) return { head: head.id, commits: [] };
  const rows = await host.md.listCommits(vol.id, { limit, beforeSeq: Math.min(head.seq, from.seq + limit) + 1 });
  const after = rows.filter((c) => c.seq > from.seq).sort((a, b) => a.seq - b.seq);
  const out: CommitChanges[] = [];
  let prev = from;
  for (const commit of after) {
    const changes: TreeChange[] = [];
    let truncated = false;
    for await (const change of diffTrees(host.reader, prev.tree, commit.tree)) {
      if (changes.length >= MAX_CHANGES_PER_COMMIT) {
        truncated = true;
        break;
      }
      changes.push(change);
    }
    out.push({ commit, changes, truncated });
    prev = commit;
  }
  return { head: head.id, commits: out };
}
