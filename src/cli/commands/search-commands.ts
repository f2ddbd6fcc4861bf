/**
 * @module cli/commands/search-commands
 * Commands that work on contents server-side: find (paths by glob), grep
 * (regex over contents), replace (regex across files, one commit), edit
 * (exact string, one file) and watch (a live stream of change events until
 * Ctrl-C). Partial results (a limit reached, a time bound passed, binary
 * files skipped) are said on stderr, never mixed into the results.
 */
import type { Command } from 'commander';
import { Volume, type wire } from '@stowage/sdk';
import { parseCount, parseTarget } from '../arg-parsers.js';
import { clientOf, type GlobalOptions } from '../client-config.js';
import { printJson, printLine, printNote, safeJson, shortId } from '../output.js';

async function open(cmd: Command, volume: string): Promise<Volume> {
  return Volume.get(volume, { client: clientOf(cmd.optsWithGlobals<GlobalOptions>()) });
}

/** Says on stderr why a search answer may be incomplete. */
function noteBounds(r: wire.SearchResponse, limit: string): void {
  if (r.truncated) printNote(`(stopped at the limit of ${limit} results: raise --limit or narrow the search)`);
  if (r.timedOut) printNote('(the time bound passed: results are partial; raise --timeout or simplify the pattern)');
  if (r.skippedBinary.length > 0)
    printNote(`(skipped ${r.skippedBinary.length} binary file${r.skippedBinary.length === 1 ? '' : 's'})`);
  if (r.truncatedFiles.length > 0)
    printNote(
      `(searched only the first bytes of ${r.truncatedFiles.length} large file${r.truncatedFiles.length === 1 ? '' : 's'})`,
    );
}

interface BoundOptions {
  limit?: string;
  timeout?: string;
  json?: boolean;
}

function bounds(opts: BoundOptions): { limit?: number; timeoutMs?: number } {
  return {
    ...(opts.limit !== undefined ? { limit: parseCount(opts.limit, '--limit') } : {}),
    ...(opts.timeout !== undefined ? { timeoutMs: parseCount(opts.timeout, '--timeout') } : {}),
  };
}

/** Registers find, grep, replace, edit and watch. */
export function registerSearchCommands(program: Command): void {
  program
    .command('find')
    .description('list the paths below VOLUME:/path that a glob selects (a glob without "/" matches names anywhere)')
    .argument('<target>', 'VOLUME or VOLUME:/path')
    .option('--glob <glob>', 'e.g. "*.ts" or "src/**/*.json" (default: everything)')
    .option('--limit <n>', 'paths returned at most (default 1000)')
    .option('--json', 'print JSON')
    .action(async (target: string, opts: BoundOptions & { glob?: string }, cmd: Command) => {
      const t = parseTarget(target, { allowBare: true });
      const r = await (await open(cmd, t.volume)).files.search(t.path, {
        ...(opts.glob !== undefined ? { glob: opts.glob } : {}),
        ...bounds(opts),
      });
      if (opts.json) printJson(r);
      else for (const f of r.files) printLine(`${f.path}${f.type === 'dir' ? '/' : ''}`);
      noteBounds(r, opts.limit ?? '1000');
    });

  program
    .command('grep')
    .description('search file contents with a regular expression (JavaScript syntax); prints path:line:column:text')
    .argument('<pattern>', 'regular expression')
    .argument('<target>', 'VOLUME or VOLUME:/path')
    .option('--glob <glob>', 'only files whose path the glob selects')
    .option('-i, --ignore-case', 'case-insensitive')
    .option('--limit <n>', 'matches returned at most (default 1000)')
    .option('--timeout <ms>', 'time bound in milliseconds (default 10000)')
    .option('--json', 'print JSON')
    .action(
      async (
        pattern: string,
        target: string,
        opts: BoundOptions & { glob?: string; ignoreCase?: boolean },
        cmd: Command,
      ) => {
        const t = parseTarget(target, { allowBare: true });
        const r = await (await open(cmd, t.volume)).files.search(t.path, {
          regex: pattern,
          ...(opts.ignoreCase ? { flags: 'i' } : {}),
          ...(opts.glob !== undefined ? { glob: opts.glob } : {}),
          ...bounds(opts),
        });
        if (opts.json) printJson(r);
        else for (const m of r.matches) printLine(`${m.path}:${m.line}:${m.column}:${m.text}`);
        noteBounds(r, opts.limit ?? '1000');
      },
    );

  program
    .command('replace')
    .description('replace a regular expression across the files a glob selects, in one commit ($1, $& expand)')
    .argument('<pattern>', 'regular expression')
    .argument('<replacement>', 'replacement text')
    .argument('<target>', 'VOLUME or VOLUME:/path')
    .requiredOption('--glob <glob>', 'which files, e.g. "*.md"')
    .option('-i, --ignore-case', 'case-insensitive')
    .option('--timeout <ms>', 'time bound in milliseconds (default 10000); past it nothing is committed')
    .option('--json', 'print JSON')
    .action(
      async (
        pattern: string,
        replacement: string,
        target: string,
        opts: BoundOptions & { glob: string; ignoreCase?: boolean },
        cmd: Command,
      ) => {
        const t = parseTarget(target, { allowBare: true });
        const r = await (await open(cmd, t.volume)).files.replace(t.path, pattern, replacement, {
          glob: opts.glob,
          ...(opts.ignoreCase ? { flags: 'i' } : {}),
          ...(opts.timeout !== undefined ? { timeoutMs: parseCount(opts.timeout, '--timeout') } : {}),
        });
        if (opts.json) {
          printJson(r);
          return;
        }
        for (const f of r.files)
          printLine(`${f.path}: ${f.replacements} replacement${f.replacements === 1 ? '' : 's'}`);
        printLine(
          r.commit
            ? `replaced in ${r.files.length} file${r.files.length === 1 ? '' : 's'} in commit ${shortId(r.commit.id)}`
            : 'no match: nothing committed',
        );
        if (r.skippedBinary.length > 0)
          printNote(`(skipped ${r.skippedBinary.length} binary file(s): ${r.skippedBinary.slice(0, 5).join(', ')})`);
        if (r.skippedTooLarge.length > 0)
          printNote(`(skipped ${r.skippedTooLarge.length} large file(s): ${r.skippedTooLarge.slice(0, 5).join(', ')})`);
      },
    );

  program
    .command('edit')
    .description('replace the one occurrence of a string in a file (fails unless it occurs exactly once)')
    .argument('<target>', 'VOLUME:/path')
    .requiredOption('--old <string>', 'the exact text to replace')
    .requiredOption('--new <string>', 'the text to put in its place')
    .option('--base <commit>', 'fail if the file changed since this commit')
    .option('--json', 'print JSON')
    .action(async (target: string, opts: { old: string; new: string; base?: string; json?: boolean }, cmd: Command) => {
      const t = parseTarget(target);
      const r = await (await open(cmd, t.volume)).files.edit(
        t.path,
        opts.old,
        opts.new,
        opts.base !== undefined ? { base: opts.base } : {},
      );
      if (opts.json) printJson(r);
      else printLine(`edited ${t.volume}:${r.path} in commit ${shortId(r.commit.id)}`);
    });

  program
    .command('watch')
    .description('print changes to a volume as they are committed, until Ctrl-C')
    .argument('<volume>', 'VOLUME')
    .option('--since <commit>', 'start after this commit (default: the current head)')
    .option('--json', 'print one JSON object per line')
    .action(async (volume: string, opts: { since?: string; json?: boolean }, cmd: Command) => {
      const t = parseTarget(volume, { allowBare: true });
      const vol = await open(cmd, t.volume);
      const ac = new AbortController();
      const stop = (): void => ac.abort();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        for await (const ev of vol.files.watch({
          signal: ac.signal,
          ...(opts.since !== undefined ? { since: opts.since } : {}),
        })) {
          if (opts.json) process.stdout.write(`${safeJson(ev)}\n`);
          else printLine(`${shortId(ev.commit)} ${ev.kind.padEnd(8)} ${ev.path}${ev.type === 'dir' ? '/' : ''}`);
        }
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
      }
    });
}
