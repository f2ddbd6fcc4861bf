/**
 * @module sandbox/host/host-command
 * Runs the host tools the sandbox runtime drives (mmdebstrap, mkfs, mount,
 * losetup, unshare + bwrap) as child processes, never through a shell, and
 * turns a failure into an error that names the command and what it printed.
 */
import { spawn } from 'node:child_process';
import { InternalError } from '@stowage/sdk/common/errors.js';

/** How a command ended and what it printed. */
export interface CommandResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs argv to its end; never throws for a non-zero exit (see runOk). */
export function runCommand(argv: readonly string[], opts: { input?: string } = {}): Promise<CommandResult> {
  return new Promise((done, fail) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: [opts.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', fail);
    child.on('close', (code, signal) => done({ code, signal, stdout, stderr }));
    if (opts.input !== undefined && child.stdin) {
      // A command may exit without reading its input: that is its answer, not an error here.
      child.stdin.on('error', () => undefined);
      child.stdin.end(opts.input);
    }
  });
}

/** Runs argv and returns its stdout; a non-zero exit throws an InternalError naming `what` and the command's stderr. */
export async function runOk(argv: readonly string[], what: string): Promise<string> {
  const r = await runCommand(argv);
  if (r.code !== 0) {
    const said = (r.stderr || r.stdout).trim().split('\n').slice(-5).join(' / ');
    throw new InternalError(`${what} failed: \`${argv.join(' ')}\` exited ${r.code ?? r.signal}: ${said}`);
  }
  return r.stdout;
}

/** How a streamed command ended, with the end of its output for error messages. */
export interface StreamResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** The last few KiB of stdout + stderr, interleaved as they came. */
  tail: string;
}

const TAIL_BYTES = 4096;

/**
 * Runs argv in its own process group, passing its output on as it comes;
 * after `timeoutMs` the whole group is killed (a build step's children too).
 */
export function streamCommand(
  argv: readonly string[],
  opts: {
    onOutput: (text: string) => void;
    timeoutMs: number;
    stdin?: NodeJS.ReadableStream;
    /** Descriptors passed on as fd 3, 4, ... */
    fds?: number[];
  },
): Promise<StreamResult> {
  return new Promise((done, fail) => {
    const child = spawn(argv[0]!, argv.slice(1), {
      stdio: [opts.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe', ...(opts.fds ?? [])],
      detached: true,
    });
    let tail = '';
    let timedOut = false;
    const take = (d: Buffer) => {
      const text = d.toString();
      tail = (tail + text).slice(-TAIL_BYTES);
      opts.onOutput(text);
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    if (opts.stdin && child.stdin) {
      child.stdin.on('error', () => undefined);
      opts.stdin.pipe(child.stdin);
    }
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }, opts.timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      fail(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, timedOut, tail });
    });
  });
}
