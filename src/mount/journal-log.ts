/**
 * @module mount/journal-log
 * An append-only file of records, one line each: `<crc32 hex> <JSON>\n`,
 * written with a single write() before the operation it records answers.
 * The overlay keeps its journal here: a FUSE create, chmod or utimens costs
 * one small write instead of an SQLite transaction (tens of microseconds,
 * and `tar x` journals four changes per file).
 *
 * Durability is the overlay's: a killed agent loses nothing (the kernel has
 * the bytes once write() returns); a line torn or zeroed by a machine crash
 * fails its checksum and is cut off with everything after it, as SQLite's
 * WAL drops a torn frame.
 *
 * The first line names the log's epoch. Its owner keeps the current epoch
 * elsewhere, changed in the same transaction as whatever makes the records
 * obsolete; a log whose epoch is not the current one is stale and starts
 * over, so a crash between the two never replays old records.
 */
import { closeSync, constants, ftruncateSync, openSync, readFileSync, writeSync } from 'node:fs';
import { crc32 } from 'node:zlib';

function line(value: unknown): Buffer {
  const json = JSON.stringify(value);
  return Buffer.from(`${crc32(json).toString(16).padStart(8, '0')} ${json}\n`);
}

const CHECKSUM = /^[0-9a-f]{8} /;

/** The value of one line (without its newline), or undefined if it is torn or corrupt. */
function parseLine(text: string): unknown {
  if (!CHECKSUM.test(text)) return undefined;
  const json = text.slice(9);
  if (Number.parseInt(text.slice(0, 8), 16) !== crc32(json)) return undefined;
  try {
    return JSON.parse(json);
  } catch {
    return undefined;
  }
}

/**
 * A log's text split into its header (undefined when torn) and the records
 * after it up to the first invalid line; `end` is the byte length they end
 * at, `whole` whether nothing invalid followed.
 */
function parse(text: string): { header: unknown; records: unknown[]; end: number; whole: boolean } {
  let at = text.indexOf('\n');
  if (at < 0) return { header: undefined, records: [], end: 0, whole: text === '' };
  const header = parseLine(text.slice(0, at));
  const records: unknown[] = [];
  let end = Buffer.byteLength(text.slice(0, at + 1));
  for (let from = at + 1; from < text.length; from = at + 1) {
    at = text.indexOf('\n', from);
    const piece = at < 0 ? undefined : text.slice(from, at);
    const value = piece === undefined ? undefined : parseLine(piece);
    if (value === undefined) return { header, records, end, whole: false };
    records.push(value);
    end += Buffer.byteLength(piece!) + 1;
  }
  return { header, records, end, whole: true };
}

export class JournalLog<T> {
  readonly #path: string;
  #fd: number;
  #length: number;

  private constructor(path: string, fd: number, length: number) {
    this.#path = path;
    this.#fd = fd;
    this.#length = length;
  }

  /**
   * Opens the log at `path` for `epoch`: its valid records are kept (a torn
   * tail is cut off); a missing log, or one of another epoch, starts empty.
   */
  static open<T>(path: string, epoch: string): JournalLog<T> {
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_APPEND, 0o600);
    try {
      const found = parse(readFileSync(fd, 'utf8'));
      if ((found.header as { epoch?: unknown } | undefined)?.epoch === epoch) {
        ftruncateSync(fd, found.end);
        return new JournalLog<T>(path, fd, found.records.length);
      }
      const log = new JournalLog<T>(path, fd, 0);
      log.restart(epoch);
      return log;
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /** How many records the log holds. */
  get length(): number {
    return this.#length;
  }

  append(record: T): void {
    const bytes = line(record);
    let done = 0;
    while (done < bytes.length) done += writeSync(this.#fd, bytes, done);
    this.#length++;
  }

  /** The records, oldest first (read from the file: the log keeps none in memory). */
  records(): T[] {
    const { records, whole } = parse(readFileSync(this.#path, 'utf8'));
    if (!whole) throw new Error(`${this.#path}: a record is corrupt (the file changed under the agent)`);
    return records as T[];
  }

  /** Empties the log and starts epoch `epoch`. */
  restart(epoch: string): void {
    ftruncateSync(this.#fd, 0);
    const header = line({ epoch });
    writeSync(this.#fd, header);
    this.#length = 0;
  }

  close(): void {
    closeSync(this.#fd);
  }
}
