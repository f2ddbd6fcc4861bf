/**
 * @module mount/overwrites
 * Telling the earlier writer (issue 10, bug 5). A commit that overwrites
 * another mount's work is told so by the server (`overwritten`), but the
 * mount whose work was overwritten never hears of it. So each mount records
 * (in its overlay db, which survives restarts) the commits it made since its
 * last reload and the volume paths they wrote; `mount-status` and `reload`
 * read the volume's change feed (GET .../changes) after the first of them and
 * report each recorded path that a later commit of someone else changed,
 * deleted or moved away — directly, or by deleting or replacing a directory
 * above it. What was found is kept, and the feed is read from where the last
 * look stopped, so each look costs only the commits since. `reload` reports
 * the list and clears it.
 *
 * "Later" is by commit sequence: a commit this mount's own commit merged
 * (made after this mount's base, before its commit) came first and is not an
 * overwrite of it; a path this mount wrote again after the other commit is
 * its own again.
 */
import type * as wire from '@stowage/sdk/api/wire.js';
import type { OverlayStore } from './overlay-store.js';

/** One path of this mount's commits that a later commit of another writer changed. */
export interface Overwrite {
  /** The volume path. */
  path: string;
  /** The first later commit that changed it. */
  commit: string;
}

/** Reads the change feed: the commits after `since`, at most `limit`. */
export type ChangesFetcher = (since: string, limit: number) => Promise<wire.ChangesResponse>;

const CURSOR_KEY = 'overwrites.checked';
const FEED_PAGE = 100;

function under(path: string, dir: string): boolean {
  return path.startsWith(dir === '/' ? '/' : `${dir}/`);
}

/** Rebases `path` from under `from` to under `to` (`path` is `from` or below it). */
function rebase(path: string, from: string, to: string): string {
  return to + path.slice(from.length);
}

/**
 * The volume paths a commit's changes leave written by it: files put,
 * symlinks and directories made, attributes set, and where moves took them;
 * not paths a later change of the same commit deleted or moved away.
 */
export function writtenPaths(changes: readonly wire.Change[]): string[] {
  const written = new Set<string>();
  // How many written paths lie below each directory: a delete or move scans the set only when something is below.
  const below = new Map<string, number>();
  const ancestors = (path: string): string[] => {
    const out: string[] = [];
    for (let i = path.lastIndexOf('/'); i > 0; i = path.lastIndexOf('/', i - 1)) out.push(path.slice(0, i));
    out.push('/');
    return out;
  };
  const add = (path: string): void => {
    if (written.has(path)) return;
    written.add(path);
    for (const a of ancestors(path)) below.set(a, (below.get(a) ?? 0) + 1);
  };
  const remove = (path: string): void => {
    if (!written.delete(path)) return;
    for (const a of ancestors(path)) {
      const n = (below.get(a) ?? 1) - 1;
      if (n === 0) below.delete(a);
      else below.set(a, n);
    }
  };
  /** Removes `dir` and what is written below it; returns what was removed. */
  const take = (dir: string): string[] => {
    const taken = written.has(dir) ? [dir] : [];
    if ((below.get(dir) ?? 0) > 0) for (const p of written) if (under(p, dir)) taken.push(p);
    for (const p of taken) remove(p);
    return taken;
  };
  for (const c of changes) {
    switch (c.op) {
      case 'put':
      case 'symlink':
      case 'mkdir':
      case 'setattr':
        add(c.path);
        break;
      case 'delete':
        take(c.path);
        break;
      case 'move': {
        const moved = take(c.from);
        take(c.to);
        for (const p of moved) add(rebase(p, c.from, c.to));
        add(c.to);
        break;
      }
      default:
        break;
    }
  }
  return [...written];
}

/** Finds, records and lists the overwrites of this mount's commits; one look at a time. */
export class OverwriteWatch {
  #flight: Promise<Overwrite[]> | null = null;
  /** Commits of this mount running now, and started ever: a look must not take one of them for someone else's. */
  #committing = 0;
  #commitsStarted = 0;

  constructor(
    private readonly store: OverlayStore,
    private readonly fetch: ChangesFetcher,
    private readonly log: (message: string) => void,
  ) {}

  /**
   * Runs one commit of this mount (which calls `recorded` when it lands).
   * Meanwhile, and for a look that was under way when it started, the feed
   * may already hold that commit while it is not yet known as ours: such
   * looks answer what was found before and read the feed again next time.
   */
  async during<T>(commit: () => Promise<T>): Promise<T> {
    this.#committing++;
    this.#commitsStarted++;
    try {
      return await commit();
    } finally {
      this.#committing--;
    }
  }

  /** Records a commit this mount just made. */
  recorded(
    commit: { id: string; seq: number },
    changes: readonly wire.Change[],
    skipped: ReadonlyArray<{ path: string }> = [],
  ): void {
    const skip = new Set(skipped.map((s) => s.path));
    this.store.recordOwnCommit(
      commit.id,
      commit.seq,
      writtenPaths(changes).filter((p) => !skip.has(p)),
    );
  }

  /** What was found so far, without asking the server. */
  known(): Overwrite[] {
    return this.store.overwritten();
  }

  /**
   * Reads the feed since the last look and returns every overwrite found
   * since the last reload. When the server cannot be asked, what was found
   * before (and the reason is logged), unless `strict`.
   */
  async check(options: { strict?: boolean } = {}): Promise<Overwrite[]> {
    this.#flight ??= this.#look().finally(() => {
      this.#flight = null;
    });
    try {
      return await this.#flight;
    } catch (e) {
      if (options.strict) throw e;
      this.log(
        `looking for later commits over this mount's paths failed (reporting what was found before): ${(e as Error).message}`,
      );
      return this.known();
    }
  }

  /** Forgets the commits and the list (after a reload reported it). */
  clear(): void {
    this.store.clearOwnCommits();
  }

  async #look(): Promise<Overwrite[]> {
    const own = this.store.ownCommits();
    if (own.length === 0 || this.#committing > 0) return this.known();
    const started = this.#commitsStarted;
    const ours = new Set(own.map((c) => c.id));
    let cursor = this.store.getMeta(CURSOR_KEY) ?? own[0]!.id;
    for (;;) {
      const page = await this.fetch(cursor, FEED_PAGE);
      if (this.#commitsStarted !== started) return this.known(); // a commit of ours may be in this page unrecorded
      for (const commit of page.commits) {
        if (!ours.has(commit.id)) this.#apply(commit);
        cursor = commit.id;
      }
      this.store.setMeta(CURSOR_KEY, cursor);
      if (page.commits.length < FEED_PAGE || cursor === page.head) break;
    }
    return this.known();
  }

  /** Marks the own paths another writer's commit changed: the path itself, or everything below a directory it deleted or turned into something else. */
  #apply(commit: wire.ChangesResponse['commits'][number]): void {
    const earlier = (seq: number | undefined): boolean => seq !== undefined && seq < commit.seq;
    for (const ch of commit.changes) {
      if (earlier(this.store.ownPathSeq(ch.path))) this.store.markOverwritten(ch.path, commit.id);
      // The feed lists every entry below a directory that went away, but only the first 10,000 paths of a commit:
      // the directory's own entry covers the rest.
      if (ch.kind === 'deleted' || ch.type !== 'dir') {
        for (const below of this.store.ownPathsUnder(ch.path))
          if (earlier(below.seq)) this.store.markOverwritten(below.path, commit.id);
      }
    }
    if (commit.truncated)
      this.log(
        `commit ${commit.id.slice(0, 12)} changed more paths than the feed lists: overwrites of this mount's paths below directories it kept may be missed`,
      );
  }
}
