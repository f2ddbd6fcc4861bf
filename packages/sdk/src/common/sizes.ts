/**
 * @module sizes
 * Human byte sizes ("2G", "512M", "1.5GiB") in and out. Suffixes are binary
 * (K = 1024), as df and the peers' cache options use them.
 */
import { InvalidArgumentError } from './errors.js';

export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;
export const TiB = 1024 * GiB;

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: KiB,
  kb: KiB,
  kib: KiB,
  m: MiB,
  mb: MiB,
  mib: MiB,
  g: GiB,
  gb: GiB,
  gib: GiB,
  t: TiB,
  tb: TiB,
  tib: TiB,
};

/** Parses "2G", "512MiB", "1048576" into bytes; refuses negatives, fractions of a byte and garbage. */
export function parseSize(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0)
      throw new InvalidArgumentError(`invalid size ${input}: expected a whole number of bytes`);
    return input;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(input);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined)
    throw new InvalidArgumentError(
      `invalid size ${JSON.stringify(input)}: use a number with an optional unit, e.g. 512M or 2G`,
    );
  const bytes = Math.round(Number(m[1]) * unit);
  if (!Number.isSafeInteger(bytes)) throw new InvalidArgumentError(`size ${JSON.stringify(input)} is too large`);
  return bytes;
}

/** Formats bytes with a binary unit: 2147483648 -> "2 GiB". */
export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  const shown = i === 0 ? String(v) : v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  return `${shown.replace(/\.0+$/, '')} ${units[i]}`;
}
