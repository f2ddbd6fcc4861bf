/**
 * @module engine/search
 * Search without compute: a glob over full paths (picomatch, dotfiles
 * included) and, optionally, a regex over file contents. Everything is
 * bounded: results (`limit`), bytes read per file (`maxBytesPerFile`,
 * reported as truncated files) and time (`timeoutMs`: the regex runs in a
 * worker terminated at the deadline, and the answer is the partial result
 * with `timedOut`). Binary files (a NUL byte in the first 8 KiB) are skipped
 * and reported.
 *
 * Globs (common/regex-runner): a pattern without "/" matches the entry's
 * name anywhere below the search path (like `find -name`); a pattern with
 * "/" matches the full path. Glob matching runs in the worker too, under the
 * same deadline.
 */
import { InvalidArgumentError, NotFoundError } from '@stowage/sdk/common/errors.js';
import { parsePath } from '@stowage/sdk/common/paths.js';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { readEntry } from './file-io.js';
import type { FileOpsHost } from './file-ops-host.js';
import { checkRegex, compileGlob, RegexRunner, RegexTimeout } from '../common/regex-runner.js';
import type { Entry, FileEntry } from './tree/tree-codec.js';
import type { Actor, SearchOptions, SearchResult } from './types.js';
import type { TreeHash } from '@stowage/sdk/common/ids.js';

/** Bytes inspected for a NUL to call a file binary. */
export const BINARY_SNIFF_BYTES = 8 * 1024;
/** Largest `limit` of a search. */
export const MAX_SEARCH_LIMIT = 10_000;
/** Largest `maxBytesPerFile` of a search or replace. */
export const MAX_BYTES_PER_FILE = 64 * MiB;
/** Largest `timeoutMs` of a search or replace. */
export const MAX_TIMEOUT_MS = 60_000;
/** Entries of the report lists (skipped, truncated) kept at most. */
const MAX_REPORTED = 1000;

/** A whole number option within [min, max], or the default. */
export function boundedInt(value: unknown, name: string, dflt: number, min: number, max: number): number {
  if (value === undefined) return dflt;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max)
    throw new InvalidArgumentError(`${name} must be a whole number from ${min} to ${max}`);
  return value;
}

/** Entries walked per glob job sent to the worker. */
const GLOB_BATCH = 256;

/**
 * The entries below `path` that the runner's glob selects (all of them with
 * no glob), in walk order. Matching runs in the runner's worker, so a
 * pathological glob ends in RegexTimeout instead of blocking the server.
 */
export async function* selectEntries(
  host: Pick<FileOpsHost, 'reader'>,
  runner: RegexRunner | undefined,
  root: TreeHash,
  path: string,
  hasGlob: boolean,
): AsyncGenerator<{ path: string; entry: Entry }> {
  if (!hasGlob || !runner) {
    yield* entriesBelow(host, root, path);
    return;
  }
  let batch: Array<{ path: string; entry: Entry }> = [];
  const flush = async function* (): AsyncGenerator<{ path: string; entry: Entry }> {
    const selected = await runner.glob(batch.map((b) => b.path));
    const picked = batch.filter((_, i) => selected[i]);
    batch = [];
    yield* picked;
  };
  for await (const item of entriesBelow(host, root, path)) {
    batch.push(item);
    if (batch.length >= GLOB_BATCH) yield* flush();
  }
  if (batch.length > 0) yield* flush();
}

/** The first `max` bytes of a file, and whether there was more. */
export async function readHead(
  host: Pick<FileOpsHost, 'md' | 'blobs'>,
  entry: FileEntry,
  max: number,
): Promise<{ bytes: Buffer; truncated: boolean }> {
  if (entry.size === 0) return { bytes: Buffer.alloc(0), truncated: false };
  const end = Math.min(entry.size, max) - 1;
  const parts: Uint8Array[] = [];
  for await (const piece of readEntry(host.md, host.blobs, entry, { start: 0, end })) parts.push(piece);
  return { bytes: Buffer.concat(parts), truncated: entry.size > max };
}

/** True for content with a NUL byte in its first 8 KiB. */
export function looksBinary(bytes: Uint8Array): boolean {
  return bytes.subarray(0, BINARY_SNIFF_BYTES).includes(0);
}

/** Every entry below `path` (or the file itself), depth-first in name order. */
export async function* entriesBelow(
  host: Pick<FileOpsHost, 'reader'>,
  root: TreeHash,
  path: string,
): AsyncGenerator<{ path: string; entry: Entry }> {
  const p = parsePath(path);
  if (p !== '/') {
    const entry = await host.reader.lookup(root, p);
    if (!entry) throw new NotFoundError(`no such file or directory: ${p}`);
    if (entry.type !== 'dir') {
      yield { path: p, entry };
      return;
    }
  }
  yield* host.reader.walk(await host.reader.dir(root, p), p === '/' ? '' : p);
}

/** Searches a volume at head (or a commit); see the module comment for the bounds. */
export async function search(
  host: FileOpsHost,
  actor: Actor,
  volume: string,
  opts: SearchOptions = {},
): Promise<SearchResult> {
  const vol = await host.volumeFor(actor, volume, 'read');
  const path = parsePath(opts.path ?? '/');
  const limit = boundedInt(opts.limit, 'limit', 1000, 1, MAX_SEARCH_LIMIT);
  const maxBytes = boundedInt(opts.maxBytesPerFile, 'maxBytesPerFile', 8 * MiB, 1, MAX_BYTES_PER_FILE);
  const timeoutMs = boundedInt(opts.timeoutMs, 'timeoutMs', 10_000, 1, MAX_TIMEOUT_MS);
  if (opts.glob !== undefined) compileGlob(opts.glob);
  const regex = opts.regex === undefined ? undefined : checkRegex(opts.regex, opts.flags ?? '');
  if (opts.regex === undefined && opts.flags !== undefined) throw new InvalidArgumentError('flags need a regex');
  const commit = await host.resolveCommit(vol, opts.commit ?? vol.head);
  const deadline = Date.now() + timeoutMs;
  const out: SearchResult = {
    commit: commit.id,
    files: [],
    matches: [],
    truncated: false,
    timedOut: false,
    skippedBinary: [],
    truncatedFiles: [],
    filesScanned: 0,
  };
  const note = (list: string[], p: string): void => {
    if (list.length < MAX_REPORTED) list.push(p);
  };
  const runner = regex || opts.glob !== undefined ? new RegexRunner({ regex, glob: opts.glob }, deadline) : undefined;
  try {
    for await (const { path: full, entry } of selectEntries(host, runner, commit.tree, path, opts.glob !== undefined)) {
      if (Date.now() >= deadline) {
        out.timedOut = true;
        break;
      }
      if (!regex) {
        if (out.files.length >= limit) {
          out.truncated = true;
          break;
        }
        out.files.push({
          path: full,
          type: entry.type,
          size: entry.type === 'symlink' ? Buffer.byteLength(entry.target) : entry.size,
        });
        continue;
      }
      if (entry.type !== 'file') continue;
      const { bytes, truncated } = await readHead(host, entry, maxBytes);
      if (looksBinary(bytes)) {
        note(out.skippedBinary, full);
        continue;
      }
      out.filesScanned++;
      if (truncated) note(out.truncatedFiles, full);
      const found = await runner!.search(bytes.toString('utf8'), limit - out.matches.length);
      for (const m of found) out.matches.push({ path: full, ...m });
      // Full: there may be more (this file's later lines, or other files).
      if (out.matches.length >= limit) {
        out.truncated = true;
        break;
      }
    }
  } catch (e) {
    if (!(e instanceof RegexTimeout)) throw e;
    out.timedOut = true;
  } finally {
    runner?.close();
  }
  return out;
}
