/**
 * @module sandbox/agent/exec-runner
 * Runs one command inside the sandbox for the agent: in its own process group
 * (so a timeout or a kill reaches everything it started), with output handed
 * on as it comes and paused while the supervisor's socket is full, and a
 * timeout that kills the group with SIGKILL. A `pty` command runs through
 * the terminal relay (native/pty-relay), which gives it a pseudo-terminal
 * and passes resizes on.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Writable } from 'node:stream';
import type { ExecRequest } from '../protocol/messages.js';

/** How long output may still arrive after the command exits (from children it left running). */
const EXIT_GRACE_MS = 250;

export interface ExecEvents {
  started(pid: number): void;
  /** One piece of output; returns false when the reader is full (the stream pauses until `resume`). */
  output(fd: 1 | 2, data: Buffer): boolean;
  exited(result: { code: number | null; signal: string | null; timedOut: boolean }): void;
  failed(code: string, message: string): void;
}

export class RunningExec {
  readonly #child: ChildProcess;
  #timer: NodeJS.Timeout | undefined;
  #timedOut = false;
  #done = false;

  /** `ptyRelay`: how to start the pseudo-terminal relay (native/pty-relay) for `pty` commands. */
  constructor(req: ExecRequest, events: ExecEvents, ptyRelay?: readonly string[]) {
    const env = req.env ?? { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root' };
    let argv = req.argv;
    if (req.pty) {
      if (!ptyRelay) throw Object.assign(new Error('this agent has no terminal relay'), { code: 'ENOTSUP' });
      argv = [...ptyRelay, String(req.pty.rows), String(req.pty.cols), '--', ...req.argv];
      if (!env.TERM) env.TERM = 'xterm-256color';
    }
    this.#child = spawn(argv[0]!, argv.slice(1), {
      cwd: req.cwd ?? '/',
      env,
      detached: true, // a new process group (and session), so signals reach the command's children too
      // A terminal's relay always has stdin (it sends end-of-file when closed) and a resize channel on fd 3.
      stdio: req.pty ? ['pipe', 'pipe', 'pipe', 'pipe'] : [req.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    });
    if (req.pty && !req.stdin) this.#child.stdin?.end();
    const child = this.#child;
    child.once('spawn', () => {
      events.started(child.pid!);
      if (req.timeoutMs !== undefined) {
        this.#timer = setTimeout(() => {
          this.#timedOut = true;
          this.signal('SIGKILL', true);
        }, req.timeoutMs);
      }
    });
    child.once('error', (e: NodeJS.ErrnoException) => {
      // Only a spawn failure lands here before 'spawn' (ENOENT: no such command, EACCES: not executable).
      this.#finish();
      events.failed(e.code ?? 'EIO', `cannot run ${req.argv[0]}: ${e.message}`);
    });
    for (const fd of [1, 2] as const) {
      const stream = fd === 1 ? child.stdout! : child.stderr!;
      stream.on('data', (data: Buffer) => {
        if (!events.output(fd, data)) stream.pause();
      });
    }
    child.stdin?.on('error', () => undefined); // a command that exits without reading its stdin
    // 'close' waits for stdout and stderr to end, so output comes before the exit event. A command that left a
    // background child holding its output open would never close: after a short grace its output is cut off.
    const exited = (code: number | null, signal: NodeJS.Signals | null): void => {
      if (this.#done) return;
      this.#finish();
      events.exited({ code, signal, timedOut: this.#timedOut });
    };
    child.once('close', exited);
    child.once('exit', (code, signal) => {
      setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        exited(code, signal);
      }, EXIT_GRACE_MS).unref();
    });
  }

  /** Resumes output paused because the reader was full. */
  resume(): void {
    this.#child.stdout?.resume();
    this.#child.stderr?.resume();
  }

  /** Resizes the command's terminal (a `pty` command only): the relay sets it, the kernel sends SIGWINCH. */
  resize(rows: number, cols: number): void {
    const channel = this.#child.stdio[3] as Writable | null | undefined;
    if (channel && !channel.destroyed) channel.write(`${rows} ${cols}\n`);
  }

  writeStdin(data: Buffer): void {
    this.#child.stdin?.write(data);
  }

  endStdin(): void {
    this.#child.stdin?.end();
  }

  /** Sends a signal to the command, or to its whole process group. */
  signal(signal: NodeJS.Signals, group: boolean): void {
    const pid = this.#child.pid;
    if (pid === undefined) return;
    try {
      process.kill(group ? -pid : pid, signal);
    } catch {
      // Already gone.
    }
  }

  #finish(): void {
    this.#done = true;
    if (this.#timer) clearTimeout(this.#timer);
  }
}
