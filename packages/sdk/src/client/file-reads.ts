/**
 * @module client/file-reads
 * The read side of the file API (`vol.files.read`, `readStream`): ask the
 * server where a file's chunks are, fetch them by signed request straight
 * from the blob store, and check every chunk against its SHA-256 before it is
 * handed out. Ranged reads go through the server's content endpoint instead.
 */
import { constants as bufferConstants } from 'node:buffer';
import { Readable } from 'node:stream';
import type * as wire from '../api/wire.js';
import { mapLimit } from '../common/concurrency.js';
import { InternalError, InvalidArgumentError } from '../common/errors.js';
import { parsePath } from '../common/paths.js';
import { retry, type RetryPolicy } from '../common/retry.js';
import { sha256Hex } from './chunker.js';
import type { CommitTarget, ProgressListener } from './commit-writer.js';
import { getSigned } from './transfer.js';
import { readRange, type ByteRange } from './content-stream.js';

/** A chunk whose bytes do not match its hash: the stored data, or this one transfer, is damaged. */
class DamagedChunkError extends InternalError {}
/** A damaged transfer is fetched once more (at once) before the chunk is reported damaged. */
const REFETCH_DAMAGED: RetryPolicy = {
  name: 'damaged chunk refetch',
  attempts: 2,
  baseDelayMs: 0,
  retryable: (e) => e instanceof DamagedChunkError,
};

/** Options of reads at a point in history. */
export interface ReadOptions {
  /** A commit id; the volume's head when absent. */
  commit?: string;
  /** Hears download progress. */
  onProgress?: ProgressListener;
  /** Only these bytes (inclusive offsets), fetched through the server's content endpoint. */
  range?: ByteRange;
}

/** Bytes `readStream` fetches ahead of its reader at most (beyond one chunk). */
export const READAHEAD_BYTES = 128 * 1024 * 1024;

/** Where a file's chunks are: GET .../read */
async function readPlan(host: CommitTarget, path: string, commit?: string): Promise<wire.ReadPlan> {
  const p = parsePath(path);
  const plan = await host.client.request<wire.ReadPlan>('GET', `/v1/volumes/${encodeURIComponent(host.name)}/read`, {
    query: { path: p, commit },
  });
  const sum = plan.chunks.reduce((n, c) => n + c.size, 0);
  if (sum !== plan.entry.size)
    throw new InternalError(`read plan of ${p} is inconsistent: chunks hold ${sum} bytes, the file ${plan.entry.size}`);
  return plan;
}

/** Fetches one chunk and checks its length and SHA-256 (once more on a mismatch, in case a transfer was damaged). */
async function fetchChunk(host: CommitTarget, path: string, c: wire.ReadPlan['chunks'][number]): Promise<Buffer> {
  return retry(REFETCH_DAMAGED, async () => {
    const bytes = await getSigned(c.request, { baseUrl: host.client.url, what: `download of a chunk of ${path}` });
    if (bytes.length === c.size && sha256Hex(bytes) === c.hash) return bytes;
    throw new DamagedChunkError(
      `chunk ${c.hash.slice(0, 12)} of ${path} failed verification (got ${bytes.length} bytes with another hash): the stored data may be damaged`,
    );
  });
}

/** Reads a whole file into memory, chunks fetched in parallel and verified. */
export async function readWhole(host: CommitTarget, path: string, options: ReadOptions): Promise<Buffer> {
  if (options.range) return Buffer.concat(await (await readRange(host, path, options.range, options.commit)).toArray());
  const plan = await readPlan(host, path, options.commit);
  const p = plan.entry.path;
  if (plan.entry.size > bufferConstants.MAX_LENGTH)
    throw new InvalidArgumentError(`${p} is too large to read into memory (${plan.entry.size} bytes): use readStream`);
  const out = Buffer.allocUnsafe(plan.entry.size);
  const offsets: number[] = [];
  let at = 0;
  for (const c of plan.chunks) {
    offsets.push(at);
    at += c.size;
  }
  let done = 0;
  await mapLimit(plan.chunks, host.client.concurrency, async (c, i) => {
    const bytes = await fetchChunk(host, p, c);
    bytes.copy(out, offsets[i]!);
    done += bytes.length;
    options.onProgress?.({ phase: 'download', done, total: plan.entry.size });
  });
  return out;
}

/** Streams a file: chunks fetched ahead with bounded concurrency (and bytes), verified, emitted in order. */
export function readStreamOf(host: CommitTarget, path: string, options: ReadOptions): Readable {
  async function* chunks(): AsyncGenerator<Buffer> {
    if (options.range) {
      yield* await readRange(host, path, options.range, options.commit);
      return;
    }
    const plan = await readPlan(host, path, options.commit);
    const p = plan.entry.path;
    const ahead = host.client.concurrency;
    const window: Array<{ size: number; bytes: Promise<Buffer> }> = [];
    let windowBytes = 0;
    let next = 0;
    let done = 0;
    const fill = (): void => {
      while (next < plan.chunks.length && window.length < ahead) {
        const c = plan.chunks[next]!;
        // Bound memory by bytes too: with 64 MiB chunks fewer are fetched ahead (always at least one).
        if (window.length > 0 && windowBytes + c.size > READAHEAD_BYTES) break;
        next++;
        const bytes = fetchChunk(host, p, c);
        // Handled when awaited below; this keeps an early failure from being an unhandled rejection.
        bytes.catch(() => undefined);
        window.push({ size: c.size, bytes });
        windowBytes += c.size;
      }
    };
    fill();
    while (window.length > 0) {
      const head = window.shift()!;
      const bytes = await head.bytes;
      windowBytes -= head.size;
      fill();
      done += bytes.length;
      options.onProgress?.({ phase: 'download', done, total: plan.entry.size });
      yield bytes;
    }
  }
  return Readable.from(chunks(), { objectMode: false });
}
