/**
 * @module mount/fuse/mountinfo
 * Which FUSE mount, if any, sits at a path, read from /proc/self/mountinfo
 * (never by stat'ing the path: a stale FUSE mount answers ENOTCONN, and a
 * live one served by this process would wait on its own JS thread).
 */
import { readFileSync } from 'node:fs';
import { unescapeMountField } from '@stowage/sdk/common/mount-state.js';

export interface MountEntry {
  /** "major:minor" of the mounted file system (for FUSE the minor is the connection number). */
  device: string;
  mountPoint: string;
  /** e.g. "fuse", "fuse.stowage", "ext4". */
  fsType: string;
  source: string;
}

/** Parses mountinfo text (proc(5)): fields, an optional-field list ended by "-", then type, source, options. */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    if (fields.length < 10 || dash < 0 || dash + 2 >= fields.length) continue;
    entries.push({
      device: fields[2]!,
      mountPoint: unescapeMountField(fields[4]!),
      fsType: unescapeMountField(fields[dash + 1]!),
      source: unescapeMountField(fields[dash + 2]!),
    });
  }
  return entries;
}

/** The mount that covers `absPath` exactly (the last one mounted there), if any. */
export function mountAt(absPath: string, text = readFileSync('/proc/self/mountinfo', 'utf8')): MountEntry | undefined {
  const found = parseMountinfo(text).filter((e) => e.mountPoint === absPath);
  return found[found.length - 1];
}

/** The FUSE mount at `absPath`, if the topmost mount there is one. */
export function fuseMountAt(absPath: string, text?: string): MountEntry | undefined {
  const m = mountAt(absPath, text);
  return m && (m.fsType === 'fuse' || m.fsType.startsWith('fuse.')) ? m : undefined;
}
