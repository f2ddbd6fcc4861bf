/**
 * @module server/schemas/common-schemas
 * The zod schemas of the HTTP API live in this folder, a module per
 * resource (volumes, files, commits, snapshots, attachments, tenant and
 * tokens, search, downloads); this one holds the building blocks they share:
 * number and string bounds, the entry attributes of files and changes, signed
 * requests, and the error and health answers every route may give.
 *
 * There is one schema per shape of `api/wire.ts`. They validate requests
 * (through the routes' `createRoute` definitions) and are the source of
 * `/v1/openapi.json`. Each schema is checked at compile time against its wire
 * type (`satisfies z.ZodType<wire.X>`), so the server, the OpenAPI document
 * and the SDK cannot drift apart.
 *
 * The schemas check shapes and types only. Names, paths, ids and hashes are
 * validated by the engine (parseVolumeName, parsePath), which owns those rules.
 */
import { z } from '@hono/zod-openapi';
import type * as wire from '@stowage/sdk/api/wire.js';
import { MAX_OWNER_ID, MAX_TIME_MS, MAX_TIME_NS } from '@stowage/sdk/common/limits.js';

/** A whole, non-negative number of bytes (or a count). */
export const Bytes = z.number().int().min(0);
/** A free-form identifier string passed through to the engine. */
export const Ref = z.string().max(1024);

/** A path in a volume (bounded; its rules are the engine's). */
export const Path = z.string().max(65536);

/** Owner and group ids, nanoseconds and millisecond times of entry attributes. */
export const OwnerId = z.number().int().min(0).max(MAX_OWNER_ID);
export const Nanos = z.number().int().min(0).max(MAX_TIME_NS);
export const Millis = z.number().int().min(-MAX_TIME_MS).max(MAX_TIME_MS);

/** Wire `EntryAttributes` (api/wire.ts), as fields to spread into an object schema. */
export const entryAttributes = {
  uid: OwnerId.optional().openapi({ description: 'Recorded owner (0..4294967294); absent: none recorded (a mount shows its own owner). Downloads never apply it.' }),
  gid: OwnerId.optional().openapi({ description: 'Recorded group (0..4294967294); absent: none recorded.' }),
  mtimeNs: Nanos.optional().openapi({ description: 'Nanoseconds past the millisecond in mtime (0..999999); absent: 0.' }),
  atime: Millis.optional().openapi({ description: 'Last access, ms since the epoch; absent: the same as mtime (and mtimeNs).' }),
  atimeNs: Nanos.optional().openapi({ description: 'Nanoseconds past the millisecond in atime (0..999999); absent: 0.' }),
  ctime: Millis.optional().openapi({ description: 'Last change of the entry, ms since the epoch; absent: the same as mtime (and mtimeNs).' }),
  ctimeNs: Nanos.optional().openapi({ description: 'Nanoseconds past the millisecond in ctime (0..999999); absent: 0.' }),
};

/** Wire `SignedRequest` (api/wire.ts). */
export const SignedRequestSchema = z
  .object({ url: z.string(), method: z.enum(['GET', 'PUT']), headers: z.record(z.string(), z.string()), expiresAt: z.string() })
  .openapi('SignedRequest') satisfies z.ZodType<wire.SignedRequest>;

/** Wire `ErrorBody` (api/wire.ts). */
export const ErrorBodySchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'NotFound' }),
      message: z.string(),
      details: z.record(z.string(), z.unknown()).optional(),
    }),
  })
  .openapi('ErrorBody') satisfies z.ZodType<wire.ErrorBody>;

/** GET /v1/health answer. */
export const HealthSchema = z.object({ ok: z.literal(true) }).openapi('Health');
