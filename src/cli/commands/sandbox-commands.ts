/**
 * @module cli/commands/sandbox-commands
 * `stowage sandbox create|ls|get|exec|execs|logs|write|read|cp|terminate`,
 * through the SDK's `Sandbox`. `exec` prints the command's output as it
 * comes and exits with the command's exit status (128 + n for a signal, as
 * a shell does).
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { pipeline } from 'node:stream/promises';
import type { Command } from 'commander';
import { Sandbox, type ExecInfo, type SandboxExec, type SandboxInfo } from '@stowage/sdk';
import type { ImageSpec, ImageStep, SandboxVolumeRequest } from '@stowage/sdk/api/wire.js';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { parseDuration, parseMode } from '../arg-parsers.js';
import { clientOf, type GlobalOptions } from '../client-config.js';
import { bytes, octal, printFields, printJson, printLine, printTable, when } from '../output.js';

type Opts = { json?: boolean };

function client(cmd: Command) {
  return clientOf(cmd.optsWithGlobals<GlobalOptions>());
}

function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** `NAME=VALUE` pairs. */
function envOf(pairs: string[] = []): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined;
  const env: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`invalid --env ${JSON.stringify(p)}: use NAME=VALUE`);
    env[p.slice(0, eq)] = p.slice(eq + 1);
  }
  return env;
}

/** `VOLUME:/path[:ro]` → the path and what to mount there. */
export function parseVolumeMount(spec: string): [string, SandboxVolumeRequest] {
  const m = /^([^:]+):(\/[^:]*)(?::(ro|rw))?$/.exec(spec);
  if (!m)
    throw new InvalidArgumentError(
      `invalid --volume ${JSON.stringify(spec)}: use VOLUME:/mount/path, or VOLUME:/mount/path:ro for read-only`,
    );
  return [m[2]!, m[3] === 'ro' ? { volume: m[1]!, readOnly: true } : m[1]!];
}

/** Seconds from a duration such as 90s, 30m or 1h (a bare number is seconds). */
function seconds(input: string): number {
  return /^\d+$/.test(input.trim()) ? Number(input) : Math.ceil(parseDuration(input) / 1000);
}

function number(input: string, what: string): number {
  const n = Number(input);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`invalid ${what} ${JSON.stringify(input)}`);
  return n;
}

function sandboxFields(s: SandboxInfo): Array<[string, string]> {
  return [
    ['id', s.id],
    ['status', s.reason ? `${s.status} (${s.reason})` : s.status],
    ['image', JSON.stringify(s.image)],
    ['volumes', s.volumes.map((v) => `${v.volume}:${v.path}${v.readOnly ? ':ro' : ''}`).join(', ') || '-'],
    ['cpu', String(s.cpu)],
    ['memory', `${s.memoryMib} MiB`],
    ['disk', `${s.diskGib} GiB`],
    ['env', s.envNames.join(', ') || '-'],
    ['host', s.host],
    ['created', when(s.createdAt)],
    ['expires', when(s.expiresAt)],
    ['ended', when(s.endedAt)],
  ];
}

function execEnd(r: ExecInfo): string {
  if (r.status === 'running') return 'running';
  if (r.status === 'failed') return `failed: ${r.error ?? ''}`;
  const how = r.signal ? `signal ${r.signal}` : `exit ${r.exitCode}`;
  return `${how}${r.timedOut ? ' (timed out)' : ''}${r.oomKilled ? ' (out of memory)' : ''}`;
}

/** A shell's exit status for an ended exec: its code, or 128 + the signal's number. */
export function exitStatusOfExec(r: ExecInfo): number {
  if (r.exitCode !== undefined) return r.exitCode;
  if (r.signal) return 128 + ((osConstants.signals as Record<string, number>)[r.signal] ?? 0);
  return 1;
}

/** Writes an exec's output to this process's stdout and stderr as it comes; returns the final record. */
async function stream(exec: SandboxExec, from: { stdout?: number; stderr?: number } = {}): Promise<ExecInfo> {
  for await (const piece of exec.output(from)) {
    const out = piece.stream === 'stdout' ? process.stdout : process.stderr;
    if (!out.write(piece.data)) await new Promise((resolve) => out.once('drain', resolve));
  }
  return exec.record;
}

/** `SB:/path` or a local path. */
function remote(spec: string): { sandbox: string; path: string } | undefined {
  const m = /^(sb_[a-z0-9]+):(\/.*)$/.exec(spec);
  return m ? { sandbox: m[1]!, path: m[2]! } : undefined;
}

/** Registers `stowage sandbox` and its subcommands. */
export function registerSandboxCommands(program: Command): void {
  const sandbox = program.command('sandbox').description('run commands in isolated sandboxes with volumes mounted');

  sandbox
    .command('create')
    .description('start a sandbox and print its id')
    .option('--image <base>', 'base image: debian (default) or busybox')
    .option('--apt <package>', 'a Debian package to install in the image (repeatable)', collect)
    .option('--run <command>', 'a shell command to run when building the image (repeatable)', collect)
    .option('--volume <spec>', 'mount a volume: VOLUME:/path or VOLUME:/path:ro (repeatable)', collect)
    .option('--cpu <cores>', 'CPU cores (default 1)')
    .option('--memory <mib>', 'memory limit in MiB (default 1024)')
    .option('--disk <gib>', 'state disk size in GiB (default 4)')
    .option('--env <NAME=VALUE>', 'environment of every command (repeatable)', collect)
    .option('--timeout <duration>', 'terminate after this long, e.g. 300, 30m, 2h (default 5m)')
    .option('--json', 'print the sandbox as JSON')
    .action(
      async (
        opts: Opts & {
          image?: string;
          apt?: string[];
          run?: string[];
          volume?: string[];
          cpu?: string;
          memory?: string;
          disk?: string;
          env?: string[];
          timeout?: string;
        },
        cmd: Command,
      ) => {
        const steps: ImageStep[] = [];
        if (opts.apt?.length) steps.push({ aptInstall: opts.apt });
        if (opts.run?.length) steps.push({ runCommands: opts.run });
        let image: ImageSpec | undefined;
        if (opts.image !== undefined || steps.length > 0) {
          if (opts.image !== undefined && opts.image !== 'debian' && opts.image !== 'busybox')
            throw new InvalidArgumentError(`invalid --image ${JSON.stringify(opts.image)}: use debian or busybox`);
          image = { ...(opts.image ? { base: opts.image as 'debian' | 'busybox' } : {}), steps };
        }
        const volumes = Object.fromEntries((opts.volume ?? []).map(parseVolumeMount));
        const env = envOf(opts.env);
        const sb = await Sandbox.create({
          client: client(cmd),
          ...(image ? { image } : {}),
          ...(opts.volume?.length ? { volumes } : {}),
          ...(opts.cpu !== undefined ? { cpu: number(opts.cpu, '--cpu') } : {}),
          ...(opts.memory !== undefined ? { memoryMib: number(opts.memory, '--memory') } : {}),
          ...(opts.disk !== undefined ? { diskGib: number(opts.disk, '--disk') } : {}),
          ...(env ? { env } : {}),
          ...(opts.timeout !== undefined ? { timeout: seconds(opts.timeout) } : {}),
        });
        if (opts.json) printJson(sb.info);
        else printLine(sb.id);
      },
    );

  sandbox
    .command('ls')
    .description('list running sandboxes')
    .option('--all', 'include ended ones')
    .option('--json', 'print JSON')
    .action(async (opts: Opts & { all?: boolean }, cmd: Command) => {
      const list = (await Sandbox.list({ client: client(cmd), all: opts.all === true })).map((s) => s.info);
      if (opts.json) printJson(list);
      else
        printTable(
          ['ID', 'STATUS', 'CPU', 'MEMORY', 'VOLUMES', 'CREATED', 'EXPIRES'],
          list.map((s) => [
            s.id,
            s.status,
            String(s.cpu),
            `${s.memoryMib}M`,
            s.volumes.map((v) => `${v.volume}:${v.path}`).join(',') || '-',
            when(s.createdAt),
            when(s.expiresAt),
          ]),
        );
    });

  sandbox
    .command('get')
    .description('show a sandbox')
    .argument('<sandbox>', 'sandbox id')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: Opts, cmd: Command) => {
      const sb = await Sandbox.connect(id, { client: client(cmd) });
      if (opts.json) printJson(sb.info);
      else printFields(sandboxFields(sb.info));
    });

  sandbox
    .command('exec')
    .description('run a command in a sandbox; prints its output live and exits with its status')
    .argument('<sandbox>', 'sandbox id')
    .argument('<command...>', 'the command and its arguments (put -- before them)')
    .option('--cwd <dir>', 'working directory')
    .option('--env <NAME=VALUE>', 'environment (repeatable)', collect)
    .option('--timeout <duration>', 'kill the command after this long (default 10m; 0 for none)')
    .option('--background', 'start it and print its exec id (no default timeout)')
    .option('-i, --stdin', "pass this process's stdin to the command")
    .option('-t, --tty', 'run it on a terminal sized like this one (with -i: an interactive shell, e.g. -it bash)')
    .option('--json', 'with --background: print the exec record as JSON')
    .action(
      async (
        id: string,
        argv: string[],
        opts: Opts & {
          cwd?: string;
          env?: string[];
          timeout?: string;
          background?: boolean;
          stdin?: boolean;
          tty?: boolean;
        },
        cmd: Command,
      ) => {
        const sb = await Sandbox.connect(id, { client: client(cmd) });
        const env = envOf(opts.env);
        const exec = await sb.exec(argv, {
          ...(opts.cwd !== undefined ? { cwd: opts.cwd } : {}),
          ...(env ? { env } : {}),
          ...(opts.timeout !== undefined ? { timeout: opts.timeout === '0' ? 0 : seconds(opts.timeout) } : {}),
          ...(opts.background ? { background: true } : {}),
          ...(opts.stdin ? { stdin: true } : {}),
          ...(opts.tty ? { pty: { rows: process.stdout.rows || 24, cols: process.stdout.columns || 80 } } : {}),
        });
        if (exec.record.status === 'failed')
          throw new InvalidArgumentError(`the command did not start: ${exec.record.error}`);
        if (opts.background) {
          if (opts.json) printJson(exec.record);
          else printLine(exec.id);
          return;
        }
        const raw = opts.tty && opts.stdin && process.stdin.isTTY;
        // Keys go to the remote terminal as they are typed (^C included), and resizes follow this terminal's.
        if (raw) process.stdin.setRawMode(true);
        const onResize = () => void exec.resize(process.stdout.rows, process.stdout.columns).catch(() => undefined);
        if (opts.tty && process.stdout.isTTY) process.stdout.on('resize', onResize);
        let ended = false;
        if (opts.stdin) {
          void (async () => {
            for await (const chunk of process.stdin) await exec.writeStdin(chunk as Buffer);
            await exec.closeStdin();
          })().catch((e: unknown) => {
            // Once the command has ended, what was still being typed has nowhere to go: not an error.
            if (!ended) process.stderr.write(`stowage: passing stdin on failed: ${(e as Error).message}\n`);
          });
        }
        let record: ExecInfo;
        try {
          record = await stream(exec);
        } finally {
          ended = true;
          if (raw) process.stdin.setRawMode(false);
          process.stdout.off('resize', onResize);
        }
        if (record.status === 'failed') process.stderr.write(`stowage: ${record.error ?? 'the command failed'}\n`);
        else if (record.timedOut) process.stderr.write('stowage: the command timed out and was killed\n');
        else if (record.oomKilled) process.stderr.write('stowage: the sandbox ran out of memory while it ran\n');
        process.exitCode = exitStatusOfExec(record);
        process.stdin.destroy();
      },
    );

  sandbox
    .command('execs')
    .description("list a sandbox's execs, oldest first")
    .argument('<sandbox>', 'sandbox id')
    .option('--json', 'print JSON')
    .action(async (id: string, opts: Opts, cmd: Command) => {
      const execs = (await (await Sandbox.connect(id, { client: client(cmd) })).execs()).map((e) => e.record);
      if (opts.json) printJson(execs);
      else
        printTable(
          ['EXEC', 'STARTED', 'STATUS', 'OUTPUT', 'COMMAND'],
          execs.map((r) => [
            r.id,
            when(r.startedAt),
            execEnd(r),
            bytes(r.stdoutBytes + r.stderrBytes),
            r.argv.join(' ').slice(0, 60),
          ]),
        );
    });

  sandbox
    .command('logs')
    .description("print an exec's output (default: the latest exec), following it while it runs")
    .argument('<sandbox>', 'sandbox id')
    .argument('[exec]', 'exec id')
    .option('--stdout-from <offset>', 'start stdout at this byte offset', '0')
    .option('--stderr-from <offset>', 'start stderr at this byte offset', '0')
    .action(
      async (
        id: string,
        execId: string | undefined,
        opts: { stdoutFrom: string; stderrFrom: string },
        cmd: Command,
      ) => {
        const sb = await Sandbox.connect(id, { client: client(cmd) });
        let exec: SandboxExec | undefined;
        if (execId !== undefined) exec = await sb.getExec(execId);
        else exec = (await sb.execs()).at(-1);
        if (!exec) throw new InvalidArgumentError(`sandbox ${id} has run no command yet`);
        const record = await stream(exec, {
          stdout: Number(opts.stdoutFrom) || 0,
          stderr: Number(opts.stderrFrom) || 0,
        });
        if (record.status !== 'exited') process.stderr.write(`stowage: ${execEnd(record)}\n`);
      },
    );

  sandbox
    .command('write')
    .description('write a file in a sandbox from a local file, or from stdin')
    .argument('<sandbox>', 'sandbox id')
    .argument('<path>', 'absolute path in the sandbox')
    .argument('[local]', 'local file (default: stdin)')
    .option('--mode <octal>', 'permission bits (default 644)')
    .option('--no-parents', 'fail when the parent directory is missing')
    .action(
      async (
        id: string,
        path: string,
        local: string | undefined,
        opts: { mode?: string; parents: boolean },
        cmd: Command,
      ) => {
        const sb = await Sandbox.connect(id, { client: client(cmd) });
        const source = local === undefined || local === '-' ? process.stdin : createReadStream(local);
        const info = await sb.write(path, source, {
          ...(opts.mode !== undefined ? { mode: parseMode(opts.mode) } : {}),
          createParents: opts.parents,
        });
        printLine(`wrote ${path} (${bytes(info.size)}, mode ${octal(info.mode & 0o7777)})`);
      },
    );

  sandbox
    .command('read')
    .description('print a file of a sandbox')
    .argument('<sandbox>', 'sandbox id')
    .argument('<path>', 'absolute path in the sandbox')
    .action(async (id: string, path: string, _opts: unknown, cmd: Command) => {
      const sb = await Sandbox.connect(id, { client: client(cmd) });
      await pipeline(await sb.readStream(path), process.stdout, { end: false });
    });

  sandbox
    .command('cp')
    .description('copy a file into or out of a sandbox: cp LOCAL SB:/path, or cp SB:/path LOCAL')
    .argument('<source>', 'local file or SANDBOX:/path')
    .argument('<target>', 'local file or SANDBOX:/path')
    .option('--mode <octal>', 'permission bits of a file written in the sandbox (default 644)')
    .action(async (source: string, target: string, opts: { mode?: string }, cmd: Command) => {
      const from = remote(source);
      const to = remote(target);
      if ((from && to) || (!from && !to))
        throw new InvalidArgumentError('cp copies between this machine and a sandbox: one side is SANDBOX:/path');
      if (to) {
        const sb = await Sandbox.connect(to.sandbox, { client: client(cmd) });
        const info = await sb.write(to.path, createReadStream(source), {
          ...(opts.mode !== undefined ? { mode: parseMode(opts.mode) } : {}),
        });
        printLine(`copied ${source} to ${target} (${bytes(info.size)})`);
      } else if (from) {
        const sb = await Sandbox.connect(from.sandbox, { client: client(cmd) });
        await pipeline(await sb.readStream(from.path), createWriteStream(target));
        printLine(`copied ${source} to ${target}`);
      }
    });

  sandbox
    .command('terminate')
    .alias('rm')
    .description('stop a sandbox: its processes end, its volumes are released (never deleted), its disk is removed')
    .argument('<sandbox>', 'sandbox id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const sb = await Sandbox.connect(id, { client: client(cmd) });
      await sb.terminate();
      printLine(`terminated ${id}`);
    });
}
