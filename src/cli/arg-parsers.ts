/**
 * @module cli/arg-parsers
 * Parsers of the CLI's own argument forms, each refusing bad input with an
 * InvalidArgumentError that says what was expected:
 *
 * - a *target* `VOLUME:/path` names a path in a volume (`VOLUME` or
 *   `VOLUME:` alone is the volume's root where a command allows it);
 * - a *duration* `90s`, `30m`, `1h`, `7d`, `2w`;
 * - a *mode* in octal (`644`, `0755`, `0o600`);
 * - a *count* (a whole positive number) and a *port*.
 */
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { parsePath, parseVolumeName, type VolumePath } from '@stowage/sdk/common/paths.js';

/** A path inside a volume, as named on the command line. */
export interface Target {
  volume: string;
  path: VolumePath;
}

/**
 * Parses `VOLUME:/path`. With `allowBare`, `VOLUME` and `VOLUME:` mean the
 * root. Paths are validated strictly: no "..", no "//", no trailing "/".
 *
 * @example
 * parseTarget('data:/notes/a.txt'); // { volume: 'data', path: '/notes/a.txt' }
 */
export function parseTarget(spec: string, options: { allowBare?: boolean } = {}): Target {
  const i = spec.indexOf(':');
  if (i < 0) {
    if (options.allowBare) return { volume: parseVolumeName(spec), path: parsePath('/') };
    throw new InvalidArgumentError(`expected VOLUME:/path, got ${JSON.stringify(spec.slice(0, 200))}`);
  }
  const volume = spec.slice(0, i);
  const rest = spec.slice(i + 1);
  if (volume === '')
    throw new InvalidArgumentError(
      `missing volume name before ":" in ${JSON.stringify(spec.slice(0, 200))}: expected VOLUME:/path`,
    );
  parseVolumeName(volume);
  if (rest === '') {
    if (options.allowBare) return { volume, path: parsePath('/') };
    throw new InvalidArgumentError(`missing path after "${volume}:": expected ${volume}:/path`);
  }
  if (!rest.startsWith('/')) {
    throw new InvalidArgumentError(
      `path ${JSON.stringify(rest.slice(0, 200))} in ${JSON.stringify(spec.slice(0, 200))} must be absolute: write ${volume}:/${rest.replace(/^(\.\.?\/)+/, '')}`,
    );
  }
  return { volume, path: parsePath(rest) };
}

const DURATION_UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/**
 * Parses a duration into milliseconds: a number with a unit of ms, s, m, h, d or w.
 *
 * @example
 * parseDuration('1h'); // 3600000
 */
export function parseDuration(input: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$/i.exec(input);
  if (!m)
    throw new InvalidArgumentError(
      `invalid duration ${JSON.stringify(input)}: use a number with a unit, e.g. 90s, 30m, 1h, 7d`,
    );
  const ms = Math.round(Number(m[1]) * DURATION_UNITS[m[2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(ms)) throw new InvalidArgumentError(`duration ${JSON.stringify(input)} is too long`);
  return ms;
}

/**
 * Parses permission bits written in octal.
 *
 * @example
 * parseMode('644'); // 0o644
 */
export function parseMode(input: string): number {
  const m = /^(?:0o|0)?([0-7]{1,4})$/i.exec(input.trim());
  if (!m)
    throw new InvalidArgumentError(
      `invalid mode ${JSON.stringify(input)}: use octal permission bits, e.g. 644 or 0755`,
    );
  return parseInt(m[1]!, 8);
}

/**
 * Parses a whole number of at least `min`.
 *
 * @example
 * parseCount('20', 'limit'); // 20
 */
export function parseCount(input: string, what: string, min = 1): number {
  if (!/^\d{1,15}$/.test(input.trim()) || Number(input) < min)
    throw new InvalidArgumentError(
      `invalid ${what} ${JSON.stringify(input)}: expected a whole number of at least ${min}`,
    );
  return Number(input);
}

/**
 * Parses a TCP port (0 picks a free one).
 *
 * @example
 * parsePort('7420'); // 7420
 */
export function parsePort(input: string): number {
  const n = /^\d{1,5}$/.test(input.trim()) ? Number(input) : NaN;
  if (!(n >= 0 && n <= 65535))
    throw new InvalidArgumentError(`invalid port ${JSON.stringify(input)}: expected 0-65535`);
  return n;
}
