/**
 * @module client/commit-writer
 * The client side of the commit protocol. Every write is one commit:
 *
 * 1. the content is cut into chunks and hashed (chunker.ts);
 * 2. the server is asked which chunks it lacks (POST .../uploads, in batches
 *    of UPLOAD_BATCH) and answers with a signed PUT for each;
 * 3. only those chunks are sent, straight to the blob store, with bounded
 *    concurrency, re-read from their source (a file's byte range, a slice of
 *    bytes) so nothing is held twice in memory;
 *    Chunks under PACKED_CHUNK_LIMIT are concatenated into packs (POST
 *    .../packs signs one PUT per pack), so many small files cost a few
 *    requests, not one each;
 * 4. one POST .../commits publishes the changes, echoing the upload keys and
 *    pack manifests. If
 *    the server answers PreconditionFailed with `details.missing` (uploads
 *    that expired before the commit), steps 2-4 run once more.
 *
 * A stream of unknown length cannot be re-read, so it is pipelined instead:
 * SMALL_CHUNK_SIZE pieces are hashed, asked for and uploaded one at a time,
 * with at most `concurrency` pieces in memory (`uploadStream`).
 *
 * Vocabulary: a *pending file* is a file about to be committed whose chunks
 * are known and can be read again; *upload stats* count what actually
 * travelled, so re-writing unchanged content reports zero chunks.
 */
import type { Readable } from 'node:stream';
import type * as wire from '../api/wire.js';
import { SMALL_CHUNK_SIZE } from '../common/chunking.js';
import { ConflictError, PreconditionFailedError, isStowageError, type StowageError } from '../common/errors.js';
import { retry, type RetryPolicy } from '../common/retry.js';
import { sha256Hex, type ChunkRef, rechunk } from './chunker.js';
import type { Stowage } from './http-client.js';
import { Limiter, putSigned } from './transfer.js';

/** Chunks asked about per POST .../uploads. */
export const UPLOAD_BATCH = 1000;

/** What a progress listener hears: bytes done in a phase, out of a total when known. */
export interface ProgressEvent {
  phase: 'hash' | 'upload' | 'download';
  /** Bytes done so far in this phase. */
  done: number;
  /** Bytes the phase will cover, when known. */
  total?: number;
}

/** Receives progress of long transfers (the CLI draws bars from it). */
export type ProgressListener = (event: ProgressEvent) => void;

/** What travelled to the blob store for one commit. */
export interface UploadStats {
  /** Chunks actually sent (missing from the store). */
  uploadedChunks: number;
  /** Bytes actually sent. */
  uploadedBytes: number;
  /** Distinct chunks the store already had (never sent). */
  presentChunks: number;
}

/**
 * A file about to be committed: its cut content and how to re-read a chunk.
 * The optional owner and ns times (wire EntryAttributes) go into its put
 * change as they are: a mount fills them; uploads of local files send only
 * mtimeNs (a laptop's uid means nothing on the server).
 */
export interface PendingFile extends wire.EntryAttributes {
  path: string;
  size: number;
  chunkSize: number;
  chunks: ChunkRef[];
  mode?: number;
  mtime?: number;
  createParents?: boolean;
  /** A fresh body of one chunk's bytes (called again on retry). */
  read: (chunk: ChunkRef) => Uint8Array | Readable;
  /** Translates an error raised while reading the source (e.g. a local file gone since hashing). */
  readError?: (e: unknown) => Error;
}

/** Where commits go: a client and a volume name. */
export interface CommitTarget {
  readonly client: Stowage;
  readonly name: string;
}

/** Options of a commit made by a write. */
export interface CommitOptions {
  message?: string;
  base?: string;
  onConflict?: 'overwrite' | 'fail';
  /** Skip changes that no longer apply to head (reported in `skipped`) instead of failing the commit. */
  bestEffort?: boolean;
  onProgress?: ProgressListener;
}

/** The outcome of a commit made by a write: the server's answer plus what travelled. */
export interface CommitOutcome extends UploadStats {
  commit: wire.Commit;
  overwritten: string[];
  /** Changes a `bestEffort` commit skipped, and why; always [] otherwise. */
  skipped: wire.SkippedChange[];
}

function volumePath(target: CommitTarget, suffix: string): string {
  return `/v1/volumes/${encodeURIComponent(target.name)}${suffix}`;
}

/** The attribute fields a put change carries, in the order they are sent. */
const ATTRIBUTE_KEYS = ['uid', 'gid', 'mtimeNs', 'atime', 'atimeNs', 'ctime', 'ctimeNs'] as const satisfies ReadonlyArray<keyof wire.EntryAttributes>;

/** The `put` change of a pending file (its owner and ns times included when set). */
export function putChange(f: Pick<PendingFile, 'path' | 'size' | 'chunkSize' | 'chunks' | 'mode' | 'mtime' | 'createParents' | keyof wire.EntryAttributes>): wire.Change {
  const change: wire.Change = { op: 'put', path: f.path, size: f.size, chunkSize: f.chunkSize, chunks: f.chunks.map((c) => c.hash) };
  if (f.mode !== undefined) change.mode = f.mode;
  if (f.mtime !== undefined) change.mtime = f.mtime;
  for (const k of ATTRIBUTE_KEYS) if (f[k] !== undefined) change[k] = f[k];
  if (f.createParents !== undefined) change.createParents = f.createParents;
  return change;
}

/**
 * Asks which of the files' chunks are missing and uploads those, `concurrency`
 * at a time. Identical chunks are asked about and sent once.
 */
export async function uploadMissing(target: CommitTarget, files: readonly PendingFile[], onProgress?: ProgressListener): Promise<UploadStats & { uploads: Array<{ hash: string; key: string }>; packs: wire.PackManifest[] }> {
  const sources = new Map<string, ChunkSource>();
  for (const f of files) {
    for (const c of f.chunks) {
      if (!sources.has(c.hash)) sources.set(c.hash, { size: c.size, read: () => f.read(c), path: f.path, ...(f.readError ? { readError: f.readError } : {}) });
    }
  }
  const all = [...sources.entries()].map(([hash, s]) => ({ hash, size: s.size }));
  const stats = { uploadedChunks: 0, uploadedBytes: 0, presentChunks: 0 };
  const uploads: Array<{ hash: string; key: string }> = [];
  const packs: wire.PackManifest[] = [];
  const limiter = new Limiter(target.client.concurrency);
  // Each batch is uploaded before the next is asked about, so signatures stay fresh however large the file.
  for (let i = 0; i < all.length; i += UPLOAD_BATCH) {
    const batch = all.slice(i, i + UPLOAD_BATCH);
    const plan = await target.client.request<wire.UploadResponse>('POST', volumePath(target, '/uploads'), { body: { chunks: batch } satisfies wire.UploadRequest });
    stats.presentChunks += plan.present;
    const total = plan.missing.reduce((n, m) => n + m.size, 0);
    let batchDone = 0;
    const done = (n: number, bytes: number) => {
      stats.uploadedChunks += n;
      stats.uploadedBytes += bytes;
      batchDone += bytes;
      onProgress?.({ phase: 'upload', done: batchDone, total });
    };
    const seen = new Set<string>();
    const missing = plan.missing.filter((m) => {
      if (seen.has(m.hash)) return false;
      seen.add(m.hash);
      return true;
    });
    let failed = false;
    const guarded = (fn: () => Promise<void>) => limiter.run(async () => {
      if (failed) return; // one upload failed: the write fails, so start no more
      try { await fn(); } catch (e) { failed = true; throw e; }
    });
    const jobs: Array<Promise<unknown>> = [];
    // Small chunks travel together in packs: one request for many files.
    for (const group of packGroups(missing.filter((m) => m.size < PACKED_CHUNK_LIMIT))) {
      jobs.push(guarded(async () => {
        const manifest = await uploadPack(target, group, sources);
        packs.push(manifest);
        done(group.length, manifest.chunks.reduce((n, c) => n + c.size, 0));
      }));
    }
    for (const m of missing.filter((m) => m.size >= PACKED_CHUNK_LIMIT)) {
      jobs.push(guarded(async () => {
        const src = sourceOf(sources, m.hash);
        try {
          await putSigned(m.request, src.size, src.read, { baseUrl: target.client.url, what: `upload of a chunk of ${src.path}` });
        } catch (e) {
          throw isStowageError(e) || !src.readError ? e : src.readError(e);
        }
        uploads.push({ hash: m.hash, key: m.key });
        done(1, src.size);
      }));
    }
    await settleAll(jobs);
  }
  return { ...stats, uploads, packs };
}

/** Chunks smaller than this are sent in packs rather than one request each. */
export const PACKED_CHUNK_LIMIT = 1024 * 1024;
/** Bytes per pack (the server accepts up to 32 MiB). */
export const PACK_TARGET_SIZE = 16 * 1024 * 1024;

interface ChunkSource { size: number; read: () => Uint8Array | Readable; path: string; readError?: (e: unknown) => Error }

function sourceOf(sources: Map<string, ChunkSource>, hash: string): ChunkSource {
  const src = sources.get(hash);
  if (!src) throw new PreconditionFailedError(`the server asked for chunk ${hash}, which this write does not contain`);
  return src;
}

/** Splits small missing chunks into groups of about PACK_TARGET_SIZE bytes. */
function packGroups<T extends { size: number }>(chunks: T[]): T[][] {
  const groups: T[][] = [];
  let current: T[] = [];
  let bytes = 0;
  for (const c of chunks) {
    if (bytes + c.size > PACK_TARGET_SIZE && current.length > 0) { groups.push(current); current = []; bytes = 0; }
    current.push(c);
    bytes += c.size;
  }
  if (current.length > 0) groups.push(current);
  return groups;
}

/** Reads a chunk's bytes from its source (a slice of bytes, or a file range stream). */
async function readSource(src: ChunkSource): Promise<Uint8Array> {
  try {
    const body = src.read();
    if (body instanceof Uint8Array) return body;
    const parts: Buffer[] = [];
    for await (const piece of body) parts.push(piece as Buffer);
    return Buffer.concat(parts);
  } catch (e) {
    throw isStowageError(e) || !src.readError ? e : src.readError(e);
  }
}

/** Concatenates a group of chunks into one pack, asks for its signed PUT, sends it, and returns its manifest. */
async function uploadPack(target: CommitTarget, group: Array<{ hash: string; size: number }>, sources: Map<string, ChunkSource>): Promise<wire.PackManifest> {
  const parts: Uint8Array[] = [];
  const chunks: wire.PackManifest['chunks'] = [];
  let offset = 0;
  for (const m of group) {
    const bytes = await readSource(sourceOf(sources, m.hash));
    if (bytes.length !== m.size || sha256Hex(bytes) !== m.hash) throw new ConflictError(`a file changed while it was being written (chunk ${m.hash.slice(0, 12)} of ${sourceOf(sources, m.hash).path}); try again`);
    parts.push(bytes);
    chunks.push({ hash: m.hash, offset, size: m.size });
    offset += m.size;
  }
  const pack = Buffer.concat(parts, offset);
  const signed = await target.client.request<wire.PackResponse>('POST', volumePath(target, '/packs'), { body: { size: pack.length, sha256: sha256Hex(pack) } satisfies wire.PackRequest });
  await putSigned(signed.request, pack.length, () => pack, { baseUrl: target.client.url, what: `upload of a pack of ${group.length} chunks` });
  return { key: signed.key, chunks };
}

/** Awaits every promise (so none is left running or unhandled), then throws the first failure. */
async function settleAll(jobs: Array<Promise<unknown>>): Promise<void> {
  const results = await Promise.allSettled(jobs);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** True for the server's "some uploads expired before the commit" answer (the one place it is recognised). */
export function isExpiredUpload(e: unknown): e is StowageError {
  return isStowageError(e, 'PreconditionFailed') && e.details !== undefined && 'missing' in e.details;
}

/** Uploads that expired before the commit are uploaded (what is missing of them) and the commit posted once more, at once. */
const REUPLOAD_EXPIRED: RetryPolicy = { name: 'commit with expired uploads', attempts: 2, baseDelayMs: 0, retryable: isExpiredUpload };

/** POST .../commits */
export async function postCommit(target: CommitTarget, req: wire.CommitRequest): Promise<wire.CommitResponse> {
  const res = await target.client.send<wire.CommitResponse>('POST', volumePath(target, '/commits'), { body: req });
  return res.body;
}

function commitRequest(changes: wire.Change[], up: { uploads: Array<{ hash: string; key: string }>; packs: wire.PackManifest[] }, options: CommitOptions): wire.CommitRequest {
  const req: wire.CommitRequest = { changes };
  if (options.message !== undefined) req.message = options.message;
  if (options.base !== undefined) req.base = options.base;
  if (options.onConflict !== undefined) req.onConflict = options.onConflict;
  if (options.bestEffort !== undefined) req.bestEffort = options.bestEffort;
  if (up.uploads.length > 0) req.uploads = up.uploads;
  if (up.packs.length > 0) req.packs = up.packs;
  return req;
}

/**
 * Commits pending files (plus any other changes) in one commit: upload what
 * is missing, then publish; once more if uploads expired meanwhile.
 *
 * @example
 * const out = await commitFiles({ client, name: 'data' }, [pending], [], { message: 'put /a' });
 */
export function commitFiles(target: CommitTarget, files: readonly PendingFile[], otherChanges: readonly wire.Change[], options: CommitOptions = {}): Promise<CommitOutcome> {
  return commitChanges(target, files, [...files.map(putChange), ...otherChanges], options);
}

/**
 * Publishes `changes`, in their order, as one commit; `files` are the pending
 * files their puts name. The client's one upload -> post -> re-upload loop:
 * what is missing of the files is uploaded, the commit posted, and both done
 * once more if uploads expired meanwhile (a mount's ordered journal and a
 * write's single put both go through here).
 */
export async function commitChanges(target: CommitTarget, files: readonly PendingFile[], changes: wire.Change[], options: CommitOptions = {}): Promise<CommitOutcome> {
  const stats = { uploadedChunks: 0, uploadedBytes: 0, presentChunks: 0 };
  const res = await retry(REUPLOAD_EXPIRED, async (attempt) => {
    const up = await uploadMissing(target, files, options.onProgress);
    stats.uploadedChunks += up.uploadedChunks;
    stats.uploadedBytes += up.uploadedBytes;
    // Chunks found present on a second pass are those the first one sent: count the first pass's finding only.
    if (attempt === 1) stats.presentChunks = up.presentChunks;
    return postCommit(target, commitRequest(changes, up, options));
  });
  return { commit: res.commit, overwritten: res.overwritten, skipped: res.skipped ?? [], ...stats };
}

/**
 * Uploads a stream of unknown length as SMALL_CHUNK_SIZE pieces, pipelined:
 * each piece is hashed, asked about and (if missing) sent while the next is
 * read, with at most `concurrency` pieces in flight. Returns the file's
 * chunks and upload keys, ready for a `put` change.
 */
export async function uploadStream(
  target: CommitTarget,
  path: string,
  source: AsyncIterable<unknown>,
  onProgress?: ProgressListener,
): Promise<UploadStats & { size: number; chunkSize: number; chunks: ChunkRef[]; uploads: Array<{ hash: string; key: string }> }> {
  const chunkSize = SMALL_CHUNK_SIZE;
  const limiter = new Limiter(target.client.concurrency);
  const chunks: ChunkRef[] = [];
  const uploads: Array<{ hash: string; key: string }> = [];
  const asked = new Set<string>();
  const jobs: Array<Promise<void>> = [];
  const stats = { uploadedChunks: 0, uploadedBytes: 0, presentChunks: 0 };
  let failure: { error: unknown } | undefined;
  let size = 0;
  let sent = 0;

  const send = async (hash: string, piece: Buffer): Promise<void> => {
    const plan = await target.client.request<wire.UploadResponse>('POST', volumePath(target, '/uploads'), { body: { chunks: [{ hash, size: piece.length }] } satisfies wire.UploadRequest });
    stats.presentChunks += plan.present;
    for (const m of plan.missing) {
      if (m.hash !== hash) continue;
      await putSigned(m.request, piece.length, () => piece, { baseUrl: target.client.url, what: `upload of a chunk of ${path}` });
      uploads.push({ hash: m.hash, key: m.key });
      stats.uploadedChunks++;
      stats.uploadedBytes += piece.length;
      sent += piece.length;
      onProgress?.({ phase: 'upload', done: sent });
      break;
    }
  };

  for await (const piece of rechunk(source, chunkSize)) {
    const hash = sha256Hex(piece);
    chunks.push({ hash, size: piece.length, offset: size });
    size += piece.length;
    onProgress?.({ phase: 'hash', done: size });
    if (asked.has(hash)) continue;
    asked.add(hash);
    await limiter.acquire();
    if (failure) {
      limiter.release();
      break;
    }
    const job = send(hash, piece)
      .catch((e: unknown) => {
        failure ??= { error: e };
      })
      .finally(() => limiter.release());
    jobs.push(job);
  }
  await Promise.all(jobs);
  if (failure) throw failure.error;
  return { size, chunkSize, chunks, uploads, ...stats };
}
