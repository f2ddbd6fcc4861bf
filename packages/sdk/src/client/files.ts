/**
 * @module client/files
 * The direct file API of a volume (`vol.files`): read, write, list, stat and
 * remove files without mounting anything. Every change is one commit; bytes
 * travel by signed requests straight to and from the blob store, and every
 * chunk read is checked against its SHA-256 before it is handed out.
 *
 * Writes return what travelled (`uploadedChunks`, `uploadedBytes`), so a
 * caller can see that re-writing unchanged content sent nothing.
 *
 * This module is the facade and the tree operations (list, search, stat,
 * remove, mkdir, move); the byte paths live in client/file-writes and
 * client/file-reads.
 */
import type { Readable } from 'node:stream';
import type * as wire from '../api/wire.js';
import { InvalidArgumentError, isStowageError } from '../common/errors.js';
import { parsePath } from '../common/paths.js';
import { postCommit, type CommitOutcome, type CommitTarget } from './commit-writer.js';
import {
  editFile,
  iterateEntries,
  replaceInFiles,
  searchFiles,
  watchChanges,
  type IterateOptions,
  type ReplaceOptions,
  type SearchOptions,
  type WatchOptions,
} from './file-search.js';
import { readStreamOf, readWhole, type ReadOptions } from './file-reads.js';
import {
  checkMode,
  writeBatch,
  writeData,
  writeLocalFile,
  type BatchEntry,
  type BatchOptions,
  type WriteData,
  type WriteOptions,
  type WriteResult,
} from './file-writes.js';

export type { BatchEntry, BatchOptions, WriteData, WriteOptions, WriteResult } from './file-writes.js';
export { READAHEAD_BYTES, type ReadOptions } from './file-reads.js';

/** Options of `list` (which follows the server's pages to the end). */
export type ListOptions = IterateOptions;

/** What the file API needs of its volume: where to send requests, and a way to learn of new commits. */
export interface FilesHost extends CommitTarget {
  /** Told of every commit the file API makes, so the volume's info stays current. */
  noteCommit(commit: wire.Commit): void;
}

/**
 * Files of one volume. Obtain it as `vol.files`.
 *
 * @example
 * await vol.files.write('/notes/hello.txt', 'hello');
 * const text = (await vol.files.read('/notes/hello.txt')).toString();
 */
export class Files {
  readonly #host: FilesHost;

  constructor(host: FilesHost) {
    this.#host = host;
  }

  #path(suffix: string): string {
    return `/v1/volumes/${encodeURIComponent(this.#host.name)}${suffix}`;
  }

  #done(out: CommitOutcome): CommitOutcome {
    this.#host.noteCommit(out.commit);
    return out;
  }

  /**
   * Writes one file in one commit: text, bytes, or a stream of unknown length.
   *
   * @example
   * const r = await vol.files.write('/data/out.json', JSON.stringify(result), { mode: 0o600 });
   * console.log(r.commit.id, r.uploadedBytes);
   */
  async write(path: string, data: WriteData, options: WriteOptions = {}): Promise<WriteResult> {
    const out = await writeData(this.#host, path, data, options);
    this.#host.noteCommit(out.commit);
    return out;
  }

  /**
   * Uploads a local file in one commit, in two passes: hash it as a stream,
   * then send only the chunks the store lacks, re-read by byte range. An
   * unchanged file sends no chunk bytes at all.
   *
   * @example
   * const r = await vol.files.writeFile('/models/model.bin', './model.bin');
   * console.log(`${r.uploadedChunks} of ${r.chunks} chunks sent`);
   */
  async writeFile(path: string, localPath: string, options: WriteOptions = {}): Promise<WriteResult> {
    const out = await writeLocalFile(this.#host, path, localPath, options);
    this.#host.noteCommit(out.commit);
    return out;
  }

  /**
   * Writes many files (bytes, text or local files) in one commit.
   *
   * @example
   * await vol.files.writeMany([{ path: '/a.txt', data: 'a' }, { path: '/b.bin', localPath: './b.bin' }]);
   */
  async writeMany(entries: readonly BatchEntry[], options: BatchOptions = {}): Promise<CommitOutcome> {
    return this.#done(await writeBatch(this.#host, entries, options));
  }

  /**
   * Reads a whole file into memory (verified chunk by chunk).
   *
   * @example
   * const bytes = await vol.files.read('/data/out.json');
   * const old = await vol.files.read('/data/out.json', { commit: someCommitId });
   */
  async read(path: string, options: ReadOptions = {}): Promise<Buffer> {
    return readWhole(this.#host, path, options);
  }

  /**
   * Streams a file: chunks are fetched ahead with bounded concurrency,
   * verified, and emitted in order. Errors (e.g. NotFound) arrive as the
   * stream's 'error' event.
   *
   * @example
   * await pipeline(vol.files.readStream('/big.bin'), createWriteStream('./big.bin'));
   */
  readStream(path: string, options: ReadOptions = {}): Readable {
    return readStreamOf(this.#host, path, options);
  }

  /**
   * Lists a directory (or, with `recursive`, everything below it).
   *
   * @example
   * for (const e of await vol.files.list('/data', { recursive: true })) console.log(e.path, e.size);
   */
  async list(path = '/', options: ListOptions = {}): Promise<wire.FileInfo[]> {
    const out: wire.FileInfo[] = [];
    for await (const e of this.iterate(path, options)) out.push(e);
    return out;
  }

  /**
   * Lists a directory page by page (the server sends 1000 entries per page
   * unless `pageSize` says otherwise), every page at one commit.
   *
   * @example
   * for await (const e of vol.files.iterate('/', { recursive: true })) console.log(e.path);
   */
  iterate(path = '/', options: IterateOptions = {}): AsyncGenerator<wire.FileInfo> {
    return iterateEntries(this.#host, path, options);
  }

  /**
   * Searches paths by glob and, with `regex`, contents; results are bounded
   * (`limit`, `maxBytesPerFile`, `timeoutMs`) and say when they are partial.
   *
   * @example
   * const { matches, timedOut } = await vol.files.search('/src', { glob: '*.ts', regex: 'TODO', flags: 'i' });
   */
  async search(path = '/', options: SearchOptions = {}): Promise<wire.SearchResponse> {
    return searchFiles(this.#host, path, options);
  }

  /**
   * Regex replace (`$1` expands) across the files `glob` selects, in one
   * commit; `commit` is null when nothing matched.
   *
   * @example
   * const r = await vol.files.replace('/src', 'oldName', 'newName', { glob: '*.ts' });
   */
  async replace(
    path: string,
    regex: string,
    replacement: string,
    options: ReplaceOptions,
  ): Promise<wire.ReplaceResponse> {
    const res = await replaceInFiles(this.#host, path, regex, replacement, options);
    if (res.commit) this.#host.noteCommit(res.commit);
    return res;
  }

  /**
   * Replaces the one occurrence of `oldString` in a text file (PreconditionFailed
   * unless it occurs exactly once). With `base`, the commit you read the file
   * at, a change made since then is a Conflict; without, the server checks
   * against the head it reads.
   *
   * @example
   * await vol.files.edit('/config.toml', 'debug = false', 'debug = true');
   */
  async edit(
    path: string,
    oldString: string,
    newString: string,
    options: { base?: string; message?: string } = {},
  ): Promise<wire.EditResponse> {
    const res = await editFile(this.#host, path, oldString, newString, options);
    this.#host.noteCommit(res.commit);
    return res;
  }

  /**
   * Streams change events (one per changed path) until `signal` aborts,
   * reconnecting after network errors without missing or repeating a change.
   *
   * @example
   * const ac = new AbortController();
   * for await (const ev of vol.files.watch({ signal: ac.signal })) console.log(ev.kind, ev.path, ev.commit);
   */
  watch(options: WatchOptions = {}): AsyncGenerator<wire.ChangeEvent> {
    return watchChanges(this.#host, options);
  }

  /**
   * Describes one file, directory or symlink.
   *
   * @example
   * const { size, mode, mtime } = await vol.files.stat('/data/out.json');
   */
  async stat(path: string, options: { commit?: string } = {}): Promise<wire.FileInfo> {
    const p = parsePath(path);
    const res = await this.#host.client.request<wire.StatResponse>('GET', this.#path('/stat'), {
      query: { path: p, commit: options.commit },
    });
    return res.entry;
  }

  /**
   * True when the path exists (at head, or at `commit`).
   *
   * @example
   * if (!(await vol.files.exists('/config.json'))) await vol.files.write('/config.json', '{}');
   */
  async exists(path: string, options: { commit?: string } = {}): Promise<boolean> {
    try {
      await this.stat(path, options);
      return true;
    } catch (e) {
      if (isStowageError(e, 'NotFound')) return false;
      throw e;
    }
  }

  /** Commits non-write changes (no chunks). */
  async #commit(changes: wire.Change[], message: string): Promise<CommitOutcome> {
    const res = await postCommit(this.#host, { changes, message });
    return this.#done({
      commit: res.commit,
      overwritten: res.overwritten,
      skipped: res.skipped ?? [],
      uploadedChunks: 0,
      uploadedBytes: 0,
      presentChunks: 0,
    });
  }

  /**
   * Removes a file or symlink, or a directory with `recursive`. A missing
   * path is NotFound unless `force`.
   *
   * @example
   * await vol.files.remove('/tmp', { recursive: true });
   */
  async remove(path: string, options: { recursive?: boolean; force?: boolean } = {}): Promise<CommitOutcome> {
    const p = parsePath(path);
    if (p === '/')
      throw new InvalidArgumentError('refusing to remove "/": remove the entries below it, or delete the volume');
    return this.#commit(
      [{ op: 'delete', path: p, recursive: options.recursive ?? false, mustExist: !options.force }],
      `remove ${p}`,
    );
  }

  /**
   * Creates a directory (and its parents); an existing directory is kept.
   *
   * @example
   * await vol.files.mkdir('/data/reports');
   */
  async mkdir(path: string, options: { mode?: number } = {}): Promise<CommitOutcome> {
    const p = parsePath(path);
    checkMode(options.mode);
    return this.#commit(
      [{ op: 'mkdir', path: p, ...(options.mode === undefined ? {} : { mode: options.mode }) }],
      `mkdir ${p}`,
    );
  }

  /**
   * Moves a file or directory; the target must not exist unless `overwrite`.
   *
   * @example
   * await vol.files.move('/draft.txt', '/final.txt');
   */
  async move(from: string, to: string, options: { overwrite?: boolean } = {}): Promise<CommitOutcome> {
    const f = parsePath(from);
    const t = parsePath(to);
    return this.#commit([{ op: 'move', from: f, to: t, overwrite: options.overwrite ?? false }], `move ${f} to ${t}`);
  }
}
