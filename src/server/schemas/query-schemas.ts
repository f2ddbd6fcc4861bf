/**
 * @module server/schemas/query-schemas
 * Pieces of URL parameters and query strings that several routes share:
 * the volume name of /v1/volumes/{name}/..., query booleans and integers,
 * and the path and commit queries of the read routes.
 */
import { z } from '@hono/zod-openapi';

/** URL parameters of /v1/volumes/{name}/... routes. */
export const VolumeParamsSchema = z.object({
  name: z.string().openapi({ param: { name: 'name', in: 'path' }, example: 'data' }),
});

/** "true"/"false" (and "1"/"0") in a query string, as a boolean. */
export const QueryBool = z
  .enum(['true', 'false', '1', '0'])
  .optional()
  .transform((v) => v === 'true' || v === '1');

/** A whole number of at least `min` in a query string. */
export const QueryInt = (min: number) =>
  z
    .string()
    .regex(/^\d{1,15}$/, 'expected a whole number')
    .transform((s) => Number(s))
    .pipe(z.number().int().min(min))
    .optional();

/** The `path` and `commit` queries of the read routes. */
export const PathQuery = z.string().openapi({ param: { name: 'path', in: 'query' }, example: '/dir/file.txt' });
export const CommitQuery = z.string().optional().openapi({ param: { name: 'commit', in: 'query' }, description: 'A commit id; the head when absent.' });
