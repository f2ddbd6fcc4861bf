/**
 * @module server/schemas/volume-schemas
 * Volumes: their wire shape and the bodies that create and change them.
 */
import { z } from '@hono/zod-openapi';
import type * as wire from '@stowage/sdk/api/wire.js';
import { Bytes } from './common-schemas.js';

/** Wire `AccessMode` (api/wire.ts). */
export const AccessModeSchema = z.enum(['RWO', 'ROX', 'RWX']).openapi('AccessMode') satisfies z.ZodType<wire.AccessMode>;

/** Wire `MountTuning` (api/wire.ts). */
export const MountTuningSchema = z
  .object({ cacheSize: Bytes, bufferSize: Bytes, prefetch: Bytes, writeback: z.boolean() })
  .openapi('MountTuning') satisfies z.ZodType<wire.MountTuning>;

const PartialTuningSchema = z
  .object({ cacheSize: Bytes.optional(), bufferSize: Bytes.optional(), prefetch: Bytes.optional(), writeback: z.boolean().optional() })
  .openapi('PartialMountTuning') satisfies z.ZodType<Partial<wire.MountTuning>>;

/** Wire `Volume` (api/wire.ts). */
export const VolumeSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    accessMode: AccessModeSchema,
    cap: Bytes,
    size: Bytes,
    fileCount: Bytes,
    tuning: MountTuningSchema,
    head: z.string(),
    createdAt: z.string(),
    updatedAt: z.string(),
  })
  .openapi('Volume') satisfies z.ZodType<wire.Volume>;

/** Wire `VolumeList` (api/wire.ts). */
export const VolumeListSchema = z.object({ volumes: z.array(VolumeSchema) }).openapi('VolumeList') satisfies z.ZodType<wire.VolumeList>;

/** PUT /v1/volumes/{name}: the name comes from the URL. */
export const CreateVolumeRequestSchema = z
  .object({ name: z.string().optional(), accessMode: AccessModeSchema.optional(), cap: Bytes.optional(), tuning: PartialTuningSchema.optional() })
  .openapi('CreateVolumeRequest') satisfies z.ZodType<wire.CreateVolumeRequest>;

/** POST /v1/volumes: like CreateVolumeRequest, with the name required. */
export const CreateVolumeBodySchema = CreateVolumeRequestSchema.extend({ name: z.string() }).openapi('CreateVolumeBody') satisfies z.ZodType<wire.CreateVolumeRequest>;

/** Wire `UpdateVolumeRequest` (api/wire.ts). */
export const UpdateVolumeRequestSchema = z
  .object({ cap: Bytes.optional(), accessMode: AccessModeSchema.optional(), tuning: PartialTuningSchema.optional() })
  .openapi('UpdateVolumeRequest') satisfies z.ZodType<wire.UpdateVolumeRequest>;
