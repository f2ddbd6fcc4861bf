/**
 * @module server/routes/snapshots-routes
 * Snapshots (named pointers to commits), restore (a new commit whose tree
 * is an older one) and fork (a copy-on-write new volume).
 */
import { createRoute } from '@hono/zod-openapi';
import { presentCommitResult, presentSnapshot, presentVolume } from '../presenters.js';
import { errorAnswer, jsonAnswer, jsonBody, optionalJsonBody, volumeErrors, writeErrors, type ApiApp, type RouteDeps } from '../route-helpers.js';
import { CommitResponseSchema } from '../schemas/commit-schemas.js';
import { VolumeParamsSchema } from '../schemas/query-schemas.js';
import { CreateSnapshotRequestSchema, ForkRequestSchema, RestoreRequestSchema, SnapshotListSchema, SnapshotParamsSchema, SnapshotSchema } from '../schemas/snapshot-schemas.js';
import { VolumeSchema } from '../schemas/volume-schemas.js';

const tags = ['snapshots'];

const listSnapshots = createRoute({
  operationId: 'listSnapshots',
  method: 'get',
  path: '/v1/volumes/{name}/snapshots',
  tags,
  summary: 'The snapshots of a volume, oldest first',
  request: { params: VolumeParamsSchema },
  responses: { 200: jsonAnswer(SnapshotListSchema, 'The snapshots'), ...volumeErrors },
});

const createSnapshot = createRoute({
  operationId: 'createSnapshot',
  method: 'post',
  path: '/v1/volumes/{name}/snapshots',
  tags,
  summary: 'Snapshot the head (or a commit)',
  request: { params: VolumeParamsSchema, body: optionalJsonBody(CreateSnapshotRequestSchema) },
  responses: { 201: jsonAnswer(SnapshotSchema, 'Created'), 409: errorAnswer('AlreadyExists: the snapshot name is taken'), ...writeErrors },
});

const deleteSnapshot = createRoute({
  operationId: 'deleteSnapshot',
  method: 'delete',
  path: '/v1/volumes/{name}/snapshots/{snapshot}',
  tags,
  summary: 'Delete a snapshot',
  request: { params: SnapshotParamsSchema },
  responses: { 204: { description: 'Deleted' }, ...writeErrors },
});

const restore = createRoute({
  operationId: 'restoreVolume',
  method: 'post',
  path: '/v1/volumes/{name}/restore',
  tags,
  summary: 'Make a snapshot\'s (or commit\'s) tree the new head, as a new commit',
  request: { params: VolumeParamsSchema, body: jsonBody(RestoreRequestSchema) },
  responses: { 201: jsonAnswer(CommitResponseSchema, 'The restoring commit'), ...writeErrors },
});

const fork = createRoute({
  operationId: 'forkVolume',
  method: 'post',
  path: '/v1/volumes/{name}/fork',
  tags,
  summary: 'Create a copy-on-write volume from the head, a snapshot or a commit',
  request: { params: VolumeParamsSchema, body: jsonBody(ForkRequestSchema) },
  responses: { 201: jsonAnswer(VolumeSchema, 'The new volume'), 409: errorAnswer('AlreadyExists: the new name is taken'), ...writeErrors },
});

/** Registers the snapshot, restore and fork routes. */
export function registerSnapshotsRoutes(app: ApiApp, { engine }: RouteDeps): void {
  app.openapi(listSnapshots, async (c) => {
    const snapshots = await engine.listSnapshots(c.get('actor'), c.req.valid('param').name);
    return c.json({ snapshots: snapshots.map(presentSnapshot) }, 200);
  });

  app.openapi(createSnapshot, async (c) => {
    const snapshot = await engine.createSnapshot(c.get('actor'), c.req.valid('param').name, c.req.valid('json'));
    return c.json(presentSnapshot(snapshot), 201);
  });

  app.openapi(deleteSnapshot, async (c) => {
    const { name, snapshot } = c.req.valid('param');
    await engine.deleteSnapshot(c.get('actor'), name, snapshot);
    return c.body(null, 204);
  });

  app.openapi(restore, async (c) => {
    const result = await engine.restore(c.get('actor'), c.req.valid('param').name, c.req.valid('json'));
    return c.json(presentCommitResult(result), 201);
  });

  app.openapi(fork, async (c) => {
    const volume = await engine.fork(c.get('actor'), c.req.valid('param').name, c.req.valid('json'));
    return c.json(presentVolume(volume), 201);
  });
}
