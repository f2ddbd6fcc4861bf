/**
 * @module server/routes/volumes-routes
 * Volume lifecycle: list, create (POST, 409 when the name exists),
 * get-or-create (PUT, 201 created / 200 existing), get, update (resize,
 * access mode, tuning) and delete.
 */
import { createRoute } from '@hono/zod-openapi';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { presentVolume } from '../presenters.js';
import { errorAnswer, jsonAnswer, jsonBody, optionalJsonBody, volumeErrors, writeErrors, type ApiApp, type RouteDeps } from '../route-helpers.js';
import { VolumeParamsSchema } from '../schemas/query-schemas.js';
import { CreateVolumeBodySchema, CreateVolumeRequestSchema, UpdateVolumeRequestSchema, VolumeListSchema, VolumeSchema } from '../schemas/volume-schemas.js';

const tags = ['volumes'];

const listVolumes = createRoute({
  operationId: 'listVolumes',
  method: 'get',
  path: '/v1/volumes',
  tags,
  summary: 'List the volumes of the tenant',
  responses: { 200: jsonAnswer(VolumeListSchema, 'The volumes, by name'), ...volumeErrors },
});

const createVolume = createRoute({
  operationId: 'createVolume',
  method: 'post',
  path: '/v1/volumes',
  tags,
  summary: 'Create a volume',
  request: { body: jsonBody(CreateVolumeBodySchema) },
  responses: { 201: jsonAnswer(VolumeSchema, 'Created'), 409: errorAnswer('AlreadyExists: the name is taken'), ...writeErrors },
});

const putVolume = createRoute({
  operationId: 'putVolume',
  method: 'put',
  path: '/v1/volumes/{name}',
  tags,
  summary: 'Get a volume, creating it when missing',
  request: { params: VolumeParamsSchema, body: optionalJsonBody(CreateVolumeRequestSchema, 'Options used only when the volume is created') },
  responses: { 200: jsonAnswer(VolumeSchema, 'Existing volume'), 201: jsonAnswer(VolumeSchema, 'Created'), ...writeErrors },
});

const getVolume = createRoute({
  operationId: 'getVolume',
  method: 'get',
  path: '/v1/volumes/{name}',
  tags,
  summary: 'Get a volume',
  request: { params: VolumeParamsSchema },
  responses: { 200: jsonAnswer(VolumeSchema, 'The volume'), ...volumeErrors },
});

const updateVolume = createRoute({
  operationId: 'updateVolume',
  method: 'patch',
  path: '/v1/volumes/{name}',
  tags,
  summary: 'Resize a volume, change its access mode or tuning',
  request: { params: VolumeParamsSchema, body: jsonBody(UpdateVolumeRequestSchema) },
  responses: { 200: jsonAnswer(VolumeSchema, 'The updated volume'), ...writeErrors },
});

const deleteVolume = createRoute({
  operationId: 'deleteVolume',
  method: 'delete',
  path: '/v1/volumes/{name}',
  tags,
  summary: 'Delete a volume (its data is reclaimed by garbage collection)',
  request: { params: VolumeParamsSchema },
  responses: { 204: { description: 'Deleted' }, ...writeErrors },
});

/** Registers the volume lifecycle routes. */
export function registerVolumesRoutes(app: ApiApp, { engine }: RouteDeps): void {
  app.openapi(listVolumes, async (c) => {
    const volumes = await engine.listVolumes(c.get('actor'));
    return c.json({ volumes: volumes.map(presentVolume) }, 200);
  });

  app.openapi(createVolume, async (c) => {
    const { name, ...opts } = c.req.valid('json');
    const volume = await engine.createVolume(c.get('actor'), name, opts);
    return c.json(presentVolume(volume), 201);
  });

  app.openapi(putVolume, async (c) => {
    const { name } = c.req.valid('param');
    const { name: bodyName, ...opts } = c.req.valid('json');
    if (bodyName !== undefined && bodyName !== name) {
      throw new InvalidArgumentError(`the body names volume ${JSON.stringify(bodyName.slice(0, 80))} but the URL names ${JSON.stringify(name.slice(0, 80))}: omit "name" from the body`);
    }
    const { volume, created } = await engine.getOrCreateVolume(c.get('actor'), name, opts);
    return created ? c.json(presentVolume(volume), 201) : c.json(presentVolume(volume), 200);
  });

  app.openapi(getVolume, async (c) => {
    const volume = await engine.getVolume(c.get('actor'), c.req.valid('param').name);
    return c.json(presentVolume(volume), 200);
  });

  app.openapi(updateVolume, async (c) => {
    const volume = await engine.updateVolume(c.get('actor'), c.req.valid('param').name, c.req.valid('json'));
    return c.json(presentVolume(volume), 200);
  });

  app.openapi(deleteVolume, async (c) => {
    await engine.deleteVolume(c.get('actor'), c.req.valid('param').name);
    return c.body(null, 204);
  });
}
