/**
 * @module sandbox/host/build-sandbox
 * Runs one command of an image build inside the image's root directory, as
 * the sandbox would: in a user namespace whose root is the subordinate range
 * (never host root), with its own pid, ipc, uts and mount namespaces, under
 * bubblewrap. Unlike a sandbox it shares the host network, because the apt
 * mirror is reachable only through it; so build steps must come from the
 * operator or an authenticated tenant, and they can do no more than that
 * tenant's sandbox could plus reach the network. They run under the
 * sandbox's seccomp deny-list and capability set, as the sandbox does.
 *
 * The root is bound in two hops: host root first binds it at /mnt inside a
 * private mount namespace, then the namespaced root hands /mnt to bwrap.
 * bwrap resolves paths as the namespaced root, which cannot search a host
 * directory such as a 0700 data dir; the first hop makes the root reachable
 * whatever its parents' modes, and dies with the namespace.
 */
import { streamCommand, type StreamResult } from './host-command.js';
import { KEPT_CAPABILITIES } from './launch-args.js';
import { openSeccompFile } from './seccomp.js';
import { subordinateUserArgs } from './subordinate-ids.js';

/** Options of one build command. */
export interface BuildCommandOptions {
  /** Environment inside (nothing of the host's is passed). */
  env: Record<string, string>;
  /** Share the host network (apt); otherwise loopback only. */
  network: boolean;
  /** Output as it comes (stdout and stderr). */
  onOutput: (text: string) => void;
  /** Killed (the whole process tree) after this long. */
  timeoutMs: number;
  /** Data fed to the command's stdin. */
  stdin?: NodeJS.ReadableStream;
}

/** The first hop: bind the root at /mnt, then enter the user namespace and bwrap with the remaining arguments. */
const HOP = 'mount --bind -- "$1" /mnt && shift && exec unshare "$@"';

/** The argv that runs `command` (argv inside the root) in the build sandbox over `root`; fd 3 holds the seccomp program. */
export function buildCommandArgv(
  root: string,
  command: readonly string[],
  opts: Pick<BuildCommandOptions, 'env' | 'network'>,
): string[] {
  const bwrap = [
    'bwrap',
    '--bind',
    '/mnt',
    '/',
    '--proc',
    '/proc',
    '--dev',
    '/dev',
    '--perms',
    '1777',
    '--tmpfs',
    '/tmp',
    '--unshare-pid',
    '--unshare-ipc',
    '--unshare-uts',
    '--unshare-cgroup-try',
    '--die-with-parent',
    '--new-session',
    '--cap-drop',
    'ALL',
    ...KEPT_CAPABILITIES.flatMap((c) => ['--cap-add', c]),
    '--seccomp',
    '3',
    '--hostname',
    'stowage-build',
    '--chdir',
    '/',
    '--clearenv',
  ];
  if (opts.network) bwrap.push('--ro-bind', '/etc/resolv.conf', '/etc/resolv.conf');
  else bwrap.push('--unshare-net');
  for (const [k, v] of Object.entries(opts.env)) bwrap.push('--setenv', k, v);
  return [
    'unshare',
    '--mount',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    HOP,
    'stowage-build',
    root,
    ...subordinateUserArgs(),
    '--',
    ...bwrap,
    '--',
    ...command,
  ];
}

/** Runs `command` in the build sandbox over `root`, streaming its output. */
export async function runBuildCommand(
  root: string,
  command: readonly string[],
  opts: BuildCommandOptions,
): Promise<StreamResult> {
  const seccomp = openSeccompFile();
  try {
    return await streamCommand(buildCommandArgv(root, command, opts), { ...opts, fds: [seccomp.fd] });
  } finally {
    seccomp.close();
  }
}
