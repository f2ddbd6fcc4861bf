/**
 * @module server/routes/commits-routes
 * The commit protocol: ask which chunks are missing (uploads, answered with
 * signed PUTs), publish a change set as one commit, and page through a
 * volume's history.
 */
import { createRoute } from '@hono/zod-openapi';
import { presentCommit, presentCommitResult, presentSignedRequest, presentUploadPlan } from '../presenters.js';
import { errorAnswer, jsonAnswer, jsonBody, volumeErrors, writeErrors, type ApiApp, type RouteDeps } from '../route-helpers.js';
import { CommitListSchema, CommitRequestSchema, CommitResponseSchema, CommitsQuerySchema, PackRequestSchema, PackResponseSchema, UploadRequestSchema, UploadResponseSchema } from '../schemas/commit-schemas.js';
import { VolumeParamsSchema } from '../schemas/query-schemas.js';

const tags = ['commits'];

const prepareUpload = createRoute({
  operationId: 'prepareChunkUploads',
  method: 'post',
  path: '/v1/volumes/{name}/uploads',
  tags,
  summary: 'Which of these chunks must be uploaded (with a signed PUT for each)',
  request: { params: VolumeParamsSchema, body: jsonBody(UploadRequestSchema) },
  responses: { 200: jsonAnswer(UploadResponseSchema, 'Missing chunks and how many are present'), ...writeErrors },
});

const preparePack = createRoute({
  operationId: 'preparePackUpload',
  method: 'post',
  path: '/v1/volumes/{name}/packs',
  tags,
  summary: 'A signed PUT for one pack of small chunks (declared in the commit that follows)',
  request: { params: VolumeParamsSchema, body: jsonBody(PackRequestSchema) },
  responses: { 200: jsonAnswer(PackResponseSchema, 'The pack key and its signed PUT'), ...writeErrors },
});

const commit = createRoute({
  operationId: 'createCommit',
  method: 'post',
  path: '/v1/volumes/{name}/commits',
  tags,
  summary: 'Publish a change set as one commit',
  request: { params: VolumeParamsSchema, body: jsonBody(CommitRequestSchema) },
  responses: {
    201: jsonAnswer(CommitResponseSchema, 'The new commit, the paths it overwrote and (bestEffort) the changes it skipped'),
    ...writeErrors,
    409: errorAnswer('Conflict: onConflict "fail" and a changed path changed since base'),
    412: errorAnswer('PreconditionFailed: a referenced chunk or commit is missing'),
    413: errorAnswer('QuotaExceeded: the commit would exceed the volume cap'),
  },
});

const listCommits = createRoute({
  operationId: 'listCommits',
  method: 'get',
  path: '/v1/volumes/{name}/commits',
  tags,
  summary: 'The volume history, newest first',
  request: { params: VolumeParamsSchema, query: CommitsQuerySchema },
  responses: { 200: jsonAnswer(CommitListSchema, 'A page of commits'), ...volumeErrors },
});

/** Registers the upload, commit and history routes. */
export function registerCommitsRoutes(app: ApiApp, { engine }: RouteDeps): void {
  app.openapi(prepareUpload, async (c) => {
    const plan = await engine.prepareUpload(c.get('actor'), c.req.valid('param').name, c.req.valid('json').chunks);
    return c.json(presentUploadPlan(plan), 200);
  });

  app.openapi(preparePack, async (c) => {
    const pack = await engine.preparePack(c.get('actor'), c.req.valid('param').name, c.req.valid('json'));
    return c.json({ key: pack.key, request: presentSignedRequest(pack.request) }, 200);
  });

  app.openapi(commit, async (c) => {
    const result = await engine.commit(c.get('actor'), c.req.valid('param').name, c.req.valid('json'));
    return c.json(presentCommitResult(result), 201);
  });

  app.openapi(listCommits, async (c) => {
    const { limit, before } = c.req.valid('query');
    const page = await engine.listCommits(c.get('actor'), c.req.valid('param').name, {
      ...(limit !== undefined ? { limit } : {}),
      ...(before !== undefined ? { before } : {}),
    });
    return c.json({ commits: page.commits.map(presentCommit), nextBefore: page.nextBefore }, 200);
  });
}
