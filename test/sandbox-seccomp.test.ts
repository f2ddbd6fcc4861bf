/**
 * The sandbox seccomp program loaded for real, by bwrap in the launch recipe
 * (as root: unshare into the subordinate range, bwrap --seccomp 3): raw system
 * calls from a compiled probe fail the way the program says, a control run of
 * the same recipe with an allow-all filter shows the filter is what denies
 * them, and ordinary programs (sh, ls, python3, node) still work.
 */
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { dirname } from 'node:path';
import { probeResults, syscallProbe } from './helpers/syscall-probe.js';
import { runInSandbox } from './helpers/sandbox-run.js';
import type { SandboxMount } from '../src/sandbox/host/launch-args.js';

const isRoot = process.getuid?.() === 0;

describe('sandbox seccomp under bwrap', { skip: !isRoot && 'sandboxes need root (CI runs as root)' }, () => {
  let binds: SandboxMount[];
  const probe = (names: string[], seccomp: 'sandbox' | 'allow-all' = 'sandbox') => {
    const r = runInSandbox(['/tmp/probe/probe', ...names], { seccomp, binds });
    return { ...r, results: probeResults(r.stdout) };
  };
  before(() => {
    binds = [{ kind: 'ro-bind', source: dirname(syscallProbe()), target: '/tmp/probe' }];
  });

  it('denies the escape calls with EPERM inside a real sandbox', () => {
    const denied = [
      'mount',
      'umount2',
      'pivot_root',
      'fsopen',
      'open_tree',
      'unshare_user',
      'unshare_ns',
      'unshare_none',
      'clone_newuser',
      'clone_newnet',
      'setns',
      'keyctl',
      'add_key',
      'bpf',
      'perf_event_open',
      'userfaultfd',
      'io_uring_setup',
      'open_by_handle_at',
      'name_to_handle_at',
      'init_module',
      'kexec_load',
      'syslog',
      'reboot',
      'personality_norandom',
      'ioctl_tiocsti',
    ];
    const r = probe(denied);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.results, Object.fromEntries(denied.map((n) => [n, 'EPERM'])));
  });

  // New user namespaces above all: the launch nests none, so this filter is the lock that keeps them out.
  it('the filter is what denies them: the same recipe with an allow-all filter lets them through, new user namespaces included', () => {
    // unshare_user last: once a process is in a new user namespace, what it may do next changes.
    for (const names of [
      ['keyctl', 'add_key', 'io_uring_setup', 'unshare_none', 'personality_norandom', 'unshare_user'],
      ['clone_newuser'],
    ]) {
      const control = probe(names, 'allow-all');
      assert.deepEqual(control.results, Object.fromEntries(names.map((n) => [n, 'ok'])), control.stderr);
      assert.deepEqual(probe(names).results, Object.fromEntries(names.map((n) => [n, 'EPERM'])));
    }
  });

  it('clone3 gets ENOSYS (libc falls back to clone); plain clone, ptrace of a child, other ioctls still work', () => {
    const r = probe([
      'clone3',
      'clone_plain',
      'ptrace_child',
      'ioctl_tiocgptn',
      'personality_query',
      'personality_linux',
      'getpid',
    ]);
    assert.deepEqual(r.results, {
      clone3: 'ENOSYS',
      clone_plain: 'ok',
      ptrace_child: 'ok',
      ioctl_tiocgptn: 'ok',
      personality_query: 'ok',
      personality_linux: 'ok',
      getpid: 'ok',
    });
  });

  it('kills a process that calls through the x32 or i386 ABI (SIGSYS), which the control run survives', {
    skip: process.arch !== 'x64' && 'x86_64 only',
  }, () => {
    for (const abi of ['x32', 'int80']) {
      const r = probe([abi]);
      // bwrap is the sandbox's pid 1 and exits with 128 + the signal that killed its child.
      assert.equal(r.status, 128 + 31, `${abi}: ${JSON.stringify(r)}`);
      assert.equal(r.stdout, '', `${abi} printed before dying`);
      const control = probe([abi], 'allow-all');
      assert.equal(control.status, 0);
      assert.match(control.stdout, new RegExp(`^${abi}=(ok|ENOSYS)`));
    }
  });

  it('util-linux unshare and mount fail with "Operation not permitted"; python ctypes keyctl gets EPERM', () => {
    const r = runInSandbox([
      '/bin/sh',
      '-c',
      'unshare -U true; echo "unshare=$?"; mount -t tmpfs x /tmp; echo "mount=$?"',
    ]);
    assert.match(r.stdout, /unshare=1\nmount=(1|32)\n/);
    assert.match(r.stderr, /unshare failed: Operation not permitted/);
    assert.match(r.stderr, /mount.*(permission denied|Operation not permitted)/i);
    const py = runInSandbox([
      '/usr/bin/python3',
      '-c',
      'import ctypes, os; libc = ctypes.CDLL(None, use_errno=True); r = libc.syscall(250 if os.uname().machine == "x86_64" else 219, 0, -3, 1); print(r, os.strerror(ctypes.get_errno()))',
    ]);
    assert.equal(py.stdout.trim(), '-1 Operation not permitted', py.stderr);
  });

  it('ordinary work runs under the filter: sh and ls, python3 threads and subprocesses, node workers and child processes', () => {
    const sh = runInSandbox(['/bin/sh', '-c', 'ls / >/dev/null && echo hi > /tmp/f && cat /tmp/f']);
    assert.equal(sh.stdout, 'hi\n', sh.stderr);
    const py = runInSandbox([
      '/usr/bin/python3',
      '-c',
      'import threading, subprocess; t = threading.Thread(target=print, args=("thread",)); t.start(); t.join(); print(subprocess.run(["echo", "sub"], capture_output=True, text=True).stdout.strip())',
    ]);
    assert.equal(py.stdout, 'thread\nsub\n', py.stderr);
    const node = runInSandbox([
      process.execPath,
      '-e',
      "const { Worker } = require('node:worker_threads'); const cp = require('node:child_process');" +
        'new Worker(\'require("node:worker_threads").parentPort.postMessage(6 * 7)\', { eval: true })' +
        ".on('message', (m) => { console.log(m, cp.execFileSync('sh', ['-c', 'echo child']).toString().trim()); })",
    ]);
    assert.equal(node.stdout, '42 child\n', node.stderr);
  });
});
