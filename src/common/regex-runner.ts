/**
 * @module common/regex-runner
 * Runs user patterns under a deadline: regexes over contents, and globs over
 * paths (a glob compiles to a regex, and "*a*a*a…b" backtracks as badly as
 * any). Patterns are checked here (a syntax error is InvalidArgument naming
 * the problem), then every match runs in a worker thread
 * (common/regex-worker) that is terminated when the deadline passes: a
 * catastrophic pattern costs its caller the time bound, never the server's
 * event loop.
 *
 * Globs: a pattern without "/" matches an entry's name anywhere (like
 * `find -name`); a pattern with "/" matches the full path, with or without
 * its leading "/". Dotfiles match; extglobs are off.
 */
import picomatch from 'picomatch';
import { Worker } from 'node:worker_threads';
import { InvalidArgumentError, UnavailableError } from '@stowage/sdk/common/errors.js';

/** Pattern workers alive at once in one process; more searches are refused (Unavailable) rather than queued past their deadlines. */
export const MAX_RUNNERS = 16;
/** Longest pattern accepted, in characters. */
export const MAX_PATTERN_CHARS = 4096;
/** Flags a user may give: case-insensitive, multiline anchors, dotAll, unicode. */
const USER_FLAGS = /^[imsu]*$/;

/** A matching line: 1-based line and column (UTF-16 units), and the line clipped to 500 characters. */
export interface LineMatch {
  line: number;
  column: number;
  text: string;
}

/** A job for the worker. */
export type RegexJob =
  | { kind: 'search'; id: number; text: string; limit: number }
  | { kind: 'replace'; id: number; text: string; replacement: string }
  | { kind: 'glob'; id: number; paths: string[] };

/** The worker's answer to a job. */
export type RegexReply =
  | { id: number; matches: LineMatch[] }
  | { id: number; text: string; count: number }
  | { id: number; selected: boolean[] };

/** What a worker runs: a regex, a glob, or both. */
export interface Patterns {
  regex?: { source: string; flags: string } | undefined;
  glob?: string | undefined;
}

const MAX_GLOB_CHARS = 1024;

/** Compiles a glob (see the module comment) into a path predicate; InvalidArgument when malformed. Never call the predicate on the main thread. */
export function compileGlob(glob: unknown): (path: string) => boolean {
  if (typeof glob !== 'string' || glob.length === 0 || glob.length > MAX_GLOB_CHARS)
    throw new InvalidArgumentError(`glob must be 1 to ${MAX_GLOB_CHARS} characters`);
  const pattern = glob.replace(/^\/+/, '');
  let test: (s: string) => boolean;
  try {
    test = picomatch(pattern, { dot: true, noextglob: true, basename: !pattern.includes('/') });
  } catch (e) {
    throw new InvalidArgumentError(`invalid glob ${JSON.stringify(glob.slice(0, 100))}: ${(e as Error).message}`);
  }
  return (path) => test(path.replace(/^\/+/, ''));
}

/** Thrown by `RegexRunner` calls once the deadline has passed. */
export class RegexTimeout extends Error {
  constructor() {
    super('regex deadline passed');
  }
}

/** Checks a user's pattern and flags; InvalidArgument names what is wrong. */
export function checkRegex(source: unknown, flags: unknown = ''): { source: string; flags: string } {
  if (typeof source !== 'string' || source.length === 0)
    throw new InvalidArgumentError('regex must be a non-empty string');
  if (source.length > MAX_PATTERN_CHARS)
    throw new InvalidArgumentError(`regex is too long (${source.length} characters; at most ${MAX_PATTERN_CHARS})`);
  if (typeof flags !== 'string' || !USER_FLAGS.test(flags) || new Set(flags).size !== flags.length) {
    throw new InvalidArgumentError(
      `invalid regex flags ${JSON.stringify(String(flags).slice(0, 20))}: use any of i, m, s, u (each once)`,
    );
  }
  try {
    new RegExp(source, flags);
  } catch (e) {
    throw new InvalidArgumentError(`invalid regex: ${(e as Error).message}`);
  }
  return { source, flags };
}

/**
 * One worker running one regex and/or glob until `deadline` (epoch ms).
 * Calls after the deadline, or in flight when it passes, reject with
 * RegexTimeout. Always `close()` it.
 */
export class RegexRunner {
  /** Runners alive in this process: each holds a thread, so their number is bounded (MAX_RUNNERS). */
  static #alive = 0;
  readonly #worker: Worker;
  #released = false;
  readonly #timer: NodeJS.Timeout;
  readonly #pending = new Map<number, { resolve: (r: RegexReply) => void; reject: (e: Error) => void }>();
  #nextId = 1;
  #dead: Error | undefined;

  constructor(patterns: Patterns, deadline: number) {
    if (RegexRunner.#alive >= MAX_RUNNERS)
      throw new UnavailableError(
        `too many searches are running on this server (${MAX_RUNNERS}); try again in a moment`,
      );
    RegexRunner.#alive++;
    this.#worker = new Worker(new URL('./regex-worker.js', import.meta.url), {
      workerData: patterns,
      resourceLimits: { maxOldGenerationSizeMb: 256 },
    });
    this.#worker.unref();
    this.#worker.on('message', (reply: RegexReply) => {
      const p = this.#pending.get(reply.id);
      this.#pending.delete(reply.id);
      p?.resolve(reply);
    });
    this.#worker.on('error', (e) => this.#fail(new InvalidArgumentError(`regex could not run: ${e.message}`)));
    this.#worker.on('exit', () => {
      this.#release();
      this.#fail(new RegexTimeout());
    });
    this.#timer = setTimeout(() => this.#fail(new RegexTimeout()), Math.max(0, deadline - Date.now()));
    this.#timer.unref();
  }

  #release(): void {
    if (this.#released) return;
    this.#released = true;
    RegexRunner.#alive--;
  }

  /** Runners alive in this process. */
  static get alive(): number {
    return RegexRunner.#alive;
  }

  #fail(e: Error): void {
    if (!this.#dead) this.#dead = e;
    for (const p of this.#pending.values()) p.reject(this.#dead);
    this.#pending.clear();
    void this.#worker.terminate();
  }

  #send(
    job:
      | { kind: 'search'; text: string; limit: number }
      | { kind: 'replace'; text: string; replacement: string }
      | { kind: 'glob'; paths: string[] },
  ): Promise<RegexReply> {
    if (this.#dead) return Promise.reject(this.#dead);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#worker.postMessage({ ...job, id });
    });
  }

  /** The first match of each matching line of `text`, at most `limit`. */
  async search(text: string, limit: number): Promise<LineMatch[]> {
    return ((await this.#send({ kind: 'search', text, limit })) as { matches: LineMatch[] }).matches;
  }

  /** `text` with every match replaced (`$1`, `$&`, `$<name>` expand as in String.prototype.replace). */
  async replace(text: string, replacement: string): Promise<{ text: string; count: number }> {
    const r = (await this.#send({ kind: 'replace', text, replacement })) as { text: string; count: number };
    return { text: r.text, count: r.count };
  }

  /** Which of `paths` the glob selects. */
  async glob(paths: string[]): Promise<boolean[]> {
    return ((await this.#send({ kind: 'glob', paths })) as { selected: boolean[] }).selected;
  }

  /** Stops the worker. */
  close(): void {
    clearTimeout(this.#timer);
    this.#release();
    if (!this.#dead) this.#dead = new RegexTimeout();
    void this.#worker.terminate();
  }
}
