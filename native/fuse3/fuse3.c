/*
 * Stowage's binding of libfuse 3's low-level API for Node (N-API).
 *
 * Threads: none of our own. /dev/fuse is non-blocking and watched by the
 * JS thread's event loop (uv_poll). When it is readable, each request is read
 * and copied (names, write payload, caller credentials) into a `struct msg`
 * and handed at once to the dispatch function; the JS side
 * (src/mount/fuse/session.ts) runs the file system's operation and answers
 * with one of the reply* functions here (fuse_reply_* are plain writes to
 * /dev/fuse). Reading on the JS thread saves a thread hand-off per request:
 * a wake-up of a sleeping thread on another CPU costs about 100 us on a
 * virtual machine without guest halt-polling, several times the request.
 * For the same reason, once every request is answered the thread keeps
 * polling the device for a short while (spinMicros) before it goes back to
 * the event loop: a process issuing system calls back to back finds it
 * awake. Invalidations and teardown run on libuv's thread pool: the kernel
 * may make them wait on a request the JS thread has yet to answer.
 *
 * A request is answered exactly once: its fuse_req_t lives in a table owned
 * by the JS thread, under an id that carries a generation, so a second or a
 * made-up answer is a JS error instead of a use-after-free.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/uio.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <fuse_lowlevel.h>
#include <node_api.h>
#include <uv.h>

extern char **environ;

#define MIB (1024 * 1024)
/* Request ids are generation * ID_SLOTS + slot: unique over a session's life, exact as doubles. */
#define ID_SLOTS 2097152.0
#define MAX_NUMS 12
#define ENTRY_LEN 19 /* ino, generation, attrTimeout, entryTimeout, then ATTR_LEN attr fields */
#define ATTR_LEN 15  /* ino mode nlink uid gid rdev size blocks blksize asec ansec msec mnsec csec cnsec */
#define OPEN_LEN 5   /* fh directIo keepCache nonseekable cacheReaddir */
#define STATFS_LEN 9
/* The protocol minor libfuse answers INIT with (3.14: 7.31; its fuse_kernel.h is not installed, and
   conn->proto_minor is the kernel's offer): the session agrees on the smaller. */
#define LIBFUSE_PROTO_MINOR 31

/*
 * The kernel protocol's bits we read and set ourselves: libfuse 3.14 neither
 * negotiates FUSE_HANDLE_KILLPRIV_V2 nor passes on the per-request "clear
 * set-user-ID / set-group-ID" flags that come with it (its fuse_kernel.h is
 * private), so the binding reads them from the raw request (which libfuse
 * parses from our own buffer) and adds the capability to the INIT reply.
 */
#define K_IN_HEADER 40  /* fuse_in_header: len opcode unique nodeid uid gid pid total_extlen padding */
#define K_OUT_HEADER 16 /* fuse_out_header: len error unique */
#define K_SETATTR 4
#define K_OPEN 14
#define K_WRITE 16
#define K_INIT 26
#define K_CREATE 35
#define K_HANDLE_KILLPRIV_V2 (1u << 28)  /* fuse_init_in/out.flags */
#define K_FATTR_KILL_SUIDGID (1u << 11)  /* fuse_setattr_in.valid (offset 0) */
#define K_WRITE_KILL_SUIDGID (1u << 2)   /* fuse_write_in.write_flags (offset 20) */
#define K_OPEN_KILL_SUIDGID (1u << 0)    /* fuse_open_in / fuse_create_in.open_flags (offset 4) */

#define CHECK(env, call)                                                      \
  do {                                                                        \
    if ((call) != napi_ok) {                                                  \
      napi_throw_error((env), NULL, "fuse3 binding: N-API call failed: " #call); \
      return NULL;                                                            \
    }                                                                         \
  } while (0)

struct slot {
  fuse_req_t req; /* NULL when free */
  uint32_t gen;
  size_t size; /* read/readdir: the kernel's buffer size */
};

struct session {
  struct fuse_session *se;
  char *mountpoint;
  bool writeback;
  volatile int loop_done; /* the kernel side ended (read by the teardown worker) */
  int detach_error;       /* set by the teardown worker: our own unmount failed */

  /* Below: touched on the JS thread only. */
  napi_env env;
  napi_ref dispatch;
  napi_async_context async_ctx;
  uv_poll_t poll;
  bool polling, poll_closed, free_when_closed;
  struct fuse_buf buf;
  uint64_t spin_ns;
  struct slot *slots;
  uint32_t nslots, *free_slots, nfree;
  int inflight_notify;
  /* Kill-privileges protocol (see K_*): the kernel offered v2; the INIT being answered; the request being parsed asks to clear. */
  bool kernel_killpriv_v2;
  uint64_t init_unique;
  bool req_kill_suidgid;
  bool tearing_down, torn_down, closed_seen, finished;
  napi_deferred unmount_deferred;
  napi_async_work teardown_work;
};

/* One request (or event) on its way from libfuse's handler to JS. */
struct msg {
  const char *op; /* the LowLevelOps method name, or "init" / "closed" */
  fuse_req_t req; /* NULL for events and forgets (answered already) */
  size_t size;
  uint32_t uid, gid, pid, umask;
  bool kill_suidgid; /* the kernel asks to clear set-user-ID / set-group-ID (write, truncate, chown) */
  char *s1, *s2;
  char *data;
  size_t len;
  int nn;
  double n[MAX_NUMS];
};

static void free_external(napi_env env, void *data, void *hint) { free(data); }

/* ---------- requests in (libfuse calls these while we process a request) ---------- */

static struct msg *msg_new(const char *op, fuse_req_t req) {
  struct msg *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->op = op;
  m->req = req;
  if (req) {
    const struct fuse_ctx *c = fuse_req_ctx(req);
    m->uid = c->uid;
    m->gid = c->gid;
    m->pid = c->pid;
    m->umask = c->umask;
    m->kill_suidgid = ((struct session *)fuse_req_userdata(req))->req_kill_suidgid;
  }
  return m;
}

static void num(struct msg *m, double v) {
  if (m->nn < MAX_NUMS) m->n[m->nn++] = v;
}

static double fh_of(struct fuse_file_info *fi) { return fi ? (double)fi->fh : NAN; }

static void msg_free(struct msg *m) {
  free(m->s1);
  free(m->s2);
  free(m->data);
  free(m);
}

/* Hands a message to JS at once (defined with the JS-thread code below). */
static void post(struct session *s, struct msg *m);

/*
 * Strict UTF-8 (no overlong forms, surrogates or code points past U+10FFFF).
 * Names reach JS as strings: a lenient decoding would turn every invalid
 * byte into U+FFFD, and "\xff" and "\xfe" would name the same file.
 */
static bool utf8_valid(const unsigned char *p) {
  while (*p) {
    unsigned c = *p++;
    if (c < 0x80) continue;
    int n = c >= 0xf0 ? 3 : c >= 0xe0 ? 2 : c >= 0xc2 ? 1 : -1;
    if (n < 0 || c > 0xf4) return false;
    unsigned cp = c & (0x3f >> n);
    for (int i = 0; i < n; i++, p++) {
      if ((*p & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (*p & 0x3f);
    }
    if ((n == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff))) return false;
  }
  return true;
}

/* Starts a request message; answers EILSEQ for a name that is not UTF-8, ENOMEM on allocation failure. */
static struct msg *begin(fuse_req_t req, const char *op, const char *s1, const char *s2) {
  if ((s1 && !utf8_valid((const unsigned char *)s1)) || (s2 && !utf8_valid((const unsigned char *)s2))) {
    fuse_reply_err(req, EILSEQ);
    return NULL;
  }
  struct msg *m = msg_new(op, req);
  if (m && s1 && !(m->s1 = strdup(s1))) { msg_free(m); m = NULL; }
  if (m && s2 && !(m->s2 = strdup(s2))) { msg_free(m); m = NULL; }
  if (!m) fuse_reply_err(req, ENOMEM);
  return m;
}

#define SESSION(req) ((struct session *)fuse_req_userdata(req))

static void ll_init(void *userdata, struct fuse_conn_info *c) {
  struct session *s = userdata;
  unsigned on = FUSE_CAP_READDIRPLUS | FUSE_CAP_ASYNC_READ | FUSE_CAP_PARALLEL_DIROPS | FUSE_CAP_ATOMIC_O_TRUNC;
  if (s->writeback) on |= FUSE_CAP_WRITEBACK_CACHE;
  unsigned off = FUSE_CAP_READDIRPLUS_AUTO | FUSE_CAP_EXPORT_SUPPORT | FUSE_CAP_SPLICE_READ |
                 FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE;
  if (!s->writeback) off |= FUSE_CAP_WRITEBACK_CACHE;
  c->want = (c->want | (on & c->capable)) & ~off;
  /* libfuse 3.14 derives max_pages from max_write when the kernel offers FUSE_MAX_PAGES (7.28+). */
  c->max_write = MIB;
  /* The kernel takes the smaller of its offer (the device's read-ahead, 128 KiB by default) and ours. */
  unsigned readahead = c->max_readahead < MIB ? c->max_readahead : MIB;
  c->max_readahead = MIB;
  struct msg *m = msg_new("init", NULL);
  if (!m) return;
  long page = sysconf(_SC_PAGESIZE);
  num(m, c->proto_major);
  num(m, c->proto_minor < LIBFUSE_PROTO_MINOR ? c->proto_minor : LIBFUSE_PROTO_MINOR);
  num(m, c->max_write);
  num(m, c->max_read);
  num(m, c->proto_minor >= 28 ? (double)((c->max_write - 1) / page + 1) : 0);
  num(m, readahead);
  num(m, c->want);
  num(m, c->capable);
  num(m, s->kernel_killpriv_v2 ? 1 : 0); /* added to the reply by writev_patching_init */
  post(s, m);
}

/* Hands request `op` with its names and `count` numbers (passed as doubles) to JS. */
static void deliver_request(fuse_req_t req, const char *op, const char *s1, const char *s2, size_t size, int count, ...) {
  struct msg *m = begin(req, op, s1, s2);
  if (!m) return;
  m->size = size;
  va_list ap;
  va_start(ap, count);
  for (int i = 0; i < count; i++) num(m, va_arg(ap, double));
  va_end(ap);
  post(SESSION(req), m);
}

#define D(x) ((double)(x))

static void ll_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
  deliver_request(req, "lookup", name, NULL, 0, 1, D(parent));
}

static void forget_one(struct session *s, fuse_ino_t ino, uint64_t nlookup) {
  struct msg *m = msg_new("forget", NULL);
  if (!m) return;
  num(m, ino);
  num(m, nlookup);
  post(s, m);
}

/* Forgets need no answer: answered here at once, and JS is told. */
static void ll_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  forget_one(SESSION(req), ino, nlookup);
  fuse_reply_none(req);
}

static void ll_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
  for (size_t i = 0; i < count; i++) forget_one(SESSION(req), forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

static void ll_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  deliver_request(req, "getattr", NULL, NULL, 0, 2, D(ino), fh_of(fi));
}

static void ll_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *a, int to_set, struct fuse_file_info *fi) {
  deliver_request(req, "setattr", NULL, NULL, 0, 11, D(ino), D(to_set), D(a->st_mode), D(a->st_uid), D(a->st_gid), D(a->st_size),
       D(a->st_atim.tv_sec), D(a->st_atim.tv_nsec), D(a->st_mtim.tv_sec), D(a->st_mtim.tv_nsec), fh_of(fi));
}

static void ll_readlink(fuse_req_t req, fuse_ino_t ino) { deliver_request(req, "readlink", NULL, NULL, 0, 1, D(ino)); }

static void ll_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev) {
  deliver_request(req, "mknod", name, NULL, 0, 3, D(parent), D(mode), D(rdev));
}

static void ll_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
  deliver_request(req, "mkdir", name, NULL, 0, 2, D(parent), D(mode));
}

static void ll_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
  deliver_request(req, "unlink", name, NULL, 0, 1, D(parent));
}

static void ll_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
  deliver_request(req, "rmdir", name, NULL, 0, 1, D(parent));
}

static void ll_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name) {
  deliver_request(req, "symlink", target, name, 0, 1, D(parent));
}

static void ll_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent, const char *newname,
                      unsigned int flags) {
  deliver_request(req, "rename", name, newname, 0, 3, D(parent), D(newparent), D(flags));
}

static void ll_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
  deliver_request(req, "link", newname, NULL, 0, 2, D(ino), D(newparent));
}

static void ll_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  deliver_request(req, "open", NULL, NULL, 0, 2, D(ino), D(fi->flags));
}

static void ll_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  deliver_request(req, "opendir", NULL, NULL, 0, 2, D(ino), D(fi->flags));
}

/* read, readdir, readdirplus keep the kernel's size for the reply. */
static void ll_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  deliver_request(req, "read", NULL, NULL, size, 4, D(ino), D(size), D(off), fh_of(fi));
}

static void ll_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  deliver_request(req, "readdir", NULL, NULL, size, 4, D(ino), D(size), D(off), fh_of(fi));
}

static void ll_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi) {
  deliver_request(req, "readdirplus", NULL, NULL, size, 4, D(ino), D(size), D(off), fh_of(fi));
}

static void ll_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off, struct fuse_file_info *fi) {
  struct msg *m = begin(req, "write", NULL, NULL);
  if (!m) return;
  /* libfuse reuses its receive buffer for the next request: keep a copy. */
  m->data = malloc(size ? size : 1);
  if (!m->data) {
    msg_free(m);
    fuse_reply_err(req, ENOMEM);
    return;
  }
  memcpy(m->data, buf, size);
  m->len = size;
  num(m, ino);
  num(m, off);
  num(m, fh_of(fi));
  post(SESSION(req), m);
}

static void ll_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  deliver_request(req, "flush", NULL, NULL, 0, 2, D(ino), fh_of(fi));
}

static void ll_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  deliver_request(req, "release", NULL, NULL, 0, 3, D(ino), fh_of(fi), D(fi->flags));
}

static void ll_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
  deliver_request(req, "releasedir", NULL, NULL, 0, 2, D(ino), fh_of(fi));
}

static void ll_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  deliver_request(req, "fsync", NULL, NULL, 0, 3, D(ino), D(datasync), fh_of(fi));
}

static void ll_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
  deliver_request(req, "fsyncdir", NULL, NULL, 0, 3, D(ino), D(datasync), fh_of(fi));
}

static void ll_statfs(fuse_req_t req, fuse_ino_t ino) { deliver_request(req, "statfs", NULL, NULL, 0, 1, D(ino)); }

static void ll_access(fuse_req_t req, fuse_ino_t ino, int mask) {
  deliver_request(req, "access", NULL, NULL, 0, 2, D(ino), D(mask));
}

static void ll_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, struct fuse_file_info *fi) {
  deliver_request(req, "create", name, NULL, 0, 3, D(parent), D(mode), D(fi->flags));
}

static void ll_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length, struct fuse_file_info *fi) {
  deliver_request(req, "fallocate", NULL, NULL, 0, 5, D(ino), D(mode), D(offset), D(length), fh_of(fi));
}

static const struct fuse_lowlevel_ops ll_ops = {
    .init = ll_init,
    .lookup = ll_lookup,
    .forget = ll_forget,
    .forget_multi = ll_forget_multi,
    .getattr = ll_getattr,
    .setattr = ll_setattr,
    .readlink = ll_readlink,
    .mknod = ll_mknod,
    .mkdir = ll_mkdir,
    .unlink = ll_unlink,
    .rmdir = ll_rmdir,
    .symlink = ll_symlink,
    .rename = ll_rename,
    .link = ll_link,
    .open = ll_open,
    .read = ll_read,
    .write = ll_write,
    .flush = ll_flush,
    .release = ll_release,
    .fsync = ll_fsync,
    .opendir = ll_opendir,
    .readdir = ll_readdir,
    .readdirplus = ll_readdirplus,
    .releasedir = ll_releasedir,
    .fsyncdir = ll_fsyncdir,
    .statfs = ll_statfs,
    .access = ll_access,
    .create = ll_create,
    .fallocate = ll_fallocate,
};

/* ---------- JS thread: requests out to the dispatch function ---------- */

static double slot_put(struct session *s, fuse_req_t req, size_t size) {
  if (s->nfree == 0) {
    uint32_t n = s->nslots ? s->nslots * 2 : 64;
    if (n > ID_SLOTS) return -1;
    struct slot *ns = realloc(s->slots, n * sizeof *ns);
    if (!ns) return -1;
    s->slots = ns;
    uint32_t *nf = realloc(s->free_slots, n * sizeof *nf);
    if (!nf) return -1;
    s->free_slots = nf;
    for (uint32_t i = n; i > s->nslots; i--) {
      ns[i - 1] = (struct slot){0};
      nf[s->nfree++] = i - 1;
    }
    s->nslots = n;
  }
  uint32_t i = s->free_slots[--s->nfree];
  s->slots[i].req = req;
  s->slots[i].size = size;
  return (double)s->slots[i].gen * ID_SLOTS + i;
}

static void slot_release(struct session *s, uint32_t i) {
  s->slots[i].req = NULL;
  s->slots[i].gen++;
  s->free_slots[s->nfree++] = i;
}

static void finish_if_done(napi_env env, struct session *s);

static void post(struct session *s, struct msg *m) {
  napi_env env = s->env;
  napi_handle_scope scope;
  napi_value dispatch;
  if (napi_open_handle_scope(env, &scope) != napi_ok) {
    if (m->req) fuse_reply_err(m->req, EIO);
    msg_free(m);
    return;
  }
  napi_get_reference_value(env, s->dispatch, &dispatch);
  double id = 0;
  if (m->req) {
    id = slot_put(s, m->req, m->size);
    if (id < 0) {
      fuse_reply_err(m->req, ENOMEM);
      msg_free(m);
      napi_close_handle_scope(env, scope);
      return;
    }
  }
  napi_value argv[7 + MAX_NUMS], undef;
  napi_get_undefined(env, &undef);
  int argc = 0;
  napi_create_string_utf8(env, m->op, NAPI_AUTO_LENGTH, &argv[argc++]);
  napi_create_double(env, id, &argv[argc++]);
  napi_value ctx[5];
  napi_create_uint32(env, m->uid, &ctx[0]);
  napi_create_uint32(env, m->gid, &ctx[1]);
  napi_create_uint32(env, m->pid, &ctx[2]);
  napi_create_uint32(env, m->umask, &ctx[3]);
  napi_create_uint32(env, m->kill_suidgid ? 1 : 0, &ctx[4]);
  napi_value ctxarr;
  napi_create_array_with_length(env, 5, &ctxarr);
  for (uint32_t i = 0; i < 5; i++) napi_set_element(env, ctxarr, i, ctx[i]);
  argv[argc++] = ctxarr;
  argv[argc] = undef;
  if (m->s1) napi_create_string_utf8(env, m->s1, NAPI_AUTO_LENGTH, &argv[argc]);
  argc++;
  argv[argc] = undef;
  if (m->s2) napi_create_string_utf8(env, m->s2, NAPI_AUTO_LENGTH, &argv[argc]);
  argc++;
  argv[argc] = undef;
  if (m->data) {
    napi_value buf;
    /* Hand the copy itself to JS; fall back to copying where external buffers are not allowed. */
    if (napi_create_external_buffer(env, m->len, m->data, free_external, NULL, &buf) == napi_ok) {
      m->data = NULL;
    } else {
      void *ignored;
      napi_create_buffer_copy(env, m->len, m->data, &ignored, &buf);
    }
    argv[argc] = buf;
  }
  argc++;
  napi_value nums;
  napi_create_array_with_length(env, m->nn, &nums);
  for (int i = 0; i < m->nn; i++) {
    napi_value v;
    napi_create_double(env, m->n[i], &v);
    napi_set_element(env, nums, i, v);
  }
  argv[argc++] = nums;

  if (strcmp(m->op, "closed") == 0) s->closed_seen = true;
  napi_value global;
  napi_get_global(env, &global);
  /* A callback scope, so the operation's promise continuations (and their replies) run before the next request. */
  if (napi_make_callback(env, s->async_ctx, global, dispatch, argc, argv, NULL) != napi_ok) {
    /* dispatch is written never to throw; if it did, the caller still gets an answer. */
    napi_value exc;
    napi_get_and_clear_last_exception(env, &exc);
    fprintf(stderr, "fuse3 binding: the dispatch function threw on %s\n", m->op);
    if (m->req) {
      uint32_t i = (uint32_t)fmod(id, ID_SLOTS);
      if (s->slots[i].req == m->req) {
        fuse_reply_err(m->req, EIO);
        slot_release(s, i);
      }
    }
  }
  msg_free(m);
  napi_close_handle_scope(env, scope);
  if (s->closed_seen) finish_if_done(env, s);
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static void stop_polling(struct session *s) {
  if (s->polling) uv_poll_stop(&s->poll);
  s->polling = false;
}

/* The kernel side ended (unmounted, aborted, or the device failed): JS hears "closed", the last message. */
static void loop_ended(struct session *s) {
  stop_polling(s);
  s->loop_done = 1;
  if (s->closed_seen) return;
  struct msg *m = msg_new("closed", NULL);
  if (m) post(s, m);
  else s->closed_seen = true;
}

static uint32_t u32_at(const char *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/*
 * Reads what libfuse 3.14 drops from the raw request before it parses it:
 * the kernel's offer of FUSE_HANDLE_KILLPRIV_V2 in INIT, and the flags of
 * setattr, write, open and create that ask to clear set-user-ID and
 * set-group-ID (set by the kernel for a chown of a non-directory, and for a
 * truncate or write by a caller without CAP_FSETID).
 */
static void peek_request(struct session *s, int len) {
  s->req_kill_suidgid = false;
  if ((s->buf.flags & FUSE_BUF_IS_FD) || len < K_IN_HEADER) return;
  const char *h = s->buf.mem, *arg = h + K_IN_HEADER;
  size_t n = (size_t)len - K_IN_HEADER;
  switch (u32_at(h + 4)) {
    case K_INIT:
      if (n >= 16) {
        s->kernel_killpriv_v2 = (u32_at(arg + 12) & K_HANDLE_KILLPRIV_V2) != 0;
        memcpy(&s->init_unique, h + 8, sizeof s->init_unique);
      }
      break;
    case K_SETATTR:
      s->req_kill_suidgid = n >= 4 && (u32_at(arg) & K_FATTR_KILL_SUIDGID);
      break;
    case K_WRITE:
      s->req_kill_suidgid = n >= 24 && (u32_at(arg + 20) & K_WRITE_KILL_SUIDGID);
      break;
    case K_OPEN:
    case K_CREATE:
      s->req_kill_suidgid = n >= 8 && (u32_at(arg + 4) & K_OPEN_KILL_SUIDGID);
      break;
  }
}

/* libfuse's replies go out here (custom io): the INIT reply gets FUSE_HANDLE_KILLPRIV_V2 when the kernel offered it. */
static ssize_t writev_patching_init(int fd, struct iovec *iov, int count, void *userdata) {
  struct session *s = userdata;
  if (s->init_unique && count >= 2 && iov[0].iov_len >= K_OUT_HEADER && iov[1].iov_len >= 16) {
    uint64_t unique;
    int32_t error;
    memcpy(&unique, (char *)iov[0].iov_base + 8, sizeof unique);
    memcpy(&error, (char *)iov[0].iov_base + 4, sizeof error);
    if (unique == s->init_unique) {
      s->init_unique = 0;
      if (error == 0 && s->kernel_killpriv_v2) {
        uint32_t flags = u32_at((char *)iov[1].iov_base + 12) | K_HANDLE_KILLPRIV_V2;
        memcpy((char *)iov[1].iov_base + 12, &flags, sizeof flags);
      }
    }
  }
  return writev(fd, iov, count);
}

static ssize_t read_plain(int fd, void *buf, size_t len, void *userdata) { return read(fd, buf, len); }

/* Longest stretch the JS thread serves requests before it lets the rest of the event loop run. */
#define BATCH_NS (2 * 1000 * 1000)

static void on_readable(uv_poll_t *handle, int status, int events) {
  struct session *s = handle->data;
  uint64_t start = now_ns(), last = start;
  while (s->polling) {
    int r = fuse_session_receive_buf(s->se, &s->buf);
    if (r > 0) {
      peek_request(s, r);
      fuse_session_process_buf(s->se, &s->buf);
      s->req_kill_suidgid = false;
      last = now_ns();
      if (last - start > BATCH_NS) return;
      continue;
    }
    if (r == -EINTR) continue;
    if (r == -EAGAIN) {
      /* Nothing queued. Keep polling only while every request is answered: a pending one waits on the event loop. */
      uint64_t t = now_ns();
      if (s->spin_ns && s->nfree == s->nslots && t - last < s->spin_ns && t - start < BATCH_NS) continue;
      return;
    }
    if (r < 0) fprintf(stderr, "fuse3 binding: reading /dev/fuse failed: %s\n", strerror(-r));
    loop_ended(s); /* 0: the session exited (ENODEV); or an error we cannot serve past */
    return;
  }
}


/* ---------- JS thread: replies ---------- */

/* Marks our session externals, so another addon's external is never taken for one. */
static const napi_type_tag session_tag = {0x5f3a7c1e9d2b4a60ULL, 0xa1c4e8f2b7d90356ULL};

static struct session *get_session(napi_env env, napi_value v) {
  void *p = NULL;
  bool tagged = false;
  napi_valuetype t;
  if (napi_typeof(env, v, &t) == napi_ok && t == napi_external) napi_check_object_type_tag(env, v, &session_tag, &tagged);
  if (!tagged || napi_get_value_external(env, v, &p) != napi_ok || !p) {
    napi_throw_type_error(env, NULL, "fuse3 binding: expected a session handle");
    return NULL;
  }
  return p;
}

/* Looks up a pending request by id without taking it (validate the answer first, then take). */
static int find_req(napi_env env, struct session *s, napi_value idv, uint32_t *slot) {
  double id;
  if (napi_get_value_double(env, idv, &id) != napi_ok || !(id >= 0) || id != floor(id) || id > 9007199254740991.0) {
    napi_throw_type_error(env, NULL, "fuse3 binding: a request id must be a non-negative integer");
    return -1;
  }
  double gen = floor(id / ID_SLOTS);
  uint32_t i = (uint32_t)fmod(id, ID_SLOTS);
  if (s->finished || i >= s->nslots || !s->slots[i].req || (double)s->slots[i].gen != gen) {
    char msg[128];
    snprintf(msg, sizeof msg, "fuse3 binding: request %.0f is unknown or was answered already", id);
    napi_throw_error(env, "ERR_FUSE_UNKNOWN_REQUEST", msg);
    return -1;
  }
  *slot = i;
  return 0;
}

static fuse_req_t take(struct session *s, uint32_t i) {
  fuse_req_t req = s->slots[i].req;
  slot_release(s, i);
  return req;
}

/* Reads a Float64Array of exactly `len` (or, if len is 0, any multiple of `stride`). */
static double *f64(napi_env env, napi_value v, size_t len, size_t stride, size_t *out_len) {
  static double empty[1];
  napi_typedarray_type type;
  size_t n;
  void *data;
  bool is_ta = false;
  napi_is_typedarray(env, v, &is_ta);
  if (!is_ta || napi_get_typedarray_info(env, v, &type, &n, &data, NULL, NULL) != napi_ok || type != napi_float64_array ||
      (len && n != len) || (!len && stride && n % stride)) {
    napi_throw_type_error(env, NULL, "fuse3 binding: malformed reply numbers (expected a Float64Array of the right length)");
    return NULL;
  }
  if (out_len) *out_len = n;
  return n ? data : empty; /* an empty array may have no storage: NULL means "thrown" here */
}

static void to_stat(const double *a, struct stat *st) {
  memset(st, 0, sizeof *st);
  st->st_ino = (ino_t)a[0];
  st->st_mode = (mode_t)a[1];
  st->st_nlink = (nlink_t)a[2];
  st->st_uid = (uid_t)a[3];
  st->st_gid = (gid_t)a[4];
  st->st_rdev = (dev_t)a[5];
  st->st_size = (off_t)a[6];
  st->st_blocks = (blkcnt_t)a[7];
  st->st_blksize = (blksize_t)a[8];
  st->st_atim.tv_sec = (time_t)a[9];
  st->st_atim.tv_nsec = (long)a[10];
  st->st_mtim.tv_sec = (time_t)a[11];
  st->st_mtim.tv_nsec = (long)a[12];
  st->st_ctim.tv_sec = (time_t)a[13];
  st->st_ctim.tv_nsec = (long)a[14];
}

static void to_entry(const double *a, struct fuse_entry_param *e) {
  memset(e, 0, sizeof *e);
  e->ino = (fuse_ino_t)a[0];
  e->generation = (uint64_t)a[1];
  e->attr_timeout = a[2];
  e->entry_timeout = a[3];
  to_stat(a + 4, &e->attr);
}

static void to_open(const double *a, struct fuse_file_info *fi) {
  memset(fi, 0, sizeof *fi);
  fi->fh = (uint64_t)a[0];
  fi->direct_io = a[1] != 0;
  fi->keep_cache = a[2] != 0;
  fi->nonseekable = a[3] != 0;
  fi->cache_readdir = a[4] != 0;
}

static napi_value int_result(napi_env env, int r) {
  napi_value v;
  napi_create_int32(env, r, &v);
  return v;
}

#define REPLY_PROLOGUE(n)                                             \
  size_t argc = (n);                                                  \
  napi_value argv[(n) > 0 ? (n) : 1];                                 \
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));  \
  struct session *s = get_session(env, argv[0]);                      \
  if (!s) return NULL;                                                \
  uint32_t slot;                                                      \
  if (find_req(env, s, argv[1], &slot)) return NULL;

/* replyErr(handle, id, errno): errno is positive; 0 answers success for ops without data. */
static napi_value reply_err(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  int32_t err;
  if (napi_get_value_int32(env, argv[2], &err) != napi_ok || err < 0 || err > 4095) {
    napi_throw_range_error(env, NULL, "fuse3 binding: errno must be 0..4095");
    return NULL;
  }
  return int_result(env, fuse_reply_err(take(s, slot), err));
}

static napi_value reply_entry(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  double *a = f64(env, argv[2], ENTRY_LEN, 0, NULL);
  if (!a) return NULL;
  struct fuse_entry_param e;
  to_entry(a, &e);
  return int_result(env, fuse_reply_entry(take(s, slot), &e));
}

static napi_value reply_create(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(4);
  double *a = f64(env, argv[2], ENTRY_LEN, 0, NULL);
  if (!a) return NULL;
  double *o = f64(env, argv[3], OPEN_LEN, 0, NULL);
  if (!o) return NULL;
  struct fuse_entry_param e;
  struct fuse_file_info fi;
  to_entry(a, &e);
  to_open(o, &fi);
  return int_result(env, fuse_reply_create(take(s, slot), &e, &fi));
}

static napi_value reply_attr(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(4);
  double *a = f64(env, argv[2], ATTR_LEN, 0, NULL);
  if (!a) return NULL;
  double timeout;
  if (napi_get_value_double(env, argv[3], &timeout) != napi_ok) {
    napi_throw_type_error(env, NULL, "fuse3 binding: attr timeout must be a number");
    return NULL;
  }
  struct stat st;
  to_stat(a, &st);
  return int_result(env, fuse_reply_attr(take(s, slot), &st, timeout));
}

static napi_value reply_open(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  double *o = f64(env, argv[2], OPEN_LEN, 0, NULL);
  if (!o) return NULL;
  struct fuse_file_info fi;
  to_open(o, &fi);
  return int_result(env, fuse_reply_open(take(s, slot), &fi));
}

static napi_value reply_readlink(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  size_t len;
  if (napi_get_value_string_utf8(env, argv[2], NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "fuse3 binding: a link target must be a string");
    return NULL;
  }
  char *target = malloc(len + 1);
  if (!target) {
    napi_throw_error(env, NULL, "fuse3 binding: out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[2], target, len + 1, &len);
  int r = fuse_reply_readlink(take(s, slot), target);
  free(target);
  return int_result(env, r);
}

/* replyBuf(handle, id, buffer): read's answer; longer than the kernel asked for is malformed. */
static napi_value reply_buf(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  void *data;
  size_t len;
  bool is_buf = false;
  napi_is_buffer(env, argv[2], &is_buf);
  if (!is_buf || napi_get_buffer_info(env, argv[2], &data, &len) != napi_ok || len > s->slots[slot].size) {
    napi_throw_type_error(env, NULL, "fuse3 binding: a read answer must be a Buffer of at most the size asked");
    return NULL;
  }
  return int_result(env, fuse_reply_buf(take(s, slot), data, len));
}

static napi_value reply_write(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  double n;
  if (napi_get_value_double(env, argv[2], &n) != napi_ok || !(n >= 0) || n != floor(n)) {
    napi_throw_type_error(env, NULL, "fuse3 binding: a write answer must be a byte count");
    return NULL;
  }
  return int_result(env, fuse_reply_write(take(s, slot), (size_t)n));
}

static napi_value reply_statfs(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(3);
  double *a = f64(env, argv[2], STATFS_LEN, 0, NULL);
  if (!a) return NULL;
  struct statvfs v = {0};
  v.f_bsize = a[0];
  v.f_frsize = a[1];
  v.f_blocks = a[2];
  v.f_bfree = a[3];
  v.f_bavail = a[4];
  v.f_files = a[5];
  v.f_ffree = a[6];
  v.f_favail = a[7];
  v.f_namemax = a[8];
  return int_result(env, fuse_reply_statfs(take(s, slot), &v));
}

/*
 * replyDir(handle, id, names, numbers, plus): packs as many entries as fit in
 * the kernel's buffer. numbers has 3 per entry (ino, mode, off) or, with plus,
 * 1 + ENTRY_LEN (off, then the entry). Returns how many entries were sent, or
 * -1 when the reply failed (the kernel took none).
 */
static napi_value reply_dir(napi_env env, napi_callback_info info) {
  REPLY_PROLOGUE(5);
  bool plus = false, is_arr = false;
  napi_get_value_bool(env, argv[4], &plus);
  size_t stride = plus ? 1 + ENTRY_LEN : 3, n;
  double *a = f64(env, argv[3], 0, stride, &n);
  if (!a) return NULL;
  uint32_t count = 0;
  napi_is_array(env, argv[2], &is_arr);
  if (!is_arr || napi_get_array_length(env, argv[2], &count) != napi_ok || count != n / stride) {
    napi_throw_type_error(env, NULL, "fuse3 binding: readdir names and numbers disagree");
    return NULL;
  }
  size_t size = s->slots[slot].size, used = 0;
  char *buf = malloc(size ? size : 1);
  if (!buf) {
    napi_throw_error(env, NULL, "fuse3 binding: out of memory");
    return NULL;
  }
  char name[1024];
  uint32_t sent = 0;
  for (; sent < count; sent++) {
    napi_value v;
    size_t len;
    if (napi_get_element(env, argv[2], sent, &v) != napi_ok ||
        napi_get_value_string_utf8(env, v, name, sizeof name, &len) != napi_ok || len == 0 || len >= sizeof name - 1) {
      free(buf);
      napi_throw_type_error(env, NULL, "fuse3 binding: a readdir name must be a non-empty string under 1024 bytes");
      return NULL;
    }
    const double *e = a + sent * stride;
    size_t need;
    fuse_req_t req = s->slots[slot].req;
    if (plus) {
      struct fuse_entry_param ep;
      to_entry(e + 1, &ep);
      need = fuse_add_direntry_plus(req, buf + used, size - used, name, &ep, (off_t)e[0]);
    } else {
      struct stat st = {0};
      st.st_ino = (ino_t)e[0];
      st.st_mode = (mode_t)e[1];
      need = fuse_add_direntry(req, buf + used, size - used, name, &st, (off_t)e[2]);
    }
    if (need > size - used) break;
    used += need;
  }
  int r = fuse_reply_buf(take(s, slot), buf, used);
  free(buf);
  return int_result(env, r == 0 ? (int32_t)sent : -1);
}

/* ---------- notifications (off the JS thread) ---------- */

struct notify {
  struct session *s;
  bool entry;
  fuse_ino_t ino;
  off_t off, len;
  char *name;
  int result;
  napi_deferred deferred;
  napi_async_work work;
};

static void notify_execute(napi_env env, void *data) {
  struct notify *n = data;
  if (n->entry)
    n->result = fuse_lowlevel_notify_inval_entry(n->s->se, n->ino, n->name, strlen(n->name));
  else
    n->result = fuse_lowlevel_notify_inval_inode(n->s->se, n->ino, n->off, n->len);
}

static void notify_complete(napi_env env, napi_status status, void *data) {
  struct notify *n = data;
  struct session *s = n->s;
  napi_value v;
  if (n->result == 0 || n->result == -ENOENT) {
    napi_get_undefined(env, &v);
    napi_resolve_deferred(env, n->deferred, v);
  } else {
    napi_value msg;
    char text[160];
    snprintf(text, sizeof text, "FUSE invalidation failed: %s", strerror(-n->result));
    napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &msg);
    napi_create_error(env, NULL, msg, &v);
    napi_reject_deferred(env, n->deferred, v);
  }
  napi_delete_async_work(env, n->work);
  free(n->name);
  free(n);
  s->inflight_notify--;
  finish_if_done(env, s);
}

/* invalidate(handle, ino|parent, off, len, name|undefined) -> Promise<void> */
static napi_value invalidate(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], promise, resname;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct session *s = get_session(env, argv[0]);
  if (!s) return NULL;
  if (s->tearing_down) {
    napi_throw_error(env, "ERR_FUSE_CLOSED", "the FUSE session is closed");
    return NULL;
  }
  struct notify *n = calloc(1, sizeof *n);
  if (!n) return NULL;
  double ino, off, len;
  napi_valuetype t;
  napi_typeof(env, argv[4], &t);
  if (napi_get_value_double(env, argv[1], &ino) != napi_ok || napi_get_value_double(env, argv[2], &off) != napi_ok ||
      napi_get_value_double(env, argv[3], &len) != napi_ok || !(ino >= 1)) {
    free(n);
    napi_throw_type_error(env, NULL, "fuse3 binding: invalidate needs an inode number >= 1, an offset and a length");
    return NULL;
  }
  if (t == napi_string) {
    size_t l;
    napi_get_value_string_utf8(env, argv[4], NULL, 0, &l);
    n->name = malloc(l + 1);
    if (!n->name) { free(n); return NULL; }
    napi_get_value_string_utf8(env, argv[4], n->name, l + 1, &l);
    n->entry = true;
  }
  n->s = s;
  n->ino = (fuse_ino_t)ino;
  n->off = (off_t)off;
  n->len = (off_t)len;
  CHECK(env, napi_create_promise(env, &n->deferred, &promise));
  napi_create_string_utf8(env, "fuse3:invalidate", NAPI_AUTO_LENGTH, &resname);
  CHECK(env, napi_create_async_work(env, NULL, resname, notify_execute, notify_complete, n, &n->work));
  CHECK(env, napi_queue_async_work(env, n->work));
  s->inflight_notify++;
  return promise;
}

/* ---------- mount, unmount ---------- */

/* Lazily detaches the mount at `path` (MNT_DETACH as root, `fusermount3 -u -z` otherwise); 0 or an errno. */
static int lazy_unmount(const char *path) {
  if (geteuid() == 0) return umount2(path, MNT_DETACH) == 0 ? 0 : errno;
  pid_t pid;
  char *argv[] = {"fusermount3", "-u", "-z", "-q", "--", (char *)path, NULL};
  int r = posix_spawnp(&pid, "fusermount3", NULL, NULL, argv, environ);
  if (r) return r;
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : EPERM;
}

static void teardown_execute(napi_env env, void *data) {
  struct session *s = data;
  if (!s->loop_done) s->detach_error = lazy_unmount(s->mountpoint);
}

static void teardown_complete(napi_env env, napi_status status, void *data) {
  struct session *s = data;
  napi_delete_async_work(env, s->teardown_work);
  s->teardown_work = NULL;
  s->torn_down = true;
  /* Requests still queued are not read: closing the device (finish_if_done) aborts the
     connection, so processes still inside a detached mount get ENOTCONN, not a hang. */
  loop_ended(s);
  finish_if_done(env, s);
}

static void poll_closed(uv_handle_t *handle) {
  struct session *s = handle->data;
  s->poll_closed = true;
  if (s->free_when_closed) {
    free(s->mountpoint);
    free(s);
  }
}

/* The last step, once unmount() ran, "closed" was seen and no invalidation runs. */
static void finish_if_done(napi_env env, struct session *s) {
  if (s->finished || !s->torn_down || !s->closed_seen || s->inflight_notify > 0) return;
  s->finished = true;
  /* Requests JS never answered: free them (the kernel's side is gone or going). */
  for (uint32_t i = 0; i < s->nslots; i++)
    if (s->slots[i].req) fuse_reply_err(take(s, i), EIO);
  /* The path is unmounted already (by us, or from outside when the session ended
     first); libfuse's unmount would only try again. Destroy closes /dev/fuse,
     which aborts the connection for anyone still inside a detached mount. */
  if (s->detach_error) fuse_session_unmount(s->se);
  fuse_session_destroy(s->se);
  s->se = NULL;
  free(s->buf.mem);
  s->buf.mem = NULL;
  uv_close((uv_handle_t *)&s->poll, poll_closed);
  napi_delete_reference(env, s->dispatch);
  napi_async_destroy(env, s->async_ctx);
  free(s->slots);
  s->slots = NULL;
  free(s->free_slots);
  s->free_slots = NULL;
  napi_value undef;
  napi_get_undefined(env, &undef);
  if (s->unmount_deferred) napi_resolve_deferred(env, s->unmount_deferred, undef);
  s->unmount_deferred = NULL;
}

/* unmount(handle) -> Promise<void>: ends the session; resolves when it is gone. Call once. */
static napi_value unmount_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], promise, resname;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  struct session *s = get_session(env, argv[0]);
  if (!s) return NULL;
  if (s->tearing_down) {
    napi_throw_error(env, "ERR_FUSE_CLOSED", "the FUSE session is already being unmounted");
    return NULL;
  }
  s->tearing_down = true;
  CHECK(env, napi_create_promise(env, &s->unmount_deferred, &promise));
  napi_create_string_utf8(env, "fuse3:unmount", NAPI_AUTO_LENGTH, &resname);
  CHECK(env, napi_create_async_work(env, NULL, resname, teardown_execute, teardown_complete, s, &s->teardown_work));
  CHECK(env, napi_queue_async_work(env, s->teardown_work));
  return promise;
}

static void session_free(napi_env env, void *data, void *hint) {
  struct session *s = data;
  /* A handle collected while mounted stays (the event loop still serves it); once finished it can go. */
  if (!s->finished) return;
  if (!s->poll_closed) {
    s->free_when_closed = true;
    return;
  }
  free(s->mountpoint);
  free(s);
}

static char *get_string(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
  char *str = malloc(len + 1);
  if (str) napi_get_value_string_utf8(env, v, str, len + 1, &len);
  return str;
}

/*
 * mount(mountpoint, options: string[], writeback: boolean, dispatch, spinMicros) -> handle.
 * dispatch(op, id, [uid, gid, pid, umask], s1, s2, data, numbers) receives
 * every request, plus "init" (numbers = the ConnInfo) and "closed" (last).
 */
static napi_value mount_js(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5], resname, handle;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  double spin_us = 0;
  napi_valuetype dispatch_type;
  napi_typeof(env, argv[3], &dispatch_type);
  if (argc < 5 || dispatch_type != napi_function || napi_get_value_double(env, argv[4], &spin_us) != napi_ok ||
      !(spin_us >= 0 && spin_us <= 1e6)) {
    napi_throw_type_error(env, NULL, "fuse3 binding: mount(mountpoint, options[], writeback, dispatch, spinMicros 0..1e6)");
    return NULL;
  }
  char *mnt = get_string(env, argv[0]);
  uint32_t nopts = 0;
  bool is_arr = false;
  napi_is_array(env, argv[1], &is_arr);
  if (!mnt || !is_arr || napi_get_array_length(env, argv[1], &nopts) != napi_ok) {
    free(mnt);
    napi_throw_type_error(env, NULL, "fuse3 binding: mount(mountpoint, options[], writeback, dispatch, spinMicros)");
    return NULL;
  }
  /* argv for libfuse: "stowage" then "-o" "opt" pairs (one per option: commas inside stay escaped by libfuse). */
  char **fargv = calloc(1 + 2 * nopts + 1, sizeof *fargv);
  int fargc = 0;
  fargv[fargc++] = strdup("stowage");
  for (uint32_t i = 0; i < nopts; i++) {
    napi_value v;
    napi_get_element(env, argv[1], i, &v);
    char *opt = get_string(env, v);
    if (!opt) {
      for (int j = 0; j < fargc; j++) free(fargv[j]);
      free(fargv);
      free(mnt);
      napi_throw_type_error(env, NULL, "fuse3 binding: mount options must be strings");
      return NULL;
    }
    fargv[fargc++] = strdup("-o");
    fargv[fargc++] = opt;
  }
  struct fuse_args fargs = FUSE_ARGS_INIT(fargc, fargv);

  struct session *s = calloc(1, sizeof *s);
  s->mountpoint = mnt;
  napi_get_value_bool(env, argv[2], &s->writeback);
  s->se = fuse_session_new(&fargs, &ll_ops, sizeof ll_ops, s);
  fuse_opt_free_args(&fargs);
  for (int j = 0; j < fargc; j++) free(fargv[j]);
  free(fargv);
  if (!s->se) {
    free(mnt);
    free(s);
    napi_throw_error(env, "ERR_FUSE_OPTIONS", "libfuse refused the mount options (its message is on stderr)");
    return NULL;
  }
  if (fuse_session_mount(s->se, mnt) != 0) {
    fuse_session_destroy(s->se);
    free(mnt);
    free(s);
    napi_throw_error(env, "ERR_FUSE_MOUNT", "libfuse could not mount (its message is on stderr)");
    return NULL;
  }
  uv_loop_t *loop = NULL;
  int fd = fuse_session_fd(s->se);
  /* Same device, our writev: the INIT reply is patched there (see writev_patching_init). */
  static const struct fuse_custom_io io = {.writev = writev_patching_init, .read = read_plain};
  if (fuse_session_custom_io(s->se, &io, fd) != 0) {
    fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    free(mnt);
    free(s);
    napi_throw_error(env, "ERR_FUSE_MOUNT", "fuse3 binding: libfuse refused our device I/O functions");
    return NULL;
  }
  napi_create_string_utf8(env, "fuse3:session", NAPI_AUTO_LENGTH, &resname);
  s->env = env;
  s->spin_ns = (uint64_t)(spin_us * 1000);
  if (napi_get_uv_event_loop(env, &loop) != napi_ok || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0 ||
      napi_create_reference(env, argv[3], 1, &s->dispatch) != napi_ok ||
      napi_async_init(env, NULL, resname, &s->async_ctx) != napi_ok || uv_poll_init(loop, &s->poll, fd) != 0) {
    fuse_session_unmount(s->se);
    fuse_session_destroy(s->se);
    free(mnt);
    free(s);
    napi_throw_error(env, "ERR_FUSE_MOUNT", "fuse3 binding: could not watch /dev/fuse from the event loop");
    return NULL;
  }
  s->poll.data = s;
  uv_poll_start(&s->poll, UV_READABLE, on_readable);
  s->polling = true;
  CHECK(env, napi_create_external(env, s, session_free, NULL, &handle));
  CHECK(env, napi_type_tag_object(env, handle, &session_tag));
  return handle;
}

/* lazyUnmount(path) -> 0 or an errno: clears a stale mount before mounting again. */
static napi_value lazy_unmount_js(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  char *path = get_string(env, argv[0]);
  if (!path) {
    napi_throw_type_error(env, NULL, "fuse3 binding: lazyUnmount(path)");
    return NULL;
  }
  int r = lazy_unmount(path);
  free(path);
  return int_result(env, r);
}

NAPI_MODULE_INIT() {
  struct { const char *name; napi_callback fn; } fns[] = {
      {"mount", mount_js},        {"unmount", unmount_js},         {"lazyUnmount", lazy_unmount_js},
      {"invalidate", invalidate}, {"replyErr", reply_err},      {"replyEntry", reply_entry},
      {"replyCreate", reply_create}, {"replyAttr", reply_attr}, {"replyOpen", reply_open},
      {"replyReadlink", reply_readlink}, {"replyBuf", reply_buf}, {"replyWrite", reply_write},
      {"replyStatfs", reply_statfs}, {"replyDir", reply_dir},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
    napi_set_named_property(env, exports, fns[i].name, f);
  }
  return exports;
}
