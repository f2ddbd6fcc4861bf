/**
 * @module cli/commands/token-commands
 * `stowage token ...`: create, list and revoke the tenant's API tokens. A
 * new token's secret is printed once, alone on stdout, so scripts can
 * capture it (`TOKEN=$(stowage token create ci)`).
 */
import type { Command } from 'commander';
import type { CreateTokenRequest } from '@stowage/sdk';
import { parseDuration } from '../arg-parsers.js';
import { clientOf, type GlobalOptions } from '../client-config.js';
import { printJson, printLine, printNote, printTable, when } from '../output.js';

/** Registers `stowage token` and its subcommands. */
export function registerTokenCommands(program: Command): void {
  const token = program.command('token').description('create, list and revoke API tokens');

  token
    .command('create')
    .description('create a token and print its secret (shown only once)')
    .argument('<name>', 'a name for the token (recorded as the author of its commits)')
    .option('--volume <volume>', 'limit the token to one volume')
    .option('--read-only', 'allow reads only')
    .option('--expires <duration>', 'lifetime, e.g. 1h or 30d (default: no expiry)')
    .option('--json', 'print the token and secret as JSON')
    .action(
      async (
        name: string,
        opts: { volume?: string; readOnly?: boolean; expires?: string; json?: boolean },
        cmd: Command,
      ) => {
        const req: CreateTokenRequest = { name };
        if (opts.volume !== undefined) req.volume = opts.volume;
        if (opts.readOnly) req.readOnly = true;
        if (opts.expires !== undefined) req.expiresIn = Math.max(1, Math.round(parseDuration(opts.expires) / 1000));
        const res = await clientOf(cmd.optsWithGlobals<GlobalOptions>()).createToken(req);
        if (opts.json) {
          printJson(res);
          return;
        }
        printLine(res.secret);
        printNote(
          `created token ${res.token.id} (${res.token.name}${res.token.readOnly ? ', read-only' : ''}${res.token.expiresAt ? `, expires ${when(res.token.expiresAt)}` : ''}); the secret above is shown only once`,
        );
      },
    );

  token
    .command('ls')
    .description("list the tenant's tokens")
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const tokens = await clientOf(cmd.optsWithGlobals<GlobalOptions>()).listTokens();
      if (opts.json) {
        printJson(tokens);
        return;
      }
      printTable(
        ['ID', 'NAME', 'VOLUME', 'ACCESS', 'CREATED', 'EXPIRES', 'REVOKED'],
        tokens.map((t) => [
          t.id,
          t.name,
          t.volume ?? '*',
          t.readOnly ? 'read-only' : 'read-write',
          when(t.createdAt),
          when(t.expiresAt),
          when(t.revokedAt),
        ]),
      );
    });

  token
    .command('revoke')
    .description('revoke a token')
    .argument('<id>', 'token id (tok_...)')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      await clientOf(cmd.optsWithGlobals<GlobalOptions>()).revokeToken(id);
      printLine(`revoked token ${id}`);
    });
}
