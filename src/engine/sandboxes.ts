/**
 * @module engine/sandboxes
 * The sandbox control plane (SPEC section 5): who may do what with a
 * sandbox, its record, and the attachments of the volumes it mounts. The
 * work itself (namespaces, processes, files) is a SandboxRuntime's
 * (sandbox/runtime.ts); this service checks a request, records it, and asks.
 *
 * - Records: inserted `starting`, `running` once the runtime answers,
 *   `terminated` (asked, or its timeout) or `failed` (could not start,
 *   crashed, or lost). An ended record never changes again (every end is a
 *   conditional update from a live status), so terminate is idempotent and a
 *   late report of the runtime cannot revive a sandbox.
 * - Volumes: each is attached through the attachment service (host
 *   `sandbox:<id>`), so access modes are enforced there and each mount runs on
 *   its own scoped token. Whenever a sandbox ends, or fails to start, its
 *   attachments are released and their tokens revoked.
 * - Authority: `sandboxes.read` (list, get, execs, output, file reads) and
 *   `sandboxes.run` (everything else). Another tenant's sandbox is NotFound.
 */
import type { Readable } from 'node:stream';
import { ConflictError, InvalidArgumentError, NotFoundError, UnavailableError } from '@stowage/sdk/common/errors.js';
import { type AttachmentId, SandboxId } from '@stowage/sdk/common/ids.js';
import type { SandboxRecord } from '@stowage/sdk/model/records.js';
import type { ExecRecord, OutputEvent, RuntimeFileInfo, RuntimeState, SandboxRuntime } from '../sandbox/runtime.js';
import { type AttachmentService, endAttachments } from './attachments.js';
import { authorize, type Action } from './authority.js';
import type { EngineContext } from './context.js';
import { runtimeError } from './sandbox-errors.js';
import {
  checkCreateRequest,
  checkExecRequest,
  checkMode,
  checkSandboxPath,
  checkTerminalSize,
} from './sandbox-requests.js';
import type { Actor, SandboxEngine } from './types.js';

export const TERMINATED_BY_REQUEST = 'terminated by request';
export const LOST_BY_HOST = 'lost: its host no longer knows it (the host restarted without it)';
const LIVE = ['starting', 'running'] as const;
const EXEC_ID = /^[a-z0-9][a-z0-9-]{0,63}$/;
const SIGNALS = new Set([
  'SIGHUP',
  'SIGINT',
  'SIGQUIT',
  'SIGKILL',
  'SIGTERM',
  'SIGUSR1',
  'SIGUSR2',
  'SIGSTOP',
  'SIGCONT',
  'SIGTSTP',
  'SIGWINCH',
  'SIGALRM',
  'SIGPIPE',
]);
const NO_RUNTIME =
  'this server runs no sandbox host (it was started with --no-sandboxes, or sandboxes are not set up here): ' +
  'run `stowage serve` as root on Linux without --no-sandboxes to use sandboxes';

/** What the sandbox service needs of the engine. */
export interface SandboxDeps {
  ctx: EngineContext;
  attachments: AttachmentService;
  runtime?: SandboxRuntime | undefined;
  /** Where mount agents reach the API; asked when a sandbox with volumes starts. */
  serverUrl?: (() => string) | undefined;
}

/** Sandboxes: records, authority, volumes, and the calls to the runtime. */
export class SandboxService implements SandboxEngine {
  constructor(private readonly deps: SandboxDeps) {
    deps.runtime?.onEnded((state) => {
      // A report nobody awaits: a failure here must not take the process down.
      void this.#ended(state).catch(() => undefined);
    });
  }

  async createSandbox(actor: Actor, req: unknown): Promise<SandboxRecord> {
    authorize(actor, 'sandboxes.run');
    const checked = checkCreateRequest(req);
    const runtime = this.#runtime();
    const serverUrl = checked.volumes.length > 0 ? this.#serverUrl() : '';
    const { md, now } = this.deps.ctx;
    const createdAt = now();
    const record: SandboxRecord = {
      id: SandboxId.new(),
      tenantId: actor.tenantId,
      status: 'starting',
      reason: null,
      // The wire's image type: copy steps were refused by checkCreateRequest.
      image: checked.image as SandboxRecord['image'],
      volumes: [],
      cpu: checked.cpu,
      memoryMib: checked.memoryMib,
      diskGib: checked.diskGib,
      env: checked.env,
      timeout: checked.timeout,
      host: runtime.host,
      createdAt,
      expiresAt: new Date(createdAt.getTime() + checked.timeout * 1000),
      endedAt: null,
    };
    await md.insertSandbox(record);
    const tokens: string[] = [];
    try {
      for (const v of checked.volumes) {
        const r = await this.deps.attachments.attach(actor, v.volume, {
          host: `sandbox:${record.id}`,
          path: v.path,
          readOnly: v.readOnly,
        });
        record.volumes.push({
          path: v.path,
          volume: r.volume.name,
          volumeId: r.volume.id,
          readOnly: v.readOnly,
          subpath: v.subpath,
          attachmentId: r.attachment.id,
        });
        tokens.push(r.secret);
      }
      if (
        record.volumes.length > 0 &&
        !(await md.updateSandbox(record.id, { status: 'starting', volumes: record.volumes, from: ['starting'] }))
      )
        throw new ConflictError(`sandbox ${record.id} was terminated while it started`);
      await runtime.create({
        id: record.id,
        image: { base: record.image.base ?? 'debian', steps: record.image.steps ?? [] },
        cpu: record.cpu,
        memoryMib: record.memoryMib,
        diskGib: record.diskGib,
        env: record.env,
        expiresAt: record.expiresAt,
        volumes: record.volumes.map((v, i) => ({
          path: v.path,
          readOnly: v.readOnly,
          ...(v.subpath !== null ? { subpath: v.subpath } : {}),
          volume: v.volume,
          attachmentId: v.attachmentId,
          token: tokens[i]!,
          serverUrl,
        })),
      });
    } catch (err) {
      const reason = `could not start: ${err instanceof Error ? err.message : String(err)}`.slice(0, 2000);
      await this.#end(record, 'failed', reason).catch(() => undefined);
      throw runtimeError(err, record.id);
    }
    if (await md.updateSandbox(record.id, { status: 'running', from: ['starting'] }))
      return { ...record, status: 'running' };
    // Ended while it started (terminated by a concurrent request, or reported ended): it must not run on unrecorded.
    const ended = (await md.getSandbox(actor.tenantId, record.id)) ?? record;
    await runtime.terminate(record.id, ended.reason ?? TERMINATED_BY_REQUEST).catch(() => undefined);
    return ended;
  }

  async listSandboxes(actor: Actor, opts: { all?: boolean } = {}): Promise<SandboxRecord[]> {
    authorize(actor, 'sandboxes.read');
    return this.deps.ctx.md.listSandboxes(actor.tenantId, { live: opts.all !== true });
  }

  async getSandbox(actor: Actor, id: string): Promise<SandboxRecord> {
    return this.#find(actor, id, 'sandboxes.read');
  }

  async terminateSandbox(actor: Actor, id: string): Promise<SandboxRecord> {
    const record = await this.#find(actor, id, 'sandboxes.run');
    if (!isLive(record)) return record;
    const runtime = this.#runtime();
    try {
      await runtime.terminate(record.id, TERMINATED_BY_REQUEST);
    } catch (err) {
      // A sandbox its runtime no longer knows is gone already; anything else is reported and changes nothing.
      if (!isNotFound(err)) throw runtimeError(err, record.id);
    }
    await this.#end(record, 'terminated', TERMINATED_BY_REQUEST);
    return (await this.deps.ctx.md.getSandbox(actor.tenantId, record.id)) ?? record;
  }

  async execSandbox(actor: Actor, id: string, req: unknown): Promise<ExecRecord> {
    const { record, runtime } = await this.#running(actor, id);
    const exec = checkExecRequest(req);
    return this.#call(record, undefined, () => runtime.exec(record.id, exec));
  }

  async listExecs(actor: Actor, id: string): Promise<ExecRecord[]> {
    const record = await this.#find(actor, id, 'sandboxes.read');
    try {
      return await this.#call(record, undefined, () => this.#runtime().execs(record.id));
    } catch (err) {
      // An ended sandbox its host never started (or whose records it pruned) ran nothing to list.
      if (!isLive(record) && isNotFound(err)) return [];
      throw err;
    }
  }

  async getExec(actor: Actor, id: string, execId: string): Promise<ExecRecord> {
    const record = await this.#find(actor, id, 'sandboxes.read');
    return this.#exec(record, execId);
  }

  async execOutput(
    actor: Actor,
    id: string,
    execId: string,
    from: { stdout: number; stderr: number },
    signal?: AbortSignal,
  ): Promise<AsyncIterable<OutputEvent>> {
    const record = await this.#find(actor, id, 'sandboxes.read');
    for (const [stream, offset] of Object.entries(from)) {
      if (!Number.isSafeInteger(offset) || offset < 0)
        throw new InvalidArgumentError(`${stream} offset must be a whole number of bytes, 0 or more`);
    }
    await this.#exec(record, execId);
    return this.#runtime().output(record.id, execId, from, signal);
  }

  async writeExecStdin(actor: Actor, id: string, execId: string, data: Buffer, end: boolean): Promise<void> {
    const { record, runtime } = await this.#running(actor, id);
    await this.#exec(record, execId);
    await this.#call(record, undefined, () => runtime.writeStdin(record.id, execId, data, end));
  }

  async signalExec(actor: Actor, id: string, execId: string, signal: string): Promise<void> {
    const { record, runtime } = await this.#running(actor, id);
    const name = typeof signal === 'string' ? (signal.startsWith('SIG') ? signal : `SIG${signal}`) : '';
    if (!SIGNALS.has(name)) throw new InvalidArgumentError(`signal must be one of ${[...SIGNALS].join(', ')}`);
    await this.#exec(record, execId);
    await this.#call(record, undefined, () => runtime.signal(record.id, execId, name as NodeJS.Signals));
  }

  async resizeExec(actor: Actor, id: string, execId: string, rows: number, cols: number): Promise<void> {
    const { record, runtime } = await this.#running(actor, id);
    const size = checkTerminalSize({ rows, cols });
    await this.#exec(record, execId);
    await this.#call(record, undefined, () => runtime.resize(record.id, execId, size.rows, size.cols));
  }

  async writeSandboxFile(
    actor: Actor,
    id: string,
    path: string,
    data: Readable,
    opts: { mode?: number; createParents?: boolean } = {},
  ): Promise<RuntimeFileInfo> {
    const { record, runtime } = await this.#running(actor, id);
    const p = checkSandboxPath(path);
    const options = { mode: checkMode(opts.mode, 0o644), createParents: opts.createParents !== false };
    return this.#call(record, p, () => runtime.writeFile(record.id, p, data, options));
  }

  async readSandboxFile(actor: Actor, id: string, path: string): Promise<Readable> {
    const { record, runtime } = await this.#running(actor, id, 'sandboxes.read');
    const p = checkSandboxPath(path);
    return this.#call(record, p, () => runtime.readFile(record.id, p));
  }

  async statSandboxFile(actor: Actor, id: string, path: string): Promise<RuntimeFileInfo> {
    const { record, runtime } = await this.#running(actor, id, 'sandboxes.read');
    const p = checkSandboxPath(path);
    return this.#call(record, p, () => runtime.stat(record.id, p));
  }

  async listSandboxFiles(
    actor: Actor,
    id: string,
    path: string,
  ): Promise<{ entries: RuntimeFileInfo[]; truncated: boolean }> {
    const { record, runtime } = await this.#running(actor, id, 'sandboxes.read');
    const p = checkSandboxPath(path);
    return this.#call(record, p, () => runtime.list(record.id, p));
  }

  async removeSandboxFile(actor: Actor, id: string, path: string, recursive = false): Promise<void> {
    const { record, runtime } = await this.#running(actor, id);
    const p = checkSandboxPath(path);
    await this.#call(record, p, () => runtime.remove(record.id, p, recursive === true));
  }

  async mkdirSandboxFile(actor: Actor, id: string, path: string, opts: { parents?: boolean; mode?: number } = {}) {
    const { record, runtime } = await this.#running(actor, id);
    const p = checkSandboxPath(path);
    const options = { parents: opts.parents === true, mode: checkMode(opts.mode, 0o755) };
    await this.#call(record, p, () => runtime.mkdir(record.id, p, options));
  }

  /**
   * At start: the live records of this host that its runtime no longer knows
   * become failed, those it reports ended get its final state, and a
   * `starting` one it runs becomes running. Returns how many ended.
   */
  async reconcileSandboxes(): Promise<number> {
    const runtime = this.deps.runtime;
    if (!runtime || runtime.unavailable() !== undefined) return 0;
    let ended = 0;
    for (const record of await this.deps.ctx.md.listLiveSandboxesOnHost(runtime.host)) {
      // One sandbox the runtime cannot answer for stays as it is; the next start looks again.
      const state = await runtime.state(record.id).catch(() => null);
      if (state === null) continue;
      if (state === undefined) {
        await this.#end(record, 'failed', LOST_BY_HOST);
        ended++;
      } else if (state.status !== 'running') {
        await this.#endFrom(record, state);
        ended++;
      } else if (record.status === 'starting') {
        await this.deps.ctx.md.updateSandbox(record.id, { status: 'running', from: ['starting'] });
      }
    }
    return ended;
  }

  // ---------------------------------------------------------------- internals

  /** The runtime, or why there is none (503 naming what is missing). */
  #runtime(): SandboxRuntime {
    const runtime = this.deps.runtime;
    if (!runtime) throw new UnavailableError(NO_RUNTIME);
    const missing = runtime.unavailable();
    if (missing !== undefined) throw new UnavailableError(`this server cannot run sandboxes: ${missing}`);
    return runtime;
  }

  #serverUrl(): string {
    const url = this.deps.serverUrl?.();
    if (!url)
      throw new UnavailableError(
        'this server has no URL its mount agents can reach it at, so it cannot mount volumes in sandboxes',
      );
    return url;
  }

  /** The actor's sandbox `id` (NotFound for a malformed id or another tenant's), after checking `action`. */
  async #find(actor: Actor, id: string, action: Action): Promise<SandboxRecord> {
    authorize(actor, action);
    let sid: SandboxId;
    try {
      sid = SandboxId.parse(String(id));
    } catch {
      throw new NotFoundError(`sandbox ${JSON.stringify(String(id).slice(0, 80))} not found`);
    }
    const record = await this.deps.ctx.md.getSandbox(actor.tenantId, sid);
    if (!record) throw new NotFoundError(`sandbox ${sid} not found`);
    return record;
  }

  /** A running sandbox and its runtime: 409 when it is not running. */
  async #running(
    actor: Actor,
    id: string,
    action: Action = 'sandboxes.run',
  ): Promise<{ record: SandboxRecord; runtime: SandboxRuntime }> {
    const record = await this.#find(actor, id, action);
    if (record.status !== 'running') {
      throw new ConflictError(
        `sandbox ${record.id} is ${record.status}${record.reason ? ` (${record.reason})` : ''}` +
          (record.status === 'starting' ? '; wait until it runs' : '; create a new sandbox'),
        { details: { status: record.status } },
      );
    }
    return { record, runtime: this.#runtime() };
  }

  async #exec(record: SandboxRecord, execId: string): Promise<ExecRecord> {
    const missing = new NotFoundError(`exec ${JSON.stringify(String(execId).slice(0, 80))} not found in ${record.id}`);
    if (typeof execId !== 'string' || !EXEC_ID.test(execId)) throw missing;
    const exec = await this.#call(record, undefined, () => this.#runtime().getExec(record.id, execId));
    if (!exec) throw missing;
    return exec;
  }

  /** Runs a runtime call, its errors translated in the one place that does it. */
  async #call<T>(record: SandboxRecord, path: string | undefined, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw runtimeError(err, record.id, path);
    }
  }

  /** A sandbox that ended on its own (timeout, crash), as its runtime reports it. */
  async #ended(state: RuntimeState): Promise<void> {
    const runtime = this.deps.runtime;
    if (!runtime || state.status === 'running') return;
    const record = (await this.deps.ctx.md.listLiveSandboxesOnHost(runtime.host)).find((r) => r.id === state.id);
    if (record) await this.#endFrom(record, state);
  }

  async #endFrom(record: SandboxRecord, state: RuntimeState): Promise<void> {
    const status = state.status === 'failed' ? 'failed' : 'terminated';
    const reason = state.reason ?? (status === 'failed' ? 'failed (the host gave no reason)' : 'terminated');
    const endedAt = state.endedAt !== undefined ? new Date(state.endedAt) : undefined;
    await this.#end(record, status, reason, endedAt && !Number.isNaN(endedAt.getTime()) ? endedAt : undefined);
  }

  /** Ends a live record (no-op when it already ended) and releases its attachments. */
  async #end(record: SandboxRecord, status: 'terminated' | 'failed', reason: string, endedAt?: Date): Promise<void> {
    const { md, now } = this.deps.ctx;
    const at = now();
    await md.updateSandbox(record.id, { status, reason, endedAt: endedAt ?? at, from: LIVE });
    // Read again: volumes attached by a create still in flight are in the stored record, not in `record`.
    const current = (await md.getSandbox(record.tenantId, record.id)) ?? record;
    const ids = new Set<AttachmentId>([...record.volumes, ...current.volumes].map((v) => v.attachmentId));
    await endAttachments(
      md,
      [...ids],
      status === 'failed' ? 'failed' : 'released',
      `sandbox ${record.id} ${reason}`,
      at,
    );
  }
}

function isLive(r: SandboxRecord): boolean {
  return r.status === 'starting' || r.status === 'running';
}

function isNotFound(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'NotFound';
}
