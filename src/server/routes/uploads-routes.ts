/**
 * @module server/routes/uploads-routes
 * Resumable uploads on the tus 1.0.0 protocol (creation, termination and
 * expiration extensions), served by @tus/server under `/v1/uploads/`.
 * Vocabulary:
 *
 * - staging file: the bytes of an unfinished upload, kept by the tus file
 *   store under `<dataDir>/uploads/` until the upload completes or expires.
 * - owner: the token that created the upload (and its tenant), recorded in
 *   the upload's metadata. Every HEAD/PATCH/DELETE from any other token but
 *   an admin token of that tenant answers 404, exactly as for an id that does
 *   not exist, so upload ids do not leak and one token cannot finish, read
 *   the progress of, or abandon another's upload.
 *
 * Bearer authentication is the app's; this route checks the upload target
 * at creation (engine/upload-intake: volume, write access, cap), and when the
 * last byte arrives streams the staging file into the volume with
 * `engine.writeFile`, which refuses content whose SHA-256 differs from the
 * one announced at creation (a client that resumed with changed content
 * gets a 400 and nothing is committed). The staging file is deleted either
 * way, so a retry starts afresh.
 *
 * - finished upload: a client killed after sending its last byte never reads
 *   the answer naming the commit. The commit the upload made is therefore
 *   kept as a small record (`<directory>/finished/<id>.json`, swept with the
 *   staging files), and a HEAD of the upload answers Upload-Offset = length
 *   with the Stowage-Commit header: it waits for a commit still being made,
 *   and makes it itself when the server stopped before (full staging file,
 *   no record). So the resumed client reports the commit instead of sending
 *   everything again.
 */
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import { Server as TusServer } from '@tus/server';
import type { Context } from 'hono';
import { InvalidArgumentError, NotFoundError } from '@stowage/sdk/common/errors.js';
import { authorize, tokenKind } from '../../engine/authority.js';
import { checkUploadTarget, type UploadTarget } from '../../engine/upload-intake.js';
import type { Actor, VolumeEngine } from '../../engine/types.js';
import { toErrorResponse, type ErrorLog } from '../error-map.js';
import type { ApiApp, AppEnv } from '../route-helpers.js';
import { type FinishedUpload, FinishedUploads } from '../finished-uploads.js';
import { diskFullAnswer, StagingFileStore } from '../upload-staging-store.js';

/** Path of the tus endpoint (creation URL); uploads live at `${UPLOADS_PATH}/<id>`. */
export const UPLOADS_PATH = '/v1/uploads';
/** Default lifetime of an unfinished upload. */
export const DEFAULT_UPLOAD_EXPIRY_MS = 24 * 60 * 60_000;
/** Response header naming the commit a completed upload made. */
export const COMMIT_HEADER = 'Stowage-Commit';

/** Where and how long unfinished uploads are staged. */
export interface UploadsOptions {
  /** Directory of staging files (created if missing). */
  directory: string;
  /** Unfinished uploads older than this are deleted by `cleanup` (default 24 h). */
  expireAfterMs?: number;
}

/** The tus endpoint: its handler, and the sweep of expired staging files. */
export interface UploadService {
  /** Answers one request under /v1/uploads (the caller authenticated it). */
  handle(c: Context<AppEnv>): Promise<Response>;
  /** Deletes expired unfinished uploads; returns how many. */
  cleanup(): Promise<number>;
}

/** Metadata keys the server writes into every upload (client values are overwritten). */
const OWNER_TENANT = 'stowage-tenant';
const OWNER_TOKEN = 'stowage-token';

/** Upload ids made by @tus/server's default naming (16 random bytes, hex). */
const UPLOAD_ID_RE = /^[0-9a-f]{32}$/;

/** How long a HEAD waits for a commit being made before answering 423 Locked (tus clients retry those). */
const FINISH_WAIT_MS = 60_000;

/**
 * Parses a tus Upload-Metadata header: comma-separated `key base64value`
 * pairs (the value may be absent). Bad base64 or duplicate keys are a 400.
 */
export function parseTusMetadata(header: string | undefined): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  if (header === undefined || header.trim() === '') return out;
  for (const pair of header.split(',')) {
    const [key, value, ...rest] = pair.trim().split(' ');
    if (!key || rest.length > 0 || !/^[\x21-\x7e]+$/.test(key))
      throw new InvalidArgumentError('Upload-Metadata must be comma-separated "key base64value" pairs');
    if (Object.hasOwn(out, key)) throw new InvalidArgumentError(`Upload-Metadata names "${key}" twice`);
    if (value === undefined || value === '') {
      out[key] = null;
      continue;
    }
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(value) || value.length % 4 !== 0)
      throw new InvalidArgumentError(`Upload-Metadata value of "${key}" is not base64`);
    const text = Buffer.from(value, 'base64');
    try {
      out[key] = new TextDecoder('utf-8', { fatal: true }).decode(text);
    } catch {
      throw new InvalidArgumentError(`Upload-Metadata value of "${key}" is not UTF-8`);
    }
  }
  return out;
}

/** What the tus hooks need to know about the request that triggered them. */
interface RequestContext {
  actor: Actor;
  target?: UploadTarget;
}

/** A StowageError as the `{ status_code, body }` the tus server answers with. */
function tusError(err: unknown, log: ErrorLog | undefined): { status_code: number; body: string } {
  const { status, body } = toErrorResponse(err, log);
  return { status_code: status, body: JSON.stringify(body) };
}

/**
 * Builds the tus endpoint over an engine and a staging directory.
 *
 * @example
 * const uploads = createUploadService(engine, { directory: join(dataDir, 'uploads') });
 * await uploads.cleanup();
 */
export function createUploadService(engine: VolumeEngine, options: UploadsOptions, log?: ErrorLog): UploadService {
  const expireAfterMs = options.expireAfterMs ?? DEFAULT_UPLOAD_EXPIRY_MS;
  const store = new StagingFileStore({ directory: options.directory, expirationPeriodInMilliseconds: expireAfterMs });
  const finished = new FinishedUploads(join(options.directory, 'finished'));
  /** Finishes running in this process, by upload id: a HEAD waits for them instead of racing them. */
  const finishing = new Map<string, Promise<string>>();
  // The hooks receive the very Request object handed to handleWeb, so it keys what the route learned about it.
  const contexts = new WeakMap<Request, RequestContext>();
  const contextOf = (req: unknown): RequestContext => {
    const ctx = contexts.get(req as Request);
    if (!ctx)
      throw {
        status_code: 500,
        body: JSON.stringify({ error: { code: 'Internal', message: 'upload request lost its context' } }),
      };
    return ctx;
  };

  const tus = new TusServer({
    path: UPLOADS_PATH,
    datastore: store,
    // Relative Locations stay right behind proxies; tus clients resolve them against the endpoint.
    relativeLocation: true,
    // The creation check already bounds the length by the volume's free space; this is a backstop.
    maxSize: 2 ** 50,
    disableTerminationForFinishedUploads: true,
    // A full staging disk is 507 "disk full", not the tus server's generic 500.
    onResponseError: (_req, err) => {
      const answer = diskFullAnswer(err, 'staging the upload');
      return answer === err ? undefined : (answer as { status_code: number; body: string });
    },
    onUploadCreate: async (req, upload) => {
      const { actor, target } = contextOf(req);
      if (!target) throw tusError(new InvalidArgumentError('upload target missing'), log);
      // Staged bytes count against the tenant's uncommitted quota until the upload finishes, is abandoned or expires.
      try {
        await engine.reserveStagedUpload(
          actor,
          target.volume,
          upload.id,
          target.size,
          new Date(Date.now() + expireAfterMs),
        );
      } catch (err) {
        throw tusError(err, log);
      }
      return { metadata: { ...upload.metadata, [OWNER_TENANT]: actor.tenantId, [OWNER_TOKEN]: actor.tokenId } };
    },
    onUploadFinish: async (req, upload) => {
      const { actor } = contextOf(req);
      try {
        return {
          headers: {
            [COMMIT_HEADER]: await finish(actor, upload.id, upload.metadata ?? {}, upload.size ?? upload.offset),
          },
        };
      } catch (err) {
        throw tusError(err, log);
      }
    },
  });

  /**
   * Commits a fully staged upload once (concurrent callers share the run),
   * records the commit for a client that missed the answer, and removes the
   * staging file either way: a failed upload must not linger at full offset,
   * or a retry would look complete.
   */
  const finish = (
    actor: Actor,
    id: string,
    meta: Record<string, string | null | undefined>,
    size: number,
  ): Promise<string> => {
    const running = finishing.get(id);
    if (running) return running;
    const run = (async () => {
      try {
        const target = await checkUploadTarget(engine, actor, meta, size);
        const result = await engine.writeFile(
          actor,
          target.volume,
          target.path,
          createReadStream(join(options.directory, id)),
          {
            size: target.size,
            sha256: target.sha256,
            createParents: true,
            message: `upload ${target.path}`,
            ...(target.mode !== undefined ? { mode: target.mode } : {}),
            ...(target.mtime !== undefined ? { mtime: target.mtime } : {}),
          },
        );
        const record: FinishedUpload = {
          metadata: { ...meta } as Record<string, string | null>,
          size,
          commit: result.commit.id,
          finishedAt: Date.now(),
        };
        // Written before the staging file goes, so a HEAD always finds one or the other whole.
        await finished.write(id, record);
        return result.commit.id;
      } finally {
        // Finished either way: a failed upload must not linger at full offset, or a retry would look complete.
        await store.remove(id).catch(() => undefined);
        await engine.releaseStagedUpload(actor, id).catch(() => undefined);
      }
    })();
    finishing.set(id, run);
    run.then(
      () => finishing.delete(id),
      () => finishing.delete(id),
    );
    return run;
  };

  /** True when `actor` may see an upload with these owner keys: the token that created it, or an admin token of its tenant. */
  const ownedBy = (actor: Actor, meta: Record<string, string | null> | undefined): boolean =>
    meta !== undefined &&
    meta[OWNER_TENANT] === actor.tenantId &&
    (meta[OWNER_TOKEN] === actor.tokenId || tokenKind(actor) === 'admin');

  /** The HEAD answer of a finished upload: complete, naming its commit. */
  const finishedAnswer = (size: number, commit: string): Response =>
    new Response(null, {
      status: 200,
      headers: {
        'Tus-Resumable': '1.0.0',
        'Upload-Offset': String(size),
        'Upload-Length': String(size),
        'Cache-Control': 'no-store',
        [COMMIT_HEADER]: commit,
      },
    });

  /**
   * HEAD of an upload whose bytes all arrived: waits for (or makes) its
   * commit and answers it; undefined when the upload is not complete (the
   * tus server answers) or not the caller's (404 from assertOwner).
   */
  const headOfComplete = async (actor: Actor, id: string): Promise<Response | undefined> => {
    if (!UPLOAD_ID_RE.test(id)) return undefined;
    const recorded = async (): Promise<Response | undefined> => {
      const r = await finished.read(id);
      return r && ownedBy(actor, r.metadata) ? finishedAnswer(r.size, r.commit) : undefined;
    };
    const before = await recorded();
    if (before) return before;
    let upload: Awaited<ReturnType<typeof store.getUpload>>;
    try {
      upload = await store.getUpload(id);
    } catch {
      // A finish may have landed between the two reads: it writes its record before the staging file goes.
      return recorded();
    }
    const size = upload.size;
    if (size === undefined || upload.offset !== size || !ownedBy(actor, upload.metadata)) return undefined;
    // Complete: either its last PATCH is committing it now, or the server stopped before it could.
    let run = finishing.get(id);
    if (!run && !actor.readOnly) run = finish(actor, id, upload.metadata ?? {}, size);
    if (!run) return undefined;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), FINISH_WAIT_MS);
    });
    try {
      const commit = await Promise.race([run, late]);
      if (commit === undefined)
        return new Response(null, { status: 423, headers: { 'Tus-Resumable': '1.0.0', 'Retry-After': '5' } });
      return finishedAnswer(size, commit);
    } catch (err) {
      // The commit failed (its error went to the PATCH, if anyone was reading): the staging file is gone, so this is a fresh start.
      const { status, body } = toErrorResponse(err, log);
      return new Response(JSON.stringify(body), {
        status,
        headers: { 'Tus-Resumable': '1.0.0', 'content-type': 'application/json' },
      });
    } finally {
      clearTimeout(timer);
    }
  };

  /** Answers 404 unless `actor` owns the upload `id` (and its token may reach the target volume). */
  const assertOwner = async (actor: Actor, id: string): Promise<void> => {
    const missing = () =>
      new NotFoundError(
        `no upload ${JSON.stringify(id.slice(0, 64))}: it never existed, finished, expired, or belongs to someone else`,
      );
    if (!UPLOAD_ID_RE.test(id)) throw missing();
    let meta: Record<string, string | null> | undefined;
    try {
      meta = (await store.getUpload(id)).metadata;
    } catch {
      throw missing();
    }
    if (!ownedBy(actor, meta)) throw missing();
  };

  const handle = async (c: Context<AppEnv>): Promise<Response> => {
    const actor = c.get('actor');
    const req = c.req.raw;
    const method = req.method.toUpperCase();
    const rest = c.req.path.slice(UPLOADS_PATH.length).replace(/^\//, '');
    if (method === 'OPTIONS') {
      // The file store could defer lengths, but uploads are checked against the cap at creation: Upload-Length is required.
      const res = await tus.handleWeb(req);
      const ext = res.headers.get('tus-extension');
      if (ext !== null)
        res.headers.set(
          'tus-extension',
          ext
            .split(',')
            .filter((e) => e.trim() !== 'creation-defer-length')
            .join(','),
        );
      return res;
    }
    if (rest === '') {
      if (method !== 'POST')
        throw new NotFoundError(`no route ${method} ${UPLOADS_PATH}: create uploads with POST (tus 1.0.0)`);
      if (req.headers.get('upload-defer-length') !== null || req.headers.get('upload-concat') !== null) {
        throw new InvalidArgumentError(
          'this server needs Upload-Length at creation (no deferred length, no concatenation)',
        );
      }
      const length = req.headers.get('upload-length');
      if (length === null || !/^\d{1,16}$/.test(length))
        throw new InvalidArgumentError('Upload-Length must be a whole number of bytes');
      const target = await checkUploadTarget(
        engine,
        actor,
        parseTusMetadata(req.headers.get('upload-metadata') ?? undefined),
        Number(length),
      );
      contexts.set(req, { actor, target });
    } else {
      if (rest.includes('/') || !['HEAD', 'PATCH', 'DELETE'].includes(method))
        throw new NotFoundError(`no route ${method} ${c.req.path}`);
      if (method === 'HEAD' && req.headers.get('tus-resumable') === '1.0.0') {
        const complete = await headOfComplete(actor, rest);
        if (complete) return complete;
      }
      await assertOwner(actor, rest);
      if (method !== 'HEAD') authorize(actor, 'volume.write');
      contexts.set(req, { actor });
    }
    const res = await tus.handleWeb(req);
    if (method === 'DELETE' && res.status === 204) await engine.releaseStagedUpload(actor, rest).catch(() => undefined);
    // Errors raised by our hooks carry a JSON error body: label it so clients parse it.
    if (res.status >= 400 && !res.headers.has('content-type')) {
      const text = await res.text();
      const headers = new Headers(res.headers);
      headers.set('content-type', text.startsWith('{') ? 'application/json' : 'text/plain; charset=utf-8');
      return new Response(text, { status: res.status, headers });
    }
    return res;
  };

  return { handle, cleanup: async () => (await tus.cleanUpExpiredUploads()) + (await finished.sweep(expireAfterMs)) };
}

/** Registers the tus endpoint: POST /v1/uploads, HEAD/PATCH/DELETE /v1/uploads/{id}, OPTIONS on both. */
export function registerUploadsRoutes(app: ApiApp, uploads: UploadService): void {
  const methods = ['OPTIONS', 'POST', 'HEAD', 'PATCH', 'DELETE', 'GET'];
  app.on(methods, UPLOADS_PATH, (c) => uploads.handle(c));
  app.on(methods, `${UPLOADS_PATH}/*`, (c) => uploads.handle(c));

  // Documented by hand: the tus protocol speaks in headers, not JSON bodies.
  const tusHeader = {
    name: 'Tus-Resumable',
    in: 'header' as const,
    required: true,
    schema: { type: 'string' as const, enum: ['1.0.0'] },
  };
  const idParam = { name: 'id', in: 'path' as const, required: true, schema: { type: 'string' as const } };
  const notFound = { description: 'NotFound: no such upload, or one another token created' };
  const auth = { 401: { description: 'Unauthenticated: missing, unknown, revoked or expired bearer token' } };
  const readOnly = { 403: { description: 'ReadOnly or Forbidden: the token may not write here' } };
  app.openAPIRegistry.registerPath({
    method: 'post',
    path: UPLOADS_PATH,
    tags: ['uploads'],
    operationId: 'createUpload',
    summary:
      'Create a resumable upload (tus 1.0.0 creation). Upload-Metadata: volume, path, sha256 (hex of the whole file), optional mode (octal), mtime (ms)',
    parameters: [
      tusHeader,
      { name: 'Upload-Length', in: 'header', required: true, schema: { type: 'integer' } },
      { name: 'Upload-Metadata', in: 'header', required: true, schema: { type: 'string' } },
    ],
    responses: {
      201: { description: 'Created; Location names the upload' },
      400: { description: 'InvalidArgument' },
      ...auth,
      ...readOnly,
      404: { description: 'NotFound: no such volume' },
      413: { description: 'QuotaExceeded: the file would not fit under the volume cap' },
    },
  });
  app.openAPIRegistry.registerPath({
    method: 'head',
    path: `${UPLOADS_PATH}/{id}`,
    tags: ['uploads'],
    operationId: 'getUploadOffset',
    summary:
      "The upload's offset (Upload-Offset) and length; once all bytes arrived, Upload-Offset = Upload-Length and Stowage-Commit names the commit (waiting for one being made; 423 if that takes over a minute)",
    parameters: [tusHeader, idParam],
    responses: {
      200: { description: 'Upload-Offset and Upload-Length headers' },
      ...auth,
      404: notFound,
      423: { description: "Locked: the upload's commit is still being made; retry after Retry-After seconds" },
    },
  });
  app.openAPIRegistry.registerPath({
    method: 'patch',
    path: `${UPLOADS_PATH}/{id}`,
    tags: ['uploads'],
    operationId: 'appendUpload',
    summary:
      'Append bytes at Upload-Offset (Content-Type: application/offset+octet-stream); the last PATCH commits the file and answers Stowage-Commit',
    parameters: [
      tusHeader,
      idParam,
      { name: 'Upload-Offset', in: 'header', required: true, schema: { type: 'integer' } },
    ],
    responses: {
      204: { description: 'Accepted' },
      400: { description: 'InvalidArgument: the file does not match its SHA-256; nothing was committed' },
      ...auth,
      ...readOnly,
      404: notFound,
      409: { description: 'Upload-Offset does not match' },
      413: { description: 'QuotaExceeded: the file no longer fits under the volume cap' },
    },
  });
  app.openAPIRegistry.registerPath({
    method: 'delete',
    path: `${UPLOADS_PATH}/{id}`,
    tags: ['uploads'],
    operationId: 'deleteUpload',
    summary: 'Abandon an unfinished upload (tus termination)',
    parameters: [tusHeader, idParam],
    responses: { 204: { description: 'Deleted' }, ...auth, ...readOnly, 404: notFound },
  });
}
