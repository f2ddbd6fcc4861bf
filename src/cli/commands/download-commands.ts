/**
 * @module cli/commands/download-commands
 * `stowage download VOLUME:/path [LOCAL]`: a file to a local file, a
 * directory to a local directory (never written outside it or through a
 * symlink), or with `--archive OUT` a directory as one tar or tar.gz stream
 * (the format from OUT's extension; `-` streams tar.gz to standard output).
 * `stowage url VOLUME:/path --expires 10m` prints a signed URL that works
 * with plain curl until it expires. Progress bars appear on a terminal for
 * transfers over a second.
 */
import { basename } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { Volume, type ArchiveFormat, type DownloadResult } from '@stowage/sdk';
import { parseDuration, parseTarget } from '../arg-parsers.js';
import { clientOf, type GlobalOptions } from '../client-config.js';
import { bytes, printJson, printLine, printNote, shortId } from '../output.js';
import { startProgress } from '../progress-bar.js';

/**
 * The archive format of an output name: `.tar`, or `.tar.gz`/`.tgz`; `-`
 * (standard output) takes `fallback`.
 *
 * @example
 * archiveFormatOf('out.tgz'); // 'tar.gz'
 */
export function archiveFormatOf(out: string, fallback?: string): ArchiveFormat {
  if (fallback !== undefined) {
    if (fallback !== 'tar' && fallback !== 'tar.gz')
      throw new InvalidArgumentError(`--format must be tar or tar.gz, not ${JSON.stringify(fallback)}`);
    return fallback;
  }
  if (out === '-') return 'tar.gz';
  if (/\.tar$/i.test(out)) return 'tar';
  if (/\.(tar\.gz|tgz)$/i.test(out)) return 'tar.gz';
  throw new InvalidArgumentError(
    `cannot tell the archive format of ${JSON.stringify(out)}: name it .tar, .tar.gz or .tgz, or pass --format`,
  );
}

/** Lifetime of a signed URL in whole seconds, from a duration such as "10m". */
function expirySeconds(input: string): number {
  const s = Math.ceil(parseDuration(input) / 1000);
  if (s < 1 || s > 7 * 86_400)
    throw new InvalidArgumentError(`--expires must be between 1s and 7d, not ${JSON.stringify(input)}`);
  return s;
}

function describe(source: string, local: string, r: DownloadResult): string {
  const at = `(commit ${shortId(r.commit)})`;
  if (r.kind === 'archive')
    return `downloaded ${source} as an archive to ${local === '-' ? 'standard output' : local} (${bytes(r.bytes)}) ${at}`;
  if (r.kind === 'file') return `downloaded ${source} to ${local} (${bytes(r.bytes)}) ${at}`;
  return `downloaded ${source} to ${local}/ (${r.files} file${r.files === 1 ? '' : 's'}, ${bytes(r.bytes)}${r.refused.length > 0 ? `, ${r.refused.length} refused` : ''}) ${at}`;
}

/** Registers `download` and `url`. */
export function registerDownloadCommands(program: Command): void {
  program
    .command('download')
    .description('download a file, a whole directory, or a directory as a tar/tar.gz archive')
    .argument('<source>', 'VOLUME:/path (a file or a directory)')
    .argument('[local]', 'local file or directory (default: the name of the source, here)')
    .option(
      '--archive <out>',
      'stream the directory as one archive to OUT (.tar, .tar.gz, .tgz) or - for standard output',
    )
    .option('--format <format>', 'archive format when OUT does not say: tar or tar.gz (default for -: tar.gz)')
    .option('--commit <commit>', 'read at this commit instead of the head')
    .option('--preserve-mode', 'keep setuid, setgid and sticky bits (default: permission bits only)')
    .option('--json', 'print the result as JSON')
    .addHelpText(
      'after',
      `
A directory download writes only inside LOCAL: symlinks of the volume are
recreated as symlinks and never followed, and an entry whose parent on disk
is a symlink (say from an earlier download) is refused and listed.
Files and directories get their permission bits (rwx) only: setuid, setgid
and sticky bits from the volume are dropped unless --preserve-mode is given.`,
    )
    .action(
      async (
        source: string,
        local: string | undefined,
        opts: { archive?: string; format?: string; commit?: string; json?: boolean; preserveMode?: boolean },
        cmd: Command,
      ) => {
        const t = parseTarget(source, { allowBare: true });
        const vol = await Volume.get(t.volume, { client: clientOf(cmd.optsWithGlobals<GlobalOptions>()) });
        const common = {
          ...(opts.commit !== undefined ? { commit: opts.commit } : {}),
          ...(opts.preserveMode === true ? { preserveMode: true } : {}),
        };
        if (opts.archive !== undefined) {
          if (local !== undefined) throw new InvalidArgumentError('give either LOCAL or --archive OUT, not both');
          const archive = archiveFormatOf(opts.archive, opts.format);
          const toStdout = opts.archive === '-';
          const progress = startProgress();
          let r: DownloadResult;
          try {
            r = await vol.download(t.path, toStdout ? process.stdout : opts.archive, {
              ...common,
              archive,
              onProgress: progress.listener,
            });
          } finally {
            progress.stop();
          }
          if (toStdout) return;
          if (opts.json) printJson(r);
          else printLine(describe(source, opts.archive, r));
          return;
        }
        if (opts.format !== undefined) throw new InvalidArgumentError('--format applies to --archive only');
        const dest = local ?? (t.path === '/' ? t.volume : basename(t.path));
        const progress = startProgress();
        let r: DownloadResult;
        try {
          r = await vol.download(t.path, dest, { ...common, onProgress: progress.listener });
        } finally {
          progress.stop();
        }
        for (const x of r.refused) printNote(`refused ${x.path}: ${x.reason}`);
        if (opts.json) printJson(r);
        else printLine(describe(source, dest, r));
      },
    );

  program
    .command('url')
    .description('print a signed URL for a file that works without a token (e.g. with curl) until it expires')
    .argument('<target>', 'VOLUME:/path of a file')
    .option('--expires <duration>', 'lifetime, e.g. 90s, 10m, 1h, 7d (at most 7d)', '1h')
    .option('--commit <commit>', 'serve the file as it was at this commit (default: as it is now)')
    .option('--json', 'print { url, expiresAt, commit } as JSON')
    .action(async (target: string, opts: { expires: string; commit?: string; json?: boolean }, cmd: Command) => {
      const t = parseTarget(target);
      const expiresIn = expirySeconds(opts.expires);
      const client = clientOf(cmd.optsWithGlobals<GlobalOptions>());
      const res = await client.request<{ url: string; expiresAt: string; commit: string }>(
        'POST',
        `/v1/volumes/${encodeURIComponent(t.volume)}/urls`,
        {
          body: { path: t.path, expiresIn, ...(opts.commit !== undefined ? { commit: opts.commit } : {}) },
        },
      );
      if (opts.json) printJson(res);
      else printLine(res.url);
    });
}
