/**
 * @module server/routes/sandboxes-routes
 * Sandboxes and the commands run in them (execs): create, list, get,
 * terminate; start an exec, list and get them, stream an exec's output as
 * server-sent events from byte offsets (re-attach with the offsets last
 * seen), write its stdin (raw bytes), signal it. The rules live in
 * engine/sandboxes; files are in sandbox-files-routes.
 */
import { createRoute, z } from '@hono/zod-openapi';
import { streamSSE } from 'hono/streaming';
import type * as wire from '@stowage/sdk/api/wire.js';
import { PayloadTooLargeError } from '@stowage/sdk/common/errors.js';
import { MiB } from '@stowage/sdk/common/sizes.js';
import { toErrorResponse } from '../error-map.js';
import { presentExec, presentSandbox } from '../presenters.js';
import { errorAnswer, jsonAnswer, jsonBody, type ApiApp, type RouteDeps } from '../route-helpers.js';
import {
  CreateSandboxRequestSchema,
  ExecListSchema,
  ExecParamsSchema,
  ExecRequestSchema,
  ExecSchema,
  OutputQuerySchema,
  SandboxesQuerySchema,
  SandboxListSchema,
  SandboxParamsSchema,
  SandboxSchema,
  ResizeExecRequestSchema,
  SignalExecRequestSchema,
  StdinQuerySchema,
} from '../schemas/sandbox-schemas.js';

const tags = ['sandboxes'];
/** Most stdin bytes one request carries (send more in several). */
export const MAX_STDIN_BYTES = 8 * MiB;
/** Output bytes per server-sent event (base64 makes them a third larger). */
const OUTPUT_EVENT_BYTES = 48 * 1024;

/** Routes whose bodies are raw bytes: the JSON body limit and strict JSON decoding leave them alone. */
const RAW_BODY_ROUTES: Array<[method: string, path: RegExp]> = [
  ['PUT', /^\/v1\/sandboxes\/[^/]+\/files$/],
  ['POST', /^\/v1\/sandboxes\/[^/]+\/execs\/[^/]+\/stdin$/],
];

/** Whether a request's body is raw bytes for a sandbox (a file written, stdin), bounded by its own route. */
export function isSandboxRawBody(method: string, path: string): boolean {
  return RAW_BODY_ROUTES.some(([m, re]) => m === method && re.test(path));
}

/** Error answers of every sandbox route. */
export const sandboxErrors = {
  400: errorAnswer('InvalidArgument: a field, id or path is malformed'),
  401: errorAnswer('Unauthenticated: missing, unknown, revoked or expired bearer token'),
  403: errorAnswer(
    'Forbidden or ReadOnly: only tenant tokens see sandboxes, only admin tokens run them (or the sandbox refused a path)',
  ),
  404: errorAnswer("NotFound: no such sandbox, exec or file (another tenant's sandbox is not visible)"),
} as const;

/** Error answers of routes that ask the sandbox's runtime. */
export const runtimeErrors = {
  ...sandboxErrors,
  409: errorAnswer('Conflict: the sandbox is not running (or the file exists, or a directory is not empty)'),
  503: errorAnswer(
    'Unavailable: this server runs no sandbox host, or the host cannot run sandboxes (the message says why)',
  ),
} as const;

const createSandbox = createRoute({
  operationId: 'createSandbox',
  method: 'post',
  path: '/v1/sandboxes',
  tags,
  summary: 'Create a sandbox with volumes mounted; answers once it runs',
  request: { body: jsonBody(CreateSandboxRequestSchema) },
  responses: {
    201: jsonAnswer(SandboxSchema, 'The running sandbox'),
    ...runtimeErrors,
    409: errorAnswer("Conflict: a volume's access mode refuses this mount (the message names the holder)"),
  },
});

const listSandboxes = createRoute({
  operationId: 'listSandboxes',
  method: 'get',
  path: '/v1/sandboxes',
  tags,
  summary: "The tenant's sandboxes, newest first (starting and running only unless all=true)",
  request: { query: SandboxesQuerySchema },
  responses: { 200: jsonAnswer(SandboxListSchema, 'The sandboxes'), ...sandboxErrors },
});

const getSandbox = createRoute({
  operationId: 'getSandbox',
  method: 'get',
  path: '/v1/sandboxes/{id}',
  tags,
  summary: 'One sandbox',
  request: { params: SandboxParamsSchema },
  responses: { 200: jsonAnswer(SandboxSchema, 'The sandbox'), ...sandboxErrors },
});

const terminateSandbox = createRoute({
  operationId: 'terminateSandbox',
  method: 'post',
  path: '/v1/sandboxes/{id}/terminate',
  tags,
  summary: 'Stop every process, release the attachments, remove the state disk (volumes stay); idempotent',
  request: { params: SandboxParamsSchema },
  responses: { 200: jsonAnswer(SandboxSchema, 'The terminated sandbox'), ...runtimeErrors },
});

const createExec = createRoute({
  operationId: 'createExec',
  method: 'post',
  path: '/v1/sandboxes/{id}/execs',
  tags,
  summary: 'Run a command (argv as is, or command through /bin/sh -c); answers its durable record',
  request: { params: SandboxParamsSchema, body: jsonBody(ExecRequestSchema) },
  responses: { 201: jsonAnswer(ExecSchema, 'The exec, running'), ...runtimeErrors },
});

const listExecs = createRoute({
  operationId: 'listExecs',
  method: 'get',
  path: '/v1/sandboxes/{id}/execs',
  tags,
  summary: "The sandbox's execs, oldest first",
  request: { params: SandboxParamsSchema },
  responses: { 200: jsonAnswer(ExecListSchema, 'The execs'), ...runtimeErrors },
});

const getExec = createRoute({
  operationId: 'getExec',
  method: 'get',
  path: '/v1/sandboxes/{id}/execs/{execId}',
  tags,
  summary: 'One exec: status, exit code or signal, bytes of output kept',
  request: { params: ExecParamsSchema },
  responses: { 200: jsonAnswer(ExecSchema, 'The exec'), ...runtimeErrors },
});

const execOutput = createRoute({
  operationId: 'streamExecOutput',
  method: 'get',
  path: '/v1/sandboxes/{id}/execs/{execId}/output',
  tags,
  summary:
    'Server-sent events: `output` (ExecOutputEvent) from the byte offsets given as output arrives, then one `exit` (Exec)',
  request: { params: ExecParamsSchema, query: OutputQuerySchema },
  responses: {
    200: {
      description: 'text/event-stream of `output` events, then `exit`; an `error` event if the stream breaks',
      content: { 'text/event-stream': { schema: z.string() } },
    },
    ...runtimeErrors,
  },
});

const writeStdin = createRoute({
  operationId: 'writeExecStdin',
  method: 'post',
  path: '/v1/sandboxes/{id}/execs/{execId}/stdin',
  tags,
  summary: `Write the raw body to the exec's stdin (at most ${MAX_STDIN_BYTES} bytes a request); end=true closes it`,
  request: {
    params: ExecParamsSchema,
    query: StdinQuerySchema,
    body: { content: { 'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) } } },
  },
  responses: {
    204: { description: 'Written' },
    ...runtimeErrors,
    413: errorAnswer(`PayloadTooLarge: more than ${MAX_STDIN_BYTES} bytes in one request`),
  },
});

const signalExec = createRoute({
  operationId: 'signalExec',
  method: 'post',
  path: '/v1/sandboxes/{id}/execs/{execId}/signal',
  tags,
  summary: "Send a signal to the exec's process group",
  request: { params: ExecParamsSchema, body: jsonBody(SignalExecRequestSchema) },
  responses: { 204: { description: 'Sent' }, ...runtimeErrors },
});

const resizeExec = createRoute({
  operationId: 'resizeExec',
  method: 'post',
  path: '/v1/sandboxes/{id}/execs/{execId}/resize',
  tags,
  summary: "Resize a terminal exec's pseudo-terminal (the command gets SIGWINCH)",
  request: { params: ExecParamsSchema, body: jsonBody(ResizeExecRequestSchema) },
  responses: { 204: { description: 'Resized' }, ...runtimeErrors },
});

/** Registers the sandbox and exec routes. */
export function registerSandboxesRoutes(app: ApiApp, { engine }: RouteDeps): void {
  app.openapi(createSandbox, async (c) => {
    const sb = await engine.createSandbox(c.get('actor'), c.req.valid('json'));
    return c.json(presentSandbox(sb), 201);
  });

  app.openapi(listSandboxes, async (c) => {
    const list = await engine.listSandboxes(c.get('actor'), { all: c.req.valid('query').all });
    return c.json({ sandboxes: list.map(presentSandbox) }, 200);
  });

  app.openapi(getSandbox, async (c) => {
    return c.json(presentSandbox(await engine.getSandbox(c.get('actor'), c.req.valid('param').id)), 200);
  });

  app.openapi(terminateSandbox, async (c) => {
    return c.json(presentSandbox(await engine.terminateSandbox(c.get('actor'), c.req.valid('param').id)), 200);
  });

  app.openapi(createExec, async (c) => {
    const { id } = c.req.valid('param');
    const e = await engine.execSandbox(c.get('actor'), id, c.req.valid('json'));
    return c.json(presentExec(id, e), 201);
  });

  app.openapi(listExecs, async (c) => {
    const { id } = c.req.valid('param');
    const list = await engine.listExecs(c.get('actor'), id);
    return c.json({ execs: list.map((e) => presentExec(id, e)) }, 200);
  });

  app.openapi(getExec, async (c) => {
    const { id, execId } = c.req.valid('param');
    return c.json(presentExec(id, await engine.getExec(c.get('actor'), id, execId)), 200);
  });

  app.openapi(execOutput, async (c) => {
    const { id, execId } = c.req.valid('param');
    const q = c.req.valid('query');
    // Stops the runtime's reading when the client goes away.
    const abort = new AbortController();
    // Checked before the stream starts, so an unknown sandbox or exec is a plain 404.
    const events = await engine.execOutput(
      c.get('actor'),
      id,
      execId,
      { stdout: q.stdout ?? 0, stderr: q.stderr ?? 0 },
      abort.signal,
    );
    return streamSSE(
      c,
      async (stream) => {
        stream.onAbort(() => abort.abort());
        try {
          for await (const ev of events) {
            if (stream.aborted || stream.closed) break;
            if ('end' in ev) {
              await stream.writeSSE({ event: 'exit', data: JSON.stringify(presentExec(id, ev.end)) });
              break;
            }
            for (let at = 0; at < ev.data.length; at += OUTPUT_EVENT_BYTES) {
              const piece = ev.data.subarray(at, at + OUTPUT_EVENT_BYTES);
              const out: wire.ExecOutputEvent = {
                stream: ev.stream,
                offset: ev.offset + at,
                data: piece.toString('base64'),
              };
              await stream.writeSSE({ event: 'output', data: JSON.stringify(out) });
            }
          }
        } finally {
          abort.abort();
        }
      },
      async (err, stream) => {
        // After the first byte the status is sent: report the error as an event, then end.
        const { body } = toErrorResponse(err);
        await stream.writeSSE({ event: 'error', data: JSON.stringify(body) });
      },
    ) as never;
  });

  app.openapi(writeStdin, async (c) => {
    const { id, execId } = c.req.valid('param');
    const declared = Number(c.req.header('content-length') ?? 0);
    if (declared > MAX_STDIN_BYTES) {
      // The body is not read: the connection cannot carry another request after it.
      c.header('Connection', 'close');
      throw stdinTooLarge();
    }
    // Counted as it arrives: a body without a length is cut at the bound, not buffered whole.
    const chunks: Uint8Array[] = [];
    let size = 0;
    for await (const chunk of (c.req.raw.body ?? []) as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > MAX_STDIN_BYTES) {
        c.header('Connection', 'close');
        throw stdinTooLarge();
      }
      chunks.push(chunk);
    }
    const bytes = Buffer.concat(chunks);
    await engine.writeExecStdin(c.get('actor'), id, execId, bytes, c.req.valid('query').end);
    return c.body(null, 204);
  });

  app.openapi(signalExec, async (c) => {
    const { id, execId } = c.req.valid('param');
    await engine.signalExec(c.get('actor'), id, execId, c.req.valid('json').signal);
    return c.body(null, 204);
  });

  app.openapi(resizeExec, async (c) => {
    const { id, execId } = c.req.valid('param');
    const { rows, cols } = c.req.valid('json');
    await engine.resizeExec(c.get('actor'), id, execId, rows, cols);
    return c.body(null, 204);
  });
}

function stdinTooLarge(): PayloadTooLargeError {
  return new PayloadTooLargeError(
    `stdin bodies are at most ${MAX_STDIN_BYTES} bytes a request; send the rest in further requests`,
    { details: { limit: MAX_STDIN_BYTES } },
  );
}
