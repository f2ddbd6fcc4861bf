/**
 * @module mount/overlay-store
 * Where a mount's uncommitted work lives on local disk, so that it survives
 * the mount agent being killed (SPEC §2: the overlay is on local disk).
 *
 * - `journal.log`: the namespace operations since the base commit (mkdir,
 *   create, rename, unlink, chmod, ...) in the order they happened, one line
 *   each (journal-log.ts). Replaying it onto the base commit rebuilds the
 *   overlay view after a restart, and the commit turns it into the change
 *   list the server merges onto head. Its epoch changes with the base, in
 *   the database, so a crash between the two never replays an old journal.
 * - `files`: per local file that is not plain (a base file that was
 *   written, or a created file that was truncated): its chunk size, the base
 *   chunks it still shares, and which chunks were rewritten locally. Updated
 *   only when a chunk first turns dirty or on truncate, so ordinary writes
 *   touch no database row. A created file without a row has small chunks, no
 *   base chunks, and every chunk local.
 * - `data/<id>`: the file's bytes at their logical offsets, a sparse file
 *   whose length is always the file's size and whose mtime is the file's
 *   mtime. Only dirty chunks (and chunks past the base) hold data.
 * - `meta`: the base commit and anything else that must survive a restart.
 * - `own_commits`, `own_paths`, `overwritten`: the commits this mount made
 *   since its last reload, the paths they wrote, and those of them a later
 *   commit of someone else changed (see overwrites.ts). Kept across commits
 *   and restarts; only a reload clears them.
 *
 * Both are written synchronously (better-sqlite3, writeSync): each change is
 * one short local write made before the FUSE operation answers.
 */
import Database from 'better-sqlite3';
import { closeSync, existsSync, mkdirSync, open, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomHex } from '@stowage/sdk/common/ids.js';
import { joinNanos } from '@stowage/sdk/common/times.js';
import { JournalLog } from './journal-log.js';

/** One namespace operation, with paths relative to the mount root. */
export type JournalOp =
  | ({ op: 'mkdir'; path: string; mode: number } & JournalOwner)
  | ({ op: 'symlink'; path: string; target: string } & JournalOwner)
  /** A new, empty regular file whose bytes live in data/<dataId>. */
  | ({ op: 'create'; path: string; mode: number; dataId: string } & JournalOwner)
  /** A base file became local (it was written or truncated); its bytes now live in data/<dataId>. */
  | { op: 'localize'; path: string; dataId: string }
  | { op: 'unlink'; path: string }
  | { op: 'rmdir'; path: string }
  | { op: 'rename'; from: string; to: string }
  | { op: 'chmod'; path: string; mode: number }
  /** uid/gid: a number, or null for the mount's owner; absent: unchanged. */
  | ({ op: 'chown'; path: string } & JournalOwner)
  /** Times in nanoseconds as decimal strings (older journals: mtime in milliseconds as a number); absent: unchanged. */
  | { op: 'utimens'; path: string; mtime?: string | number; atime?: string };

/** A journaled time: nanoseconds as a decimal string, or (journals of older agents) milliseconds as a number. */
export function journalTime(t: string | number | undefined): bigint | undefined {
  if (t === undefined) return undefined;
  return typeof t === 'number' ? joinNanos(t) : BigInt(t);
}

/** The owner recorded with a new entry or by chown (null or absent: the mount's owner). */
export interface JournalOwner {
  uid?: number | null;
  gid?: number | null;
}

/** The persisted chunk state of one local file. */
export interface LocalFileRecord {
  dataId: string;
  chunkSize: number;
  /** Hashes of the base chunks the file still shares; index i is served from the base unless dirty. */
  baseChunks: string[];
  /** Chunk indexes rewritten locally. */
  dirty: number[];
}

/** Empty data files kept made ahead when spares are on (see `takeSpare`). */
const SPARE_FILES = 32;

export interface OverlayOptions {
  /** Make empty data files ahead on the thread pool (the mount agent; tests of other parts leave it off). */
  spares?: boolean;
}

export class OverlayStore {
  readonly #db: Database.Database;
  readonly dataDir: string;
  readonly #journal: JournalLog<JournalOp>;
  readonly #idPrefix = randomHex(8);
  #idCounter = 0;
  readonly #putFile: Database.Statement;
  /** Data files kept past a reset for open handles (see `reset`). */
  #kept = new Set<string>();
  /** Empty data files made ahead of need, and how many are being made for the current epoch of spares. */
  #spares: string[] = [];
  #sparesPending = 0;
  #spareEpoch = 0;
  readonly #spareTarget: number;
  /** Spare creations in flight (any epoch), and who waits for them to end. */
  #sparesInFlight = 0;
  #settled: Array<() => void> = [];
  #closed = false;

  private constructor(
    readonly dir: string,
    options: OverlayOptions,
  ) {
    this.#spareTarget = options.spares ? SPARE_FILES : 0;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    this.dataDir = join(dir, 'data');
    mkdirSync(this.dataDir, { recursive: true, mode: 0o700 });
    this.#db = new Database(join(dir, 'overlay.db'));
    // WAL without fsync per write: a killed agent loses nothing (the OS has the pages); only a machine crash can, and commit is the durability boundary.
    // One process (this agent) ever opens the file: exclusive locking spares each transaction its lock calls.
    this.#db.pragma('locking_mode = EXCLUSIVE');
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.exec(`
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
      -- The journal of agents before journal.log: read once, moved into the log.
      CREATE TABLE IF NOT EXISTS journal (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS files (data_id TEXT PRIMARY KEY, chunk_size INTEGER NOT NULL, base_chunks TEXT NOT NULL, dirty TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS own_commits (id TEXT PRIMARY KEY, seq INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS own_paths (path TEXT PRIMARY KEY, seq INTEGER NOT NULL);
      CREATE TABLE IF NOT EXISTS overwritten (path TEXT PRIMARY KEY, commit_id TEXT NOT NULL);
    `);
    this.#putFile = this.#db.prepare(
      'INSERT OR REPLACE INTO files (data_id, chunk_size, base_chunks, dirty) VALUES (?, ?, ?, ?)',
    );
    this.#journal = this.#openJournal(join(dir, 'journal.log'));
    this.#sweepOrphans();
  }

  /** The journal of the current epoch; an older agent's journal (rows of the `journal` table) moves into it first. */
  #openJournal(path: string): JournalLog<JournalOp> {
    const legacy = (this.#db.prepare('SELECT op FROM journal ORDER BY seq').all() as Array<{ op: string }>).map(
      (r) => JSON.parse(r.op) as JournalOp,
    );
    const current = this.getMeta('journal.epoch');
    if (current !== undefined && legacy.length === 0) return JournalLog.open(path, current);
    const epoch = randomHex(8);
    const log = JournalLog.open<JournalOp>(path, epoch);
    for (const op of legacy) log.append(op);
    // The log is complete before the rows go: a crash in between moves them again.
    this.#db.transaction(() => {
      this.setMeta('journal.epoch', epoch);
      this.#db.prepare('DELETE FROM journal').run();
    })();
    return log;
  }

  static open(dir: string, options: OverlayOptions = {}): OverlayStore {
    return new OverlayStore(dir, options);
  }

  /** Resolves once no spare data file is being made (before the overlay's directory may go). */
  settle(): Promise<void> {
    if (this.#sparesInFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.#settled.push(resolve));
  }

  close(): void {
    this.#closed = true;
    this.#journal.close();
    this.#db.close();
  }

  getMeta(key: string): string | undefined {
    const row = this.#db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value;
  }

  setMeta(key: string, value: string): void {
    this.#db.prepare('INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)').run(key, value);
  }

  append(op: JournalOp): void {
    this.#journal.append(op);
  }

  journal(): JournalOp[] {
    return this.#journal.records();
  }

  journalLength(): number {
    return this.#journal.length;
  }

  /** A data id unique across restarts: a random prefix per agent run, then a counter (no random bytes per file). */
  newDataId(): string {
    return `${this.#idPrefix}${(this.#idCounter++).toString(16).padStart(8, '0')}`;
  }

  dataPath(dataId: string): string {
    return join(this.dataDir, dataId);
  }

  /**
   * The id of an empty data file made ahead of need, or undefined when none
   * is ready (the caller makes its own). Creating a file on a busy ext4 can
   * take half a millisecond, on the JS thread and inside a FUSE write; the
   * spares are made on the thread pool meanwhile, so a new file's first
   * write opens one instead (`refillSpares` asks for more when they are
   * used). Unused spares are not part of the overlay: a
   * reset deletes them with every other data file, a restart sweeps them.
   */
  takeSpare(): string | undefined {
    return this.#spares.pop();
  }

  /** Makes spares up to the target, in the background (the caller's files need data files). */
  refillSpares(): void {
    const epoch = this.#spareEpoch;
    while (!this.#closed && this.#spares.length + this.#sparesPending < this.#spareTarget) {
      const id = this.newDataId();
      this.#sparesPending++;
      this.#sparesInFlight++;
      open(this.dataPath(id), 'wx', 0o600, (err, fd) => {
        if (!err) closeSync(fd);
        if (epoch !== this.#spareEpoch || this.#closed) {
          // Made for before a reset (whose sweep may have missed it), or after close: nobody will take it.
          if (!err) rmSync(this.dataPath(id), { force: true });
        } else {
          this.#sparesPending--;
          if (!err) this.#spares.push(id);
        }
        if (--this.#sparesInFlight === 0) for (const resolve of this.#settled.splice(0)) resolve();
      });
    }
  }

  putFile(rec: LocalFileRecord): void {
    this.#putFile.run(rec.dataId, rec.chunkSize, JSON.stringify(rec.baseChunks), JSON.stringify(rec.dirty));
  }

  getFile(dataId: string): LocalFileRecord | undefined {
    const row = this.#db.prepare('SELECT chunk_size, base_chunks, dirty FROM files WHERE data_id = ?').get(dataId) as
      | { chunk_size: number; base_chunks: string; dirty: string }
      | undefined;
    if (!row) return undefined;
    return {
      dataId,
      chunkSize: row.chunk_size,
      baseChunks: JSON.parse(row.base_chunks) as string[],
      dirty: JSON.parse(row.dirty) as number[],
    };
  }

  /**
   * Forgets all local work and moves the base: after a commit (the work is
   * on the server now) or a reload (the work is discarded on purpose). The
   * new base is recorded in the same transaction, so a crash in between
   * never replays an old journal onto a new base.
   *
   * The data files of `keep` stay readable at their `dataPath` (files still
   * open in the mount, whose handles outlive the commit or reload) until
   * `release(dataId)`, or the next reset that does not keep them. They are
   * no longer part of the overlay: no record, nothing replayed, and a
   * restarted agent (which has no open handles) deletes them on open.
   */
  reset(base: string, keep: ReadonlySet<string> = new Set()): void {
    const epoch = randomHex(8);
    this.#db.transaction(() => {
      this.#db.prepare('DELETE FROM files').run();
      this.setMeta('base', base);
      this.setMeta('journal.epoch', epoch);
    })();
    this.#journal.restart(epoch);
    this.#spares = [];
    this.#sparesPending = 0;
    this.#spareEpoch++;
    for (const name of readdirSync(this.dataDir))
      if (!keep.has(name)) rmSync(join(this.dataDir, name), { force: true });
    this.#kept = new Set([...keep].filter((id) => existsSync(this.dataPath(id))));
  }

  /** Data ids kept by the last reset and not yet released. */
  kept(): ReadonlySet<string> {
    return this.#kept;
  }

  /** A data file kept by `reset` is no longer needed (its last handle closed): deleted now. A live overlay file is never deleted here. */
  release(dataId: string): void {
    if (!this.#kept.delete(dataId)) return;
    rmSync(this.dataPath(dataId), { force: true });
  }

  /** Records a commit this mount made and the volume paths it wrote (a path's latest own commit wins). */
  recordOwnCommit(id: string, seq: number, paths: readonly string[]): void {
    const put = this.#db.prepare(
      'INSERT INTO own_paths (path, seq) VALUES (?, ?) ON CONFLICT (path) DO UPDATE SET seq = max(seq, excluded.seq)',
    );
    // A path this mount writes again is its own again: an earlier overwrite of it no longer needs telling.
    const unmark = this.#db.prepare('DELETE FROM overwritten WHERE path = ?');
    this.#db.transaction(() => {
      this.#db.prepare('INSERT OR IGNORE INTO own_commits (id, seq) VALUES (?, ?)').run(id, seq);
      for (const p of paths) {
        put.run(p, seq);
        unmark.run(p);
      }
    })();
  }

  /** The commits this mount made since its last reload, oldest first. */
  ownCommits(): Array<{ id: string; seq: number }> {
    return this.#db.prepare('SELECT id, seq FROM own_commits ORDER BY seq').all() as Array<{ id: string; seq: number }>;
  }

  /** The seq of this mount's latest commit that wrote `path`, if any. */
  ownPathSeq(path: string): number | undefined {
    return (this.#db.prepare('SELECT seq FROM own_paths WHERE path = ?').get(path) as { seq: number } | undefined)?.seq;
  }

  /** Paths this mount wrote below directory `dir` (not `dir` itself). */
  ownPathsUnder(dir: string): Array<{ path: string; seq: number }> {
    const prefix = dir === '/' ? '/' : `${dir}/`;
    // '/' + 1 is '0': the range [prefix, prefix with its last '/' bumped) holds exactly the paths that start with it.
    const end = prefix.slice(0, -1) + '0';
    return this.#db.prepare('SELECT path, seq FROM own_paths WHERE path >= ? AND path < ?').all(prefix, end) as Array<{
      path: string;
      seq: number;
    }>;
  }

  markOverwritten(path: string, commit: string): void {
    this.#db.prepare('INSERT OR IGNORE INTO overwritten (path, commit_id) VALUES (?, ?)').run(path, commit);
  }

  /** Paths of this mount's commits that someone else's later commit changed, in path order. */
  overwritten(): Array<{ path: string; commit: string }> {
    return this.#db.prepare('SELECT path, commit_id AS "commit" FROM overwritten ORDER BY path').all() as Array<{
      path: string;
      commit: string;
    }>;
  }

  /** Forgets this mount's commits and what was found about them (a reload: the list was reported). */
  clearOwnCommits(): void {
    this.#db.transaction(() => {
      this.#db.prepare('DELETE FROM own_commits').run();
      this.#db.prepare('DELETE FROM own_paths').run();
      this.#db.prepare('DELETE FROM overwritten').run();
      this.#db.prepare("DELETE FROM meta WHERE key = 'overwrites.checked'").run();
    })();
  }

  /** Deletes data files nothing names: ones kept for open handles when the agent stopped (no handle survives a restart). */
  #sweepOrphans(): void {
    const live = new Set(
      (this.#db.prepare('SELECT data_id FROM files').all() as Array<{ data_id: string }>).map((r) => r.data_id),
    );
    for (const op of this.journal()) if (op.op === 'create' || op.op === 'localize') live.add(op.dataId);
    for (const name of readdirSync(this.dataDir))
      if (!live.has(name)) rmSync(join(this.dataDir, name), { force: true });
  }
}
