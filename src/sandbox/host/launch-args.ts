/**
 * @module launch-args
 * The command line that starts a process in a sandbox: `unshare` maps the
 * sandbox to a subordinate id range of the host (sandbox uid 0 = host uid
 * `ids.hostUid`, never host root), then `bwrap` makes the namespaces, the
 * mount tree and applies the seccomp program. Building it is pure (no I/O) so
 * the launcher and the tests compose the same recipe.
 *
 * The fixed isolation flags, and why:
 * - `--unshare-all --unshare-user`: pid, mount, net (loopback only), ipc, uts,
 *   cgroup and a user namespace nested inside the id-mapped one;
 * - `--disable-userns`: no further user namespace inside (the seccomp
 *   filter refuses them too: two locks on the door that matters most);
 * - `--cap-drop CAP_SYS_PTRACE`: the sandbox's root may trace its own
 *   processes (same uid), but not a non-dumpable one such as the agent, and
 *   may not read such a process's /proc/PID/{mem,environ,fd};
 * - `--new-session`: no controlling terminal shared with the host (TIOCSTI);
 * - `--die-with-parent`: the sandbox dies with the process that launched it
 *   (the per-sandbox supervisor), never lingering unowned.
 */
import { isAbsolute, normalize } from 'node:path';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';

/** A host id range a sandbox runs as: sandbox id N is host id hostUid + N, for N < count. */
export interface IdRange {
  hostUid: number;
  hostGid: number;
  count: number;
}

/** One entry of the sandbox's mount tree, applied in order. */
export type SandboxMount =
  | { kind: 'ro-bind' | 'bind'; source: string; target: string }
  | { kind: 'proc' | 'dev'; target: string }
  | { kind: 'tmpfs'; target: string; sizeBytes?: number };

/** What to start and how. */
export interface LaunchSpec {
  ids: IdRange;
  mounts: readonly SandboxMount[];
  command: readonly string[];
  /** The descriptor number, in the launched process, from which bwrap reads the seccomp program. */
  seccompFd: number;
  cwd?: string;
  hostname?: string;
  /** The whole environment of the sandboxed process (the host's is never passed through). */
  env?: Readonly<Record<string, string>>;
  unshareBin?: string;
  bwrapBin?: string;
}

/** The capabilities removed from every sandboxed process (see the module comment). */
export const DROPPED_CAPABILITIES = ['CAP_SYS_PTRACE'] as const;

function checkPath(what: string, p: string): string {
  if (
    typeof p !== 'string' ||
    p.includes('\0') ||
    !isAbsolute(p) ||
    normalize(p) !== p ||
    (p.length > 1 && p.endsWith('/'))
  ) {
    throw new InvalidArgumentError(
      `${what} must be an absolute, normalised path (no '..', '//' or trailing '/'): ${JSON.stringify(p)}`,
    );
  }
  return p;
}

function checkId(what: string, n: number, min: number): number {
  if (!Number.isSafeInteger(n) || n < min || n > 0xfffffffe)
    throw new InvalidArgumentError(`${what} must be an integer >= ${min}: ${n}`);
  return n;
}

/**
 * argv (argv[0] is the unshare binary) that starts `spec.command` in a sandbox.
 * @example spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe', seccompFile] })  // seccompFd 3
 */
export function sandboxLaunchArgv(spec: LaunchSpec): string[] {
  const { ids } = spec;
  checkId('ids.hostUid', ids.hostUid, 1);
  checkId('ids.hostGid', ids.hostGid, 1);
  checkId('ids.count', ids.count, 1);
  checkId('seccompFd', spec.seccompFd, 3);
  if (spec.command.length === 0) throw new InvalidArgumentError('a sandbox launch needs a command');
  const argv = [
    spec.unshareBin ?? 'unshare',
    '--user',
    `--map-users=${ids.hostUid},0,${ids.count}`,
    `--map-groups=${ids.hostGid},0,${ids.count}`,
    '--setuid',
    '0',
    '--setgid',
    '0',
    '--',
    spec.bwrapBin ?? 'bwrap',
    '--unshare-all',
    '--unshare-user',
    '--disable-userns',
    '--new-session',
    '--die-with-parent',
    ...DROPPED_CAPABILITIES.flatMap((c) => ['--cap-drop', c]),
  ];
  for (const m of spec.mounts) {
    const target = checkPath('mount target', m.target);
    if (m.kind === 'ro-bind' || m.kind === 'bind')
      argv.push(`--${m.kind}`, checkPath('mount source', m.source), target);
    else if (m.kind === 'tmpfs') {
      if (m.sizeBytes !== undefined) argv.push('--size', String(checkId('tmpfs sizeBytes', m.sizeBytes, 1)));
      argv.push('--tmpfs', target);
    } else argv.push(`--${m.kind}`, target);
  }
  if (spec.hostname !== undefined) {
    if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(spec.hostname))
      throw new InvalidArgumentError(`not a host name: ${JSON.stringify(spec.hostname)}`);
    argv.push('--hostname', spec.hostname);
  }
  if (spec.cwd !== undefined) argv.push('--chdir', checkPath('cwd', spec.cwd));
  if (spec.env !== undefined) {
    argv.push('--clearenv');
    for (const [k, v] of Object.entries(spec.env)) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k) || v.includes('\0'))
        throw new InvalidArgumentError(`not an environment variable: ${JSON.stringify(k)}`);
      argv.push('--setenv', k, v);
    }
  }
  argv.push('--seccomp', String(spec.seccompFd), '--', ...spec.command);
  return argv;
}
