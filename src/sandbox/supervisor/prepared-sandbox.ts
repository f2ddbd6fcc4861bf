/**
 * @module sandbox/supervisor/prepared-sandbox
 * A sandbox made up to the point where a request shapes it: a state disk
 * with the overlay root of an image, a cgroup, and the agent running inside,
 * with no limit, host name, environment or volume of any request yet.
 *
 * Spare supervisors keep one ready for the image the host ran last, so a
 * create only claims it: its state takes the sandbox's id, and the supervisor
 * then sets the limits, the host name and the volumes (host/ns-attach). That
 * skips mkfs, the mounts and a Node starting inside (most of a start). A cold
 * start prepares one under the sandbox's own id and claims it at once, so both
 * roads run the same code.
 *
 * The cgroup keeps the name it was made under (cgroup v2 cannot rename); the
 * supervisor records it next to the sandbox's run (supervisor-files).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type SandboxCgroup, detectCgroups } from '../host/cgroups.js';
import { BASE_ENV } from '../host/image-builder.js';
import type { IdRange } from '../host/launch-args.js';
import {
  SANDBOXES_DIR,
  type StateDisk,
  createStateDisk,
  destroyStateDisk,
  mountRoot,
  renameStateDisk,
} from '../host/state-disk.js';
import { type LaunchedSandbox, launchSandbox } from './launcher.js';

/** Processes and threads a sandbox may hold at once (a fork bomb stops here, the host does not). */
export const SANDBOX_PIDS_MAX = 4096;
/** The host name a prepared sandbox has until a request names it. */
const UNCLAIMED_HOSTNAME = 'sandbox';
/** How long the warm-up command may take before the spare gives up on it (it is only a warm-up). */
const WARM_UP_MS = 5000;

export interface PrepareOptions {
  dataDir: string;
  /** The name its state disk and cgroup are made under: the sandbox's id, or a spare's own. */
  slot: string;
  imageRoot: string;
  diskGib: number;
  ids: IdRange;
  /** A formatted disk image of `diskGib` (formatDiskImage) to take instead of making one. */
  formattedDisk?: string;
}

/** Where each step of a start ended, in ms since it began (for the supervisor's log). */
export type StartMarks = string[];

export class PreparedSandbox {
  /** The name its state is under: the slot it was made as, then the sandbox's id once claimed. */
  #name: string;
  #claimed = false;

  private constructor(
    readonly dataDir: string,
    readonly imageRoot: string,
    readonly diskGib: number,
    /** The slot it was made as, which its cgroup keeps. */
    readonly cgroupName: string,
    readonly cgroup: SandboxCgroup,
    public disk: StateDisk,
    readonly launched: LaunchedSandbox,
  ) {
    this.#name = cgroupName;
  }

  /**
   * Makes the state disk, the root, the cgroup (pids capped) and starts the agent inside; on failure removes
   * what it made and rejects with why.
   */
  static async prepare(opts: PrepareOptions, marks: StartMarks = []): Promise<PreparedSandbox> {
    const t0 = performance.now();
    const mark = (step: string) => marks.push(`${step} ${Math.round(performance.now() - t0)}`);
    const disk = await createStateDisk(opts.dataDir, opts.slot, opts.diskGib, opts.formattedDisk);
    let cgroup: SandboxCgroup | undefined;
    try {
      mark('disk');
      const root = await mountRoot({ root: opts.imageRoot }, disk);
      mark('root');
      cgroup = detectCgroups().group(opts.slot);
      cgroup.setLimits({ pidsMax: SANDBOX_PIDS_MAX });
      const cacheDir = join(opts.dataDir, 'sandbox-cache');
      mkdirSync(cacheDir, { recursive: true, mode: 0o755 });
      const guestDir = guestDirOf(disk);
      mkdirSync(guestDir, { mode: 0o755 });
      mark('cgroup');
      const launched = await launchSandbox({
        root,
        cacheDir,
        cgroup,
        ids: opts.ids,
        hostname: UNCLAIMED_HOSTNAME,
        env: { ...BASE_ENV },
        guestDir,
        sandboxesDir: join(opts.dataDir, SANDBOXES_DIR),
      });
      mark('agent ready');
      return new PreparedSandbox(opts.dataDir, opts.imageRoot, opts.diskGib, opts.slot, cgroup, disk, launched);
    } catch (e) {
      await cgroup?.killAll().catch(() => undefined);
      await destroyStateDisk(opts.dataDir, opts.slot).catch(() => undefined);
      await cgroup?.remove().catch(() => undefined);
      throw e;
    }
  }

  /** The host directory whose entries appear inside as `/.stowage/volumes/*` (guest sockets are linked here). */
  get guestDir(): string {
    return guestDirOf(this.disk);
  }

  /** True while its agent runs. */
  get alive(): boolean {
    const { child, agent } = this.launched;
    return child.exitCode === null && child.signalCode === null && agent.closedReason === undefined;
  }

  /** Whether a sandbox of this image and disk size can be this one. */
  fits(imageRoot: string, diskGib: number): boolean {
    return !this.#claimed && this.alive && imageRoot === this.imageRoot && diskGib === this.diskGib;
  }

  /**
   * Runs one command through the agent and waits for it, so the first command of the request that claims
   * this sandbox does not pay for the agent's first spawn (tens of ms). Nothing is recorded; a failure is
   * ignored (an image may lack `true`; the code paths are warm all the same).
   */
  async warmUp(): Promise<void> {
    const { agent } = this.launched;
    const id = 'warm-up';
    const exited = new Promise<void>((resolve) => {
      const onExit = (exitId: string) => {
        if (exitId !== id) return;
        agent.off('exit', onExit);
        resolve();
      };
      agent.on('exit', onExit);
      setTimeout(() => {
        agent.off('exit', onExit);
        resolve();
      }, WARM_UP_MS).unref();
    });
    try {
      await agent.exec({ id, argv: ['true'], timeoutMs: WARM_UP_MS });
    } catch {
      return;
    }
    await exited;
  }

  /** Makes it sandbox `id`'s: its state disk is renamed to the id's (the cgroup keeps its name). */
  async claim(id: string): Promise<void> {
    if (this.#claimed) throw new Error(`prepared sandbox ${this.#name} was already claimed`);
    this.#claimed = true;
    if (this.#name !== id) {
      this.disk = await renameStateDisk(this.dataDir, this.#name, id);
      this.#name = id;
    }
  }

  /** Kills its processes and removes its state disk and cgroup (a spare no request took, or one that failed). */
  async discard(): Promise<void> {
    await this.cgroup.killAll().catch(() => undefined);
    this.launched.agent.close('the prepared sandbox was discarded');
    await destroyStateDisk(this.dataDir, this.#name);
    await this.cgroup.remove().catch(() => undefined);
  }
}

function guestDirOf(disk: StateDisk): string {
  return join(disk.paths.dir, 'guest');
}
