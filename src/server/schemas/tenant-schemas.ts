/**
 * @module server/schemas/tenant-schemas
 * The tenant's settings and its API tokens.
 */
import { z } from '@hono/zod-openapi';
import type * as wire from '@stowage/sdk/api/wire.js';
import { Bytes } from './common-schemas.js';

/** Wire `Tenant` (api/wire.ts). */
export const TenantSchema = z
  .object({ id: z.string(), name: z.string(), defaultCap: Bytes, createdAt: z.string(), storageQuota: Bytes.nullable(), uncommittedQuota: Bytes })
  .openapi('Tenant') satisfies z.ZodType<wire.Tenant>;

/** Wire `UpdateTenantRequest` (api/wire.ts). */
export const UpdateTenantRequestSchema = z.object({ defaultCap: Bytes }).openapi('UpdateTenantRequest') satisfies z.ZodType<wire.UpdateTenantRequest>;

/** Wire `Token` (api/wire.ts). */
export const TokenSchema = z
  .object({
    id: z.string(),
    name: z.string(),
    volume: z.string().nullable(),
    readOnly: z.boolean(),
    createdAt: z.string(),
    expiresAt: z.string().nullable(),
    revokedAt: z.string().nullable(),
  })
  .openapi('Token') satisfies z.ZodType<wire.Token>;

/** Wire `CreateTokenRequest` (api/wire.ts). */
export const CreateTokenRequestSchema = z
  .object({
    name: z.string().min(1).max(200),
    volume: z.string().optional(),
    readOnly: z.boolean().optional(),
    /** Seconds. */
    expiresIn: z.number().int().positive().optional().openapi({ description: 'Lifetime in seconds; no expiry when absent.' }),
  })
  .openapi('CreateTokenRequest') satisfies z.ZodType<wire.CreateTokenRequest>;

/** Wire `CreateTokenResponse` (api/wire.ts). */
export const CreateTokenResponseSchema = z
  .object({ token: TokenSchema, secret: z.string() })
  .openapi('CreateTokenResponse') satisfies z.ZodType<wire.CreateTokenResponse>;

/** Wire `TokenList` (api/wire.ts). */
export const TokenListSchema = z.object({ tokens: z.array(TokenSchema) }).openapi('TokenList') satisfies z.ZodType<wire.TokenList>;

/** URL parameters of /v1/tokens/{id}. */
export const TokenParamsSchema = z.object({
  id: z.string().openapi({ param: { name: 'id', in: 'path' }, example: 'tok_0123456789abcdefghij' }),
});
