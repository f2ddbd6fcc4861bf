/**
 * @module server/schemas/download-schemas
 * Downloads: signed URLs, file content and archives.
 */
import { z } from '@hono/zod-openapi';
import type * as wire from '@stowage/sdk/api/wire.js';
import { Bytes, Path, Ref } from './common-schemas.js';
import { CommitQuery, PathQuery, QueryBool } from './query-schemas.js';

/** Wire `SignedUrlRequest` (api/wire.ts); the lifetime bound is checked by the signer. */
export const SignedUrlRequestSchema = z
  .object({ path: Path, expiresIn: Bytes.optional(), commit: Ref.optional() })
  .openapi('SignedUrlRequest') satisfies z.ZodType<wire.SignedUrlRequest>;

/** Wire `SignedUrlResponse` (api/wire.ts). */
export const SignedUrlResponseSchema = z
  .object({ url: z.string(), expiresAt: z.string(), commit: z.string() })
  .openapi('SignedUrlResponse') satisfies z.ZodType<wire.SignedUrlResponse>;

/** Query of GET /v1/volumes/{name}/content (path required). */
export const ContentQuerySchema = z.object({ path: PathQuery, commit: CommitQuery });

/** Query of GET /v1/volumes/{name}/archive (path defaults to "/", format to tar.gz). */
export const ArchiveQuerySchema = z.object({
  path: PathQuery.default('/'),
  commit: CommitQuery,
  format: z.enum(['tar', 'tar.gz']).default('tar.gz').openapi({ param: { name: 'format', in: 'query' } }),
  preserveMode: QueryBool.openapi({ param: { name: 'preserveMode', in: 'query', description: 'keep setuid, setgid and sticky bits in entry modes (default: permission bits only)' }, type: 'boolean' }),
});
