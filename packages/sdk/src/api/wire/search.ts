/**
 * @module wire/search
 * Search, replace, edit and watch over a volume's files. Types only; re-exported by api/wire.
 */
import type { Commit } from './commits.js';
import type { EntryType } from './files.js';

/**
 * POST /v1/volumes/{name}/search : a glob over full paths (dotfiles included;
 * a pattern without "/" matches names anywhere) and, optionally, a regex over
 * file contents. Bounded by `limit` (default 1000, max 10000), bytes read per
 * file (`maxBytesPerFile`, default 8 MiB, max 64 MiB) and time (`timeoutMs`,
 * default 10000, max 60000: past it the answer is partial with `timedOut`).
 * Regex flags: any of i, m, s, u. An invalid regex is a 400.
 */
export interface SearchRequest {
  path?: string;
  glob?: string;
  regex?: string;
  flags?: string;
  commit?: string;
  limit?: number;
  maxBytesPerFile?: number;
  timeoutMs?: number;
}
/** The first match on one line: 1-based line and column; `text` is the line, clipped to 500 characters. */
export interface SearchMatch {
  path: string;
  line: number;
  column: number;
  text: string;
}
export interface SearchResponse {
  commit: string;
  /** Without a regex: the entries the glob selects. */
  files: Array<{ path: string; type: EntryType; size: number }>;
  /** With a regex: the matches. */
  matches: SearchMatch[];
  /** The limit was reached; there may be more. */
  truncated: boolean;
  /** The time bound passed; results are partial. */
  timedOut: boolean;
  /** Files skipped as binary (a NUL byte in the first 8 KiB). */
  skippedBinary: string[];
  /** Files scanned only up to maxBytesPerFile. */
  truncatedFiles: string[];
  filesScanned: number;
}

/**
 * POST /v1/volumes/{name}/replace : regex replace (`$1`, `$&`, `$<name>` expand)
 * across the files `glob` selects, in one commit, none when nothing matched.
 * Reads at head (or checks against `base`): a file changed meanwhile is a 409.
 * More than `maxFiles` candidates (default 1000, max 10000) is a 400; so is
 * missing the time bound (nothing is committed).
 */
export interface ReplaceRequest {
  path?: string;
  glob: string;
  regex: string;
  replacement: string;
  flags?: string;
  base?: string;
  maxFiles?: number;
  maxBytesPerFile?: number;
  timeoutMs?: number;
  message?: string;
}
export interface ReplaceResponse {
  commit: Commit | null;
  files: Array<{ path: string; replacements: number }>;
  skippedBinary: string[];
  skippedTooLarge: string[];
}

/**
 * POST /v1/volumes/{name}/edit : replaces the one occurrence of `oldString`
 * in a text file. 412 (details.occurrences) unless it occurs exactly once;
 * 409 when the file changed since `base` (default: the head the edit read).
 */
export interface EditRequest {
  path: string;
  oldString: string;
  newString: string;
  base?: string;
  message?: string;
}
export interface EditResponse {
  commit: Commit;
  path: string;
}

/**
 * GET /v1/volumes/{name}/watch?since=<commit> (or the Last-Event-ID header):
 * server-sent events, one `event: change` per changed path with `id:` the
 * commit id and this as data. `index` and `count` place the event within its
 * commit's events, so a client resumes from the last commit it received
 * whole. Without `since`, changes after the current head.
 */
export interface ChangeEvent {
  commit: string;
  seq: number;
  path: string;
  kind: 'added' | 'modified' | 'deleted';
  type: EntryType;
  index: number;
  count: number;
}

/**
 * GET /v1/volumes/{name}/changes?since=<commit>&limit=<n> : the same feed as
 * watch, as one JSON answer: the commits after `since` (oldest first, at most
 * `limit`, default 100), each with the paths it changed (at most 10,000, else
 * `truncated`), and the head. A client pages by asking again from the last
 * commit it got until it reaches `head`. Without `since`, none (the head).
 */
export interface ChangesResponse {
  head: string;
  commits: Array<{
    id: string;
    seq: number;
    changes: Array<{ path: string; kind: 'added' | 'modified' | 'deleted'; type: EntryType }>;
    truncated: boolean;
  }>;
}
