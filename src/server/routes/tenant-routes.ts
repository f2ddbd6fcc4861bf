/**
 * @module server/routes/tenant-routes
 * The caller's tenant (default cap) and its API tokens. A token's secret is
 * answered once, at creation.
 */
import { createRoute } from '@hono/zod-openapi';
import { presentTenant, presentToken } from '../presenters.js';
import { authErrors, errorAnswer, jsonAnswer, jsonBody, type ApiApp, type RouteDeps } from '../route-helpers.js';
import { CreateTokenRequestSchema, CreateTokenResponseSchema, TenantSchema, TokenListSchema, TokenParamsSchema, UpdateTenantRequestSchema } from '../schemas/tenant-schemas.js';

const forbidden = { 403: errorAnswer('Forbidden: scoped tokens cannot manage the tenant') } as const;

const getTenant = createRoute({
  operationId: 'getTenant',
  method: 'get',
  path: '/v1/tenant',
  tags: ['tenant'],
  summary: 'The caller\'s tenant',
  responses: { 200: jsonAnswer(TenantSchema, 'The tenant'), ...authErrors, ...forbidden },
});

const updateTenant = createRoute({
  operationId: 'updateTenant',
  method: 'patch',
  path: '/v1/tenant',
  tags: ['tenant'],
  summary: 'Change the tenant\'s default volume cap',
  request: { body: jsonBody(UpdateTenantRequestSchema) },
  responses: { 200: jsonAnswer(TenantSchema, 'The updated tenant'), ...authErrors, ...forbidden },
});

const listTokens = createRoute({
  operationId: 'listTokens',
  method: 'get',
  path: '/v1/tokens',
  tags: ['tokens'],
  summary: 'The tenant\'s tokens, newest first (secrets are never shown)',
  responses: { 200: jsonAnswer(TokenListSchema, 'The tokens'), ...authErrors, ...forbidden },
});

const createToken = createRoute({
  operationId: 'createToken',
  method: 'post',
  path: '/v1/tokens',
  tags: ['tokens'],
  summary: 'Create a token, optionally scoped to one volume and read-only',
  request: { body: jsonBody(CreateTokenRequestSchema) },
  responses: {
    201: jsonAnswer(CreateTokenResponseSchema, 'The token and its secret (shown once)'),
    ...authErrors,
    ...forbidden,
    404: errorAnswer('NotFound: the scope volume does not exist'),
  },
});

const revokeToken = createRoute({
  operationId: 'revokeToken',
  method: 'delete',
  path: '/v1/tokens/{id}',
  tags: ['tokens'],
  summary: 'Revoke a token',
  request: { params: TokenParamsSchema },
  responses: { 204: { description: 'Revoked' }, ...authErrors, ...forbidden, 404: errorAnswer('NotFound: no such token') },
});

/** Registers the tenant and token routes. */
export function registerTenantRoutes(app: ApiApp, { engine }: RouteDeps): void {
  app.openapi(getTenant, async (c) => {
    return c.json(presentTenant(await engine.getTenant(c.get('actor'))), 200);
  });

  app.openapi(updateTenant, async (c) => {
    return c.json(presentTenant(await engine.updateTenant(c.get('actor'), c.req.valid('json'))), 200);
  });

  app.openapi(listTokens, async (c) => {
    const tokens = await engine.listTokens(c.get('actor'));
    return c.json({ tokens: tokens.map(presentToken) }, 200);
  });

  app.openapi(createToken, async (c) => {
    const { token, secret } = await engine.createToken(c.get('actor'), c.req.valid('json'));
    return c.json({ token: presentToken(token), secret }, 201);
  });

  app.openapi(revokeToken, async (c) => {
    await engine.revokeToken(c.get('actor'), c.req.valid('param').id);
    return c.body(null, 204);
  });
}
