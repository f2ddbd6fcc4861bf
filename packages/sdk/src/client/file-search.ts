/**
 * @module client/file-search
 * The content operations of `vol.files` that run on the server: paged
 * listings, search, replace, edit, and watch (server-sent events read with
 * fetch, reconnecting after network errors and resuming from the last commit
 * received whole, so no change is missed or repeated).
 */
import type * as wire from '../api/wire.js';
import { errorFromCode, InvalidArgumentError, isStowageError, UnavailableError } from '../common/errors.js';
import { parsePath } from '../common/paths.js';
import { retry, type RetryPolicy } from '../common/retry.js';
import { errorFromResponse, type Stowage } from './http-client.js';
import { parseSse } from './sse.js';

/** Where requests of one volume go. */
export interface VolumeTarget {
  readonly client: Stowage;
  readonly name: string;
}

function volumePath(t: VolumeTarget, suffix: string): string {
  return `/v1/volumes/${encodeURIComponent(t.name)}${suffix}`;
}

/** Options of a paged listing. */
export interface IterateOptions {
  recursive?: boolean;
  commit?: string;
  /** Entries fetched per request (default 1000, at most 10000). */
  pageSize?: number;
}

/** Every entry below `path`, page by page, all pages at the first page's commit. */
export async function* iterateEntries(
  t: VolumeTarget,
  path: string,
  options: IterateOptions = {},
): AsyncGenerator<wire.FileInfo> {
  const p = parsePath(path);
  let commit = options.commit;
  let after: string | undefined;
  for (;;) {
    const page = await t.client.request<wire.ListResponse>('GET', volumePath(t, '/list'), {
      query: { path: p, commit, recursive: options.recursive ? 'true' : undefined, limit: options.pageSize, after },
    });
    yield* page.entries;
    if (page.nextCursor === null || page.nextCursor === undefined || page.entries.length === 0) return;
    // Later pages read the same commit, so a concurrent commit cannot shift them.
    commit = page.commit;
    after = page.nextCursor;
  }
}

/** Options of `vol.files.search` (see wire.SearchRequest for the bounds). */
export type SearchOptions = Omit<wire.SearchRequest, 'path'>;

/** POST .../search */
export async function searchFiles(t: VolumeTarget, path: string, options: SearchOptions): Promise<wire.SearchResponse> {
  return t.client.request<wire.SearchResponse>('POST', volumePath(t, '/search'), {
    body: { ...options, path: parsePath(path) },
  });
}

/** Options of `vol.files.replace` (see wire.ReplaceRequest). */
export type ReplaceOptions = Omit<wire.ReplaceRequest, 'path' | 'regex' | 'replacement'>;

/** POST .../replace */
export async function replaceInFiles(
  t: VolumeTarget,
  path: string,
  regex: string,
  replacement: string,
  options: ReplaceOptions,
): Promise<wire.ReplaceResponse> {
  return t.client.request<wire.ReplaceResponse>('POST', volumePath(t, '/replace'), {
    body: { ...options, path: parsePath(path), regex, replacement },
  });
}

/** POST .../edit */
export async function editFile(
  t: VolumeTarget,
  path: string,
  oldString: string,
  newString: string,
  options: { base?: string; message?: string },
): Promise<wire.EditResponse> {
  return t.client.request<wire.EditResponse>('POST', volumePath(t, '/edit'), {
    body: { path: parsePath(path), oldString, newString, ...options },
  });
}

/** Options of `vol.files.watch`. */
export interface WatchOptions {
  /** Deliver the changes after this commit (default: after the head when the watch starts). */
  since?: string;
  /** Ends the watch (the iterator returns). */
  signal?: AbortSignal;
  /** Wait before reconnecting after a network error, in ms (default 500). */
  retryDelay?: number;
}

/**
 * Connecting a watch: network failures (fetch's are TypeErrors) and
 * Unavailable answers (overloaded or restarting servers) are tried again
 * every `retryDelay` until the watch is aborted; anything else is the
 * caller's to handle.
 */
const WATCH_CONNECT: RetryPolicy = {
  name: 'watch connect',
  attempts: Infinity,
  baseDelayMs: 500,
  factor: 1,
  retryable: (e) => e instanceof TypeError || isStowageError(e, 'Unavailable'),
};

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/**
 * The change events of a volume as they happen, until `signal` aborts.
 * Network errors reconnect (after `retryDelay`) from the last commit whose
 * events all arrived, skipping events already delivered; errors the server
 * answers (NotFound for an unknown `since`, Unauthenticated…) are thrown.
 */
export async function* watchChanges(t: VolumeTarget, options: WatchOptions = {}): AsyncGenerator<wire.ChangeEvent> {
  // Our own controller, aborted when the caller's signal fires or the caller stops iterating (break, return, throw), so the connection never outlives the watch.
  const own = new AbortController();
  const stopOwn = (): void => own.abort();
  options.signal?.addEventListener('abort', stopOwn, { once: true });
  if (options.signal?.aborted) own.abort();
  try {
    yield* watchLoop(t, options, own.signal);
  } finally {
    options.signal?.removeEventListener('abort', stopOwn);
    own.abort();
  }
}

async function* watchLoop(
  t: VolumeTarget,
  options: WatchOptions,
  signal: AbortSignal,
): AsyncGenerator<wire.ChangeEvent> {
  const retryDelay = options.retryDelay ?? 500;
  if (!Number.isFinite(retryDelay) || retryDelay < 0)
    throw new InvalidArgumentError('retryDelay must be a number of milliseconds >= 0');
  // Pin the starting point, so a reconnect before the first event still misses nothing.
  let resume = options.since ?? (await t.client.request<wire.Volume>('GET', volumePath(t, ''))).head;
  let partial: { commit: string; index: number } | undefined;
  while (!signal.aborted) {
    let res: Response;
    try {
      res = await retry(
        { ...WATCH_CONNECT, baseDelayMs: retryDelay },
        async () => {
          const r = await fetch(t.client.urlOf(volumePath(t, '/watch'), { since: resume }), {
            headers: { ...t.client.authHeaders(), accept: 'text/event-stream', 'last-event-id': resume },
            signal,
          });
          if (r.ok) return r;
          throw errorFromResponse(r.status, await r.text(), 'watch');
        },
        { signal },
      );
    } catch (e) {
      if (signal.aborted) return;
      throw e;
    }
    if (!res.body) throw new UnavailableError('watch: the server answered without a body');
    const body = res.body as unknown as AsyncIterable<Uint8Array>;
    try {
      for await (const ev of parseSse(body)) {
        if (ev.event === 'error') {
          const parsed = JSON.parse(ev.data) as wire.ErrorBody;
          throw errorFromCode(parsed.error.code, parsed.error.message, parsed.error.details);
        }
        if (ev.event !== 'change') continue;
        const change = JSON.parse(ev.data) as wire.ChangeEvent;
        if (partial && change.commit === partial.commit && change.index <= partial.index) continue;
        partial = { commit: change.commit, index: change.index };
        if (change.index === change.count - 1) {
          resume = change.commit;
          partial = undefined;
        }
        yield change;
      }
    } catch (e) {
      if (signal.aborted) return;
      // Errors the server reported, and garbage, end the watch; a broken connection reconnects.
      if (isStowageError(e) || e instanceof SyntaxError) throw e;
    }
    if (signal.aborted) return;
    await sleep(retryDelay, signal);
  }
}
