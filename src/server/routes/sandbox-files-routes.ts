/**
 * @module server/routes/sandbox-files-routes
 * Files on a sandbox's state disk (or under a volume's mount path in it),
 * read and written by the sandbox's agent: PUT streams the raw body to the
 * runtime (bounded; past the bound the write is abandoned with 413), GET
 * answers the raw bytes, and stat, list, remove and mkdir answer JSON.
 */
import { Transform } from 'node:stream';
import { createRoute, z } from '@hono/zod-openapi';
import { PayloadTooLargeError } from '@stowage/sdk/common/errors.js';
import { GiB } from '@stowage/sdk/common/sizes.js';
import { requestBody, streamAnswer } from '../../common/node-http-bodies.js';
import { presentSandboxFile } from '../presenters.js';
import { errorAnswer, jsonAnswer, jsonBody, type ApiApp, type RouteDeps } from '../route-helpers.js';
import {
  FilePathQuerySchema,
  RemoveFileQuerySchema,
  SandboxFileInfoSchema,
  SandboxFileListSchema,
  SandboxMkdirRequestSchema,
  SandboxParamsSchema,
  WriteFileQuerySchema,
} from '../schemas/sandbox-schemas.js';
import { runtimeErrors } from './sandboxes-routes.js';

const tags = ['sandboxes'];
/** Default bound of one file written through PUT .../files. */
export const DEFAULT_SANDBOX_FILE_BYTES = GiB;
const binary = { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } };
const fileErrors = {
  ...runtimeErrors,
  507: errorAnswer("InsufficientStorage: the sandbox's state disk is full"),
} as const;

const writeFile = createRoute({
  operationId: 'writeSandboxFile',
  method: 'put',
  path: '/v1/sandboxes/{id}/files',
  tags,
  summary: 'Write a file (the raw body) atomically, creating parents unless createParents=false',
  request: { params: SandboxParamsSchema, query: WriteFileQuerySchema, body: { content: binary } },
  responses: {
    200: jsonAnswer(SandboxFileInfoSchema, 'The file written'),
    ...fileErrors,
    413: errorAnswer('PayloadTooLarge: the body is larger than one file written through the API may be'),
  },
});

const readFile = createRoute({
  operationId: 'readSandboxFile',
  method: 'get',
  path: '/v1/sandboxes/{id}/files',
  tags,
  summary: "A file's bytes, read by the sandbox's agent",
  request: { params: SandboxParamsSchema, query: FilePathQuerySchema },
  responses: { 200: { description: 'The file', content: binary }, ...fileErrors },
});

const statFile = createRoute({
  operationId: 'statSandboxFile',
  method: 'get',
  path: '/v1/sandboxes/{id}/files/stat',
  tags,
  summary: 'What a path is (symlinks are not followed)',
  request: { params: SandboxParamsSchema, query: FilePathQuerySchema },
  responses: { 200: jsonAnswer(SandboxFileInfoSchema, 'The file'), ...fileErrors },
});

const listFiles = createRoute({
  operationId: 'listSandboxFiles',
  method: 'get',
  path: '/v1/sandboxes/{id}/files/list',
  tags,
  summary: 'The entries of a directory',
  request: { params: SandboxParamsSchema, query: FilePathQuerySchema },
  responses: { 200: jsonAnswer(SandboxFileListSchema, 'The entries'), ...fileErrors },
});

const removeFile = createRoute({
  operationId: 'removeSandboxFile',
  method: 'delete',
  path: '/v1/sandboxes/{id}/files',
  tags,
  summary: 'Remove a file, or a directory (recursive=true for a non-empty one)',
  request: { params: SandboxParamsSchema, query: RemoveFileQuerySchema },
  responses: { 204: { description: 'Removed' }, ...fileErrors },
});

const mkdirFile = createRoute({
  operationId: 'mkdirSandboxFile',
  method: 'post',
  path: '/v1/sandboxes/{id}/files/mkdir',
  tags,
  summary: 'Make a directory (parents=true also makes missing parents, and accepts one that exists)',
  request: { params: SandboxParamsSchema, body: jsonBody(SandboxMkdirRequestSchema) },
  responses: { 204: { description: 'Made' }, ...fileErrors },
});

/** What the file routes need: the engine and the bound of a written file. */
export interface SandboxFileRouteDeps extends RouteDeps {
  maxFileBytes?: number;
}

/** Registers the sandbox file routes. */
export function registerSandboxFilesRoutes(app: ApiApp, deps: SandboxFileRouteDeps): void {
  const { engine } = deps;
  const limit = deps.maxFileBytes ?? DEFAULT_SANDBOX_FILE_BYTES;
  const tooLarge = () =>
    new PayloadTooLargeError(
      `a file written through the API is at most ${limit} bytes; put larger data in a volume and mount it`,
      { details: { limit } },
    );

  app.openapi(writeFile, async (c) => {
    const { path, mode, createParents } = c.req.valid('query');
    const declared = c.req.header('content-length');
    // The rest of a refused body is never read: the connection cannot carry another request after it.
    const refuse = () => {
      c.header('Connection', 'close');
      return tooLarge();
    };
    if (declared !== undefined && Number(declared) > limit) throw refuse();
    // Counted as it streams: a body without (or lying about) its length is cut at the bound.
    let seen = 0;
    let over = false;
    const bound = new Transform({
      transform(chunk: Buffer, _enc, done) {
        seen += chunk.length;
        if (seen > limit) {
          over = true;
          done(tooLarge());
        } else done(null, chunk);
      },
    });
    const body = requestBody(c);
    body.on('error', (err) => bound.destroy(err));
    body.pipe(bound);
    try {
      const info = await engine.writeSandboxFile(c.get('actor'), c.req.valid('param').id, path, bound, {
        ...(mode !== undefined ? { mode: Number.parseInt(mode.replace(/^0o/, ''), 8) } : {}),
        createParents: createParents === undefined || createParents === 'true' || createParents === '1',
      });
      return c.json(presentSandboxFile(info), 200);
    } catch (err) {
      // Whatever the runtime made of the broken stream, the cause is the bound.
      if (over) throw refuse();
      throw err;
    } finally {
      body.destroy();
    }
  });

  app.openapi(readFile, async (c) => {
    const stream = await engine.readSandboxFile(c.get('actor'), c.req.valid('param').id, c.req.valid('query').path);
    return streamAnswer(c, stream, 200, {
      'Content-Type': 'application/octet-stream',
      // Bytes a sandbox wrote are never rendered as HTML or script by a browser that opens a link.
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'private, max-age=0',
    }) as never;
  });

  app.openapi(statFile, async (c) => {
    const info = await engine.statSandboxFile(c.get('actor'), c.req.valid('param').id, c.req.valid('query').path);
    return c.json(presentSandboxFile(info), 200);
  });

  app.openapi(listFiles, async (c) => {
    const list = await engine.listSandboxFiles(c.get('actor'), c.req.valid('param').id, c.req.valid('query').path);
    return c.json({ entries: list.entries.map(presentSandboxFile), truncated: list.truncated }, 200);
  });

  app.openapi(removeFile, async (c) => {
    const { path, recursive } = c.req.valid('query');
    await engine.removeSandboxFile(c.get('actor'), c.req.valid('param').id, path, recursive);
    return c.body(null, 204);
  });

  app.openapi(mkdirFile, async (c) => {
    const { path, ...opts } = c.req.valid('json');
    await engine.mkdirSandboxFile(c.get('actor'), c.req.valid('param').id, path, opts);
    return c.body(null, 204);
  });
}
