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
import type * as wire from '../api/wire.js';
import { isStowageError } from '../common/errors.js';
import type { Stowage } from '../sdk/http-client.js';
import { getSigned } from '../sdk/transfer.js';

export interface RemoteSource {
  /** Every entry directly inside `path` of commit `commit` (volume paths). */
  list(commit: string, path: string): Promise<wire.FileInfo[]>;
  /** The bytes of chunk `index` (hash `hash`) of the file at `path` in `commit`. */
  fetchChunk(commit: string, path: string, index: number, hash: string, size: number): Promise<Uint8Array>;
}

const LIST_PAGE = 10_000;
/** A chunk at least this large is fetched as PARTS ranged GETs at once (a single stream does not fill the link). */
const SPLIT_FETCH_AT = 16 * 1024 * 1024;
const PARTS = 4;
/** A plan is used until this long before its first signature expires. */
const PLAN_MARGIN_MS = 60_000;

export class HttpRemote implements RemoteSource {
  readonly #plans = new Map<string, { plan: wire.ReadPlan; goodUntil: number }>();
  readonly #budget: ByteBudget;

  constructor(private readonly client: Stowage, private readonly volume: string, bufferSize: number) {
    this.#budget = new ByteBudget(bufferSize);
  }

  #path(suffix: string): string {
    return `/v1/volumes/${encodeURIComponent(this.volume)}${suffix}`;
  }

  async list(commit: string, path: string): Promise<wire.FileInfo[]> {
    const out: wire.FileInfo[] = [];
    let after: string | undefined;
    do {
      const page = await this.client.request<wire.ListResponse>('GET', this.#path('/list'), { query: { path, commit, limit: LIST_PAGE, after } });
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

  /** One signed GET, or PARTS concurrent ranged GETs of it for a large chunk, assembled in order. */
  async #get(request: wire.SignedRequest, size: number, what: string): Promise<Uint8Array> {
    const options = { baseUrl: this.client.url, what };
    if (size < SPLIT_FETCH_AT) return getSigned(request, options);
    // A packed chunk's request already names its range inside the pack: split that range.
    const rangeKey = Object.keys(request.headers).find((k) => k.toLowerCase() === 'range');
    const start = rangeKey ? Number(/^bytes=(\d+)-/.exec(request.headers[rangeKey]!)?.[1] ?? 0) : 0;
    const out = Buffer.allocUnsafe(size);
    const part = Math.ceil(size / PARTS);
    await Promise.all(Array.from({ length: PARTS }, async (_, k) => {
      const from = k * part;
      const to = Math.min(size, from + part) - 1;
      if (from > to) return;
      const headers: Record<string, string> = {};
      for (const [h, v] of Object.entries(request.headers)) if (h !== rangeKey) headers[h] = v;
      headers['range'] = `bytes=${start + from}-${start + to}`;
      const bytes = await getSigned({ ...request, headers }, options);
      if (bytes.length !== to - from + 1) throw new Error(`${what}: the store answered ${bytes.length} bytes for a ${to - from + 1}-byte range`);
      out.set(bytes, from);
    }));
    return out;
  }

  async fetchChunk(commit: string, path: string, index: number, hash: string, size: number): Promise<Uint8Array> {
    return this.#budget.run(size, async () => {
      for (let attempt = 0; ; attempt++) {
        const plan = await this.#plan(commit, path, attempt > 0);
        const chunk = plan.chunks[index];
        if (!chunk || chunk.hash !== hash) throw new Error(`the server's plan for ${path} has no chunk ${index} with hash ${hash.slice(0, 12)}…`);
        try {
          return await this.#get(chunk.request, chunk.size, `chunk ${index} of ${path}`);
        } catch (e) {
          // A signature that expired early (clock skew, a long pause): sign again once.
          if (attempt === 0 && (isStowageError(e, 'Forbidden') || isStowageError(e, 'Unauthenticated'))) continue;
          throw e;
        }
      }
    });
  }
}

/** Admits tasks while the bytes they hold stay within a budget; one task is always admitted, however large. */
class ByteBudget {
  #used = 0;
  readonly #waiting: Array<{ bytes: number; go: () => void }> = [];

  constructor(readonly budget: number) {}

  async run<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
    if (this.#used > 0 && this.#used + bytes > this.budget) {
      // The releaser reserves our bytes before waking us.
      await new Promise<void>((go) => this.#waiting.push({ bytes, go }));
    } else {
      this.#used += bytes;
    }
    try {
      return await fn();
    } finally {
      this.#used -= bytes;
      while (this.#waiting.length > 0 && (this.#used === 0 || this.#used + this.#waiting[0]!.bytes <= this.budget)) {
        const next = this.#waiting.shift()!;
        this.#used += next.bytes;
        next.go();
      }
    }
  }
}
