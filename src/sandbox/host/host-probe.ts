/**
 * @module host-probe
 * Can this host run sandboxes? Checks each thing the launch recipe needs
 * (root, user namespaces that really work, bwrap, newuidmap/newgidmap,
 * unshare, mmdebstrap, root's subordinate id range, cgroups) and answers
 * either "ready" with what the launcher needs to know (id range, cgroup mode)
 * or the list of what is missing, each with its fix. Every input is a
 * parameter so tests can point it at fakes.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { cgroupSupport, type CgroupMode } from './cgroups.js';
import type { IdRange } from './launch-args.js';

/** Ids a sandbox host needs: 65536 covers every uid a Debian image uses (nobody is 65534). */
export const MIN_SUBORDINATE_IDS = 65536;

/** Where the probe looks; each defaults to the real host. */
export interface ProbeInputs {
  uid?: number;
  /** The user whose subordinate ranges count (the daemon runs as root). */
  user?: string;
  path?: string;
  subuidFile?: string;
  subgidFile?: string;
  maxUserNamespacesFile?: string;
  cgroupRoot?: string;
}

/** One thing missing, and how to fix it. */
export interface Missing {
  what: string;
  fix: string;
}

export type HostReadiness =
  | { ready: true; ids: IdRange; cgroupMode: CgroupMode; binaries: Readonly<Record<string, string>> }
  | { ready: false; missing: Missing[] };

/** The binaries of the recipe and the Debian package that has each. */
export const REQUIRED_BINARIES: Readonly<Record<string, string>> = {
  bwrap: 'bubblewrap',
  newuidmap: 'uidmap',
  newgidmap: 'uidmap',
  unshare: 'util-linux',
  mmdebstrap: 'mmdebstrap',
};

/** The executable called name on a PATH string, or undefined. */
export function findOnPath(name: string, path: string): string | undefined {
  for (const dir of path.split(delimiter).filter(Boolean)) {
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * The first range of `user` (name or numeric id) in a subuid/subgid file with at least `min` ids, or undefined.
 * Malformed lines are skipped, as shadow-utils does.
 */
export function subordinateRange(
  file: string,
  user: string,
  uid: number,
  min = MIN_SUBORDINATE_IDS,
): { start: number; count: number } | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  for (const line of text.split('\n')) {
    const m = /^([^:#\s]+):(\d+):(\d+)\s*$/.exec(line.trim());
    if (!m || (m[1] !== user && m[1] !== String(uid))) continue;
    const start = Number(m[2]);
    const count = Number(m[3]);
    // Never a range that includes host root: sandbox root must be unprivileged on the host.
    if (start >= 1 && count >= min && start + count <= 0xffffffff) return { start, count };
  }
  return undefined;
}

/** Probes the host. Runs `unshare --user true` once (a few ms). */
export function probeHost(inputs: ProbeInputs = {}): HostReadiness {
  const uid = inputs.uid ?? process.getuid?.() ?? -1;
  const user = inputs.user ?? 'root';
  const path = inputs.path ?? process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin';
  const subuidFile = inputs.subuidFile ?? '/etc/subuid';
  const subgidFile = inputs.subgidFile ?? '/etc/subgid';
  const missing: Missing[] = [];

  if (uid !== 0)
    missing.push({
      what: `not running as root (uid ${uid})`,
      fix: 'run the sandbox host as root (stowage serve / stowage sandbox-host under root or a root systemd unit)',
    });

  const binaries: Record<string, string> = {};
  for (const [name, pkg] of Object.entries(REQUIRED_BINARIES)) {
    const found = findOnPath(name, path);
    if (found) binaries[name] = found;
    else missing.push({ what: `${name} not found on PATH`, fix: `apt-get install ${pkg}` });
  }

  const nsFile = inputs.maxUserNamespacesFile ?? '/proc/sys/user/max_user_namespaces';
  const maxNs = existsSync(nsFile) ? Number(readFileSync(nsFile, 'utf8').trim()) : 0;
  if (!(maxNs > 0)) {
    missing.push({
      what: `user namespaces are disabled (${nsFile}: ${existsSync(nsFile) ? maxNs : 'absent'})`,
      fix: "sysctl -w user.max_user_namespaces=15000, and add 'user.max_user_namespaces = 15000' to /etc/sysctl.d/90-stowage.conf",
    });
  } else if (binaries.unshare) {
    const r = spawnSync(binaries.unshare, ['--user', 'true'], { encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) {
      missing.push({
        what: `creating a user namespace fails: ${(r.stderr || r.error?.message || `exit ${r.status}`).trim()}`,
        fix: 'allow user namespaces for root (kernel built with CONFIG_USER_NS; no LSM policy such as AppArmor restricting unshare)',
      });
    }
  }

  const uids = subordinateRange(subuidFile, user, uid);
  const gids = subordinateRange(subgidFile, user, uid);
  for (const [range, file] of [
    [uids, subuidFile],
    [gids, subgidFile],
  ] as const) {
    if (!range)
      missing.push({
        what: `no subordinate range of at least ${MIN_SUBORDINATE_IDS} ids for ${user} in ${file}`,
        fix: `add the line '${user}:100000:65536' to ${file}`,
      });
  }

  const cg = cgroupSupport(inputs.cgroupRoot ?? '/sys/fs/cgroup');
  if (cg.mode === undefined)
    missing.push({
      what: cg.missing,
      fix: 'boot with cgroup v2 (systemd.unified_cgroup_hierarchy=1, the Debian 12 default) or mount the cpu, memory, pids and freezer v1 controllers',
    });

  if (missing.length > 0 || !uids || !gids || cg.mode === undefined) return { ready: false, missing };
  const count = Math.min(uids.count, gids.count);
  return { ready: true, ids: { hostUid: uids.start, hostGid: gids.start, count }, cgroupMode: cg.mode, binaries };
}

/** The probe's answer as one message: what is missing and how to fix each (for errors of sandbox calls and logs). */
export function describeReadiness(r: HostReadiness): string {
  if (r.ready) return `this host can run sandboxes (cgroup ${r.cgroupMode}, ids ${r.ids.hostUid}+${r.ids.count})`;
  return `this host cannot run sandboxes: ${r.missing.map((m) => `${m.what} (fix: ${m.fix})`).join('; ')}`;
}
