/*
 * stowage-attach: gives a running sandbox what it was not launched with:
 * bind mounts (its volumes, at their paths) and its host name.
 *
 *   stowage-attach PID UID GID [--hostname NAME] [--bind SRC DST | --ro-bind SRC DST]...
 *   stowage-attach --detach-under DIR
 *
 * A supervisor runs it as host root against the sandbox's first process
 * (PID, in the host's pid namespace). Sandboxes are launched ahead of the
 * request that will use them (spare supervisors keep one running), so what a
 * request names has to reach a mount namespace that already exists. Each
 * SRC is cloned here, in the host's namespace, as a detached mount tree
 * (open_tree), made nosuid and nodev (and read-only for --ro-bind) like
 * bwrap's own binds, then, after entering the sandbox's mount namespace,
 * moved onto DST (move_mount). Mount points that do not exist are made
 * there, owned by UID:GID (the sandbox's root as the host sees it); a file
 * source gets an empty file as its mount point.
 *
 * Paths inside resolve in the sandbox's root, as its own processes see them.
 * It is run before any request's code runs in the sandbox.
 *
 * --detach-under lazily unmounts, in the caller's mount namespace, every
 * mount at or below DIR. A sandbox's launch runs it in its private copy of
 * the host's mounts once it has bound what it needs: copies of the other
 * sandboxes' disks and volumes would otherwise stay referenced there for as
 * long as this sandbox runs, keeping their loop devices and FUSE sessions
 * busy after those sandboxes end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_BINDS 64

struct bind {
  const char *src;
  const char *dst;
  int readonly;
  int is_dir;
  int tree;
};

static void die(const char *what, const char *arg) {
  fprintf(stderr, "stowage-attach: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
  exit(1);
}

static void usage(void) {
  fprintf(stderr,
          "usage: stowage-attach PID UID GID [--hostname NAME] [--bind SRC DST | --ro-bind SRC DST]...\n"
          "       stowage-attach --detach-under DIR\n");
  exit(2);
}

/* mountinfo escapes space, tab, newline and backslash as \ooo. */
static void unescape(char *s) {
  char *out = s;
  for (char *in = s; *in; in++) {
    if (in[0] == '\\' && in[1] >= '0' && in[1] <= '7' && in[2] >= '0' && in[2] <= '7' && in[3] >= '0' &&
        in[3] <= '7') {
      *out++ = (char)((in[1] - '0') * 64 + (in[2] - '0') * 8 + (in[3] - '0'));
      in += 3;
    } else
      *out++ = *in;
  }
  *out = '\0';
}

static int detach_under(const char *dir) {
  size_t len = strlen(dir);
  while (len > 1 && dir[len - 1] == '/') len--;
  FILE *f = fopen("/proc/self/mountinfo", "r");
  if (!f) die("opening", "/proc/self/mountinfo");
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, f) > 0) {
    /* Field 5 is the mount point. */
    char *field = line;
    for (int i = 0; i < 4 && field; i++) {
      field = strchr(field, ' ');
      if (field) field++;
    }
    if (!field) continue;
    char *end = strchr(field, ' ');
    if (!end) continue;
    *end = '\0';
    unescape(field);
    if (strncmp(field, dir, len) == 0 && (field[len] == '/' || field[len] == '\0'))
      /* A mount already gone with its parent's detach fails here: that is fine. */
      umount2(field, MNT_DETACH);
  }
  free(line);
  fclose(f);
  return 0;
}

static long number(const char *s) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end || v < 0) usage();
  return v;
}

/*
 * mkdir -p of DST's directories (and DST itself for a directory), run as the sandbox's root: the caller
 * switches the file system ids to UID:GID, so what is made is owned by it, and only what it may make is made (host
 * root has no id in file systems the sandbox mounted itself, such as bwrap's tmpfs).
 */
static void make_mount_point(const char *dst, int is_dir) {
  char path[PATH_MAX];
  if (dst[0] != '/' || strlen(dst) >= sizeof path) {
    errno = EINVAL;
    die("not an absolute path:", dst);
  }
  strcpy(path, dst);
  for (char *p = path + 1;; p++) {
    int last = *p == '\0';
    if (*p != '/' && !last) continue;
    *p = '\0';
    if (!last || is_dir) {
      if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die("mkdir", path);
    } else {
      int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
      if (fd >= 0)
        close(fd);
      else if (errno != EEXIST)
        die("creating", path);
    }
    if (last) return;
    *p = '/';
  }
}

static void enter(long pid, const char *ns, int type) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%ld/ns/%s", pid, ns);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) die("opening", path);
  if (setns(fd, type) != 0) die("entering", path);
  close(fd);
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--detach-under") == 0) return detach_under(argv[2]);
  if (argc < 4) usage();
  long pid = number(argv[1]);
  uid_t uid = (uid_t)number(argv[2]);
  gid_t gid = (gid_t)number(argv[3]);
  const char *hostname = NULL;
  struct bind binds[MAX_BINDS];
  int n = 0;
  for (int i = 4; i < argc; i++) {
    if (strcmp(argv[i], "--hostname") == 0 && i + 1 < argc) {
      hostname = argv[++i];
    } else if ((strcmp(argv[i], "--bind") == 0 || strcmp(argv[i], "--ro-bind") == 0) && i + 2 < argc) {
      if (n == MAX_BINDS) usage();
      binds[n].readonly = argv[i][2] == 'r';
      binds[n].src = argv[i + 1];
      binds[n].dst = argv[i + 2];
      n++;
      i += 2;
    } else
      usage();
  }

  /* The sources, cloned while their host paths are still visible. */
  for (int i = 0; i < n; i++) {
    struct stat st;
    if (stat(binds[i].src, &st) != 0) die("stat", binds[i].src);
    binds[i].is_dir = S_ISDIR(st.st_mode);
    binds[i].tree = open_tree(AT_FDCWD, binds[i].src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
    if (binds[i].tree < 0) die("cloning", binds[i].src);
    struct mount_attr attr = {
        .attr_set = MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | (binds[i].readonly ? MOUNT_ATTR_RDONLY : 0),
    };
    if (mount_setattr(binds[i].tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) != 0)
      die("setting the flags of", binds[i].src);
  }

  if (hostname) {
    enter(pid, "uts", CLONE_NEWUTS);
    if (sethostname(hostname, strlen(hostname)) != 0) die("setting the host name", hostname);
  }
  if (n == 0) return 0;
  enter(pid, "mnt", CLONE_NEWNS);
  for (int i = 0; i < n; i++) {
    setfsgid(gid);
    setfsuid(uid);
    make_mount_point(binds[i].dst, binds[i].is_dir);
    setfsuid(0);
    setfsgid(0);
    if (move_mount(binds[i].tree, "", AT_FDCWD, binds[i].dst, MOVE_MOUNT_F_EMPTY_PATH) != 0)
      die("mounting at", binds[i].dst);
    close(binds[i].tree);
  }
  return 0;
}
