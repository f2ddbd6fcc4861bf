/**
 * A tiny C program, compiled once per test process with the host's gcc, that
 * makes raw system calls by name and prints `name=ok` or `name=EPERM`
 * (errno name) for each: the way to see what a seccomp filter really does,
 * without a libc wrapper or a Python runtime in between (`ptrace_pid:N`
 * attaches to process N). `x32` and `int80`
 * make a call through a foreign ABI (x32, i386 compat): under the sandbox
 * filter the process is killed by SIGSYS before it prints.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const SOURCE = String.raw`
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static long clone_flags(unsigned long flags) {
  long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
  if (pid == 0) _exit(0);
  if (pid > 0) waitpid(pid, 0, 0);
  return pid < 0 ? -1 : 0;
}

static long run(const char *n) {
  char buf[64] = {0};
  if (!strcmp(n, "getpid")) return syscall(SYS_getpid) > 0 ? 0 : -1;
  if (!strcmp(n, "mount")) return syscall(SYS_mount, "none", "/tmp", "tmpfs", 0, "");
  if (!strcmp(n, "umount2")) return syscall(SYS_umount2, "/tmp", MNT_DETACH);
  if (!strcmp(n, "pivot_root")) return syscall(SYS_pivot_root, "/tmp", "/tmp");
  if (!strcmp(n, "fsopen")) return syscall(430, "tmpfs", 0);
  if (!strcmp(n, "open_tree")) return syscall(428, AT_FDCWD, "/tmp", 1 /* OPEN_TREE_CLONE */);
  if (!strcmp(n, "unshare_user")) return syscall(SYS_unshare, CLONE_NEWUSER);
  if (!strcmp(n, "unshare_ns")) return syscall(SYS_unshare, CLONE_NEWNS);
  if (!strcmp(n, "unshare_none")) return syscall(SYS_unshare, 0);
  if (!strcmp(n, "clone_plain")) return clone_flags(0);
  if (!strcmp(n, "clone_newuser")) return clone_flags(CLONE_NEWUSER);
  if (!strcmp(n, "clone_newnet")) return clone_flags(CLONE_NEWNET);
  if (!strcmp(n, "clone3")) return syscall(435, 0, 0);
  if (!strcmp(n, "setns")) { int fd = open("/proc/self/ns/uts", O_RDONLY); return syscall(SYS_setns, fd, 0); }
  if (!strcmp(n, "keyctl")) return syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* SESSION */, 1);
  if (!strcmp(n, "add_key")) return syscall(SYS_add_key, "user", "stowage-probe", "x", 1, -3);
  if (!strcmp(n, "bpf")) return syscall(SYS_bpf, 0, buf, sizeof buf);
  if (!strcmp(n, "perf_event_open")) return syscall(SYS_perf_event_open, buf, 0, -1, -1, 0);
  if (!strcmp(n, "userfaultfd")) return syscall(SYS_userfaultfd, 0);
  if (!strcmp(n, "io_uring_setup")) return syscall(425, 1, buf);
  if (!strcmp(n, "open_by_handle_at")) return syscall(SYS_open_by_handle_at, AT_FDCWD, buf, 0);
  if (!strcmp(n, "name_to_handle_at")) { int m; return syscall(SYS_name_to_handle_at, AT_FDCWD, "/", buf, &m, 0); }
  if (!strcmp(n, "init_module")) return syscall(SYS_init_module, buf, 0, "");
  if (!strcmp(n, "kexec_load")) return syscall(SYS_kexec_load, 0, 0, 0, 0);
  if (!strcmp(n, "syslog")) return syscall(SYS_syslog, 10 /* SIZE_BUFFER */, 0, 0);
  if (!strcmp(n, "reboot")) return syscall(SYS_reboot, 0, 0, 0, 0);
  if (!strcmp(n, "personality_query")) return syscall(SYS_personality, 0xffffffffUL) < 0 ? -1 : 0;
  if (!strcmp(n, "personality_linux")) return syscall(SYS_personality, 0UL) < 0 ? -1 : 0;
  if (!strcmp(n, "personality_norandom")) return syscall(SYS_personality, (unsigned long)ADDR_NO_RANDOMIZE) < 0 ? -1 : 0;
  if (!strcmp(n, "ioctl_tiocsti")) { int fd = open("/dev/ptmx", O_RDWR | O_NOCTTY); char c = 'x'; return syscall(SYS_ioctl, fd, TIOCSTI, &c); }
  if (!strcmp(n, "ioctl_tiocgptn")) { int fd = open("/dev/ptmx", O_RDWR | O_NOCTTY); unsigned int p; return syscall(SYS_ioctl, fd, TIOCGPTN, &p); }
  if (!strcmp(n, "ptrace_child")) {
    pid_t pid = fork();
    if (pid == 0) { pause(); _exit(0); }
    long r = syscall(SYS_ptrace, PTRACE_ATTACH_NR, pid, 0, 0);
    int e = errno;
    kill(pid, SIGKILL); waitpid(pid, 0, 0);
    errno = e;
    return r;
  }
  if (!strncmp(n, "ptrace_pid:", 11)) {
    pid_t pid = atoi(n + 11);
    long r = syscall(SYS_ptrace, PTRACE_ATTACH_NR, pid, 0, 0);
    if (r == 0) { int e = errno; waitpid(pid, 0, __WALL); syscall(SYS_ptrace, 17 /* DETACH */, pid, 0, 0); errno = e; }
    return r;
  }
#if defined(__x86_64__)
  if (!strcmp(n, "x32")) return syscall(0x40000000 | 39 /* x32 getpid */);
  if (!strcmp(n, "int80")) { long r; __asm__ volatile("int $0x80" : "=a"(r) : "a"(20) /* i386 getpid */ : "memory"); return r < 0 ? (errno = -r, -1) : 0; }
#endif
  errno = EINVAL;
  fprintf(stderr, "unknown probe %s\n", n);
  return -1;
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    errno = 0;
    long r = run(argv[i]);
    if (r < 0) printf("%s=%s\n", argv[i], strerrorname_np(errno));
    else printf("%s=ok\n", argv[i]);
    fflush(stdout);
  }
  return 0;
}
`.replaceAll('PTRACE_ATTACH_NR', '16');

let built: string | undefined;

/** Path of the compiled probe (built on first use; gcc comes with the host's setup). */
export function syscallProbe(): string {
  if (built) return built;
  const dir = mkdtempSync(join(tmpdir(), 'stowage-probe-'));
  // The sandbox's root is an unprivileged host uid: it must be able to reach the binary.
  chmodSync(dir, 0o755);
  writeFileSync(join(dir, 'probe.c'), SOURCE);
  execFileSync('gcc', ['-O1', '-o', join(dir, 'probe'), join(dir, 'probe.c')], { stdio: 'pipe' });
  built = join(dir, 'probe');
  return built;
}

/** Parses the probe's `name=result` lines. */
export function probeResults(stdout: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}
