/**
 * @module mount/remote.test
 * The chunk fetch's re-sign policy over real HTTP on loopback: a signed GET
 * refused as if its signature had expired is planned (signed) again once and
 * then succeeds; a second refusal, and a refusal of the plan request itself
 * (a revoked token), are not retried.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, beforeEach, describe, it } from 'node:test';
import { Stowage } from '@stowage/sdk/client/http-client.js';
import { HttpRemote } from './remote.js';

const bytes = Buffer.from('chunk bytes of a base file');
const hash = createHash('sha256').update(bytes).digest('hex');
const forbidden = JSON.stringify({ error: { code: 'Forbidden', message: 'signature expired' } });

describe('HttpRemote.fetchChunk re-signing', () => {
  let server: Server;
  let url: string;
  /** What the fake server saw, and how many of the next plan / GET requests it refuses. */
  const state = { plans: 0, gets: 0, refusePlans: 0, refuseGets: 0 };

  before(async () => {
    server = createServer((req, res) => {
      const u = new URL(req.url ?? '/', 'http://x');
      if (u.pathname === '/v1/volumes/v/read') {
        state.plans++;
        if (state.refusePlans-- > 0)
          return void res.writeHead(403, { 'content-type': 'application/json' }).end(forbidden);
        const plan = {
          commit: 'c',
          entry: {},
          chunks: [
            {
              hash,
              size: bytes.length,
              request: {
                method: 'GET',
                url: `/blob?sig=${state.plans}`,
                headers: {},
                expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
              },
            },
          ],
        };
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(plan));
      }
      if (u.pathname === '/blob') {
        state.gets++;
        if (state.refuseGets-- > 0)
          return void res.writeHead(403, { 'content-type': 'application/json' }).end(forbidden);
        return void res.writeHead(200, { 'content-length': bytes.length }).end(bytes);
      }
      res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => Object.assign(state, { plans: 0, gets: 0, refusePlans: 0, refuseGets: 0 }));

  const remote = () => new HttpRemote(new Stowage({ url, token: 'scoped' }), 'v', 1 << 20);

  it('plans again once when the signed GET is refused, then reads the chunk', async () => {
    state.refuseGets = 1;
    const got = await remote().fetchChunk('c', '/f', 0, hash, bytes.length);
    assert.deepEqual(Buffer.from(got), bytes);
    assert.deepEqual({ plans: state.plans, gets: state.gets }, { plans: 2, gets: 2 });
  });

  it('gives up after one re-sign', async () => {
    state.refuseGets = 5;
    await assert.rejects(remote().fetchChunk('c', '/f', 0, hash, bytes.length), { code: 'Forbidden' });
    assert.deepEqual({ plans: state.plans, gets: state.gets }, { plans: 2, gets: 2 });
  });

  it('does not retry a refused plan request (a revoked token stays refused)', async () => {
    state.refusePlans = 5;
    await assert.rejects(remote().fetchChunk('c', '/f', 0, hash, bytes.length), { code: 'Forbidden' });
    assert.deepEqual({ plans: state.plans, gets: state.gets }, { plans: 1, gets: 0 });
  });
});
