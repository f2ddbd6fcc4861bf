/**
 * The generated seccomp program, decoded from its serialized bytes and run by
 * a small classic-BPF interpreter (the subset the kernel's seccomp checker
 * accepts): what each call gets, on both architectures. Real runs under bwrap
 * are in test/sandbox-seccomp.test.ts.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ALLOWED_PERSONALITIES,
  BPF,
  CLONE_NEW_FLAGS,
  DENIED_SYSCALLS,
  ENOSYS,
  EPERM,
  SECCOMP_RET,
  decodeSeccomp,
  sandboxSeccompProgram,
  serializeSeccomp,
  type SockFilter,
} from './seccomp.js';
import { AUDIT_ARCH, SYSCALLS, X32_SYSCALL_BIT, type SeccompArch } from './syscall-table.js';

interface Call {
  nr: number;
  arch: number;
  args?: bigint[];
}

/** Runs a seccomp program on one call the way the kernel does: A register, absolute word loads, forward jumps. */
function run(program: readonly SockFilter[], call: Call): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(call.nr, 0);
  data.writeUInt32LE(call.arch, 4);
  for (const [i, a] of (call.args ?? []).entries()) data.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i);
  let A = 0;
  for (let pc = 0; pc < program.length; pc++) {
    const { code, jt, jf, k } = program[pc]!;
    switch (code) {
      case BPF.LD_W_ABS:
        assert.ok(k % 4 === 0 && k + 4 <= 64, `load at ${k} is outside seccomp_data`);
        A = data.readUInt32LE(k);
        break;
      case BPF.JEQ_K:
        pc += A === k ? jt : jf;
        break;
      case BPF.JGE_K:
        pc += A >= k ? jt : jf;
        break;
      case BPF.JSET_K:
        pc += (A & k) >>> 0 ? jt : jf;
        break;
      case BPF.RET_K:
        return k;
      default:
        assert.fail(`unknown opcode ${code} at ${pc}`);
    }
  }
  return assert.fail('the program ran off its end (the kernel refuses such a program)');
}

const ARCHES: SeccompArch[] = ['x64', 'arm64'];
const eperm = SECCOMP_RET.ERRNO | EPERM;

function programOf(arch: SeccompArch): SockFilter[] {
  // Through the bytes bwrap reads, so the serialization is under test too.
  return decodeSeccomp(serializeSeccomp(sandboxSeccompProgram(arch)));
}

for (const arch of ARCHES) {
  const table = SYSCALLS[arch];
  const native = AUDIT_ARCH[arch];
  const call = (name: string, ...args: (number | bigint)[]): number =>
    run(programOf(arch), { nr: table[name]!, arch: native, args: args.map((a) => BigInt(a)) });

  describe(`sandbox seccomp program (${arch})`, () => {
    it('fits the kernel limits: at most 4096 instructions, every jump inside the program', () => {
      const p = programOf(arch);
      assert.ok(p.length > 20 && p.length <= 4096, `length ${p.length}`);
      p.forEach((i, pc) => {
        if (i.code !== BPF.RET_K && i.code !== BPF.LD_W_ABS)
          assert.ok(pc + 1 + Math.max(i.jt, i.jf) < p.length, `jump out at ${pc}`);
      });
      assert.equal(p[p.length - 1]!.code, BPF.RET_K);
    });

    it('denies every listed call that exists on the architecture with EPERM', () => {
      const names = DENIED_SYSCALLS.flatMap((d) => d.names).filter((n) => table[n] !== undefined);
      assert.ok(names.length >= 40, `only ${names.length} denied on ${arch}`);
      for (const n of names) assert.equal(call(n), eperm, n);
      for (const n of [
        'mount',
        'unshare',
        'setns',
        'keyctl',
        'bpf',
        'perf_event_open',
        'open_by_handle_at',
        'kexec_load',
      ]) {
        assert.equal(call(n), eperm, `${n} must be denied`);
      }
    });

    it('allows ordinary work: read, write, execve, ptrace, plain fork-style clone, mmap', () => {
      const allowed = ['ptrace'];
      for (const n of allowed) assert.equal(call(n), SECCOMP_RET.ALLOW, n);
      // Numbers of read/write/execve/mmap: not in the table (nothing inspects them), taken from the uapi headers.
      const ordinary = arch === 'x64' ? [0, 1, 9, 59, 257] : [63, 64, 222, 221, 56];
      for (const nr of ordinary)
        assert.equal(run(programOf(arch), { nr, arch: native }), SECCOMP_RET.ALLOW, `nr ${nr}`);
      assert.equal(
        call('clone', 0x11 /* SIGCHLD */ | 0x01200000 /* CHILD_SETTID|CHILD_CLEARTID: glibc fork */),
        SECCOMP_RET.ALLOW,
      );
      assert.equal(call('clone', 0x003d0f00 /* glibc pthread_create flags */), SECCOMP_RET.ALLOW);
    });

    it('denies clone with any namespace flag, whatever the other bits, and clone3 with ENOSYS', () => {
      for (let bit = 0; bit < 32; bit++) {
        const flag = 2 ** bit;
        if ((CLONE_NEW_FLAGS & flag) === 0) continue;
        assert.equal(call('clone', flag | 0x11), eperm, `clone flag 0x${flag.toString(16)}`);
        assert.equal(call('clone', (0xffffffffn << 32n) | BigInt(flag)), eperm, 'high bits do not hide the flag');
      }
      assert.equal(call('clone', 0x10000000 /* NEWUSER */), eperm);
      assert.equal(call('clone3'), SECCOMP_RET.ERRNO | ENOSYS);
    });

    it('allows only the default personalities', () => {
      for (const v of ALLOWED_PERSONALITIES)
        assert.equal(call('personality', v), SECCOMP_RET.ALLOW, `0x${v.toString(16)}`);
      for (const v of [
        0x0040000 /* ADDR_NO_RANDOMIZE */, 0x0400000 /* READ_IMPLIES_EXEC */, 0x0008000, 0x1, 0xfffffffe,
      ]) {
        assert.equal(call('personality', v), eperm, `0x${v.toString(16)}`);
      }
    });

    it('denies ioctl TIOCSTI and TIOCLINUX and allows other ioctls', () => {
      assert.equal(call('ioctl', 0, 0x5412), eperm);
      assert.equal(call('ioctl', 7, 0x541c), eperm);
      assert.equal(
        call('ioctl', 0, (1n << 32n) | 0x5412n),
        eperm,
        'the kernel truncates the request to 32 bits, and so does the check',
      );
      assert.equal(call('ioctl', 0, 0x5401 /* TCGETS */), SECCOMP_RET.ALLOW);
      assert.equal(call('ioctl', 3, 0x80045430 /* TIOCGPTN */), SECCOMP_RET.ALLOW);
    });

    it('kills a call made through a foreign ABI: another arch value, or x32 numbers on x86_64', () => {
      for (const foreign of [
        0x40000003 /* I386 */,
        0x40000028 /* ARM */,
        native === AUDIT_ARCH.x64 ? AUDIT_ARCH.arm64 : AUDIT_ARCH.x64,
      ]) {
        assert.equal(run(programOf(arch), { nr: 39, arch: foreign }), SECCOMP_RET.KILL_PROCESS);
      }
      if (arch === 'x64') {
        assert.equal(run(programOf(arch), { nr: X32_SYSCALL_BIT | 39, arch: native }), SECCOMP_RET.KILL_PROCESS);
        assert.equal(
          run(programOf(arch), { nr: X32_SYSCALL_BIT | 165 /* mount */, arch: native }),
          SECCOMP_RET.KILL_PROCESS,
        );
      }
    });
  });
}

describe('sandbox seccomp serialization', () => {
  it('writes 8 bytes per instruction, little-endian, and decodes back to the same program', () => {
    const p = sandboxSeccompProgram('x64');
    const bytes = serializeSeccomp(p);
    assert.equal(bytes.length, p.length * 8);
    // The first instruction loads the arch word: code 0x20, jt 0, jf 0, k 4.
    assert.deepEqual([...bytes.subarray(0, 8)], [0x20, 0, 0, 0, 4, 0, 0, 0]);
    assert.deepEqual(decodeSeccomp(bytes), p);
    assert.throws(() => decodeSeccomp(bytes.subarray(0, 12)), /multiple of 8/);
  });

  it('refuses a host architecture it has no table for', () => {
    assert.throws(() => sandboxSeccompProgram('ia32'), /x86_64 or aarch64/);
  });
});
