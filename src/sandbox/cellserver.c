/* The fork-server loop of a cell, in C, loaded into the Python zygote.
 *
 * Why C: in a VM a copy-on-write fault costs ~13 us, and after every fork each page the
 * parent writes faults once more. A Python loop that parses requests and waits for children
 * dirties hundreds of pages per run; this loop dirties a handful. The child also isolates
 * itself here (rlimits, capabilities, seccomp) before it returns to Python, or execs.
 *
 * Protocol on the control socket (binary, host byte order): a request header with file
 * descriptors attached by SCM_RIGHTS, then `payload_len` bytes; a reply header, then
 * `error_len` bytes. The layouts are mirrored in cell.cpp (struct WireRequest, WireReply).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { OP_RUN = 1, OP_KILL = 2, OP_RESET = 3 };
enum { F_KEEP_WORK = 1, F_SESSION = 2, F_EXEC = 4 };
enum { N_RLIMITS = 7, MAX_FDS = 8, SETUP_FD = MAX_FDS };
static const int kRlimits[N_RLIMITS] = {RLIMIT_CPU,     RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_CORE,
                                        RLIMIT_MEMLOCK, RLIMIT_NPROC, RLIMIT_DATA};

struct wire_request {
  uint32_t magic, op, flags, payload_len;
  int64_t rlimits[N_RLIMITS]; /* -1: leave as is */
};
struct wire_reply {
  uint32_t magic;
  int32_t exit_code, signal, error_len;
  double cpu_s;
  int64_t maxrss_kb;
};
#define REQ_MAGIC 0x4e555257u /* "WRUN" */
#define REP_MAGIC 0x4e4f4457u /* "WDON" */

struct tmpfs {
  const char* path;
  const char* options;
};

static int read_all(int fd, void* buf, size_t n) {
  char* p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r, n -= r;
  }
  return 0;
}

static int write_all(int fd, const void* buf, size_t n) {
  const char* p = buf;
  while (n > 0) {
    ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w, n -= w;
  }
  return 0;
}

/* Reads one request; returns its fds in fds[0..*nfds). 0 ok, -1 the host is gone. */
static int recv_request(int ctl, struct wire_request* h, int* fds, int* nfds, char** payload) {
  struct msghdr mh = {0};
  struct iovec iov = {h, sizeof *h};
  union {
    char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
    struct cmsghdr align;
  } cbuf;
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = cbuf.buf;
  mh.msg_controllen = sizeof cbuf.buf;
  ssize_t r;
  do r = recvmsg(ctl, &mh, MSG_CMSG_CLOEXEC);
  while (r < 0 && errno == EINTR);
  if (r <= 0) return -1;
  *nfds = 0;
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
    if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
      int n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
      memcpy(fds + *nfds, CMSG_DATA(c), n * sizeof(int));
      *nfds += n;
    }
  if ((size_t)r < sizeof *h && read_all(ctl, (char*)h + r, sizeof *h - r) < 0) return -1;
  if (h->magic != REQ_MAGIC) return -1;
  *payload = NULL;
  if (h->payload_len) {
    *payload = malloc(h->payload_len + 1);
    if (!*payload || read_all(ctl, *payload, h->payload_len) < 0) return -1;
    (*payload)[h->payload_len] = 0;
  }
  return 0;
}

static void fresh_tmpfs(const struct tmpfs* mounts, int n) {
  for (int i = 0; i < n; ++i) {
    umount2(mounts[i].path, MNT_DETACH);
    mount("tmpfs", mounts[i].path, "tmpfs", MS_NOSUID | MS_NODEV, mounts[i].options);
  }
}

/* In the child: after this, the process holds no privilege and no descriptor but its own. */
static const char* isolate(const struct wire_request* h, const int* fds, int nfds, int setup_w,
                           const struct sock_fprog* filter) {
  int hi[MAX_FDS + 1];
  for (int i = 0; i < nfds; ++i) hi[i] = fcntl(fds[i], F_DUPFD, 100);
  hi[nfds] = fcntl(setup_w, F_DUPFD_CLOEXEC, 100);
  /* 0-2: stdio; then the channel, session pipes and service socket the host sent, in order;
   * the set-up report above them all at SETUP_FD (close-on-exec). */
  for (int i = 0; i < nfds; ++i)
    if (hi[i] < 0 || dup2(hi[i], i) < 0) return "dup2";
  if (hi[nfds] < 0 || dup3(hi[nfds], SETUP_FD, O_CLOEXEC) < 0) return "dup2";
  syscall(SYS_close_range, SETUP_FD + 1, ~0U, 0);
  if (nfds < SETUP_FD) syscall(SYS_close_range, nfds, SETUP_FD - 1, 0);
  if (setsid() < 0) return "setsid";
  for (int i = 0; i < N_RLIMITS; ++i) {
    if (h->rlimits[i] < 0) continue;
    /* CPU: the kernel sends SIGXCPU at the soft limit, which ends the process and says which
     * limit fired; the hard limit, a second later, SIGKILLs a process that ignores it. */
    rlim_t hard = (rlim_t)h->rlimits[i] + (kRlimits[i] == RLIMIT_CPU);
    struct rlimit rl = {(rlim_t)h->rlimits[i], hard};
    if (setrlimit(kRlimits[i], &rl) != 0) return "setrlimit";
  }
  if (chdir("/work") != 0) return "chdir /work";
  /* When the run cgroup runs out of memory, the run dies, never the fork-server. */
  int oom = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
  if (oom >= 0) {
    (void)!write(oom, "1000", 4);
    close(oom);
  }
  for (int cap = 0; prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0; ++cap) {
  }
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) != 0) return "clear ambient capabilities";
  struct {
    uint32_t version;
    int pid;
  } hdr = {0x20080522, 0};
  uint32_t data[6] = {0};
  if (syscall(SYS_capset, &hdr, data) != 0) return "capset";
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return "no_new_privs";
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, filter, 0, 0) != 0) return "seccomp";
  return NULL;
}

/* The run's pid 1. The program must not be pid 1 of its namespace: the kernel drops the
 * default-action signals pid 1 sends itself (raise(), kill $$, os.kill(os.getpid(), ...)), and
 * abort() then ends in a SIGSEGV. So each run's namespace gets this init first, a thread-like
 * clone sharing the fork-server's memory (it costs no copy of the address space), and the
 * program is forked beside it: the fork-server's own child, so its wait status and rusage are
 * exact. The init reaps what is orphaned to it (SIGCHLD ignored) and is killed when the
 * program ends, which ends everything else the run started. It keeps the fork-server's
 * privileges, so the unprivileged program can neither signal nor trace it. It touches no
 * memory but its stack: no libc state is shared with the fork-server's thread. */
static char init_stack[16384] __attribute__((aligned(16)));
static int run_init(void* arg) {
  (void)arg;
  struct sigaction ign = {.sa_handler = SIG_IGN};
  sigaction(SIGCHLD, &ign, NULL);
  for (;;) syscall(SYS_ppoll, NULL, 0, NULL, NULL, 0); /* sleeps for good: no handler wakes it */
  return 0;
}

/* Splits "a\0b\0\0c\0\0" into two NULL-terminated vectors (argv, envp). */
static void split_exec(char* p, char* end, char** argv, char** envp, int max) {
  char** out = argv;
  int n = 0;
  while (p < end) {
    if (*p == 0) { /* an empty string ends a vector */
      out[n] = NULL;
      if (out == envp) return;
      out = envp, n = 0, ++p;
      continue;
    }
    if (n < max - 1) out[n++] = p;
    p += strlen(p) + 1;
  }
  out[n] = NULL;
}

static void reply(int ctl, int status, const struct rusage* ru, const char* err, int err_len) {
  struct wire_reply r = {REP_MAGIC, -1, 0, err_len, 0, 0};
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  else r.exit_code = WEXITSTATUS(status);
  r.cpu_s = ru->ru_utime.tv_sec + ru->ru_stime.tv_sec + (ru->ru_utime.tv_usec + ru->ru_stime.tv_usec) / 1e6;
  r.maxrss_kb = ru->ru_maxrss;
  if (write_all(ctl, &r, sizeof r) < 0 || (err_len && write_all(ctl, err, err_len) < 0)) _exit(0);
}

/* Serves requests forever in the fork-server. Returns 0 only in a child that must run Python:
 * *payload holds the request for Python (JSON). Returns -1 if the host is gone. */
int wand_serve(int ctl, const void* bpf, int bpf_len, const char* const* tmpfs_spec, int n_tmpfs,
               char** payload_out, int* payload_len_out) {
  struct tmpfs mounts[8];
  for (int i = 0; i < n_tmpfs && i < 8; ++i) mounts[i].path = tmpfs_spec[2 * i], mounts[i].options = tmpfs_spec[2 * i + 1];
  struct sock_fprog filter = {(unsigned short)(bpf_len / 8), (struct sock_filter*)bpf};
  int pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  signal(SIGCHLD, SIG_DFL);
  for (;;) {
    struct wire_request h;
    int fds[MAX_FDS], nfds = 0;
    char* payload = NULL;
    if (recv_request(ctl, &h, fds, &nfds, &payload) < 0) return -1;
    if (h.op != OP_RUN || nfds < 3) {
      for (int i = 0; i < nfds; ++i) close(fds[i]);
      free(payload);
      if (h.op == OP_RESET) { /* acknowledged, so the host never writes into a mount being replaced */
        fresh_tmpfs(mounts, n_tmpfs);
        struct rusage none = {0};
        reply(ctl, 0, &none, NULL, 0);
      }
      continue; /* a kill that arrived after its run ended */
    }
    int setup[2];
    if (pipe2(setup, O_CLOEXEC) != 0) return -1;
    /* A new pid namespace: its pid 1 is the run's init (run_init), the program its pid 2. */
    if (setns(pidns, CLONE_NEWPID) != 0 || unshare(CLONE_NEWPID) != 0) return -1;
    pid_t init = clone(run_init, init_stack + sizeof init_stack, CLONE_VM | SIGCHLD, NULL);
    pid_t pid = init < 0 ? -1 : fork();
    if (pid == 0) {
      close(setup[0]);
      const char* err = isolate(&h, fds, nfds, setup[1], &filter);
      if (err) {
        char msg[256];
        int n = snprintf(msg, sizeof msg, "sandbox set-up failed at %s: %s", err, strerror(errno));
        (void)!write(SETUP_FD, msg, n);
        _exit(127);
      }
      if (h.flags & F_EXEC) {
        char* argv[256];
        char* envp[256];
        split_exec(payload, payload + h.payload_len, argv, envp, 256);
        signal(SIGPIPE, SIG_DFL);
        execve(argv[0], argv, envp);
        char msg[512];
        int n = snprintf(msg, sizeof msg, "cannot execute %s: %s", argv[0], strerror(errno));
        (void)!write(SETUP_FD, msg, n);
        _exit(127);
      }
      close(SETUP_FD);
      *payload_out = payload;
      *payload_len_out = (int)h.payload_len;
      return 0;
    }
    close(setup[1]);
    for (int i = 0; i < nfds; ++i) close(fds[i]);
    free(payload);
    if (pid < 0) {
      if (init > 0) kill(init, SIGKILL), waitpid(init, NULL, 0);
      struct rusage none = {0};
      const char* m = "fork failed";
      reply(ctl, 127 << 8, &none, m, (int)strlen(m));
      close(setup[0]);
      continue;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    for (;;) {
      struct pollfd p[2] = {{pidfd, POLLIN, 0}, {ctl, POLLIN, 0}};
      if (poll(p, 2, -1) < 0) continue;
      if (p[0].revents) break;
      if (p[1].revents) {
        struct wire_request k;
        int kfds[MAX_FDS], nk = 0;
        char* kp = NULL;
        int gone = recv_request(ctl, &k, kfds, &nk, &kp) < 0;
        for (int i = 0; i < nk; ++i) close(kfds[i]);
        free(kp);
        if (gone || k.op == OP_KILL) kill(pid, SIGKILL);
        if (gone) _exit(0); /* pid 1 of the cell: its exit ends everything in it */
      }
    }
    close(pidfd);
    int status = 0;
    struct rusage ru;
    wait4(pid, &status, 0, &ru);
    kill(init, SIGKILL); /* and with it whatever the program left running */
    waitpid(init, NULL, 0);
    char err[512];
    int err_len = 0;
    fcntl(setup[0], F_SETFL, O_NONBLOCK);
    ssize_t n = read(setup[0], err, sizeof err);
    if (n > 0) err_len = (int)n;
    close(setup[0]);
    /* Replaced before the reply: the host writes the next run's inputs as soon as it has it. */
    if (!(h.flags & F_KEEP_WORK)) fresh_tmpfs(mounts, n_tmpfs);
    reply(ctl, status, &ru, err, err_len);
  }
}
