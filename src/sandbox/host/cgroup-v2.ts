/**
 * @module cgroup-v2
 * One sandbox = one directory of the unified (v2) hierarchy, under a Stowage
 * parent whose subtree_control enables cpu, memory and pids. v2 has what the
 * sandbox needs as single files: cpu.max, memory.max (+ memory.swap.max 0),
 * pids.max, cgroup.freeze, cgroup.kill (Linux 5.14+) and memory.events.
 */
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
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

/** The controllers a v2 host must delegate to the Stowage parent. */
export const V2_CONTROLLERS = ['cpu', 'memory', 'pids'] as const;

/** Makes the parent (and enables the controllers down to it); idempotent. */
export function prepareV2Parent(root: string, parent: string): string {
  let dir = root;
  for (const part of parent.split('/')) {
    writeText(join(dir, 'cgroup.subtree_control'), V2_CONTROLLERS.map((c) => `+${c}`).join(' '));
    dir = join(dir, part);
    mkdirSync(dir, { recursive: true });
  }
  writeText(join(dir, 'cgroup.subtree_control'), V2_CONTROLLERS.map((c) => `+${c}`).join(' '));
  return dir;
}

/** Every process of a v2 group and its descendants (a sandbox may not make sub-groups, but be safe). */
function allPids(dir: string): number[] {
  const out = pidsOf(join(dir, 'cgroup.procs'));
  for (const d of readdirSync(dir, { withFileTypes: true }))
    if (d.isDirectory()) out.push(...allPids(join(dir, d.name)));
  return out;
}

export class CgroupV2 implements SandboxCgroup {
  readonly mode = 'v2';
  readonly paths: readonly string[];

  constructor(
    readonly name: string,
    private readonly dir: string,
  ) {
    this.paths = [dir];
  }

  /** Creates the group directory (an existing one is reused: the daemon finds its sandboxes again after a restart). */
  static create(parentDir: string, name: string): CgroupV2 {
    const dir = join(parentDir, name);
    mkdirSync(dir, { recursive: true });
    return new CgroupV2(name, dir);
  }

  setLimits(limits: CgroupLimits): void {
    const quota = checkLimits(limits);
    writeText(join(this.dir, 'cpu.max'), `${quota ?? 'max'} ${CPU_PERIOD_US}`);
    writeText(join(this.dir, 'memory.max'), String(limits.memoryBytes ?? 'max'));
    // Without swap a memory limit means what it says (and an OOM comes at once instead of after thrashing).
    if (existsSync(join(this.dir, 'memory.swap.max')))
      writeText(join(this.dir, 'memory.swap.max'), limits.memoryBytes === undefined ? 'max' : '0');
    writeText(join(this.dir, 'pids.max'), String(limits.pidsMax ?? 'max'));
  }

  addProcess(pid: number): void {
    writeText(join(this.dir, 'cgroup.procs'), String(pid));
  }

  processes(): number[] {
    return allPids(this.dir).sort((a, b) => a - b);
  }

  private event(key: string): number | undefined {
    return keyedValue(readText(join(this.dir, 'cgroup.events')), key);
  }

  async freeze(): Promise<void> {
    writeText(join(this.dir, 'cgroup.freeze'), '1');
    await waitFor(`cgroup ${this.name} to freeze`, () => this.event('frozen') === 1);
  }

  async thaw(): Promise<void> {
    writeText(join(this.dir, 'cgroup.freeze'), '0');
    await waitFor(`cgroup ${this.name} to thaw`, () => this.event('frozen') === 0);
  }

  async killAll(): Promise<void> {
    if (existsSync(join(this.dir, 'cgroup.kill'))) writeText(join(this.dir, 'cgroup.kill'), '1');
    else {
      // Before 5.14: freeze so nothing forks while we kill, then thaw so the SIGKILLs are delivered.
      await this.freeze();
      for (const pid of this.processes()) killQuietly(pid);
      await this.thaw();
    }
    await waitFor(`cgroup ${this.name} to empty`, () => this.event('populated') === 0);
  }

  oomKills(): number {
    return keyedValue(readText(join(this.dir, 'memory.events')), 'oom_kill') ?? 0;
  }

  async remove(): Promise<void> {
    if (!existsSync(this.dir)) return;
    await this.killAll();
    removeTree(this.dir);
  }
}
