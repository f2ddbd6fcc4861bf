/**
 * @module sandbox/daemon/local-host
 * The sandbox host daemon of one machine (the `SandboxRuntime` that
 * `stowage serve` runs): it builds images, starts one supervisor process
 * per sandbox, and forwards every call to that sandbox's supervisor over its
 * control socket.
 *
 * Supervisors are started detached, so a daemon that stops or restarts
 * leaves its sandboxes running. `open()` finds them again: each run
 * directory without a final state whose supervisor answers is live again;
 * one whose supervisor is gone is recorded as failed, and the sweep removes
 * what it left (state disk, mounts, loop device, cgroup). Exec records of
 * ended sandboxes stay readable for `RECORDS_KEPT_MS`.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { setMaxListeners } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Duplex, Readable } from 'node:stream';
import { AlreadyExistsError, ConflictError, NotFoundError, UnavailableError } from '@stowage/sdk/common/errors.js';
import { detectCgroups } from '../host/cgroups.js';
import { type HostReadiness, describeReadiness, probeHost } from '../host/host-probe.js';
import { ImageStore } from '../host/images.js';
import { DEFAULT_IMAGE } from '../host/image-spec.js';
import { checkSandboxId, destroyStateDisk, sandboxPaths } from '../host/state-disk.js';
import { sweep } from '../host/sweep.js';
import type { OutputEvent, RuntimeExec, RuntimeState, SandboxLaunch, SandboxRuntime } from '../runtime.js';
import { ExecRecords, execOutput } from '../supervisor/exec-records.js';
import { endVolumeMounts, orphanedVolumeMounts } from '../supervisor/volume-mounts.js';
import {
  RUNS_DIR,
  SPARES_DIR,
  SUPERVISOR_MAIN,
  type SupervisorSpec,
  cgroupNameOf,
  readFinalState,
  runPaths,
  spareSlotPid,
} from '../supervisor/supervisor-files.js';
import { readJsonFile, writeJsonFile } from '../../common/json-file.js';
import { WakeLatencyHold } from '../../mount/fuse/wake-latency.js';
import { HttpSandboxRuntime, RuntimeUnreachableError } from '../runtime-http/runtime-client.js';
import { SparePool, isSupervisor } from './spare-pool.js';

/** How long the runs (exec records) of ended sandboxes are kept. */
export const RECORDS_KEPT_MS = 7 * 24 * 3600_000;
/** Longest a supervisor may take to start its sandbox (an image is built before, not in this time). */
const START_TIMEOUT_MS = 120_000;
/** How long burying a sandbox found dead at start waits for the server (starting after the host) for its volumes. */
const RECOVERY_SERVER_WAIT_MS = 120_000;
const GONE = 'its supervisor is gone (the host restarted, or the supervisor crashed)';

export interface LocalHostOptions {
  dataDir: string;
  /** The host's name in records (default: the machine's). */
  host?: string;
  /** Where built images are kept (an ImageStore; default `<dataDir>/images`). */
  images?: ImageStore;
  /** Where mount agents on this machine reach the Stowage API, when not where the control plane says (a remote host). */
  serverUrl?: string;
  /** Supervisor processes kept started and waiting, so a create need not wait for Node to start (default 2). */
  spares?: number;
  /** The probe's answer (default: probe this machine). */
  readiness?: HostReadiness;
  /**
   * Mount sandboxes' volumes with `--low-latency` (idle CPUs poll while a volume serves a burst of requests):
   * true insists (refused where this process may not), false never; absent, wherever this process may.
   */
  lowLatencyVolumes?: boolean;
  log?: (line: string) => void;
}

export class LocalSandboxHost implements SandboxRuntime {
  readonly host: string;
  readonly #dataDir: string;
  readonly #images: ImageStore;
  readonly #readiness: HostReadiness;
  readonly #log: (line: string) => void;
  readonly #serverUrl: string | undefined;
  readonly #lowLatencyVolumes: boolean;
  readonly #live = new Map<string, HttpSandboxRuntime>();
  /** Sandboxes ending by a terminate call: their end is that call's answer, not an onEnded event. */
  readonly #terminating = new Set<string>();
  readonly #listeners: Array<(state: RuntimeState) => void> = [];
  readonly #watching = new AbortController();
  readonly #spares: SparePool | undefined;
  /** Sandboxes found dead at start whose volumes and state are being ended in the background. */
  readonly #burying = new Map<string, Promise<void>>();
  /** Creates waiting for their supervisor's answer. */
  #starting = 0;

  private constructor(opts: LocalHostOptions, readiness: HostReadiness) {
    this.#dataDir = opts.dataDir;
    this.host = opts.host ?? hostname();
    this.#images = opts.images ?? new ImageStore({ dataDir: opts.dataDir });
    this.#readiness = readiness;
    this.#log = opts.log ?? (() => undefined);
    this.#serverUrl = opts.serverUrl;
    this.#lowLatencyVolumes = opts.lowLatencyVolumes ?? WakeLatencyHold.available();
    this.#spares = readiness.ready
      ? new SparePool({
          size: opts.spares ?? 2,
          ids: readiness.ids,
          spawn: (order) =>
            this.#spawnSupervisor(join(this.#dataDir, RUNS_DIR, 'spares.log'), '--spare', JSON.stringify(order)),
        })
      : undefined;
    // One listener per running sandbox's event stream.
    setMaxListeners(0, this.#watching.signal);
  }

  /** Probes the machine, finds the sandboxes still running from an earlier daemon, and sweeps what dead ones left. */
  static async open(opts: LocalHostOptions): Promise<LocalSandboxHost> {
    // Refused here rather than by every volume's mount: the operator asked for it.
    if (opts.lowLatencyVolumes) WakeLatencyHold.open().close();
    const host = new LocalSandboxHost(opts, opts.readiness ?? probeHost());
    if (host.#readiness.ready) {
      await host.#recover();
      // Until a create says otherwise, spares prepare the default image, when this host has built it.
      host.#spares?.warm((await host.#images.find(DEFAULT_IMAGE).catch(() => undefined))?.root);
      host.#spares?.refill();
    } else host.#log(describeReadiness(host.#readiness));
    return host;
  }

  unavailable(): string | undefined {
    return this.#readiness.ready ? undefined : describeReadiness(this.#readiness);
  }

  onEnded(listener: (state: RuntimeState) => void): void {
    this.#listeners.push(listener);
  }

  /** Ids of the sandboxes running here. */
  liveIds(): string[] {
    return [...this.#live.keys()];
  }

  async #recover(): Promise<void> {
    const dead: string[] = [];
    const runs = join(this.#dataDir, RUNS_DIR);
    mkdirSync(runs, { recursive: true, mode: 0o700 });
    for (const id of readdirSync(runs)) {
      let paths: ReturnType<typeof runPaths>;
      try {
        paths = runPaths(this.#dataDir, checkSandboxId(id));
      } catch {
        continue;
      }
      if (existsSync(paths.state)) {
        if (Date.now() - statSync(paths.state).mtimeMs > RECORDS_KEPT_MS)
          rmSync(paths.dir, { recursive: true, force: true });
        continue;
      }
      const client = this.#supervisor(id);
      try {
        const state = await Promise.race([
          client.state(id),
          new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 5000).unref()),
        ]);
        if (state?.status === 'running') {
          this.#adopt(id, client);
          this.#log(`sandbox ${id} is still running`);
          continue;
        }
      } catch {
        // not answering: gone
      }
      // Its volumes need the server, which starts after this: they end in the background (#buryFound).
      dead.push(id);
    }
    // Disks formatted by spares that were killed before they could remove them.
    const spares = join(this.#dataDir, SPARES_DIR);
    for (const name of existsSync(spares) ? readdirSync(spares) : []) {
      const pid = Number(/^disk-(\d+)\.img$/.exec(name)?.[1]);
      if (!pid || !isSupervisor(pid)) rmSync(join(spares, name), { force: true });
    }
    // A spare's prepared sandbox is under its slot's name until claimed; the sweep takes a dead one's state.
    const isLive = (id: string) => this.#live.has(id) || dead.includes(id) || isSupervisor(spareSlotPid(id));
    const swept = await sweep({ dataDir: this.#dataDir, isLive });
    for (const id of swept.sandboxes) {
      if (spareSlotPid(id) > 0)
        await detectCgroups()
          .group(id)
          .remove()
          .catch(() => undefined);
    }
    for (const id of dead) this.#buryFound(id);
    if (swept.sandboxes.length + swept.strayMounts.length + swept.strayLoops.length > 0)
      this.#log(`swept what ended sandboxes left: ${JSON.stringify(swept)}`);
  }

  /** Starts a supervisor process, detached, its output to `logPath`; `id` is a sandbox's, or `--spare`. */
  #spawnSupervisor(logPath: string, ...args: string[]): ChildProcess {
    const logFd = openSync(logPath, 'a', 0o600);
    try {
      return spawn(process.execPath, [SUPERVISOR_MAIN, this.#dataDir, ...args], {
        detached: true,
        stdio: ['ignore', logFd, logFd, 'pipe'],
      });
    } finally {
      closeSync(logFd);
    }
  }

  /** The HTTP client of sandbox `id`'s supervisor, on its control socket. */
  #supervisor(id: string): HttpSandboxRuntime {
    return new HttpSandboxRuntime({ socketPath: runPaths(this.#dataDir, id).socket }, this.host);
  }

  /** Tracks a running sandbox's supervisor until its sandbox ends (it says so, or its socket goes). */
  #adopt(id: string, client: HttpSandboxRuntime): void {
    this.#live.set(id, client);
    const signal = this.#watching.signal;
    void (async () => {
      try {
        for await (const state of client.events(signal)) {
          if (state.id === id) return this.#gone(id, state);
        }
      } catch {
        // the supervisor went without saying how the sandbox ended
      }
      if (signal.aborted) return;
      const final = readFinalState(this.#dataDir, id);
      if (final) return this.#gone(id, final);
      const state = this.#recordGone(id);
      await this.#bury(id, 0);
      this.#gone(id, state);
    })();
  }

  /**
   * Buries, in the background, a sandbox found dead at start. Until that is done its state is not known (state()
   * answers 503), so the control plane does not end its attachments, whose tokens its volumes' final commits
   * need; then its final state is recorded and reported as an end.
   */
  #buryFound(id: string): void {
    const burial = this.#bury(id, RECOVERY_SERVER_WAIT_MS)
      .catch((e: unknown) => this.#log(`sandbox ${id}: ${e}`))
      .then(() => {
        const state = this.#recordGone(id);
        this.#burying.delete(id);
        for (const l of this.#listeners) l(state);
      });
    this.#burying.set(id, burial);
  }

  /** Records a sandbox whose supervisor died without a final state as failed, and its running execs as lost. */
  #recordGone(id: string): RuntimeState {
    this.#log(`sandbox ${id}: ${GONE}`);
    const paths = runPaths(this.#dataDir, id);
    const state: RuntimeState = { id, status: 'failed', reason: GONE, endedAt: new Date().toISOString() };
    writeJsonFile(paths.state, state);
    new ExecRecords(paths.dir).markLost(`the sandbox ended: ${GONE}`);
    return state;
  }

  /**
   * Removes what a sandbox whose supervisor died left: its processes, its volumes (each writable one committed,
   * by its mount agent if that still runs, else by one started again, which waits up to `serverWaitMs` for the
   * server; work that cannot be committed is kept, see endVolumeMounts), its state disk and its cgroup.
   */
  async #bury(id: string, serverWaitMs: number): Promise<void> {
    const cgroup = detectCgroups().group(cgroupNameOf(this.#dataDir, id));
    await cgroup.killAll().catch(() => undefined);
    const spec = readJsonFile<SupervisorSpec>(runPaths(this.#dataDir, id).spec);
    const sandboxDir = sandboxPaths(this.#dataDir, id).dir;
    const say = (line: string) => this.#log(`sandbox ${id}: ${line}`);
    if (spec) {
      const mounts = orphanedVolumeMounts(sandboxDir, spec.volumes);
      const revive = { ids: spec.ids, serverWaitMs, signal: this.#watching.signal };
      for (const p of await endVolumeMounts(this.#dataDir, id, mounts, GONE, revive, say)) say(p);
    }
    await destroyStateDisk(this.#dataDir, id).catch((e: unknown) => say(String(e)));
    await cgroup.remove().catch(() => undefined);
  }

  #gone(id: string, state: RuntimeState): void {
    if (!this.#live.delete(id)) return;
    if (this.#terminating.has(id)) return;
    for (const l of this.#listeners) l(state);
  }

  async create(launch: SandboxLaunch): Promise<void> {
    const why = this.unavailable();
    if (why !== undefined || !this.#readiness.ready) throw new UnavailableError(why ?? 'no sandbox host');
    const paths = runPaths(this.#dataDir, checkSandboxId(launch.id));
    const { image } = await this.#images.ensure(launch.image, {
      onLog: (text) => this.#log(`image build: ${text.trimEnd()}`),
    });
    mkdirSync(join(this.#dataDir, RUNS_DIR), { recursive: true, mode: 0o700 });
    try {
      mkdirSync(paths.dir, { mode: 0o700 });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new AlreadyExistsError(`sandbox ${launch.id} exists`);
      throw e;
    }
    const spec: SupervisorSpec = {
      id: launch.id,
      dataDir: this.#dataDir,
      imageRoot: image.root,
      imageEnv: image.env,
      ids: this.#readiness.ids,
      cpu: launch.cpu,
      memoryMib: launch.memoryMib,
      diskGib: launch.diskGib,
      env: launch.env,
      expiresAt: launch.expiresAt.toISOString(),
      volumes: launch.volumes.map((v) => (this.#serverUrl ? { ...v, serverUrl: this.#serverUrl } : v)),
      ...(this.#lowLatencyVolumes ? { lowLatencyVolumes: true } : {}),
    };
    writeJsonFile(paths.spec, spec);
    const spare = this.#spares?.take(image.root);
    let child: ChildProcess;
    if (spare) {
      child = spare;
      (child.stdio[3] as Duplex).write(`${JSON.stringify({ id: launch.id })}\n`);
    } else child = this.#spawnSupervisor(paths.log, launch.id);
    this.#starting++;
    const answer = await startReport(child, START_TIMEOUT_MS).finally(() => this.#starting--);
    child.unref();
    // The next spares start once no create waits for its answer, not competing with a burst for the CPU.
    this.#spares?.warm(image.root);
    setImmediate(() => this.#starting === 0 && this.#spares?.refill());
    if ('error' in answer) throw new UnavailableError(`sandbox ${launch.id} could not start: ${answer.error}`);
    this.#adopt(launch.id, this.#supervisor(launch.id));
  }

  async state(id: string): Promise<RuntimeState | undefined> {
    if (this.#live.has(id)) return { id, status: 'running' };
    if (this.#burying.has(id))
      throw new UnavailableError(`sandbox ${id} is being cleaned up after its supervisor was lost; try again shortly`);
    try {
      return readFinalState(this.#dataDir, id);
    } catch {
      return undefined;
    }
  }

  async terminate(id: string, reason: string): Promise<RuntimeState> {
    const client = this.#live.get(id);
    if (client) {
      this.#terminating.add(id);
      try {
        const state = await client.terminate(id, reason);
        this.#live.delete(id);
        return state;
      } catch (e) {
        if (!(e instanceof RuntimeUnreachableError)) throw e;
      } finally {
        this.#terminating.delete(id);
      }
    }
    const final = await this.state(id);
    if (!final) throw new NotFoundError(`no sandbox ${id} on this host`);
    return final;
  }

  /** The supervisor of a running sandbox; Conflict for one that ended, NotFound for one never here. */
  #client(id: string): HttpSandboxRuntime {
    const client = this.#live.get(id);
    if (client) return client;
    if (this.#burying.has(id)) throw new ConflictError(`sandbox ${id} has failed: ${GONE}`);
    const final = readFinalState(this.#dataDir, checkSandboxId(id));
    if (final) throw new ConflictError(`sandbox ${id} is ${final.status} (${final.reason ?? 'ended'})`);
    throw new NotFoundError(`no sandbox ${id} on this host`);
  }

  /** The exec records of a sandbox that ran here, running or ended. */
  #records(id: string): ExecRecords {
    const { dir } = runPaths(this.#dataDir, checkSandboxId(id));
    if (!existsSync(dir)) throw new NotFoundError(`no sandbox ${id} on this host`);
    return new ExecRecords(dir);
  }

  async exec(id: string, exec: RuntimeExec) {
    return this.#client(id).exec(id, exec);
  }

  async execs(id: string) {
    const client = this.#live.get(id);
    return client ? client.execs(id) : this.#records(id).list();
  }

  async getExec(id: string, execId: string) {
    const client = this.#live.get(id);
    return client ? client.getExec(id, execId) : this.#records(id).get(execId);
  }

  async *output(
    id: string,
    execId: string,
    from: { stdout: number; stderr: number },
    signal?: AbortSignal,
  ): AsyncGenerator<OutputEvent> {
    const client = this.#live.get(id);
    if (client) yield* client.output(id, execId, from, signal);
    else yield* execOutput(this.#records(id), execId, from, signal);
  }

  async writeStdin(id: string, execId: string, data: Buffer, end: boolean) {
    return this.#client(id).writeStdin(id, execId, data, end);
  }

  async signal(id: string, execId: string, signal: NodeJS.Signals) {
    return this.#client(id).signal(id, execId, signal);
  }

  async resize(id: string, execId: string, rows: number, cols: number) {
    return this.#client(id).resize(id, execId, rows, cols);
  }

  async writeFile(id: string, path: string, data: Readable, options: { mode: number; createParents: boolean }) {
    return this.#client(id).writeFile(id, path, data, options);
  }

  async readFile(id: string, path: string) {
    return this.#client(id).readFile(id, path);
  }

  async stat(id: string, path: string) {
    return this.#client(id).stat(id, path);
  }

  async list(id: string, path: string) {
    return this.#client(id).list(id, path);
  }

  async remove(id: string, path: string, recursive: boolean) {
    return this.#client(id).remove(id, path, recursive);
  }

  async mkdir(id: string, path: string, options: { parents: boolean; mode: number }) {
    return this.#client(id).mkdir(id, path, options);
  }

  async close(): Promise<void> {
    // A spare runs no request's sandbox: let go, it removes what it prepared and exits.
    await this.#spares?.close();
    this.#watching.abort();
    // Burials still waiting for the server stop waiting: what they could not commit is kept (endVolumeMounts).
    await Promise.all(this.#burying.values());
    this.#live.clear();
  }
}

/** The supervisor's one-line report on fd 3: ready, or why not. */
function startReport(child: ChildProcess, timeoutMs: number): Promise<{ ready: true } | { error: string }> {
  return new Promise((resolve) => {
    let text = '';
    const pipe = child.stdio[3] as Readable;
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      resolve({ error: `the supervisor did not report within ${timeoutMs / 1000} s` });
    }, timeoutMs);
    pipe.on('data', (b: Buffer) => {
      text += b.toString('utf8');
    });
    pipe.on('error', () => undefined);
    // The supervisor ends its side after its one line (or dies without one).
    const done = () => {
      clearTimeout(timer);
      pipe.destroy();
      try {
        resolve(JSON.parse(text.trim()) as { ready: true } | { error: string });
      } catch {
        resolve({
          error: `the supervisor exited without a report (${text.trim().slice(0, 200) || 'no output'}); see its log`,
        });
      }
    };
    pipe.once('end', done);
    pipe.once('close', done);
  });
}
