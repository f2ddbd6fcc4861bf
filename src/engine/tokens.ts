/**
 * @module engine/tokens
 * API tokens: `<token id>.<secret>`. Only a SHA-256 of the secret is stored,
 * so a leaked database does not leak usable tokens; the id part makes the
 * lookup a primary-key read and the comparison constant-time.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TokenId } from '@stowage/sdk/common/ids.js';

/** A fresh secret and the token string a client presents. */
export function mintToken(id: TokenId): { secret: string; secretHash: string; bearer: string } {
  const secret = randomBytes(32).toString('base64url');
  return { secret, secretHash: hashSecret(secret), bearer: `${id}.${secret}` };
}

/** SHA-256 (hex) of a secret, as stored. */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

/** Splits a bearer string; undefined when it is not shaped like a Stowage token. */
export function parseBearer(bearer: string): { id: TokenId; secret: string } | undefined {
  const dot = bearer.indexOf('.');
  if (dot < 0 || bearer.length > 200) return undefined;
  try {
    return { id: TokenId.parse(bearer.slice(0, dot)), secret: bearer.slice(dot + 1) };
  } catch {
    return undefined;
  }
}

/** Constant-time comparison of a presented secret with a stored hash. */
export function secretMatches(secret: string, storedHash: string): boolean {
  const a = Buffer.from(hashSecret(secret), 'hex');
  const b = Buffer.from(storedHash, 'hex');
  return a.length === b.length && timingSafeEqual(a, b);
}
