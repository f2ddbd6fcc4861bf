/**
 * @module cli/commands/upload-commands
 * `stowage upload SOURCE VOLUME:/path`: a local file, a whole local directory
 * (one commit) or standard input (`-`). With --resumable a file goes over
 * tus: run the same command again after an interruption and it continues
 * where the server stopped. A progress bar
 * appears on a terminal for transfers over a second.
 */
import { lstat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { parseSize } from '@stowage/sdk/common/sizes.js';
import { Volume, type UploadResult } from '@stowage/sdk';
import { parseMode, parseTarget } from '../arg-parsers.js';
import { clientOf, type GlobalOptions } from '../client-config.js';
import { bytes, printJson, printLine, printNote, shortId } from '../output.js';
import { startProgress } from '../progress-bar.js';

interface UploadFlags {
  resumable?: boolean;
  mode?: string;
  message?: string;
  limitRate?: string;
  json?: boolean;
}

/**
 * The remote path for `source`: a target ending in "/" (or the bare root)
 * receives a file under its own name; a directory's contents go under the
 * target directory.
 *
 * @example
 * remoteTarget('./a.bin', 'file', 'data:/in/'); // { volume: 'data', path: '/in/a.bin' }
 */
export function remoteTarget(
  source: string,
  kind: 'file' | 'directory' | 'stdin',
  spec: string,
): { volume: string; path: string } {
  const i = spec.indexOf(':');
  const intoDir = i >= 0 && spec.length > i + 1 && spec.endsWith('/') && spec !== `${spec.slice(0, i)}:/`;
  const t = parseTarget(intoDir ? spec.replace(/\/+$/, '') : spec, { allowBare: true });
  const isDirTarget = intoDir || t.path === '/';
  if (kind === 'stdin' && isDirTarget)
    throw new InvalidArgumentError(
      `name the file to write standard input to: ${t.volume}:${t.path === '/' ? '' : t.path}/NAME`,
    );
  if (kind === 'file' && isDirTarget)
    return { volume: t.volume, path: `${t.path === '/' ? '' : t.path}/${basename(resolve(source))}` };
  return { volume: t.volume, path: t.path };
}

function describe(source: string, target: string, r: UploadResult): string {
  const where = `${target}:${r.path}`;
  if (r.kind === 'directory') {
    const skipped = r.skipped.length > 0 ? `, ${r.skipped.length} skipped` : '';
    return `uploaded ${source} to ${where} (${r.files} file${r.files === 1 ? '' : 's'}, ${r.directories} dir${r.directories === 1 ? '' : 's'}, ${r.symlinks} symlink${r.symlinks === 1 ? '' : 's'}${skipped}; ${bytes(r.bytes)}, ${bytes(r.sentBytes)} sent) in ${(r.commits ?? 1) > 1 ? `${r.commits} commits, the last ${shortId(r.commit)}` : `commit ${shortId(r.commit)}`}`;
  }
  const resumed =
    r.resumable && r.resumedFrom !== undefined && r.resumedFrom > 0 ? `, resumed at ${bytes(r.resumedFrom)}` : '';
  return `uploaded ${source === '-' ? 'standard input' : source} to ${where} (${bytes(r.bytes)}, ${bytes(r.sentBytes)} sent${r.resumable ? ', resumable' : ''}${resumed}) in commit ${shortId(r.commit)}`;
}

/** Registers `upload`. */
export function registerUploadCommands(program: Command): void {
  program
    .command('upload')
    .description(
      'upload a local file, a whole directory (one commit) or standard input; large files resume after an interruption',
    )
    .argument('<source>', 'local file or directory, or - for standard input')
    .argument('<target>', 'VOLUME:/path (a file target ending in "/" keeps the file name)')
    .option(
      '--resumable',
      'send a file over the resumable (tus) protocol: after an interruption, the same command continues where it stopped',
    )
    .option('--mode <octal>', 'permission bits of a file or of standard input, e.g. 644')
    .option('-m, --message <text>', 'commit message')
    .option('--limit-rate <size>', 'cap the sending rate of a resumable upload, per second (e.g. 10M)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
Symlinks inside an uploaded directory are stored as symlinks when they point
inside it; links with absolute targets or targets escaping it ("../..") are
skipped and listed (they would point at the reader's own files).
Resumable-upload state lives in $STOWAGE_STATE_DIR (default ~/.stowage-client).`,
    )
    .action(async (source: string, target: string, opts: UploadFlags, cmd: Command) => {
      let kind: 'file' | 'directory' | 'stdin' = 'stdin';
      if (source !== '-') {
        const st = await lstat(source).catch(() => undefined);
        if (!st) throw new InvalidArgumentError(`no such local file or directory: ${source}`);
        if (st.isDirectory()) kind = 'directory';
        else if (st.isFile()) kind = 'file';
        else throw new InvalidArgumentError(`${source} is neither a regular file nor a directory`);
      }
      const t = remoteTarget(source, kind, target);
      const mode = opts.mode === undefined ? undefined : parseMode(opts.mode);
      if (mode !== undefined && kind === 'directory')
        throw new InvalidArgumentError(
          "--mode applies to a file or standard input; a directory keeps its files' modes",
        );
      const limitRate = opts.limitRate === undefined ? undefined : parseSize(opts.limitRate);
      const vol = await Volume.get(t.volume, { client: clientOf(cmd.optsWithGlobals<GlobalOptions>()) });
      const progress = startProgress();
      let r: UploadResult;
      try {
        r = await vol.upload(kind === 'stdin' ? process.stdin : source, t.path, {
          ...(opts.resumable ? { resumable: true } : {}),
          ...(mode !== undefined ? { mode } : {}),
          ...(opts.message !== undefined ? { message: opts.message } : {}),
          ...(limitRate !== undefined ? { limitRate } : {}),
          onProgress: progress.listener,
        });
      } finally {
        progress.stop();
      }
      for (const s of r.skipped)
        printNote(`skipped ${s.path}${s.target !== undefined ? ` -> ${s.target}` : ''}: ${s.reason}`);
      if (opts.json) printJson(r);
      else printLine(describe(source, t.volume, r));
    });
}
