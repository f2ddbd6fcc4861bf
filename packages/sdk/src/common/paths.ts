/**
 * @module paths
 * Volume paths are absolute, normalised POSIX paths inside a volume: "/" or
 * "/a/b". Anything odd is refused rather than silently rewritten, so a caller
 * never writes somewhere other than where it asked.
 */
import { InvalidArgumentError } from './errors.js';

/** Longest accepted path, in UTF-8 bytes (Linux PATH_MAX). */
export const MAX_PATH_BYTES = 4096;
/** Longest accepted path segment, in UTF-8 bytes (Linux NAME_MAX). */
export const MAX_NAME_BYTES = 255;

/** A validated, normalised absolute path inside a volume. */
export type VolumePath = string & { readonly __volumePath: true };

/** True when `s` is valid UTF-16 without lone surrogates (i.e. encodes to UTF-8 faithfully). */
function isWellFormed(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(s);
}

/** Checks one path segment (a file or directory name). */
export function parseName(name: string): string {
  if (name.length === 0) throw new InvalidArgumentError('empty file name');
  if (name === '.' || name === '..')
    throw new InvalidArgumentError(`invalid file name ${JSON.stringify(name)}: "." and ".." are not allowed`);
  if (name.includes('/')) throw new InvalidArgumentError(`invalid file name ${JSON.stringify(name)}: contains "/"`);
  if (name.includes('\0')) throw new InvalidArgumentError('invalid file name: contains a NUL byte');
  if (!isWellFormed(name)) throw new InvalidArgumentError('invalid file name: not valid UTF-8');
  if (Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES)
    throw new InvalidArgumentError(`file name too long: at most ${MAX_NAME_BYTES} bytes`);
  return name;
}

/**
 * Validates an absolute volume path. Refuses relative paths, "." and ".."
 * segments, empty segments ("//" or a trailing "/"), NUL bytes, invalid
 * UTF-8 and over-long names.
 */
export function parsePath(p: unknown): VolumePath {
  if (typeof p !== 'string') throw new InvalidArgumentError('path must be a string');
  if (p === '/') return p as VolumePath;
  if (!p.startsWith('/'))
    throw new InvalidArgumentError(`path must be absolute (start with "/"): ${JSON.stringify(p.slice(0, 200))}`);
  if (p.includes('\0')) throw new InvalidArgumentError('path contains a NUL byte');
  if (!isWellFormed(p)) throw new InvalidArgumentError('path is not valid UTF-8');
  if (Buffer.byteLength(p, 'utf8') > MAX_PATH_BYTES)
    throw new InvalidArgumentError(`path too long: at most ${MAX_PATH_BYTES} bytes`);
  const parts = p.slice(1).split('/');
  for (const part of parts) {
    if (part === '')
      throw new InvalidArgumentError(
        `path has an empty segment ("//" or a trailing "/"): ${JSON.stringify(p.slice(0, 200))}`,
      );
    if (part === '.' || part === '..')
      throw new InvalidArgumentError(`path may not contain "." or ".." segments: ${JSON.stringify(p.slice(0, 200))}`);
    if (Buffer.byteLength(part, 'utf8') > MAX_NAME_BYTES)
      throw new InvalidArgumentError(`path segment too long: at most ${MAX_NAME_BYTES} bytes`);
  }
  return p as VolumePath;
}

/** The segments of a validated path ("/" has none). */
export function splitPath(p: VolumePath): string[] {
  return p === '/' ? [] : p.slice(1).split('/');
}

/** Joins segments into a path (no validation: callers pass validated names). */
export function joinPath(parts: readonly string[]): VolumePath {
  return ('/' + parts.join('/')) as VolumePath;
}

/** Parent directory of a path; "/" for top-level entries and for "/" itself. */
export function parentPath(p: VolumePath): VolumePath {
  const i = p.lastIndexOf('/');
  return (i <= 0 ? '/' : p.slice(0, i)) as VolumePath;
}

/** Last segment of a path ("" for "/"). */
export function baseName(p: VolumePath): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** True when `inner` equals `outer` or lies below it. */
export function isWithin(inner: VolumePath, outer: VolumePath): boolean {
  return outer === '/' || inner === outer || inner.startsWith(outer + '/');
}

/** Volume names: unique per tenant, DNS-label-like. */
export const VOLUME_NAME_RE = /^[a-z0-9][a-z0-9._-]{0,62}$/;

/** Validates a volume (or snapshot) name. */
export function parseVolumeName(name: unknown, kind = 'volume'): string {
  if (typeof name !== 'string' || !VOLUME_NAME_RE.test(name)) {
    const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, 80)) : String(name);
    throw new InvalidArgumentError(
      `invalid ${kind} name ${shown}: use 1-63 characters of a-z, 0-9, ".", "_", "-", starting with a letter or digit`,
    );
  }
  return name;
}
