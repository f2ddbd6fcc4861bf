/**
 * @module cli/commands/mount-commands
 * `stowage mount|unmount|commit|reload|mount-status`. `mount` asks the
 * server for an attachment (which enforces the access mode and issues a
 * token scoped to the one volume), writes the agent's config next to its
 * overlay, starts the agent detached, and returns once the file system is
 * mounted or with the reason it could not be. The tenant's token never
 * reaches the agent.
 *
 * Mounting a path whose agent died (SIGKILL, a crash) takes over its
 * attachment and replays its uncommitted overlay; `--recover DIR` does the
 * same with work kept elsewhere (a sandbox's end could not commit it).
 */
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type * as wire from '@stowage/sdk/api/wire.js';
import { AlreadyExistsError, InvalidArgumentError, StowageError, isStowageError } from '@stowage/sdk/common/errors.js';
import {
  DEFAULT_OPEN_FILES,
  mountStateDir,
  type MountConfig,
  type OverwrittenPath,
} from '@stowage/sdk/common/mount-state.js';
import { parseVolumeName } from '@stowage/sdk/common/paths.js';
import { parseSize } from '@stowage/sdk/common/sizes.js';
import { MountHandle, type MountReloadResult } from '@stowage/sdk/client/mount-control.js';
import {
  adoptMountState,
  agentAnswers,
  checkOverlayBelongsTo,
  lazyUnmount,
  readMountConfig,
  startMountAgent,
  waitAgentGone,
  writeMountConfig,
} from '../../mount/agent-launch.js';
import { WakeLatencyHold } from '../../mount/fuse/wake-latency.js';
import { parseCount } from '../arg-parsers.js';
import { clientOf, type GlobalOptions } from '../client-config.js';
import { bytes, printJson, printLine, printNote, shortId } from '../output.js';

interface MountOptions {
  readOnly?: boolean;
  subpath?: string;
  cacheSize?: string;
  bufferSize?: string;
  prefetch?: string;
  openFiles?: string;
  writeback?: boolean;
  lowLatency?: boolean;
  host?: string;
  allowOther?: boolean;
  uid?: string;
  gid?: string;
  recover?: string;
}

/** A user or group id for --uid/--gid: a decimal number a Linux id can be. */
function parseId(value: string, flag: string): number {
  const n = /^\d{1,10}$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n > 4294967294)
    throw new InvalidArgumentError(
      `invalid ${flag} ${JSON.stringify(value)}: give a numeric id between 0 and 4294967294`,
    );
  return n;
}

/** Tells the earlier writer: the paths of this mount's commits that later commits of others changed (one line each, path then commit). */
function printOverwrites(list: readonly OverwrittenPath[], print: (text: string) => void): void {
  if (list.length === 0) return;
  print(
    `${list.length} path${list.length === 1 ? '' : 's'} this mount committed ${list.length === 1 ? 'was' : 'were'} changed since by another writer's later commit (your versions stay in history):`,
  );
  for (const o of list) print(`  ${o.path}  (commit ${shortId(o.commit)})`);
}

function normaliseSubpath(input: string | undefined): string {
  if (input === undefined || input === '' || input === '/') return '/';
  if (!input.startsWith('/') || input.includes('\0') || input.split('/').some((p) => p === '..' || p === '.'))
    throw new InvalidArgumentError(
      `invalid --subpath ${JSON.stringify(input)}: use an absolute path inside the volume, like /data`,
    );
  return '/' + input.split('/').filter(Boolean).join('/');
}

async function mount(volumeArg: string, pathArg: string, opts: MountOptions, globals: GlobalOptions): Promise<void> {
  const [volumePart, subFromArg] = volumeArg.includes(':')
    ? [volumeArg.slice(0, volumeArg.indexOf(':')), volumeArg.slice(volumeArg.indexOf(':') + 1)]
    : [volumeArg, undefined];
  const volume = parseVolumeName(volumePart);
  const subpath = normaliseSubpath(opts.subpath ?? subFromArg);
  const owner = {
    ...(opts.uid !== undefined ? { uid: parseId(opts.uid, '--uid') } : {}),
    ...(opts.gid !== undefined ? { gid: parseId(opts.gid, '--gid') } : {}),
  };
  const mountPath = resolve(pathArg);
  const stateDir = mountStateDir(mountPath);
  const handle = new MountHandle(mountPath);
  if (await agentAnswers(handle))
    throw new AlreadyExistsError(`${mountPath} is already mounted; unmount it first (stowage unmount ${pathArg})`);
  if (opts.recover !== undefined) await adoptMountState(resolve(opts.recover), stateDir, mountPath, volume);
  checkOverlayBelongsTo(stateDir, mountPath, volume);
  const previous = readMountConfig(stateDir);
  const client = clientOf(globals);
  const host = opts.host ?? hostname();
  const readOnly = opts.readOnly === true;
  const attachPath = `/v1/volumes/${encodeURIComponent(volume)}/attachments`;
  let attached: wire.AttachResponse;
  const fresh: wire.AttachRequest = { host, path: mountPath, readOnly };
  if (previous?.volume === volume && previous.attachmentId) {
    try {
      attached = await client.request<wire.AttachResponse>('POST', attachPath, {
        body: { ...fresh, resume: previous.attachmentId },
      });
    } catch (e) {
      // The old attachment is gone for good (released, or taken over): start a new one; the overlay still replays.
      if (!isStowageError(e, 'NotFound') && !isStowageError(e, 'Conflict')) throw e;
      attached = await client.request<wire.AttachResponse>('POST', attachPath, { body: fresh });
    }
  } else {
    attached = await client.request<wire.AttachResponse>('POST', attachPath, { body: fresh });
  }
  const tuning = attached.volume.tuning;
  const config: MountConfig = {
    serverUrl: client.url,
    volume,
    volumeId: attached.volume.id,
    attachmentId: attached.attachment.id,
    token: attached.token,
    host,
    mountPath,
    subpath,
    readOnly,
    cacheSize: opts.cacheSize !== undefined ? parseSize(opts.cacheSize) : tuning.cacheSize,
    bufferSize: opts.bufferSize !== undefined ? parseSize(opts.bufferSize) : tuning.bufferSize,
    prefetch: opts.prefetch !== undefined ? parseCount(opts.prefetch, '--prefetch', 0) : tuning.prefetch,
    writeback: opts.writeback ?? tuning.writeback,
    ...(opts.allowOther ? { allowOther: true } : {}),
    // Unless told either way, hold where the agent may (it runs as this user): see mount/fuse/wake-latency.ts.
    ...((opts.lowLatency ?? WakeLatencyHold.available()) ? { lowLatency: true } : {}),
    ...owner,
    ...(opts.openFiles !== undefined ? { openFiles: parseCount(opts.openFiles, '--open-files', 1) } : {}),
  };
  writeMountConfig(stateDir, config);
  try {
    // Detached, and let go once mounted: the agent outlives this command.
    (await startMountAgent(stateDir, { detached: true })).child.unref();
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    await client
      .request('POST', `/v1/attachments/${encodeURIComponent(attached.attachment.id)}/release`, {
        body: { failed: true, reason },
      })
      .catch(() => undefined);
    throw e;
  }
  printNote(
    `mounted ${volume}${subpath === '/' ? '' : ':' + subpath} at ${mountPath}${readOnly ? ' read-only' : ''}${config.writeback ? ' with writeback' : ''}${config.lowLatency ? ', low latency' : ''} (attachment ${attached.attachment.id}; cache ${bytes(config.cacheSize)})`,
  );
}

/** Registers the mount commands. */
export function registerMountCommands(program: Command): void {
  program
    .command('mount')
    .description('mount a volume through FUSE (lazy; changes stay local until `stowage commit`)')
    .argument('<volume>', 'volume name, optionally VOLUME:/subdir')
    .argument('<path>', 'an empty local directory (created when missing)')
    .option('--read-only', 'refuse writes (EROFS); allowed alongside a read-write mount of an RWO volume')
    .option('--subpath <dir>', 'mount only this directory of the volume')
    .option('--cache-size <size>', "local chunk cache bound, e.g. 1G (default: the volume's tuning)")
    .option('--buffer-size <size>', 'in-memory bound of chunks being fetched, e.g. 32M')
    .option('--prefetch <n>', 'chunks read ahead on sequential reads')
    .option(
      '--open-files <n>',
      `descriptors of uncommitted files the agent keeps open at most (default ${DEFAULT_OPEN_FILES}); the number of uncommitted files is not bounded by it`,
    )
    .option('--writeback', 'commit automatically 2 s after changes settle (at most 10 s after the first)')
    .option(
      '--low-latency',
      'keep idle CPUs from sleeping while requests come back to back (about 2x faster small-file work on VMs; idle CPUs spin meanwhile); the default where you are root; fails without root',
    )
    .option('--no-low-latency', 'let idle CPUs sleep whatever the request rate')
    .option('--host <name>', "host name recorded in the attachment (default: this machine's)")
    .option(
      '--allow-other',
      'let other users use the mount (permissions are checked as on a local disk); needed to bind it into a sandbox',
    )
    .option('--uid <id>', 'owner shown for entries that record none, and recorded as none (default: your uid)')
    .option('--gid <id>', 'group shown for entries that record none, and recorded as none (default: your gid)')
    .option(
      '--recover <dir>',
      "take the uncommitted work kept in DIR (a sandbox's sandbox-kept/SANDBOX/N, or another mount's state) to replay here; then commit",
    )
    .action(async (volume: string, path: string, opts: MountOptions, cmd: Command) => {
      await mount(volume, path, opts, cmd.optsWithGlobals<GlobalOptions>());
    });

  program
    .command('unmount')
    .alias('umount')
    .description('unmount and release the attachment (refused while changes are uncommitted unless --force)')
    .argument('<path>', 'the mount path')
    .option('--force', 'unmount even with uncommitted changes (they stay on this host for the next mount of the path)')
    .action(async (path: string, opts: { force?: boolean }, cmd: Command) => {
      const handle = new MountHandle(path);
      try {
        const pid = await handle.status().then(
          (st) => st.pid,
          () => undefined,
        );
        await handle.unmount({ force: opts.force === true });
        await waitAgentGone(handle, 15_000, pid);
        printNote(`unmounted ${handle.mountPath}`);
      } catch (e) {
        if (!isStowageError(e, 'Unavailable')) throw e;
        // The agent is dead: clear the stale kernel mount and release its attachment with the tenant's token.
        const config = readMountConfig(mountStateDir(handle.mountPath));
        await lazyUnmount(handle.mountPath);
        if (config) {
          await clientOf(cmd.optsWithGlobals<GlobalOptions>())
            .request('POST', `/v1/attachments/${encodeURIComponent(config.attachmentId)}/release`, {
              body: { failed: true, reason: 'agent not running at unmount' },
            })
            .catch(() => undefined);
        }
        printNote(
          `unmounted ${handle.mountPath} (its agent was not running; uncommitted changes, if any, stay on this host for the next mount)`,
        );
      }
    });

  program
    .command('commit')
    .description("upload a mount's changed chunks and publish one commit")
    .argument('<path>', 'the mount path')
    .option('-m, --message <text>', 'commit message')
    .option('--json', 'print the result as JSON')
    .action(async (path: string, opts: { message?: string; json?: boolean }) => {
      const res = await new MountHandle(path).commit(opts.message !== undefined ? { message: opts.message } : {});
      if (opts.json) return printJson(res);
      if (!res.commit) return printNote('nothing to commit');
      printLine(res.commit.id);
      printNote(
        `committed ${res.changes} change${res.changes === 1 ? '' : 's'} as ${shortId(res.commit.id)} (seq ${res.commit.seq}); uploaded ${res.uploadedChunks} chunk${res.uploadedChunks === 1 ? '' : 's'} (${bytes(res.uploadedBytes)})`,
      );
      if (res.overwritten.length > 0)
        printNote(
          `overwrote newer work of another writer on: ${res.overwritten.join(', ')} (the earlier versions stay in history)`,
        );
      for (const s of res.skipped) printNote(`skipped ${s.path}: ${s.reason}`);
    });

  program
    .command('reload')
    .description("move a mount to the volume's latest commit (refused while changes are uncommitted unless --force)")
    .argument('<path>', 'the mount path')
    .option('--force', 'discard uncommitted changes')
    .option('--json', 'print the result as JSON')
    .action(async (path: string, opts: { force?: boolean; json?: boolean }) => {
      let res: MountReloadResult;
      try {
        res = await new MountHandle(path).reload({ force: opts.force === true });
      } catch (e) {
        if (isStowageError(e, 'Conflict') && e.details && typeof e.details.pending === 'number') {
          const n = e.details.pending;
          throw new StowageError(
            'Conflict',
            `reload would discard ${n} uncommitted change${n === 1 ? '' : 's'} in ${resolve(path)}; run \`stowage commit ${path}\` first, or \`stowage reload --force ${path}\` to discard them`,
          );
        }
        throw e;
      }
      if (opts.json) return printJson(res);
      printNote(
        `reloaded ${resolve(path)} at ${shortId(res.commit)}${res.discarded > 0 ? `; discarded ${res.discarded} uncommitted change${res.discarded === 1 ? '' : 's'}` : ''}`,
      );
      printOverwrites(res.overwrittenByOthers, printNote);
    });

  program
    .command('mount-status')
    .description('what a mount shows and how much is uncommitted')
    .argument('<path>', 'the mount path')
    .option('--json', 'print as JSON')
    .action(async (path: string, opts: { json?: boolean }) => {
      const s = await new MountHandle(path).status();
      if (opts.json) return printJson(s);
      printLine(
        `${s.volume}${s.subpath === '/' ? '' : ':' + s.subpath} at ${s.mountPath}${s.readOnly ? ' (read-only)' : ''}${s.writeback ? ' (writeback)' : ''}`,
      );
      printLine(
        `base ${shortId(s.base)}, ${s.pending} uncommitted change${s.pending === 1 ? '' : 's'}, attachment ${s.attachmentId}, agent pid ${s.pid}`,
      );
      printLine(
        `cache ${bytes(s.cache.bytes)} of ${bytes(s.cache.capacity)} (${s.cache.chunks} chunks, ${s.cache.hits} hits, ${s.cache.misses} misses, ${s.cache.evictions} evictions)`,
      );
      printLine(
        s.lowLatency
          ? `low latency: ${s.lowLatency.holding ? 'holding idle CPUs awake now' : 'idle CPUs may sleep now'} (${s.lowLatency.holds} bursts held, ${(s.lowLatency.heldMs / 1000).toFixed(1)} s in all)`
          : 'low latency: off',
      );
      printOverwrites(s.overwrittenByOthers, printLine);
    });
}
