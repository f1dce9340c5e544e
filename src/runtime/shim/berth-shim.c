/*
 * berth-shim: the per-container supervisor. One per running task, ~0.7 MiB resident (static).
 *
 * Why not `runc run` in the foreground: runc (Go) would stay resident at 10+ MiB per container.
 * Why not conmon: it truncates its log at the size cap instead of rotating N files, and its
 * start protocol (sync pipes through environment variables) is a lot of surface for what we need.
 *
 * What it does, in order:
 *   1. forks; the parent waits on a sync pipe and prints one line, "ok <shim-pid> <task-pid>" or
 *      "error <message>", then exits 0 or 1. So the caller (berth) just runs it and reads stdout.
 *   2. the child detaches (setsid, stdio on /dev/null), becomes a child subreaper, and runs
 *      `<runtime> ... run -d --pid-file P ...` with the container's stdout and stderr on two pipes.
 *      runc exits once the task runs; the task is reparented to us (subreaper), so we can wait(2)
 *      for it and learn its exit status even though berth itself may be long gone.
 *   3. copies the pipes into <log> as CRI log lines (what containerd and kubelet write:
 *      `2026-12-02T06:00:00.123456789Z stdout F text`, the time the shim read it, the stream, F for a
 *      line that ended with a newline or P for a piece of a longer one, whose rest follows in the next
 *      P/F records of that stream), rotating <log> -> <log>.1 -> ... <log>.(N-1) at the size cap.
 *      A record is written by one writev(2) and never split between two files, so a reader can
 *      parse each file alone.
 *   4. when the task exits and the pipe is drained, reads the cgroup's oom_kill counter and writes
 *      <exit-file> atomically (tmp, fsync, rename, fsync dir), then exits.
 *
 * With --console-socket S (a container with a terminal: the runtime was given the same socket),
 * the shim listens on S before the runtime runs, receives the terminal's master end from it
 * (SCM_RIGHTS) and copies the terminal's output into <log> as the stdout stream (a terminal has
 * only one); it keeps the master open while the task runs, so the task never loses its terminal.
 *
 * usage: berth-shim --task-id ID --exit-file F --log F --log-max-bytes N --log-max-files N
 *                   --pid-file F [--oom-file F] [--console-socket S] -- RUNTIME ARGS...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *task_id = "", *exit_file, *log_path, *pid_file, *oom_file, *console_socket;
static long long log_max = 10LL << 20;
static int log_files = 3;
static int log_fd = -1;
static long long log_size;

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* For how long the task ran: immune to wall-clock jumps (an RTC-less device setting its clock by NTP). */
static long long mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void open_log(int trunc) {
  log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | (trunc ? O_TRUNC : 0), 0640);
  struct stat st;
  log_size = (log_fd >= 0 && fstat(log_fd, &st) == 0) ? st.st_size : 0;
}

/* log -> log.1 -> ... -> log.(N-1); the oldest falls off. A reader following `log` sees the inode change. */
static int rotations;
static void rotate_log(void) {
  rotations++;
  if (log_fd >= 0) close(log_fd);
  if (log_files <= 1) {
    open_log(1);
    return;
  }
  char from[PATH_MAX], to[PATH_MAX];
  for (int i = log_files - 1; i >= 1; i--) {
    if (i == 1) snprintf(from, sizeof from, "%s", log_path);
    else snprintf(from, sizeof from, "%s.%d", log_path, i - 1);
    snprintf(to, sizeof to, "%s.%d", log_path, i);
    rename(from, to); /* ENOENT for the first rotations is fine */
  }
  open_log(0);
}

/* The longest piece of a line one record holds (containerd's default max_container_log_line_size):
   a longer line becomes P records of this size and a last F (or P, at the end of the stream). */
enum { LINE_MAX_BYTES = 16 * 1024 };
static const char *const stream_name[2] = {"stdout", "stderr"};

static void put_digits(char *at, long v, int n) {
  for (int i = n - 1; i >= 0; i--, v /= 10) at[i] = (char)('0' + v % 10);
}

/* The time now as RFC 3339 in UTC with nanoseconds, `2026-12-02T06:00:00.123456789Z ` (31 bytes,
   the space included). By hand rather than gmtime_r and snprintf: their libc code and tables would
   stay resident in every shim (the date from the day count is Howard Hinnant's civil_from_days). */
static int format_time(char *out) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long days = ts.tv_sec / 86400, secs = ts.tv_sec % 86400;
  long long z = days + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
  long long doe = z - era * 146097, yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
  long long d = doy - (153 * mp + 2) / 5 + 1, m = mp < 10 ? mp + 3 : mp - 9, y = yoe + era * 400 + (m <= 2);
  put_digits(out, (long)y, 4);
  out[4] = '-';
  put_digits(out + 5, (long)m, 2);
  out[7] = '-';
  put_digits(out + 8, (long)d, 2);
  out[10] = 'T';
  put_digits(out + 11, (long)(secs / 3600), 2);
  out[13] = ':';
  put_digits(out + 14, (long)(secs / 60 % 60), 2);
  out[16] = ':';
  put_digits(out + 17, (long)(secs % 60), 2);
  out[19] = '.';
  put_digits(out + 20, ts.tv_nsec, 9);
  out[29] = 'Z';
  out[30] = ' ';
  return 31;
}

/* One record: `<time> <stream> <P|F> <text>\n`, written whole by one writev (no copy of the text),
   rotating first when it would not fit in the current file (a record larger than the cap gets a
   file of its own). */
static void write_record(int stream, char tag, const char *text, size_t n) {
  char head[48];
  int hn = format_time(head);
  memcpy(head + hn, stream_name[stream], 6);
  hn += 6;
  head[hn++] = ' ';
  head[hn++] = tag;
  head[hn++] = ' ';
  if (n > LINE_MAX_BYTES) n = LINE_MAX_BYTES;
  struct iovec iov[3] = {{head, (size_t)hn}, {(void *)text, n}, {"\n", 1}};
  size_t len = (size_t)hn + n + 1;
  if (log_fd < 0) open_log(0);
  if (log_fd < 0) return; /* cannot log: drop output rather than block the task */
  if (log_size > 0 && log_size + (long long)len > log_max) rotate_log();
  if (log_fd < 0) return;
  size_t left = len;
  int first = 0;
  while (left > 0) {
    ssize_t w = writev(log_fd, iov + first, 3 - first);
    if (w < 0) {
      if (errno == EINTR) continue;
      return; /* disk full or similar: drop, never block the task on its output */
    }
    log_size += w;
    left -= (size_t)w;
    /* A short write (rare on a regular file): go on from where it stopped. */
    size_t done = (size_t)w;
    while (first < 3 && done >= iov[first].iov_len) done -= iov[first++].iov_len;
    if (first < 3) {
      iov[first].iov_base = (char *)iov[first].iov_base + done;
      iov[first].iov_len -= done;
    }
  }
}

/* The start of a line not ended yet, per stream (stdout, stderr). */
static char pending[2][LINE_MAX_BYTES];
static size_t pending_len[2];

/* Output read from a stream: every ended line becomes an F record, a pending piece that reaches
   LINE_MAX_BYTES a P record; the rest waits for more. */
static void write_log(int stream, const char *buf, size_t n) {
  char *p = pending[stream];
  size_t *plen = &pending_len[stream];
  while (n > 0) {
    const char *nl = memchr(buf, '\n', n);
    size_t upto = nl ? (size_t)(nl - buf) : n;
    size_t room = LINE_MAX_BYTES - *plen;
    if (upto >= room) {
      /* The line is longer than a record: a P record of exactly LINE_MAX_BYTES. */
      if (*plen == 0) {
        write_record(stream, 'P', buf, LINE_MAX_BYTES);
      } else {
        memcpy(p + *plen, buf, room);
        write_record(stream, 'P', p, LINE_MAX_BYTES);
        *plen = 0;
      }
      buf += room;
      n -= room;
      continue;
    }
    if (!nl) {
      memcpy(p + *plen, buf, n);
      *plen += n;
      return;
    }
    if (*plen == 0) {
      write_record(stream, 'F', buf, upto);
    } else {
      memcpy(p + *plen, buf, upto);
      write_record(stream, 'F', p, *plen + upto);
      *plen = 0;
    }
    buf += upto + 1;
    n -= upto + 1;
  }
}

/* The stream ended: a last line without a newline is still a line (containerd writes it as F). */
static void flush_log(int stream) {
  if (pending_len[stream] > 0) write_record(stream, 'F', pending[stream], pending_len[stream]);
  pending_len[stream] = 0;
}

static long long read_oom_kills(void) {
  if (!oom_file) return 0;
  FILE *f = fopen(oom_file, "re");
  if (!f) return 0;
  char key[64];
  long long v, found = 0;
  while (fscanf(f, "%63s %lld", key, &v) == 2)
    if (strcmp(key, "oom_kill") == 0) found = v;
  fclose(f);
  return found;
}

static int write_file_atomic(const char *path, const char *text) {
  char tmp[PATH_MAX];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  size_t len = strlen(text);
  if (write(fd, text, len) != (ssize_t)len || fsync(fd) != 0) {
    close(fd);
    return -1;
  }
  close(fd);
  if (rename(tmp, path) != 0) return -1;
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) {
    if (slash == dir) slash[1] = 0;
    else *slash = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      fsync(dfd);
      close(dfd);
    }
  }
  return 0;
}

static int sync_fd = -1;
static void reply(const char *fmt, ...) {
  if (sync_fd < 0) return;
  char buf[2048];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  if (n > (int)sizeof buf - 1) n = sizeof buf - 1;
  if (write(sync_fd, buf, (size_t)n) < 0) { /* the caller went away: nothing to tell */ }
  close(sync_fd);
  sync_fd = -1;
}

/* JSON-escape into out (for runtime error text in the reply). */
static void sanitize(const char *in, char *out, size_t cap) {
  size_t j = 0;
  for (size_t i = 0; in[i] && j + 2 < cap; i++) out[j++] = (in[i] == '\n' || in[i] == '\r') ? ' ' : in[i];
  out[j] = 0;
}

int main(int argc, char **argv) {
  int i = 1;
  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) { i++; break; }
    if (i + 1 >= argc) { fprintf(stderr, "berth-shim: %s needs a value\n", a); return 2; }
    const char *v = argv[++i];
    if (strcmp(a, "--task-id") == 0) task_id = v;
    else if (strcmp(a, "--exit-file") == 0) exit_file = v;
    else if (strcmp(a, "--log") == 0) log_path = v;
    else if (strcmp(a, "--log-max-bytes") == 0) log_max = atoll(v);
    else if (strcmp(a, "--log-max-files") == 0) log_files = atoi(v);
    else if (strcmp(a, "--pid-file") == 0) pid_file = v;
    else if (strcmp(a, "--oom-file") == 0) oom_file = v;
    else if (strcmp(a, "--console-socket") == 0) console_socket = v;
    else { fprintf(stderr, "berth-shim: unknown option %s\n", a); return 2; }
  }
  if (!exit_file || !log_path || !pid_file || i >= argc || log_max <= 0 || log_files < 1) {
    fprintf(stderr, "usage: berth-shim --task-id ID --exit-file F --log F --log-max-bytes N --log-max-files N "
                    "--pid-file F [--oom-file F] [--console-socket S] -- RUNTIME ARGS...\n");
    return 2;
  }
  char **runtime_argv = argv + i;

  int sp[2];
  if (pipe2(sp, O_CLOEXEC) != 0) { perror("berth-shim: pipe"); return 1; }
  pid_t daemon = fork();
  if (daemon < 0) { perror("berth-shim: fork"); return 1; }
  if (daemon > 0) {
    /* The foreground half: relay the daemon's one-line verdict. */
    close(sp[1]);
    char buf[2048];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof buf - 1 && ((r = read(sp[0], buf + len, sizeof buf - 1 - len)) > 0 || (r < 0 && errno == EINTR)))
      if (r > 0) len += (size_t)r;
    buf[len] = 0;
    if (len == 0) { printf("error berth-shim exited before the task started\n"); return 1; }
    fputs(buf, stdout);
    return strncmp(buf, "ok ", 3) == 0 ? 0 : 1;
  }

  /* The daemon half: no controlling terminal, no tie to berth's process group or stdio. */
  close(sp[0]);
  sync_fd = sp[1];
  setsid();
  signal(SIGHUP, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  int devnull = open("/dev/null", O_RDWR);
  if (devnull >= 0) {
    dup2(devnull, 0);
    dup2(devnull, 1);
    dup2(devnull, 2);
    if (devnull > 2) close(devnull);
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) { reply("error prctl(PR_SET_CHILD_SUBREAPER): %s\n", strerror(errno)); return 1; }

  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) { reply("error pipe: %s\n", strerror(errno)); return 1; }
  open_log(0);
  if (log_fd < 0) { reply("error cannot open log %s: %s\n", log_path, strerror(errno)); return 1; }
  long long log_size_before = log_size;

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) { reply("error signalfd: %s\n", strerror(errno)); return 1; }

  /* A terminal: listen where the runtime will send its master end. */
  int console_listen = -1, console_fd = -1;
  if (console_socket) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(console_socket) >= sizeof addr.sun_path) { reply("error console socket path too long: %s\n", console_socket); return 1; }
    strcpy(addr.sun_path, console_socket);
    unlink(console_socket);
    console_listen = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (console_listen < 0 || bind(console_listen, (struct sockaddr *)&addr, sizeof addr) != 0 || listen(console_listen, 1) != 0) {
      reply("error console socket %s: %s\n", console_socket, strerror(errno));
      return 1;
    }
  }

  /* The baseline before the runtime makes the cgroup (0 when it does not exist yet): a task can be
     OOM-killed before the runtime even exits. */
  long long oom_before = read_oom_kills();
  pid_t rt = fork();
  if (rt < 0) { reply("error fork: %s\n", strerror(errno)); return 1; }
  if (rt == 0) {
    sigprocmask(SIG_UNBLOCK, &mask, NULL);
    signal(SIGHUP, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    dup2(out[1], 1);
    dup2(err[1], 2);
    execvp(runtime_argv[0], runtime_argv);
    dprintf(2, "cannot execute %s: %s\n", runtime_argv[0], strerror(errno));
    _exit(127);
  }
  close(out[1]);
  close(err[1]);

  /* Statuses of children reaped before we knew which pid is the task (a fast `echo` can exit
     before runc does). */
  enum { EARLY = 64 };
  pid_t early_pid[EARLY];
  int early_status[EARLY], n_early = 0;

  int rt_done = 0, task_done = 0, out_eof = 0, err_eof = 0, task_status = 0;
  pid_t task_pid = 0;
  long long started_ms = 0, exited_ms = 0, started_mono = 0, exited_mono = 0;
  char rt_out[1024];
  size_t rt_out_len = 0;

  while (!(task_done && out_eof && err_eof && console_fd < 0)) {
    struct pollfd fds[5] = {{sfd, POLLIN, 0}, {out_eof ? -1 : out[0], POLLIN, 0}, {console_listen, POLLIN, 0}, {console_fd, POLLIN, 0},
                            {err_eof ? -1 : err[0], POLLIN, 0}};
    /* Once the task is gone, give stragglers holding the pipe a short while, then stop waiting. */
    int timeout = task_done ? 2000 : -1;
    int pr = poll(fds, 5, timeout);
    if (pr < 0 && errno == EINTR) continue;
    if (pr == 0 && task_done) break;

    if (fds[2].revents & POLLIN) {
      /* The runtime connects once and sends the master end as SCM_RIGHTS. */
      int conn = accept4(console_listen, NULL, NULL, SOCK_CLOEXEC);
      if (conn >= 0) {
        char byte[256];
        union { struct cmsghdr h; char buf[CMSG_SPACE(sizeof(int))]; } ctl;
        struct iovec iov = {byte, sizeof byte};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.buf, .msg_controllen = sizeof ctl.buf};
        if (recvmsg(conn, &msg, MSG_CMSG_CLOEXEC) > 0) {
          struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
          if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) memcpy(&console_fd, CMSG_DATA(c), sizeof(int));
        }
        close(conn);
        close(console_listen);
        console_listen = -1;
        unlink(console_socket);
      }
    }

    if (console_fd >= 0 && (fds[3].revents & (POLLIN | POLLHUP | POLLERR))) {
      char buf[65536];
      ssize_t r = read(console_fd, buf, sizeof buf);
      if (r > 0) write_log(0, buf, (size_t)r);
      /* EIO once the last process holding the terminal is gone. */
      else if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
        flush_log(0);
        close(console_fd);
        console_fd = -1;
      }
    }

    for (int stream = 0; stream < 2; stream++) {
      struct pollfd *f = stream == 0 ? &fds[1] : &fds[4];
      if (!(f->revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buf[65536];
      ssize_t r = read(f->fd, buf, sizeof buf);
      if (r > 0) {
        write_log(stream, buf, (size_t)r);
        if (!rt_done) {
          size_t keep = (size_t)r < sizeof rt_out - 1 - rt_out_len ? (size_t)r : sizeof rt_out - 1 - rt_out_len;
          memcpy(rt_out + rt_out_len, buf, keep);
          rt_out_len += keep;
        }
      } else if (r == 0 || (r < 0 && errno != EINTR && errno != EAGAIN)) {
        flush_log(stream);
        if (stream == 0) out_eof = 1;
        else err_eof = 1;
      }
    }

    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {}
      int st;
      pid_t w;
      while ((w = waitpid(-1, &st, WNOHANG)) > 0) {
        if (w == rt) {
          rt_done = 1;
          if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            rt_out[rt_out_len] = 0;
            char clean[1024];
            sanitize(rt_out, clean, sizeof clean);
            reply("error %s failed (%s %d): %s\n", runtime_argv[0], WIFEXITED(st) ? "exit status" : "signal",
                  WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), clean);
            /* No task ran: what reached the log was the runtime's error, already in the reply. */
            if (rotations == 0 && ftruncate(log_fd, log_size_before) != 0) { /* keep it then */ }
            return 1;
          }
          FILE *pf = fopen(pid_file, "re");
          long p = 0;
          if (pf) {
            if (fscanf(pf, "%ld", &p) != 1) p = 0;
            fclose(pf);
          }
          if (p <= 0) { reply("error %s did not write the pid file %s\n", runtime_argv[0], pid_file); return 1; }
          task_pid = (pid_t)p;
          started_ms = now_ms();
          started_mono = mono_ms();
          for (int k = 0; k < n_early; k++)
            if (early_pid[k] == task_pid) {
              task_done = 1;
              task_status = early_status[k];
              exited_ms = now_ms();
              exited_mono = mono_ms();
            }
          reply("ok %d %d\n", (int)getpid(), (int)task_pid);
        } else if (task_pid && w == task_pid) {
          task_done = 1;
          task_status = st;
          exited_ms = now_ms();
          exited_mono = mono_ms();
        } else if (!task_pid && n_early < EARLY) {
          early_pid[n_early] = w;
          early_status[n_early++] = st;
        }
      }
    }
  }

  flush_log(0);
  flush_log(1);
  long long oom_after = read_oom_kills();
  int code = WIFEXITED(task_status) ? WEXITSTATUS(task_status) : 128 + WTERMSIG(task_status);
  int sig = WIFSIGNALED(task_status) ? WTERMSIG(task_status) : 0;
  char json[1024];
  snprintf(json, sizeof json,
           "{\"taskId\":\"%s\",\"pid\":%d,\"exitCode\":%d,\"signal\":%d,\"oomKilled\":%s,\"startedAtMs\":%lld,"
           "\"exitedAtMs\":%lld,\"ranForMs\":%lld}\n",
           task_id, (int)task_pid, code, sig, oom_after > oom_before ? "true" : "false", started_ms, exited_ms,
           exited_mono - started_mono);
  write_file_atomic(exit_file, json);
  return 0;
}
