/**
 * @module wire/tenant
 * The tenant and its tokens. Types only; re-exported by api/wire.
 */
import type { Json, TenantRecord, TokenRecord } from '../../model/records.js';

/** The tenant record with the uncommitted quota in force (the installation's default when the operator set none). */
export type Tenant = Json<Omit<TenantRecord, 'uncommittedQuota'> & { uncommittedQuota: number }>;
/** PATCH /v1/tenant */
export interface UpdateTenantRequest {
  defaultCap: number;
}

/** `volume` is the id (vol_...) of the one volume a scoped token reaches, or null for tenant tokens. */
export type Token = Json<
  Pick<TokenRecord, 'id' | 'name' | 'readOnly' | 'createdAt' | 'expiresAt' | 'revokedAt'> & {
    volume: TokenRecord['volumeId'];
  }
>;
/** POST /v1/tokens : answers { token: Token, secret: string } once; the secret is never shown again. */
/** `volume` names (by name) the one volume the new token may reach. */
export interface CreateTokenRequest {
  name: string;
  volume?: string;
  readOnly?: boolean;
  expiresIn?: number;
}
export interface CreateTokenResponse {
  token: Token;
  secret: string;
}
/** GET /v1/tokens */
export interface TokenList {
  tokens: Token[];
}
