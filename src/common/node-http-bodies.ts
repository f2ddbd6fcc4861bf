/**
 * @module common/node-http-bodies
 * Raw byte bodies of Hono routes as Node streams, without the web-stream
 * round trip when @hono/node-server serves them.
 *
 * Why: the adapter hands a route its request body as a web ReadableStream
 * made by Readable.toWeb, which copies every piece it passes on, and a route
 * that streams bytes on converts it back to a Node stream; a streamed answer
 * goes the same way in reverse. For bodies of megabytes that costs more CPU
 * (and garbage) than moving the bytes. Under the adapter these read the
 * IncomingMessage and write the ServerResponse themselves; elsewhere
 * (`app.request` in tests) they fall back to the web streams.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { PassThrough, Readable } from 'node:stream';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Context } from 'hono';

/** What @hono/node-server puts in a context's env. */
interface NodeBindings {
  incoming?: IncomingMessage;
  outgoing?: ServerResponse;
}

function bindings(c: Context): NodeBindings {
  return (c.env ?? {}) as NodeBindings;
}

/**
 * The request's body as a Node stream. Destroying it (a consumer that gives
 * up early) leaves the connection alone, so an error answer still reaches the
 * client; the adapter drains what the client still sends once it has answered.
 * A client that hangs up before the end makes it fail.
 */
export function requestBody(c: Context): Readable {
  const { incoming } = bindings(c);
  // Only a body nobody has started to read (nor wrapped in a web stream that reads it) is taken from the socket.
  if (!incoming || incoming.readableDidRead || incoming.listenerCount('data') > 0) {
    const web = c.req.raw.body;
    return web ? Readable.fromWeb(web as never) : Readable.from([]);
  }
  const body = new PassThrough();
  incoming.pipe(body);
  // An IncomingMessage fails only when its client goes away ("aborted", ECONNRESET): say so.
  const cut = (cause?: Error) =>
    body.destroy(new Error('the client closed the connection before the whole body arrived', { cause }));
  incoming.once('error', cut);
  incoming.once('close', () => {
    if (!incoming.readableEnded) cut();
  });
  body.once('close', () => incoming.unpipe(body));
  return body;
}

/**
 * A Node stream as the web stream a Response takes. Built by hand rather
 * than with Readable.toWeb: when a client goes away, toWeb destroys the
 * source with an AbortError that then surfaces as an unhandled rejection in
 * the HTTP adapter; here a cancel simply ends the source.
 */
export function webStream(body: AsyncIterable<Uint8Array> | Readable): ReadableStream<Uint8Array> {
  const node = body instanceof Readable ? body : Readable.from(body, { objectMode: false });
  const it = node[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
  let cancelled = false;
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const r = await it.next();
        if (cancelled) return;
        if (r.done) controller.close();
        else controller.enqueue(r.value);
      },
      cancel() {
        cancelled = true;
        node.destroy();
      },
    },
    { highWaterMark: 0 },
  );
}

/**
 * Answers with `body` streamed. Under the adapter the bytes are piped into
 * the socket and the promise settles once they are sent (or the client went
 * away, which is not an error); `headers` are all the answer has.
 */
export async function streamAnswer(
  c: Context,
  body: AsyncIterable<Uint8Array> | Readable,
  status: number,
  headers: Record<string, string>,
): Promise<Response> {
  const { outgoing } = bindings(c);
  if (!outgoing) return new Response(webStream(body), { status, headers });
  const stream = body instanceof Readable ? body : Readable.from(body, { objectMode: false });
  outgoing.writeHead(status, headers);
  // Not pipeline(): it destroys the source with an error when the client goes away, and a source that feeds on
  // another stream then throws that error where nobody listens. A client gone simply ends the source.
  await new Promise<void>((resolve) => {
    outgoing.once('finish', resolve);
    outgoing.once('close', () => {
      if (!outgoing.writableFinished) stream.destroy();
      resolve();
    });
    stream.once('error', (e) => outgoing.destroy(e));
    stream.pipe(outgoing);
  });
  return RESPONSE_ALREADY_SENT;
}
