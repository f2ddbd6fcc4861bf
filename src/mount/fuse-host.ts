/**
 * @module mount/fuse-host
 * What the FUSE file system's modules need of the agent (the view, the gate
 * that keeps tree changes out of a commit or reload, writeback, the mount's
 * owner), and the context they share: that host and the inode table.
 */
import type { InodeTable } from './fuse-inodes.js';
import type { MountView } from './mount-view.js';

export interface FsHost {
  view(): MountView;
  /** Runs a change to the tree while no commit or reload runs. */
  mutate<T>(fn: (view: MountView) => Promise<T>): Promise<T>;
  /** Called after every change (writeback schedules a commit). */
  changed(): void;
  statfs(): { cap: number; used: number };
  log(message: string): void;
  /** Who owns entries that record no owner (`--uid/--gid`, else the agent's user). */
  owner: { uid: number; gid: number };
  /** No handle reads this data file any more (one a commit or reload kept for open handles can go). */
  released(dataId: string): void;
}

/** What the operation modules share. */
export interface FsContext {
  host: FsHost;
  inodes: InodeTable;
}

/** Runs a change to the tree under the gate, then tells writeback. */
export async function mutation<T>(host: FsHost, fn: (view: MountView) => Promise<T>): Promise<T> {
  const r = await host.mutate(fn);
  host.changed();
  return r;
}
