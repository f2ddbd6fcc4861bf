/**
 * @module sandbox/host/sweep
 * Finds what a crashed daemon left behind and tears it down: image build
 * directories no builder holds, sandbox state (mounts, loop devices,
 * directories and disk files) of sandboxes the caller does not know as
 * live, and mounts or loop devices under `<dataDir>/sandboxes/` that belong
 * to no sandbox directory at all. Plan, then execute: `planSweep` lists,
 * `sweep` removes (and returns what it removed). Run at daemon start, after
 * the daemon has found its running sandboxes again, so a live sandbox is
 * never swept.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ImageStore } from './images.js';
import { detachLoop, loopDevicesUnder, mountsUnder, unmount } from './mounts.js';
import { checkSandboxId, destroyStateDisk, SANDBOXES_DIR } from './state-disk.js';

/** What the sweep found (planSweep) or removed (sweep). */
export interface SweepReport {
  /** Sandbox ids whose state was torn down. */
  sandboxes: string[];
  /** Mount points under the sandboxes folder outside any sandbox's directory. */
  strayMounts: string[];
  /** Loop devices backed by files under the sandboxes folder outside any sandbox's directory. */
  strayLoops: string[];
  /** Image build directories no builder held. */
  builds: string[];
}

/** Options of a sweep. */
export interface SweepOptions {
  dataDir: string;
  /** True for a sandbox that is running or known to the daemon: its state is kept. */
  isLive: (id: string) => boolean;
}

function idOf(path: string, sandboxesDir: string): string | undefined {
  const rest = path.slice(sandboxesDir.length + 1);
  const id = rest.split('/')[0] ?? '';
  try {
    return checkSandboxId(id);
  } catch {
    return undefined;
  }
}

/** What `sweep` would remove (build directories are listed only by sweep, which must take their locks). */
export async function planSweep(opts: SweepOptions): Promise<SweepReport> {
  const dir = join(opts.dataDir, SANDBOXES_DIR);
  const report: SweepReport = { sandboxes: [], strayMounts: [], strayLoops: [], builds: [] };
  const ids = new Set<string>();
  if (existsSync(dir)) {
    for (const name of await readdir(dir)) {
      const id = idOf(join(dir, name), dir);
      if (id !== undefined && !opts.isLive(id)) ids.add(id);
    }
  }
  // Mounts and loops of a sandbox whose directory is gone (a teardown cut short) count as its state too.
  for (const m of await mountsUnder(dir)) {
    if (m.mountPoint === dir) continue;
    const id = idOf(m.mountPoint, dir);
    if (id === undefined) report.strayMounts.push(m.mountPoint);
    else if (!opts.isLive(id)) ids.add(id);
  }
  for (const l of await loopDevicesUnder(dir)) {
    const id = idOf(l.backFile, dir);
    if (id === undefined) report.strayLoops.push(l.name);
    else if (!opts.isLive(id)) ids.add(id);
  }
  report.sandboxes = [...ids].sort();
  return report;
}

/** Tears down everything planSweep finds and removes orphaned image builds; returns what it removed. */
export async function sweep(opts: SweepOptions): Promise<SweepReport> {
  const report = await planSweep(opts);
  for (const id of report.sandboxes) await destroyStateDisk(opts.dataDir, id);
  for (const m of report.strayMounts) await unmount(m);
  for (const l of report.strayLoops) await detachLoop(l).catch(() => undefined);
  report.builds = await new ImageStore({ dataDir: opts.dataDir }).sweepBuilds();
  return report;
}
