import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import { requestBody, streamAnswer } from './node-http-bodies.js';

const MiB = 1024 * 1024;

/** What the routes below saw, for the tests to look at. */
const seen: { bodyError?: string; sourceClosed?: boolean; sourceError?: string } = {};

function app(): Hono {
  const a = new Hono();
  a.onError((e, c) => c.text(e.message, 500));
  // Counts the body's bytes.
  a.put('/count', async (c) => {
    let bytes = 0;
    try {
      for await (const chunk of requestBody(c)) bytes += (chunk as Buffer).length;
    } catch (e) {
      seen.bodyError = (e as Error).message;
      throw e;
    }
    return c.json({ bytes });
  });
  // Gives up after 1 MiB and answers 413 while the client is still sending.
  a.put('/bounded', async (c) => {
    let bytes = 0;
    for await (const chunk of requestBody(c)) {
      bytes += (chunk as Buffer).length;
      if (bytes > MiB) break;
    }
    c.header('Connection', 'close');
    return c.json({ error: 'too large' }, 413);
  });
  // 64 MiB, made as it is read; records how it ended.
  a.get('/big', (c) => {
    let sent = 0;
    const source = new Readable({
      read() {
        sent += MiB;
        this.push(sent > 64 * MiB ? null : Buffer.alloc(MiB, 7));
      },
    });
    source.on('close', () => {
      seen.sourceClosed = true;
    });
    source.on('error', (e) => {
      seen.sourceError = e.message;
    });
    return streamAnswer(c, source, 200, { 'content-type': 'application/octet-stream' });
  });
  return a;
}

describe('raw bodies of Hono routes under @hono/node-server', () => {
  let server: Server;
  let port: number;
  before(async () => {
    server = createAdaptorServer({ fetch: app().fetch }) as Server;
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  /** One call; the status and body text, or the error of a connection that broke. */
  function call(method: string, path: string, body?: (req: ReturnType<typeof request>) => void) {
    return new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port, method, path }, (res) => {
        let text = '';
        res.setEncoding('latin1');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
        res.on('error', reject);
      });
      req.on('error', reject);
      if (body) body(req);
      else req.end();
    });
  }

  it('reads a body from the socket, with or without a declared length', async () => {
    const withLength = await call('PUT', '/count', (req) => req.end(Buffer.alloc(3 * MiB + 5)));
    assert.deepEqual(JSON.parse(withLength.text), { bytes: 3 * MiB + 5 });
    const chunked = await call('PUT', '/count', (req) => {
      for (let i = 0; i < 10; i++) req.write(Buffer.alloc(100_000));
      req.end();
    });
    assert.deepEqual(JSON.parse(chunked.text), { bytes: 1_000_000 });
    assert.deepEqual(JSON.parse((await call('PUT', '/count', (req) => req.end())).text), { bytes: 0 });
  });

  it('a route that gives up early still answers, and the server goes on', async () => {
    const r = await call('PUT', '/bounded', (req) => {
      req.on('error', () => undefined); // the server may close before the client has sent everything
      let left = 16;
      const more = () => {
        while (left > 0) {
          left--;
          if (!req.write(Buffer.alloc(MiB))) return void req.once('drain', more);
        }
        req.end();
      };
      more();
    });
    assert.equal(r.status, 413);
    assert.match(r.text, /too large/);
    assert.equal((await call('PUT', '/count', (req) => req.end('abc'))).text, '{"bytes":3}');
  });

  it('a client that hangs up mid-body fails the read with a clear error', async () => {
    delete seen.bodyError;
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, method: 'PUT', path: '/count' });
      req.on('error', () => resolve());
      req.write(Buffer.alloc(256 * 1024), () => setTimeout(() => req.destroy(), 50));
    });
    for (let i = 0; i < 100 && seen.bodyError === undefined; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(seen.bodyError, 'the client closed the connection before the whole body arrived');
    assert.equal((await call('PUT', '/count', (req) => req.end('ok'))).text, '{"bytes":2}');
  });

  it('streams an answer into the socket; a client gone mid-way ends the source without an error', async () => {
    const whole = await call('GET', '/big');
    assert.equal(whole.status, 200);
    assert.equal(whole.text.length, 64 * MiB);
    delete seen.sourceClosed;
    delete seen.sourceError;
    await new Promise<void>((resolve) => {
      const req = request({ host: '127.0.0.1', port, path: '/big' }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      req.end();
    });
    for (let i = 0; i < 100 && !seen.sourceClosed; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(seen.sourceClosed, true, 'the source was ended');
    assert.equal(seen.sourceError, undefined);
  });
});

describe('raw bodies of Hono routes without the Node adapter (app.request)', () => {
  it('falls back to the web streams', async () => {
    const a = app();
    const put = await a.request('/count', { method: 'PUT', body: new Uint8Array(12345) });
    assert.deepEqual(await put.json(), { bytes: 12345 });
    const get = await a.request('/big');
    assert.equal((await get.arrayBuffer()).byteLength, 64 * MiB);
  });
});
