/**
 * The launch argv: the recipe's fixed isolation flags are always there, the
 * mounts come in order, and hostile specs (host root as the sandbox's uid,
 * relative or '..' paths, NUL bytes, option-looking values, a bad fd) are
 * refused before anything runs. Real launches: test/sandbox-isolation.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { KEPT_CAPABILITIES, sandboxLaunchArgv, type LaunchSpec } from './launch-args.js';

const base: LaunchSpec = {
  ids: { hostUid: 100000, hostGid: 100000, count: 65536 },
  mounts: [
    { kind: 'ro-bind', source: '/srv/images/debian', target: '/' },
    { kind: 'proc', target: '/proc' },
    { kind: 'dev', target: '/dev' },
    { kind: 'tmpfs', target: '/tmp', sizeBytes: 1 << 20 },
    { kind: 'bind', source: '/var/lib/stowage/mounts/v1', target: '/mnt/data' },
  ],
  command: ['/bin/sh', '-c', 'echo hi'],
  seccompFd: 3,
};

describe('sandbox launch argv', () => {
  it('maps the sandbox into the range, keeps the isolation flags, mounts in order, the command after --', () => {
    const argv = sandboxLaunchArgv({
      ...base,
      hostname: 'sb-1',
      cwd: '/root',
      env: { PATH: '/usr/bin', HOME: '/root' },
    });
    assert.deepEqual(argv.slice(0, 9), [
      'unshare',
      '--user',
      '--map-users=100000,0,65536',
      '--map-groups=100000,0,65536',
      '--setuid',
      '0',
      '--setgid',
      '0',
      '--',
    ]);
    assert.equal(argv[9], 'bwrap');
    for (const flag of [
      '--unshare-ipc',
      '--unshare-pid',
      '--unshare-net',
      '--unshare-uts',
      '--unshare-cgroup',
      '--new-session',
      '--die-with-parent',
    ]) {
      assert.ok(argv.includes(flag), flag);
    }
    assert.ok(
      !argv.includes('--unshare-user') && !argv.includes('--unshare-all'),
      'no nested single-uid user namespace',
    );
    const caps: string[] = argv.flatMap((a, i) => (a === '--cap-add' ? [argv[i + 1]!] : []));
    assert.deepEqual(caps, [...KEPT_CAPABILITIES]);
    for (const cap of ['CAP_SYS_ADMIN', 'CAP_SYS_PTRACE']) assert.ok(!argv.includes(cap), cap);
    assert.ok(argv.indexOf('--cap-drop') < argv.indexOf('--cap-add'), 'drop ALL first');
    const tail = argv.slice(argv.indexOf('--ro-bind'));
    assert.deepEqual(tail, [
      '--ro-bind',
      '/srv/images/debian',
      '/',
      '--proc',
      '/proc',
      '--dev',
      '/dev',
      '--size',
      String(1 << 20),
      '--tmpfs',
      '/tmp',
      '--bind',
      '/var/lib/stowage/mounts/v1',
      '/mnt/data',
      '--hostname',
      'sb-1',
      '--chdir',
      '/root',
      '--clearenv',
      '--setenv',
      'PATH',
      '/usr/bin',
      '--setenv',
      'HOME',
      '/root',
      '--seccomp',
      '3',
      '--',
      '/bin/sh',
      '-c',
      'echo hi',
    ]);
  });

  it('a command that looks like an option stays the command', () => {
    const argv = sandboxLaunchArgv({ ...base, command: ['--bind', '/', '/host'] });
    assert.deepEqual(argv.slice(-4), ['--', '--bind', '/', '/host']);
  });

  it('refuses host root or nonsense as the id range, and a seccomp fd of 0-2', () => {
    const bad: Partial<LaunchSpec>[] = [
      { ids: { hostUid: 0, hostGid: 100000, count: 65536 } },
      { ids: { hostUid: 100000, hostGid: 0, count: 65536 } },
      { ids: { hostUid: 100000, hostGid: 100000, count: 0 } },
      { ids: { hostUid: -5, hostGid: 100000, count: 10 } },
      { ids: { hostUid: 1.5, hostGid: 100000, count: 10 } },
      { ids: { hostUid: Number.NaN, hostGid: 100000, count: 10 } },
      { seccompFd: 0 },
      { seccompFd: 2 },
      { command: [] },
    ];
    for (const b of bad)
      assert.throws(
        () => sandboxLaunchArgv({ ...base, ...b }),
        (e: Error & { code?: string }) => e.code === 'InvalidArgument',
        JSON.stringify(b),
      );
  });

  it('refuses relative, non-normalised and NUL-carrying paths, bad host names and environment names', () => {
    for (const target of ['mnt', '/mnt/../etc', '/mnt//x', '/mnt/', '/mnt/\0x', '']) {
      assert.throws(
        () => sandboxLaunchArgv({ ...base, mounts: [{ kind: 'tmpfs', target }] }),
        /absolute, normalised/,
        JSON.stringify(target),
      );
      assert.throws(
        () => sandboxLaunchArgv({ ...base, mounts: [{ kind: 'bind', source: target, target: '/x' }] }),
        /absolute, normalised/,
      );
    }
    assert.throws(() => sandboxLaunchArgv({ ...base, cwd: '../x' }), /cwd/);
    for (const hostname of ['-x', 'a b', 'x'.repeat(64), '--bind'])
      assert.throws(() => sandboxLaunchArgv({ ...base, hostname }), /host name/);
    for (const env of <Record<string, string>[]>[{ 'A=B': 'x' }, { '': 'x' }, { '--setenv': 'x' }, { OK: 'nul\0' }]) {
      assert.throws(() => sandboxLaunchArgv({ ...base, env }), /environment variable/, JSON.stringify(env));
    }
    assert.throws(
      () => sandboxLaunchArgv({ ...base, mounts: [{ kind: 'tmpfs', target: '/tmp', sizeBytes: 0 }] }),
      /sizeBytes/,
    );
  });
});
