/**
 * @module mount/remote
 * What the mount agent needs from the server, and its HTTP implementation:
 * directory listings of the base commit (paged), and the bytes of one chunk
 * of a base file, fetched straight from the blob store through the signed
 * GETs of the file's read plan. The agent speaks only with its attachment's
 * scoped token.
 *
 * Read plans are cached per (commit, path) until shortly before their
 * signatures expire. Fetches are bounded so that at most `bufferSize` bytes
 * of chunks are in memory at once (at least one chunk).
 */
import type * as wire from '@stowage/sdk/api/wire.js';
import { isStowageError } from '@stowage/sdk/common/errors.js';
import { retry, type RetryPolicy } from '@stowage/sdk/common/retry.js';
import type { Stowage } from '@stowage/sdk/client/http-client.js';
import { getSigned } from '@stowage/sdk/client/transfer.js';

export interface RemoteSource {
  /** Every entry directly inside `path` of commit `commit` (volume paths). */
  list(commit: string, path: string): Promise<wire.FileInfo[]>;
  /** The bytes of chunk `index` (hash `hash`) of the file at `path` in `commit`; `size` bounds them (the file's chunk size: what the memory budget reserves). */
  fetchChunk(commit: string, path: string, index: number, hash: string, size: number): Promise<Uint8Array>;
  /** Hands back bytes `fetchChunk` returned once they are no longer used, so their memory serves the next fetch. */
  recycle?(bytes: Uint8Array): void;
}

const LIST_PAGE = 10_000;
/** A chunk at least this large is fetched as PARTS ranged GETs at once (a single stream does not fill the link). */
const SPLIT_FETCH_AT = 16 * 1024 * 1024;
const PARTS = 4;
/** A plan is used until this long before its first signature expires. */
const PLAN_MARGIN_MS = 60_000;
/** Errors of the signed GETs themselves (not of asking for the plan): only those can mean a stale signature. */
const fromSignedGet = new WeakSet<object>();
/** A signature that expired early (clock skew, a long pause) is refused: plan (sign) again, once, at once. */
const RESIGN_RETRY: RetryPolicy = {
  name: 'chunk re-sign',
  attempts: 2,
  baseDelayMs: 0,
  retryable: (e) => (isStowageError(e, 'Forbidden') || isStowageError(e, 'Unauthenticated')) && fromSignedGet.has(e),
};

export class HttpRemote implements RemoteSource {
  readonly #plans = new Map<string, { plan: wire.ReadPlan; goodUntil: number }>();
  readonly #budget: ByteBudget;
  /**
   * Chunk buffers kept for reuse, by size: a fresh 64 MiB buffer costs
   * thousands of page faults on first touch, more than the copy into it.
   */
  readonly #pool = new Map<number, Buffer[]>();
  readonly #ours = new WeakSet<ArrayBufferLike>();
  /** Budget held by fetched bytes not yet recycled. */
  readonly #held = new Map<ArrayBufferLike, number>();
  #pooled = 0;

  constructor(
    private readonly client: Stowage,
    private readonly volume: string,
    readonly bufferSize: number,
  ) {
    this.#budget = new ByteBudget(bufferSize);
  }

  #acquire(size: number): Buffer {
    const free = this.#pool.get(size)?.pop();
    if (free) {
      this.#pooled -= size;
      return free;
    }
    // Shared memory, so the chunk hasher's worker thread reads it without a copy.
    const buf = Buffer.from(new SharedArrayBuffer(size));
    this.#ours.add(buf.buffer);
    return buf;
  }

  recycle(bytes: Uint8Array): void {
    const held = this.#held.get(bytes.buffer);
    if (held !== undefined) {
      this.#held.delete(bytes.buffer);
      this.#budget.release(held);
    }
    const whole = Buffer.from(bytes.buffer, 0, bytes.buffer.byteLength);
    // Keep at most a buffer size's worth (at least one chunk) for reuse; the rest goes to the GC.
    if (!this.#ours.has(bytes.buffer) || (this.#pooled > 0 && this.#pooled + whole.length > this.bufferSize)) return;
    const list = this.#pool.get(whole.length) ?? [];
    if (list.some((b) => b.buffer === bytes.buffer)) return;
    list.push(whole);
    this.#pool.set(whole.length, list);
    this.#pooled += whole.length;
  }

  #path(suffix: string): string {
    return `/v1/volumes/${encodeURIComponent(this.volume)}${suffix}`;
  }

  async list(commit: string, path: string): Promise<wire.FileInfo[]> {
    const out: wire.FileInfo[] = [];
    let after: string | undefined;
    do {
      const page = await this.client.request<wire.ListResponse>('GET', this.#path('/list'), {
        query: { path, commit, limit: LIST_PAGE, after },
      });
      out.push(...page.entries);
      after = page.nextCursor ?? undefined;
    } while (after !== undefined);
    return out;
  }

  async #plan(commit: string, path: string, fresh: boolean): Promise<wire.ReadPlan> {
    const key = `${commit}:${path}`;
    const cached = this.#plans.get(key);
    if (!fresh && cached && cached.goodUntil > Date.now()) return cached.plan;
    const plan = await this.client.request<wire.ReadPlan>('GET', this.#path('/read'), { query: { path, commit } });
    const first = plan.chunks.reduce((t, c) => Math.min(t, Date.parse(c.request.expiresAt)), Infinity);
    if (this.#plans.size > 1000) this.#plans.clear();
    this.#plans.set(key, { plan, goodUntil: first - PLAN_MARGIN_MS });
    return plan;
  }

  /** One signed GET, or PARTS concurrent ranged GETs of it for a large chunk, received straight into one pooled buffer. */
  async #get(request: wire.SignedRequest, size: number, what: string): Promise<Uint8Array> {
    const options = { baseUrl: this.client.url, what };
    const out = this.#acquire(size);
    try {
      // A request signed for a range (a chunk inside a pack) must be sent with exactly that range: never split it.
      const signedRange = Object.keys(request.headers).some((k) => k.toLowerCase() === 'range');
      if (size < SPLIT_FETCH_AT || signedRange) {
        const got = await getSigned(request, options, out);
        if (got.buffer !== out.buffer) this.recycle(out);
        return got;
      }
      const part = Math.ceil(size / PARTS);
      // allSettled: no part may still be writing into `out` once it is recycled after a failure.
      const results = await Promise.allSettled(
        Array.from({ length: PARTS }, async (_, k) => {
          const from = k * part;
          const to = Math.min(size, from + part) - 1;
          if (from > to) return;
          const headers: Record<string, string> = { ...request.headers, range: `bytes=${from}-${to}` };
          const slot = out.subarray(from, to + 1);
          const bytes = await getSigned({ ...request, headers }, options, slot);
          if (bytes.length !== slot.length)
            throw new Error(`${what}: the store answered ${bytes.length} bytes for a ${slot.length}-byte range`);
          if (bytes.buffer !== out.buffer) slot.set(bytes);
        }),
      );
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
      return out;
    } catch (e) {
      this.recycle(out);
      throw e;
    }
  }

  /**
   * The chunk's bytes, which count against `bufferSize` until they are
   * handed back with `recycle` (after the cache wrote them): the bound covers
   * every chunk held in memory, not only those on the wire.
   */
  async fetchChunk(commit: string, path: string, index: number, hash: string, size: number): Promise<Uint8Array> {
    await this.#budget.acquire(size);
    try {
      return await retry(RESIGN_RETRY, async (attempt) => {
        const plan = await this.#plan(commit, path, attempt > 1);
        const chunk = plan.chunks[index];
        if (!chunk || chunk.hash !== hash)
          throw new Error(`the server's plan for ${path} has no chunk ${index} with hash ${hash.slice(0, 12)}…`);
        const bytes = await this.#get(chunk.request, chunk.size, `chunk ${index} of ${path}`).catch((e: unknown) => {
          if (typeof e === 'object' && e !== null) fromSignedGet.add(e);
          throw e;
        });
        this.#held.set(bytes.buffer, size);
        return bytes;
      });
    } catch (e) {
      this.#budget.release(size);
      throw e;
    }
  }
}

/** Admits holders while the bytes they hold stay within a budget; one holder is always admitted, however large. */
class ByteBudget {
  #used = 0;
  readonly #waiting: Array<{ bytes: number; go: () => void }> = [];

  constructor(readonly budget: number) {}

  async acquire(bytes: number): Promise<void> {
    if (this.#used > 0 && this.#used + bytes > this.budget) {
      // The releaser reserves our bytes before waking us.
      await new Promise<void>((go) => this.#waiting.push({ bytes, go }));
    } else {
      this.#used += bytes;
    }
  }

  release(bytes: number): void {
    this.#used -= bytes;
    while (this.#waiting.length > 0 && (this.#used === 0 || this.#used + this.#waiting[0]!.bytes <= this.budget)) {
      const next = this.#waiting.shift()!;
      this.#used += next.bytes;
      next.go();
    }
  }
}
