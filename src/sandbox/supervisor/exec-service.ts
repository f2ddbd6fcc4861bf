/**
 * @module sandbox/supervisor/exec-service
 * Runs commands in a sandbox through its agent and keeps each as a durable
 * exec record: the supervisor writes what the agent reports (start, output,
 * end) into the records, so the record and its output outlive any client and
 * the daemon that asked for it.
 */
import { randomBytes } from 'node:crypto';
import type { AgentClient, ExecExit } from '../protocol/agent-client.js';
import type { ExecLog, ExecRecord, ExecRecords } from './exec-records.js';

/** Foreground commands end after this unless they ask otherwise; background ones never by default. */
export const DEFAULT_FOREGROUND_TIMEOUT_MS = 10 * 60 * 1000;

export interface ExecOptions {
  argv: string[];
  cwd?: string;
  env?: Record<string, string>;
  /** A long-lived process (a server): no default timeout. */
  background?: boolean;
  /** Ms until the whole process group is killed; 0 for none; absent for the default. */
  timeoutMs?: number;
  /** Keep stdin open for `writeStdin`. */
  stdin?: boolean;
  /** Run on a pseudo-terminal of this size (output comes as stdout only). */
  pty?: { rows: number; cols: number };
}

/** What every exec of one sandbox shares. */
export interface ExecServiceOptions {
  /** The sandbox's environment (image, then sandbox settings); an exec's own env adds to it. */
  env?: Record<string, string>;
  /** How many processes the sandbox's memory limit has killed so far (its cgroup's count). */
  oomKills?: () => number;
}

export class ExecService {
  readonly #logs = new Map<string, ExecLog>();
  /** The OOM-kill count when each running exec started. */
  readonly #oomAtStart = new Map<string, number>();

  constructor(
    private readonly agent: AgentClient,
    private readonly records: ExecRecords,
    private readonly options: ExecServiceOptions = {},
  ) {
    agent.on('out', (id, fd, data) => this.#logs.get(id)?.append(fd === 1 ? 'stdout' : 'stderr', data));
    agent.on('exit', (id, exit) => this.#ended(id, exit));
    agent.on('closed', (reason) => {
      for (const [id, log] of this.#logs) {
        this.#logs.delete(id);
        log.update({
          status: 'failed',
          error: `the sandbox's agent is gone: ${reason}`,
          ...this.#oomSince(id),
          endedAt: new Date().toISOString(),
        });
      }
    });
  }

  /** Starts a command; resolves with its record once it runs (or has failed to start). */
  async exec(options: ExecOptions): Promise<ExecRecord> {
    if (
      !Array.isArray(options.argv) ||
      options.argv.length === 0 ||
      options.argv.some((a) => typeof a !== 'string' || a.includes('\0'))
    ) {
      throw new TypeError('argv is a non-empty list of strings without NUL bytes');
    }
    const background = options.background === true;
    const timeoutMs = options.timeoutMs ?? (background ? 0 : DEFAULT_FOREGROUND_TIMEOUT_MS);
    const id = `ex-${randomBytes(8).toString('hex')}`;
    const log = this.records.create({
      id,
      argv: options.argv,
      background,
      pty: options.pty !== undefined,
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      ...(timeoutMs > 0 ? { timeoutMs } : {}),
    });
    this.#logs.set(id, log);
    const oomKills = this.options.oomKills?.();
    if (oomKills !== undefined) this.#oomAtStart.set(id, oomKills);
    const env =
      this.options.env !== undefined || options.env !== undefined ? { ...this.options.env, ...options.env } : undefined;
    try {
      const { pid } = await this.agent.exec({
        id,
        argv: options.argv,
        ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
        ...(env !== undefined ? { env } : {}),
        ...(options.stdin ? { stdin: true } : {}),
        ...(options.pty ? { pty: options.pty } : {}),
        ...(timeoutMs > 0 ? { timeoutMs } : {}),
      });
      if (log.record.status === 'running') log.update({ pid });
    } catch (e) {
      this.#logs.delete(id);
      this.#oomAtStart.delete(id);
      if (log.record.status === 'running')
        log.update({ status: 'failed', error: (e as Error).message, endedAt: new Date().toISOString() });
    }
    return log.record;
  }

  writeStdin(id: string, data: Buffer): void {
    if (this.#logs.has(id)) this.agent.stdin(id, data);
  }

  endStdin(id: string): void {
    if (this.#logs.has(id)) this.agent.endStdin(id);
  }

  /** Resizes a running `pty` exec's terminal. */
  resize(id: string, rows: number, cols: number): boolean {
    if (!this.#logs.get(id)?.record.pty) return false;
    this.agent.resize(id, rows, cols);
    return true;
  }

  /** Signals a running exec's whole process group. */
  signal(id: string, signal: NodeJS.Signals): boolean {
    if (!this.#logs.has(id)) return false;
    this.agent.signal(id, signal, true);
    return true;
  }

  /** Resolves with the record once the exec has ended. */
  async wait(id: string, signal?: AbortSignal): Promise<ExecRecord | undefined> {
    const log = this.#logs.get(id);
    if (log) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          signal?.removeEventListener('abort', done);
          resolve();
        };
        log.once('end', done);
        signal?.addEventListener('abort', done);
      });
    }
    return this.records.get(id);
  }

  /** `{ oomKilled: true }` when the memory limit killed a process of the sandbox while exec `id` ran. */
  #oomSince(id: string): { oomKilled?: true } {
    const before = this.#oomAtStart.get(id);
    this.#oomAtStart.delete(id);
    if (before === undefined) return {};
    try {
      return (this.options.oomKills?.() ?? before) > before ? { oomKilled: true } : {};
    } catch {
      return {}; // the group is gone (the sandbox ended): nothing more to learn
    }
  }

  #ended(id: string, exit: ExecExit): void {
    const log = this.#logs.get(id);
    if (!log) return;
    this.#logs.delete(id);
    log.update({
      ...this.#oomSince(id),
      status: 'exited',
      ...(exit.code !== null ? { exitCode: exit.code } : {}),
      ...(exit.signal !== null ? { signal: exit.signal } : {}),
      timedOut: exit.timedOut,
      endedAt: new Date().toISOString(),
    });
  }
}
