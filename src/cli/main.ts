#!/usr/bin/env node
/**
 * @module cli/main
 * The `stowage` command: global options, the command groups, and the one
 * place errors become a single stderr line and an exit status (see
 * output.ts). Command modules only parse their arguments and call the SDK
 * (or, for operator commands, the engine).
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerDownloadCommands } from './commands/download-commands.js';
import { registerFileCommands } from './commands/file-commands.js';
import { registerMountCommands } from './commands/mount-commands.js';
import { registerSandboxCommands } from './commands/sandbox-commands.js';
import { registerSandboxHostCommand } from './commands/sandbox-host-command.js';
import { registerSearchCommands } from './commands/search-commands.js';
import { registerServerCommands } from './commands/server-commands.js';
import { registerTokenCommands } from './commands/token-commands.js';
import { registerUploadCommands } from './commands/upload-commands.js';
import { registerVolumeCommands } from './commands/volume-commands.js';
import { reportError } from './output.js';

// The AWS SDK (S3 stores) warns on every start under Node < 22, which Stowage
// supports: nine lines of noise before a serve's log or its one error line.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

const ENVIRONMENT_HELP = `
Environment:
  STOWAGE_URL     server URL (default http://127.0.0.1:7420)
  STOWAGE_TOKEN   API token. When neither --token nor STOWAGE_TOKEN is set, the
                  admin token file <data dir>/admin-token is used if readable
                  (written by \`stowage serve\` on its first start).
  STOWAGE_DATA    data dir of serve, gc and tenant (default ~/.stowage)

Exit status: 0 ok, 1 internal error, 2 bad input, 3 not found,
4 already exists or conflict, 5 not authenticated or not allowed,
6 over the cap, too large or disk full, 7 server unavailable.`;

/** The package version, when package.json is where a build puts it. */
function version(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Builds the command tree. Commander's own errors are thrown (not printed)
 * so that they are reported like every other error.
 *
 * @example
 * await buildProgram().parseAsync(['node', 'stowage', 'volume', 'ls']);
 */
export function buildProgram(): Command {
  const program = new Command('stowage')
    .description('Persistent, versioned volumes for sandboxes')
    .version(version(), '-V, --version')
    .option('--url <url>', 'server URL (default: $STOWAGE_URL, else http://127.0.0.1:7420)')
    .option('--token <token>', 'API token (default: $STOWAGE_TOKEN, else the admin token file <data dir>/admin-token)')
    .exitOverride()
    .configureOutput({ outputError: () => undefined })
    .showSuggestionAfterError(true)
    .addHelpText('after', ENVIRONMENT_HELP);
  registerServerCommands(program);
  registerTokenCommands(program);
  registerVolumeCommands(program);
  registerFileCommands(program);
  registerDownloadCommands(program);
  registerSearchCommands(program);
  registerUploadCommands(program);
  registerMountCommands(program);
  registerSandboxCommands(program);
  registerSandboxHostCommand(program);
  return program;
}

/** Runs the CLI with `argv` and resolves with the exit status. */
export async function run(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv]);
    // A command that passes on another's status (sandbox exec) sets it.
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (err) {
    if (
      err instanceof CommanderError &&
      (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
    ) {
      return err.exitCode === 0 ? 0 : 2;
    }
    return reportError(err);
  }
}

// A reader that closes the pipe early (`stowage cat vol:/x | head`) is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});

process.exitCode = await run(process.argv);
