/**
 * @module engine/sandbox-requests
 * Checks of what callers ask of sandboxes, before anything starts: a create
 * request (mount paths, limits, environment, timeout, image), an exec
 * request, and paths of files inside a sandbox. Input is untrusted (any JSON
 * value may arrive here); every refusal is an InvalidArgumentError naming the
 * field and what to send instead.
 */
import { availableParallelism } from 'node:os';
import { posix } from 'node:path';
import type * as wire from '@stowage/sdk/api/wire.js';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';
import { checkImageSpec, type CheckedImageSpec } from '../sandbox/host/image-spec.js';
import { DEFAULT_DISK_GIB, type RuntimeExec } from '../sandbox/runtime.js';

/** Most volumes one sandbox mounts (SPEC section 5). */
export const MAX_SANDBOX_VOLUMES = 8;
export const SANDBOX_LIMITS = {
  cpu: { min: 0.1, default: 1 },
  memoryMib: { min: 64, max: 65536, default: 1024 },
  diskGib: { min: 1, max: 64, default: DEFAULT_DISK_GIB },
  timeout: { min: 1, max: 86400, default: 300 },
} as const;
/** Bounds of an environment: names and values are kept with the record and passed to every command. */
export const MAX_ENV_VARS = 256;
export const MAX_ENV_BYTES = 128 * 1024;
/** Longest path (mount path, subpath, file path, cwd) in bytes, as Linux's PATH_MAX. */
export const MAX_SANDBOX_PATH_BYTES = 4096;
/** Bounds of one exec's command line. */
export const MAX_ARGV = 4096;
export const MAX_ARGV_BYTES = 1024 * 1024;
/** Paths a volume may not cover: the kernel's views and the agent's own directory. */
export const RESERVED_MOUNT_PATHS = ['/proc', '/dev', '/sys', '/.stowage'] as const;

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A volume to mount, once checked. */
export interface VolumeMountRequest {
  path: string;
  volume: string;
  readOnly: boolean;
  subpath: string | null;
}

/** A create request with every default filled in and every field checked. */
export interface CheckedSandboxRequest {
  image: CheckedImageSpec;
  volumes: VolumeMountRequest[];
  cpu: number;
  memoryMib: number;
  diskGib: number;
  env: Record<string, string>;
  timeout: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Checks a create request; `maxCpu` is the host's cores (default: this machine's). */
export function checkCreateRequest(req: unknown, maxCpu: number = availableParallelism()): CheckedSandboxRequest {
  if (req === undefined || req === null) req = {};
  if (!isObject(req)) throw new InvalidArgumentError('a sandbox request is a JSON object');
  const r = req as wire.CreateSandboxRequest;
  const cpu = checkNumber('cpu', r.cpu, SANDBOX_LIMITS.cpu.default, SANDBOX_LIMITS.cpu.min, maxCpu, false);
  return {
    image: checkImage(r.image),
    volumes: checkVolumes(r.volumes),
    // Thousandths of a core: what the records keep.
    cpu: Math.round(cpu * 1000) / 1000,
    memoryMib: checkNumber('memoryMib', r.memoryMib, SANDBOX_LIMITS.memoryMib.default, 64, 65536, true),
    diskGib: checkNumber('diskGib', r.diskGib, SANDBOX_LIMITS.diskGib.default, 1, 64, true),
    env: checkEnv('env', r.env),
    timeout: checkNumber('timeout', r.timeout, SANDBOX_LIMITS.timeout.default, 1, 86400, true),
  };
}

function checkImage(image: unknown): CheckedImageSpec {
  if (image === undefined || image === null) return checkImageSpec({ base: 'debian' });
  if (!isObject(image)) throw new InvalidArgumentError('image must be an object such as { "base": "debian" }');
  const steps = (image as { steps?: unknown }).steps;
  if (Array.isArray(steps)) {
    for (const [i, step] of steps.entries()) {
      if (isObject(step) && 'copy' in step)
        throw new InvalidArgumentError(
          `image.steps.${i}: a copy step reads files of a local build context, which a request over the API has none of; ` +
            'put the files in a volume and mount it, or write them with the files API after create',
        );
    }
  }
  return checkImageSpec({ ...image, base: (image as { base?: unknown }).base ?? 'debian' });
}

function checkNumber(field: string, v: unknown, fallback: number, min: number, max: number, integer: boolean): number {
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    throw new InvalidArgumentError(
      `${field} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${JSON.stringify(v)?.slice(0, 40)})`,
    );
  }
  return v;
}

/** An environment: names `[A-Za-z_][A-Za-z0-9_]*`, values without NUL, bounded in count and bytes. */
export function checkEnv(field: string, env: unknown): Record<string, string> {
  if (env === undefined || env === null) return {};
  if (!isObject(env)) throw new InvalidArgumentError(`${field} must be an object of names to string values`);
  const out: Record<string, string> = {};
  let bytes = 0;
  const entries = Object.entries(env);
  if (entries.length > MAX_ENV_VARS)
    throw new InvalidArgumentError(`${field} has ${entries.length} variables; at most ${MAX_ENV_VARS}`);
  for (const [name, value] of entries) {
    if (!ENV_NAME.test(name) || name.length > 256)
      throw new InvalidArgumentError(
        `${field}: ${JSON.stringify(name.slice(0, 80))} is not a variable name (letters, digits and _, not starting with a digit)`,
      );
    if (typeof value !== 'string') throw new InvalidArgumentError(`${field}.${name} must be a string`);
    if (value.includes('\0')) throw new InvalidArgumentError(`${field}.${name} must not contain NUL`);
    bytes += Buffer.byteLength(name) + Buffer.byteLength(value) + 2;
    if (bytes > MAX_ENV_BYTES)
      throw new InvalidArgumentError(`${field} is larger than ${MAX_ENV_BYTES} bytes; pass large data as a file`);
    out[name] = value;
  }
  return out;
}

function checkVolumes(volumes: unknown): VolumeMountRequest[] {
  if (volumes === undefined || volumes === null) return [];
  if (!isObject(volumes))
    throw new InvalidArgumentError('volumes must be an object of mount paths to volumes, e.g. { "/mnt/data": "data" }');
  const entries = Object.entries(volumes);
  if (entries.length > MAX_SANDBOX_VOLUMES)
    throw new InvalidArgumentError(
      `a sandbox mounts at most ${MAX_SANDBOX_VOLUMES} volumes (got ${entries.length}); mount fewer`,
    );
  const out: VolumeMountRequest[] = [];
  for (const [path, spec] of entries) {
    checkMountPath(path);
    const where = `volumes[${JSON.stringify(path)}]`;
    if (typeof spec === 'string') {
      out.push({ path, volume: checkVolumeName(where, spec), readOnly: false, subpath: null });
      continue;
    }
    if (!isObject(spec))
      throw new InvalidArgumentError(`${where} must be a volume name or { volume, readOnly?, subpath? }`);
    const extra = Object.keys(spec).filter((k) => !['volume', 'readOnly', 'subpath'].includes(k));
    if (extra.length > 0) throw new InvalidArgumentError(`${where} has unknown field ${JSON.stringify(extra[0])}`);
    if (spec.readOnly !== undefined && typeof spec.readOnly !== 'boolean')
      throw new InvalidArgumentError(`${where}.readOnly must be true or false`);
    let subpath: string | null = null;
    if (spec.subpath !== undefined && spec.subpath !== null) {
      subpath = checkAbsolute(`${where}.subpath`, spec.subpath);
      if (posix.normalize(subpath) !== subpath || (subpath !== '/' && subpath.endsWith('/')))
        throw new InvalidArgumentError(`${where}.subpath must be normalised (no //, . or .., no trailing /)`);
      if (subpath === '/') subpath = null;
    }
    out.push({
      path,
      volume: checkVolumeName(`${where}.volume`, spec.volume),
      readOnly: spec.readOnly === true,
      subpath,
    });
  }
  // Two mounts where one is at or under the other would hide one behind the other.
  const sorted = [...out].sort((a, b) => (a.path < b.path ? -1 : 1));
  for (const a of sorted) {
    for (const b of sorted) {
      if (a !== b && (a.path === b.path || b.path.startsWith(`${a.path}/`)))
        throw new InvalidArgumentError(
          `mount paths ${a.path} and ${b.path} overlap (one is inside the other); mount volumes at separate paths`,
        );
    }
  }
  return out;
}

function checkVolumeName(where: string, name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 256)
    throw new InvalidArgumentError(`${where} must name a volume`);
  return name;
}

/** A mount path: absolute, normalised, not `/`, not at or under a reserved path. */
export function checkMountPath(path: string): string {
  const quoted = JSON.stringify(path.slice(0, 120));
  checkAbsolute(`mount path ${quoted}`, path);
  if (path === '/')
    throw new InvalidArgumentError('a volume cannot be mounted at /: pick a directory such as /mnt/data');
  if (posix.normalize(path) !== path || path.endsWith('/'))
    throw new InvalidArgumentError(
      `mount path ${quoted} is not normalised (no //, . or .. segments, no trailing /): write it as ${JSON.stringify(posix.normalize(path).replace(/\/+$/, '') || '/')}`,
    );
  for (const reserved of RESERVED_MOUNT_PATHS) {
    if (path === reserved || path.startsWith(`${reserved}/`))
      throw new InvalidArgumentError(
        `mount path ${quoted} is at or under ${reserved}, which the sandbox's system owns; mount under /mnt or /data instead`,
      );
  }
  return path;
}

function checkAbsolute(what: string, path: unknown): string {
  if (typeof path !== 'string' || !path.startsWith('/'))
    throw new InvalidArgumentError(`${what} must be an absolute path (starting with /)`);
  if (path.includes('\0')) throw new InvalidArgumentError(`${what} must not contain NUL`);
  if (Buffer.byteLength(path) > MAX_SANDBOX_PATH_BYTES)
    throw new InvalidArgumentError(`${what} is longer than ${MAX_SANDBOX_PATH_BYTES} bytes`);
  return path;
}

/** A path of a file inside a sandbox: absolute, no NUL, bounded (the agent resolves it inside). */
export function checkSandboxPath(path: unknown, field = 'path'): string {
  return checkAbsolute(field, path);
}

/** A file mode: permission bits only (0..0o7777). */
export function checkMode(mode: unknown, fallback: number): number {
  if (mode === undefined) return fallback;
  if (typeof mode !== 'number' || !Number.isInteger(mode) || mode < 0 || mode > 0o7777)
    throw new InvalidArgumentError('mode must be an integer from 0 to 0o7777 (4095), e.g. 420 for 0o644');
  return mode;
}

/** A terminal's size when the exec does not say. */
const DEFAULT_TERMINAL = { rows: 24, cols: 80 };

/** A terminal size: whole rows and columns, 1 to 10000 each. */
export function checkTerminalSize(size: unknown): { rows: number; cols: number } {
  const s = size as { rows?: unknown; cols?: unknown } | null;
  const ok = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 10_000;
  if (!isObject(size) || !ok(s?.rows) || !ok(s?.cols))
    throw new InvalidArgumentError('pty is true or { rows, cols }, whole numbers from 1 to 10000');
  return { rows: s!.rows as number, cols: s!.cols as number };
}

/** Checks an exec request into what the runtime runs. */
export function checkExecRequest(req: unknown): RuntimeExec {
  if (!isObject(req)) throw new InvalidArgumentError('an exec request is a JSON object with argv or command');
  const r = req as wire.ExecRequest;
  if ((r.argv === undefined) === (r.command === undefined))
    throw new InvalidArgumentError(
      'send exactly one of argv (the program and its arguments, run as is) or command (run by /bin/sh -c)',
    );
  let argv: string[];
  if (r.argv !== undefined) {
    if (!Array.isArray(r.argv) || r.argv.length === 0 || r.argv.length > MAX_ARGV)
      throw new InvalidArgumentError(`argv must be a list of 1 to ${MAX_ARGV} strings`);
    let bytes = 0;
    for (const [i, a] of r.argv.entries()) {
      if (typeof a !== 'string') throw new InvalidArgumentError(`argv[${i}] must be a string`);
      if (a.includes('\0')) throw new InvalidArgumentError(`argv[${i}] must not contain NUL`);
      bytes += Buffer.byteLength(a) + 1;
    }
    if (r.argv[0] === '') throw new InvalidArgumentError('argv[0] must name a program');
    if (bytes > MAX_ARGV_BYTES) throw new InvalidArgumentError(`argv is larger than ${MAX_ARGV_BYTES} bytes`);
    argv = r.argv;
  } else {
    if (typeof r.command !== 'string' || r.command.trim() === '')
      throw new InvalidArgumentError('command must be a non-empty string');
    if (r.command.includes('\0')) throw new InvalidArgumentError('command must not contain NUL');
    if (Buffer.byteLength(r.command) > MAX_ARGV_BYTES)
      throw new InvalidArgumentError(`command is larger than ${MAX_ARGV_BYTES} bytes`);
    argv = ['/bin/sh', '-c', r.command];
  }
  const out: RuntimeExec = { argv };
  if (r.cwd !== undefined) out.cwd = checkAbsolute('cwd', r.cwd);
  if (r.env !== undefined) out.env = checkEnv('env', r.env);
  for (const flag of ['background', 'stdin'] as const) {
    if (r[flag] !== undefined && typeof r[flag] !== 'boolean')
      throw new InvalidArgumentError(`${flag} must be true or false`);
  }
  if (r.pty !== undefined && r.pty !== false)
    out.pty = r.pty === true ? { ...DEFAULT_TERMINAL } : checkTerminalSize(r.pty);
  if (r.background !== undefined) out.background = r.background;
  if (r.stdin !== undefined) out.stdin = r.stdin;
  if (r.timeout !== undefined)
    out.timeoutMs = Math.round(checkNumber('timeout', r.timeout, 0, 0, SANDBOX_LIMITS.timeout.max, false) * 1000);
  return out;
}
