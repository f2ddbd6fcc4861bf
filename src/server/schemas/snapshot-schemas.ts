/**
 * @module server/schemas/snapshot-schemas
 * Snapshots, and restoring or forking a volume from one (or from a commit).
 */
import { z } from '@hono/zod-openapi';
import type * as wire from '@stowage/sdk/api/wire.js';
import { Bytes, Ref } from './common-schemas.js';
import { VolumeParamsSchema } from './query-schemas.js';
import { AccessModeSchema } from './volume-schemas.js';

/** Wire `Snapshot` (api/wire.ts). */
export const SnapshotSchema = z
  .object({ id: z.string(), volumeId: z.string(), name: z.string(), commit: z.string(), createdAt: z.string() })
  .openapi('Snapshot') satisfies z.ZodType<wire.Snapshot>;

/** Wire `CreateSnapshotRequest` (api/wire.ts). */
export const CreateSnapshotRequestSchema = z
  .object({ name: Ref.optional(), commit: Ref.optional() })
  .openapi('CreateSnapshotRequest') satisfies z.ZodType<wire.CreateSnapshotRequest>;

/** Wire `SnapshotList` (api/wire.ts). */
export const SnapshotListSchema = z.object({ snapshots: z.array(SnapshotSchema) }).openapi('SnapshotList') satisfies z.ZodType<wire.SnapshotList>;

/** Wire `RestoreRequest` (api/wire.ts). */
export const RestoreRequestSchema = z
  .object({ snapshot: Ref.optional(), commit: Ref.optional() })
  .refine((r) => (r.snapshot === undefined) !== (r.commit === undefined), { message: 'give exactly one of "snapshot" or "commit"' })
  .openapi('RestoreRequest') satisfies z.ZodType<wire.RestoreRequest>;

/** Wire `ForkRequest` (api/wire.ts). */
export const ForkRequestSchema = z
  .object({ name: z.string(), snapshot: Ref.optional(), commit: Ref.optional(), accessMode: AccessModeSchema.optional(), cap: Bytes.optional() })
  .refine((r) => r.snapshot === undefined || r.commit === undefined, { message: 'give at most one of "snapshot" or "commit"' })
  .openapi('ForkRequest') satisfies z.ZodType<wire.ForkRequest>;

/** URL parameters of /v1/volumes/{name}/snapshots/{snapshot}. */
export const SnapshotParamsSchema = VolumeParamsSchema.extend({
  snapshot: z.string().openapi({ param: { name: 'snapshot', in: 'path' }, example: 'before-migration' }),
});
