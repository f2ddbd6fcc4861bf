/**
 * @module cli/output
 * Everything the CLI prints, and the one table that maps an error code to
 * the process exit status and the hint appended to its message.
 *
 * Rules: an error prints exactly one line, `stowage: <message>`, to stderr,
 * and sets the exit status of its code; results go to stdout, as an aligned
 * table or, with `--json`, as JSON; progress and notes go to stderr.
 *
 * Names, messages and errors come from volumes and servers a user may not
 * trust: every printer here passes its text through `escapeControl`, so a
 * file named "a\x1b[2J\rforged\n" can neither drive the terminal nor forge
 * an output line. JSON output escapes the same characters as \uXXXX.
 */
import { CommanderError } from 'commander';
import { ERROR_CODES, StowageError, type ErrorCode } from '@stowage/sdk/common/errors.js';
import { formatSize } from '@stowage/sdk/common/sizes.js';

/** Exit status of a success. */
export const EXIT_OK = 0;

/** Exit status and the hint a user needs next, for every error code; exhaustive by type. */
export const EXIT_TABLE: Readonly<Record<ErrorCode, { status: number; hint?: string; hintWhen?: RegExp }>> = {
  InvalidArgument: { status: 2 },
  NotFound: { status: 3 },
  AlreadyExists: { status: 4 },
  Conflict: { status: 4 },
  PreconditionFailed: { status: 4 },
  Unauthenticated: { status: 5, hint: 'check --token or STOWAGE_TOKEN' },
  Forbidden: { status: 5 },
  ReadOnly: { status: 5 },
  QuotaExceeded: { status: 6 },
  PayloadTooLarge: { status: 6 },
  InsufficientStorage: { status: 6 },
  // Only about the server: a blob store, a mount agent or FUSE being unavailable says what to do itself.
  Unavailable: {
    status: 7,
    hint: 'is `stowage serve` running? Set --url or STOWAGE_URL to reach another server',
    hintWhen: /cannot reach Stowage/,
  },
  Internal: { status: 1, hint: 'this is a bug; the server log has details' },
};

/** Codes of local file-system failures (reading a file to put, writing a file got). */
const LOCAL_ERRNO: Readonly<Record<string, ErrorCode>> = {
  ENOENT: 'NotFound',
  EACCES: 'Forbidden',
  EPERM: 'Forbidden',
  EROFS: 'ReadOnly',
  EISDIR: 'InvalidArgument',
  ENOTDIR: 'InvalidArgument',
  EEXIST: 'AlreadyExists',
  ENOSPC: 'InsufficientStorage',
  EDQUOT: 'InsufficientStorage',
};

/** The errno code of a local file-system error, when `err` is one we classify. */
function localErrno(err: unknown): string | undefined {
  const code = err instanceof Error ? (err as NodeJS.ErrnoException).code : undefined;
  return typeof code === 'string' && Object.hasOwn(LOCAL_ERRNO, code) ? code : undefined;
}

/** The code an error is reported under: its own for StowageErrors, InvalidArgument for command-line mistakes, the class of local file errors, Internal otherwise. */
export function codeOf(err: unknown): ErrorCode {
  if (err instanceof StowageError && (ERROR_CODES as readonly string[]).includes(err.code)) return err.code;
  if (err instanceof CommanderError) return 'InvalidArgument';
  const errno = localErrno(err);
  return errno ? LOCAL_ERRNO[errno]! : 'Internal';
}

/** Exit status of an error. */
export function exitStatusOf(err: unknown): number {
  return EXIT_TABLE[codeOf(err)].status;
}

/**
 * Characters a terminal acts on rather than shows: C0 controls (tab excepted:
 * harmless, and common in matched lines), DEL, C1 controls (\x9b is a
 * one-byte CSI), the Unicode line and paragraph separators, and the
 * bidirectional overrides and isolates that reorder what a reader sees.
 */
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** The part of CONTROL that JSON.stringify writes raw (it escapes C0 itself; its own newlines are indentation). */
const RAW_IN_JSON = /[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** The visible escape of one control character: \n, \r, \xHH or \u{HHHH}. */
function escapeOne(c: string): string {
  if (c === '\n') return '\\n';
  if (c === '\r') return '\\r';
  const n = c.codePointAt(0)!;
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u{${n.toString(16)}}`;
}

/**
 * Renders control characters visibly (see CONTROL), so text from a volume or
 * a server prints as exactly what it is. Idempotent: the output holds no
 * control character. Backslashes are left alone, so a name that spells
 * "\x1b" literally reads the same as one holding ESC; the point is that
 * neither reaches the terminal raw.
 *
 * @example
 * escapeControl('a\x1b[2J\rb\n'); // 'a\\x1b[2J\\rb\\n'
 */
export function escapeControl(s: string): string {
  return s.replace(CONTROL, escapeOne);
}

/** Collapses whitespace (newlines included) so a message is one line. */
function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

/** The one line an error is reported with (without the "stowage: " prefix). */
export function errorMessageOf(err: unknown): string {
  const code = codeOf(err);
  let message: string;
  if (err instanceof CommanderError) message = err.message.replace(/^error:\s*/i, '');
  else if (err instanceof Error) message = err.message || err.name;
  else message = String(err);
  message = oneLine(message) || code;
  // Non-Stowage errors are bugs of this CLI: say which kind, the stack is not for users.
  if (!(err instanceof StowageError) && !(err instanceof CommanderError) && !localErrno(err))
    message = `unexpected error: ${message}`;
  const { hint, hintWhen } = EXIT_TABLE[code];
  return hint && !message.includes(hint) && (!hintWhen || hintWhen.test(message)) ? `${message} (${hint})` : message;
}

/** Prints an error as its one line on stderr and returns the exit status to use. */
export function reportError(err: unknown, stderr: NodeJS.WritableStream = process.stderr): number {
  stderr.write(`stowage: ${escapeControl(errorMessageOf(err))}\n`);
  return exitStatusOf(err);
}

/**
 * JSON text with the control characters JSON.stringify leaves raw (DEL, C1,
 * the separators and bidi controls) written as \uXXXX: the same value, safe
 * to show on a terminal.
 */
export function safeJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(
    RAW_IN_JSON,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Prints a value as indented JSON on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(`${safeJson(value, 2)}\n`);
}

/** Prints a line on stdout (control characters escaped). */
export function printLine(line = ''): void {
  process.stdout.write(`${escapeControl(line)}\n`);
}

/** Prints a note for humans on stderr (never part of a command's result; control characters escaped). */
export function printNote(line: string): void {
  process.stderr.write(`${escapeControl(line)}\n`);
}

/** Column alignment: numbers read better right-aligned. */
export type Align = 'left' | 'right';

/**
 * Formats rows under headers as aligned columns (two spaces apart, the last
 * column not padded).
 *
 * @example
 * formatTable(['NAME', 'SIZE'], [['data', '1 KiB']], ['left', 'right']);
 */
export function formatTable(
  headers: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  align: readonly Align[] = [],
): string {
  // Cells are escaped before measuring, so an escaped name keeps its column aligned.
  const all = [headers, ...rows].map((r) => r.map((cell) => escapeControl(cell)));
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const lines = all.map((r) =>
    r
      .map((cell, i) => {
        const last = i === r.length - 1;
        if (align[i] === 'right') return cell.padStart(widths[i]!);
        return last ? cell : cell.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd(),
  );
  return lines.join('\n');
}

/** Prints an aligned table on stdout (its cells escaped by formatTable; its newlines are the rows'). */
export function printTable(
  headers: readonly string[],
  rows: ReadonlyArray<readonly string[]>,
  align: readonly Align[] = [],
): void {
  process.stdout.write(`${formatTable(headers, rows, align)}\n`);
}

/** Prints "key: value" lines with the values aligned. */
export function printFields(fields: ReadonlyArray<readonly [string, string]>): void {
  const w = Math.max(0, ...fields.map(([k]) => k.length)) + 1;
  for (const [k, v] of fields) printLine(`${`${k}:`.padEnd(w)} ${v}`);
}

/** A byte count for humans: "20 MiB". */
export function bytes(n: number): string {
  return formatSize(n);
}

/** A time for tables: "2025-01-31 14:05:09" (UTC, to the second); "-" for none. */
export function when(t: string | number | null | undefined): string {
  if (t === null || t === undefined) return '-';
  const d = new Date(t);
  if (Number.isNaN(d.getTime())) return String(t);
  return d
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, '');
}

/**
 * A tree time to the nanosecond (ms since the epoch plus the ns past it), as
 * `when` prints it with nine fraction digits.
 *
 * @example
 * whenNs(1700000000123, 456789); // "2023-11-14 22:13:20.123456789"
 */
export function whenNs(ms: number, ns = 0): string {
  const d = new Date(ms);
  if (Number.isNaN(d.getTime())) return String(ms);
  const frac = String(((ms % 1000) + 1000) % 1000).padStart(3, '0') + String(ns).padStart(6, '0');
  return `${when(ms)}.${frac}`;
}

/** The short form of a commit id (12 hex characters, as git's). */
export function shortId(id: string): string {
  return id.slice(0, 12);
}

/** Permission bits as octal, e.g. "644". */
export function octal(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(3, '0');
}
