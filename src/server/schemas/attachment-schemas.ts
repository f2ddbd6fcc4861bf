/**
 * @module server/schemas/attachment-schemas
 * Attachments: a volume mounted on a host, with its lease and token.
 */
import { z } from '@hono/zod-openapi';
import type * as wire from '@stowage/sdk/api/wire.js';
import { Ref } from './common-schemas.js';
import { QueryBool } from './query-schemas.js';
import { VolumeSchema } from './volume-schemas.js';

/** Wire `AttachmentState` (api/wire.ts). */
export const AttachmentStateSchema = z.enum(['mounted', 'released', 'failed']).openapi('AttachmentState') satisfies z.ZodType<wire.AttachmentState>;

/** Wire `Attachment` (api/wire.ts). */
export const AttachmentSchema = z
  .object({
    id: z.string(),
    volumeId: z.string(),
    volume: z.string(),
    host: z.string(),
    path: z.string(),
    readOnly: z.boolean(),
    state: AttachmentStateSchema,
    reason: z.string().nullable(),
    createdAt: z.string(),
    updatedAt: z.string(),
    leaseExpiresAt: z.string(),
  })
  .openapi('Attachment') satisfies z.ZodType<wire.Attachment>;

/** Wire `AttachRequest` (api/wire.ts); host and path rules are the engine's. */
export const AttachRequestSchema = z
  .object({
    host: z.string().openapi({ example: 'sandbox-7', description: 'Host or sandbox name: 1-253 printable characters.' }),
    path: z.string().openapi({ example: '/mnt/data', description: 'Absolute mount path there: at most 4096 bytes, no NUL.' }),
    readOnly: z.boolean().optional(),
    resume: Ref.optional().openapi({ description: 'Take over this earlier attachment of the same volume, host and path (a restarted mount agent).' }),
  })
  .openapi('AttachRequest') satisfies z.ZodType<wire.AttachRequest>;

/** Wire `AttachResponse` (api/wire.ts). */
export const AttachResponseSchema = z
  .object({ attachment: AttachmentSchema, token: z.string(), tokenExpiresAt: z.string(), volume: VolumeSchema })
  .openapi('AttachResponse') satisfies z.ZodType<wire.AttachResponse>;

/** Wire `AttachmentList` (api/wire.ts). */
export const AttachmentListSchema = z.object({ attachments: z.array(AttachmentSchema) }).openapi('AttachmentList') satisfies z.ZodType<wire.AttachmentList>;

/** Wire `RenewAttachmentResponse` (api/wire.ts). */
export const RenewAttachmentResponseSchema = z
  .object({ attachment: AttachmentSchema, tokenExpiresAt: z.string() })
  .openapi('RenewAttachmentResponse') satisfies z.ZodType<wire.RenewAttachmentResponse>;

/** Wire `ReleaseAttachmentRequest` (api/wire.ts). */
export const ReleaseAttachmentRequestSchema = z
  .object({ failed: z.boolean().optional(), reason: z.string().optional() })
  .openapi('ReleaseAttachmentRequest') satisfies z.ZodType<wire.ReleaseAttachmentRequest>;

/** URL parameters of /v1/attachments/{id}/... */
export const AttachmentParamsSchema = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'att_0123456789abcdefghij' }),
});

/** Query of GET /v1/volumes/{name}/attachments. */
export const AttachmentsQuerySchema = z.object({
  all: QueryBool.openapi({ param: { name: 'all', in: 'query' }, description: 'Also released and failed attachments (default: mounted only).', type: 'boolean' }),
});
