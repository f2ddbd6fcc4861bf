/**
 * @module engine/file-edits
 * Changes to file contents made by the server itself: `edit` (replace one
 * exact string in one file) and `replace` (a regex across the files a glob
 * selects, in one commit). Both read at a commit and commit with that commit
 * as `base` and `onConflict: 'fail'`, so a file changed by someone else
 * between the read and the commit is a 409 ("changed since you read it"),
 * never a lost update. The regex runs in a worker under a deadline
 * (common/regex-runner); a replace that misses its deadline commits nothing.
 */
import { SMALL_CHUNK_SIZE } from '@stowage/sdk/common/chunking.js';
import {
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  PreconditionFailedError,
} from '@stowage/sdk/common/errors.js';
import { parsePath } from '@stowage/sdk/common/paths.js';
import { MiB } from '@stowage/sdk/common/sizes.js';
import type { CommitRecord, VolumeRecord } from '@stowage/sdk/model/records.js';
import { storeStream } from './file-io.js';
import type { FileOpsHost } from './file-ops-host.js';
import { checkRegex, compileGlob, RegexRunner, RegexTimeout } from '../common/regex-runner.js';
import { boundedInt, looksBinary, MAX_BYTES_PER_FILE, MAX_TIMEOUT_MS, readHead, selectEntries } from './search.js';
import type { FileEntry } from './tree/tree-codec.js';
import type { Actor, Change, EditOptions, ReplaceOptions, ReplaceResult } from './types.js';

/** Largest file `edit` rewrites. */
export const MAX_EDIT_BYTES = 64 * MiB;
/** Largest `maxFiles` of a replace. */
export const MAX_REPLACE_FILES = 10_000;

/** How often `needle` occurs in `hay`, overlapping occurrences counted (so "aa" in "aaa" is ambiguous: 2). */
export function countOccurrences(hay: string, needle: string, stopAt = Infinity): number {
  let n = 0;
  for (let i = hay.indexOf(needle); i !== -1 && n < stopAt; i = hay.indexOf(needle, i + 1)) n++;
  return n;
}

/** One buffer as the stream storeStream takes. */
async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Text of a file, or undefined when it is binary or not UTF-8. */
function asText(bytes: Buffer): string | undefined {
  if (looksBinary(bytes)) return undefined;
  try {
    return utf8.decode(bytes);
  } catch {
    return undefined;
  }
}

/**
 * Stores new content of a file and returns its put change: mode and recorded
 * owner kept (an edit writes into the file, it does not replace it), every
 * time now.
 */
async function putNew(
  host: FileOpsHost,
  actor: Actor,
  vol: VolumeRecord,
  path: string,
  entry: FileEntry,
  text: string,
): Promise<Change> {
  const stored = await storeStream(
    host.md,
    host.blobs,
    once(Buffer.from(text, 'utf8')),
    entry.chunkSize || SMALL_CHUNK_SIZE,
    host.now,
    host.ownership(actor, vol),
  );
  return {
    op: 'put',
    path,
    size: stored.size,
    chunkSize: stored.chunkSize,
    chunks: stored.chunks,
    mode: entry.mode,
    mtime: host.now().getTime(),
    ...(entry.uid !== undefined ? { uid: entry.uid } : {}),
    ...(entry.gid !== undefined ? { gid: entry.gid } : {}),
  };
}

/** Commits with `base` and onConflict 'fail', naming the conflict for a reader. */
async function commitAgainst(
  host: FileOpsHost,
  actor: Actor,
  volume: string,
  base: string,
  changes: Change[],
  message: string,
): Promise<CommitRecord> {
  try {
    return (await host.commit(actor, volume, { base, onConflict: 'fail', changes, message })).commit;
  } catch (e) {
    if (!(e instanceof ConflictError) || !e.details || !('paths' in e.details)) throw e;
    const paths = (e.details.paths as string[]) ?? [];
    throw new ConflictError(
      `${paths.slice(0, 5).join(', ')} changed since you read it (commit ${base.slice(0, 12)}): read it again and redo the change`,
      { details: { paths, base } },
    );
  }
}

/**
 * Replaces the one occurrence of `oldString` in a text file, in one commit.
 * PreconditionFailed (with `details.occurrences`) unless it occurs exactly once.
 */
export async function edit(
  host: FileOpsHost,
  actor: Actor,
  volume: string,
  path: string,
  opts: EditOptions,
): Promise<{ commit: CommitRecord; path: string }> {
  const vol = await host.volumeFor(actor, volume, 'write');
  const p = parsePath(path);
  if (typeof opts.oldString !== 'string' || opts.oldString.length === 0)
    throw new InvalidArgumentError('oldString must be a non-empty string');
  if (typeof opts.newString !== 'string') throw new InvalidArgumentError('newString must be a string');
  if (opts.oldString === opts.newString)
    throw new InvalidArgumentError('oldString and newString are the same: nothing to change');
  const base = opts.base === undefined ? undefined : await host.resolveCommit(vol, opts.base);
  const head = await host.resolveCommit(vol, vol.head);
  const entry = p === '/' ? undefined : await host.reader.lookup(head.tree, p);
  if (!entry) throw new NotFoundError(`no such file: ${p}`);
  if (entry.type !== 'file') throw new InvalidArgumentError(`${p} is not a regular file`);
  if (entry.size > MAX_EDIT_BYTES)
    throw new InvalidArgumentError(
      `${p} is too large to edit (${entry.size} bytes; at most ${MAX_EDIT_BYTES}): write it instead`,
    );
  const text = asText((await readHead(host, entry, MAX_EDIT_BYTES)).bytes);
  if (text === undefined) throw new InvalidArgumentError(`${p} is not UTF-8 text: edit works on text files`);
  const n = countOccurrences(text, opts.oldString, 1000);
  if (n !== 1) {
    const times = n === 0 ? 'does not occur' : `occurs ${n >= 1000 ? '1000 or more' : n} times`;
    throw new PreconditionFailedError(
      `the old string ${times} in ${p}; it must occur exactly once${n > 1 ? ': include more surrounding text to make it unique' : ''}`,
      { details: { occurrences: n } },
    );
  }
  const at = text.indexOf(opts.oldString);
  const change = await putNew(
    host,
    actor,
    vol,
    p,
    entry,
    text.slice(0, at) + opts.newString + text.slice(at + opts.oldString.length),
  );
  const commit = await commitAgainst(host, actor, volume, (base ?? head).id, [change], opts.message ?? `edit ${p}`);
  return { commit, path: p };
}

/** Regex replace across the files the glob selects, in one commit (none when nothing matched). */
export async function replace(
  host: FileOpsHost,
  actor: Actor,
  volume: string,
  opts: ReplaceOptions,
): Promise<ReplaceResult> {
  const vol = await host.volumeFor(actor, volume, 'write');
  const path = parsePath(opts.path ?? '/');
  if (opts.glob === undefined)
    throw new InvalidArgumentError('replace needs a glob selecting the files to change (e.g. "**/*.ts")');
  compileGlob(opts.glob);
  const regex = checkRegex(opts.regex, opts.flags ?? '');
  if (typeof opts.replacement !== 'string') throw new InvalidArgumentError('replacement must be a string');
  const maxFiles = boundedInt(opts.maxFiles, 'maxFiles', 1000, 1, MAX_REPLACE_FILES);
  const maxBytes = boundedInt(opts.maxBytesPerFile, 'maxBytesPerFile', 8 * MiB, 1, MAX_BYTES_PER_FILE);
  const timeoutMs = boundedInt(opts.timeoutMs, 'timeoutMs', 10_000, 1, MAX_TIMEOUT_MS);
  const base = opts.base === undefined ? undefined : await host.resolveCommit(vol, opts.base);
  const head = await host.resolveCommit(vol, vol.head);
  const deadline = Date.now() + timeoutMs;

  const out: ReplaceResult = { commit: null, files: [], skippedBinary: [], skippedTooLarge: [] };
  const changes: Change[] = [];
  const timedOut = (): never => {
    throw new InvalidArgumentError(
      `replace did not finish within ${timeoutMs} ms (a regex or glob that backtracks heavily, or too much text): nothing was committed; simplify the pattern or narrow the glob`,
      { details: { timeoutMs } },
    );
  };
  const runner = new RegexRunner({ regex, glob: opts.glob }, deadline);
  try {
    const candidates: Array<{ path: string; entry: FileEntry }> = [];
    for await (const { path: full, entry } of selectEntries(host, runner, head.tree, path, true)) {
      if (entry.type !== 'file') continue;
      if (candidates.length >= maxFiles)
        throw new InvalidArgumentError(
          `the glob selects more than ${maxFiles} files: narrow it, or raise maxFiles (at most ${MAX_REPLACE_FILES})`,
        );
      candidates.push({ path: full, entry });
    }
    for (const { path: p, entry } of candidates) {
      if (Date.now() >= deadline) timedOut();
      if (entry.size > maxBytes) {
        out.skippedTooLarge.push(p);
        continue;
      }
      const text = asText((await readHead(host, entry, maxBytes)).bytes);
      if (text === undefined) {
        out.skippedBinary.push(p);
        continue;
      }
      const r = await runner.replace(text, opts.replacement);
      if (r.count === 0) continue;
      out.files.push({ path: p, replacements: r.count });
      if (r.text !== text) changes.push(await putNew(host, actor, vol, p, entry, r.text));
    }
  } catch (e) {
    if (e instanceof RegexTimeout) timedOut();
    throw e;
  } finally {
    runner.close();
  }
  if (changes.length > 0) {
    out.commit = await commitAgainst(
      host,
      actor,
      volume,
      (base ?? head).id,
      changes,
      opts.message ?? `replace /${regex.source.slice(0, 100)}/ in ${changes.length} file(s)`,
    );
  }
  return out;
}
