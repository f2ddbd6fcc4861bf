/**
 * @module cgroups
 * One cgroup component over both cgroup APIs: `detectCgroups()` looks at the
 * host once and says which mode sandboxes get, then makes one group per
 * sandbox under a Stowage parent (`stowage` by default).
 *
 * - v2 when the unified hierarchy offers cpu, memory and pids (a stock
 *   Debian 12 host: /sys/fs/cgroup is cgroup2; a hybrid host's
 *   /sys/fs/cgroup/unified counts too if its controllers are there);
 * - v1 when cpu, memory, pids and freezer are v1 hierarchies under
 *   /sys/fs/cgroup/<controller> (the hybrid machines here, where the v2 tree
 *   has no controllers);
 * - otherwise sandboxes cannot be limited: an Unavailable error says what is
 *   missing.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { UnavailableError } from '@stowage/sdk/common/errors.js';
import { checkGroupName, readText, type CgroupMode, type SandboxCgroup } from './cgroup-files.js';
import { CgroupV1, V1_CONTROLLERS } from './cgroup-v1.js';
import { CgroupV2, V2_CONTROLLERS, prepareV2Parent } from './cgroup-v2.js';

export type { CgroupLimits, CgroupMode, SandboxCgroup } from './cgroup-files.js';

/** The cgroups of a host, as sandboxes use them. */
export interface CgroupHost {
  readonly mode: CgroupMode;
  /** One line for logs and the host probe: which mode and where. */
  readonly description: string;
  /** Creates the group of a sandbox (or reopens it: a restarted daemon finds its sandboxes' groups again). */
  group(name: string): SandboxCgroup;
}

export interface CgroupOptions {
  /** The cgroup file system's mount point. */
  root?: string;
  /** Where sandbox groups go, relative to each hierarchy's root (one or more path components). */
  parent?: string;
}

/** What the host offers, without changing anything: the mode, or why there is none. */
export function cgroupSupport(
  root = '/sys/fs/cgroup',
): { mode: CgroupMode; unified: string } | { mode: undefined; missing: string } {
  for (const unified of [root, join(root, 'unified')]) {
    const file = join(unified, 'cgroup.controllers');
    if (!existsSync(file)) continue;
    const have = new Set(readText(file).split(/\s+/));
    if (V2_CONTROLLERS.every((c) => have.has(c))) return { mode: 'v2', unified };
  }
  const absent = V1_CONTROLLERS.filter((c) => !existsSync(join(root, c, 'cgroup.procs')));
  if (absent.length === 0) return { mode: 'v1', unified: '' };
  return {
    mode: undefined,
    missing: `no cgroup v2 tree with ${V2_CONTROLLERS.join(', ')} at ${root}, and no cgroup v1 hierarchy for ${absent.join(', ')} under ${root}`,
  };
}

/**
 * Detects the host's cgroup mode and returns the factory of sandbox groups.
 * @example const cg = detectCgroups(); const g = cg.group('sb-123'); g.setLimits({ cpuCores: 1, memoryBytes: 512 << 20 }); g.addProcess(pid);
 */
export function detectCgroups(opts: CgroupOptions = {}): CgroupHost {
  const root = opts.root ?? '/sys/fs/cgroup';
  const parent = opts.parent ?? 'stowage';
  for (const part of parent.split('/')) checkGroupName(part);
  const support = cgroupSupport(root);
  if (support.mode === undefined)
    throw new UnavailableError(`sandboxes cannot be limited on this host: ${support.missing}`);
  if (support.mode === 'v2') {
    const parentDir = prepareV2Parent(support.unified, parent);
    return {
      mode: 'v2',
      description: `cgroup v2 at ${parentDir} (${V2_CONTROLLERS.join(', ')})`,
      group: (name) => CgroupV2.create(parentDir, checkGroupName(name)),
    };
  }
  return {
    mode: 'v1',
    description: `cgroup v1 (hybrid host) at ${root}/{${V1_CONTROLLERS.join(',')}}/${parent}`,
    group: (name) => CgroupV1.create(root, parent, checkGroupName(name)),
  };
}
