/**
 * @module server/routes/search-routes
 * The file operations that work on contents server-side: search, replace
 * and edit (JSON in, JSON out), and watch, a stream of server-sent events
 * with one `change` event per changed path. Watch polls the head through the
 * metadata store, so it works behind any number of replicas (commits made
 * through this process wake it at once); resuming from
 * a commit id (`since`, or the Last-Event-ID header a reconnecting
 * EventSource sends) delivers every change after that commit, in order.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import type * as wire from '@stowage/sdk/api/wire.js';
import { UnavailableError } from '@stowage/sdk/common/errors.js';
import { toErrorResponse } from '../error-map.js';
import { presentCommit } from '../presenters.js';
import { errorAnswer, jsonAnswer, jsonBody, volumeErrors, writeErrors, type ApiApp, type RouteDeps } from '../route-helpers.js';
import { VolumeParamsSchema } from '../schemas/query-schemas.js';
import { ChangesQuerySchema, ChangesResponseSchema, EditRequestSchema, EditResponseSchema, ReplaceRequestSchema, ReplaceResponseSchema, SearchRequestSchema, SearchResponseSchema, WatchQuerySchema } from '../schemas/search-schemas.js';

const tags = ['files'];
/** How often a watch looks for new commits. */
export const WATCH_POLL_MS = 250;
/** How often a quiet watch sends a comment, so proxies keep the connection open. */
export const WATCH_HEARTBEAT_MS = 15_000;
/** How often a watch checks that its token is still valid (revoked or expired tokens stop receiving events). */
export const WATCH_REAUTH_MS = 2_000;
/**
 * Watches one tenant may hold open at once on one server. Each polls the
 * metadata store four times a second, so without a bound any token that may
 * read (a read-only one included) could open thousands and saturate it.
 */
export const MAX_WATCHES_PER_TENANT = 64;
/** Commits read per poll. */
const WATCH_BATCH = 100;

const searchRoute = createRoute({
  operationId: 'searchFiles',
  method: 'post',
  path: '/v1/volumes/{name}/search',
  tags,
  summary: 'Glob over paths and regex over contents, bounded by results, bytes per file and time',
  request: { params: VolumeParamsSchema, body: jsonBody(SearchRequestSchema) },
  responses: { 200: jsonAnswer(SearchResponseSchema, 'Matches (partial when timedOut)'), ...volumeErrors },
});

const replaceRoute = createRoute({
  operationId: 'replaceInFiles',
  method: 'post',
  path: '/v1/volumes/{name}/replace',
  tags,
  summary: 'Regex replace across the files a glob selects, in one commit',
  request: { params: VolumeParamsSchema, body: jsonBody(ReplaceRequestSchema) },
  responses: { 200: jsonAnswer(ReplaceResponseSchema, 'The commit (null when nothing matched) and the files changed'), ...writeErrors, 409: errorAnswer('Conflict: a selected file changed since base') },
});

const editRoute = createRoute({
  operationId: 'editFile',
  method: 'post',
  path: '/v1/volumes/{name}/edit',
  tags,
  summary: 'Replace the one occurrence of a string in a text file',
  request: { params: VolumeParamsSchema, body: jsonBody(EditRequestSchema) },
  responses: {
    200: jsonAnswer(EditResponseSchema, 'The commit'),
    ...writeErrors,
    409: errorAnswer('Conflict: the file changed since base'),
    412: errorAnswer('PreconditionFailed: the old string does not occur exactly once (details.occurrences)'),
  },
});

const watchRoute = createRoute({
  operationId: 'watchChanges',
  method: 'get',
  path: '/v1/volumes/{name}/watch',
  tags,
  summary: 'Server-sent events: one `change` event per changed path (id: the commit id), after `since` or Last-Event-ID',
  request: { params: VolumeParamsSchema, query: WatchQuerySchema },
  responses: {
    200: { description: 'text/event-stream of `change` events whose data is a ChangeEvent; comments as heartbeats', content: { 'text/event-stream': { schema: z.string() } } },
    ...volumeErrors,
    503: errorAnswer(`Unavailable: this tenant already has ${MAX_WATCHES_PER_TENANT} watches open on this server; close one first`),
  },
});

const changesRoute = createRoute({
  operationId: 'listChanges',
  method: 'get',
  path: '/v1/volumes/{name}/changes',
  tags,
  summary: 'The commits after `since` with the paths each changed (watch\'s feed as one JSON answer; page up to `head`)',
  request: { params: VolumeParamsSchema, query: ChangesQuerySchema },
  responses: { 200: jsonAnswer(ChangesResponseSchema, 'Commits after `since`, oldest first, and the head'), ...volumeErrors },
});

/** Registers search, replace, edit, watch and changes. */
export function registerSearchRoutes(app: ApiApp, { engine }: RouteDeps): void {
  // Open watches per tenant in this process (see MAX_WATCHES_PER_TENANT).
  const openWatches = new Map<string, number>();
  app.openapi(searchRoute, async (c) => {
    const r = await engine.search(c.get('actor'), c.req.valid('param').name, c.req.valid('json'));
    return c.json({ commit: r.commit, files: r.files, matches: r.matches, truncated: r.truncated, timedOut: r.timedOut, skippedBinary: r.skippedBinary, truncatedFiles: r.truncatedFiles, filesScanned: r.filesScanned }, 200);
  });

  app.openapi(replaceRoute, async (c) => {
    const r = await engine.replace(c.get('actor'), c.req.valid('param').name, c.req.valid('json'));
    return c.json({ commit: r.commit ? presentCommit(r.commit) : null, files: r.files, skippedBinary: r.skippedBinary, skippedTooLarge: r.skippedTooLarge }, 200);
  });

  app.openapi(editRoute, async (c) => {
    const { path, ...opts } = c.req.valid('json');
    const r = await engine.edit(c.get('actor'), c.req.valid('param').name, path, opts);
    return c.json({ commit: presentCommit(r.commit), path: r.path }, 200);
  });

  app.openapi(changesRoute, async (c) => {
    const actor = c.get('actor');
    const name = c.req.valid('param').name;
    const { since, limit } = c.req.valid('query');
    const from = since ?? (await engine.getVolume(actor, name)).head;
    const feed = await engine.changesSince(actor, name, from, limit ?? 100);
    const commits = feed.commits.map(({ commit, changes, truncated }) => ({ id: commit.id, seq: commit.seq, changes: changes.map((ch) => ({ path: ch.path, kind: ch.kind, type: ch.type })), truncated }));
    return c.json({ head: feed.head, commits } satisfies wire.ChangesResponse, 200);
  });

  app.openapi(watchRoute, async (c) => {
    const actor = c.get('actor');
    const name = c.req.valid('param').name;
    const since = c.req.valid('query').since ?? c.req.header('last-event-id');
    // Checked before the stream starts, so an unknown volume or commit is a plain 404.
    const volume = await engine.getVolume(actor, name);
    // The auth middleware accepted this header; the stream checks it again now and then.
    const bearer = /^Bearer[ \t]+(\S+)/i.exec(c.req.header('authorization') ?? '')?.[1] ?? '';
    let cursor = since === undefined || since === '' ? volume.head : (await engine.changesSince(actor, name, since, 1), since);
    const open = openWatches.get(actor.tenantId) ?? 0;
    if (open >= MAX_WATCHES_PER_TENANT) {
      throw new UnavailableError(`this tenant already has ${open} watches open on this server (at most ${MAX_WATCHES_PER_TENANT}); close one, or watch from fewer places, and try again`, { details: { limit: MAX_WATCHES_PER_TENANT } });
    }
    // Counted from here until the stream ends, whichever way it ends.
    openWatches.set(actor.tenantId, open + 1);
    let counted = true;
    const uncount = (): void => {
      if (!counted) return;
      counted = false;
      const n = (openWatches.get(actor.tenantId) ?? 1) - 1;
      if (n <= 0) openWatches.delete(actor.tenantId);
      else openWatches.set(actor.tenantId, n);
    };
    return streamSSE(
      c,
      async (stream) => {
        // Commits made through this process wake the loop at once; other replicas' are seen by polling.
        let wake: (() => void) | undefined;
        const unsubscribe = engine.onCommit((id) => {
          if (id === volume.id) wake?.();
        });
        stream.onAbort(() => wake?.());
        const pause = (): Promise<void> =>
          new Promise((resolve) => {
            const done = (): void => {
              clearTimeout(timer);
              wake = undefined;
              resolve();
            };
            const timer = setTimeout(done, WATCH_POLL_MS);
            wake = done;
          });
        try {
          let quietSince = Date.now();
          let checkedAt = Date.now();
          while (!stream.aborted && !stream.closed) {
            if (Date.now() - checkedAt >= WATCH_REAUTH_MS) {
              await engine.authenticate(bearer);
              checkedAt = Date.now();
            }
            const feed = await engine.changesSince(actor, name, cursor, WATCH_BATCH);
            for (const { commit, changes } of feed.commits) {
              for (let i = 0; i < changes.length; i++) {
                const ch = changes[i]!;
                const event: wire.ChangeEvent = { commit: commit.id, seq: commit.seq, path: ch.path, kind: ch.kind, type: ch.type, index: i, count: changes.length };
                await stream.writeSSE({ id: commit.id, event: 'change', data: JSON.stringify(event) });
              }
              cursor = commit.id;
              quietSince = Date.now();
            }
            if (feed.commits.length === WATCH_BATCH) continue;
            if (Date.now() - quietSince >= WATCH_HEARTBEAT_MS) {
              await stream.write(': heartbeat\n\n');
              quietSince = Date.now();
            }
            await pause();
          }
        } finally {
          unsubscribe();
          uncount();
        }
      },
      async (err, stream) => {
        // After the first byte the status is sent: report the error as an event, then end.
        const { body } = toErrorResponse(err);
        await stream.writeSSE({ event: 'error', data: JSON.stringify(body) });
      },
    );
  });
}
