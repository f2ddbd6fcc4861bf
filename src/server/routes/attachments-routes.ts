/**
 * @module server/routes/attachments-routes
 * Attachments (the control plane's record of mounts): attach a volume, list
 * its attachments, renew an attachment's lease, release it. Attaching answers
 * the scoped token the mount runs on; the rules live in engine/attachments.
 */
import { createRoute } from '@hono/zod-openapi';
import { presentAttachment, presentVolume } from '../presenters.js';
import { authErrors, errorAnswer, jsonAnswer, jsonBody, optionalJsonBody, volumeErrors, writeErrors, type ApiApp, type RouteDeps } from '../route-helpers.js';
import { AttachmentListSchema, AttachmentParamsSchema, AttachmentSchema, AttachmentsQuerySchema, AttachRequestSchema, AttachResponseSchema, ReleaseAttachmentRequestSchema, RenewAttachmentResponseSchema } from '../schemas/attachment-schemas.js';
import { VolumeParamsSchema } from '../schemas/query-schemas.js';

const tags = ['attachments'];

/** Error answers of the routes that address one attachment by id. */
const attachmentErrors = {
  ...authErrors,
  403: errorAnswer('Forbidden or ReadOnly: only the attachment\'s own mount token or a (writable) tenant token may do this'),
  404: errorAnswer('NotFound: no such attachment (or not visible to this token)'),
} as const;

const attachVolume = createRoute({
  operationId: 'attachVolume',
  method: 'post',
  path: '/v1/volumes/{name}/attachments',
  tags,
  summary: 'Attach (mount) a volume: checks the access mode and answers a scoped token leased with the attachment',
  request: { params: VolumeParamsSchema, body: jsonBody(AttachRequestSchema) },
  responses: {
    201: jsonAnswer(AttachResponseSchema, 'The attachment, its scoped token (shown once) and the volume'),
    ...writeErrors,
    409: errorAnswer('Conflict: the access mode forbids this mount (the message names the attachment in the way), or resume does not match'),
  },
});

const listAttachments = createRoute({
  operationId: 'listAttachments',
  method: 'get',
  path: '/v1/volumes/{name}/attachments',
  tags,
  summary: 'The attachments of a volume, oldest first (mounted only unless all=true)',
  request: { params: VolumeParamsSchema, query: AttachmentsQuerySchema },
  responses: { 200: jsonAnswer(AttachmentListSchema, 'The attachments'), ...volumeErrors },
});

const renewAttachment = createRoute({
  operationId: 'renewAttachment',
  method: 'post',
  path: '/v1/attachments/{id}/renew',
  tags,
  summary: 'Extend an attachment\'s lease and its token\'s expiry',
  request: { params: AttachmentParamsSchema },
  responses: {
    200: jsonAnswer(RenewAttachmentResponseSchema, 'The renewed attachment and its token\'s new expiry'),
    ...attachmentErrors,
    409: errorAnswer('Conflict: the attachment is released or failed, or its lease expired and another mount took the volume'),
  },
});

const releaseAttachment = createRoute({
  operationId: 'releaseAttachment',
  method: 'post',
  path: '/v1/attachments/{id}/release',
  tags,
  summary: 'Release (or fail) an attachment and revoke its token; releasing again changes nothing',
  request: { params: AttachmentParamsSchema, body: optionalJsonBody(ReleaseAttachmentRequestSchema) },
  responses: { 200: jsonAnswer(AttachmentSchema, 'The released attachment'), ...attachmentErrors },
});

/** Registers the attachment routes. */
export function registerAttachmentsRoutes(app: ApiApp, { engine }: RouteDeps): void {
  app.openapi(attachVolume, async (c) => {
    const r = await engine.attach(c.get('actor'), c.req.valid('param').name, c.req.valid('json'));
    return c.json({ attachment: presentAttachment(r.attachment), token: r.secret, tokenExpiresAt: r.tokenExpiresAt.toISOString(), volume: presentVolume(r.volume) }, 201);
  });

  app.openapi(listAttachments, async (c) => {
    const list = await engine.listAttachments(c.get('actor'), c.req.valid('param').name, { all: c.req.valid('query').all });
    return c.json({ attachments: list.map(presentAttachment) }, 200);
  });

  app.openapi(renewAttachment, async (c) => {
    const r = await engine.renewAttachment(c.get('actor'), c.req.valid('param').id);
    return c.json({ attachment: presentAttachment(r.attachment), tokenExpiresAt: r.tokenExpiresAt.toISOString() }, 200);
  });

  app.openapi(releaseAttachment, async (c) => {
    const a = await engine.releaseAttachment(c.get('actor'), c.req.valid('param').id, c.req.valid('json') ?? {});
    return c.json(presentAttachment(a), 200);
  });
}
