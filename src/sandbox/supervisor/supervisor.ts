import { ConflictError } from '@stowage/sdk/common/errors.js';
import { writeFileSync } from 'node:fs';
import type { SpareMountAgent } from '../../mount/agent-launch.js';
import { BASE_ENV } from '../host/image-builder.js';
import { attachToSandbox } from '../host/ns-attach.js';
import type { AgentClient } from '../protocol/agent-client.js';
import type { RuntimeState } from '../runtime.js';
import { ExecRecords } from './exec-records.js';
import { ExecService } from './exec-service.js';
import { PreparedSandbox, SANDBOX_PIDS_MAX } from './prepared-sandbox.js';
import { type VolumeMount, endVolumeMounts, exposeGuestSockets, startVolumeMounts } from './volume-mounts.js';
import { writeJsonFile } from '../../common/json-file.js';
import { type SupervisorSpec, runPaths } from './supervisor-files.js';

const MiB = 1024 * 1024;

/**
 * What a spare supervisor made ahead: a prepared sandbox, taken when it fits the spec (image and disk size); a
 * formatted disk image, taken when its size is the one asked for; mount agents waiting for a volume.
 */
export interface SpareParts {
  sandbox?: PreparedSandbox;
  disk?: { path: string; diskGib: number };
  mountAgents?: SpareMountAgent[];
}
/** Longest a timer may be set for in Node (about 24.8 days); later expiries are re-armed. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** A host name for the sandbox from its id (host names have no `_`). */
export function sandboxHostname(id: string): string {
  return id.replace(/_/g, '-').slice(0, 63);
}

export class Supervisor {
  readonly records: ExecRecords;
  /** Resolves with the final state once the sandbox has ended and everything is torn down. */
  readonly ended: Promise<RuntimeState>;
  #execs: ExecService | undefined;
  #agent: AgentClient | undefined;
  #mounts: VolumeMount[] = [];
  #prepared: PreparedSandbox | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ending: Promise<RuntimeState> | undefined;
  #resolveEnded!: (state: RuntimeState) => void;

  private constructor(
    readonly spec: SupervisorSpec,
    private readonly log: (line: string) => void,
  ) {
    this.records = new ExecRecords(runPaths(spec.dataDir, spec.id).dir);
    this.ended = new Promise((resolve) => {
      this.#resolveEnded = resolve;
    });
  }

  get id(): string {
    return this.spec.id;
  }

  /** The running sandbox's exec service (throws once it has ended). */
  get execs(): ExecService {
    if (!this.#execs || this.#ending) throw new ConflictError(`sandbox ${this.id} is not running`);
    return this.#execs;
  }

  get agent(): AgentClient {
    if (!this.#agent || this.#ending) throw new ConflictError(`sandbox ${this.id} is not running`);
    return this.#agent;
  }

  /** True until the sandbox starts to end. */
  get running(): boolean {
    return this.#ending === undefined;
  }

  /** Makes and starts the sandbox, with what a spare made ahead; on failure removes what it made and rejects. */
  static async start(spec: SupervisorSpec, log: (line: string) => void, spare: SpareParts = {}): Promise<Supervisor> {
    const sup = new Supervisor(spec, log);
    try {
      await sup.#start(spare);
    } catch (e) {
      await sup.#teardown({ id: spec.id, status: 'failed', reason: `could not start: ${(e as Error).message}` });
      throw e;
    }
    return sup;
  }

  async #start(spare: SpareParts): Promise<void> {
    const { spec } = this;
    // Where start-up time goes, for the log: each step's end in ms since the start.
    const t0 = performance.now();
    const marks: string[] = [];
    const mark = (step: string) => marks.push(`${step} ${Math.round(performance.now() - t0)}`);
    let prepared = spare.sandbox;
    if (prepared && !prepared.fits(spec.imageRoot, spec.diskGib)) {
      this.log('the spare prepared another image or disk size: starting cold');
      await prepared.discard().catch((e: unknown) => this.log(`discarding the spare's sandbox: ${e}`));
      prepared = undefined;
    }
    if (prepared) mark('warm');
    else {
      const formatted = spare.disk?.diskGib === spec.diskGib ? spare.disk.path : undefined;
      const opts = { dataDir: spec.dataDir, slot: spec.id, imageRoot: spec.imageRoot, diskGib: spec.diskGib };
      prepared = await PreparedSandbox.prepare(
        { ...opts, ids: spec.ids, ...(formatted !== undefined ? { formattedDisk: formatted } : {}) },
        marks,
      );
    }
    this.#prepared = prepared;
    await prepared.claim(spec.id);
    writeFileSync(runPaths(spec.dataDir, spec.id).cgroup, `${prepared.cgroupName}\n`);
    prepared.cgroup.setLimits({ cpuCores: spec.cpu, memoryBytes: spec.memoryMib * MiB, pidsMax: SANDBOX_PIDS_MAX });
    const agents = [...(spare.mountAgents ?? [])];
    this.#mounts = await startVolumeMounts(prepared.disk.paths.dir, spec.volumes, {
      ids: spec.ids,
      ...(spec.lowLatencyVolumes ? { lowLatency: true } : {}),
      spareAgent: () => agents.shift(),
      // The sandbox's bind still holds the dead mount: the volume fails inside (ENOTCONN) until the sandbox ends.
      onAgentExit: (m, code, signal) =>
        this.log(`the mount agent of ${m.volume.volume} at ${m.volume.path} exited (${signal ?? `exit ${code}`})`),
    });
    for (const unused of agents) unused.child.kill();
    if (spec.volumes.length > 0) mark('volumes');
    exposeGuestSockets(prepared.guestDir, this.#mounts);
    await attachToSandbox(prepared.launched.pid, spec.ids, {
      hostname: sandboxHostname(spec.id),
      binds: this.#mounts.map((m) => m.bind),
    });
    mark('attached');
    this.log(`started (ms: ${marks.join(', ')})`);
    const { child, agent } = prepared.launched;
    const { cgroup } = prepared;
    const env = { ...BASE_ENV, ...spec.imageEnv, ...spec.env };
    this.#agent = agent;
    this.#execs = new ExecService(agent, this.records, { env, oomKills: () => cgroup.oomKills() });
    child.once('close', (code, signal) => {
      if (this.#ending) return;
      const oom = safeCount(() => cgroup.oomKills()) > 0 ? ', after the memory limit killed a process' : '';
      void this.#end('failed', `the sandbox's agent exited (${signal ?? `exit ${code}`})${oom}`);
    });
    if (!prepared.alive) void this.#end('failed', "the sandbox's agent exited before it was claimed");
    this.#armTimer();
  }

  /** Ends the sandbox at its expiry, even when that is weeks away (Node timers stop at ~24.8 days). */
  #armTimer(): void {
    const left = Date.parse(this.spec.expiresAt) - Date.now();
    if (left <= 0) {
      void this.#end('terminated', 'timeout');
      return;
    }
    this.#timer = setTimeout(
      () => (left > MAX_TIMER_MS ? this.#armTimer() : void this.#end('terminated', 'timeout')),
      Math.min(left, MAX_TIMER_MS),
    );
  }

  /** Ends the sandbox now; resolves with its final state (the first reason wins when it was already ending). */
  terminate(reason: string): Promise<RuntimeState> {
    return this.#end('terminated', reason);
  }

  #end(status: 'terminated' | 'failed', reason: string): Promise<RuntimeState> {
    this.#ending ??= this.#teardown({ id: this.id, status, reason });
    return this.#ending;
  }

  async #teardown(state: Omit<RuntimeState, 'endedAt'>): Promise<RuntimeState> {
    clearTimeout(this.#timer);
    this.log(`ending (${state.status}: ${state.reason})`);
    const problems: string[] = [];
    const step = async (what: string, fn: () => Promise<unknown> | unknown) => {
      try {
        await fn();
      } catch (e) {
        problems.push(`${what}: ${(e as Error).message}`);
      }
    };
    const child = this.#prepared?.launched.child;
    const exited =
      child && child.exitCode === null && child.signalCode === null
        ? new Promise<void>((resolve) => child.once('close', () => resolve()))
        : Promise.resolve();
    await step('killing its processes', () => this.#prepared?.cgroup.killAll());
    await step('waiting for its processes', () =>
      Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000).unref())]),
    );
    this.#agent?.close(state.status === 'terminated' ? `the sandbox was terminated (${state.reason})` : state.reason!);
    const { dataDir, ids } = this.spec;
    const reason = state.reason ?? state.status;
    problems.push(...(await endVolumeMounts(dataDir, this.id, this.#mounts, reason, { ids }, this.log)));
    // Its state disk and cgroup (a prepare that failed removed its own).
    await step('removing its state disk and cgroup', () => this.#prepared?.discard());
    for (const p of problems) this.log(`teardown: ${p}`);
    const final: RuntimeState = { ...state, endedAt: new Date().toISOString() };
    writeJsonFile(runPaths(this.spec.dataDir, this.id).state, final);
    this.#resolveEnded(final);
    return final;
  }
}

function safeCount(count: () => number): number {
  try {
    return count();
  } catch {
    return 0;
  }
}
