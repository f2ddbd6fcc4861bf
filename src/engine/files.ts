/**
 * @module engine/files
 * Files of a volume: stat, paged listings, read plans (signed GETs per
 * chunk), streamed reads, writes of streams the server itself received,
 * and the operations built on them (engine/search, engine/file-edits,
 * engine/change-feed), which get their slice of the engine as a
 * FileOpsHost so they obey the same access rules.
 */
import { chunkSizeFor, SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import { mapLimit } from '@stowage/sdk/common/concurrency.js';
import {
  InvalidArgumentError,
  NotFoundError,
  QuotaExceededError,
  UnavailableError,
} from '@stowage/sdk/common/errors.js';
import type { CommitId } from '@stowage/sdk/common/ids.js';
import { parsePath, type VolumePath } from '@stowage/sdk/common/paths.js';
import { formatSize } from '@stowage/sdk/common/sizes.js';
import { isPackKey } from '../model/object-keys.js';
import type { CommitRecord } from '@stowage/sdk/model/records.js';
import type { AccessService } from './access.js';
import { changesSince } from './change-feed.js';
import { holdersOf, scopeOf } from './chunk-ownership.js';
import { resolveCommit } from './commit-records.js';
import type { CommitService } from './commits.js';
import type { EngineContext } from './context.js';
import { edit, replace } from './file-edits.js';
import { readEntry, storeStream } from './file-io.js';
import type { FileOpsHost } from './file-ops-host.js';
import { search } from './search.js';
import { canonicalMeta, type Entry } from './tree/tree-codec.js';
import { cursorParts, entriesAfter } from './tree/list-pages.js';
import type {
  Actor,
  Change,
  CommitChanges,
  CommitResult,
  EditOptions,
  FileInfo,
  ReadPlan,
  ReplaceOptions,
  ReplaceResult,
  SearchOptions,
  SearchResult,
  WriteFileOptions,
} from './types.js';

/** Entries of one page of a listing at most. */
export const MAX_LIST_LIMIT = 10_000;

export class FileService {
  constructor(
    private readonly ctx: EngineContext,
    private readonly access: AccessService,
    private readonly commits: CommitService,
  ) {}

  async stat(
    actor: Actor,
    volume: string,
    path: string,
    opts: { commit?: string } = {},
  ): Promise<{ commit: CommitId; entry: FileInfo }> {
    const { commit, path: p } = await this.readTarget(actor, volume, path, opts.commit);
    if (p === '/')
      return {
        commit: commit.id,
        entry: {
          path: '/',
          name: '',
          type: 'dir',
          mode: 0o755,
          mtime: commit.createdAt.getTime(),
          size: commit.size,
          fileCount: commit.fileCount,
        },
      };
    const entry = await this.ctx.reader.lookup(commit.tree, p);
    if (!entry) throw new NotFoundError(`no such file or directory: ${p}`);
    return { commit: commit.id, entry: toFileInfo(p, entry) };
  }

  async list(
    actor: Actor,
    volume: string,
    path: string,
    opts: { commit?: string; recursive?: boolean; limit?: number; after?: string } = {},
  ): Promise<{ commit: CommitId; entries: FileInfo[]; nextCursor: string | null }> {
    const { commit, path: p } = await this.readTarget(actor, volume, path, opts.commit);
    // No limit from internal callers means everything; the HTTP API defaults to 1000 per page.
    const limit = opts.limit ?? Infinity;
    if (opts.limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT))
      throw new InvalidArgumentError(`limit must be between 1 and ${MAX_LIST_LIMIT}`);
    const after = cursorParts(p, opts.after === undefined ? undefined : parsePath(opts.after));
    if (p !== '/') {
      const entry = await this.ctx.reader.lookup(commit.tree, p);
      if (!entry) throw new NotFoundError(`no such file or directory: ${p}`);
      if (entry.type !== 'dir') return { commit: commit.id, entries: [toFileInfo(p, entry)], nextCursor: null };
    }
    const dir = await this.ctx.reader.dir(commit.tree, p);
    const entries: FileInfo[] = [];
    let nextCursor: string | null = null;
    for await (const { path: full, entry } of entriesAfter(
      this.ctx.reader,
      dir,
      p === '/' ? '' : p,
      after,
      opts.recursive === true,
    )) {
      if (entries.length >= limit) {
        nextCursor = entries.at(-1)!.path;
        break;
      }
      entries.push(toFileInfo(full, entry));
    }
    return { commit: commit.id, entries, nextCursor };
  }

  async readPlan(actor: Actor, volume: string, path: string, opts: { commit?: string } = {}): Promise<ReadPlan> {
    const { commit, path: p } = await this.readTarget(actor, volume, path, opts.commit);
    const entry = p === '/' ? undefined : await this.ctx.reader.lookup(commit.tree, p);
    if (!entry && p !== '/') throw new NotFoundError(`no such file or directory: ${p}`);
    if (entry?.type !== 'file') throw new InvalidArgumentError(`${p} is not a regular file`);
    const rows = new Map((await this.ctx.md.getChunks([...new Set(entry.chunks)])).map((r) => [r.hash, r]));
    const chunks = await mapLimit(entry.chunks, 16, async (hash) => {
      const row = rows.get(hash);
      if (!row) throw new UnavailableError(`chunk ${hash} of ${p} is missing from the store`);
      // A packed chunk's URL is signed for its own bytes only: the pack also holds other files, maybe other tenants'.
      const range = isPackKey(row.objectKey) ? { start: row.offset, end: row.offset + row.size - 1 } : undefined;
      const request = await this.ctx.blobs.sign(row.objectKey, 'GET', {
        expiresIn: this.ctx.settings.urlTtl,
        ...(range ? { range } : {}),
      });
      return { hash, size: row.size, request };
    });
    return { commit: commit.id, entry: toFileInfo(p, entry), chunks };
  }

  async readFile(
    actor: Actor,
    volume: string,
    path: string,
    opts: { commit?: string; range?: { start: number; end: number } } = {},
  ): Promise<{ commit: CommitId; entry: FileInfo; body: AsyncIterable<Uint8Array> }> {
    const { commit, path: p } = await this.readTarget(actor, volume, path, opts.commit);
    const entry = p === '/' ? undefined : await this.ctx.reader.lookup(commit.tree, p);
    if (!entry && p !== '/') throw new NotFoundError(`no such file or directory: ${p}`);
    if (entry?.type !== 'file') throw new InvalidArgumentError(`${p} is not a regular file`);
    if (opts.range && (opts.range.start < 0 || opts.range.start > opts.range.end || opts.range.end >= entry.size)) {
      throw new InvalidArgumentError(
        `range ${opts.range.start}-${opts.range.end} is outside ${p} (${entry.size} bytes)`,
      );
    }
    return {
      commit: commit.id,
      entry: toFileInfo(p, entry),
      body: readEntry(this.ctx.md, this.ctx.blobs, entry, opts.range),
    };
  }

  async writeFile(
    actor: Actor,
    volume: string,
    path: string,
    body: AsyncIterable<unknown>,
    opts: WriteFileOptions = {},
  ): Promise<CommitResult & { uploadedChunks: number; sha256: string }> {
    const vol = await this.access.volumeFor(actor, volume, 'write');
    const p = parsePath(path);
    if (opts.size !== undefined) {
      if (!Number.isSafeInteger(opts.size) || opts.size < 0)
        throw new InvalidArgumentError('size must be a whole number of bytes');
      if (vol.size + opts.size > vol.cap) {
        throw new QuotaExceededError(
          `volume "${vol.name}" is capped at ${formatSize(vol.cap)} (${vol.cap} bytes); writing ${formatSize(opts.size)} to ${p} could make it ${formatSize(vol.size + opts.size)} (${vol.size + opts.size} bytes)`,
          { details: { cap: vol.cap, size: vol.size + opts.size } },
        );
      }
    }
    const stored = await storeStream(
      this.ctx.md,
      this.ctx.blobs,
      body,
      opts.size !== undefined ? chunkSizeFor(opts.size) : SMALL_CHUNK_SIZE,
      this.ctx.now,
      { scope: scopeOf(actor, vol), holders: holdersOf(vol) },
    );
    if (opts.size !== undefined && stored.size !== opts.size)
      throw new InvalidArgumentError(`expected ${opts.size} bytes for ${p}, received ${stored.size}`);
    if (opts.sha256 !== undefined && stored.sha256 !== opts.sha256.toLowerCase()) {
      throw new InvalidArgumentError(
        `content of ${p} does not match the expected SHA-256 (expected ${opts.sha256}, got ${stored.sha256}); nothing was committed`,
      );
    }
    const change: Change = {
      op: 'put',
      path: p,
      size: stored.size,
      chunkSize: stored.chunkSize,
      chunks: stored.chunks,
    };
    if (opts.mode !== undefined) change.mode = opts.mode;
    if (opts.mtime !== undefined) change.mtime = opts.mtime;
    if (opts.createParents !== undefined) change.createParents = opts.createParents;
    const result = await this.commits.commit(actor, volume, {
      changes: [change],
      message: opts.message ?? `write ${p}`,
      ...(opts.base !== undefined ? { base: opts.base } : {}),
      ...(opts.onConflict !== undefined ? { onConflict: opts.onConflict } : {}),
    });
    return { ...result, uploadedChunks: stored.uploadedChunks, sha256: stored.sha256 };
  }

  async search(actor: Actor, volume: string, opts: SearchOptions = {}): Promise<SearchResult> {
    return search(this.fileOps, actor, volume, opts);
  }

  async replace(actor: Actor, volume: string, opts: ReplaceOptions): Promise<ReplaceResult> {
    return replace(this.fileOps, actor, volume, opts);
  }

  async edit(
    actor: Actor,
    volume: string,
    path: string,
    opts: EditOptions,
  ): Promise<{ commit: CommitRecord; path: string }> {
    return edit(this.fileOps, actor, volume, path, opts);
  }

  async changesSince(
    actor: Actor,
    volume: string,
    since: string,
    limit?: number,
  ): Promise<{ head: CommitId; commits: CommitChanges[] }> {
    return changesSince(this.fileOps, actor, volume, since, limit);
  }

  /** The engine's internals that the file operations (engine/file-ops-host) are built on. */
  private get fileOps(): FileOpsHost {
    return {
      md: this.ctx.md,
      blobs: this.ctx.blobs,
      reader: this.ctx.reader,
      now: this.ctx.now,
      ownership: (actor, vol) => ({ scope: scopeOf(actor, vol), holders: holdersOf(vol) }),
      volumeFor: (actor, name, access) => this.access.volumeFor(actor, name, access),
      resolveCommit: (vol, id) => resolveCommit(this.ctx.md, vol, id),
      commit: (actor, volume, input) => this.commits.commit(actor, volume, input),
    };
  }

  private async readTarget(
    actor: Actor,
    volume: string,
    path: string,
    commit?: string,
  ): Promise<{ commit: CommitRecord; path: VolumePath }> {
    const vol = await this.access.volumeFor(actor, volume, 'read');
    const p = parsePath(path);
    return { commit: await resolveCommit(this.ctx.md, vol, commit ?? vol.head), path: p };
  }
}

/** The wire view of a tree entry: owner and times beyond mtime only where recorded (absent atime/ctime: same as mtime). */
export function toFileInfo(path: string, e: Entry): FileInfo {
  const base = { path, name: e.name, type: e.type, mode: e.mode, mtime: e.mtime, ...canonicalMeta(e) };
  switch (e.type) {
    case 'file':
      return { ...base, size: e.size, chunkSize: e.chunkSize, chunks: e.chunks };
    case 'dir':
      return { ...base, size: e.size, fileCount: e.fileCount };
    case 'symlink':
      return { ...base, size: Buffer.byteLength(e.target), target: e.target };
  }
}
