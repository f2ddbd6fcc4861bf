/**
 * @module test/helpers/free-port
 * A loopback port nothing listens on right now, for servers a test or bench
 * starts itself (PostgreSQL, moto, `stowage serve`) and for a port a test
 * needs closed. Another process could take it before it is used; the callers
 * start their server at once.
 */
import { createServer } from 'node:net';
import { once } from 'node:events';

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
