/**
 * @module seccomp
 * The seccomp deny-list every sandbox process runs under, generated here as a
 * classic-BPF program (no libseccomp at run time) and serialized as the raw
 * `struct sock_filter` array that `bwrap --seccomp FD` reads.
 *
 * Vocabulary: a *program* is a list of instructions run by the kernel on each
 * system call with `struct seccomp_data` (nr at offset 0, arch at 4, the six
 * 64-bit arguments from 16) as its packet; its return value is the action.
 *
 * What it does, in order:
 *  1. a call through a foreign ABI (i386 `int 0x80` or x32 on x86_64, arm32 on
 *     aarch64) kills the process: the deny-list below is written in native
 *     numbers, and a compat table would let every denied call through;
 *  2. the calls of DENIED_SYSCALLS fail with EPERM;
 *  3. clone with any CLONE_NEW* flag fails with EPERM (a new user namespace
 *     would give back every capability the sandbox was built without: this
 *     filter is what stops it, the launch does not nest one);
 *     clone3 fails with ENOSYS, because BPF cannot read its flags (they sit in
 *     a struct in memory) and libcs fall back to clone on ENOSYS;
 *  4. personality() is allowed only for the values Docker's default profile
 *     allows (query, PER_LINUX, PER_LINUX32, UNAME26): ADDR_NO_RANDOMIZE and
 *     READ_IMPLIES_EXEC would weaken the sandbox's own exploit defences;
 *  5. ioctl TIOCSTI / TIOCLINUX fail with EPERM (pushing keystrokes into a
 *     terminal the sandbox shares with someone else);
 *  6. everything else is allowed.
 *
 * ptrace is NOT denied: debuggers, strace and profilers inside the sandbox
 * trace the sandbox's own processes, in its own pid namespace. The agent is
 * protected differently (see launch-args.ts): the workloads run without
 * CAP_SYS_PTRACE and the agent makes itself non-dumpable, so the kernel refuses
 * to let them trace it or read its /proc files.
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AUDIT_ARCH, SYSCALLS, X32_SYSCALL_BIT, hostSeccompArch } from './syscall-table.js';
import { InvalidArgumentError } from '@stowage/sdk/common/errors.js';

/** One classic-BPF instruction (struct sock_filter). */
export interface SockFilter {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** Opcodes used here (linux/filter.h). */
export const BPF = {
  LD_W_ABS: 0x20, // A = packet[k] (32 bits)
  JEQ_K: 0x15, // pc += (A == k) ? jt : jf
  JGE_K: 0x35, // pc += (A >= k) ? jt : jf
  JSET_K: 0x45, // pc += (A & k) ? jt : jf
  RET_K: 0x06, // return k
} as const;

/** Seccomp return actions (linux/seccomp.h). */
export const SECCOMP_RET = {
  KILL_PROCESS: 0x80000000,
  ERRNO: 0x00050000, // | errno in the low 16 bits
  ALLOW: 0x7fff0000,
} as const;

export const EPERM = 1;
export const ENOSYS = 38;

/** Offsets in struct seccomp_data; an argument's low 32 bits (both supported arches are little-endian). */
const NR = 0;
const ARCH = 4;
const argLow = (i: number) => 16 + 8 * i;

/** The calls denied outright with EPERM, each with why (docs/sandboxes.md lists the same reasons). */
export const DENIED_SYSCALLS: readonly { names: readonly string[]; why: string }[] = [
  {
    names: [
      'mount',
      'umount2',
      'pivot_root',
      'move_mount',
      'open_tree',
      'open_tree_attr',
      'fsopen',
      'fsconfig',
      'fsmount',
      'fspick',
      'mount_setattr',
    ],
    why: 'changing the mount tree could uncover or replace what the sandbox was given',
  },
  { names: ['unshare', 'setns'], why: 'new or other namespaces (a new user namespace gives back every capability)' },
  { names: ['keyctl', 'add_key', 'request_key'], why: 'the kernel keyring is not namespaced' },
  {
    names: ['bpf', 'perf_event_open', 'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'io_uring_register'],
    why: 'large kernel attack surfaces, the source of many escapes (libuv falls back from io_uring)',
  },
  {
    names: [
      'kexec_load',
      'kexec_file_load',
      'init_module',
      'finit_module',
      'delete_module',
      'create_module',
      'get_kernel_syms',
      'query_module',
      'reboot',
    ],
    why: 'the kernel itself',
  },
  {
    names: [
      'swapon',
      'swapoff',
      'acct',
      'quotactl',
      'quotactl_fd',
      'syslog',
      'vhangup',
      'fanotify_init',
      'nfsservctl',
      'lookup_dcookie',
    ],
    why: 'host-wide administration; syslog leaks kernel addresses',
  },
  {
    names: ['open_by_handle_at', 'name_to_handle_at'],
    why: 'opening a file by handle bypasses the mount namespace (the "shocker" escape)',
  },
  { names: ['settimeofday', 'clock_settime', 'clock_adjtime'], why: 'the clock is not namespaced' },
  {
    names: ['iopl', 'ioperm', 'modify_ldt', 'uselib', 'ustat', 'sysfs', '_sysctl'],
    why: 'x86 port I/O and LDT, obsolete calls with a history of bugs',
  },
];

/** The clone flags that make a namespace: any of them in clone's flags is refused. */
export const CLONE_NEW_FLAGS =
  0x00020000 /* NEWNS */ |
  0x02000000 /* NEWCGROUP */ |
  0x04000000 /* NEWUTS */ |
  0x08000000 /* NEWIPC */ |
  0x10000000 /* NEWUSER */ |
  0x20000000 /* NEWPID */ |
  0x40000000; /* NEWNET */

/** personality() values allowed (Docker's default profile): PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, query. */
export const ALLOWED_PERSONALITIES: readonly number[] = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** ioctl requests refused: TIOCSTI (push input into a terminal) and TIOCLINUX (the same through the VT console). */
export const DENIED_IOCTLS: readonly number[] = [0x5412, 0x541c];

type Label = { label: string };
type Insn = SockFilter | { code: number; jt: number | string; jf: number | string; k: number } | Label;

const ld = (k: number): SockFilter => ({ code: BPF.LD_W_ABS, jt: 0, jf: 0, k });
const ret = (k: number): SockFilter => ({ code: BPF.RET_K, jt: 0, jf: 0, k });
const jmp = (code: number, k: number, jt: number | string, jf: number | string) => ({ code, jt, jf, k });

/**
 * Resolves label jumps into relative offsets (classic BPF only jumps forward,
 * at most 255 instructions): a program that cannot be encoded is an error here,
 * never a silently wrong filter.
 */
function assemble(insns: Insn[]): SockFilter[] {
  const at = new Map<string, number>();
  let pc = 0;
  for (const i of insns) {
    if ('label' in i) at.set(i.label, pc);
    else pc++;
  }
  const out: SockFilter[] = [];
  for (const i of insns) {
    if ('label' in i) continue;
    const rel = (t: number | string) => {
      if (typeof t === 'number') return t;
      const target = at.get(t);
      if (target === undefined) throw new Error(`seccomp: no label ${t}`);
      const off = target - out.length - 1;
      if (off < 0 || off > 255) throw new Error(`seccomp: jump to ${t} out of range (${off})`);
      return off;
    };
    out.push({ code: i.code, jt: rel(i.jt), jf: rel(i.jf), k: i.k >>> 0 });
  }
  return out;
}

/**
 * The sandbox's seccomp program for one architecture (a Node `process.arch` name: x64 or arm64).
 * @example writeFileSync(path, serializeSeccomp(sandboxSeccompProgram()))
 */
export function sandboxSeccompProgram(nodeArch: string = process.arch): SockFilter[] {
  const arch = hostSeccompArch(nodeArch);
  if (arch === undefined)
    throw new InvalidArgumentError(`sandboxes need an x86_64 or aarch64 host; this one is ${nodeArch}`);
  const table = SYSCALLS[arch];
  const nr = (name: string) => table[name];
  const errno = (e: number) => SECCOMP_RET.ERRNO | e;
  const p: Insn[] = [ld(ARCH), jmp(BPF.JEQ_K, AUDIT_ARCH[arch], 1, 0), ret(SECCOMP_RET.KILL_PROCESS), ld(NR)];
  // x32 calls carry AUDIT_ARCH_X86_64 too: only their number tells them apart.
  if (arch === 'x64') p.push(jmp(BPF.JGE_K, X32_SYSCALL_BIT, 'kill', 0));
  for (const name of DENIED_SYSCALLS.flatMap((d) => d.names)) {
    const n = nr(name);
    if (n !== undefined) p.push(jmp(BPF.JEQ_K, n, 'eperm', 0));
  }
  p.push(jmp(BPF.JEQ_K, nr('clone3')!, 'enosys', 0));
  p.push(jmp(BPF.JEQ_K, nr('clone')!, 'clone', 0));
  p.push(jmp(BPF.JEQ_K, nr('personality')!, 'personality', 0));
  p.push(jmp(BPF.JEQ_K, nr('ioctl')!, 'ioctl', 0));
  p.push(ret(SECCOMP_RET.ALLOW));
  // clone(flags, ...): flags are the first argument on both arches; the kernel reads only their low 32 bits.
  p.push({ label: 'clone' }, ld(argLow(0)), jmp(BPF.JSET_K, CLONE_NEW_FLAGS, 'eperm', 'allow'));
  p.push({ label: 'personality' }, ld(argLow(0)));
  for (const v of ALLOWED_PERSONALITIES) p.push(jmp(BPF.JEQ_K, v, 'allow', 0));
  p.push(ret(errno(EPERM)));
  p.push({ label: 'ioctl' }, ld(argLow(1)));
  for (const v of DENIED_IOCTLS) p.push(jmp(BPF.JEQ_K, v, 'eperm', 0));
  p.push({ label: 'allow' }, ret(SECCOMP_RET.ALLOW));
  p.push({ label: 'eperm' }, ret(errno(EPERM)));
  p.push({ label: 'enosys' }, ret(errno(ENOSYS)));
  p.push({ label: 'kill' }, ret(SECCOMP_RET.KILL_PROCESS));
  return assemble(p);
}

/** The program as bwrap's `--seccomp FD` reads it: struct sock_filter[] in host (little-endian) byte order. */
export function serializeSeccomp(program: readonly SockFilter[]): Buffer {
  const buf = Buffer.alloc(program.length * 8);
  program.forEach((i, n) => {
    buf.writeUInt16LE(i.code, n * 8);
    buf.writeUInt8(i.jt, n * 8 + 2);
    buf.writeUInt8(i.jf, n * 8 + 3);
    buf.writeUInt32LE(i.k >>> 0, n * 8 + 4);
  });
  return buf;
}

/** The inverse of serializeSeccomp (for tests and for inspecting a program file). */
export function decodeSeccomp(buf: Buffer): SockFilter[] {
  if (buf.length % 8 !== 0)
    throw new InvalidArgumentError(`a seccomp program is a multiple of 8 bytes, not ${buf.length}`);
  const out: SockFilter[] = [];
  for (let o = 0; o < buf.length; o += 8) {
    out.push({
      code: buf.readUInt16LE(o),
      jt: buf.readUInt8(o + 2),
      jf: buf.readUInt8(o + 3),
      k: buf.readUInt32LE(o + 4),
    });
  }
  return out;
}

/** A seccomp program in a file open for reading: bwrap's `--seccomp FD` reads it from a descriptor. */
export interface SeccompFile {
  fd: number;
  /** Closes the descriptor and removes the file (the program was read at start). */
  close(): void;
}

/** Writes `program` (default: the sandbox's) to a private temp file and opens it. */
export function openSeccompFile(program: readonly SockFilter[] = sandboxSeccompProgram()): SeccompFile {
  const dir = mkdtempSync(join(tmpdir(), 'stowage-seccomp-'));
  const file = join(dir, 'filter.bpf');
  writeFileSync(file, serializeSeccomp(program), { mode: 0o600 });
  const fd = openSync(file, 'r');
  return {
    fd,
    close: () => {
      closeSync(fd);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
