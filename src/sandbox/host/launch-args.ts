/**
 * @module launch-args
 * The command line that starts a process in a sandbox: `unshare` maps the
 * sandbox to a subordinate id range of the host (sandbox uid 0 = host uid
 * `ids.hostUid`, never host root), then `bwrap` makes the namespaces, the
 * mount tree and applies the seccomp program. Building it is pure (no I/O) so
 * the launcher and the tests compose the same recipe.
 *
 * The fixed isolation flags, and why:
 * - `--unshare-ipc --unshare-pid --unshare-net --unshare-uts --unshare-cgroup`:
 *   the namespaces (net: loopback only). NOT `--unshare-user`/`--unshare-all`:
 *   bwrap's nested user namespace maps one uid only, and the sandbox must see
 *   its whole range (an image's files belong to root, _apt, nobody, ...). The
 *   user namespace is the one `unshare` made; a new one is refused by the
 *   seccomp filter (unshare, clone flags, clone3);
 * - `--cap-drop ALL` then Docker's default set (KEPT_CAPABILITIES): the
 *   sandbox's root keeps what installing packages and dropping privileges
 *   need, but not CAP_SYS_ADMIN (mount is refused by the kernel as well as by
 *   seccomp) nor CAP_SYS_PTRACE: it may trace its own processes (same uid)
 *   but not a non-dumpable one such as the agent, nor read such a process's
 *   /proc/PID/{mem,environ,fd}. bwrap sets no_new_privs, so no exec (setuid
 *   binary, file capabilities, root's exec rule) gives a capability back;
 * - `--new-session`: no controlling terminal shared with the host (TIOCSTI);
 * - `--die-with-parent`: the sandbox dies with the process that launched it
 *   (the per-sandbox supervisor), never lingering unowned.
 *
 * bwrap runs as the sandbox's host uid: every bind source must be reachable
 * (search permission on each directory on the way) by that uid.
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
  /** A descriptor on which bwrap writes what it started (JSON with `child-pid`, the sandbox's first process). */
  infoFd?: number;
  cwd?: string;
  hostname?: string;
  /** The whole environment of the sandboxed process (the host's is never passed through). */
  env?: Readonly<Record<string, string>>;
  unshareBin?: string;
  bwrapBin?: string;
}

/** The only capabilities a sandboxed process has, inside its own user namespace (Docker's default set). */
export const KEPT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_KILL',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_SETFCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_NET_RAW',
  'CAP_SYS_CHROOT',
  'CAP_MKNOD',
  'CAP_AUDIT_WRITE',
] as const;

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
    '--unshare-ipc',
    '--unshare-pid',
    '--unshare-net',
    '--unshare-uts',
    '--unshare-cgroup',
    '--new-session',
    '--die-with-parent',
    '--cap-drop',
    'ALL',
    ...KEPT_CAPABILITIES.flatMap((c) => ['--cap-add', c]),
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
  if (spec.infoFd !== undefined) argv.push('--info-fd', String(checkId('infoFd', spec.infoFd, 3)));
  argv.push('--seccomp', String(spec.seccompFd), '--', ...spec.command);
  return argv;
}
