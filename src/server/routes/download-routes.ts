/**
 * @module server/routes/download-routes
 * Downloads the server streams itself (SPEC section 4):
 *
 * - content: `GET /v1/volumes/{name}/content?path=&commit=` streams one file
 *   (one `Range: bytes=a-b` honoured: 206 + Content-Range; 416 past the end),
 *   with Content-Length and an ETag that is the hash of the file's chunk list
 *   (equal bytes, equal ETag, whatever the commit).
 * - archive: `GET /v1/volumes/{name}/archive?path=&format=tar|tar.gz&commit=`
 *   streams a directory as tar or tar.gz, built while it is sent
 *   (engine/archive-stream).
 * - signed file URLs: `POST /v1/volumes/{name}/urls` signs a link
 *   (server/share-links) pinned to the file's commit; `GET /v1/shared/...`
 *   serves it with no token, like content, plus Content-Disposition.
 *
 * Bodies are never buffered: engine streams go straight into the response.
 */
import { createHash } from 'node:crypto';
import { createRoute } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { streamAnswer } from '../../common/node-http-bodies.js';
import { archiveStream } from '../../engine/archive-stream.js';
import type { Actor, FileInfo, VolumeEngine } from '../../engine/types.js';
import { RANGE_NOT_SATISFIABLE } from '../error-map.js';
import { errorAnswer, jsonAnswer, jsonBody, volumeErrors, type ApiApp, type RouteDeps } from '../route-helpers.js';
import {
  ArchiveQuerySchema,
  ContentQuerySchema,
  SignedUrlRequestSchema,
  SignedUrlResponseSchema,
} from '../schemas/download-schemas.js';
import { VolumeParamsSchema } from '../schemas/query-schemas.js';
import { DEFAULT_SHARE_SECONDS, SHARE_PATH_PREFIX, type ShareSigner } from '../share-links.js';
import { parseRange } from './blobs-routes.js';

const tags = ['downloads'];
const binary = { 'application/octet-stream': { schema: { type: 'string' as const, format: 'binary' as const } } };

/** What the download routes need: the engine, and the share-link signer when links are enabled. */
export interface DownloadRouteDeps extends RouteDeps {
  shares?: ShareSigner;
}

/** A strong ETag from the chunk list: content-addressed, so it changes exactly when the bytes do. */
export function contentEtag(entry: FileInfo): string {
  const h = createHash('sha256')
    .update(`${entry.chunkSize ?? 0}:${entry.size}:${(entry.chunks ?? []).join(',')}`)
    .digest('hex');
  return `"${h.slice(0, 32)}"`;
}

/** `attachment; filename=...` with an ASCII fallback and the UTF-8 name (RFC 6266). */
function disposition(name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\]/g, '_');
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/** Serves one file (whole, or one range) for an actor: the shared body of content and signed file URLs. */
async function serveFile(
  c: Context,
  engine: VolumeEngine,
  actor: Actor,
  volume: string,
  path: string,
  commit: string | undefined,
  extra: Record<string, string> = {},
): Promise<Response> {
  const st = await engine.stat(actor, volume, path, commit !== undefined ? { commit } : {});
  if (st.entry.type !== 'file')
    throw new InvalidArgumentError(
      `${st.entry.path} is not a regular file${st.entry.type === 'dir' ? ': download it as an archive' : ''}`,
    );
  const size = st.entry.size;
  const etag = contentEtag(st.entry);
  const headers: Record<string, string> = {
    'Content-Type': 'application/octet-stream',
    // Bytes of a volume are never rendered as HTML or script by a browser that opens a link.
    'X-Content-Type-Options': 'nosniff',
    'Accept-Ranges': 'bytes',
    ETag: etag,
    'Last-Modified': new Date(st.entry.mtime).toUTCString(),
    'X-Stowage-Commit': st.commit,
    'Cache-Control': 'private, max-age=0',
    ...extra,
  };
  if (c.req.header('if-none-match') === etag) return new Response(null, { status: 304, headers });
  const range = parseRange(c.req.header('range'), size);
  if (range === 'unsatisfiable') {
    return c.json(
      {
        error: {
          code: 'InvalidArgument',
          message: `range ${JSON.stringify(c.req.header('range'))} is outside ${st.entry.path} (${size} bytes)`,
          details: { size },
        },
      },
      RANGE_NOT_SATISFIABLE,
      { 'Content-Range': `bytes */${size}` },
    );
  }
  headers['Content-Length'] = String(range ? range.end - range.start + 1 : size);
  if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${size}`;
  const status = range ? 206 : 200;
  if (c.req.method === 'HEAD' || size === 0) return new Response(null, { status, headers });
  // Pinned to the commit stat saw, so the headers and the bytes describe the same file.
  const file = await engine.readFile(actor, volume, path, { commit: st.commit, ...(range ? { range } : {}) });
  return streamAnswer(c, file.body, status, headers);
}

const content = createRoute({
  operationId: 'downloadFile',
  method: 'get',
  path: '/v1/volumes/{name}/content',
  tags,
  summary: "A file's bytes, streamed by the server (one Range: bytes=a-b honoured)",
  request: { params: VolumeParamsSchema, query: ContentQuerySchema },
  responses: {
    200: { description: 'The file', content: binary },
    206: { description: 'The requested range', content: binary },
    ...volumeErrors,
    [RANGE_NOT_SATISFIABLE]: errorAnswer('The range starts past the end of the file'),
  },
});

const archive = createRoute({
  operationId: 'downloadArchive',
  method: 'get',
  path: '/v1/volumes/{name}/archive',
  tags,
  summary: 'A directory as a tar or tar.gz stream, built while it is sent',
  request: { params: VolumeParamsSchema, query: ArchiveQuerySchema },
  responses: {
    200: {
      description: 'The archive',
      content: {
        'application/x-tar': { schema: { type: 'string', format: 'binary' } },
        'application/gzip': { schema: { type: 'string', format: 'binary' } },
      },
    },
    ...volumeErrors,
  },
});

const urls = createRoute({
  operationId: 'createSignedUrl',
  method: 'post',
  path: '/v1/volumes/{name}/urls',
  tags,
  summary: 'A signed URL for one file that works without a token until it expires',
  request: { params: VolumeParamsSchema, body: jsonBody(SignedUrlRequestSchema) },
  responses: { 200: jsonAnswer(SignedUrlResponseSchema, 'The URL'), ...volumeErrors },
});

/** Registers content, archive and (with a signer) signed file URLs. */
export function registerDownloadRoutes(app: ApiApp, { engine, shares }: DownloadRouteDeps): void {
  app.openapi(content, async (c) => {
    const { path, commit } = c.req.valid('query');
    return serveFile(c, engine, c.get('actor'), c.req.valid('param').name, path, commit) as never;
  });

  app.openapi(archive, async (c) => {
    const { path, commit, format, preserveMode } = c.req.valid('query');
    const out = await archiveStream(engine, c.get('actor'), c.req.valid('param').name, path, {
      format,
      preserveMode,
      ...(commit !== undefined ? { commit } : {}),
    });
    const base = out.name === '' ? c.req.valid('param').name : out.name;
    return streamAnswer(c, out.stream, 200, {
      'Content-Type': format === 'tar' ? 'application/x-tar' : 'application/gzip',
      'Content-Disposition': disposition(`${base}.${format}`),
      'X-Stowage-Commit': out.commit,
    }) as never;
  });

  if (!shares) return;

  app.openapi(urls, async (c) => {
    const actor = c.get('actor');
    const name = c.req.valid('param').name;
    const { path, expiresIn, commit } = c.req.valid('json');
    const st = await engine.stat(actor, name, path, commit !== undefined ? { commit } : {});
    if (st.entry.type !== 'file')
      throw new InvalidArgumentError(`${st.entry.path} is not a regular file: only files get signed URLs`);
    const vol = await engine.getVolume(actor, name);
    const signed = shares.sign(
      { volumeId: vol.id, path: st.entry.path, commit: st.commit, tokenId: actor.tokenId },
      expiresIn ?? DEFAULT_SHARE_SECONDS,
    );
    return c.json({ url: signed.url, expiresAt: signed.expiresAt.toISOString(), commit: st.commit }, 200);
  });

  app.on(['GET', 'HEAD'], `${SHARE_PATH_PREFIX}*`, async (c) => {
    const url = new URL(c.req.url);
    const grant = shares.verify(url.pathname, url.searchParams);
    const { actor, volume } = await engine.shareActor(grant.tokenId, grant.volumeId);
    const name = grant.path.slice(grant.path.lastIndexOf('/') + 1);
    return serveFile(c, engine, actor, volume, grant.path, grant.commit, { 'Content-Disposition': disposition(name) });
  });

  app.openAPIRegistry.registerPath({
    method: 'get',
    path: '/v1/shared/{volume}/{path}',
    operationId: 'getSharedFile',
    tags,
    summary: 'Download a file through a signed URL (no token; one Range: bytes=a-b honoured)',
    security: [],
    parameters: [
      { name: 'volume', in: 'path', required: true, schema: { type: 'string' }, description: 'The volume id' },
      {
        name: 'path',
        in: 'path',
        required: true,
        schema: { type: 'string' },
        description:
          'The file path: several "/"-separated segments sent as they are (the "/" is not percent-encoded; each segment is)',
      },
    ],
    responses: {
      200: { description: 'The file', content: binary },
      206: { description: 'The requested range', content: binary },
      403: errorAnswer('Forbidden: altered, expired or revoked signed URL'),
      404: errorAnswer('NotFound: the volume or file no longer exists'),
    },
  });
}
