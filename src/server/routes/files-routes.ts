/**
 * @module server/routes/files-routes
 * Reading trees without compute: stat and list entries, and the read plan
 * (signed GETs for a file's chunks). Paths arrive as query parameters and go
 * to the engine untouched; the engine validates them.
 */
import { createRoute } from '@hono/zod-openapi';
import { presentReadPlan } from '../presenters.js';
import { jsonAnswer, volumeErrors, type ApiApp, type RouteDeps } from '../route-helpers.js';
import { ListQuerySchema, ListResponseSchema, ReadPlanSchema, ReadQuerySchema, StatQuerySchema, StatResponseSchema } from '../schemas/file-schemas.js';
import { VolumeParamsSchema } from '../schemas/query-schemas.js';

const tags = ['files'];

const stat = createRoute({
  operationId: 'statFile',
  method: 'get',
  path: '/v1/volumes/{name}/stat',
  tags,
  summary: 'One entry of the tree at head (or a commit)',
  request: { params: VolumeParamsSchema, query: StatQuerySchema },
  responses: { 200: jsonAnswer(StatResponseSchema, 'The entry'), ...volumeErrors },
});

const list = createRoute({
  operationId: 'listFiles',
  method: 'get',
  path: '/v1/volumes/{name}/list',
  tags,
  summary: 'One page of the entries of a directory, optionally recursive (follow nextCursor)',
  request: { params: VolumeParamsSchema, query: ListQuerySchema },
  responses: { 200: jsonAnswer(ListResponseSchema, 'The entries'), ...volumeErrors },
});

const read = createRoute({
  operationId: 'getReadPlan',
  method: 'get',
  path: '/v1/volumes/{name}/read',
  tags,
  summary: 'Where to fetch a file\'s bytes: signed GETs for its chunks',
  request: { params: VolumeParamsSchema, query: ReadQuerySchema },
  responses: { 200: jsonAnswer(ReadPlanSchema, 'The read plan'), ...volumeErrors },
});

/** Registers the stat, list and read routes. */
export function registerFilesRoutes(app: ApiApp, { engine }: RouteDeps): void {
  app.openapi(stat, async (c) => {
    const { path, commit } = c.req.valid('query');
    const result = await engine.stat(c.get('actor'), c.req.valid('param').name, path, commit !== undefined ? { commit } : {});
    return c.json({ commit: result.commit, entry: result.entry }, 200);
  });

  app.openapi(list, async (c) => {
    const { path, commit, recursive, limit, after } = c.req.valid('query');
    // Pages of 1000 unless asked: a listing of a huge volume never answers in one body.
    const result = await engine.list(c.get('actor'), c.req.valid('param').name, path, { ...(commit !== undefined ? { commit } : {}), recursive, limit: limit ?? 1000, ...(after !== undefined ? { after } : {}) });
    return c.json({ commit: result.commit, entries: result.entries, nextCursor: result.nextCursor }, 200);
  });

  app.openapi(read, async (c) => {
    const { path, commit } = c.req.valid('query');
    const plan = await engine.readPlan(c.get('actor'), c.req.valid('param').name, path, commit !== undefined ? { commit } : {});
    return c.json(presentReadPlan(plan), 200);
  });
}
