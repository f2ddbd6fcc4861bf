/**
 * @module server/app
 * The HTTP API as a Hono app: it translates requests to engine calls and
 * engine results to JSON, and decides nothing else. Vocabulary:
 *
 * - public routes: `/v1/health`, `/v1/openapi.json`, the signed blob URLs
 *   and the signed file URLs under `/v1/shared/` (whose query string is the
 *   credential); every other `/v1` route needs
 *   `Authorization: Bearer <token>`, resolved by `engine.authenticate`.
 * - validation: the zod schemas of `schemas/` check every body, query and
 *   URL parameter; a failure is a 400 InvalidArgument naming the field.
 * - errors: everything thrown ends in `onError` and goes through the one
 *   table of `error-map.ts`.
 *
 * The app has no listening socket: `serve.ts` runs it on Node, tests call
 * `app.request()`.
 */
import { OpenAPIHono, createRoute } from '@hono/zod-openapi';
import type { MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { tooManyChanges } from '@stowage/sdk/common/limits.js';
import {
  InvalidArgumentError,
  NotFoundError,
  PayloadTooLargeError,
  UnauthenticatedError,
} from '@stowage/sdk/common/errors.js';
import { KiB, MiB } from '@stowage/sdk/common/sizes.js';
import type { VolumeEngine } from '../engine/types.js';
import type { BlobStore } from '../stores/blob-store.js';
import { toErrorResponse, type ErrorLog } from './error-map.js';
import { jsonAnswer, type ApiApp, type AppEnv } from './route-helpers.js';
import { registerAttachmentsRoutes } from './routes/attachments-routes.js';
import { BLOB_PATH_PREFIX, registerBlobsRoutes, type BlobRequestVerifier } from './routes/blobs-routes.js';
import { registerCommitsRoutes } from './routes/commits-routes.js';
import { registerDownloadRoutes } from './routes/download-routes.js';
import { SHARE_PATH_PREFIX, type ShareSigner } from './share-links.js';
import { registerFilesRoutes } from './routes/files-routes.js';
import { registerSandboxFilesRoutes } from './routes/sandbox-files-routes.js';
import { isSandboxRawBody, registerSandboxesRoutes } from './routes/sandboxes-routes.js';
import { registerSearchRoutes } from './routes/search-routes.js';
import { registerSnapshotsRoutes } from './routes/snapshots-routes.js';
import { registerTenantRoutes } from './routes/tenant-routes.js';
import { registerVolumesRoutes } from './routes/volumes-routes.js';
import { UPLOADS_PATH, registerUploadsRoutes, type UploadService } from './routes/uploads-routes.js';
import { ChangeSchema } from './schemas/commit-schemas.js';
import { HealthSchema } from './schemas/common-schemas.js';

/** Default bound of a JSON request body. */
export const DEFAULT_JSON_BODY_BYTES = 32 * MiB;
/** Default bound of one signed blob PUT: the largest chunk (64 MiB) plus slack. */
export const DEFAULT_BLOB_BODY_BYTES = 64 * MiB + 64 * KiB;

/** Options of `createApp`. */
export interface AppOptions {
  engine: VolumeEngine;
  /** Serve signed blob URLs under /v1/blobs/ (only for the local-directory blob store). */
  blobRoute?: { signer: BlobRequestVerifier; store: BlobStore };
  limits?: {
    /** Largest JSON request body, in bytes (default 32 MiB). */
    jsonBodyBytes?: number;
    /** Largest signed blob PUT, in bytes (default 64 MiB + 64 KiB). */
    blobBodyBytes?: number;
    /** Largest file written into a sandbox by PUT /v1/sandboxes/{id}/files, in bytes (default 1 GiB). */
    sandboxFileBytes?: number;
  };
  /** Where unexpected errors are logged (default: stderr). */
  log?: ErrorLog;
  /** Sign and serve signed file URLs (POST .../urls, GET /v1/shared/...); without it those routes are absent. */
  shares?: ShareSigner;
  /** Serve resumable (tus) uploads under /v1/uploads/ (needs a staging directory; see routes/uploads-routes). */
  uploads?: UploadService;
}

const PUBLIC_PATHS = new Set(['/v1/health', '/v1/openapi.json']);

function isBlobPath(path: string): boolean {
  return path.startsWith(BLOB_PATH_PREFIX);
}

/** Public routes need no token: health, the OpenAPI document, and signed blob URLs. */
function isPublic(path: string): boolean {
  return PUBLIC_PATHS.has(path) || isBlobPath(path) || path.startsWith(SHARE_PATH_PREFIX);
}

/** Throws when a path segment or query component is not valid percent-encoded UTF-8 (Hono would pass it on undecoded). */
function assertWellFormedUrl(url: string): void {
  const u = new URL(url);
  const check = (part: string, where: string) => {
    try {
      decodeURIComponent(part.replace(/\+/g, ' '));
    } catch {
      throw new InvalidArgumentError(
        `${where} is not valid percent-encoded UTF-8: ${JSON.stringify(part.slice(0, 120))}`,
      );
    }
  };
  for (const seg of u.pathname.split('/')) check(seg, 'URL path segment');
  for (const pair of u.search.slice(1).split('&')) {
    for (const part of pair.split('=')) check(part, 'query parameter');
  }
}

const BEARER = /^Bearer[ \t]+([^\s]+)[ \t]*$/i;

/** Resolves the bearer token to an Actor (401 otherwise); public routes pass through. */
function authMiddleware(engine: VolumeEngine): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    if (isPublic(c.req.path)) return next();
    const header = c.req.header('authorization');
    if (header === undefined)
      throw new UnauthenticatedError('missing bearer token: send "Authorization: Bearer <token>"');
    const m = BEARER.exec(header);
    if (!m) throw new UnauthenticatedError('malformed Authorization header: expected "Bearer <token>"');
    c.set('actor', await engine.authenticate(m[1]!));
    await next();
  };
}

/** Bounds JSON bodies (signed blob PUTs are bounded by the blob route itself). */
function jsonBodyLimit(maxSize: number): MiddlewareHandler<AppEnv> {
  const limit = bodyLimit({
    maxSize,
    onError: () => {
      throw new PayloadTooLargeError(
        `request body exceeds the ${maxSize}-byte limit of a JSON request; split it into several requests`,
        { details: { limit: maxSize } },
      );
    },
  });
  // tus PATCH bodies are streamed to a staging file and bounded by Upload-Length, not by the JSON limit;
  // files and stdin of sandboxes are raw bytes, bounded by their routes.
  return async (c, next) =>
    isBlobPath(c.req.path) || c.req.path.startsWith(UPLOADS_PATH) || isSandboxRawBody(c.req.method, c.req.path)
      ? next()
      : limit(c, next);
}

const JSON_MEDIA = /^application\/([\w.-]+\+)?json\s*(;|$)/i;

/** Decodes JSON bodies as strict UTF-8 (invalid bytes are a 400, not silently replaced) before the validators parse them. */
const strictJsonText: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (
    isBlobPath(c.req.path) ||
    isSandboxRawBody(c.req.method, c.req.path) ||
    !c.req.raw.body ||
    !JSON_MEDIA.test(c.req.header('content-type') ?? '')
  )
    return next();
  const bytes = await c.req.arrayBuffer();
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new InvalidArgumentError('request body is not valid UTF-8');
  }
  // An empty JSON body reads as {} (optional bodies may be sent empty), so the schema names any missing field.
  if (text.trim() === '') text = '{}';
  // Hono's body cache holds promises (its type says otherwise); c.req.json() reads the cached text.
  (c.req.bodyCache as unknown as Record<string, Promise<unknown>>).text = Promise.resolve(text);
  await next();
};

/** Renders a zod failure as "where: why" lines. */
function describeIssues(
  target: string,
  issues: ReadonlyArray<{ path: ReadonlyArray<PropertyKey>; message: string }>,
): { message: string; issues: Array<{ path: string; message: string }> } {
  const where = target === 'json' ? 'body' : target === 'query' ? 'query' : target === 'param' ? 'URL' : target;
  const list = issues.slice(0, 20).map((i) => ({ path: i.path.map(String).join('.'), message: i.message }));
  const text = list.map((i) => `${i.path === '' ? where : `${where} field "${i.path}"`}: ${i.message}`).join('; ');
  return { message: `invalid request: ${text}`, issues: list };
}

const health = createRoute({
  operationId: 'getHealth',
  method: 'get',
  path: '/v1/health',
  tags: ['service'],
  summary: 'Liveness check (no authentication)',
  security: [],
  responses: { 200: jsonAnswer(HealthSchema, 'The server is up') },
});

/**
 * Builds the HTTP API over an engine.
 *
 * @example
 * const app = createApp({ engine });
 * const res = await app.request('/v1/volumes', { headers: { authorization: `Bearer ${token}` } });
 */
export function createApp(options: AppOptions): ApiApp {
  const { engine, log } = options;
  const app: ApiApp = new OpenAPIHono<AppEnv>({
    defaultHook: (result) => {
      if (!result.success) {
        // Too many changes in a commit is a size limit (413, "split it"), not malformed input.
        if (
          result.target === 'json' &&
          result.error.issues.some((i) => i.code === 'too_big' && i.path.length === 1 && i.path[0] === 'changes')
        )
          throw tooManyChanges();
        const { message, issues } = describeIssues(result.target, result.error.issues);
        throw new InvalidArgumentError(message, { details: { issues } });
      }
    },
  });

  app.onError((err, c) => {
    const { status, body } = toErrorResponse(err, log);
    if (body.error.code === 'Unauthenticated') c.header('WWW-Authenticate', 'Bearer realm="stowage"');
    return c.json(body, status);
  });
  app.notFound((c) => {
    const { status, body } = toErrorResponse(
      new NotFoundError(`no route ${c.req.method} ${c.req.path}: see /v1/openapi.json`),
      log,
    );
    return c.json(body, status);
  });

  app.use('/v1/*', async (c, next) => {
    assertWellFormedUrl(c.req.url);
    await next();
  });
  app.use('/v1/*', authMiddleware(engine));
  app.use('/v1/*', jsonBodyLimit(options.limits?.jsonBodyBytes ?? DEFAULT_JSON_BODY_BYTES));
  app.use('/v1/*', strictJsonText);

  app.openapi(health, (c) => c.json({ ok: true as const }, 200));

  const deps = { engine };
  registerTenantRoutes(app, deps);
  registerVolumesRoutes(app, deps);
  registerCommitsRoutes(app, deps);
  registerSnapshotsRoutes(app, deps);
  registerAttachmentsRoutes(app, deps);
  registerFilesRoutes(app, deps);
  registerDownloadRoutes(app, { ...deps, ...(options.shares ? { shares: options.shares } : {}) });
  registerSearchRoutes(app, deps);
  registerSandboxesRoutes(app, deps);
  registerSandboxFilesRoutes(app, {
    ...deps,
    ...(options.limits?.sandboxFileBytes !== undefined ? { maxFileBytes: options.limits.sandboxFileBytes } : {}),
  });
  if (options.blobRoute) {
    registerBlobsRoutes(app, {
      ...options.blobRoute,
      maxPutBytes: options.limits?.blobBodyBytes ?? DEFAULT_BLOB_BODY_BYTES,
    });
  }
  if (options.uploads) registerUploadsRoutes(app, options.uploads);

  // Commit requests name Change by reference (schemas/commit-schemas.ts ChangeList), so it is registered here.
  app.openAPIRegistry.register('Change', ChangeSchema);
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'A Stowage API token',
  });
  app.doc('/v1/openapi.json', {
    openapi: '3.0.3',
    info: {
      title: 'Stowage API',
      version: '1',
      description: 'Persistent, versioned volumes for sandboxes. Errors are { error: { code, message, details? } }.',
    },
    security: [{ bearer: [] }],
  });
  return app;
}
