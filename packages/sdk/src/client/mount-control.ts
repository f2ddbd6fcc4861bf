/**
 * @module client/mount-control
 * Talks to a running mount agent through its control socket, found from the
 * mount path alone (common/mount-state.ts): what `Volume.fromMount(path)`
 * returns, and what `stowage commit|reload|unmount PATH` use.
 *
 * @example
 * const vol = Volume.fromMount('/mnt/data');
 * await writeFile('/mnt/data/result.json', JSON.stringify(result));
 * const { commit } = await vol.commit();
 */
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:http';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { ForbiddenError, NotFoundError, UnavailableError } from '../common/errors.js';
import {
  AGENT_LOG,
  CONTROL_SOCKET,
  mountStateDir,
  stateDirFromMountTable,
  type MountCommitResult,
  type MountReloadResult,
  type MountStatus,
  type OverwrittenPath,
} from '../common/mount-state.js';
import { errorFromResponse } from './http-client.js';

export type { MountCommitResult, MountReloadResult, MountStatus, OverwrittenPath };

export class MountHandle {
  readonly mountPath: string;
  readonly #stateDir: string | undefined;

  /**
   * `options.stateDir` names the agent's state dir when the caller knows it
   * (a sandbox's supervisor: its mounts name the sandbox's socket directory
   * as their source, not the state dir).
   */
  constructor(mountPath: string, options: { stateDir?: string } = {}) {
    this.mountPath = resolve(mountPath);
    this.#stateDir = options.stateDir;
  }

  /**
   * The agent's control socket: in the state dir the kernel's mount table
   * names for this path (works whatever STOWAGE_MOUNT_STATE is here), else
   * where this environment's state root puts it.
   */
  get socketPath(): string {
    if (this.#stateDir !== undefined) return join(resolve(this.#stateDir), CONTROL_SOCKET);
    let table = '';
    try {
      table = readFileSync('/proc/self/mounts', 'utf8');
    } catch {
      // not Linux, or no procfs: the state root is all there is
    }
    const candidates = [stateDirFromMountTable(table, this.mountPath), mountStateDir(this.mountPath)]
      .filter((d): d is string => d !== undefined && isAbsolute(d))
      .map((d) => join(d, CONTROL_SOCKET));
    return candidates.find((p) => existsSync(p)) ?? candidates[0]!;
  }

  async #call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const socketPath = this.socketPath;
    if (!existsSync(socketPath))
      throw new NotFoundError(`${this.mountPath} is not a Stowage mount (no agent control socket at ${socketPath})`);
    const payload = body === undefined ? undefined : JSON.stringify(body);
    // Any other failure of the socket (a reset, EPIPE, a cut-off answer) is the agent's, not a bug here: say so, and where its log is.
    const broken = (what: string): UnavailableError =>
      new UnavailableError(
        `the mount agent of ${this.mountPath} did not answer ${method} ${path} (${what}); its log is ${join(dirname(socketPath), AGENT_LOG)}. Uncommitted changes stay on this host: try again, or unmount --force and mount the path again`,
      );
    const { status, text } = await new Promise<{ status: number; text: string }>((done, fail) => {
      const req = request(
        {
          socketPath,
          path,
          method,
          headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
        },
        (res) => {
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () =>
            res.complete
              ? done({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString('utf8') })
              : fail(broken('the answer was cut off')),
          );
          res.on('error', (e: NodeJS.ErrnoException) => fail(broken(e.code ?? e.message)));
        },
      );
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'ECONNREFUSED' || e.code === 'ENOENT')
          fail(
            new UnavailableError(
              `the mount agent of ${this.mountPath} is not running (${e.code}); run \`stowage mount\` on the path again to recover its uncommitted changes`,
            ),
          );
        else if (e.code === 'EACCES')
          fail(
            new ForbiddenError(
              `no permission to use the control socket of ${this.mountPath} (${socketPath}): only the user who mounted it (in a sandbox, its root) may commit, reload or unmount it`,
            ),
          );
        else fail(broken(e.code ?? e.message));
      });
      req.end(payload);
    });
    if (status < 200 || status >= 300)
      throw errorFromResponse(status, text, `${method} ${path} (mount ${this.mountPath})`);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw broken('its answer was not JSON');
    }
  }

  /** What the mount shows, how much is uncommitted, and which paths it committed others overwrote since its last reload (`overwrittenByOthers`). */
  status(): Promise<MountStatus> {
    return this.#call('GET', '/status');
  }

  /** Uploads the changed chunks and publishes one commit; merged with other mounts' commits on other paths. */
  commit(options: { message?: string } = {}): Promise<MountCommitResult> {
    return this.#call('POST', '/commit', options);
  }

  /** Moves the mount to the volume's latest commit; refuses while changes are uncommitted unless `force` (which discards them). Reports, and clears, `overwrittenByOthers`. */
  reload(options: { force?: boolean } = {}): Promise<MountReloadResult> {
    return this.#call('POST', '/reload', options);
  }

  /** Unmounts and releases the attachment; refuses while changes are uncommitted unless `force`. */
  async unmount(options: { force?: boolean } = {}): Promise<void> {
    await this.#call('POST', '/unmount', options);
  }
}
