/**
 * @module cli/commands/file-commands
 * The file commands on `VOLUME:/path` targets: put, get, cat, ls, stat, rm,
 * mv, mkdir. Each change is one commit. Transfers stream (never the whole
 * file in memory) and show a progress bar on a terminal when they take a
 * while.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { randomHex } from '@stowage/sdk/common/ids.js';
import type { FileInfo, WriteResult } from '@stowage/sdk';
import { Volume } from '@stowage/sdk';
import { parseMode, parseTarget } from '../arg-parsers.js';
import { clientOf, type GlobalOptions } from '../client-config.js';
import { bytes, octal, printFields, printJson, printLine, printTable, shortId, when, whenNs } from '../output.js';
import { startProgress } from '../progress-bar.js';

async function open(cmd: Command, volume: string): Promise<Volume> {
  return Volume.get(volume, { client: clientOf(cmd.optsWithGlobals<GlobalOptions>()) });
}

/** `ls -l`-style permissions: type letter and rwx triplets. */
function permissions(e: FileInfo): string {
  const type = e.type === 'dir' ? 'd' : e.type === 'symlink' ? 'l' : '-';
  let s = '';
  for (let shift = 6; shift >= 0; shift -= 3) {
    const bits = (e.mode >> shift) & 7;
    s += (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (bits & 1 ? 'x' : '-');
  }
  return type + s;
}

/** The recorded owner as `uid:gid` ("-" for a part not recorded), or undefined when neither is. */
function ownerOf(e: FileInfo): string | undefined {
  if (e.uid === undefined && e.gid === undefined) return undefined;
  return `${e.uid ?? '-'}:${e.gid ?? '-'}`;
}

function printEntries(entries: FileInfo[], full: boolean): void {
  const name = (e: FileInfo) =>
    `${full ? e.path : e.name}${e.type === 'dir' ? '/' : ''}${e.type === 'symlink' && e.target !== undefined ? ` -> ${e.target}` : ''}`;
  // An OWNER column only when some entry records one (mounts that chown); absent: the reader's own, as on a mount.
  if (entries.some((e) => ownerOf(e) !== undefined)) {
    printTable(
      ['MODE', 'OWNER', 'SIZE', 'MODIFIED', 'NAME'],
      entries.map((e) => [
        permissions(e),
        ownerOf(e) ?? '-',
        e.type === 'dir' ? '-' : bytes(e.size),
        when(e.mtime),
        name(e),
      ]),
      ['left', 'left', 'right'],
    );
    return;
  }
  printTable(
    ['MODE', 'SIZE', 'MODIFIED', 'NAME'],
    entries.map((e) => [permissions(e), e.type === 'dir' ? '-' : bytes(e.size), when(e.mtime), name(e)]),
    ['left', 'right'],
  );
}

/** Writes a byte stream to stdout, honouring back-pressure. */
async function toStdout(stream: Readable): Promise<void> {
  for await (const chunk of stream) {
    if (!process.stdout.write(chunk as Buffer)) await once(process.stdout, 'drain');
  }
}

/** `put` into a directory: a target ending in "/" receives the local file's name. */
function putTargetSpec(source: string, spec: string): string {
  if (!/:.*\/$/.test(spec)) return spec;
  if (source === '-') throw new InvalidArgumentError(`name the file to write standard input to: ${spec}NAME`);
  return spec + basename(source);
}

/** Registers put, get, cat, ls, stat, rm, mv and mkdir. */
export function registerFileCommands(program: Command): void {
  program
    .command('put')
    .description('upload a local file (or standard input) to a volume as one commit; only changed chunks are sent')
    .argument('<source>', 'local file, or - for standard input')
    .argument('<target>', 'VOLUME:/path (ending in "/" to keep the file name)')
    .option('--mode <octal>', "permission bits, e.g. 644 (default: the local file's; 644 for standard input)")
    .option('--json', 'print the result as JSON')
    .action(async (source: string, target: string, opts: { mode?: string; json?: boolean }, cmd: Command) => {
      const t = parseTarget(putTargetSpec(source, target));
      const mode = opts.mode === undefined ? undefined : parseMode(opts.mode);
      const vol = await open(cmd, t.volume);
      const progress = startProgress();
      let res: WriteResult;
      try {
        const o = { ...(mode !== undefined ? { mode } : {}), onProgress: progress.listener };
        res =
          source === '-'
            ? await vol.files.write(t.path, process.stdin, o)
            : await vol.files.writeFile(t.path, source, o);
      } finally {
        progress.stop();
      }
      if (opts.json) printJson(res);
      else
        printLine(
          `wrote ${t.volume}:${res.path} (${bytes(res.size)}, ${res.chunks} chunk${res.chunks === 1 ? '' : 's'}, ${res.uploadedChunks} uploaded, ${bytes(res.uploadedBytes)} sent) in commit ${shortId(res.commit.id)}`,
        );
    });

  program
    .command('get')
    .description('download a file from a volume')
    .argument('<source>', 'VOLUME:/path')
    .argument('[dest]', 'local file, or - for standard output (default: the file name, here)')
    .option('--commit <commit>', 'read at this commit instead of the head')
    .action(async (source: string, dest: string | undefined, opts: { commit?: string }, cmd: Command) => {
      const t = parseTarget(source);
      if (t.path === '/') throw new InvalidArgumentError(`${source} is the volume's root: name a file`);
      const vol = await open(cmd, t.volume);
      const readOpts = opts.commit !== undefined ? { commit: opts.commit } : {};
      if (dest === '-') {
        await toStdout(vol.files.readStream(t.path, readOpts));
        return;
      }
      // Like cp(1): into an existing directory, keep the file's name.
      const isDir = dest !== undefined && (await stat(dest).catch(() => undefined))?.isDirectory();
      const local = dest === undefined ? basename(t.path) : isDir ? join(dest, basename(t.path)) : dest;
      const partial = join(dirname(local), `.${basename(local)}.stowage-${randomHex(4)}`);
      const progress = startProgress();
      try {
        await pipeline(
          vol.files.readStream(t.path, { ...readOpts, onProgress: progress.listener }),
          createWriteStream(partial, { flags: 'wx' }),
        );
        await rename(partial, local);
      } catch (e) {
        await rm(partial, { force: true });
        throw e;
      } finally {
        progress.stop();
      }
      printLine(`downloaded ${t.volume}:${t.path} to ${local}`);
    });

  program
    .command('cat')
    .description('print a file of a volume')
    .argument('<target>', 'VOLUME:/path')
    .option('--commit <commit>', 'read at this commit instead of the head')
    .action(async (target: string, opts: { commit?: string }, cmd: Command) => {
      const t = parseTarget(target);
      const vol = await open(cmd, t.volume);
      await toStdout(vol.files.readStream(t.path, opts.commit !== undefined ? { commit: opts.commit } : {}));
    });

  program
    .command('ls')
    .description('list a directory of a volume')
    .argument('<target>', 'VOLUME or VOLUME:/path')
    .option('-r, --recursive', 'list everything below')
    .option('-l, --long', 'long listing (the default; accepted as ls(1) users type it)')
    .option('--commit <commit>', 'list at this commit instead of the head')
    .option('--json', 'print JSON')
    .action(async (target: string, opts: { recursive?: boolean; commit?: string; json?: boolean }, cmd: Command) => {
      const t = parseTarget(target, { allowBare: true });
      const vol = await open(cmd, t.volume);
      const at = opts.commit !== undefined ? { commit: opts.commit } : {};
      // Like ls(1), a file lists as itself.
      const self = t.path === '/' ? undefined : await vol.files.stat(t.path, at);
      const entries =
        self && self.type !== 'dir'
          ? [self]
          : await vol.files.list(t.path, { ...at, recursive: opts.recursive ?? false });
      if (opts.json) printJson(entries);
      else printEntries(entries, opts.recursive ?? false);
    });

  program
    .command('stat')
    .description('describe a file or directory of a volume')
    .argument('<target>', 'VOLUME:/path')
    .option('--commit <commit>', 'at this commit instead of the head')
    .option('--json', 'print JSON')
    .action(async (target: string, opts: { commit?: string; json?: boolean }, cmd: Command) => {
      const t = parseTarget(target, { allowBare: true });
      const e = await (await open(cmd, t.volume)).files.stat(
        t.path,
        opts.commit !== undefined ? { commit: opts.commit } : {},
      );
      if (opts.json) {
        printJson(e);
        return;
      }
      const fields: Array<[string, string]> = [
        ['path', e.path],
        ['type', e.type],
        ['size', `${bytes(e.size)} (${e.size} bytes)`],
        ['mode', octal(e.mode)],
      ];
      const owner = ownerOf(e);
      if (owner !== undefined) fields.push(['owner', owner]);
      // To the nanosecond once any time beyond mtime's millisecond is recorded (absent atime/ctime: the same as mtime).
      if (e.mtimeNs === undefined && e.atime === undefined && e.ctime === undefined)
        fields.push(['modified', when(e.mtime)]);
      else {
        fields.push(['modified', whenNs(e.mtime, e.mtimeNs)]);
        fields.push(['accessed', e.atime === undefined ? whenNs(e.mtime, e.mtimeNs) : whenNs(e.atime, e.atimeNs)]);
        fields.push(['changed', e.ctime === undefined ? whenNs(e.mtime, e.mtimeNs) : whenNs(e.ctime, e.ctimeNs)]);
      }
      if (e.fileCount !== undefined) fields.push(['files', String(e.fileCount)]);
      if (e.chunks !== undefined) fields.push(['chunks', `${e.chunks.length} of ${bytes(e.chunkSize ?? 0)}`]);
      if (e.target !== undefined) fields.push(['target', e.target]);
      printFields(fields);
    });

  program
    .command('rm')
    .description('remove a file, or a directory with -r (one commit)')
    .argument('<target>', 'VOLUME:/path')
    .option('-r, --recursive', 'remove a directory and everything below it')
    .option('-f, --force', 'succeed when the path does not exist')
    .action(async (target: string, opts: { recursive?: boolean; force?: boolean }, cmd: Command) => {
      const t = parseTarget(target);
      const res = await (await open(cmd, t.volume)).files.remove(t.path, {
        recursive: opts.recursive ?? false,
        force: opts.force ?? false,
      });
      printLine(`removed ${t.volume}:${t.path} in commit ${shortId(res.commit.id)}`);
    });

  program
    .command('mv')
    .description('move a file or directory within a volume (one commit)')
    .argument('<from>', 'VOLUME:/path')
    .argument('<to>', 'VOLUME:/path (same volume)')
    .option('-f, --force', 'replace an existing target')
    .action(async (from: string, to: string, opts: { force?: boolean }, cmd: Command) => {
      const a = parseTarget(from);
      const b = parseTarget(to);
      if (a.volume !== b.volume)
        throw new InvalidArgumentError(
          `mv works within one volume: ${a.volume} and ${b.volume} differ (use get and put to copy between volumes)`,
        );
      const res = await (await open(cmd, a.volume)).files.move(a.path, b.path, { overwrite: opts.force ?? false });
      printLine(`moved ${a.volume}:${a.path} to ${b.path} in commit ${shortId(res.commit.id)}`);
    });

  program
    .command('mkdir')
    .description('create a directory (and its parents) in a volume')
    .argument('<target>', 'VOLUME:/path')
    .option('--mode <octal>', 'permission bits, e.g. 755')
    .action(async (target: string, opts: { mode?: string }, cmd: Command) => {
      const t = parseTarget(target);
      const res = await (await open(cmd, t.volume)).files.mkdir(
        t.path,
        opts.mode !== undefined ? { mode: parseMode(opts.mode) } : {},
      );
      printLine(`created ${t.volume}:${t.path} in commit ${shortId(res.commit.id)}`);
    });
}
