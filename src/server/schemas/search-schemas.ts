/**
 * @module server/schemas/search-schemas
 * Search, replace, edit, and the change feed (watch stream and changes).
 */
import { z } from '@hono/zod-openapi';
import type * as wire from '@stowage/sdk/api/wire.js';
import { CommitSchema } from './commit-schemas.js';
import { Bytes, Path } from './common-schemas.js';
import { QueryInt } from './query-schemas.js';

const Count = z.number().int();
const EntryTypeSchema = z.enum(['file', 'dir', 'symlink']);

/** Wire `SearchRequest` (api/wire.ts); bounds are checked by the engine. */
export const SearchRequestSchema = z
  .object({
    path: Path.optional(), glob: z.string().optional(), regex: z.string().optional(), flags: z.string().optional(), commit: z.string().optional(),
    limit: Count.optional(), maxBytesPerFile: Count.optional(), timeoutMs: Count.optional(),
  })
  .openapi('SearchRequest') satisfies z.ZodType<wire.SearchRequest>;

/** Wire `SearchResponse` (api/wire.ts). */
export const SearchResponseSchema = z
  .object({
    commit: z.string(),
    files: z.array(z.object({ path: z.string(), type: EntryTypeSchema, size: Bytes })),
    matches: z.array(z.object({ path: z.string(), line: Count, column: Count, text: z.string() })),
    truncated: z.boolean(), timedOut: z.boolean(), skippedBinary: z.array(z.string()), truncatedFiles: z.array(z.string()), filesScanned: Count,
  })
  .openapi('SearchResponse') satisfies z.ZodType<wire.SearchResponse>;

/** Wire `ReplaceRequest` (api/wire.ts). */
export const ReplaceRequestSchema = z
  .object({
    path: Path.optional(), glob: z.string(), regex: z.string(), replacement: z.string().max(65536), flags: z.string().optional(), base: z.string().optional(),
    maxFiles: Count.optional(), maxBytesPerFile: Count.optional(), timeoutMs: Count.optional(), message: z.string().optional(),
  })
  .openapi('ReplaceRequest') satisfies z.ZodType<wire.ReplaceRequest>;

/** Wire `ReplaceResponse` (api/wire.ts). */
export const ReplaceResponseSchema = z
  .object({
    commit: CommitSchema.nullable(),
    files: z.array(z.object({ path: z.string(), replacements: Count })),
    skippedBinary: z.array(z.string()), skippedTooLarge: z.array(z.string()),
  })
  .openapi('ReplaceResponse') satisfies z.ZodType<wire.ReplaceResponse>;

/** Wire `EditRequest` (api/wire.ts). */
export const EditRequestSchema = z
  .object({ path: Path, oldString: z.string(), newString: z.string(), base: z.string().optional(), message: z.string().optional() })
  .openapi('EditRequest') satisfies z.ZodType<wire.EditRequest>;

/** Wire `EditResponse` (api/wire.ts). */
export const EditResponseSchema = z.object({ commit: CommitSchema, path: z.string() }).openapi('EditResponse') satisfies z.ZodType<wire.EditResponse>;

/** Wire `ChangeEvent` (api/wire.ts): the data of each `change` event of the watch stream. */
export const ChangeEventSchema = z
  .object({ commit: z.string(), seq: Count, path: z.string(), kind: z.enum(['added', 'modified', 'deleted']), type: EntryTypeSchema, index: Count, count: Count })
  .openapi('ChangeEvent') satisfies z.ZodType<wire.ChangeEvent>;

/** Wire `ChangesResponse` (api/wire.ts). */
export const ChangesResponseSchema = z
  .object({
    head: z.string(),
    commits: z.array(z.object({ id: z.string(), seq: Count, changes: z.array(z.object({ path: z.string(), kind: z.enum(['added', 'modified', 'deleted']), type: EntryTypeSchema })), truncated: z.boolean() })),
  })
  .openapi('ChangesResponse') satisfies z.ZodType<wire.ChangesResponse>;

/** Query of GET /v1/volumes/{name}/watch. */
export const WatchQuerySchema = z.object({
  since: z.string().optional().openapi({ param: { name: 'since', in: 'query' }, description: 'Stream the changes after this commit (else the Last-Event-ID header, else the head).' }),
});

/** Query of GET /v1/volumes/{name}/changes. */
export const ChangesQuerySchema = z.object({
  since: z.string().optional().openapi({ param: { name: 'since', in: 'query' }, description: 'The commits after this one (none when absent: the head).' }),
  limit: QueryInt(1).openapi({ param: { name: 'limit', in: 'query' }, description: 'Commits per answer (default 100, at most 1000).', type: 'integer' }),
});
