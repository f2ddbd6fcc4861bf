/**
 * @module server/routes/blobs-routes
 * The signed-URL endpoint of the local-directory blob store: with that store
 * the server itself plays the object store, so clients PUT and GET chunk
 * bytes here exactly as they would against S3. There is no bearer token:
 * the signed query string is the credential, and it grants one method on one
 * key until it expires.
 *
 * A GET signed for a byte range (one chunk inside a pack) serves that range
 * and nothing else: no Range header means the signed range, and a Range that
 * reaches outside it is refused, so a URL never yields a neighbour's bytes.
 *
 * Bodies are streamed both ways, never buffered: a PUT pipes the request
 * into the store (which checks the signed SHA-256 and size and stops at
 * `maxSize`), a GET pipes the object (or one `Range: bytes=a-b`) out.
 */
import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { ForbiddenError, NotFoundError, PayloadTooLargeError } from '@stowage/sdk/common/errors.js';
import { requestBody, streamAnswer } from '../../common/node-http-bodies.js';
import type { BlobStore } from '../../stores/blob-store.js';
import type { SignedTerms } from '../../stores/local/url-signer.js';
import { RANGE_NOT_SATISFIABLE, statusOf } from '../error-map.js';
import { errorAnswer, jsonAnswer, type ApiApp } from '../route-helpers.js';

/** The slice of the URL signer this route needs: check a signed request, learn what it allows. */
export interface BlobRequestVerifier {
  /** Returns the constraints the signature covers; throws ForbiddenError for a bad, expired or foreign signature. */
  verify(req: { method: 'GET' | 'PUT'; key: string; query: URLSearchParams }): SignedTerms | Promise<SignedTerms>;
}

/** What the blob route serves from. */
export interface BlobRouteDeps {
  signer: BlobRequestVerifier;
  store: BlobStore;
  /** Largest accepted PUT body in bytes. */
  maxPutBytes: number;
}

/** Path prefix of signed blob URLs (keys follow it verbatim). */
export const BLOB_PATH_PREFIX = '/v1/blobs/';

const BlobPutAnswerSchema = z.object({ key: z.string(), size: z.number().int() }).openapi('BlobPutAnswer');

const signedQuery = [
  {
    name: 'key',
    in: 'path' as const,
    required: true,
    schema: { type: 'string' as const },
    description:
      'The object key: several "/"-separated segments, sent as they are (the "/" is not percent-encoded), e.g. packs/ab/abcd…',
  },
];

/** A single satisfiable range, or why there is none. */
type RangeResult = { start: number; end: number } | 'unsatisfiable' | undefined;

/**
 * Parses a Range header against an object size. Only one `bytes=` range is
 * honoured; anything else (other units, several ranges, bad syntax) is
 * ignored and the whole object is served, as RFC 9110 allows.
 */
export function parseRange(header: string | undefined, size: number): RangeResult {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m) return undefined;
  const [, a = '', b = ''] = m;
  if (a === '' && b === '') return undefined;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(a);
  const end = b === '' ? size - 1 : Number(b);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || (b !== '' && end < start)) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end: Math.min(end, size - 1) };
}

function keyOf(c: Context): string {
  // Keys are made of [A-Za-z0-9._-] segments, so the raw path needs no decoding; the store refuses anything else.
  return c.req.path.slice(BLOB_PATH_PREFIX.length);
}

function queryOf(c: Context): URLSearchParams {
  return new URL(c.req.url).searchParams;
}

/** Registers GET (and HEAD) and PUT of signed blob URLs. */
export function registerBlobsRoutes(app: ApiApp, { signer, store, maxPutBytes }: BlobRouteDeps): void {
  app.on(['GET', 'HEAD'], `${BLOB_PATH_PREFIX}*`, async (c) => {
    const key = keyOf(c);
    const terms = await signer.verify({ method: 'GET', key, query: queryOf(c) });
    const info = await store.head(key);
    if (!info) throw new NotFoundError(`no object ${JSON.stringify(key.slice(0, 200))}`);
    const signed = terms.range;
    // The object is shorter than what was signed: it is not the object the URL was made for.
    if (signed && signed.end >= info.size)
      throw new NotFoundError(
        `no object ${JSON.stringify(key.slice(0, 200))} with bytes ${signed.start}-${signed.end}`,
      );
    const headers: Record<string, string> = {
      'Content-Type': 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      'Cache-Control': 'private, max-age=0',
    };
    let range = parseRange(c.req.header('range'), info.size);
    if (signed) {
      if (range === undefined) range = signed;
      else if (range === 'unsatisfiable' || range.start < signed.start || range.end > signed.end) {
        throw new ForbiddenError(
          `this signed URL covers bytes ${signed.start}-${signed.end} of the object only; send its range header as issued`,
        );
      }
    }
    if (range === 'unsatisfiable') {
      return c.json(
        {
          error: {
            code: 'InvalidArgument',
            message: `range ${JSON.stringify(c.req.header('range'))} is outside the object (${info.size} bytes)`,
            details: { size: info.size },
          },
        },
        RANGE_NOT_SATISFIABLE,
        { 'Content-Range': `bytes */${info.size}` },
      );
    }
    const status = range ? 206 : 200;
    const length = range ? range.end - range.start + 1 : info.size;
    headers['Content-Length'] = String(length);
    if (range) headers['Content-Range'] = `bytes ${range.start}-${range.end}/${info.size}`;
    if (c.req.method === 'HEAD') return new Response(null, { status, headers });
    return streamAnswer(c, await store.get(key, range), status, headers);
  });

  app.put(`${BLOB_PATH_PREFIX}*`, async (c) => {
    const key = keyOf(c);
    const allowed = await signer.verify({ method: 'PUT', key, query: queryOf(c) });
    const declared = c.req.header('content-length');
    if (declared !== undefined && Number(declared) > maxPutBytes) {
      throw new PayloadTooLargeError(`body of ${declared} bytes exceeds the ${maxPutBytes}-byte limit of one object`, {
        details: { limit: maxPutBytes, size: Number(declared) },
      });
    }
    const info = await store.put(key, requestBody(c), {
      ...(allowed.sha256 !== undefined ? { sha256: allowed.sha256 } : {}),
      ...(allowed.size !== undefined ? { size: allowed.size } : {}),
      maxSize: maxPutBytes,
    });
    return c.json({ key: info.key, size: info.size }, 201);
  });

  // Documented by hand: these routes take raw bytes, which zod does not validate.
  const errors = {
    403: errorAnswer('Forbidden: bad, expired or foreign signature, or a range outside the signed one'),
    404: errorAnswer('NotFound: no such object'),
  };
  app.openAPIRegistry.registerPath({
    method: 'get',
    path: '/v1/blobs/{key}',
    operationId: 'getBlob',
    tags: ['blobs'],
    summary: 'Download an object through a signed URL (supports one Range: bytes=a-b)',
    security: [],
    parameters: signedQuery,
    responses: {
      200: {
        description: 'The object',
        content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
      },
      206: {
        description: 'The requested range',
        content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
      },
      ...errors,
      [RANGE_NOT_SATISFIABLE]: errorAnswer('The range starts past the end of the object'),
    },
  });
  app.openAPIRegistry.registerPath({
    method: 'put',
    path: '/v1/blobs/{key}',
    operationId: 'putBlob',
    tags: ['blobs'],
    summary: 'Upload an object through a signed URL; the bytes must match the signed SHA-256 and size',
    security: [],
    parameters: signedQuery,
    request: { body: { content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } } } },
    responses: {
      201: jsonAnswer(BlobPutAnswerSchema, 'Stored'),
      400: errorAnswer('InvalidArgument: the bytes do not match the signed SHA-256 or size'),
      [statusOf('PayloadTooLarge')]: errorAnswer('PayloadTooLarge: the body is larger than one object may be'),
      ...errors,
    },
  });
}
