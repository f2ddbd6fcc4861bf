/**
 * @module sandbox/host/mounts
 * What is mounted, and undoing it: the mount table of this process's mount
 * namespace (/proc/self/mountinfo) and the loop devices of the host
 * (`losetup --json`), filtered to a directory, and unmounting that falls
 * back to a lazy unmount when something still holds a file open.
 */
import { readFile } from 'node:fs/promises';
import { runCommand, runOk } from './host-command.js';

/** One line of mountinfo. */
export interface MountEntry {
  mountPoint: string;
  fsType: string;
  source: string;
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescapeField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/** Parses mountinfo text (proc(5)): mount point is field 5, then after the " - " separator the type and source. */
export function parseMountInfo(text: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [left, right] = line.split(' - ');
    const fields = left?.split(' ') ?? [];
    const tail = right?.split(' ') ?? [];
    if (fields.length < 5 || tail.length < 2) continue;
    out.push({ mountPoint: unescapeField(fields[4]!), fsType: tail[0]!, source: unescapeField(tail[1]!) });
  }
  return out;
}

/** True when `path` is `dir` or inside it. */
export function isUnder(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);
}

/** Mounts at or under `dir`, deepest first (the order to unmount them in). */
export async function mountsUnder(dir: string): Promise<MountEntry[]> {
  const all = parseMountInfo(await readFile('/proc/self/mountinfo', 'utf8'));
  return all.filter((m) => isUnder(m.mountPoint, dir)).reverse();
}

/** True when something is mounted exactly at `path`. */
export async function isMountPoint(path: string): Promise<boolean> {
  return (await mountsUnder(path)).some((m) => m.mountPoint === path);
}

/** Unmounts `path`; when it is busy (a file still open on it), detaches it lazily: it goes once the last user closes. Returns how. */
export async function unmount(path: string): Promise<'unmounted' | 'lazy'> {
  const r = await runCommand(['umount', '--', path]);
  if (r.code === 0) return 'unmounted';
  await runOk(['umount', '--lazy', '--', path], `unmounting ${path}`);
  return 'lazy';
}

/** Unmounts everything at or under `dir`, deepest first; returns the mount points it unmounted. */
export async function unmountAllUnder(dir: string): Promise<string[]> {
  const done: string[] = [];
  // A mount hidden under another appears once the upper one is gone: loop until none is left.
  for (let round = 0; round < 10; round++) {
    const mounts = await mountsUnder(dir);
    if (mounts.length === 0) return done;
    for (const m of mounts) {
      await unmount(m.mountPoint);
      done.push(m.mountPoint);
    }
  }
  throw new Error(
    `mounts under ${dir} keep coming back: ${(await mountsUnder(dir)).map((m) => m.mountPoint).join(', ')}`,
  );
}

/** A loop device and the file behind it. */
export interface LoopDevice {
  name: string;
  /** The backing file's path, without the " (deleted)" the kernel adds once it is unlinked. */
  backFile: string;
}

/** Loop devices whose backing file is under `dir`. */
export async function loopDevicesUnder(dir: string): Promise<LoopDevice[]> {
  const out = await runOk(['losetup', '--json', '--list', '--output', 'NAME,BACK-FILE'], 'listing loop devices');
  if (out.trim() === '') return [];
  const parsed = JSON.parse(out) as { loopdevices: { name: string; 'back-file': string | null }[] };
  return parsed.loopdevices
    .map((l) => ({ name: l.name, backFile: (l['back-file'] ?? '').replace(/ \(deleted\)$/, '') }))
    .filter((l) => isUnder(l.backFile, dir));
}

/** Detaches a loop device; a busy one (a lazily unmounted file system still in use) detaches when it is released. */
export async function detachLoop(name: string): Promise<void> {
  await runOk(['losetup', '--detach', name], `detaching ${name}`);
}

/**
 * Waits until no loop device is backed by a file under `dir`, up to `timeoutMs`; resolves with those left.
 * The kernel clears a loop device after its file system is unmounted (or after a detach) asynchronously, so
 * a teardown waits for it before it says it is done.
 */
export async function loopsGone(dir: string, timeoutMs = 5000): Promise<LoopDevice[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const left = await loopDevicesUnder(dir);
    if (left.length === 0 || Date.now() >= end) return left;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
