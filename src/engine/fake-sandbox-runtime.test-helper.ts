/**
 * @module engine/fake-sandbox-runtime.test-helper
 * An in-memory SandboxRuntime for fast tests of the control plane (engine
 * and HTTP): no namespaces, no processes. Files live in a map per sandbox
 * and fail with the errno codes the real agent reports; execs understand a
 * few commands (`echo`, `cat` reading stdin, `sleep` until signalled,
 * `printf-bytes N` writing N bytes, anything else exits 127). Tests drive
 * what a real host would do on its own with `end` (a timeout or crash) and
 * `forget` (a host restarted without the sandbox).
 */
import { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import { NotFoundError } from '@stowage/sdk/common/errors.js';
import type {
  ExecRecord,
  OutputEvent,
  RuntimeExec,
  RuntimeFileInfo,
  RuntimeState,
  SandboxLaunch,
  SandboxRuntime,
} from '../sandbox/runtime.js';

interface FakeFile {
  type: 'file' | 'directory';
  data: Buffer;
  mode: number;
  mtimeMs: number;
}

interface FakeExec {
  record: ExecRecord;
  out: { stdout: Buffer; stderr: Buffer };
  events: EventEmitter;
}

interface FakeSandbox {
  launch: SandboxLaunch;
  state: RuntimeState;
  files: Map<string, FakeFile>;
  execs: Map<string, FakeExec>;
}

const errno = (code: string, message: string) => Object.assign(new Error(`${code}: ${message}`), { code });
const parentOf = (p: string) => p.slice(0, p.lastIndexOf('/')) || '/';

/** A SandboxRuntime in memory, with hooks to fail and end sandboxes. */
export class FakeSandboxRuntime implements SandboxRuntime {
  readonly host: string;
  readonly sandboxes = new Map<string, FakeSandbox>();
  /** What `unavailable()` answers. */
  missing: string | undefined;
  /** The next create rejects with this (and leaves nothing behind). */
  failNextCreate: Error | undefined;
  /** Output readers not yet finished (a reader whose client went away must stop). */
  openOutputs = 0;
  /** When set, creates wait for it before they start anything (to test what happens meanwhile). */
  gate: Promise<void> | undefined;
  /** Every create asked, in order. */
  readonly launches: SandboxLaunch[] = [];
  readonly #listeners: Array<(s: RuntimeState) => void> = [];
  #nextExec = 0;

  constructor(host = 'fake-host') {
    this.host = host;
  }

  unavailable(): string | undefined {
    return this.missing;
  }

  async create(launch: SandboxLaunch): Promise<void> {
    this.launches.push(launch);
    await this.gate;
    const fail = this.failNextCreate;
    if (fail) {
      this.failNextCreate = undefined;
      throw fail;
    }
    const now = Date.now();
    const dir = (): FakeFile => ({ type: 'directory', data: Buffer.alloc(0), mode: 0o755, mtimeMs: now });
    this.sandboxes.set(launch.id, {
      launch,
      state: { id: launch.id, status: 'running' },
      files: new Map([['/', dir()], ['/tmp', dir()], ...launch.volumes.map((v) => [v.path, dir()] as const)]),
      execs: new Map(),
    });
  }

  async state(id: string): Promise<RuntimeState | undefined> {
    return this.sandboxes.get(id)?.state;
  }

  async terminate(id: string, reason: string): Promise<RuntimeState> {
    const sb = this.#get(id);
    if (sb.state.status === 'running') {
      sb.state = { id, status: 'terminated', reason, endedAt: new Date().toISOString() };
      for (const e of sb.execs.values()) if (e.record.status === 'running') this.#finish(e, { signal: 'SIGKILL' });
    }
    return sb.state;
  }

  onEnded(listener: (state: RuntimeState) => void): void {
    this.#listeners.push(listener);
  }

  /** Ends a sandbox on its own (timeout, crash) and tells the listeners, as a host does. */
  end(id: string, status: 'terminated' | 'failed', reason: string): void {
    const sb = this.#get(id);
    sb.state = { id, status, reason, endedAt: new Date().toISOString() };
    for (const l of this.#listeners) l(sb.state);
  }

  /** Forgets a sandbox, as a host restarted without it would. */
  forget(id: string): void {
    this.sandboxes.delete(id);
  }

  async exec(id: string, req: RuntimeExec): Promise<ExecRecord> {
    const sb = this.#get(id);
    const e: FakeExec = {
      record: {
        id: `e${++this.#nextExec}`,
        argv: req.argv,
        ...(req.cwd !== undefined ? { cwd: req.cwd } : {}),
        background: req.background === true,
        pty: req.pty !== undefined,
        ...(req.timeoutMs !== undefined ? { timeoutMs: req.timeoutMs } : {}),
        status: 'running',
        startedAt: new Date().toISOString(),
        stdoutBytes: 0,
        stderrBytes: 0,
        dropped: { stdout: 0, stderr: 0 },
      },
      out: { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0) },
      events: new EventEmitter(),
    };
    sb.execs.set(e.record.id, e);
    const argv = req.argv[0] === '/bin/sh' && req.argv[1] === '-c' ? req.argv[2]!.split(' ') : req.argv;
    const [cmd, ...args] = argv;
    if (cmd === 'echo') {
      this.#append(e, 'stdout', Buffer.from(`${args.join(' ')}\n`));
      this.#finish(e, { exitCode: 0 });
    } else if (cmd === 'printf-bytes') {
      this.#append(e, 'stdout', Buffer.alloc(Number(args[0]), 'x'));
      this.#append(e, 'stderr', Buffer.from('done\n'));
      this.#finish(e, { exitCode: 0 });
    } else if (cmd !== 'cat' && cmd !== 'sleep') {
      this.#append(e, 'stderr', Buffer.from(`${cmd}: not found\n`));
      this.#finish(e, { exitCode: 127 });
    }
    return { ...e.record };
  }

  async execs(id: string): Promise<ExecRecord[]> {
    return [...this.#get(id).execs.values()].map((e) => ({ ...e.record }));
  }

  async getExec(id: string, execId: string): Promise<ExecRecord | undefined> {
    const e = this.#get(id).execs.get(execId);
    return e && { ...e.record };
  }

  async *output(
    id: string,
    execId: string,
    from: { stdout: number; stderr: number },
    signal?: AbortSignal,
  ): AsyncIterable<OutputEvent> {
    const e = this.#exec(id, execId);
    const at = { ...from };
    this.openOutputs++;
    try {
      yield* this.#follow(e, at, signal);
    } finally {
      this.openOutputs--;
    }
  }

  async *#follow(
    e: FakeExec,
    at: { stdout: number; stderr: number },
    signal?: AbortSignal,
  ): AsyncIterable<OutputEvent> {
    for (;;) {
      for (const stream of ['stdout', 'stderr'] as const) {
        const buf = e.out[stream];
        if (at[stream] < buf.length) {
          yield { stream, offset: at[stream], data: Buffer.from(buf.subarray(at[stream])) };
          at[stream] = buf.length;
        }
      }
      if (e.record.status !== 'running') {
        yield { end: { ...e.record } };
        return;
      }
      if (signal?.aborted) return;
      await new Promise<void>((resolve) => {
        const done = () => {
          e.events.off('change', done);
          signal?.removeEventListener('abort', done);
          resolve();
        };
        e.events.on('change', done);
        signal?.addEventListener('abort', done);
      });
      if (signal?.aborted) return;
    }
  }

  async writeStdin(id: string, execId: string, data: Buffer, end: boolean): Promise<void> {
    const e = this.#exec(id, execId);
    if (e.record.status !== 'running') throw errno('EPIPE', 'the exec has ended');
    if (e.record.argv.includes('cat')) this.#append(e, 'stdout', data);
    if (end) this.#finish(e, { exitCode: 0 });
  }

  async signal(id: string, execId: string, signal: NodeJS.Signals): Promise<void> {
    const e = this.#exec(id, execId);
    if (e.record.status === 'running') this.#finish(e, { signal });
  }

  /** Resizes are recorded per exec, in order. */
  readonly resizes: Array<{ id: string; execId: string; rows: number; cols: number }> = [];

  async resize(id: string, execId: string, rows: number, cols: number): Promise<void> {
    this.#exec(id, execId);
    this.resizes.push({ id, execId, rows, cols });
  }

  async writeFile(
    id: string,
    path: string,
    data: Readable,
    options: { mode: number; createParents: boolean },
  ): Promise<RuntimeFileInfo> {
    const files = this.#files(id);
    const chunks: Buffer[] = [];
    for await (const c of data) chunks.push(Buffer.from(c as Uint8Array));
    if (files.get(path)?.type === 'directory') throw errno('EISDIR', path);
    if (!files.has(parentOf(path))) {
      if (!options.createParents) throw errno('ENOENT', parentOf(path));
      await this.mkdir(id, parentOf(path), { parents: true, mode: 0o755 });
    }
    if (files.get(parentOf(path))?.type !== 'directory') throw errno('ENOTDIR', parentOf(path));
    files.set(path, { type: 'file', data: Buffer.concat(chunks), mode: options.mode, mtimeMs: Date.now() });
    return this.stat(id, path);
  }

  async readFile(id: string, path: string): Promise<Readable> {
    const f = this.#file(id, path);
    if (f.type === 'directory') throw errno('EISDIR', path);
    return Readable.from([f.data]);
  }

  async stat(id: string, path: string): Promise<RuntimeFileInfo> {
    const f = this.#file(id, path);
    const name = path === '/' ? '/' : path.slice(path.lastIndexOf('/') + 1);
    return { name, type: f.type, size: f.data.length, mode: f.mode, mtimeMs: f.mtimeMs, uid: 0, gid: 0 };
  }

  async list(id: string, path: string): Promise<{ entries: RuntimeFileInfo[]; truncated: boolean }> {
    if (this.#file(id, path).type !== 'directory') throw errno('ENOTDIR', path);
    const prefix = path === '/' ? '/' : `${path}/`;
    const names = [...this.#files(id).keys()].filter((p) => p !== '/' && parentOf(p) === path && p.startsWith(prefix));
    return { entries: await Promise.all(names.sort().map((p) => this.stat(id, p))), truncated: false };
  }

  async remove(id: string, path: string, recursive: boolean): Promise<void> {
    const files = this.#files(id);
    this.#file(id, path);
    const below = [...files.keys()].filter((p) => p.startsWith(`${path}/`));
    if (below.length > 0 && !recursive) throw errno('ENOTEMPTY', path);
    for (const p of [path, ...below]) files.delete(p);
  }

  async mkdir(id: string, path: string, options: { parents: boolean; mode: number }): Promise<void> {
    const files = this.#files(id);
    if (files.has(path)) {
      if (options.parents && files.get(path)!.type === 'directory') return;
      throw errno('EEXIST', path);
    }
    if (!files.has(parentOf(path))) {
      if (!options.parents) throw errno('ENOENT', parentOf(path));
      await this.mkdir(id, parentOf(path), options);
    }
    files.set(path, { type: 'directory', data: Buffer.alloc(0), mode: options.mode, mtimeMs: Date.now() });
  }

  async close(): Promise<void> {}

  #get(id: string): FakeSandbox {
    const sb = this.sandboxes.get(id);
    if (!sb) throw new NotFoundError(`sandbox ${id} not found on ${this.host}`);
    return sb;
  }

  #files(id: string): Map<string, FakeFile> {
    return this.#get(id).files;
  }

  #file(id: string, path: string): FakeFile {
    const f = this.#files(id).get(path);
    if (!f) throw errno('ENOENT', path);
    return f;
  }

  #exec(id: string, execId: string): FakeExec {
    const e = this.#get(id).execs.get(execId);
    if (!e) throw new NotFoundError(`exec ${execId} not found`);
    return e;
  }

  #append(e: FakeExec, stream: 'stdout' | 'stderr', data: Buffer): void {
    e.out[stream] = Buffer.concat([e.out[stream], data]);
    e.record[stream === 'stdout' ? 'stdoutBytes' : 'stderrBytes'] = e.out[stream].length;
    e.events.emit('change');
  }

  #finish(e: FakeExec, how: { exitCode: number } | { signal: string }): void {
    Object.assign(e.record, { status: 'exited', endedAt: new Date().toISOString(), ...how });
    e.events.emit('change');
  }
}
