/**
 * @module server/route-helpers
 * What every route file shares: the Hono environment (the authenticated
 * Actor set by the auth middleware), and small builders for the OpenAPI
 * route definitions (JSON bodies, JSON answers, the error answers).
 */
import type { OpenAPIHono, z } from '@hono/zod-openapi';
import type { Actor, VolumeEngine } from '../engine/types.js';
import { ErrorBodySchema } from './schemas/common-schemas.js';

/** Hono environment of the API: `c.get('actor')` is the caller on every authenticated route. */
export interface AppEnv {
  Variables: { actor: Actor };
}

/** The app the route files register on. */
export type ApiApp = OpenAPIHono<AppEnv>;

/** What a route file needs to register its routes. */
export interface RouteDeps {
  engine: VolumeEngine;
}

/** A required JSON request body validated by `schema`. */
export function jsonBody<T extends z.ZodType>(schema: T, description?: string) {
  return { required: true, content: { 'application/json': { schema } }, ...(description ? { description } : {}) } as const;
}

/** An optional JSON request body (absent means `{}`). */
export function optionalJsonBody<T extends z.ZodType>(schema: T, description?: string) {
  return { required: false, content: { 'application/json': { schema } }, ...(description ? { description } : {}) } as const;
}

/** A JSON answer of `schema`. */
export function jsonAnswer<T extends z.ZodType>(schema: T, description: string) {
  return { description, content: { 'application/json': { schema } } } as const;
}

/** The error answer (`ErrorBody`) under a description. */
export function errorAnswer(description: string) {
  return { description, content: { 'application/json': { schema: ErrorBodySchema } } } as const;
}

/** Error answers common to authenticated routes. */
export const authErrors = {
  400: errorAnswer('InvalidArgument: a field, name or path is malformed'),
  401: errorAnswer('Unauthenticated: missing, unknown, revoked or expired bearer token'),
} as const;

/** Error answers of routes that address a volume (another tenant\'s volume is 404, never 403). */
export const volumeErrors = {
  ...authErrors,
  404: errorAnswer('NotFound: no such volume (or not visible to this token)'),
} as const;

/** Error answers of routes that write. */
export const writeErrors = {
  ...volumeErrors,
  403: errorAnswer('ReadOnly or Forbidden: the token may not write here'),
} as const;
