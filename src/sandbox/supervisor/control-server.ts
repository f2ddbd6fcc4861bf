/**
 * @module sandbox/supervisor/control-server
 * The supervisor's control socket: HTTP over a unix socket only host root
 * can reach (0600, in a 0700 directory), spoken by the host daemon
 * (daemon/supervisor-client). Nothing inside the sandbox can reach it.
 *
 * Errors answer `{ error: { code, message } }`: a Stowage error code
 * (NotFound, Conflict, InvalidArgument) or, for a file operation the agent
 * refused, its errno name (ENOENT, EISDIR, ...), which the client turns back
 * into the same error.
 *
 * Exec output is a stream of frames (protocol/frames): `{ stream, offset }`
 * with the bytes as the body, then `{ end: record }`.
 */
import { chmodSync, rmSync } from 'node:fs';
import type { Server } from 'node:http';
import { Readable } from 'node:stream';
import { createAdaptorServer } from '@hono/node-server';
import { Hono, type Context } from 'hono';
import { z } from 'zod';
import { isStowageError } from '@stowage/sdk/common/errors.js';
import { AgentCallError } from '../protocol/agent-client.js';
import { encodeFrame } from '../protocol/frames.js';
import { execOutput } from './exec-records.js';
import type { Supervisor } from './supervisor.js';

const ExecSchema = z
  .object({
    argv: z.array(z.string()).min(1),
    cwd: z.string().optional(),
    env: z.record(z.string(), z.string()).optional(),
    background: z.boolean().optional(),
    timeoutMs: z.number().int().nonnegative().optional(),
    stdin: z.boolean().optional(),
  })
  .strict();
const SignalSchema = z.object({ signal: z.string().regex(/^SIG[A-Z0-9]+$/) });
const MkdirSchema = z.object({ path: z.string(), parents: z.boolean(), mode: z.number().int() });
const TerminateSchema = z.object({ reason: z.string().max(1000) });

function fail(c: Context, status: 400 | 404 | 409 | 500, code: string, message: string): Response {
  return c.json({ error: { code, message } }, status);
}

function errorAnswer(c: Context, e: unknown): Response {
  if (e instanceof AgentCallError) return fail(c, 400, e.code, e.message);
  if (e instanceof z.ZodError) return fail(c, 400, 'InvalidArgument', e.issues.map((i) => i.message).join('; '));
  if (isStowageError(e))
    return fail(c, e.code === 'NotFound' ? 404 : e.code === 'Conflict' ? 409 : 400, e.code, e.message);
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

/** The control API of one supervisor, as a Hono app. */
export function controlApp(sup: Supervisor): Hono {
  const app = new Hono();
  app.onError((e, c) => errorAnswer(c, e));
  // Calls that need the sandbox running answer 409 once it is not (the supervisor's getters throw Conflict).
  app.get('/status', (c) => c.json({ id: sup.id, running: sup.running, pid: process.pid }));
  app.get('/ended', async (c) => c.json(await sup.ended));
  app.post('/terminate', async (c) => {
    const { reason } = TerminateSchema.parse(await c.req.json());
    return c.json(await sup.terminate(reason));
  });

  app.post('/execs', async (c) => c.json(await sup.execs.exec(ExecSchema.parse(await c.req.json())), 201));
  app.get('/execs', (c) => c.json({ execs: sup.records.list() }));
  app.get('/execs/:eid', (c) => {
    const record = sup.records.get(c.req.param('eid'));
    return record ? c.json(record) : fail(c, 404, 'NotFound', `no exec ${c.req.param('eid')}`);
  });
  app.get('/execs/:eid/output', (c) => {
    const eid = c.req.param('eid');
    if (!sup.records.get(eid)) return fail(c, 404, 'NotFound', `no exec ${eid}`);
    const from = { stdout: offset(c, 'stdout'), stderr: offset(c, 'stderr') };
    const abort = new AbortController();
    c.req.raw.signal.addEventListener('abort', () => abort.abort());
    const frames = async function* () {
      try {
        for await (const piece of execOutput(sup.records, eid, from, abort.signal)) {
          yield 'end' in piece
            ? encodeFrame({ end: piece.end })
            : encodeFrame({ stream: piece.stream, offset: piece.offset }, piece.data);
        }
      } finally {
        abort.abort();
      }
    };
    return new Response(Readable.toWeb(Readable.from(frames())) as ReadableStream, {
      headers: { 'content-type': 'application/octet-stream' },
    });
  });
  app.post('/execs/:eid/stdin', async (c) => {
    const eid = c.req.param('eid');
    const data = Buffer.from(await c.req.arrayBuffer());
    if (data.length > 0) sup.execs.writeStdin(eid, data);
    if (c.req.query('end') === '1') sup.execs.endStdin(eid);
    return c.body(null, 204);
  });
  app.post('/execs/:eid/signal', async (c) => {
    const { signal } = SignalSchema.parse(await c.req.json());
    const eid = c.req.param('eid');
    if (!sup.execs.signal(eid, signal as NodeJS.Signals)) return fail(c, 409, 'Conflict', `exec ${eid} is not running`);
    return c.body(null, 204);
  });

  app.put('/files', async (c) => {
    const mode = Number(c.req.query('mode') ?? '420');
    const body = c.req.raw.body ? Readable.fromWeb(c.req.raw.body as never) : Readable.from([]);
    const { size } = await sup.agent.writeFile(query(c, 'path'), body, {
      mode,
      createParents: c.req.query('createParents') !== '0',
    });
    return c.json({ size });
  });
  app.get('/files', async (c) => {
    const data = await sup.agent.readFile(query(c, 'path'));
    return c.body(new Uint8Array(data), 200, {
      'content-type': 'application/octet-stream',
    });
  });
  app.get('/files/stat', async (c) => c.json(await sup.agent.stat(query(c, 'path'))));
  app.get('/files/list', async (c) => c.json(await sup.agent.list(query(c, 'path'))));
  app.delete('/files', async (c) => {
    await sup.agent.remove(query(c, 'path'), c.req.query('recursive') === '1');
    return c.body(null, 204);
  });
  app.post('/files/mkdir', async (c) => {
    const { path, parents, mode } = MkdirSchema.parse(await c.req.json());
    await sup.agent.mkdir(path, { parents, mode });
    return c.body(null, 204);
  });
  return app;
}

/** Serves the control API on a unix socket only root can use; resolves once it listens. */
export async function serveControl(sup: Supervisor, socketPath: string): Promise<Server> {
  rmSync(socketPath, { force: true });
  const server = createAdaptorServer({ fetch: controlApp(sup).fetch }) as Server;
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
