/**
 * @module sandbox/runtime-http/runtime-app
 * A `SandboxRuntime` served over HTTP, so one can be used from another
 * process or machine (`HttpSandboxRuntime` is the other end). Two users:
 *
 * - each supervisor serves its one sandbox on a unix socket only host root
 *   can reach (0600 in a 0700 directory); the host daemon talks to it;
 * - `stowage sandbox-host` serves its whole host on TCP to the Stowage
 *   server, every call carrying the host's shared secret as a bearer token.
 *
 * Errors answer `{ error: { code, message } }`: a Stowage error code, or
 * for a file operation the agent refused, its errno name (ENOENT, EISDIR,
 * ...); the client turns either back into the same error. Exec output is a
 * stream of frames (protocol/frames): `{ stream, offset }` with the bytes as
 * the body, then `{ end: record }`. `GET /events` streams, one JSON line
 * each, the states of sandboxes that end on their own.
 */
import { timingSafeEqual } from 'node:crypto';
import { chmodSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { Readable } from 'node:stream';
import { createAdaptorServer } from '@hono/node-server';
import { requestBody, streamAnswer } from '../../common/node-http-bodies.js';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { isStowageError } from '@stowage/sdk/common/errors.js';
import { AgentCallError } from '../protocol/agent-client.js';
import { imageSpecSchema } from '../host/image-spec.js';
import { encodeFrame } from '../protocol/frames.js';
import type { RuntimeState, SandboxRuntime } from '../runtime.js';

const VolumeSchema = z
  .object({
    path: z.string(),
    readOnly: z.boolean(),
    subpath: z.string().optional(),
    volume: z.string(),
    attachmentId: z.string(),
    token: z.string(),
    serverUrl: z.string(),
  })
  .strict();
const LaunchSchema = z
  .object({
    id: z.string(),
    image: imageSpecSchema,
    cpu: z.number().positive(),
    memoryMib: z.number().positive(),
    diskGib: z.number().positive(),
    env: z.record(z.string(), z.string()),
    expiresAt: z.string().transform((s) => new Date(s)),
    volumes: z.array(VolumeSchema),
  })
  .strict();
const ExecSchema = z
  .object({
    argv: z.array(z.string()).min(1),
    cwd: z.string().optional(),
    env: z.record(z.string(), z.string()).optional(),
    background: z.boolean().optional(),
    timeoutMs: z.number().int().nonnegative().optional(),
    stdin: z.boolean().optional(),
    pty: z.object({ rows: z.number().int().min(1).max(10000), cols: z.number().int().min(1).max(10000) }).optional(),
  })
  .strict();
const ResizeSchema = z.object({ rows: z.number().int().min(1).max(10000), cols: z.number().int().min(1).max(10000) });
const SignalSchema = z.object({ signal: z.string().regex(/^SIG[A-Z0-9]+$/) });
const MkdirSchema = z.object({ path: z.string(), parents: z.boolean(), mode: z.number().int() });
const TerminateSchema = z.object({ reason: z.string().max(1000) });

const STATUS: Record<string, 400 | 404 | 409 | 503> = {
  NotFound: 404,
  Conflict: 409,
  AlreadyExists: 409,
  Unavailable: 503,
};

function fail(c: Context, status: 400 | 401 | 404 | 409 | 500 | 503, code: string, message: string): Response {
  return c.json({ error: { code, message } }, status);
}

function errorAnswer(c: Context, e: unknown): Response {
  if (e instanceof AgentCallError) return fail(c, 400, e.code, e.message);
  if (e instanceof z.ZodError)
    return fail(c, 400, 'InvalidArgument', e.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  if (isStowageError(e)) return fail(c, STATUS[e.code] ?? 400, e.code, e.message);
  if (e instanceof TypeError) return fail(c, 400, 'InvalidArgument', e.message);
  return fail(c, 500, 'Internal', (e as Error).message);
}

function query(c: Context, name: string): string {
  const v = c.req.query(name);
  if (v === undefined) throw new AgentCallError('EINVAL', `the query parameter ${name} is missing`);
  return v;
}

function offset(c: Context, name: string): number {
  const n = Number(c.req.query(name) ?? '0');
  if (!Number.isSafeInteger(n) || n < 0) throw new AgentCallError('EINVAL', `${name} must be a byte offset`);
  return n;
}

/** A stream body from an async generator of byte pieces. */
function streamed(pieces: AsyncIterable<Uint8Array>, type: string): Response {
  return new Response(Readable.toWeb(Readable.from(pieces)) as ReadableStream, { headers: { 'content-type': type } });
}

/** A bearer check in constant time; no secret means the transport itself is the guard (a root-only socket). */
function bearerOk(header: string | undefined, secret: string): boolean {
  const given = Buffer.from(/^Bearer (.+)$/.exec(header ?? '')?.[1] ?? '');
  const want = Buffer.from(secret);
  return given.length === want.length && timingSafeEqual(given, want);
}

/** `runtime` as a Hono app. */
export function runtimeApp(runtime: SandboxRuntime, opts: { secret?: string } = {}): Hono {
  const app = new Hono();
  app.onError((e, c) => errorAnswer(c, e));
  const { secret } = opts;
  if (secret !== undefined) {
    app.use('*', async (c, next) => {
      if (!bearerOk(c.req.header('authorization'), secret))
        return fail(c, 401, 'Unauthenticated', 'this sandbox host needs its secret as the bearer token');
      await next();
    });
  }
  // Ended sandboxes reach every connected /events stream.
  const subscribers = new Set<(state: RuntimeState) => void>();
  runtime.onEnded((state) => {
    for (const s of subscribers) s(state);
  });

  app.get('/host', (c) => c.json({ host: runtime.host, unavailable: runtime.unavailable() ?? null }));
  app.get('/events', (c) => {
    const signal = c.req.raw.signal;
    async function* lines(): AsyncGenerator<Uint8Array> {
      const queue: RuntimeState[] = [];
      let wake: (() => void) | undefined;
      const push = (s: RuntimeState) => {
        queue.push(s);
        wake?.();
      };
      subscribers.add(push);
      signal.addEventListener('abort', () => wake?.());
      try {
        yield Buffer.from('\n'); // the head goes out now: the client knows it is subscribed
        while (!signal.aborted) {
          const next = queue.shift();
          if (next) yield Buffer.from(`${JSON.stringify(next)}\n`);
          else await new Promise<void>((resolve) => (wake = resolve));
        }
      } finally {
        subscribers.delete(push);
      }
    }
    return streamed(lines(), 'application/x-ndjson');
  });

  app.post('/sandboxes', async (c) => {
    await runtime.create(LaunchSchema.parse(await c.req.json()));
    return c.body(null, 201);
  });
  app.get('/sandboxes/:id', async (c) => {
    const state = await runtime.state(c.req.param('id'));
    return state ? c.json(state) : fail(c, 404, 'NotFound', `no sandbox ${c.req.param('id')}`);
  });
  app.post('/sandboxes/:id/terminate', async (c) => {
    const { reason } = TerminateSchema.parse(await c.req.json());
    return c.json(await runtime.terminate(c.req.param('id'), reason));
  });

  app.post('/sandboxes/:id/execs', async (c) =>
    c.json(await runtime.exec(c.req.param('id'), ExecSchema.parse(await c.req.json())), 201),
  );
  app.get('/sandboxes/:id/execs', async (c) => c.json({ execs: await runtime.execs(c.req.param('id')) }));
  app.get('/sandboxes/:id/execs/:eid', async (c) => {
    const record = await runtime.getExec(c.req.param('id'), c.req.param('eid'));
    return record ? c.json(record) : fail(c, 404, 'NotFound', `no exec ${c.req.param('eid')}`);
  });
  app.get('/sandboxes/:id/execs/:eid/output', async (c) => {
    const [id, eid] = [c.req.param('id'), c.req.param('eid')];
    if (!(await runtime.getExec(id, eid))) return fail(c, 404, 'NotFound', `no exec ${eid}`);
    const from = { stdout: offset(c, 'stdout'), stderr: offset(c, 'stderr') };
    const abort = new AbortController();
    c.req.raw.signal.addEventListener('abort', () => abort.abort());
    async function* frames(): AsyncGenerator<Uint8Array> {
      try {
        for await (const piece of runtime.output(id, eid, from, abort.signal)) {
          yield 'end' in piece
            ? encodeFrame({ end: piece.end })
            : encodeFrame({ stream: piece.stream, offset: piece.offset }, piece.data);
        }
      } finally {
        abort.abort();
      }
    }
    return streamed(frames(), 'application/octet-stream');
  });
  app.post('/sandboxes/:id/execs/:eid/stdin', async (c) => {
    const data = Buffer.from(await c.req.arrayBuffer());
    await runtime.writeStdin(c.req.param('id'), c.req.param('eid'), data, c.req.query('end') === '1');
    return c.body(null, 204);
  });
  app.post('/sandboxes/:id/execs/:eid/signal', async (c) => {
    const { signal } = SignalSchema.parse(await c.req.json());
    await runtime.signal(c.req.param('id'), c.req.param('eid'), signal as NodeJS.Signals);
    return c.body(null, 204);
  });

  app.post('/sandboxes/:id/execs/:eid/resize', async (c) => {
    const { rows, cols } = ResizeSchema.parse(await c.req.json());
    await runtime.resize(c.req.param('id'), c.req.param('eid'), rows, cols);
    return c.body(null, 204);
  });

  app.put('/sandboxes/:id/files', async (c) => {
    const info = await runtime.writeFile(c.req.param('id'), query(c, 'path'), requestBody(c), {
      mode: Number(c.req.query('mode') ?? '420'),
      createParents: c.req.query('createParents') !== '0',
    });
    return c.json(info);
  });
  app.get('/sandboxes/:id/files', async (c) =>
    streamAnswer(c, await runtime.readFile(c.req.param('id'), query(c, 'path')), 200, {
      'content-type': 'application/octet-stream',
    }),
  );
  app.get('/sandboxes/:id/files/stat', async (c) => c.json(await runtime.stat(c.req.param('id'), query(c, 'path'))));
  app.get('/sandboxes/:id/files/list', async (c) => c.json(await runtime.list(c.req.param('id'), query(c, 'path'))));
  app.delete('/sandboxes/:id/files', async (c) => {
    await runtime.remove(c.req.param('id'), query(c, 'path'), c.req.query('recursive') === '1');
    return c.body(null, 204);
  });
  app.post('/sandboxes/:id/files/mkdir', async (c) => {
    const { path, parents, mode } = MkdirSchema.parse(await c.req.json());
    await runtime.mkdir(c.req.param('id'), path, { parents, mode });
    return c.body(null, 204);
  });
  return app;
}

/** Serves `runtime` on a unix socket only root can use; resolves once it listens. */
export async function serveRuntimeOnSocket(runtime: SandboxRuntime, socketPath: string): Promise<Server> {
  rmSync(socketPath, { force: true });
  const server = createAdaptorServer({ fetch: runtimeApp(runtime).fetch }) as Server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      server.off('error', reject);
      resolve();
    });
  });
  chmodSync(socketPath, 0o600);
  return server;
}
