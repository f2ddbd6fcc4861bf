/**
 * @module sandbox/supervisor/supervisor-runtime
 * One supervisor seen as a `SandboxRuntime` of exactly one sandbox, so it
 * is served on its control socket by the same HTTP layer as a whole host
 * (runtime-http). Other ids are NotFound; creating is the daemon's job.
 */
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import { InvalidArgumentError, NotFoundError } from '@stowage/sdk/common/errors.js';
import type { OutputEvent, RuntimeExec, RuntimeState, SandboxRuntime } from '../runtime.js';
import { execOutput } from './exec-records.js';
import type { Supervisor } from './supervisor.js';

export class SupervisorRuntime implements SandboxRuntime {
  readonly host = hostname();

  constructor(private readonly sup: Supervisor) {}

  #check(id: string): Supervisor {
    if (id !== this.sup.id) throw new NotFoundError(`no sandbox ${id} here`);
    return this.sup;
  }

  unavailable(): undefined {
    return undefined;
  }

  async create(): Promise<void> {
    throw new InvalidArgumentError('a supervisor runs the one sandbox it was started for');
  }

  async state(id: string): Promise<RuntimeState | undefined> {
    const sup = this.#check(id);
    return sup.running ? { id, status: 'running' } : sup.ended;
  }

  terminate(id: string, reason: string): Promise<RuntimeState> {
    return this.#check(id).terminate(reason);
  }

  onEnded(listener: (state: RuntimeState) => void): void {
    void this.sup.ended.then(listener);
  }

  async exec(id: string, exec: RuntimeExec) {
    return this.#check(id).execs.exec(exec);
  }

  async execs(id: string) {
    return this.#check(id).records.list();
  }

  async getExec(id: string, execId: string) {
    return this.#check(id).records.get(execId);
  }

  output(
    id: string,
    execId: string,
    from: { stdout: number; stderr: number },
    signal?: AbortSignal,
  ): AsyncIterable<OutputEvent> {
    return execOutput(this.#check(id).records, execId, from, signal);
  }

  async writeStdin(id: string, execId: string, data: Buffer, end: boolean): Promise<void> {
    const execs = this.#check(id).execs;
    if (data.length > 0) execs.writeStdin(execId, data);
    if (end) execs.endStdin(execId);
  }

  async signal(id: string, execId: string, signal: NodeJS.Signals): Promise<void> {
    if (!this.#check(id).execs.signal(execId, signal))
      throw new NotFoundError(`exec ${execId} is not running in sandbox ${id}`);
  }

  async resize(id: string, execId: string, rows: number, cols: number): Promise<void> {
    if (!this.#check(id).execs.resize(execId, rows, cols))
      throw new NotFoundError(`exec ${execId} is not a running terminal command in sandbox ${id}`);
  }

  async writeFile(id: string, path: string, data: Readable, options: { mode: number; createParents: boolean }) {
    const agent = this.#check(id).agent;
    await agent.writeFile(path, data, options);
    return agent.stat(path);
  }

  async readFile(id: string, path: string) {
    return this.#check(id).agent.readStream(path);
  }

  async stat(id: string, path: string) {
    return this.#check(id).agent.stat(path);
  }

  async list(id: string, path: string) {
    return this.#check(id).agent.list(path);
  }

  async remove(id: string, path: string, recursive: boolean) {
    return this.#check(id).agent.remove(path, recursive);
  }

  async mkdir(id: string, path: string, options: { parents: boolean; mode: number }) {
    return this.#check(id).agent.mkdir(path, options);
  }

  async close(): Promise<void> {}
}
