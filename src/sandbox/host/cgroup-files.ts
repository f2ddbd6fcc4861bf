/**
 * @module cgroup-files
 * What both cgroup implementations share: the interface the launcher uses
 * (one group per sandbox), the limits it sets, and small helpers over cgroupfs
 * files. cgroupfs reads and writes are in-kernel and immediate, so they are
 * synchronous here; only waiting for a state (frozen, empty) is asynchronous.
 */
import { readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, UnavailableError } from '@stowage/sdk/common/errors.js';

/** Which cgroup API a host offers for sandboxes. */
export type CgroupMode = 'v2' | 'v1';

/** Resource limits of one sandbox; an absent field leaves that resource unlimited. */
export interface CgroupLimits {
  /** CPU time as a number of cores (0.5 = half of one core), enforced as a CFS quota per 100 ms period. */
  cpuCores?: number;
  /** Memory in bytes; swap is off for the group wherever the kernel has the knob. */
  memoryBytes?: number;
  /** Most processes and threads at once. */
  pidsMax?: number;
}

/** The cgroup (v2) or the set of per-controller cgroups (v1) of one sandbox. */
export interface SandboxCgroup {
  readonly name: string;
  readonly mode: CgroupMode;
  /** The group's directories (one in v2, one per controller in v1), for operators and tests. */
  readonly paths: readonly string[];
  /** Sets the limits given (absent fields are set to unlimited). */
  setLimits(limits: CgroupLimits): void;
  /** Moves a process (and its later children) into the group. */
  addProcess(pid: number): void;
  /** Pids of the processes in the group, sorted. */
  processes(): number[];
  /** Stops every process of the group; resolves once the kernel reports them frozen. */
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** SIGKILLs every process of the group, including ones forked meanwhile; resolves once it is empty. */
  killAll(): Promise<void>;
  /** How many processes of the group the kernel's OOM killer has killed. */
  oomKills(): number;
  /** Kills what is left and removes the group. Idempotent. */
  remove(): Promise<void>;
}

/** Number of microseconds in one CFS period (the kernel's default). */
export const CPU_PERIOD_US = 100_000;

/** Checks the limits and returns the CFS quota (µs per period) of cpuCores, or undefined for no limit. */
export function checkLimits(l: CgroupLimits): number | undefined {
  if (l.cpuCores !== undefined && !(Number.isFinite(l.cpuCores) && l.cpuCores >= 0.01 && l.cpuCores <= 1024)) {
    throw new InvalidArgumentError(`cpu must be a number of cores between 0.01 and 1024, not ${l.cpuCores}`);
  }
  if (l.memoryBytes !== undefined && !(Number.isSafeInteger(l.memoryBytes) && l.memoryBytes >= 4 * 1024 * 1024)) {
    throw new InvalidArgumentError(`memory must be a whole number of bytes, at least 4 MiB, not ${l.memoryBytes}`);
  }
  if (l.pidsMax !== undefined && !(Number.isSafeInteger(l.pidsMax) && l.pidsMax >= 1 && l.pidsMax <= 4_194_304)) {
    throw new InvalidArgumentError(`pids must be a whole number between 1 and 4194304, not ${l.pidsMax}`);
  }
  return l.cpuCores === undefined ? undefined : Math.max(1000, Math.round(l.cpuCores * CPU_PERIOD_US));
}

/** A group name is one path component: letters, digits, '.', '_', '-', not starting with '.'. */
export function checkGroupName(name: string): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/.test(name)) {
    throw new InvalidArgumentError(
      `a cgroup name is 1-128 letters, digits, '.', '_' or '-' not starting with '.': ${JSON.stringify(name)}`,
    );
  }
  return name;
}

export function readText(path: string): string {
  return readFileSync(path, 'utf8');
}

export function writeText(path: string, value: string): void {
  writeFileSync(path, value);
}

/** The `key value` lines of a flat-keyed cgroup file (memory.events, cgroup.events, memory.oom_control). */
export function keyedValue(text: string, key: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${key} `));
  return line === undefined ? undefined : Number(line.slice(key.length + 1));
}

/** The pids listed in a cgroup.procs file. */
export function pidsOf(path: string): number[] {
  return readText(path).split('\n').filter(Boolean).map(Number);
}

/** Polls until done() is true; an Unavailable error naming what after timeoutMs. */
export async function waitFor(what: string, done: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (let delay = 1; !done(); delay = Math.min(delay * 2, 50)) {
    if (Date.now() > end) throw new UnavailableError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(delay);
  }
}

/** True for an fs error with that code. */
export function isErrno(e: unknown, code: string): boolean {
  return (e as NodeJS.ErrnoException | undefined)?.code === code;
}

/** SIGKILL, ignoring a process that is already gone. */
export function killQuietly(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch (e) {
    if (!isErrno(e, 'ESRCH')) throw e;
  }
}

/** rmdir of a cgroup directory and its sub-groups, deepest first (cgroupfs directories are removed with rmdir). */
export function removeTree(dir: string): void {
  try {
    for (const d of readdirSync(dir, { withFileTypes: true })) if (d.isDirectory()) removeTree(join(dir, d.name));
    rmdirSync(dir);
  } catch (e) {
    if (!isErrno(e, 'ENOENT')) throw e;
  }
}
