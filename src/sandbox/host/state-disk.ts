/**
 * @module sandbox/host/state-disk
 * A sandbox's writable disk and its root file system. Each sandbox gets
 * `<dataDir>/sandboxes/<id>/`:
 *
 * - `disk.img`: a sparse file holding an ext4 file system of exactly
 *   `diskGib` (no reserved blocks), loop-mounted at `disk/`. The cap is the
 *   file system's size, so writing past it is ENOSPC inside the sandbox and
 *   touches neither the host's disk beyond that size nor other sandboxes.
 *   (A btrfs pool with one subvolume and a qgroup per sandbox measured 57 ms
 *   against 32 ms here and needs a pool sized up front; its snapshots are the
 *   way to checkpoints later, not needed for a cap.)
 * - `disk/upper`, `disk/work`: the overlay's upper and work directories; the
 *   upper is owned by sandbox root (the subordinate range's first id), so the
 *   sandbox owns its `/`.
 * - `root/`: `overlay lowerdir=<image root>,upperdir,workdir`, the root the
 *   launcher hands to bwrap. The image is only ever the lower layer: nothing
 *   here writes to it.
 * - `disk.json`: the cap and the creation time.
 *
 * Everything survives the daemon: mounts stay, and a restarted daemon opens
 * the same disk (openStateDisk) and finds the files. destroyStateDisk
 * unmounts (lazily when a file is still open), detaches the loop device and
 * deletes the directory. Sandbox ids are checked before any path is built.
 */
import { chown, mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AlreadyExistsError, InvalidArgumentError, NotFoundError } from '@stowage/sdk/common/errors.js';
import { runOk } from './host-command.js';
import { detachLoop, isMountPoint, loopDevicesUnder, loopsGone, mountsUnder, unmountAllUnder } from './mounts.js';
import { SUBORDINATE_BASE } from './subordinate-ids.js';

/** Folder of the per-sandbox state under a data dir. */
export const SANDBOXES_DIR = 'sandboxes';
/** Smallest disk: ext4 with its journal needs a few MiB to be of any use. */
export const MIN_DISK_BYTES = 16 * 1024 * 1024;
/** Largest diskGib accepted. */
export const MAX_DISK_GIB = 4096;
const SANDBOX_ID = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** A sandbox id as a path segment: lowercase letters, digits, `_` and `-`, 1-64 characters, not starting with `_` or `-`. */
export function checkSandboxId(id: unknown): string {
  if (typeof id !== 'string' || !SANDBOX_ID.test(id)) {
    throw new InvalidArgumentError(
      `invalid sandbox id ${JSON.stringify(String(id).slice(0, 80))}: use 1-64 lowercase letters, digits, _ and -, starting with a letter or digit`,
    );
  }
  return id;
}

/** The paths of one sandbox's state. */
export interface SandboxPaths {
  dir: string;
  image: string;
  disk: string;
  upper: string;
  work: string;
  root: string;
  meta: string;
}

/** Where the state of sandbox `id` lives (the id is checked first). */
export function sandboxPaths(dataDir: string, id: string): SandboxPaths {
  const dir = join(dataDir, SANDBOXES_DIR, checkSandboxId(id));
  const disk = join(dir, 'disk');
  return {
    dir,
    image: join(dir, 'disk.img'),
    disk,
    upper: join(disk, 'upper'),
    work: join(disk, 'work'),
    root: join(dir, 'root'),
    meta: join(dir, 'disk.json'),
  };
}

/** A sandbox's state disk. */
export interface StateDisk {
  id: string;
  paths: SandboxPaths;
  sizeBytes: number;
}

/** Bytes of a diskGib, or a clear error. */
export function diskBytes(diskGib: unknown): number {
  if (typeof diskGib !== 'number' || !Number.isFinite(diskGib) || diskGib <= 0 || diskGib > MAX_DISK_GIB) {
    throw new InvalidArgumentError(
      `diskGib must be a number above 0 and at most ${MAX_DISK_GIB}, got ${JSON.stringify(diskGib)}`,
    );
  }
  const bytes = Math.floor((diskGib * 1024 ** 3) / 4096) * 4096;
  if (bytes < MIN_DISK_BYTES)
    throw new InvalidArgumentError(`diskGib ${diskGib} is below the smallest disk, ${MIN_DISK_BYTES / 1024 ** 2} MiB`);
  return bytes;
}

/** Overlay options are comma- and colon-separated: a path with either cannot be named in them. */
function overlayPath(path: string): string {
  if (/[,:\\\n]/.test(path))
    throw new InvalidArgumentError(
      `the path ${path} has a comma, colon or backslash, which overlay mount options cannot carry; use a data dir without them`,
    );
  return path;
}

async function mountDisk(paths: SandboxPaths): Promise<void> {
  if (await isMountPoint(paths.disk)) return;
  await mkdir(paths.disk, { recursive: true, mode: 0o700 });
  // A loop device with autoclear: it goes away with the last unmount of the file system.
  await runOk(['mount', '-t', 'ext4', '-o', 'loop,nodev', '--', paths.image, paths.disk], 'mounting the state disk');
}

/** Makes sandbox `id`'s state directory, refusing one that exists (its name is taken). */
async function reserveDir(dir: string, id: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST')
      throw new AlreadyExistsError(`sandbox ${id} already has a state disk`);
    throw e;
  }
}

/**
 * Makes a sparse file of `diskGib` holding an empty ext4 file system at `path` (created, not overwritten).
 * Spare supervisors make one ahead, so a sandbox of that size need not wait for mkfs.
 */
export async function formatDiskImage(path: string, diskGib: number): Promise<number> {
  const sizeBytes = diskBytes(diskGib);
  const file = await open(path, 'wx', 0o600);
  try {
    await file.truncate(sizeBytes);
  } finally {
    await file.close();
  }
  // The file is sparse and reads as zeros: mkfs and the kernel need not zero inode tables or the journal.
  // -m 0: sandbox root is not host root, so reserved blocks would only shrink the cap.
  await runOk(
    [
      'mkfs.ext4',
      '-q',
      '-F',
      '-m',
      '0',
      '-E',
      'assume_storage_prezeroed=1,nodiscard',
      '-L',
      'stowage-state',
      '--',
      path,
    ],
    'making the state disk file system',
  );
  return sizeBytes;
}

/**
 * Creates and mounts a new state disk of `diskGib` for sandbox `id`. `prepared`: a disk image of that size
 * made by formatDiskImage, moved into place instead of making one (it must be on the same file system).
 */
export async function createStateDisk(
  dataDir: string,
  id: string,
  diskGib: number,
  prepared?: string,
): Promise<StateDisk> {
  const paths = sandboxPaths(dataDir, id);
  const sizeBytes = diskBytes(diskGib);
  overlayPath(paths.dir);
  await mkdir(join(dataDir, SANDBOXES_DIR), { recursive: true, mode: 0o700 });
  await reserveDir(paths.dir, id);
  try {
    if (prepared !== undefined) await rename(prepared, paths.image);
    else await formatDiskImage(paths.image, diskGib);
    await mountDisk(paths);
    await mkdir(paths.upper, { mode: 0o755 });
    await chown(paths.upper, SUBORDINATE_BASE, SUBORDINATE_BASE);
    await mkdir(paths.work, { mode: 0o700 });
    await mkdir(paths.root, { mode: 0o755 });
    await writeFile(paths.meta, `${JSON.stringify({ id, diskGib, sizeBytes, createdAt: new Date().toISOString() })}\n`);
  } catch (e) {
    await destroyStateDisk(dataDir, id).catch(() => undefined);
    throw e;
  }
  return { id, paths, sizeBytes };
}

/**
 * Gives the state disk made as `from` (a spare's) to sandbox `to`: its directory is renamed, mounts and all
 * (they follow the directory), and its record says the new id.
 */
export async function renameStateDisk(dataDir: string, from: string, to: string): Promise<StateDisk> {
  const source = sandboxPaths(dataDir, from);
  const target = sandboxPaths(dataDir, to);
  overlayPath(target.dir);
  const meta = JSON.parse(await readFile(source.meta, 'utf8')) as { sizeBytes: number };
  await reserveDir(target.dir, to);
  // rename(2) replaces the empty directory just made, which reserved the name against a concurrent create.
  await rename(source.dir, target.dir);
  await writeFile(target.meta, `${JSON.stringify({ ...meta, id: to, renamedFrom: from })}\n`);
  return { id: to, paths: target, sizeBytes: meta.sizeBytes };
}

/** Mounts the existing state disk of sandbox `id` (a no-op when mounted): after a daemon restart or closeStateDisk. */
export async function openStateDisk(dataDir: string, id: string): Promise<StateDisk> {
  const paths = sandboxPaths(dataDir, id);
  let meta: { sizeBytes: number };
  try {
    meta = JSON.parse(await readFile(paths.meta, 'utf8')) as { sizeBytes: number };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`sandbox ${id} has no state disk`);
    throw e;
  }
  await mountDisk(paths);
  return { id, paths, sizeBytes: meta.sizeBytes };
}

/**
 * Mounts the sandbox's root, the image under the disk's upper layer, at
 * `disk.paths.root` and returns it (a no-op when mounted). The image is the
 * read-only lower layer and is never written.
 */
export async function mountRoot(image: { root: string }, disk: StateDisk): Promise<string> {
  const { paths } = disk;
  if (await isMountPoint(paths.root)) return paths.root;
  if (!(await isMountPoint(paths.disk)))
    throw new NotFoundError(`the state disk of sandbox ${disk.id} is not mounted; open it first`);
  const options = `lowerdir=${overlayPath(image.root)},upperdir=${overlayPath(paths.upper)},workdir=${overlayPath(paths.work)}`;
  // nodev: no device node the image or the sandbox holds opens a host device.
  await runOk(
    ['mount', '-t', 'overlay', '-o', `nodev,${options}`, '--', 'overlay', paths.root],
    'mounting the sandbox root',
  );
  return paths.root;
}

/** Unmounts the root and the disk, keeping the disk's file (the sandbox's files stay for openStateDisk). */
export async function closeStateDisk(disk: StateDisk): Promise<void> {
  await unmountAllUnder(disk.paths.dir);
  await loopsGone(disk.paths.dir);
}

/** What a teardown did. */
export interface Teardown {
  unmounted: string[];
  detachedLoops: string[];
  removed: boolean;
}

/**
 * Removes sandbox `id`'s state: unmounts its root and disk (lazily when a file
 * is still open: the file system goes when the last one closes), detaches its
 * loop devices, deletes its directory and disk file. Never touches the image.
 * Idempotent.
 */
export async function destroyStateDisk(dataDir: string, id: string): Promise<Teardown> {
  const paths = sandboxPaths(dataDir, id);
  const unmounted = await unmountAllUnder(paths.dir);
  const detachedLoops: string[] = [];
  for (const loop of await loopDevicesUnder(paths.dir)) {
    await detachLoop(loop.name).catch(() => undefined);
    detachedLoops.push(loop.name);
  }
  // A busy one (a file still open on a lazily unmounted disk) stays until released: do not wait long for it.
  if (detachedLoops.length > 0) await loopsGone(paths.dir, 2000);
  // Nothing may be mounted under the directory now, or rm would reach through it.
  const left = await mountsUnder(paths.dir);
  if (left.length > 0)
    throw new Error(`cannot remove ${paths.dir}: still mounted at ${left.map((m) => m.mountPoint).join(', ')}`);
  const removed = await rm(paths.dir, { recursive: true, force: true }).then(() => true);
  return { unmounted, detachedLoops, removed };
}
