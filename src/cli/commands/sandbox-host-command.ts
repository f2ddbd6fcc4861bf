/**
 * @module cli/commands/sandbox-host-command
 * `stowage sandbox-host --server URL`: runs a sandbox host on this machine
 * for a Stowage server elsewhere. The server is started with
 * `--sandbox-host URL --sandbox-host-secret FILE`, the URL this command
 * prints and a copy of its secret file. Sandboxes keep running when this
 * command stops; the next start finds them again.
 */
import type { Command } from 'commander';
import { parsePort } from '../arg-parsers.js';
import { dataDirOf } from '../client-config.js';
import { printLine, printNote } from '../output.js';
import { stopSignal } from './stop-signal.js';

/** Registers `sandbox-host`. */
export function registerSandboxHostCommand(program: Command): void {
  program
    .command('sandbox-host')
    .description('run a sandbox host on this machine for a Stowage server elsewhere (needs root)')
    .requiredOption('--server <url>', 'where mount agents on this machine reach the Stowage server')
    .option(
      '--data <dir>',
      'data dir of this host: images, state disks, exec records (default: $STOWAGE_DATA or ~/.stowage)',
    )
    .option('--port <port>', 'TCP port the server calls this host on', '7421')
    .option('--host <host>', 'interface to listen on (0.0.0.0 for all)', '127.0.0.1')
    .option('--secret-file <file>', "the host's shared secret (default: <data>/host-secret, made on first start)")
    .option(
      '--low-latency-volumes',
      "mount sandboxes' volumes with --low-latency: idle CPUs poll while a volume serves a burst of requests (see stowage mount --help); the default where this runs as root; fails without root",
    )
    .option('--no-low-latency-volumes', "mount sandboxes' volumes with --no-low-latency")
    .action(
      async (opts: {
        server: string;
        data?: string;
        port: string;
        host: string;
        secretFile?: string;
        lowLatencyVolumes?: boolean;
      }) => {
        const dataDir = dataDirOf(opts.data);
        const { hostSecret, startHostServer } = await import('../../sandbox/daemon/host-server.js');
        const secret = hostSecret(dataDir, opts.secretFile);
        const running = await startHostServer({
          dataDir,
          serverUrl: new URL(opts.server).toString().replace(/\/+$/, ''),
          host: opts.host,
          port: parsePort(opts.port),
          secret: secret.secret,
          ...(opts.lowLatencyVolumes !== undefined ? { lowLatencyVolumes: opts.lowLatencyVolumes } : {}),
          log: (line) => printLine(line),
        });
        const why = running.runtime.unavailable();
        if (why) printNote(`stowage: ${why}`);
        printLine(
          `Stowage sandbox host listening on ${running.url} (secret ${secret.created ? 'made and ' : ''}kept in ${secret.file})`,
        );
        printLine(
          `Start the server with: stowage serve --sandbox-host ${running.url} --sandbox-host-secret ${secret.file}`,
        );
        const signal = await stopSignal();
        printNote(`stowage: ${signal} received, stopping (sandboxes keep running)`);
        await running.close();
      },
    );
}
