/**
 * @module cgroup-v1
 * One sandbox = one directory per controller hierarchy (cpu, memory, pids,
 * freezer under /sys/fs/cgroup/<controller>), for hosts whose controllers are
 * still on v1 (the hybrid machines here). The same process is added to all
 * four. v1 has no cgroup.kill: killing is freeze, SIGKILL every member, thaw,
 * until the group is empty (freezing first means nothing forks in between).
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import {
  CPU_PERIOD_US,
  checkLimits,
  keyedValue,
  killQuietly,
  pidsOf,
  readText,
  removeTree,
  waitFor,
  writeText,
  type CgroupLimits,
  type SandboxCgroup,
} from './cgroup-files.js';

/** The v1 controllers a sandbox uses, each mounted at <root>/<controller>. */
export const V1_CONTROLLERS = ['cpu', 'memory', 'pids', 'freezer'] as const;
type Controller = (typeof V1_CONTROLLERS)[number];

export class CgroupV1 implements SandboxCgroup {
  readonly mode = 'v1';
  readonly paths: readonly string[];

  private constructor(
    readonly name: string,
    private readonly dirs: Readonly<Record<Controller, string>>,
  ) {
    this.paths = V1_CONTROLLERS.map((c) => dirs[c]);
  }

  /** Creates (or reuses) the group in each controller's hierarchy under <root>/<controller>/<parent>. */
  static create(root: string, parent: string, name: string): CgroupV1 {
    const dirs = Object.fromEntries(V1_CONTROLLERS.map((c) => [c, join(root, c, parent, name)])) as Record<
      Controller,
      string
    >;
    for (const c of V1_CONTROLLERS) mkdirSync(dirs[c], { recursive: true });
    return new CgroupV1(name, dirs);
  }

  private file(c: Controller, f: string): string {
    return join(this.dirs[c], f);
  }

  setLimits(limits: CgroupLimits): void {
    const quota = checkLimits(limits);
    writeText(this.file('cpu', 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
    writeText(this.file('cpu', 'cpu.cfs_quota_us'), String(quota ?? -1));
    this.setMemory(limits.memoryBytes === undefined ? '-1' : String(limits.memoryBytes));
    writeText(this.file('pids', 'pids.max'), String(limits.pidsMax ?? 'max'));
  }

  /**
   * memory.limit_in_bytes and, where swap accounting exists, memory.memsw.limit_in_bytes (memory + swap) to the
   * same value: no swap. The kernel wants memsw >= limit at every moment, so the order depends on the direction.
   */
  private setMemory(value: string): void {
    const limit = this.file('memory', 'memory.limit_in_bytes');
    const memsw = this.file('memory', 'memory.memsw.limit_in_bytes');
    if (!existsSync(memsw)) {
      writeText(limit, value);
      return;
    }
    try {
      writeText(limit, value);
      writeText(memsw, value);
    } catch {
      writeText(memsw, value);
      writeText(limit, value);
    }
  }

  addProcess(pid: number): void {
    // Freezer last: once there, a freeze of the sandbox includes the process.
    for (const c of V1_CONTROLLERS) writeText(this.file(c, 'cgroup.procs'), String(pid));
  }

  processes(): number[] {
    const all = new Set<number>();
    for (const c of V1_CONTROLLERS) for (const pid of pidsOf(this.file(c, 'cgroup.procs'))) all.add(pid);
    return [...all].sort((a, b) => a - b);
  }

  private state(): string {
    return readText(this.file('freezer', 'freezer.state')).trim();
  }

  async freeze(): Promise<void> {
    writeText(this.file('freezer', 'freezer.state'), 'FROZEN');
    await waitFor(`cgroup ${this.name} to freeze`, () => this.state() === 'FROZEN');
  }

  async thaw(): Promise<void> {
    writeText(this.file('freezer', 'freezer.state'), 'THAWED');
    await waitFor(`cgroup ${this.name} to thaw`, () => this.state() === 'THAWED');
  }

  async killAll(): Promise<void> {
    await waitFor(`cgroup ${this.name} to empty`, () => {
      const pids = this.processes();
      if (pids.length === 0) return true;
      writeText(this.file('freezer', 'freezer.state'), 'FROZEN');
      for (const pid of pids) killQuietly(pid);
      writeText(this.file('freezer', 'freezer.state'), 'THAWED');
      return false;
    });
  }

  oomKills(): number {
    // memory.oom_control has oom_kill since Linux 4.13; before it, failcnt (times the limit was hit) is the best sign.
    return (
      keyedValue(readText(this.file('memory', 'memory.oom_control')), 'oom_kill') ??
      Number(readText(this.file('memory', 'memory.failcnt')))
    );
  }

  async remove(): Promise<void> {
    if (V1_CONTROLLERS.every((c) => !existsSync(this.dirs[c]))) return;
    await this.killAll();
    for (const c of V1_CONTROLLERS) removeTree(this.dirs[c]);
  }
}
