/*
 * stowage-pty: runs a command on a new pseudo-terminal and relays its bytes.
 *
 *   stowage-pty ROWS COLS -- COMMAND [ARG...]
 *
 * The sandbox agent runs commands asked for with `pty` through this relay
 * (Node has no openpty). The command gets the terminal's slave side as its
 * stdin, stdout, stderr and controlling terminal, in a session of its own.
 * The relay copies its own stdin to the terminal and the terminal to its own
 * stdout, reads "ROWS COLS\n" lines on fd 3 to resize the terminal (the
 * command gets SIGWINCH from the kernel), and when the command ends exits the
 * same way: with its exit code, or by the signal that killed it.
 *
 * SIGTERM, SIGINT and SIGHUP sent to the relay are passed on to the
 * command's process group; if the relay dies, the command gets SIGKILL
 * (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static pid_t child = -1;

static void forward(int sig) {
  if (child > 0) kill(-child, sig);
}

static int parse_size(const char *s, unsigned short *out) {
  char *end;
  long v = strtol(s, &end, 10);
  if (*s == '\0' || *end != '\0' || v < 1 || v > 10000) return -1;
  *out = (unsigned short)v;
  return 0;
}

/* Writes all of buf; returns -1 when the other side is gone. */
static int write_all(int fd, const char *buf, ssize_t n) {
  while (n > 0) {
    ssize_t w = write(fd, buf, (size_t)n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    buf += w;
    n -= w;
  }
  return 0;
}

int main(int argc, char **argv) {
  struct winsize ws = {0};
  if (argc < 5 || strcmp(argv[3], "--") != 0 || parse_size(argv[1], &ws.ws_row) || parse_size(argv[2], &ws.ws_col)) {
    fprintf(stderr, "usage: stowage-pty ROWS COLS -- COMMAND [ARG...]\n");
    return 125;
  }
  /* fd 3 is the resize channel when the caller gave one; otherwise hold it, so the terminal does not land there. */
  int ctl_open = fcntl(3, F_GETFD) != -1;
  if (!ctl_open) {
    int nul = open("/dev/null", O_RDONLY);
    if (nul >= 0 && nul != 3) {
      dup2(nul, 3);
      close(nul);
    }
  }
  int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) {
    perror("stowage-pty: cannot open a pseudo-terminal");
    return 125;
  }
  const char *slave_name = ptsname(master);
  if (!slave_name) {
    perror("stowage-pty: ptsname");
    return 125;
  }
  pid_t parent = getpid();
  child = fork();
  if (child < 0) {
    perror("stowage-pty: fork");
    return 125;
  }
  if (child == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(125);
    setsid();
    int slave = open(slave_name, O_RDWR);
    if (slave < 0) {
      perror("stowage-pty: cannot open the terminal");
      _exit(125);
    }
    ioctl(slave, TIOCSCTTY, 0);
    ioctl(slave, TIOCSWINSZ, &ws); /* set on the slave: its first open may reset what the master set */
    dup2(slave, 0);
    dup2(slave, 1);
    dup2(slave, 2);
    if (slave > 2) close(slave);
    close(3);
    signal(SIGPIPE, SIG_DFL);
    execvp(argv[4], argv + 4);
    fprintf(stderr, "stowage-pty: cannot run %s: %s\n", argv[4], strerror(errno));
    _exit(errno == ENOENT ? 127 : 126);
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa = {0};
  sa.sa_handler = forward;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGHUP, &sa, NULL);

  char buf[65536];
  char ctl[256];
  size_t ctl_len = 0;
  int in_open = 1;
  for (;;) {
    struct pollfd fds[3] = {
        {.fd = master, .events = POLLIN},
        {.fd = in_open ? 0 : -1, .events = POLLIN},
        {.fd = ctl_open ? 3 : -1, .events = POLLIN},
    };
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(master, buf, sizeof buf);
      if (n > 0) {
        if (write_all(1, buf, n) < 0) forward(SIGHUP);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else {
        break; /* EIO: every slave descriptor is closed, the command is done with the terminal */
      }
    }
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(0, buf, sizeof buf);
      if (n > 0) {
        write_all(master, buf, n);
      } else if (n == 0 || (n < 0 && errno != EINTR)) {
        /* End of input: the terminal's end-of-file character, as a user's ^D would. */
        char eof = 4;
        write_all(master, &eof, 1);
        in_open = 0;
      }
    }
    if (fds[2].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t n = read(3, ctl + ctl_len, sizeof ctl - 1 - ctl_len);
      if (n <= 0) {
        ctl_open = 0;
      } else {
        ctl_len += (size_t)n;
        char *nl;
        while ((nl = memchr(ctl, '\n', ctl_len)) != NULL) {
          *nl = '\0';
          unsigned rows, cols;
          if (sscanf(ctl, "%u %u", &rows, &cols) == 2 && rows >= 1 && rows <= 10000 && cols >= 1 && cols <= 10000) {
            struct winsize nws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
            ioctl(master, TIOCSWINSZ, &nws);
          }
          size_t used = (size_t)(nl - ctl) + 1;
          memmove(ctl, nl + 1, ctl_len - used);
          ctl_len -= used;
        }
        if (ctl_len == sizeof ctl - 1) ctl_len = 0; /* a line too long: drop it */
      }
    }
  }
  int status = 0;
  while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    signal(sig, SIG_DFL);
    kill(getpid(), sig);
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}
