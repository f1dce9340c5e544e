/*
 * berth-apply-layer: applies one OCI layer (a tar stream, gzip/zstd/uncompressed) into a directory,
 * with exactly the rules of src/diff/apply.ts (confine.ts, limits.ts): the native apply path, in a
 * process of its own so that decompression, hashing and file creation run beside Node, not in it.
 *
 * Two threads joined by a ring of buffers:
 *   - the reader decompresses stdin with libarchive (filter gzip/zstd, format "raw": the
 *     uncompressed bytes as they are), SHA-256s them (the diff_id), counts them against the byte
 *     limit, looks at the free space every --check-every-bytes, and copies them into the ring;
 *   - the applier reads the ring with libarchive's tar reader and applies each entry.
 * Whichever thread meets an error first prints it and ends the process (_exit), so a failure is
 * never followed by more writes.
 *
 * Protocol, one JSON object a line on stdout (names are raw bytes: every byte >= 0x80 is written
 * as \u00XX, so the reader gets them back with Buffer.from(s, 'latin1')):
 *   {"warn":"..."}                                       a diagnostic that does not fail the layer
 *   {"ok":{"diffId":"sha256:..","size":N,"entries":N,"impliedDirs":[..],"usage":{"size":N,"inodes":N}}}   then exit 0
 *     (usage: the root's disk usage as the snapshotter measures it, diskUsage in dir-snapshotter.ts:
 *     512-byte blocks and inodes, each hardlinked inode once; it spares the commit a walk in Node)
 *   {"error":{"kind":"Corrupt","message":"..","place":".."}}                then exit 1
 *   {"limit":{"what":"layerBytes|entries|heldBytes|header|reserve", ...numbers}}  then exit 1
 * Messages leave out the "layer <digest>: " prefix, which the caller adds; the caller words the
 * limit errors itself (LayerBudget), so they read as the JavaScript path's.
 *
 * usage: berth-apply-layer --root DIR --compression gzip|zstd|none --whiteouts overlay|native
 *          [--parent DIR]... [--layer-bytes N] [--entries N] [--header-bytes N] [--held-bytes N]
 *          [--reserve-bytes N] [--check-every-bytes N] [--expect sha256:..] [--sync] [--follow N]
 * --sync: syncfs(2) the root's filesystem at the end, unless the diff id differs from --expect.
 * --follow N: stdin is a blob file still being downloaded (src/diff/live-blob.ts): it is read as it
 *   grows until N bytes, and a file that shrinks (the download restarted) is an Unavailable error.
 *   The caller kills the helper if the download fails. Without it, stdin is read to its end.
 */
#define _GNU_SOURCE
#include <archive.h>
#include <archive_entry.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <locale.h>
/* SHA256_* rather than EVP: the same SHA-NI code without OpenSSL 3's provider machinery, whose
 * set-up alone kept 2 MiB more of libcrypto resident in each helper (5.0 against 3.0 MiB for a
 * program that only hashes). Deprecated in OpenSSL 3, not removed. */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/prctl.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (1 << 20)
#define MAX_SYMLINKS 255
#define WH_PREFIX ".wh."
#define WH_META_PREFIX ".wh..wh."
#define WH_OPAQUE ".wh..wh..opq"

/* ------------------------------------------------------------------------------------ options */

static const char *root;
static size_t root_len;
static int overlay_whiteouts;
static const char **parents;
static int n_parents;
static const char *compression = "gzip";
static const char *expect;
static int do_sync;
static long long lim_layer_bytes = 16LL << 30, lim_entries = 1000000, lim_header = 1 << 20, lim_held = 256 << 20;
static long long lim_reserve = 256 << 20, lim_check_every = 64 << 20;

/* --------------------------------------------------------------------------------- reporting */

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

/*
 * A JSON string of raw bytes: control characters, quote and backslash escaped, and bytes >= 0x80
 * too when `high` (the protocol's latin1 convention), else left as they are (JSON.stringify of a name).
 */
static void put_json_string(FILE *f, const char *s, int high) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
    else if (*p < 0x20 || *p == 0x7f || (high && *p >= 0x80)) fprintf(f, "\\u%04x", *p);
    else fputc(*p, f);
  }
  fputc('"', f);
}

static char *vformat(const char *fmt, va_list ap) {
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) s = NULL;
  return s ? s : (char *)"(out of memory)";
}

/* One protocol line: `head`, the message, the place if any, `tail`. The caller holds out_lock. */
static void put_line(const char *head, const char *msg, const char *place, const char *tail) {
  fputs(head, stdout);
  put_json_string(stdout, msg, 1);
  if (place) {
    fputs(",\"place\":", stdout);
    put_json_string(stdout, place, 1);
  }
  fputs(tail, stdout);
  fflush(stdout);
}

static void warn(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = vformat(fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&out_lock);
  put_line("{\"warn\":", msg, NULL, "}\n");
  pthread_mutex_unlock(&out_lock);
  free(msg);
}

/* Print the error and end the process: the first error of either thread is the one reported. */
static void __attribute__((noreturn)) fail(const char *kind, const char *place, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = vformat(fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&out_lock); /* kept: no other line follows */
  char head[64];
  snprintf(head, sizeof head, "{\"error\":{\"kind\":\"%s\",\"message\":", kind);
  put_line(head, msg, place, "}}\n");
  _exit(1);
}

static void __attribute__((noreturn)) fail_limit(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *fields = vformat(fmt, ap);
  va_end(ap);
  pthread_mutex_lock(&out_lock);
  printf("{\"limit\":{%s}}\n", fields);
  fflush(stdout);
  _exit(1);
}

/* A failed system call, worded as Node words one ("ENOENT: no such file or directory, open '/x'"). */
static void __attribute__((noreturn)) fail_sys(const char *call, const char *path, const char *path2) {
  int e = errno;
  char desc[256];
  snprintf(desc, sizeof desc, "%s", strerror(e));
  if (desc[0] >= 'A' && desc[0] <= 'Z' && !(desc[1] >= 'A' && desc[1] <= 'Z')) desc[0] += 'a' - 'A';
  const char *name = strerrorname_np(e);
  if (path2)
    fail(e == ENOSPC ? "ResourceExhausted" : "Internal", path, "apply failed: %s: %s, %s '%s' -> '%s'", name ? name : "E?", desc, call, path, path2);
  fail(e == ENOSPC ? "ResourceExhausted" : "Internal", path, "apply failed: %s: %s, %s '%s'", name ? name : "E?", desc, call, path);
}

static void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) fail("ResourceExhausted", NULL, "apply failed: out of memory");
  return p;
}
static void *xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) fail("ResourceExhausted", NULL, "apply failed: out of memory");
  return p;
}
static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(xmalloc(n), s, n);
}
static char *join(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  char *s = xmalloc(la + lb + 2);
  memcpy(s, a, la);
  s[la] = '/';
  memcpy(s + la + 1, b, lb + 1);
  return s;
}

/* --------------------------------------------------------------------- a string-keyed map */

/* Open addressing, linear probing; deleted slots are tombstones until the next growth. */
struct map {
  char **keys; /* NULL = empty, TOMB = deleted */
  void **vals;
  size_t cap, used, live;
};
static char TOMB_[1];
#define TOMB TOMB_

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

static void map_free_slot(struct map *m, size_t i, void (*free_val)(void *)) {
  free(m->keys[i]);
  if (free_val) free_val(m->vals[i]);
  m->keys[i] = TOMB;
  m->live--;
}

static void map_put(struct map *m, const char *key, void *val, void (*free_val)(void *));

static void map_grow(struct map *m) {
  struct map old = *m;
  m->cap = old.cap ? old.cap * 2 : 64;
  while (m->cap < old.live * 4) m->cap *= 2;
  m->keys = calloc(m->cap, sizeof *m->keys);
  m->vals = calloc(m->cap, sizeof *m->vals);
  if (!m->keys || !m->vals) fail("ResourceExhausted", NULL, "apply failed: out of memory");
  m->used = m->live = 0;
  for (size_t i = 0; i < old.cap; i++) {
    if (old.keys[i] && old.keys[i] != TOMB) {
      map_put(m, old.keys[i], old.vals[i], NULL);
      free(old.keys[i]);
    }
  }
  free(old.keys);
  free(old.vals);
}

static ssize_t map_find(const struct map *m, const char *key) {
  if (!m->cap) return -1;
  for (size_t i = hash_str(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if (!m->keys[i]) return -1;
    if (m->keys[i] != TOMB && strcmp(m->keys[i], key) == 0) return (ssize_t)i;
  }
}

static void *map_get(const struct map *m, const char *key) {
  ssize_t i = map_find(m, key);
  return i < 0 ? NULL : m->vals[i];
}

static void map_put(struct map *m, const char *key, void *val, void (*free_val)(void *)) {
  ssize_t at = map_find(m, key);
  if (at >= 0) {
    if (free_val) free_val(m->vals[at]);
    m->vals[at] = val;
    return;
  }
  if ((m->used + 1) * 2 > m->cap) map_grow(m);
  size_t i = hash_str(key) & (m->cap - 1);
  while (m->keys[i] && m->keys[i] != TOMB) i = (i + 1) & (m->cap - 1);
  if (!m->keys[i]) m->used++;
  m->keys[i] = xstrdup(key);
  m->vals[i] = val;
  m->live++;
}

static void map_delete(struct map *m, const char *key, void (*free_val)(void *)) {
  ssize_t i = map_find(m, key);
  if (i >= 0) map_free_slot(m, (size_t)i, free_val);
}

static void map_clear(struct map *m, void (*free_val)(void *)) {
  for (size_t i = 0; i < m->cap; i++)
    if (m->keys[i] && m->keys[i] != TOMB) free(m->keys[i]), free_val ? free_val(m->vals[i]) : (void)0;
  if (m->cap) memset(m->keys, 0, m->cap * sizeof *m->keys);
  m->used = m->live = 0;
}

/* ------------------------------------------------------------------------- confinement */

/* lstat that reports a path that does not exist (ENOENT, or ENOTDIR below a file) as 0. */
static int lstat_or_missing(const char *path, struct stat *st) {
  if (lstat(path, st) == 0) return 1;
  if (errno == ENOENT || errno == ENOTDIR) return 0;
  fail_sys("lstat", path, NULL);
}

/* confine.ts cleanName: rooted at '/', '.' and empty components dropped, '..' cannot climb. */
static char *clean_name(const char *name) {
  size_t n = strlen(name);
  char *out = xmalloc(n + 1);
  size_t len = 0;
  const char *p = name;
  while (*p) {
    while (*p == '/') p++;
    const char *s = p;
    while (*p && *p != '/') p++;
    size_t cl = (size_t)(p - s);
    if (cl == 0 || (cl == 1 && s[0] == '.')) continue;
    if (cl == 2 && s[0] == '.' && s[1] == '.') {
      while (len > 0 && out[len - 1] != '/') len--;
      if (len > 0) len--;
      continue;
    }
    if (len) out[len++] = '/';
    memcpy(out + len, s, cl);
    len += cl;
  }
  out[len] = '\0';
  return out;
}

/* A stack of path components still to resolve (in reverse order), each owned. */
struct comps {
  char **v;
  size_t n, cap;
};
static void comps_push_path(struct comps *c, const char *path) {
  /* Push the components of `path` so that its first component is popped first. */
  size_t len = strlen(path);
  size_t end = len;
  for (;;) {
    size_t start = end;
    while (start > 0 && path[start - 1] != '/') start--;
    if (c->n == c->cap) c->v = xrealloc(c->v, (c->cap = c->cap ? c->cap * 2 : 16) * sizeof *c->v);
    char *s = xmalloc(end - start + 1);
    memcpy(s, path + start, end - start);
    s[end - start] = '\0';
    c->v[c->n++] = s;
    if (start == 0) break;
    end = start - 1;
  }
}

/*
 * confine.ts rootPath: resolve `rel` inside `base`, following symlinks of existing components
 * within it (an absolute target restarts at `base`). Returns a new string starting with `base`,
 * or NULL after more than 255 links (with the message in *loop_msg).
 */
static char *root_path(const char *base, const char *rel, char **loop_msg) {
  size_t blen = strlen(base);
  size_t cap = blen + strlen(rel) + 64, len = blen;
  char *res = xmalloc(cap);
  memcpy(res, base, blen + 1);
  struct comps pending = {0};
  if (*rel) comps_push_path(&pending, rel);
  int links = 0;
  while (pending.n > 0) {
    char *c = pending.v[--pending.n];
    if (c[0] == '\0' || strcmp(c, ".") == 0) {
      free(c);
      continue;
    }
    if (strcmp(c, "..") == 0) {
      if (len > blen) {
        while (len > blen && res[len - 1] != '/') len--;
        len--;
        res[len] = '\0';
      }
      free(c);
      continue;
    }
    size_t cl = strlen(c);
    if (len + cl + 2 > cap) res = xrealloc(res, cap = (len + cl + 2) * 2);
    size_t before = len;
    res[len++] = '/';
    memcpy(res + len, c, cl + 1);
    len += cl;
    free(c);
    /* Looked up even below a missing component: `missing/../link` must still follow `link`. */
    struct stat st;
    if (!lstat_or_missing(res, &st) || !S_ISLNK(st.st_mode)) continue;
    if (++links > MAX_SYMLINKS) {
      if (asprintf(loop_msg, "too many symlinks resolving %s in %s", rel, base) < 0) *loop_msg = NULL;
      for (size_t i = 0; i < pending.n; i++) free(pending.v[i]);
      free(pending.v);
      free(res);
      return NULL;
    }
    char target[PATH_MAX + 1];
    ssize_t tl = readlink(res, target, PATH_MAX);
    if (tl < 0) fail_sys("readlink", res, NULL);
    target[tl] = '\0';
    len = target[0] == '/' ? blen : before;
    res[len] = '\0';
    comps_push_path(&pending, target);
  }
  free(pending.v);
  return res;
}

/* root_path for the entry loop: a symlink loop fails the layer. */
static char *root_path_or_fail(const char *base, const char *rel) {
  char *msg = NULL;
  char *p = root_path(base, rel, &msg);
  if (!p) fail("InvalidArgument", base, "%s", msg ? msg : "too many symlinks");
  return p;
}

/* ------------------------------------------------------------------------------- applying */

struct xattr_op {
  char *name;
  void *value;
  size_t size;
};
struct xattr_list {
  char *path; /* where to set them (the key differs for an opaque marker, see OPAQUE_MARK) */
  struct xattr_op *ops;
  size_t n;
};
static void free_xattr_list(void *p) {
  struct xattr_list *l = p;
  for (size_t i = 0; i < l->n; i++) free(l->ops[i].name), free(l->ops[i].value);
  free(l->ops);
  free(l->path);
  free(l);
}

struct dir_time {
  char *path;
  struct timespec mtime;
};

static struct {
  long long count, held;
  char **implied;
  size_t n_implied, cap_implied;
  struct map dirs;     /* root-relative dir -> resolved absolute path (char *) */
  struct map unpacked; /* native mode: every path this layer wrote (value 1: present) */
  struct map xattrs;   /* path (or path + OPAQUE_SUFFIX) -> struct xattr_list *, set at the end */
  struct dir_time *dir_times;
  size_t n_dir_times, cap_dir_times;
  int removed_any;
} A;

/* Key of an overlay opaque marker in A.xattrs: "\1" + the dir; a path always starts with '/'. */
#define OPAQUE_MARK '\1'

static void hold(long long n) {
  A.held += n;
  if (A.held > lim_held) fail_limit("\"what\":\"heldBytes\"");
}

static void set_times(const char *path, struct timespec mtime) {
  struct timespec ts[2] = {mtime, mtime};
  if (utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW) < 0) fail_sys("lutime", path, NULL);
}

static void xchown(const char *path, uid_t uid, gid_t gid) {
  if (lchown(path, uid, gid) < 0) fail_sys("lchown", path, NULL);
}

static void xchmod(const char *path, mode_t mode) {
  if (chmod(path, mode) < 0) fail_sys("chmod", path, NULL);
}

/* The last line of defence for every removal: strictly below the root, no '', '.' or '..' component. */
static void assert_strictly_inside(const char *path) {
  int ok = strncmp(path, root, root_len) == 0 && path[root_len] == '/' && path[root_len + 1] != '\0';
  for (const char *c = path + root_len + 1; ok && c;) {
    const char *e = strchr(c, '/');
    size_t cl = e ? (size_t)(e - c) : strlen(c);
    if (cl == 0 || (cl == 1 && c[0] == '.') || (cl == 2 && c[0] == '.' && c[1] == '.')) ok = 0;
    c = e ? e + 1 : NULL;
  }
  if (!ok) fail("InvalidArgument", path, "refusing to remove %s: not strictly inside %s", path, root);
}

/* Drop deferred xattrs for a path (and, for a subtree, everything below it) being replaced. */
static void forget_pending(const char *path, int subtree) {
  if (A.xattrs.live == 0) return;
  map_delete(&A.xattrs, path, free_xattr_list);
  if (!subtree) return;
  size_t pl = strlen(path);
  for (size_t i = 0; i < A.xattrs.cap; i++) {
    const char *k = A.xattrs.keys[i];
    if (!k || k == TOMB) continue;
    if (k[0] == OPAQUE_MARK) k++;
    if (strncmp(k, path, pl) == 0 && (k[pl] == '/' || (k[pl] == '\0' && k != A.xattrs.keys[i]))) map_free_slot(&A.xattrs, i, free_xattr_list);
  }
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st, (void)ftw;
  if ((flag == FTW_DP ? rmdir(p) : unlink(p)) < 0 && errno != ENOENT) fail_sys(flag == FTW_DP ? "rmdir" : "unlink", p, NULL);
  return 0;
}

/* rm -rf without following symlinks, after the confinement check. */
static void remove_all(const char *path) {
  assert_strictly_inside(path);
  A.removed_any = 1;
  if (nftw(path, rm_one, 32, FTW_DEPTH | FTW_PHYS) < 0 && errno != ENOENT && errno != ENOTDIR) fail_sys("rm", path, NULL);
  map_clear(&A.dirs, free); /* a removed dir (or one replaced by a symlink) must be resolved afresh */
  forget_pending(path, 1);
}

/* Run `make`; if the path exists, remove what is there and make it again (dirs are merged elsewhere). */
/* (`call`, `a`, `b`: the failure's wording, as Node's: `link 'target' -> 'path'`.) */
#define CREATE(expr, path, call, a, b)            \
  do {                                            \
    if ((expr) < 0) {                             \
      if (errno != EEXIST) fail_sys(call, a, b);  \
      remove_all(path);                           \
      if ((expr) < 0) fail_sys(call, a, b);       \
    }                                             \
  } while (0)

/* containerd's copyDirInfo: mode, owner and times of the same dir in the nearest parent layer. */
static void copy_dir_info_from_parents(const char *abs, const char *rel) {
  for (int i = 0; i < n_parents; i++) {
    char *pp = root_path_or_fail(parents[i], rel);
    struct stat st;
    int exists = lstat_or_missing(pp, &st);
    free(pp);
    if (!exists) continue;
    if (!S_ISDIR(st.st_mode)) return; /* replaced by a non-dir below: keep the defaults */
    xchown(abs, st.st_uid, st.st_gid);
    xchmod(abs, st.st_mode & 07777);
    struct timespec ts[2] = {st.st_atim, st.st_mtim};
    if (utimensat(AT_FDCWD, abs, ts, AT_SYMLINK_NOFOLLOW) < 0) fail_sys("lutime", abs, NULL);
    return;
  }
}

/* Make `abs` (inside the root) a directory, creating missing ancestors with their parents' attributes. */
static void mkparent(char *abs) {
  if (strcmp(abs, root) == 0) return;
  struct stat st;
  if (lstat_or_missing(abs, &st)) {
    if (S_ISDIR(st.st_mode)) return;
    fail("FailedPrecondition", abs, "%s is not a directory", abs);
  }
  char *slash = strrchr(abs, '/');
  *slash = '\0';
  mkparent(abs);
  *slash = '/';
  if (mkdir(abs, 0755) < 0) fail_sys("mkdir", abs, NULL);
  const char *rel = abs + root_len + 1;
  if (A.n_implied == A.cap_implied) A.implied = xrealloc(A.implied, (A.cap_implied = A.cap_implied ? A.cap_implied * 2 : 16) * sizeof *A.implied);
  A.implied[A.n_implied++] = xstrdup(rel);
  copy_dir_info_from_parents(abs, rel);
}

/* The parent directory for an entry, resolved inside the root and created if missing. */
static const char *parent_dir(const char *dir_rel) {
  const char *cached = map_get(&A.dirs, dir_rel);
  if (cached) return cached;
  char *abs = root_path_or_fail(root, dir_rel);
  mkparent(abs);
  map_put(&A.dirs, dir_rel, abs, free);
  return abs;
}

/* containerd's hardlinkRootPath: the link target's parent resolved inside the root. */
static char *hardlink_target(const char *linkname) {
  char *rel = clean_name(linkname);
  if (!*rel) {
    free(rel);
    return xstrdup(root);
  }
  char *slash = strrchr(rel, '/');
  char *out;
  if (slash) {
    *slash = '\0';
    char *dir = root_path_or_fail(root, rel);
    out = join(dir, slash + 1);
    free(dir);
  } else {
    out = join(root, rel);
  }
  free(rel);
  return out;
}

/* Native opaque dir: remove everything under `dir` that this layer did not write. */
static void remove_not_unpacked(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) fail_sys("scandir", dir, NULL);
  char **names = NULL;
  size_t n = 0, cap = 0;
  struct dirent *de;
  while ((de = readdir(d))) {
    if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
    if (n == cap) names = xrealloc(names, (cap = cap ? cap * 2 : 16) * sizeof *names);
    names[n++] = xstrdup(de->d_name);
  }
  closedir(d);
  for (size_t i = 0; i < n; i++) {
    char *p = join(dir, names[i]);
    struct stat st;
    if (!map_get(&A.unpacked, p)) remove_all(p);
    else if (lstat_or_missing(p, &st) && S_ISDIR(st.st_mode)) remove_not_unpacked(p);
    free(p);
    free(names[i]);
  }
  free(names);
}

static void make_node(const char *path, mode_t type, mode_t mode, dev_t dev, uid_t uid, gid_t gid, const struct timespec *mtime) {
  if (mknod(path, type | (mode & 07777), dev) < 0) fail_sys("mknod", path, NULL);
  xchown(path, uid, gid);
  if (mode & 07000) xchmod(path, mode & 07777); /* chown cleared them */
  if (mtime) set_times(path, *mtime);
}

static void add_xattrs(const char *key, const char *path, struct xattr_op *ops, size_t n) {
  struct xattr_list *l = xmalloc(sizeof *l);
  l->path = xstrdup(path);
  l->ops = ops;
  l->n = n;
  map_put(&A.xattrs, key, l, free_xattr_list);
}

static void whiteout(const char *parent, const char *base, const char *name, uid_t uid, gid_t gid) {
  if (strcmp(base, WH_OPAQUE) == 0) {
    if (overlay_whiteouts) {
      char *p = xstrdup(parent);
      mkparent(p);
      free(p);
      struct xattr_op *op = xmalloc(sizeof *op);
      op->name = xstrdup("trusted.overlay.opaque");
      op->value = xstrdup("y");
      op->size = 1;
      char *key = xmalloc(strlen(parent) + 2);
      key[0] = OPAQUE_MARK;
      strcpy(key + 1, parent);
      add_xattrs(key, parent, op, 1);
      free(key);
    } else {
      struct stat st;
      if (lstat_or_missing(parent, &st)) remove_not_unpacked(parent);
    }
    return;
  }
  /* `.wh.`, `.wh..` and `.wh...` would name the parent itself or the directory above the root. */
  const char *hidden = base + strlen(WH_PREFIX);
  if (!*hidden || strcmp(hidden, ".") == 0 || strcmp(hidden, "..") == 0) {
    char *q = NULL;
    size_t ql = 0;
    FILE *f = open_memstream(&q, &ql);
    put_json_string(f, name, 0);
    fclose(f);
    fail("InvalidArgument", name, "invalid whiteout name %s", q);
  }
  char *target = join(parent, hidden);
  if (overlay_whiteouts) {
    char *p = xstrdup(parent);
    mkparent(p);
    free(p);
    struct stat st;
    if (lstat_or_missing(target, &st)) remove_all(target);
    forget_pending(target, 0);
    make_node(target, S_IFCHR, 0, makedev(0, 0), uid, gid, NULL);
  } else {
    remove_all(target);
  }
  free(target);
}

/* The entry's tar type flag as the sniffer saw it in the stream (0 when unknown). */
static char entry_typeflag;

static void write_all(int fd, const char *buf, size_t n, const char *path) {
  while (n > 0) {
    ssize_t w = write(fd, buf, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      fail_sys("write", path, NULL);
    }
    buf += w;
    n -= (size_t)w;
  }
}

static void copy_data(struct archive *ar, int fd, const char *path) {
  const void *buf;
  size_t size;
  la_int64_t offset = 0, at = 0;
  int r;
  while ((r = archive_read_data_block(ar, &buf, &size, &offset)) == ARCHIVE_OK) {
    if (offset != at && lseek(fd, offset, SEEK_SET) < 0) fail_sys("lseek", path, NULL); /* a sparse file's hole */
    write_all(fd, buf, size, path);
    at = offset + (la_int64_t)size;
  }
  if (r != ARCHIVE_EOF) fail("Corrupt", path, "invalid tar stream: %s", archive_error_string(ar));
  /* A hole at the end: the size comes from the last block's offset (libarchive ends sparse files so). */
  if (offset > at && ftruncate(fd, offset) < 0) fail_sys("ftruncate", path, NULL);
}

static void skip_data(struct archive *ar) {
  if (archive_read_data_skip(ar) != ARCHIVE_OK) fail("Corrupt", NULL, "invalid tar stream: %s", archive_error_string(ar));
}

static void apply_entry(struct archive *ar, struct archive_entry *e) {
  A.count++;
  if (A.count > lim_entries) fail_limit("\"what\":\"entries\"");
  const char *name = archive_entry_pathname(e);
  if (!name) name = "";
  hold((long long)strlen(name));
  char *rel = clean_name(name);
  uid_t uid = (uid_t)archive_entry_uid(e);
  gid_t gid = (gid_t)archive_entry_gid(e);
  mode_t mode = archive_entry_perm(e) & 07777;
  struct timespec mtime = {archive_entry_mtime(e), archive_entry_mtime_is_set(e) ? archive_entry_mtime_nsec(e) : 0};

  /* Skip the root itself and AUFS metadata (`/.wh..wh.plnk`, ...), as containerd does. */
  if (!*rel || (strncmp(rel, WH_META_PREFIX, strlen(WH_META_PREFIX)) == 0 && strcmp(rel, WH_OPAQUE) != 0)) {
    free(rel);
    return;
  }
  const char *slash = strrchr(rel, '/');
  const char *base = slash ? slash + 1 : rel;
  char *dir_rel = xstrdup(rel);
  dir_rel[slash ? slash - rel : 0] = '\0';
  const char *parent = parent_dir(dir_rel);
  free(dir_rel);

  if (strncmp(base, WH_PREFIX, strlen(WH_PREFIX)) == 0) {
    char *p = xstrdup(parent); /* a removal may clear the dirs cache that holds `parent` */
    whiteout(p, base, name, uid, gid);
    free(p);
    free(rel);
    return;
  }
  char *path = join(parent, base);
  if (!overlay_whiteouts) map_put(&A.unpacked, path, (void *)1, NULL);
  forget_pending(path, 0);

  /* The type as written in the stream (libarchive turns unknown types into files, tar-stream skips them). */
  char t = entry_typeflag;
  int is_link = t == '1' || (t == 0 && archive_entry_hardlink(e) != NULL);
  mode_t ft = archive_entry_filetype(e);
  int known = t == 0 || (t >= '0' && t <= '7');
  struct stat st;
  if (!known || (!is_link && ft != AE_IFREG && ft != AE_IFDIR && ft != AE_IFLNK && ft != AE_IFCHR && ft != AE_IFBLK && ft != AE_IFIFO)) {
    warn("skipping %s: unsupported entry type '%c'", name, t ? t : '?');
    free(path);
    free(rel);
    return;
  }
  /*
   * libarchive reads a regular file whose name ends in '/' as a directory without data, and so
   * reads its data as the next headers; Go's archive/tar (containerd) and tar-stream read a file
   * and its data. Without data it is a file here too; with data the readers would disagree on the
   * entries that follow, and the layer is refused.
   */
  if ((t == '0' || t == '7') && ft == AE_IFDIR) {
    if (archive_entry_size(e) > 0)
      fail("InvalidArgument", name, "refusing entry %s: a file with data whose name ends in '/' (tar readers disagree on what follows it)", name);
    ft = AE_IFREG;
  }
  if (is_link) {
    const char *linkname = archive_entry_hardlink(e);
    char *target = hardlink_target(linkname ? linkname : "");
    CREATE(link(target, path), path, "link", target, path);
    struct xattr_list *tx = map_get(&A.xattrs, target);
    if (tx) {
      struct xattr_op *ops = xmalloc(tx->n * sizeof *ops);
      for (size_t i = 0; i < tx->n; i++) {
        ops[i].name = xstrdup(tx->ops[i].name);
        ops[i].value = memcpy(xmalloc(tx->ops[i].size), tx->ops[i].value, tx->ops[i].size);
        ops[i].size = tx->ops[i].size;
      }
      add_xattrs(path, path, ops, tx->n);
    }
    xchown(path, uid, gid);
    lstat_or_missing(path, &st);
    if (!S_ISLNK(st.st_mode)) {
      xchmod(path, mode);
      set_times(path, mtime);
    }
    free(target);
  } else if (ft == AE_IFREG) {
    int fd;
    CREATE(fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600), path, "open", path, NULL);
    copy_data(ar, fd, path);
    struct timespec ts[2] = {mtime, mtime};
    if (fchown(fd, uid, gid) < 0) fail_sys("fchown", path, NULL);
    if (fchmod(fd, mode) < 0) fail_sys("fchmod", path, NULL);
    if (futimens(fd, ts) < 0) fail_sys("futime", path, NULL);
    if (close(fd) < 0) fail_sys("close", path, NULL);
  } else if (ft == AE_IFDIR) {
    int exists = lstat_or_missing(path, &st);
    if (!exists || !S_ISDIR(st.st_mode)) {
      if (exists) remove_all(path);
      if (mkdir(path, 0700) < 0) fail_sys("mkdir", path, NULL);
    }
    xchown(path, uid, gid);
    xchmod(path, mode);
    map_put(&A.dirs, rel, xstrdup(path), free);
    if (A.n_dir_times == A.cap_dir_times)
      A.dir_times = xrealloc(A.dir_times, (A.cap_dir_times = A.cap_dir_times ? A.cap_dir_times * 2 : 64) * sizeof *A.dir_times);
    A.dir_times[A.n_dir_times++] = (struct dir_time){xstrdup(path), mtime};
  } else if (ft == AE_IFLNK) {
    const char *target = archive_entry_symlink(e);
    if (!target) target = "";
    CREATE(symlink(target, path), path, "symlink", target, path);
    xchown(path, uid, gid);
    set_times(path, mtime);
  } else {
    if (lstat_or_missing(path, &st)) remove_all(path);
    dev_t dev = ft == AE_IFIFO ? 0 : makedev(archive_entry_rdevmajor(e), archive_entry_rdevminor(e));
    make_node(path, ft == AE_IFIFO ? S_IFIFO : ft == AE_IFCHR ? S_IFCHR : S_IFBLK, mode, dev, uid, gid, &mtime);
  }

  /* Extended attributes, set at the end of the layer (a later chown would clear security.capability). */
  const char *xn;
  const void *xv;
  size_t xs;
  size_t n = 0;
  struct xattr_op *ops = NULL;
  long long bytes = 0;
  for (archive_entry_xattr_reset(e); archive_entry_xattr_next(e, &xn, &xv, &xs) == ARCHIVE_OK;) {
    /* Admin attributes are refused, as containerd does: `trusted.overlay.*` could forge whiteouts. */
    if (strncmp(xn, "trusted.", 8) == 0) {
      warn("ignored xattr %s on %s: admin attributes from archives are not supported", xn, name);
      continue;
    }
    ops = xrealloc(ops, (n + 1) * sizeof *ops);
    ops[n].name = xstrdup(xn);
    ops[n].value = memcpy(xmalloc(xs), xv, xs);
    ops[n].size = xs;
    bytes += (long long)(strlen(xn) + xs);
    n++;
  }
  if (n) {
    hold(bytes);
    add_xattrs(path, path, ops, n);
  }
  free(path);
  free(rel);
}

/*
 * True if `path`, a directory this layer wrote, is still that directory: a later entry may have
 * replaced one of its parents with a symlink (`a/b/` then `a -> /etc`), and setting its times
 * would then touch the host.
 */
static int still_resolves_to(const char *path) {
  char *msg = NULL;
  char *p = root_path(root, path + root_len + 1, &msg);
  free(msg);
  if (!p) return 0; /* a symlink loop where the directory was */
  int same = strcmp(p, path) == 0;
  free(p);
  struct stat st;
  return same && lstat_or_missing(path, &st) && S_ISDIR(st.st_mode);
}

static void finish(void) {
  char *failures = NULL;
  size_t fl = 0;
  FILE *f = NULL;
  for (size_t i = 0; i < A.xattrs.cap; i++) {
    const char *k = A.xattrs.keys[i];
    if (!k || k == TOMB) continue;
    struct xattr_list *l = A.xattrs.vals[i];
    for (size_t j = 0; j < l->n; j++) {
      if (lsetxattr(l->path, l->ops[j].name, l->ops[j].value, l->ops[j].size, 0) == 0) continue;
      if (!f) f = open_memstream(&failures, &fl);
      fprintf(f, "%s%s: %s: %s", ftell(f) ? "; " : "", l->path, l->ops[j].name, strerror(errno));
    }
  }
  if (f) {
    fclose(f);
    warn("some xattrs were not set: %s", failures);
    free(failures);
  }
  for (size_t i = 0; i < A.n_dir_times; i++) {
    struct stat st;
    const char *p = A.dir_times[i].path;
    int is_dir = A.removed_any ? still_resolves_to(p) : lstat_or_missing(p, &st) && S_ISDIR(st.st_mode);
    if (is_dir) set_times(p, A.dir_times[i].mtime);
  }
}

/* ------------------------------------------------------------------ the header-size sniffer */

/*
 * libarchive reads a PAX or GNU long-name header whole into memory (up to its own bound of
 * 1 MiB) before it parses it, and has no hook to refuse one earlier. So the applier's read
 * callback looks at the stream itself: from where libarchive starts reading the next header, it
 * walks the chain of special headers that precede an entry (their bodies are exactly their size
 * field, rounded to 512), refuses one over --header-bytes before libarchive reads its body, and
 * notes the entry's own type flag, which libarchive does not keep.
 */
static struct {
  int active;
  long long next;  /* stream offset of the next header of the chain */
  char carry[512]; /* a header split between two reads */
  size_t carried;
} sniff;

static long long octal_or_base256(const unsigned char *p, size_t n) {
  if (p[0] & 0x80) { /* GNU base-256 */
    long long v = p[0] & 0x3f;
    if (p[0] & 0x40) return -1; /* negative */
    for (size_t i = 1; i < n; i++) {
      if (v > (LLONG_MAX >> 8)) return LLONG_MAX;
      v = (v << 8) | p[i];
    }
    return v;
  }
  size_t i = 0;
  while (i < n && (p[i] == ' ' || p[i] == '\t')) i++;
  long long v = 0;
  for (; i < n && p[i] >= '0' && p[i] <= '7'; i++) {
    if (v > (LLONG_MAX >> 3)) return LLONG_MAX;
    v = v * 8 + (p[i] - '0');
  }
  return v;
}

static const char *special_name(char t) {
  switch (t) {
    case 'x':
    case 'X':
      return "pax-header";
    case 'g':
      return "pax-global-header";
    case 'L':
      return "gnu-long-path";
    case 'K':
      return "gnu-long-link-path";
    case 'A':
      return "solaris-acl";
    default:
      return NULL;
  }
}

/* One header block of the chain: returns 0 when the chain goes on. */
static int sniff_header(const unsigned char *h) {
  int zero = 1;
  for (int i = 0; i < 512 && zero; i++) zero = h[i] == 0;
  char t = (char)h[156];
  /* Zero blocks are read past (read_concatenated_archives); a GNU volume label is 512 bytes alone. */
  if (zero || t == 'V') {
    sniff.next += 512;
    return 0;
  }
  const char *type = special_name(t);
  if (!type) {
    entry_typeflag = t ? t : '0';
    return 1;
  }
  long long size = octal_or_base256(h + 124, 12);
  if (size > lim_header || size < 0) fail_limit("\"what\":\"header\",\"type\":\"%s\",\"size\":%lld", type, size < 0 ? LLONG_MAX : size);
  sniff.next += 512 + ((size + 511) & ~511LL);
  return 0;
}

/* Look at bytes [off, off+n) of the stream for the headers of the chain that lie there. */
static void sniff_bytes(const unsigned char *buf, long long off, size_t n) {
  while (sniff.active) {
    if (sniff.carried) {
      size_t take = 512 - sniff.carried;
      if (take > n) take = n;
      memcpy(sniff.carry + sniff.carried, buf, take);
      sniff.carried += take;
      if (sniff.carried < 512) return;
      sniff.carried = 0;
      if (sniff_header((unsigned char *)sniff.carry)) sniff.active = 0;
      continue;
    }
    if (sniff.next < off || sniff.next >= off + (long long)n) return;
    size_t at = (size_t)(sniff.next - off);
    if (n - at < 512) {
      memcpy(sniff.carry, buf + at, n - at);
      sniff.carried = n - at; /* completed by the next read */
      return;
    }
    if (sniff_header(buf + at)) sniff.active = 0;
  }
}

/* ------------------------------------------------------------------------- the applier */

/*
 * The diff_id: SHA-256 of the uncompressed stream, taken by the applier as it reads the ring, so
 * that the reader thread, busy inflating, does not also hash (on two cores the reader is the
 * longer of the two threads).
 */
static SHA256_CTX diff_md;

/*
 * The uncompressed stream passes from the reader to the applier through a ring of RING_SLOTS
 * buffers: the reader fills slot `head % RING_SLOTS` and publishes it; the applier holds slot
 * `tail % RING_SLOTS` while libarchive reads it, and gives it back when it asks for the next.
 * (A pipe between the threads cost the reader more: 0.03 s of 0.65 s on the base layer.)
 */
#define RING_SLOTS 4
#define SLOT_BYTES (512 << 10)
static struct {
  pthread_mutex_t lock;
  pthread_cond_t changed;
  unsigned char *buf[RING_SLOTS];
  size_t len[RING_SLOTS];
  unsigned long head, tail; /* slots published, slots given back */
  int held, closed;
  /* One condition for both: the reader waits only on a full ring, the applier only on an empty one. */
} ring = {.lock = PTHREAD_MUTEX_INITIALIZER, .changed = PTHREAD_COND_INITIALIZER};

/* The applier: give back the slot it held, then wait for the next one; 0 bytes at the end. */
static size_t ring_next(const unsigned char **out) {
  pthread_mutex_lock(&ring.lock);
  if (ring.held) {
    ring.tail++;
    ring.held = 0;
    pthread_cond_signal(&ring.changed);
  }
  while (ring.head == ring.tail && !ring.closed) pthread_cond_wait(&ring.changed, &ring.lock);
  size_t n = 0;
  if (ring.head != ring.tail) {
    ring.held = 1;
    *out = ring.buf[ring.tail % RING_SLOTS];
    n = ring.len[ring.tail % RING_SLOTS];
  }
  pthread_mutex_unlock(&ring.lock);
  return n;
}

/* The reader: publish the slot it filled (closing the ring after the last one). */
static void ring_publish(size_t len, int last) {
  pthread_mutex_lock(&ring.lock);
  if (len) ring.len[ring.head++ % RING_SLOTS] = len;
  ring.closed = last;
  pthread_cond_signal(&ring.changed);
  /* The next slot to fill must have been given back. */
  while (!last && ring.head - ring.tail >= RING_SLOTS) pthread_cond_wait(&ring.changed, &ring.lock);
  pthread_mutex_unlock(&ring.lock);
}

struct ring_source {
  const unsigned char *buf;
  long long start; /* stream offset of buf[0] */
  size_t len;
};

static ssize_t ring_read(struct archive *ar, void *ud, const void **out) {
  (void)ar;
  struct ring_source *s = ud;
  s->start += (long long)s->len;
  s->len = ring_next(&s->buf);
  SHA256_Update(&diff_md, s->buf, s->len);
  if (s->len > 0) sniff_bytes(s->buf, s->start, s->len);
  *out = s->buf;
  return (ssize_t)s->len;
}

static void *apply_thread(void *arg) {
  (void)arg;
  struct ring_source src = {NULL, 0, 0};
  struct archive *ar = archive_read_new();
  archive_read_support_format_tar(ar);
  archive_read_support_format_empty(ar); /* a layer of no bytes at all has no entries (as for tar-stream) */
  /* tar-stream (the JavaScript path) reads on past zero blocks, so entries after them apply too. */
  archive_read_set_format_option(ar, "tar", "read_concatenated_archives", "1");
  if (archive_read_open(ar, &src, NULL, ring_read, NULL) != ARCHIVE_OK) {
    fail("Corrupt", NULL, "invalid tar stream: %s", archive_error_string(ar));
  }
  struct archive_entry *e;
  for (;;) {
    /* Where libarchive starts reading the next header: the sniffer walks the chain from there. */
    long long pos = archive_filter_bytes(ar, 0);
    entry_typeflag = 0;
    sniff.carried = 0;
    sniff.next = pos;
    sniff.active = pos >= src.start && pos <= src.start + (long long)src.len;
    if (sniff.active && pos < src.start + (long long)src.len) sniff_bytes(src.buf + (pos - src.start), pos, (size_t)(src.start + (long long)src.len - pos));
    int r = archive_read_next_header(ar, &e);
    sniff.active = 0;
    if (r == ARCHIVE_EOF) break;
    if (r == ARCHIVE_WARN) {
      const char *msg = archive_error_string(ar);
      /* Past 32 special headers libarchive gives up on the entry; anything else (a name not in UTF-8) is a warning. */
      if (msg && strstr(msg, "Too many special headers")) fail("Corrupt", NULL, "invalid tar stream: %s", msg);
      warn("%s: %s", archive_entry_pathname(e) ? archive_entry_pathname(e) : "(entry)", msg ? msg : "warning");
    } else if (r != ARCHIVE_OK) {
      fail("Corrupt", NULL, "invalid tar stream: %s", archive_error_string(ar));
    }
    apply_entry(ar, e);
    skip_data(ar); /* what the entry did not read, and the padding after it */
  }
  /* Read on to the end: the diff id covers every byte, the padding after the archive included. */
  size_t n;
  while ((n = ring_next(&src.buf)) > 0) SHA256_Update(&diff_md, src.buf, n);
  archive_read_free(ar);
  return NULL;
}

/* --------------------------------------------------------------------------- the reader */

struct reader {
  int root_fd;
  long long size;
};

static void check_free_space(struct reader *r) {
  struct statfs s;
  if (fstatfs(r->root_fd, &s) < 0) fail_sys("statfs", root, NULL);
  long long available = (long long)s.f_bavail * (long long)s.f_bsize;
  if (available >= lim_reserve) return;
  fail_limit("\"what\":\"reserve\",\"available\":%lld,\"bytes\":%lld", available, r->size);
}

static void take(struct reader *r, const void *buf, size_t n) {
  long long before = r->size;
  r->size += (long long)n;
  if (r->size > lim_layer_bytes) fail_limit("\"what\":\"layerBytes\"");
  if (r->size / lim_check_every != before / lim_check_every) check_free_space(r);
  const char *p = buf;
  /* Published at once, full or not: the applier must not wait for bytes a slow download has not sent yet. */
  while (n > 0) {
    size_t k = n < SLOT_BYTES ? n : SLOT_BYTES;
    memcpy(ring.buf[ring.head % RING_SLOTS], p, k); /* only this thread moves ring.head */
    ring_publish(k, 0);
    p += k;
    n -= k;
  }
}

static long long follow_size = -1; /* --follow */
static long long input_pos;

/* Up to `cap` bytes of stdin; 0 at its end (with --follow: once follow_size bytes were read). */
static ssize_t read_stdin(void *buf, size_t cap) {
  for (;;) {
    if (follow_size >= 0) {
      if (input_pos >= follow_size) return 0;
      if ((long long)cap > follow_size - input_pos) cap = (size_t)(follow_size - input_pos);
    }
    ssize_t n = read(0, buf, cap);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail_sys("read", "(stdin)", NULL);
    }
    input_pos += n;
    if (n > 0 || follow_size < 0) return n;
    /* Caught up with the download: wait for more bytes, as followBlob polls. */
    struct stat st;
    if (fstat(0, &st) < 0) fail_sys("fstat", "(stdin)", NULL);
    if (st.st_size < input_pos) fail("Unavailable", NULL, "the download restarted while the layer was read");
    struct timespec pause_for = {0, 5 * 1000 * 1000};
    nanosleep(&pause_for, NULL);
  }
}

static ssize_t stdin_callback(struct archive *ar, void *buf, const void **out) {
  (void)ar;
  *out = buf;
  return read_stdin(buf, CHUNK);
}

static void read_input(struct reader *r) {
  if (strcmp(compression, "none") == 0) {
    char *buf = xmalloc(CHUNK);
    ssize_t n;
    while ((n = read_stdin(buf, CHUNK)) != 0) take(r, buf, (size_t)n);
    free(buf);
    return;
  }
  struct archive *ar = archive_read_new();
  int want = strcmp(compression, "zstd") == 0 ? ARCHIVE_FILTER_ZSTD : ARCHIVE_FILTER_GZIP;
  if (want == ARCHIVE_FILTER_ZSTD) archive_read_support_filter_zstd(ar);
  else archive_read_support_filter_gzip(ar);
  archive_read_support_format_raw(ar);
  archive_read_support_format_empty(ar); /* a compressed empty stream */
  struct archive_entry *e;
  int rh = archive_read_open(ar, xmalloc(CHUNK), NULL, stdin_callback, NULL);
  if (rh == ARCHIVE_OK) rh = archive_read_next_header(ar, &e);
  if (rh != ARCHIVE_OK && rh != ARCHIVE_EOF)
    fail("Corrupt", NULL, "cannot decompress: %s", archive_error_string(ar) ? archive_error_string(ar) : "unreadable stream");
  /* Without the filter's magic number libarchive would pass the bytes through as they are. */
  if (archive_filter_code(ar, 0) != want) fail("Corrupt", NULL, "cannot decompress: not a %s stream", compression);
  if (rh == ARCHIVE_EOF) {
    archive_read_free(ar);
    return;
  }
  const void *buf;
  size_t n;
  la_int64_t off;
  int rc;
  while ((rc = archive_read_data_block(ar, &buf, &n, &off)) == ARCHIVE_OK) take(r, buf, n);
  if (rc != ARCHIVE_EOF) fail("Corrupt", NULL, "cannot decompress: %s", archive_error_string(ar));
  archive_read_free(ar);
}

/* ------------------------------------------------------------------------------------ main */

static long long num_arg(const char *flag, const char *v) {
  char *end;
  errno = 0;
  long long n = strtoll(v, &end, 10);
  if (errno || *end || n < 0) fail("InvalidArgument", NULL, "bad number for %s: %s", flag, v);
  return n;
}

/* ------------------------------------------------------------------------ disk usage */

static long long usage_bytes, usage_inodes;
static struct linked { dev_t dev; ino_t ino; blkcnt_t blocks; } *linked;
static size_t n_linked, cap_linked;

static int usage_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
  (void)p, (void)flag, (void)ftw;
  if (!S_ISDIR(st->st_mode) && st->st_nlink > 1) {
    /* Counted once, after the walk. */
    if (n_linked == cap_linked) linked = realloc(linked, (cap_linked = cap_linked ? 2 * cap_linked : 256) * sizeof *linked);
    if (!linked) fail("Internal", NULL, "out of memory");
    linked[n_linked++] = (struct linked){st->st_dev, st->st_ino, st->st_blocks};
    return 0;
  }
  usage_inodes++;
  usage_bytes += (long long)st->st_blocks * 512;
  return 0;
}

static int cmp_linked(const void *a, const void *b) {
  const struct linked *x = a, *y = b;
  if (x->dev != y->dev) return x->dev < y->dev ? -1 : 1;
  return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static void measure_usage(void) {
  if (nftw(root, usage_one, 64, FTW_PHYS) < 0) fail_sys("walk", root, NULL);
  qsort(linked, n_linked, sizeof *linked, cmp_linked);
  for (size_t i = 0; i < n_linked; i++) {
    if (i > 0 && cmp_linked(&linked[i - 1], &linked[i]) == 0) continue;
    usage_inodes++;
    usage_bytes += (long long)linked[i].blocks * 512;
  }
}

int main(int argc, char **argv) {
  /* Die with berth: killed mid-pull (kill -9, a power cut of the process), it must not leave a
   * helper writing into a snapshot the next start removes, or following a download that will
   * never grow. The parent may have died before the prctl took effect: then its pid is gone. */
  pid_t parent = getppid();
  if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent) _exit(1);
  signal(SIGPIPE, SIG_IGN);
  umask(0);
  /* Names in PAX records are UTF-8; in this locale libarchive passes them through unchanged. */
  setlocale(LC_CTYPE, "C.UTF-8");
  parents = calloc((size_t)argc, sizeof *parents);
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(a, "--sync") == 0) {
      do_sync = 1;
      continue;
    }
    if (!v) fail("InvalidArgument", NULL, "%s needs a value", a);
    i++;
    if (strcmp(a, "--root") == 0) root = v;
    else if (strcmp(a, "--compression") == 0) compression = v;
    else if (strcmp(a, "--whiteouts") == 0) overlay_whiteouts = strcmp(v, "overlay") == 0;
    else if (strcmp(a, "--parent") == 0) parents[n_parents++] = v;
    else if (strcmp(a, "--expect") == 0) expect = v;
    else if (strcmp(a, "--layer-bytes") == 0) lim_layer_bytes = num_arg(a, v);
    else if (strcmp(a, "--entries") == 0) lim_entries = num_arg(a, v);
    else if (strcmp(a, "--header-bytes") == 0) lim_header = num_arg(a, v);
    else if (strcmp(a, "--held-bytes") == 0) lim_held = num_arg(a, v);
    else if (strcmp(a, "--reserve-bytes") == 0) lim_reserve = num_arg(a, v);
    else if (strcmp(a, "--check-every-bytes") == 0) lim_check_every = num_arg(a, v);
    else if (strcmp(a, "--follow") == 0) follow_size = num_arg(a, v);
    else fail("InvalidArgument", NULL, "unknown flag %s", a);
  }
  if (lim_check_every < 1) lim_check_every = 1;
  if (!root || root[0] != '/') fail("InvalidArgument", NULL, "--root must be an absolute path");
  if (strcmp(compression, "gzip") && strcmp(compression, "zstd") && strcmp(compression, "none"))
    fail("InvalidArgument", NULL, "unknown compression %s", compression);
  char *r = xstrdup(root);
  for (size_t l = strlen(r); l > 1 && r[l - 1] == '/'; l--) r[l - 1] = '\0';
  root = r;
  root_len = strlen(root);

  struct reader rd = {0};
  if (SHA256_Init(&diff_md) != 1) fail("Internal", NULL, "cannot set up SHA-256");
  rd.root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (rd.root_fd < 0) fail_sys("open", root, NULL);
  for (int i = 0; i < RING_SLOTS; i++) ring.buf[i] = xmalloc(SLOT_BYTES);
  pthread_t applier;
  if (pthread_create(&applier, NULL, apply_thread, NULL) != 0) fail("Internal", NULL, "cannot start the applier thread");
  read_input(&rd);
  ring_publish(0, 1);
  pthread_join(applier, NULL);
  finish();

  unsigned char digest[32];
  SHA256_Final(digest, &diff_md);
  char diff_id[7 + 65] = "sha256:";
  for (int i = 0; i < 32; i++) sprintf(diff_id + 7 + 2 * i, "%02x", digest[i]);
  if (do_sync && (!expect || strcmp(expect, diff_id) == 0) && syncfs(rd.root_fd) < 0) fail_sys("syncfs", root, NULL);

  measure_usage();

  pthread_mutex_lock(&out_lock);
  printf("{\"ok\":{\"diffId\":\"%s\",\"size\":%lld,\"entries\":%lld,\"impliedDirs\":[", diff_id, rd.size, A.count);
  for (size_t i = 0; i < A.n_implied; i++) {
    if (i) fputc(',', stdout);
    put_json_string(stdout, A.implied[i], 1);
  }
  printf("],\"usage\":{\"size\":%lld,\"inodes\":%lld}}}\n", usage_bytes, usage_inodes);
  fflush(stdout);
  return 0;
}
