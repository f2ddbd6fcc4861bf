/**
 * @module cli/commands/volume-commands
 * `stowage volume ...`: create, list, inspect, delete, snapshot, restore,
 * fork, resize and show the history of volumes, list their attachments
 * (mounts) and detach one, through the SDK.
 */
import type { Command } from 'commander';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import type { AccessMode, Attachment, Commit, Snapshot, VolumeInfo } from '@stowage/sdk';
import { Volume } from '@stowage/sdk';
import { ACCESS_MODES } from '@stowage/sdk/model/records.js';
import { parseCount } from '../arg-parsers.js';
import { clientOf, type GlobalOptions } from '../client-config.js';
import { bytes, printFields, printJson, printLine, printTable, shortId, when } from '../output.js';

function accessModeOf(input: string | undefined): AccessMode | undefined {
  if (input === undefined) return undefined;
  const m = input.toUpperCase();
  if (!(ACCESS_MODES as readonly string[]).includes(m))
    throw new InvalidArgumentError(`invalid access mode ${JSON.stringify(input)}: use RWO, ROX or RWX`);
  return m as AccessMode;
}

async function open(cmd: Command, name: string): Promise<Volume> {
  return Volume.get(name, { client: clientOf(cmd.optsWithGlobals<GlobalOptions>()) });
}

/** The fields `volume get` shows. */
function volumeFields(v: VolumeInfo): Array<[string, string]> {
  return [
    ['name', v.name],
    ['id', v.id],
    ['access mode', v.accessMode],
    ['size', `${bytes(v.size)} (${v.size} bytes)`],
    ['cap', `${bytes(v.cap)} (${v.cap} bytes)`],
    ['files', String(v.fileCount)],
    ['head', v.head],
    ['cache size', bytes(v.tuning.cacheSize)],
    ['buffer size', bytes(v.tuning.bufferSize)],
    ['prefetch', String(v.tuning.prefetch)],
    ['writeback', String(v.tuning.writeback)],
    ['created', when(v.createdAt)],
    ['updated', when(v.updatedAt)],
  ];
}

function printVolumes(vols: VolumeInfo[]): void {
  printTable(
    ['NAME', 'MODE', 'SIZE', 'CAP', 'FILES', 'HEAD', 'UPDATED'],
    vols.map((v) => [
      v.name,
      v.accessMode,
      bytes(v.size),
      bytes(v.cap),
      String(v.fileCount),
      shortId(v.head),
      when(v.updatedAt),
    ]),
    ['left', 'left', 'right', 'right', 'right'],
  );
}

function printSnapshots(snaps: Snapshot[]): void {
  printTable(
    ['NAME', 'COMMIT', 'CREATED'],
    snaps.map((s) => [s.name, shortId(s.commit), when(s.createdAt)]),
  );
}

function printCommits(commits: Commit[]): void {
  printTable(
    ['SEQ', 'COMMIT', 'CREATED', 'AUTHOR', 'CHANGED', 'SIZE', 'MESSAGE'],
    commits.map((c) => [
      String(c.seq),
      shortId(c.id),
      when(c.createdAt),
      c.author,
      String(c.changed),
      bytes(c.size),
      c.message,
    ]),
    ['right', 'left', 'left', 'left', 'right', 'right'],
  );
}

function printAttachments(list: Attachment[]): void {
  printTable(
    ['ID', 'STATE', 'ACCESS', 'WHERE', 'LEASE/REASON'],
    // A mounted attachment shows when its lease runs out; a finished one, why it ended.
    list.map((a) => [
      a.id,
      a.state,
      a.readOnly ? 'ro' : 'rw',
      `${a.host}:${a.path}`,
      a.state === 'mounted' ? `until ${when(a.leaseExpiresAt)}` : (a.reason ?? ''),
    ]),
  );
}

/** Registers `stowage volume` and its subcommands. */
export function registerVolumeCommands(program: Command): void {
  const volume = program.command('volume').description('create, list, snapshot, restore, fork and resize volumes');

  volume
    .command('create')
    .description('create a volume')
    .argument('<name>', 'volume name: 1-63 of a-z 0-9 . _ -')
    .option('--access-mode <mode>', 'RWO (one writer, default), ROX (read-only, many) or RWX (many writers)')
    .option('--cap <size>', 'size cap, e.g. 2G (default: the tenant default)')
    .option('--json', 'print the volume as JSON')
    .action(async (name: string, opts: { accessMode?: string; cap?: string; json?: boolean }, cmd: Command) => {
      const mode = accessModeOf(opts.accessMode);
      const v = await Volume.create(name, {
        client: clientOf(cmd.optsWithGlobals<GlobalOptions>()),
        ...(mode ? { accessMode: mode } : {}),
        ...(opts.cap !== undefined ? { cap: opts.cap } : {}),
      });
      if (opts.json) printJson(v.info);
      else printLine(`created volume ${v.name} (${v.id}, ${v.info.accessMode}, cap ${bytes(v.info.cap)})`);
    });

  volume
    .command('ls')
    .description('list volumes')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const vols = (await Volume.list({ client: clientOf(cmd.optsWithGlobals<GlobalOptions>()) })).map((v) => v.info);
      if (opts.json) printJson(vols);
      else printVolumes(vols);
    });

  volume
    .command('get')
    .description('show a volume')
    .argument('<name>', 'volume name')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const v = await open(cmd, name);
      if (opts.json) printJson(v.info);
      else printFields(volumeFields(v.info));
    });

  volume
    .command('rm')
    .description('delete a volume (garbage collection reclaims data no fork or snapshot uses)')
    .argument('<name>', 'volume name')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const v = await open(cmd, name);
      await v.delete();
      printLine(`deleted volume ${name}`);
    });

  volume
    .command('snapshot')
    .description('snapshot the head of a volume (name defaults to a timestamp)')
    .argument('<name>', 'volume name')
    .argument('[snapshot]', 'snapshot name')
    .option('--json', 'print the snapshot as JSON')
    .action(async (name: string, snapshot: string | undefined, opts: { json?: boolean }, cmd: Command) => {
      const v = await open(cmd, name);
      const s = await v.snapshot(snapshot);
      if (opts.json) printJson(s);
      else printLine(`created snapshot ${s.name} of ${name} at commit ${shortId(s.commit)}`);
    });

  volume
    .command('snapshots')
    .description("list a volume's snapshots")
    .argument('<name>', 'volume name')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const snaps = await (await open(cmd, name)).snapshots();
      if (opts.json) printJson(snaps);
      else printSnapshots(snaps);
    });

  volume
    .command('snapshot-rm')
    .description('delete a snapshot')
    .argument('<name>', 'volume name')
    .argument('<snapshot>', 'snapshot name')
    .action(async (name: string, snapshot: string, _opts: unknown, cmd: Command) => {
      await (await open(cmd, name)).deleteSnapshot(snapshot);
      printLine(`deleted snapshot ${snapshot} of ${name}`);
    });

  volume
    .command('restore')
    .description("make a snapshot's files the volume's head (a new commit; history is kept)")
    .argument('<name>', 'volume name')
    .argument('<snapshot>', 'snapshot name')
    .option('--json', 'print the commit as JSON')
    .action(async (name: string, snapshot: string, opts: { json?: boolean }, cmd: Command) => {
      const res = await (await open(cmd, name)).restore(snapshot);
      if (opts.json) printJson(res);
      else printLine(`restored ${name} to snapshot ${snapshot} (commit ${shortId(res.commit.id)})`);
    });

  volume
    .command('fork')
    .description('create a copy-on-write copy of a volume (O(1))')
    .argument('<name>', 'source volume')
    .argument('<new_name>', 'name of the new volume')
    .option('--snapshot <snapshot>', 'start at this snapshot instead of the head')
    .option('--commit <commit>', 'start at this commit instead of the head')
    .option('--access-mode <mode>', 'access mode of the new volume')
    .option('--cap <size>', 'cap of the new volume')
    .option('--json', 'print the new volume as JSON')
    .action(
      async (
        name: string,
        newName: string,
        opts: { snapshot?: string; commit?: string; accessMode?: string; cap?: string; json?: boolean },
        cmd: Command,
      ) => {
        const mode = accessModeOf(opts.accessMode);
        const src = await open(cmd, name);
        const f = await src.fork(newName, {
          ...(opts.snapshot !== undefined ? { snapshot: opts.snapshot } : {}),
          ...(opts.commit !== undefined ? { commit: opts.commit } : {}),
          ...(mode ? { accessMode: mode } : {}),
          ...(opts.cap !== undefined ? { cap: opts.cap } : {}),
        });
        if (opts.json) printJson(f.info);
        else printLine(`forked ${name}${opts.snapshot ? ` at snapshot ${opts.snapshot}` : ''} to ${f.name} (${f.id})`);
      },
    );

  volume
    .command('resize')
    .description("change a volume's size cap")
    .argument('<name>', 'volume name')
    .argument('<cap>', 'new cap, e.g. 10G')
    .option('--json', 'print the volume as JSON')
    .action(async (name: string, cap: string, opts: { json?: boolean }, cmd: Command) => {
      const info = await (await open(cmd, name)).resize(cap);
      if (opts.json) printJson(info);
      else printLine(`resized ${name}: cap ${bytes(info.cap)}, ${bytes(info.size)} used`);
    });

  volume
    .command('attachments')
    .description("list a volume's attachments (mounts): mounted ones, or all with --all")
    .argument('<name>', 'volume name')
    .option('--all', 'also released and failed attachments, with their reasons')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { all?: boolean; json?: boolean }, cmd: Command) => {
      const list = await (await open(cmd, name)).attachments({ all: opts.all === true });
      if (opts.json) printJson(list);
      else printAttachments(list);
    });

  volume
    .command('detach')
    .description('release an attachment (e.g. of a mount whose machine is gone) and revoke its mount token')
    .argument('<attachment_id>', 'attachment id (att_...)')
    .option('--failed <reason>', 'mark it failed with this reason instead of released')
    .option('--json', 'print the attachment as JSON')
    .action(async (id: string, opts: { failed?: string; json?: boolean }, cmd: Command) => {
      const client = clientOf(cmd.optsWithGlobals<GlobalOptions>());
      const a = await client.releaseAttachment(
        id,
        opts.failed !== undefined ? { failed: true, reason: opts.failed } : {},
      );
      if (opts.json) printJson(a);
      else
        printLine(
          `detached ${a.id} (${a.volume} at ${a.host}:${a.path}): ${a.state}${a.reason ? `, ${a.reason}` : ''}`,
        );
    });

  volume
    .command('log')
    .description("show a volume's commits, newest first")
    .argument('<name>', 'volume name')
    .option('--limit <n>', 'how many commits', '20')
    .option('--before <seq>', 'only commits older than this seq (for paging)')
    .option('--json', 'print JSON')
    .action(async (name: string, opts: { limit: string; before?: string; json?: boolean }, cmd: Command) => {
      const limit = parseCount(opts.limit, 'limit');
      const before = opts.before === undefined ? undefined : parseCount(opts.before, 'seq', 0);
      const page = await (await open(cmd, name)).history({ limit, ...(before !== undefined ? { before } : {}) });
      if (opts.json) printJson(page);
      else printCommits(page.commits);
    });
}
