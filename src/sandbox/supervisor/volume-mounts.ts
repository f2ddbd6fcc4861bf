/**
 * @module sandbox/supervisor/volume-mounts
 * The host side of a sandbox's volumes. For each RuntimeVolume (attached by
 * the control plane, which minted its scoped token) the supervisor starts a
 * mount agent, its own child, the same way `stowage mount` does
 * (mount/agent-launch.ts), with no tenant token and no second attach:
 *
 *   <sandboxDir>/volumes/<n>         the FUSE mount point (bound at the volume's path inside)
 *   <sandboxDir>/volume-state/<n>/   the agent's state dir (0700): config.json with the scoped
 *                                    token, overlay/, cache/, agent.log, control.sock, guest.sock
 *
 * The mount lets other users in (`allow_other`), shows entries that record
 * no owner as the sandbox's root (host uid/gid `ids.hostUid`), is read-only
 * for a read-only volume and shows only the subpath. Its guest socket
 * (owned by the sandbox's root; status, commit, reload, never unmount) is
 * hard-linked into the sandbox's guest directory, seen inside as
 * `volumeControlDir(n)/control.sock`, the directory the mount names as its
 * source: `Volume.fromMount(path)` inside
 * finds it, and nothing else of the state dir is ever visible.
 *
 * Stopping commits what a writable mount holds, unmounts, and lets the agent
 * release its attachment with its own token; an agent that is already gone
 * is unmounted lazily and its attachment released (failed) with the token of
 * its config. Starting a mount again with the same index resumes it: the
 * overlay of a killed agent is replayed, as after a crash of `stowage mount`.
 */
import { existsSync, linkSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import type * as wire from '@stowage/sdk/api/wire.js';
import { InvalidArgumentError, isStowageError } from '@stowage/sdk/common/errors.js';
import { GUEST_CONTROL_SOCKET, type MountConfig } from '@stowage/sdk/common/mount-state.js';
import { Stowage } from '@stowage/sdk/client/http-client.js';
import { MountHandle } from '@stowage/sdk/client/mount-control.js';
import {
  agentAnswers,
  checkOverlayBelongsTo,
  lazyUnmount,
  readMountConfig,
  type SpareMountAgent,
  type StartedAgent,
  startMountAgent,
  waitAgentGone,
  writeMountConfig,
} from '../../mount/agent-launch.js';
import type { IdRange } from '../host/launch-args.js';
import type { RuntimeVolume } from '../runtime.js';
import type { SandboxBind } from '../host/ns-attach.js';
import { AGENT_MOUNT, volumeControlDir } from './launcher.js';

/** One volume mounted on the host for a sandbox. */
export interface VolumeMount {
  index: number;
  volume: RuntimeVolume;
  /** The FUSE mount point on the host. */
  mountPath: string;
  stateDir: string;
  /** The agent's full control socket (host root only). */
  handle: MountHandle;
  pid: number;
  /** The FUSE mount as it is bound inside the sandbox. */
  bind: SandboxBind;
  /** The agent's guest socket, which exposeGuestSockets links into the sandbox's guest directory. */
  guestSocket: string;
}

export interface VolumeMountOptions {
  /** The sandbox's id space: its root (hostUid/hostGid) owns what records no owner, and may use the guest socket. */
  ids: IdRange;
  /** Host name recorded in commit messages (default: this machine's). */
  host?: string;
  /** Mount with `--low-latency` (mount/fuse/wake-latency.ts): the host may (root) and its operator did not turn it off. */
  lowLatency?: boolean;
  timeoutMs?: number;
  /** A spare agent (spawnSpareMountAgent) to run the mount in, when one is at hand. */
  spareAgent?: () => SpareMountAgent | undefined;
  /** How long a mount started again to commit a dead agent's overlay waits for an unreachable server (default 0). */
  serverWaitMs?: number;
  /** Ends that wait early. */
  signal?: AbortSignal;
  /** A start that fails leaves the attachment to the caller instead of releasing it (as failed). */
  keepAttachmentOnFailure?: boolean;
  /** Called when an agent this call started exits on its own (a crash, a kill): start the mount again to resume it. */
  onAgentExit?: (mount: VolumeMount, code: number | null, signal: NodeJS.Signals | null) => void;
}

/** Mounts being stopped on purpose: their agents' exits are not reported to onAgentExit. */
const stopping = new WeakSet<VolumeMount>();

/** What stopping one mount did. */
export interface VolumeStopResult {
  index: number;
  volume: string;
  /** The final commit, if anything was written since the last one. */
  commit: { id: string; seq: number } | null;
  /** Paths a best-effort final commit could not carry (they stay in the overlay on the host). */
  skipped: string[];
  /** Why the final commit or the unmount failed; the overlay then stays in the state dir. */
  error?: string;
}

/** Where mount `index` of the sandbox whose directory is `sandboxDir` lives on the host. */
export function volumeMountPaths(sandboxDir: string, index: number): { mountPath: string; stateDir: string } {
  return {
    mountPath: join(sandboxDir, 'volumes', String(index)),
    stateDir: join(sandboxDir, 'volume-state', String(index)),
  };
}

/** Paths a volume may not take inside: the root, and what the launcher mounts itself. */
const RESERVED = [AGENT_MOUNT, '/proc', '/dev'];

function checkVolume(v: RuntimeVolume): { subpath: string } {
  const bad = (what: string) => new InvalidArgumentError(`volume ${JSON.stringify(v.volume)}: ${what}`);
  if (typeof v.path !== 'string' || !v.path.startsWith('/') || normalize(v.path) !== v.path || v.path.endsWith('/'))
    throw bad(`its path must be absolute and normalised, not ${JSON.stringify(v.path)}`);
  if (v.path === '/' || v.path.includes('\0') || RESERVED.some((r) => v.path === r || v.path.startsWith(`${r}/`)))
    throw bad(`it cannot be mounted at ${JSON.stringify(v.path)} (reserved: /, ${RESERVED.join(', ')})`);
  const subpath = v.subpath ?? '/';
  if (!subpath.startsWith('/') || subpath.includes('\0') || normalize(subpath) !== subpath)
    throw bad(`its subpath must be an absolute, normalised path inside the volume, not ${JSON.stringify(subpath)}`);
  return { subpath: subpath.length > 1 && subpath.endsWith('/') ? subpath.slice(0, -1) : subpath };
}

/** The mount's own client: the attachment's scoped token, nothing else. */
function scopedClient(v: RuntimeVolume): Stowage {
  return new Stowage({ url: v.serverUrl, token: v.token });
}

/**
 * Mounts volume `index` of a sandbox on the host and resolves once the file
 * system is up (or rejects with why not, its attachment released as failed).
 * An agent of the same attachment that still runs is adopted (it is not this
 * process's child, so its exit is not reported to onAgentExit); one of another
 * attachment is unmounted first (its overlay is kept and replayed).
 */
export async function startVolumeMount(
  sandboxDir: string,
  index: number,
  volume: RuntimeVolume,
  options: VolumeMountOptions,
): Promise<VolumeMount> {
  const { subpath } = checkVolume(volume);
  const { mountPath, stateDir } = volumeMountPaths(sandboxDir, index);
  const handle = new MountHandle(mountPath, { stateDir });
  const controlDir = volumeControlDir(index);
  const mount = (pid: number): VolumeMount => ({
    index,
    volume,
    mountPath,
    stateDir,
    handle,
    pid,
    bind: { source: mountPath, target: volume.path, readOnly: volume.readOnly },
    guestSocket: join(stateDir, GUEST_CONTROL_SOCKET),
  });
  if (await agentAnswers(handle)) {
    const status = await handle.status();
    if (status.attachmentId === volume.attachmentId) return mount(status.pid);
    await handle.unmount({ force: true });
    await waitAgentGone(handle, 15_000, status.pid);
  }
  checkOverlayBelongsTo(stateDir, mountPath, volume.volume);
  const client = scopedClient(volume);
  try {
    const info = await client.request<wire.Volume>('GET', `/v1/volumes/${encodeURIComponent(volume.volume)}`);
    const config: MountConfig = {
      serverUrl: volume.serverUrl,
      volume: volume.volume,
      volumeId: info.id,
      attachmentId: volume.attachmentId,
      token: volume.token,
      host: options.host ?? hostname(),
      mountPath,
      subpath,
      readOnly: volume.readOnly,
      cacheSize: info.tuning.cacheSize,
      bufferSize: info.tuning.bufferSize,
      prefetch: info.tuning.prefetch,
      writeback: info.tuning.writeback,
      allowOther: true,
      ...(options.lowLatency ? { lowLatency: true } : {}),
      uid: options.ids.hostUid,
      gid: options.ids.hostGid,
      guest: { uid: options.ids.hostUid, gid: options.ids.hostGid, controlDir, mountPath: volume.path },
    };
    mkdirSync(join(sandboxDir, 'volumes'), { recursive: true, mode: 0o755 });
    writeMountConfig(stateDir, config);
    const spare = options.spareAgent?.();
    const started: StartedAgent = await startMountAgent(stateDir, {
      detached: false,
      ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
      ...(spare ? { spare } : {}),
    });
    const result = mount(started.pid);
    started.child.once('exit', (code, signal) => {
      if (!stopping.has(result)) options.onAgentExit?.(result, code, signal);
    });
    return result;
  } catch (e) {
    if (options.keepAttachmentOnFailure) throw e;
    const reason = e instanceof Error ? e.message : String(e);
    await client
      .request('POST', `/v1/attachments/${encodeURIComponent(volume.attachmentId)}/release`, {
        body: { failed: true, reason: `mount for a sandbox failed: ${reason}` },
      })
      .catch(() => undefined);
    throw e;
  }
}

/** Mounts every volume of a sandbox, in order; on a failure unmounts those already up and rethrows. */
export async function startVolumeMounts(
  sandboxDir: string,
  volumes: readonly RuntimeVolume[],
  options: VolumeMountOptions,
): Promise<VolumeMount[]> {
  const mounts: VolumeMount[] = [];
  try {
    for (const [i, v] of volumes.entries()) mounts.push(await startVolumeMount(sandboxDir, i, v, options));
  } catch (e) {
    await stopVolumeMounts(mounts, 'the sandbox could not start');
    throw e;
  }
  return mounts;
}

/**
 * Makes each mount's guest socket appear inside the sandbox as `volumeControlDir(index)/control.sock`: a hard
 * link in `guestDir` (the host directory the sandbox sees read-only at `/.stowage/volumes`), so nothing else
 * of the state dir is reachable. A link of an earlier agent's socket is replaced.
 */
export function exposeGuestSockets(guestDir: string, mounts: readonly VolumeMount[]): void {
  for (const m of mounts) {
    // guestDir is `${AGENT_MOUNT}/volumes` inside, so this is volumeControlDir(index)/control.sock there.
    const dir = join(guestDir, String(m.index));
    mkdirSync(dir, { recursive: true, mode: 0o755 });
    const link = join(dir, 'control.sock');
    rmSync(link, { force: true });
    linkSync(m.guestSocket, link);
  }
}

/**
 * Ends one mount once the sandbox's processes are gone: a final commit of a
 * writable mount (so nothing written inside is lost), then the unmount, after
 * which the agent releases its attachment with its own token. When the final
 * commit fails the mount is still unmounted (its overlay stays in the state
 * dir) and the error is reported. Never throws.
 */
export async function stopVolumeMount(
  given: VolumeMount,
  reason: string,
  revive?: VolumeMountOptions,
): Promise<VolumeStopResult> {
  let mount = given;
  stopping.add(mount);
  const result: VolumeStopResult = { index: mount.index, volume: mount.volume.volume, commit: null, skipped: [] };
  const config = readMountConfig(mount.stateDir);
  let pid = await mount.handle.status().then(
    (s) => s.pid,
    () => undefined,
  );
  let resumeError: string | undefined;
  if (pid === undefined && revive && !mount.volume.readOnly && existsSync(join(mount.stateDir, 'overlay'))) {
    // Its agent died (or the machine went down) with work in the overlay: an agent started again replays it,
    // so the final commit below carries it.
    await lazyUnmount(mount.mountPath);
    // The server may be starting too (a host daemon recovers as its server starts): wait for it a while.
    const deadline = Date.now() + (revive.serverWaitMs ?? 0);
    for (;;) {
      try {
        // The attachment must outlive a failed try (a server coming up between a refused call and the
        // release would take it, and its token, from the next try); the stop releases it in the end.
        mount = await startVolumeMount(sandboxDirOf(mount), mount.index, mount.volume, {
          ...revive,
          onAgentExit: undefined,
          keepAttachmentOnFailure: true,
        });
        stopping.add(mount);
        pid = mount.pid;
        break;
      } catch (e) {
        resumeError = (e as Error).message;
        if (!isStowageError(e, 'Unavailable') || Date.now() >= deadline || revive.signal?.aborted) break;
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
  }
  if (pid === undefined) {
    // The agent is gone: clear its dead mount and release its attachment with its own token.
    await lazyUnmount(mount.mountPath);
    if (config)
      await scopedClient({ ...mount.volume, token: config.token, serverUrl: config.serverUrl })
        .request('POST', `/v1/attachments/${encodeURIComponent(config.attachmentId)}/release`, {
          body: { failed: true, reason: `mount agent not running when the sandbox ended (${reason})` },
        })
        .catch(() => undefined);
    result.error =
      resumeError !== undefined
        ? `the mount agent was not running and could not be started again to commit its overlay (${resumeError})`
        : 'the mount agent was not running: uncommitted changes, if any, stay in its overlay';
    return result;
  }
  if (!mount.volume.readOnly) {
    try {
      const res = await mount.handle.commit({ message: `sandbox ended: ${reason}` });
      result.commit = res.commit;
      result.skipped = res.skipped.map((s) => s.path);
    } catch (e) {
      result.error = `final commit failed: ${(e as Error).message}`;
    }
  }
  try {
    await mount.handle.unmount({ force: true });
  } catch (e) {
    // It ended between the two calls: the kernel mount may be left.
    if (!isStowageError(e, 'Unavailable')) result.error ??= `unmount failed: ${(e as Error).message}`;
  }
  if (!(await waitAgentGone(mount.handle, 15_000, pid))) {
    result.error ??= 'the mount agent did not exit after unmounting; killed';
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
    await lazyUnmount(mount.mountPath);
  }
  return result;
}

/**
 * Ends every mount of a sandbox (in parallel; each one's failure is reported, not thrown). With `revive`, a
 * writable mount whose agent is gone is started again first, so the work in its overlay is committed.
 */
export function stopVolumeMounts(
  mounts: readonly VolumeMount[],
  reason: string,
  revive?: VolumeMountOptions,
): Promise<VolumeStopResult[]> {
  return Promise.all(mounts.map((m) => stopVolumeMount(m, reason, revive)));
}

/** Where overlays that a sandbox's end could not commit are moved, so removing its state never deletes them. */
export const KEPT_OVERLAYS_DIR = 'sandbox-kept';

/**
 * Moves the state dir (overlay, config) of each mount whose stop failed and that still has an overlay to
 * `<dataDir>/sandbox-kept/<sandboxId>/<index>`, out of the sandbox's directory; returns where each went.
 */
export function keepUncommitted(
  dataDir: string,
  sandboxId: string,
  mounts: readonly VolumeMount[],
  results: readonly VolumeStopResult[],
): string[] {
  const kept: string[] = [];
  for (const r of results) {
    const mount = mounts.find((m) => m.index === r.index);
    if (!r.error || !mount || !existsSync(join(mount.stateDir, 'overlay'))) continue;
    const to = join(dataDir, KEPT_OVERLAYS_DIR, sandboxId, String(r.index));
    mkdirSync(dirname(to), { recursive: true, mode: 0o700 });
    rmSync(to, { recursive: true, force: true });
    renameSync(mount.stateDir, to);
    kept.push(to);
  }
  return kept;
}

/**
 * Ends a sandbox's mounts for good, the one way for its supervisor and for a daemon burying it: stopped with
 * `revive`, each outcome logged, and the overlays that still could not be committed moved out of the sandbox's
 * directory (keepUncommitted) before it is removed. Returns the problems, a line each.
 */
export async function endVolumeMounts(
  dataDir: string,
  sandboxId: string,
  mounts: readonly VolumeMount[],
  reason: string,
  revive: VolumeMountOptions,
  log: (line: string) => void,
): Promise<string[]> {
  const results = await stopVolumeMounts(mounts, reason, revive);
  const problems: string[] = [];
  for (const r of results) {
    const what = r.commit ? `committed ${r.commit.id.slice(0, 12)}` : 'nothing to commit';
    log(`volume ${r.volume}: ${what}${r.skipped.length ? `, skipped ${r.skipped.join(', ')}` : ''}`);
    if (r.error) problems.push(`volume ${r.volume}: ${r.error}`);
  }
  try {
    for (const to of keepUncommitted(dataDir, sandboxId, mounts, results))
      problems.push(`uncommitted work kept at ${to}`);
  } catch (e) {
    problems.push(`keeping uncommitted work: ${(e as Error).message}`);
  }
  return problems;
}

/** The sandbox directory a mount lives under (`<sandboxDir>/volumes/<n>`). */
function sandboxDirOf(mount: VolumeMount): string {
  return dirname(dirname(mount.mountPath));
}

/**
 * The volume mounts of a sandbox whose supervisor is gone, as they stand on the host, so they can be stopped
 * the usual way (a final commit through an agent still running, the unmount, the release).
 */
export function orphanedVolumeMounts(sandboxDir: string, volumes: readonly RuntimeVolume[]): VolumeMount[] {
  return volumes.map((volume, index) => {
    const { mountPath, stateDir } = volumeMountPaths(sandboxDir, index);
    return {
      index,
      volume,
      mountPath,
      stateDir,
      handle: new MountHandle(mountPath, { stateDir }),
      pid: 0,
      bind: { source: mountPath, target: volume.path, readOnly: volume.readOnly },
      guestSocket: join(stateDir, GUEST_CONTROL_SOCKET),
    };
  });
}
