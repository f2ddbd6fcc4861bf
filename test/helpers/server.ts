/**
 * @module test/helpers/server
 * A real Stowage server for end-to-end tests: `startServer` on a fresh temp
 * data dir (real SQLite file, real blob directory) listening on a free
 * loopback port, with the admin token of its "default" tenant.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VolumeEngine } from '../../src/engine/types.js';
import { startServer, type StartServerOptions } from '../../src/server/serve.js';

/** A running test server and how to reach it. */
export interface TestServer {
  /** Base URL, e.g. http://127.0.0.1:41234 (no trailing slash). */
  url: string;
  /** Admin token of the "default" tenant. */
  token: string;
  /** The temp data dir (removed by close). */
  dataDir: string;
  /** The server's engine, for setup a test cannot do over HTTP (e.g. createTenant). */
  engine: VolumeEngine;
  /** Stops the server and deletes the data dir. */
  close(): Promise<void>;
}

/**
 * Starts a server on a temp data dir and port 0.
 *
 * @example
 * const srv = await startTestServer();
 * const res = await fetch(`${srv.url}/v1/volumes`, { headers: { authorization: `Bearer ${srv.token}` } });
 * await srv.close();
 */
export async function startTestServer(
  options: Pick<StartServerOptions, 'limits' | 'publicUrl' | 'attachmentLease' | 'sandboxRuntime'> = {},
): Promise<TestServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'stowage-test-'));
  try {
    const server = await startServer({ dataDir, port: 0, host: '127.0.0.1', log: () => undefined, ...options });
    if (server.adminToken === undefined) throw new Error('a fresh data dir must yield an admin token');
    return {
      url: server.url,
      token: server.adminToken,
      dataDir,
      engine: server.engine,
      close: async () => {
        await server.close();
        await rm(dataDir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dataDir, { recursive: true, force: true });
    throw err;
  }
}
