/**
 * @module mount/agent
 * The mount agent: one process per mount. It serves the FUSE file system,
 * keeps the attachment's lease (and so its scoped token) alive, answers the
 * control socket (commit, reload, status, unmount), and in writeback mode
 * commits on its own shortly after changes settle.
 *
 * Start-up order matters for crash recovery: the overlay is opened and its
 * journal replayed onto the base it was recorded against before the file
 * system is mounted, so a restarted agent shows exactly the tree it showed
 * before it was killed, uncommitted work included.
 */
import { accessSync, constants as fsConstants, existsSync } from 'node:fs';
import { join } from 'node:path';
import type * as wire from '@stowage/sdk/api/wire.js';
import {
  ConflictError,
  InvalidArgumentError,
  StowageError,
  UnavailableError,
  isStowageError,
} from '@stowage/sdk/common/errors.js';
import { retry, type RetryPolicy } from '@stowage/sdk/common/retry.js';
import { joinNanos } from '@stowage/sdk/common/times.js';
import {
  mountSource,
  type MountCommitResult,
  type MountConfig,
  type MountReloadResult,
  type MountStatus,
} from '@stowage/sdk/common/mount-state.js';
import { Stowage } from '@stowage/sdk/client/http-client.js';
import { commitChanges } from '@stowage/sdk/client/commit-writer.js';
import { ChunkCache } from './chunk-cache.js';
import { buildCommit } from './commit-builder.js';
import { startControlServer, startGuestControlServer, type ControlServer } from './control-server.js';
import { FuseFs } from './fuse-ops.js';
import { mountFuse } from './fuse/session.js';
import type { FuseSession } from './fuse/types.js';
import { WakeLatencyHold } from './fuse/wake-latency.js';
import { withErrnoMapping } from './fs-error.js';
import { Gate } from './gate.js';
import { MountView } from './mount-view.js';
import { OverlayStore } from './overlay-store.js';
import { OverwriteWatch } from './overwrites.js';
import { HttpRemote } from './remote.js';

/** Writeback: a commit this long after the last change... */
export const WRITEBACK_QUIET_MS = 2_000;
/** ...but never later than this after the first uncommitted one. */
export const WRITEBACK_MAX_DELAY_MS = 10_000;
/** A commit whose server or blob store is unreachable: 4 attempts in all, 0.5 s, 1 s, 2 s apart. */
const COMMIT_RETRY: RetryPolicy = {
  name: 'mount commit',
  attempts: 4,
  baseDelayMs: 500,
  retryable: (e) => isStowageError(e, 'Unavailable'),
};

/** Fails at once, with the cause, when this process cannot use FUSE (never a hang, never an empty directory). */
export function checkFuse(): void {
  if (!existsSync('/dev/fuse'))
    throw new UnavailableError(
      'cannot mount: FUSE is not available here (/dev/fuse does not exist; load the fuse module or run the sandbox with --device /dev/fuse)',
    );
  try {
    accessSync('/dev/fuse', fsConstants.R_OK | fsConstants.W_OK);
  } catch {
    throw new UnavailableError(
      'cannot mount: no permission to use /dev/fuse (run as root or add the user to the fuse group)',
    );
  }
}

export class MountAgent {
  readonly #gate = new Gate();
  readonly #client: Stowage;
  #view!: MountView;
  #base!: string;
  #fs: FuseFs | null = null;
  #fuse: FuseSession | null = null;
  #wakeLatency: WakeLatencyHold | null = null;
  #control: ControlServer | null = null;
  /** The sandbox's control socket (config.guest): no unmount, its own view of the mount path. */
  #guestControl: ControlServer | null = null;
  #volume!: wire.Volume;
  #renewTimer: NodeJS.Timeout | null = null;
  #writebackTimer: NodeJS.Timeout | null = null;
  #firstUncommitted = 0;
  #stopping = false;
  /** This mount's commits since its last reload, and which of their paths later commits of others changed. */
  readonly #overwrites: OverwriteWatch;
  /** Called once the agent stopped on an unmount request (the process exits). */
  onExit: (() => void) | null = null;

  private constructor(
    readonly config: MountConfig,
    readonly stateDir: string,
    private readonly overlay: OverlayStore,
    private readonly cache: ChunkCache,
    private readonly remote: HttpRemote,
    private readonly log: (message: string) => void,
  ) {
    this.#client = new Stowage({ url: config.serverUrl, token: config.token });
    this.#overwrites = new OverwriteWatch(
      overlay,
      (since, limit) =>
        this.#client.request<wire.ChangesResponse>('GET', `/v1/volumes/${encodeURIComponent(config.volume)}/changes`, {
          query: { since, limit },
        }),
      log,
    );
  }

  /** Opens the state, rebuilds the view, mounts, and starts serving. */
  static async start(config: MountConfig, stateDir: string, log: (message: string) => void): Promise<MountAgent> {
    checkFuse();
    const overlay = OverlayStore.open(join(stateDir, 'overlay'), { spares: true });
    const client = new Stowage({ url: config.serverUrl, token: config.token });
    const remote = new HttpRemote(client, config.volume, config.bufferSize);
    const cache = await ChunkCache.open(join(stateDir, 'cache'), config.cacheSize, (bytes) => remote.recycle(bytes));
    const agent = new MountAgent(config, stateDir, overlay, cache, remote, log);
    try {
      await agent.#open();
      await agent.#mount();
      agent.#control = await startControlServer(stateDir, agent);
      if (config.guest) agent.#guestControl = await startGuestControlServer(stateDir, agent, config.guest);
      agent.#scheduleRenew(5_000);
      // Changes replayed after a crash are as uncommitted as new ones: writeback commits them without waiting for a write.
      if (agent.overlay.journalLength() > 0) agent.#changed();
    } catch (e) {
      await agent.#teardown();
      throw e;
    }
    return agent;
  }

  async #open(): Promise<void> {
    this.#volume = await this.#client.request<wire.Volume>(
      'GET',
      `/v1/volumes/${encodeURIComponent(this.config.volume)}`,
    );
    const recorded = this.overlay.getMeta('base');
    const base = recorded ?? this.#volume.head;
    if (recorded === undefined) this.overlay.setMeta('base', base);
    await this.#checkSubpath(base);
    this.#view = this.#newView(base);
    const journal = this.overlay.journal();
    if (journal.length > 0) {
      await this.#view.replay(journal);
      this.log(`restored ${journal.length} uncommitted operations onto ${base.slice(0, 12)}`);
    }
  }

  async #checkSubpath(commit: string): Promise<void> {
    if (this.config.subpath === '/') return;
    try {
      const { entry } = await this.#client.request<wire.StatResponse>(
        'GET',
        `/v1/volumes/${encodeURIComponent(this.config.volume)}/stat`,
        { query: { path: this.config.subpath, commit } },
      );
      if (entry.type !== 'dir')
        throw new InvalidArgumentError(
          `cannot mount ${this.config.volume}:${this.config.subpath}: it is a ${entry.type}, not a directory`,
        );
    } catch (e) {
      if (isStowageError(e, 'NotFound'))
        throw new InvalidArgumentError(
          `cannot mount ${this.config.volume}:${this.config.subpath}: no such directory in the volume`,
        );
      throw e;
    }
  }

  /** A view of `base`; each view reads its base files from its own commit (an orphaned file of an old view too). */
  #newView(base: string): MountView {
    this.#base = base;
    const root = this.#view?.root;
    const now = joinNanos(Date.parse(this.#volume.updatedAt));
    return new MountView(
      {
        remote: this.remote,
        overlay: this.overlay,
        cache: this.cache,
        base: () => base,
        prefetch: this.config.prefetch,
        openFiles: this.config.openFiles,
        subpath: this.config.subpath,
        readOnly: this.config.readOnly,
      },
      // The mount root is not an entry of the volume: its mode, owner and times live as long as the agent.
      root
        ? { mode: root.mode, uid: root.uid, gid: root.gid, atime: root.atime, mtime: root.mtime, ctime: root.ctime }
        : { mode: 0o755, uid: null, gid: null, atime: now, mtime: now, ctime: now },
    );
  }

  /**
   * Replaces the view (after a commit or reload) and tells the kernel what it may have cached of the old one.
   * Resolves once the kernel has dropped it; callers await that after leaving the gate (see FuseFs.viewChanged),
   * so that a reload's answer means the next look in the mount sees the new view.
   */
  #swapView(base: string, sameTree = false): Promise<void> {
    const old = this.#view;
    this.#view = this.#newView(base);
    this.#view.adoptSpecials(old);
    return this.#fs?.viewChanged(old, this.#view, sameTree) ?? Promise.resolve();
  }

  async #mount(): Promise<void> {
    const fs = new FuseFs({
      view: () => this.#view,
      mutate: (fn) => this.#gate.shared(() => fn(this.#view)),
      changed: () => this.#changed(),
      statfs: () => ({ cap: this.#volume.cap, used: this.#volume.size }),
      log: this.log,
      owner: { uid: this.config.uid ?? process.getuid?.() ?? 0, gid: this.config.gid ?? process.getgid?.() ?? 0 },
      released: (dataId) => this.overlay.release(dataId),
    });
    const options = [
      // The source names the state dir, so `Volume.fromMount(path)` finds the control socket from /proc/self/mounts whatever STOWAGE_MOUNT_STATE says.
      // A sandbox's mount names the directory where the sandbox finds its guest socket, never the host's state dir.
      `fsname=${mountSource(this.config.guest?.controlDir ?? this.stateDir)}`,
      'subtype=stowage',
      // Permission checks are the kernel's, against the modes and owners the tree records, exactly as on a local disk.
      'default_permissions',
      ...(this.config.allowOther ? ['allow_other'] : []),
      ...(this.config.readOnly ? ['ro'] : []),
    ];
    const hold = this.config.lowLatency ? WakeLatencyHold.open(undefined, undefined, this.log) : null;
    this.#wakeLatency = hold;
    try {
      // 1 MiB read-ahead: sequential reads arrive as 1 MiB requests instead of the kernel's default 128 KiB.
      this.#fuse = await mountFuse(this.config.mountPath, withErrnoMapping(fs.ops, this.log), {
        options,
        force: true,
        log: this.log,
        readahead: 1024 * 1024,
        ...(hold ? { onRequest: () => hold.note() } : {}),
      });
    } catch (e) {
      throw new UnavailableError(`cannot mount ${this.config.mountPath}: ${(e as Error).message}`, { cause: e });
    }
    fs.session = this.#fuse;
    this.#fs = fs;
  }

  /** Distinct paths with uncommitted changes. */
  pending(): number {
    const paths = new Set<string>();
    for (const op of this.overlay.journal()) {
      if (op.op === 'rename') {
        paths.add(op.from);
        paths.add(op.to);
      } else paths.add(op.path);
    }
    return paths.size;
  }

  async status(): Promise<MountStatus> {
    const overwrittenByOthers = await this.#overwrites.check();
    const c = this.cache.stats();
    const fuse = this.#fuse;
    const conn = fuse?.conn;
    return {
      volume: this.config.volume,
      mountPath: this.config.mountPath,
      subpath: this.config.subpath,
      readOnly: this.config.readOnly,
      writeback: this.config.writeback,
      attachmentId: this.config.attachmentId,
      base: this.#base,
      pending: this.pending(),
      cache: {
        bytes: c.bytes,
        capacity: this.cache.capacity,
        chunks: c.chunks,
        hits: c.hits,
        misses: c.misses,
        evictions: c.evictions,
      },
      pid: process.pid,
      overwrittenByOthers,
      ...(this.#wakeLatency ? { lowLatency: this.#wakeLatency.status() } : {}),
      ...(fuse && conn
        ? {
            fuse: {
              protocol: `${conn.protoMajor}.${conn.protoMinor}`,
              maxWrite: conn.maxWrite,
              maxRead: conn.maxRead,
              requests: fuse.requestCounts(),
            },
          }
        : {}),
    };
  }

  /**
   * Uploads the overlay's changed chunks and publishes one commit, then shows
   * that commit (which merged other mounts' work on other paths). On any
   * failure the overlay stays as it was.
   */
  async commit(message?: string): Promise<MountCommitResult> {
    if (this.config.readOnly) throw new ConflictError('this mount is read-only: there is nothing to commit');
    // While a commit runs, a look for overwrites could see it in the feed before it is recorded as ours: `during` holds looks off.
    let invalidated: Promise<void> = Promise.resolve();
    const result = await this.#gate.exclusive(() =>
      this.#overwrites.during(async () => {
        this.#cancelWriteback();
        const built = await buildCommit(this.#view, this.overlay.journal());
        if (built.changes.length === 0)
          return { commit: null, changes: 0, uploadedChunks: 0, uploadedBytes: 0, overwritten: [], skipped: [] };
        const target = { client: this.#client, name: this.config.volume };
        const options = {
          base: this.#base,
          message: message ?? `mount ${this.config.host}:${this.config.mountPath}`,
          bestEffort: true,
        };
        const res = await this.#withRetries('commit', () => commitChanges(target, built.files, built.changes, options));
        this.#view.closeAll();
        this.overlay.reset(res.commit.id, this.#fs?.openDataIds());
        this.#volume = { ...this.#volume, size: res.commit.size, fileCount: res.commit.fileCount, head: res.commit.id };
        // Nothing else was merged in and nothing skipped: the new head's tree is this view's, and the kernel's cache stays true.
        invalidated = this.#swapView(res.commit.id, res.commit.parent === this.#base && res.skipped.length === 0);
        this.#firstUncommitted = 0;
        this.#overwrites.recorded(res.commit, built.changes, res.skipped);
        this.log(
          `committed ${built.changes.length} changes as ${res.commit.id.slice(0, 12)} (seq ${res.commit.seq}), ${res.uploadedChunks} chunks uploaded`,
        );
        return {
          commit: { id: res.commit.id, seq: res.commit.seq },
          changes: built.changes.length,
          uploadedChunks: res.uploadedChunks,
          uploadedBytes: res.uploadedBytes,
          overwritten: res.overwritten,
          skipped: res.skipped,
        };
      }),
    );
    await invalidated;
    return result;
  }

  /** Moves the view to the volume's head, lazily; refuses to discard uncommitted changes unless `force`. */
  async reload(options: { force?: boolean } = {}): Promise<MountReloadResult> {
    let invalidated: Promise<void> = Promise.resolve();
    const result = await this.#gate.exclusive(async () => {
      const discarded = this.pending();
      if (discarded > 0 && options.force !== true) {
        throw new ConflictError(
          `reload would discard ${discarded} uncommitted change${discarded === 1 ? '' : 's'}; commit them first, or reload with --force to discard them`,
          { details: { pending: discarded } },
        );
      }
      const volume = await this.#withRetries('reload', () =>
        this.#client.request<wire.Volume>('GET', `/v1/volumes/${encodeURIComponent(this.config.volume)}`),
      );
      await this.#checkSubpath(volume.head);
      // Reported, then forgotten: unless the feed could not be read, so the next look still covers these commits.
      let looked = true;
      const overwrittenByOthers = await this.#overwrites.check({ strict: true }).catch((e: Error) => {
        looked = false;
        this.log(
          `reload: later commits over this mount's paths could not be read, reporting what was found before: ${e.message}`,
        );
        return this.#overwrites.known();
      });
      this.#cancelWriteback();
      this.#view.closeAll();
      this.overlay.reset(volume.head, this.#fs?.openDataIds());
      this.#volume = volume;
      invalidated = this.#swapView(volume.head);
      this.#firstUncommitted = 0;
      if (looked) this.#overwrites.clear();
      return { commit: volume.head, discarded, overwrittenByOthers };
    });
    await invalidated;
    return result;
  }

  async #withRetries<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let attempts = 0;
    try {
      return await retry(
        COMMIT_RETRY,
        (n) => {
          attempts = n;
          return fn();
        },
        { onRetry: (e) => this.log(`${what}: ${(e as Error).message}; retrying`) },
      );
    } catch (e) {
      if (isStowageError(e, 'Unavailable'))
        throw new UnavailableError(
          `${what} failed after ${attempts} attempts, uncommitted changes kept: ${e.message}`,
          { cause: e },
        );
      throw e;
    }
  }

  #changed(): void {
    if (!this.config.writeback || this.#stopping) return;
    const now = Date.now();
    if (this.#firstUncommitted === 0) this.#firstUncommitted = now;
    const due = Math.min(now + WRITEBACK_QUIET_MS, this.#firstUncommitted + WRITEBACK_MAX_DELAY_MS);
    if (this.#writebackTimer) clearTimeout(this.#writebackTimer);
    this.#writebackTimer = setTimeout(() => void this.#writeback(), Math.max(0, due - now));
  }

  #cancelWriteback(): void {
    if (this.#writebackTimer) clearTimeout(this.#writebackTimer);
    this.#writebackTimer = null;
  }

  async #writeback(): Promise<void> {
    this.#writebackTimer = null;
    try {
      await this.commit('writeback');
    } catch (e) {
      this.log(`writeback commit failed (changes kept, retrying later): ${(e as Error).message}`);
      this.#firstUncommitted = Date.now();
      this.#writebackTimer = setTimeout(() => void this.#writeback(), WRITEBACK_MAX_DELAY_MS);
    }
  }

  /** Renews the attachment's lease (and token) at a third of what is left of it. */
  #scheduleRenew(delay: number): void {
    if (this.#stopping) return;
    this.#renewTimer = setTimeout(async () => {
      let next = 5_000;
      try {
        const r = await this.#client.request<wire.RenewAttachmentResponse>(
          'POST',
          `/v1/attachments/${encodeURIComponent(this.config.attachmentId)}/renew`,
        );
        next = Math.max(1_000, (Date.parse(r.tokenExpiresAt) - Date.now()) / 3);
      } catch (e) {
        this.log(`lease renewal failed: ${(e as Error).message}`);
      }
      this.#scheduleRenew(next);
    }, delay);
    this.#renewTimer.unref();
  }

  /** The control socket's unmount: refuses to leave uncommitted changes behind unless `force` (they stay on disk for the next mount of this path). */
  async unmount(options: { force?: boolean }): Promise<void> {
    const pending = this.pending();
    if (pending > 0 && options.force !== true) {
      throw new ConflictError(
        `${pending} uncommitted change${pending === 1 ? '' : 's'} in ${this.config.mountPath}; commit first, or unmount --force (they stay on this host and come back when the path is mounted again)`,
        { details: { pending } },
      );
    }
    setImmediate(() => void this.stop().finally(() => this.onExit?.()));
  }

  /** Unmounts, releases the attachment (revoking the token), and closes. The overlay stays on disk. */
  async stop(options: { release?: boolean; reason?: string } = {}): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    this.#cancelWriteback();
    await this.#teardown();
    if (options.release !== false) {
      try {
        const body: wire.ReleaseAttachmentRequest = options.reason ? { failed: true, reason: options.reason } : {};
        await this.#client.request('POST', `/v1/attachments/${encodeURIComponent(this.config.attachmentId)}/release`, {
          body,
        });
      } catch (e) {
        this.log(`releasing attachment ${this.config.attachmentId} failed: ${(e as Error).message}`);
      }
    }
    await this.overlay.settle();
    this.overlay.close();
  }

  async #teardown(): Promise<void> {
    if (this.#renewTimer) clearTimeout(this.#renewTimer);
    if (this.#control) await this.#control.close();
    this.#control = null;
    if (this.#guestControl) await this.#guestControl.close();
    this.#guestControl = null;
    if (this.#fuse) {
      const fuse = this.#fuse;
      this.#fuse = null;
      await fuse.unmount().catch((e: Error) => this.log(`unmount: ${e.message}`));
    }
    this.#wakeLatency?.close();
    this.#view?.closeAll();
    await this.cache.close();
  }
}

export function asStowageError(e: unknown): StowageError {
  return e instanceof StowageError ? e : new StowageError('Internal', (e as Error)?.message ?? String(e));
}
