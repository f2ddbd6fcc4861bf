/**
 * @module sandbox/daemon/host-server
 * A sandbox host on its own machine (`stowage sandbox-host`): the host
 * daemon of this machine served over HTTP to the Stowage server, every call
 * authenticated by the host's shared secret (a bearer token the server is
 * configured with). The secret is made on first start and kept in
 * `<dataDir>/host-secret` (0600).
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createAdaptorServer } from '@hono/node-server';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import type { ImageStore } from '../host/images.js';
import { runtimeApp } from '../runtime-http/runtime-app.js';
import { LocalSandboxHost } from './local-host.js';

export const HOST_SECRET_FILE = 'host-secret';

/** The host's secret: the given file's, else `<dataDir>/host-secret`, made now if missing. */
export function hostSecret(dataDir: string, file?: string): { secret: string; file: string; created: boolean } {
  const path = file ?? join(dataDir, HOST_SECRET_FILE);
  try {
    const secret = readFileSync(path, 'utf8').trim();
    if (secret.length < 32) throw new InvalidArgumentError(`the host secret in ${path} is shorter than 32 characters`);
    return { secret, file: path, created: false };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    if (file !== undefined) throw new InvalidArgumentError(`no host secret file at ${file}`);
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(32).toString('hex');
  writeFileSync(path, `${secret}\n`, { mode: 0o600, flag: 'wx' });
  return { secret, file: path, created: true };
}

export interface HostServerOptions {
  dataDir: string;
  /** Where this machine's mount agents reach the Stowage server. */
  serverUrl: string;
  host?: string;
  port?: number;
  secret: string;
  /** Where built images are kept (default `<dataDir>/images`). */
  images?: ImageStore;
  /** Whether to mount sandboxes' volumes with `--low-latency`; absent, where this process may (LocalHostOptions.lowLatencyVolumes). */
  lowLatencyVolumes?: boolean;
  log?: (line: string) => void;
}

export interface RunningHostServer {
  url: string;
  runtime: LocalSandboxHost;
  close(): Promise<void>;
}

/** Opens this machine's sandbox host and serves it; sandboxes keep running after close. */
export async function startHostServer(opts: HostServerOptions): Promise<RunningHostServer> {
  const runtime = await LocalSandboxHost.open({
    dataDir: opts.dataDir,
    serverUrl: opts.serverUrl,
    ...(opts.images ? { images: opts.images } : {}),
    ...(opts.lowLatencyVolumes !== undefined ? { lowLatencyVolumes: opts.lowLatencyVolumes } : {}),
    ...(opts.log ? { log: opts.log } : {}),
  });
  const server = createAdaptorServer({ fetch: runtimeApp(runtime, { secret: opts.secret }).fetch }) as Server;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 7421, opts.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${host}:${address.port}`,
    runtime,
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await runtime.close();
    },
  };
}
