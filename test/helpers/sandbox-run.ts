/**
 * Runs a command in a sandbox made by the real recipe (launch-args.ts:
 * unshare into root's subordinate range, then bwrap with the seccomp program
 * on fd 3), synchronously, for tests. The host's root is bound read-only,
 * /tmp is a fresh tmpfs; `binds` add more. Pass `seccomp: 'allow-all'` for a
 * control run under the same recipe with a filter that denies nothing.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sandboxLaunchArgv, type SandboxMount } from '../../src/sandbox/host/launch-args.js';
import { SECCOMP_RET, BPF, sandboxSeccompProgram, serializeSeccomp } from '../../src/sandbox/host/seccomp.js';

/** Root's subordinate range on these hosts (/etc/subuid: root:100000:65536). */
export const TEST_IDS = { hostUid: 100000, hostGid: 100000, count: 65536 };

export interface SandboxRun {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export function sandboxMounts(binds: SandboxMount[] = []): SandboxMount[] {
  return [
    { kind: 'ro-bind', source: '/', target: '/' },
    { kind: 'proc', target: '/proc' },
    { kind: 'dev', target: '/dev' },
    { kind: 'tmpfs', target: '/tmp' },
    ...binds,
  ];
}

export function runInSandbox(
  command: string[],
  opts: {
    seccomp?: 'sandbox' | 'allow-all';
    binds?: SandboxMount[];
    env?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): SandboxRun {
  const dir = mkdtempSync(join(tmpdir(), 'stowage-seccomp-'));
  const file = join(dir, 'filter.bpf');
  const program =
    opts.seccomp === 'allow-all' ? [{ code: BPF.RET_K, jt: 0, jf: 0, k: SECCOMP_RET.ALLOW }] : sandboxSeccompProgram();
  writeFileSync(file, serializeSeccomp(program));
  const fd = openSync(file, 'r');
  try {
    const argv = sandboxLaunchArgv({
      ids: TEST_IDS,
      mounts: sandboxMounts(opts.binds),
      command,
      seccompFd: 3,
      env: opts.env ?? { PATH: '/usr/local/bin:/usr/bin:/bin', HOME: '/tmp', LANG: 'C.UTF-8' },
    });
    const r = spawnSync(argv[0]!, argv.slice(1), {
      stdio: ['ignore', 'pipe', 'pipe', fd],
      encoding: 'utf8',
      timeout: opts.timeoutMs ?? 60_000,
    });
    return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}
