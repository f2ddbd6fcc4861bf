/**
 * @module syscall-table
 * System call numbers of the two architectures a sandbox host runs on, for the
 * calls the seccomp deny-list names (and the few it inspects). Numbers come
 * from the kernel's uapi headers (asm/unistd_64.h for x86_64,
 * asm-generic/unistd.h for aarch64); a call an architecture never had (iopl on
 * aarch64) is simply absent. The numbers of calls added after Linux 5.1 are
 * the same on every architecture (the kernel unified them).
 */

/** An architecture a sandbox host can run on, as Node names it in `process.arch`. */
export type SeccompArch = 'x64' | 'arm64';

/** AUDIT_ARCH_* value the kernel puts in seccomp_data.arch for a call made through that ABI. */
export const AUDIT_ARCH: Readonly<Record<SeccompArch, number>> = {
  x64: 0xc000003e, // AUDIT_ARCH_X86_64 (also carried by x32 calls, told apart by the x32 bit of nr)
  arm64: 0xc00000b7, // AUDIT_ARCH_AARCH64
};

/** On x86_64, calls through the x32 ABI carry this bit in their number. */
export const X32_SYSCALL_BIT = 0x40000000;

const UNIFIED = {
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  clone3: 435,
  mount_setattr: 442,
  quotactl_fd: 443,
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  open_tree_attr: 467, // Linux 6.15: open_tree with mount attributes, one more way to make a mount
} as const;

const X86_64: Record<string, number> = {
  ...UNIFIED,
  ioctl: 16,
  clone: 56,
  ptrace: 101,
  syslog: 103,
  uselib: 134,
  personality: 135,
  ustat: 136,
  sysfs: 139,
  vhangup: 153,
  modify_ldt: 154,
  pivot_root: 155,
  _sysctl: 156,
  adjtimex: 159,
  acct: 163,
  settimeofday: 164,
  mount: 165,
  umount2: 166,
  swapon: 167,
  swapoff: 168,
  reboot: 169,
  iopl: 172,
  ioperm: 173,
  create_module: 174,
  init_module: 175,
  delete_module: 176,
  get_kernel_syms: 177,
  query_module: 178,
  quotactl: 179,
  nfsservctl: 180,
  lookup_dcookie: 212,
  clock_settime: 227,
  kexec_load: 246,
  add_key: 248,
  request_key: 249,
  keyctl: 250,
  unshare: 272,
  perf_event_open: 298,
  fanotify_init: 300,
  name_to_handle_at: 303,
  open_by_handle_at: 304,
  clock_adjtime: 305,
  setns: 308,
  finit_module: 313,
  kexec_file_load: 320,
  bpf: 321,
  userfaultfd: 323,
};

const AARCH64: Record<string, number> = {
  ...UNIFIED,
  lookup_dcookie: 18,
  ioctl: 29,
  umount2: 39,
  mount: 40,
  pivot_root: 41,
  nfsservctl: 42,
  vhangup: 58,
  quotactl: 60,
  acct: 89,
  personality: 92,
  unshare: 97,
  kexec_load: 104,
  init_module: 105,
  delete_module: 106,
  clock_settime: 112,
  syslog: 116,
  ptrace: 117,
  reboot: 142,
  settimeofday: 170,
  adjtimex: 171,
  add_key: 217,
  request_key: 218,
  keyctl: 219,
  clone: 220,
  swapon: 224,
  swapoff: 225,
  perf_event_open: 241,
  fanotify_init: 262,
  name_to_handle_at: 264,
  open_by_handle_at: 265,
  clock_adjtime: 266,
  setns: 268,
  finit_module: 273,
  bpf: 280,
  userfaultfd: 282,
  kexec_file_load: 294,
};

/** Name → number of the calls this module knows, per architecture. */
export const SYSCALLS: Readonly<Record<SeccompArch, Readonly<Record<string, number>>>> = {
  x64: X86_64,
  arm64: AARCH64,
};

/** The architecture of this process as a seccomp architecture, or undefined where the host has none we support. */
export function hostSeccompArch(arch: string = process.arch): SeccompArch | undefined {
  return arch === 'x64' || arch === 'arm64' ? arch : undefined;
}
