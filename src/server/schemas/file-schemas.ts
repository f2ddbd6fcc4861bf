/**
 * @module server/schemas/file-schemas
 * Reading a volume's tree: entries, listings, read plans and their queries.
 */
import { z } from '@hono/zod-openapi';
import type * as wire from '@stowage/sdk/api/wire.js';
import { Bytes, entryAttributes, SignedRequestSchema } from './common-schemas.js';
import { CommitQuery, PathQuery, QueryBool, QueryInt } from './query-schemas.js';

/** Wire `FileInfo` (api/wire.ts). */
export const FileInfoSchema = z
  .object({
    path: z.string(),
    name: z.string(),
    type: z.enum(['file', 'dir', 'symlink']),
    mode: z.number().int(),
    mtime: z.number(),
    size: Bytes,
    fileCount: Bytes.optional(),
    chunkSize: Bytes.optional(),
    chunks: z.array(z.string()).optional(),
    target: z.string().optional(),
    ...entryAttributes,
  })
  .openapi('FileInfo') satisfies z.ZodType<wire.FileInfo>;

/** Wire `StatResponse` (api/wire.ts). */
export const StatResponseSchema = z.object({ commit: z.string(), entry: FileInfoSchema }).openapi('StatResponse') satisfies z.ZodType<wire.StatResponse>;

/** Wire `ListResponse` (api/wire.ts). */
export const ListResponseSchema = z
  .object({ commit: z.string(), entries: z.array(FileInfoSchema), nextCursor: z.string().nullable() })
  .openapi('ListResponse') satisfies z.ZodType<wire.ListResponse>;

/** Wire `ReadPlan` (api/wire.ts). */
export const ReadPlanSchema = z
  .object({
    commit: z.string(),
    entry: FileInfoSchema,
    chunks: z.array(z.object({ hash: z.string(), size: Bytes, request: SignedRequestSchema })),
  })
  .openapi('ReadPlan') satisfies z.ZodType<wire.ReadPlan>;

/** Query of GET /v1/volumes/{name}/stat (path defaults to "/"). */
export const StatQuerySchema = z.object({ path: PathQuery.default('/'), commit: CommitQuery });

/** Query of GET /v1/volumes/{name}/list (path defaults to "/"). */
export const ListQuerySchema = z.object({
  path: PathQuery.default('/'),
  commit: CommitQuery,
  recursive: QueryBool.openapi({ param: { name: 'recursive', in: 'query' }, type: 'boolean' }),
  limit: QueryInt(1).openapi({ param: { name: 'limit', in: 'query' }, description: 'Entries per page (default 1000, at most 10000).', type: 'integer' }),
  after: z.string().optional().openapi({ param: { name: 'after', in: 'query' }, description: 'The nextCursor of the previous page.' }),
});

/** Query of GET /v1/volumes/{name}/read (path required). */
export const ReadQuerySchema = z.object({ path: PathQuery, commit: CommitQuery });
