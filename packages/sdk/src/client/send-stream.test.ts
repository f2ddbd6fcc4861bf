/**
 * @module client/send-stream.test
 * `Stowage.sendStream`, the streamed upload over node:http, against a real
 * loopback server: the body arrives whole with the token, an early refusal
 * becomes its StowageError and stops the sending, and a server that is not
 * there, one that answers something that is not JSON, a body that breaks
 * and the caller's own abort each fail clearly.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { InternalError, PayloadTooLargeError, UnavailableError } from '../common/errors.js';
import { Stowage } from './http-client.js';

const MiB = 1024 * 1024;

/** `n` MiB made as they are read; `pulled()` says how many were taken. */
function source(n: number): { stream: Readable; pulled: () => number } {
  let made = 0;
  const stream = new Readable({
    read() {
      this.push(made < n ? Buffer.alloc(MiB, made++ % 256) : null);
    },
  });
  return { stream, pulled: () => made };
}

function route(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  if (url.pathname === '/count') {
    let bytes = 0;
    req.on('data', (d: Buffer) => {
      bytes += d.length;
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ bytes, auth: req.headers.authorization, path: url.searchParams.get('path') }));
    });
    return;
  }
  if (url.pathname === '/refuse') {
    res.writeHead(413, { 'content-type': 'application/json', connection: 'close' });
    res.end(JSON.stringify({ error: { code: 'PayloadTooLarge', message: 'at most 1 byte' } }));
    return;
  }
  if (url.pathname === '/html') {
    req.resume();
    req.on('end', () => res.end('<html>'));
    return;
  }
  // /slow: never answers
  req.resume();
}

describe('Stowage.sendStream', () => {
  let server: Server;
  let client: Stowage;
  before(async () => {
    server = createServer(route);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    client = new Stowage({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: 'stw_test' });
  });
  after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });

  it('streams the whole body with the token and the query, and returns the decoded answer', async () => {
    const answer = await client.sendStream<{ bytes: number; auth: string; path: string }>(
      'PUT',
      '/count',
      source(20).stream,
      { query: { path: '/work/a b' } },
    );
    assert.deepEqual(answer, { bytes: 20 * MiB, auth: 'Bearer stw_test', path: '/work/a b' });
  });

  it('an early refusal is its StowageError, and the rest of the body is not read', async () => {
    const body = source(1000);
    await assert.rejects(
      client.sendStream('PUT', '/refuse', body.stream),
      (e: Error) => e instanceof PayloadTooLargeError && e.message === 'at most 1 byte',
    );
    assert.ok(body.pulled() < 1000, `read ${body.pulled()} MiB of 1000`);
    assert.equal(body.stream.destroyed, true);
  });

  it('an answer that is not JSON, a server that is not there, a broken body and an abort fail clearly', async () => {
    await assert.rejects(client.sendStream('PUT', '/html', source(1).stream), InternalError);
    const gone = new Stowage({ url: 'http://127.0.0.1:1', token: 'stw_test' });
    await assert.rejects(
      gone.sendStream('PUT', '/count', source(1).stream),
      (e: Error) =>
        e instanceof UnavailableError &&
        /cannot reach Stowage at http:\/\/127\.0\.0\.1:1: .*ECONNREFUSED/.test(e.message),
    );
    const broken = new Readable({
      read() {
        this.destroy(new Error('disk read failed'));
      },
    });
    await assert.rejects(client.sendStream('PUT', '/count', broken), /^Error: disk read failed$/);
    const abort = new AbortController();
    const pending = client.sendStream('PUT', '/slow', source(2).stream, { signal: abort.signal });
    setTimeout(() => abort.abort(), 50);
    await assert.rejects(pending, (e: Error) => e.name === 'AbortError');
  });
});
