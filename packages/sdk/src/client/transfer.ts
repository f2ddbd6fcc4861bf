/**
 * @module client/transfer
 * Moves chunk bytes directly between the client and the blob store through
 * the signed requests the server hands out (the server itself for the
 * local-directory store, the S3 service for S3). A signed request is sent exactly as
 * given: its method, its headers, and for PUT an explicit Content-Length
 * (S3 presigned PUTs refuse chunked encoding).
 *
 * Failures that may pass (network errors, 408, 429, 5xx) are retried a few
 * times with exponential backoff; a PUT's body is re-created for each
 * attempt. Anything else becomes the StowageError of the answer.
 *
 * `Limiter` bounds how many transfers run at once.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import type { Readable } from 'node:stream';
import type { SignedRequest } from '../api/wire.js';
import { UnavailableError, type StowageError } from '../common/errors.js';
import { retry, type RetryPolicy } from '../common/retry.js';
import { errorFromResponse, networkReason } from './http-client.js';

/** Attempts per signed request, the first included. */
export const TRANSFER_ATTEMPTS = 4;
/** Backoff before the first retry; doubled for each further one. */
const FIRST_BACKOFF_MS = 200;
/** A connection idle this long is abandoned (and the attempt retried). */
const IDLE_TIMEOUT_MS = 60_000;

/** Largest answer body preallocated from its Content-Length (a chunk is at most 64 MiB). */
const MAX_PREALLOCATE = 128 * 1024 * 1024;

const httpAgent = new http.Agent({ keepAlive: true });
const httpsAgent = new https.Agent({ keepAlive: true });

/** A body for one PUT attempt: bytes, or a fresh stream (e.g. a file range). */
export type BodySource = () => Uint8Array | Readable;

/** How a transfer behaves. */
export interface TransferOptions {
  /** Base for signed URLs that are relative (resolved with `new URL(url, base)`). */
  baseUrl: string;
  /** Attempts, the first included (default TRANSFER_ATTEMPTS). */
  attempts?: number;
  /** What the transfer is, for messages ("chunk 3f2a… of /a/b"). */
  what?: string;
}

/** A failure of one attempt, with whether trying again may help. */
class AttemptError extends Error {
  constructor(readonly error: StowageError, readonly retryable: boolean) {
    super(error.message);
  }
}

function isRetryableStatus(status: number): boolean {
  // 507: the server's disk is full; retrying at once only fills the log.
  return status === 408 || status === 429 || (status >= 500 && status !== 507);
}

/**
 * The error of a failed signed request. A 5xx the blob store answers in its
 * own format (S3's InternalError XML, a proxy's page) means the store is
 * failing, so once retries are spent it is Unavailable, not an Internal bug
 * of Stowage; a Stowage ErrorBody keeps its own code.
 */
function transferError(status: number, bodyText: string, what: string): StowageError {
  const e = errorFromResponse(status, bodyText, what);
  if (status >= 500 && e.code === 'Internal' && !isErrorBody(bodyText)) return new UnavailableError(e.message, { cause: e });
  return e;
}

function isErrorBody(bodyText: string): boolean {
  try {
    const parsed = JSON.parse(bodyText) as { error?: { code?: unknown } } | null;
    return typeof parsed?.error?.code === 'string';
  } catch {
    return false;
  }
}

/** Headers of the signed request plus ours, without duplicates that differ only in case. */
function mergeHeaders(signed: Record<string, string>, extra: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const seen = new Set<string>();
  for (const [k, v] of Object.entries(signed)) {
    out[k] = v;
    seen.add(k.toLowerCase());
  }
  for (const [k, v] of Object.entries(extra)) if (!seen.has(k.toLowerCase())) out[k] = v;
  return out;
}

/** One attempt: sends the request and resolves with the status and the whole answer body. */
function attempt(req: SignedRequest, url: URL, headers: Record<string, string>, body: Uint8Array | Readable | undefined, what: string, into?: Buffer): Promise<{ status: number; body: Buffer }> {
  const mod = url.protocol === 'https:' ? https : http;
  const agent = url.protocol === 'https:' ? httpsAgent : httpAgent;
  return new Promise((resolve, reject) => {
    let bodyError: unknown;
    const fail = (e: unknown): void => {
      // A body that cannot be read (a local file gone) is the caller's problem, not the network's.
      if (bodyError !== undefined) {
        reject(bodyError);
        return;
      }
      reject(new AttemptError(new UnavailableError(`${what}: cannot reach the blob store at ${url.host}: ${networkReason(e)}`, { cause: e }), true));
    };
    const r = mod.request(url, { method: req.method, headers, agent }, (res) => {
      const status = res.statusCode ?? 0;
      // A successful body of announced length is copied into one buffer as it arrives (no second copy, no 2x peak).
      const declared = Number(res.headers['content-length']);
      const fits = status >= 200 && status < 300 && Number.isSafeInteger(declared) && declared >= 0;
      let whole = fits && into && declared <= into.length ? into.subarray(0, declared) : fits && declared <= MAX_PREALLOCATE ? Buffer.allocUnsafe(declared) : undefined;
      let filled = 0;
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => {
        if (whole && filled + d.length <= whole.length) {
          d.copy(whole, filled);
          filled += d.length;
          return;
        }
        if (whole) {
          parts.push(whole.subarray(0, filled));
          whole = undefined;
        }
        parts.push(d);
      });
      res.on('error', fail);
      res.on('end', () => {
        // The store may answer (an error) before reading the whole body: stop reading the source.
        if (body !== undefined && !(body instanceof Uint8Array) && !body.readableEnded) body.destroy();
        resolve({ status, body: whole ? whole.subarray(0, filled) : Buffer.concat(parts) });
      });
    });
    r.setTimeout(IDLE_TIMEOUT_MS, () => r.destroy(new Error(`no answer for ${IDLE_TIMEOUT_MS / 1000} s`)));
    r.on('error', fail);
    if (body === undefined) r.end();
    else if (body instanceof Uint8Array) r.end(body);
    else {
      body.on('error', (e) => {
        bodyError = e;
        r.destroy(e);
      });
      body.pipe(r);
    }
  });
}

/** Signed requests: failures that may pass (network, 408, 429, 5xx but 507), from 200 ms doubling, spread by ±25%. */
const TRANSFER_RETRY: RetryPolicy = { name: 'signed transfer', attempts: TRANSFER_ATTEMPTS, baseDelayMs: FIRST_BACKOFF_MS, jitter: 'spread', retryable: (e) => e instanceof AttemptError && e.retryable };

/** Runs attempts until one succeeds, a failure is permanent, or attempts run out; throws the StowageError of the last. */
async function withRetries<T>(attempts: number, fn: () => Promise<T>): Promise<T> {
  try {
    return await retry(TRANSFER_RETRY, fn, { attempts });
  } catch (e) {
    throw e instanceof AttemptError ? e.error : e;
  }
}

/**
 * Sends a signed PUT of exactly `size` bytes, with Content-Length, retrying
 * transient failures with a fresh body from `body()`.
 *
 * @example
 * await putSigned(m.request, m.size, () => createReadStream(file, { start, end }), { baseUrl: stowage.url });
 */
export async function putSigned(req: SignedRequest, size: number, body: BodySource, options: TransferOptions): Promise<void> {
  const url = new URL(req.url, options.baseUrl);
  const what = options.what ?? 'upload';
  const headers = mergeHeaders(req.headers, { 'content-length': String(size), 'content-type': 'application/octet-stream' });
  await withRetries(options.attempts ?? TRANSFER_ATTEMPTS, async () => {
    const res = await attempt(req, url, headers, body(), what);
    if (res.status >= 200 && res.status < 300) return;
    throw new AttemptError(transferError(res.status, res.body.toString('utf8'), what), isRetryableStatus(res.status));
  });
}

/**
 * Sends a signed GET and returns the whole answer body, retrying transient
 * failures. The caller verifies what it got (length, hash).
 *
 * @example
 * const bytes = await getSigned(chunk.request, { baseUrl: stowage.url });
 */
export async function getSigned(req: SignedRequest, options: TransferOptions, into?: Buffer): Promise<Buffer> {
  const url = new URL(req.url, options.baseUrl);
  const what = options.what ?? 'download';
  return withRetries(options.attempts ?? TRANSFER_ATTEMPTS, async () => {
    const res = await attempt(req, url, { ...req.headers }, undefined, what, into);
    if (res.status >= 200 && res.status < 300) return res.body;
    throw new AttemptError(transferError(res.status, res.body.toString('utf8'), what), isRetryableStatus(res.status));
  });
}

/**
 * Bounds how many async tasks run at once. A released slot is handed
 * straight to the next waiter, so the bound is never exceeded.
 *
 * @example
 * const limit = new Limiter(4);
 * await Promise.all(chunks.map((c) => limit.run(() => upload(c))));
 */
export class Limiter {
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(readonly limit: number) {}

  /** Waits for a free slot and takes it; pair with `release()`. */
  async acquire(): Promise<void> {
    if (this.#active < this.limit) {
      this.#active++;
      return;
    }
    await new Promise<void>((resolve) => this.#waiting.push(resolve));
  }

  /** Gives a slot back (to the next waiter, if any). */
  release(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#active--;
  }

  /** Runs `fn` in a slot. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    await this.acquire();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }
}
