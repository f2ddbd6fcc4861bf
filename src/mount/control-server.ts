/**
 * @module mount/control-server
 * The agent's control socket: plain HTTP with JSON bodies over a Unix socket
 * in the mount's state directory (mode 0600: only the mount's owner may
 * commit, reload or unmount it). `stowage commit|reload|unmount PATH` and the
 * SDK's `Volume.fromMount(PATH)` speak to it.
 *
 *   GET  /status                      -> MountStatus
 *   POST /commit   {message?}         -> MountCommitResult
 *   POST /reload   {force?}           -> MountReloadResult
 *   POST /unmount  {force?}           -> {} (the agent exits right after)
 *
 * Errors answer {error: {code, message, details?}} like the server's API.
 *
 * A sandbox's guest socket (MountConfig.guest) is a second server over the
 * same handler, owned by the sandbox's root, without the unmount route: the
 * mount's life is the sandbox's, and only its supervisor ends it. No route
 * answers with the token or the config.
 */
import { chmodSync, chownSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import {
  CONTROL_SOCKET,
  GUEST_CONTROL_SOCKET,
  type GuestControl,
  type MountCommitResult,
  type MountReloadResult,
  type MountStatus,
} from '@stowage/sdk/common/mount-state.js';
import {
  ERROR_HTTP_STATUS,
  ForbiddenError,
  InvalidArgumentError,
  NotFoundError,
  PayloadTooLargeError,
  StowageError,
} from '@stowage/sdk/common/errors.js';

export interface ControlHandler {
  status(): Promise<MountStatus>;
  commit(message?: string): Promise<MountCommitResult>;
  reload(options: { force?: boolean }): Promise<MountReloadResult>;
  unmount(options: { force?: boolean }): Promise<void>;
}

export interface ControlServer {
  path: string;
  close(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  let size = 0;
  const parts: Buffer[] = [];
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > MAX_BODY) throw new PayloadTooLargeError(`control request body over ${MAX_BODY} bytes`);
    parts.push(part);
  }
  if (size === 0) return {};
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    throw new InvalidArgumentError('control request body is not JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw new InvalidArgumentError('control request body must be a JSON object');
  return body as Record<string, unknown>;
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

export interface ControlServerOptions {
  /** The socket's file name in the state dir (default control.sock). */
  file?: string;
  /** Who may connect besides root (the socket is chowned to them; mode stays 0600). */
  owner?: { uid: number; gid: number };
  /** Whether POST /unmount is served (default true; a sandbox's guest socket has none). */
  unmount?: boolean;
}

export async function startControlServer(
  stateDir: string,
  handler: ControlHandler,
  options: ControlServerOptions = {},
): Promise<ControlServer> {
  const path = join(stateDir, options.file ?? CONTROL_SOCKET);
  const unmount = options.unmount !== false;
  rmSync(path, { force: true });
  const server = createServer((req, res) => {
    void (async () => {
      try {
        const route = `${req.method} ${req.url}`;
        const body = await readJson(req);
        const force = body.force === true;
        switch (route) {
          case 'GET /status':
            return send(res, 200, await handler.status());
          case 'POST /commit': {
            const message = body.message;
            if (message !== undefined && typeof message !== 'string')
              throw new InvalidArgumentError('message must be a string');
            return send(res, 200, await handler.commit(message));
          }
          case 'POST /reload':
            return send(res, 200, await handler.reload({ force }));
          case 'POST /unmount': {
            if (!unmount)
              throw new ForbiddenError(
                'this mount belongs to a sandbox: it is unmounted when the sandbox ends (commit or reload it instead)',
              );
            await handler.unmount({ force });
            return send(res, 200, {});
          }
          default:
            throw new NotFoundError(`no control route ${route}`);
        }
      } catch (e) {
        const err = e instanceof StowageError ? e : new StowageError('Internal', (e as Error)?.message ?? String(e));
        send(res, ERROR_HTTP_STATUS[err.code], {
          error: { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) },
        });
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  if (options.owner) chownSync(path, options.owner.uid, options.owner.gid);
  return {
    path,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/**
 * A sandbox's guest socket over the agent's handler: GUEST_CONTROL_SOCKET, owned by the sandbox's root, no unmount,
 * and a status that names the path inside the sandbox instead of the host's.
 */
export function startGuestControlServer(
  stateDir: string,
  handler: ControlHandler,
  guest: GuestControl,
): Promise<ControlServer> {
  const guestHandler: ControlHandler = {
    status: async () => ({ ...(await handler.status()), mountPath: guest.mountPath }),
    commit: (message) => handler.commit(message),
    reload: (options) => handler.reload(options),
    unmount: () => Promise.reject(new Error('unreachable: the guest socket serves no unmount')),
  };
  return startControlServer(stateDir, guestHandler, {
    file: GUEST_CONTROL_SOCKET,
    owner: { uid: guest.uid, gid: guest.gid },
    unmount: false,
  });
}
