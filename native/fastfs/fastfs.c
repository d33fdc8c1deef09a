/*
 * Satchel's fast file-system addon (Node-API only): folder listings, staged copies, file hashes,
 * renames that never replace.
 *
 * Why it exists: through Node's fs module a scan of 10,000 files costs one lstat call per file,
 * each building a Stats object, and a staged copy costs six calls by path (copy, chmod, utimes,
 * lstat of the copy, lstat of the source, each resolving the path again), plus a thread-pool hop
 * per call when made asynchronously. This addon does each job in one call: a whole folder
 * listing (readdir, fstatat for regular files, readlinkat for links), or a whole staged copy on
 * open descriptors (copy_file_range, fchmod, futimens, fstat, optional fsync). Synchronously on
 * local disks, or on the thread pool (one hop per folder or per file) for network mounts.
 *
 * JavaScript API (see src/mirrors/path/fastfs-binding.ts for the typed wrapper):
 *   listSync(dir)           -> { names, info, targets }   (throws a Node-style system error)
 *   list(dir, callback)     -> undefined; callback(err, { names, info, targets }) on the loop
 *   copySync(src, temp, mode, mtimeMs, flush)  -> Float64Array(COPY_FIELDS) (throws as listSync)
 *   copy(src, temp, mode, mtimeMs, flush, callback)  -> callback(err, Float64Array)
 *   hash(paths, callback)   -> callback(null, Float64Array(HASH_FIELDS * n), Buffer(32 * n))
 *   writeNewSync(temp, data, mode, mtimeMs, flush, digest) -> Float64Array(COPY_FIELDS)
 *                           creates `temp` (O_EXCL) with the bytes of `data`, sets mode (unless
 *                           negative: the umask's default stays) and mtime, flushes when `flush`,
 *                           fills `digest` (32 bytes) with the SHA-256 of `data` (an empty
 *                           `digest`: no hash); [3]..[6] as copy
 *   renameNoReplaceSync(from, to) / renameNoReplace(from, to, callback)
 *                           -> renameat2(RENAME_NOREPLACE): EEXIST when `to` exists, in one step
 * names:   string[]         the entries, in readdir order, without "." and ".."
 * info:    Float64Array     FIELDS numbers per entry: kind, mode, size, mtimeMs, ino
 *                           kind: 0 file, 1 folder, 2 symbolic link, 3 other; -errno when the
 *                           entry could not be examined (ENOENT: it vanished since the listing).
 *                           mode/size/mtimeMs/ino are filled for files only (mtimeMs computed
 *                           exactly as Node's Stats.mtimeMs: sec * 1e3 + nsec / 1e6).
 * targets: string[]         the link targets of the symbolic links, in order of appearance.
 *
 * copy: creates `temp` (O_EXCL, never replacing anything), copies `src` into it, sets its mode
 * (unless mode < 0: then the umask's default stays; mode + 2^20: that mode with the group and
 * other bits no wider than the source's) and its mtime and atime (mtimeMs), flushes
 * it when `flush`, and returns: [0] source size, [1] source mtimeMs, [2] 1 when the source's
 * size, mtime or inode changed while it was copied, [3] copy size, [4] copy mtimeMs, [5] copy
 * mode, [6] copy inode. On failure the temporary file is removed before the error is thrown.
 *
 * hash: the SHA-256 of each regular file of `paths` (opened with O_NOFOLLOW), on the thread
 * pool: a scan hands over its new files in batches and goes on listing while other cores hash.
 * Per file: [0] 0, or the errno that stopped it (EINVAL: not a regular file), [1] size, [2]
 * mtimeMs and [3] inode as fstat saw them at open, [4] 1 when size, mtime or inode changed while
 * the file was read; its digest at 32 * i in the Buffer.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <node_api.h>
#include <uv.h>

#include "node-args.h"
#include "node-errors.h"
#include "staged-file.h"
#include "sha256.h"

#define FIELDS 5
#define COPY_FIELDS 7
#define HASH_FIELDS 5
#define KIND_FILE 0
#define KIND_DIR 1
#define KIND_LINK 2
#define KIND_OTHER 3

/* A growable byte buffer holding NUL-terminated strings back to back. */
typedef struct {
  char* data;
  size_t len;
  size_t cap;
} strbuf_t;

/* What one folder listing produced, before it becomes JavaScript values. */
typedef struct {
  strbuf_t names;
  strbuf_t targets;
  double* info;
  size_t count;
  size_t cap;
  size_t link_count;
  int err;             /* errno of the listing itself (0: success) */
  const char* syscall; /* which call failed */
} listing_t;

static int strbuf_push(strbuf_t* b, const char* s, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->len + n + 1) cap *= 2;
    char* data = realloc(b->data, cap);
    if (data == NULL) return ENOMEM;
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, s, n);
  b->data[b->len + n] = '\0';
  b->len += n + 1;
  return 0;
}

static void listing_free(listing_t* l) {
  free(l->names.data);
  free(l->targets.data);
  free(l->info);
  memset(l, 0, sizeof *l);
}


static void fill_from_stat(double* row, const struct stat* st) {
  if (S_ISREG(st->st_mode)) {
    row[0] = KIND_FILE;
  } else if (S_ISDIR(st->st_mode)) {
    row[0] = KIND_DIR;
  } else if (S_ISLNK(st->st_mode)) {
    row[0] = KIND_LINK;
  } else {
    row[0] = KIND_OTHER;
  }
  row[1] = (double)st->st_mode;
  row[2] = (double)st->st_size;
  row[3] = ms_of_timespec(&st->st_mtim);
  row[4] = (double)st->st_ino;
}

/* Lists `path` into `l`; on failure sets l->err and l->syscall. Runs on any thread. */
static void list_folder(const char* path, listing_t* l) {
  int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    l->err = errno;
    l->syscall = "scandir";
    return;
  }
  DIR* dir = fdopendir(fd);
  if (dir == NULL) {
    l->err = errno;
    l->syscall = "scandir";
    close(fd);
    return;
  }
  char link[PATH_MAX + 1];
  for (;;) {
    errno = 0;
    struct dirent* d = readdir(dir);
    if (d == NULL) {
      if (errno != 0) {
        l->err = errno;
        l->syscall = "scandir";
      }
      break;
    }
    const char* name = d->d_name;
    if (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && name[2] == '\0'))) continue;
    if (l->count == l->cap) {
      size_t cap = l->cap ? l->cap * 2 : 64;
      double* info = realloc(l->info, cap * FIELDS * sizeof(double));
      if (info == NULL) {
        l->err = ENOMEM;
        l->syscall = "scandir";
        break;
      }
      l->info = info;
      l->cap = cap;
    }
    double* row = l->info + l->count * FIELDS;
    memset(row, 0, FIELDS * sizeof(double));
    unsigned char type = d->d_type;
    if (type == DT_DIR) {
      row[0] = KIND_DIR;
    } else if (type == DT_REG || type == DT_UNKNOWN || type == DT_LNK) {
      struct stat st;
      if (type == DT_LNK) {
        row[0] = KIND_LINK;
      } else if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        row[0] = -(double)errno;
      } else {
        fill_from_stat(row, &st);
      }
      if (row[0] == KIND_LINK) {
        ssize_t n = readlinkat(fd, name, link, PATH_MAX);
        if (n < 0) {
          row[0] = -(double)errno;
        } else if ((l->err = strbuf_push(&l->targets, link, (size_t)n)) != 0) {
          l->syscall = "readlink";
          break;
        } else {
          l->link_count++;
        }
      }
    } else {
      row[0] = KIND_OTHER;
    }
    if ((l->err = strbuf_push(&l->names, name, strlen(name))) != 0) {
      l->syscall = "scandir";
      break;
    }
    l->count++;
  }
  closedir(dir);
}

/* ---- JavaScript values ---------------------------------------------------------------------- */


static napi_value strings_of(napi_env env, const strbuf_t* b, size_t count) {
  napi_value array;
  napi_create_array_with_length(env, count, &array);
  const char* p = b->data;
  for (size_t i = 0; i < count; i++) {
    size_t n = strlen(p);
    napi_value s;
    napi_create_string_utf8(env, p, n, &s);
    napi_set_element(env, array, (uint32_t)i, s);
    p += n + 1;
  }
  return array;
}

/* The { names, info, targets } object for a successful listing. */
static napi_value result_of(napi_env env, const listing_t* l) {
  napi_value result, buffer, info;
  void* data = NULL;
  size_t bytes = l->count * FIELDS * sizeof(double);
  napi_create_arraybuffer(env, bytes, &data, &buffer);
  if (bytes > 0) memcpy(data, l->info, bytes);
  napi_create_typedarray(env, napi_float64_array, l->count * FIELDS, buffer, 0, &info);
  napi_create_object(env, &result);
  napi_set_named_property(env, result, "names", strings_of(env, &l->names, l->count));
  napi_set_named_property(env, result, "info", info);
  napi_set_named_property(env, result, "targets", strings_of(env, &l->targets, l->link_count));
  return result;
}

/* A path argument as a malloc'ed string (NULL after throwing). */
static char* path_arg(napi_env env, napi_value value) {
  return string_arg_copy(env, value, "fastfs: a path must be a string");
}

static napi_value list_sync(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < 1) {
    napi_throw_type_error(env, NULL, "fastfs.listSync(dir): dir is missing");
    return NULL;
  }
  char* path = path_arg(env, argv[0]);
  if (path == NULL) return NULL;
  listing_t l;
  memset(&l, 0, sizeof l);
  list_folder(path, &l);
  napi_value out = NULL;
  if (l.err != 0) {
    napi_throw(env, make_errno_error(env, l.err, l.syscall, path));
  } else {
    out = result_of(env, &l);
  }
  listing_free(&l);
  free(path);
  return out;
}

/* ---- staged copies -------------------------------------------------------------------------- */

typedef struct {
  double mode;
  double mtime_ms;
  int flush;
  double out[COPY_FIELDS];
  int err;
  const char* syscall;
  int failed_on_src; /* the error concerns the source rather than the temporary file */
  int exact;         /* mtime_ms is the source's own time: `exact_time` is it to the nanosecond */
  struct timespec exact_time;
} copy_t;


#define IO_BUFFER_BYTES (1 << 20)

/* This thread's read buffer of IO_BUFFER_BYTES (allocated on first use; NULL without memory). */
static char* io_buffer(void) {
  static __thread char* buffer = NULL;
  if (buffer == NULL) buffer = malloc(IO_BUFFER_BYTES);
  return buffer;
}

/* Copies [from, to) of `in` to the same offsets of `out` with pread/pwrite; 0 or an errno. */
static int copy_range_by_reading(int in, int out, off_t from, off_t to) {
  char* buffer = io_buffer();
  if (buffer == NULL) return ENOMEM;
  while (from < to) {
    size_t want = (size_t)(to - from) < IO_BUFFER_BYTES ? (size_t)(to - from) : IO_BUFFER_BYTES;
    ssize_t n = pread(in, buffer, want, from);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return errno;
    if (n == 0) return 0;
    for (ssize_t done = 0; done < n;) {
      ssize_t w = pwrite(out, buffer + done, (size_t)(n - done), from + done);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return errno;
      done += w;
    }
    from += n;
  }
  return 0;
}

/*
 * Copies a sparse file (fewer blocks than its size) region by region: only the data regions
 * SEEK_DATA/SEEK_HOLE report, at their offsets, then the length; the holes stay holes on the
 * copy (a 1 GiB image with 10 MiB of data takes 10 MiB on a stick, as with `cp` and `rsync -S`).
 * 0, or an errno with `*syscall` set.
 */
static int copy_sparse(int in, int out, off_t size, const char** syscall) {
  off_t at = 0;
  while (at < size) {
    off_t data = lseek(in, at, SEEK_DATA);
    if (data < 0 && errno == ENXIO) break; /* only a hole is left */
    if (data < 0) return (*syscall = "lseek", errno);
    off_t hole = lseek(in, data, SEEK_HOLE);
    if (hole < 0) return (*syscall = "lseek", errno);
    if (hole > size) hole = size;
    off_t in_off = data, out_off = data;
    while (in_off < hole) {
      ssize_t n = copy_file_range(in, &in_off, out, &out_off, (size_t)(hole - in_off), 0);
      if (n > 0) continue;
      if (n == 0) break;
      if (errno == EINTR) continue;
      if (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL || errno == EPERM) {
        int err = copy_range_by_reading(in, out, in_off, hole);
        if (err != 0) return (*syscall = "write", err);
        break;
      }
      return (*syscall = "copy_file_range", errno);
    }
    at = hole;
  }
  if (ftruncate(out, size) != 0) return (*syscall = "ftruncate", errno);
  return 0;
}


/* Sets mode, times, flush and stat of the open `out`; 0 or an errno (syscall named). */
static int settle_open_file(int out, copy_t* c, struct stat* st, const char** syscall) {
  struct timespec mtime;
  if (c->exact)
    mtime = c->exact_time;
  else
    timespec_of_ms(&mtime, c->mtime_ms);
  return settle_staged(out, c->mode, &mtime, c->flush, st, syscall);
}

/*
 * Closes the staged file `out`. On an error (`err`, or the close's) removes `temp`, records the
 * error in `c` and returns 0; otherwise fills c->out[3..6] from `st`, its stat, and returns 1.
 */
static int finish_staged(int out, const char* temp, int err, const char* syscall, const struct stat* st,
                         copy_t* c) {
  if (close(out) != 0 && err == 0) {
    err = errno;
    syscall = "close";
  }
  if (err != 0) {
    unlink(temp);
    c->err = err;
    c->syscall = syscall;
    return 0;
  }
  c->out[3] = (double)st->st_size;
  c->out[4] = ms_of_timespec(&st->st_mtim);
  c->out[5] = (double)st->st_mode;
  c->out[6] = (double)st->st_ino;
  return 1;
}

static void copy_file(const char* src, const char* temp, copy_t* c) {
  struct stat before, after, copy;
  int in = open_regular_file(src, &before, &c->syscall);
  if (in < 0) {
    c->err = errno;
    c->failed_on_src = 1;
    return;
  }
  /* The plan asks for the source's own time (a double of milliseconds cannot hold every
     nanosecond): the copy gets it exactly, as `cp -p` and `rsync -t` give it. */
  double off_ms = ms_of_timespec(&before.st_mtim) - c->mtime_ms;
  if (off_ms < 0.0005 && off_ms > -0.0005) {
    c->exact = 1;
    c->exact_time = before.st_mtim;
  }
  c->mode = capped_mode(c->mode, before.st_mode);

  int out = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (out < 0) {
    c->err = errno;
    c->syscall = "open";
    close(in);
    return;
  }
  int err = 0;
  const char* syscall = NULL;
  int use_read = 0;
  /* Up to the size seen at open: a file growing meanwhile shows in the second fstat anyway. */
  off_t copied = 0;
  if (before.st_size > 0 && (off_t)before.st_blocks * 512 < before.st_size) {
    err = copy_sparse(in, out, before.st_size, &syscall);
    copied = before.st_size;
  }
  while (err == 0 && copied < before.st_size) {
    ssize_t n = copy_file_range(in, NULL, out, NULL, (size_t)(before.st_size - copied), 0);
    if (n > 0) {
      copied += n;
      continue;
    }
    if (n == 0) break;
    if (errno == EINTR) continue;
    if (errno == EXDEV || errno == ENOSYS || errno == EOPNOTSUPP || errno == EINVAL || errno == EPERM) {
      use_read = 1;
      break;
    }
    err = errno;
    syscall = "copy_file_range";
    break;
  }
  /* File systems without copy_file_range (some FUSE mounts): the whole file again, read and written. */
  if (err == 0 && use_read) {
    if (ftruncate(out, 0) != 0) {
      err = errno;
      syscall = "ftruncate";
    } else if ((err = copy_range_by_reading(in, out, 0, before.st_size)) != 0) {
      syscall = "write";
    }
  }
  if (err == 0) start_writeback(out, before.st_size, c->flush);
  if (err == 0) err = settle_open_file(out, c, &copy, &syscall);
  if (err == 0 && fstat(in, &after) != 0) {
    err = errno;
    syscall = "fstat";
  }
  close(in);
  if (!finish_staged(out, temp, err, syscall, &copy, c)) return;
  c->out[0] = (double)after.st_size;
  c->out[1] = ms_of_timespec(&after.st_mtim);
  c->out[2] = (before.st_size != after.st_size || before.st_ino != after.st_ino ||
               before.st_mtim.tv_sec != after.st_mtim.tv_sec ||
               before.st_mtim.tv_nsec != after.st_mtim.tv_nsec)
                  ? 1
                  : 0;
}

static napi_value copy_result(napi_env env, const copy_t* c) {
  napi_value buffer, array;
  void* data = NULL;
  napi_create_arraybuffer(env, sizeof c->out, &data, &buffer);
  memcpy(data, c->out, sizeof c->out);
  napi_create_typedarray(env, napi_float64_array, COPY_FIELDS, buffer, 0, &array);
  return array;
}

/* Reads (src, temp, mode, mtimeMs, flush) into the copy job; false after throwing. */
/* Reads (mode, mtimeMs, flush) from argv[2..4] into `c` (copy and writeNew alike); 0 after throwing. */
static int settle_args(napi_env env, napi_value* argv, copy_t* c, const char* what) {
  bool flush = false;
  if (napi_get_value_double(env, argv[2], &c->mode) != napi_ok ||
      napi_get_value_double(env, argv[3], &c->mtime_ms) != napi_ok ||
      napi_get_value_bool(env, argv[4], &flush) != napi_ok) {
    char message[128];
    snprintf(message, sizeof message, "%s: mode and mtimeMs must be numbers, flush a boolean", what);
    napi_throw_type_error(env, NULL, message);
    return 0;
  }
  c->flush = flush;
  return 1;
}

/* Reads two paths from argv[0..1] into malloc'ed strings (neither left on failure); 0 after throwing. */
static int two_paths(napi_env env, napi_value* argv, char** first, char** second) {
  if ((*first = path_arg(env, argv[0])) == NULL) return 0;
  if ((*second = path_arg(env, argv[1])) == NULL) {
    free(*first);
    *first = NULL;
    return 0;
  }
  return 1;
}

static int copy_args(napi_env env, napi_value* argv, size_t argc, char** src, char** temp, copy_t* c) {
  if (argc < 5) {
    napi_throw_type_error(env, NULL, "fastfs.copy(src, temp, mode, mtimeMs, flush): arguments missing");
    return 0;
  }
  return settle_args(env, argv, c, "fastfs.copy") && two_paths(env, argv, src, temp);
}

static napi_value copy_sync(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  char *src = NULL, *temp = NULL;
  copy_t c;
  memset(&c, 0, sizeof c);
  if (!copy_args(env, argv, argc, &src, &temp, &c)) return NULL;
  copy_file(src, temp, &c);
  napi_value out = NULL;
  if (c.err != 0) {
    napi_throw(env, make_copy_error(env, c.err, c.syscall, src, temp, c.failed_on_src));
  } else {
    out = copy_result(env, &c);
  }
  free(src);
  free(temp);
  return out;
}

/* ---- hashing files -------------------------------------------------------------------------- */

/* Hashes one file into `digest`; fills HASH_FIELDS numbers at `out` (see the header comment). */
static void hash_file(const char* path, double* out, uint8_t digest[32]) {
  char* buffer = io_buffer();
  if (buffer == NULL) {
    out[0] = ENOMEM;
    return;
  }
  struct stat before, after;
  const char* syscall = NULL;
  int fd = open_regular_file(path, &before, &syscall);
  if (fd < 0) {
    out[0] = errno;
    return;
  }
  int err = 0;
  sha256_ctx_t ctx;
  sha256_init(&ctx);
  for (;;) {
    ssize_t n = read(fd, buffer, IO_BUFFER_BYTES);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) err = errno;
    if (n <= 0) break;
    sha256_update(&ctx, (const uint8_t*)buffer, (size_t)n);
  }
  if (err == 0 && fstat(fd, &after) != 0) err = errno;
  if (err == 0) {
    sha256_final(&ctx, digest);
    out[1] = (double)before.st_size;
    out[2] = ms_of_timespec(&before.st_mtim);
    out[3] = (double)before.st_ino;
    out[4] = same_file_state(&before, &after) ? 0 : 1;
  }
  close(fd);
  out[0] = err;
}

/* A batch of files to hash, and what came of each. */
typedef struct {
  char** paths;
  uint32_t count;
  double* out;      /* HASH_FIELDS per file */
  uint8_t* digests; /* 32 bytes per file */
} hashing_t;

static void hashing_free(hashing_t* h) {
  for (uint32_t i = 0; i < h->count; i++) free(h->paths[i]);
  free(h->paths);
  free(h->out);
  free(h->digests);
}

static void hash_all(hashing_t* h) {
  for (uint32_t i = 0; i < h->count; i++) hash_file(h->paths[i], h->out + (size_t)i * HASH_FIELDS, h->digests + (size_t)i * 32);
}

/* The results as (Float64Array, Buffer) in argv[1], argv[2]. */
static void hashing_result(napi_env env, const hashing_t* h, napi_value* argv) {
  napi_value numbers;
  void* data = NULL;
  size_t numbers_len = (size_t)h->count * HASH_FIELDS;
  napi_create_arraybuffer(env, numbers_len * sizeof(double), &data, &numbers);
  if (numbers_len > 0) memcpy(data, h->out, numbers_len * sizeof(double));
  napi_create_typedarray(env, napi_float64_array, numbers_len, numbers, 0, &argv[0]);
  napi_create_buffer_copy(env, (size_t)h->count * 32, h->count > 0 ? h->digests : (const void*)"", NULL, &argv[1]);
}

/* Reads the paths array into `h`; 0 after throwing. */
static int hashing_args(napi_env env, napi_value paths, hashing_t* h) {
  bool is_array = false;
  if (napi_is_array(env, paths, &is_array) != napi_ok || !is_array) {
    napi_throw_type_error(env, NULL, "fastfs.hash(paths, callback): paths must be an array of strings");
    return 0;
  }
  uint32_t count = 0;
  napi_get_array_length(env, paths, &count);
  h->paths = calloc(count > 0 ? count : 1, sizeof *h->paths);
  h->out = calloc(count > 0 ? (size_t)count * HASH_FIELDS : 1, sizeof *h->out);
  h->digests = calloc(count > 0 ? (size_t)count * 32 : 1, 1);
  if (h->paths == NULL || h->out == NULL || h->digests == NULL) {
    hashing_free(h);
    napi_throw_error(env, NULL, "fastfs: out of memory");
    return 0;
  }
  for (uint32_t i = 0; i < count; i++) {
    napi_value item;
    napi_get_element(env, paths, i, &item);
    if ((h->paths[i] = path_arg(env, item)) == NULL) {
      hashing_free(h);
      return 0;
    }
    h->count = i + 1;
  }
  return 1;
}

/* ---- writing a new file from memory ---------------------------------------------------------- */

/* Creates `temp` with `len` bytes of `data` (see writeNewSync above); on failure nothing stays. */
static void write_new(const char* temp, const uint8_t* data, size_t len, copy_t* c, uint8_t digest[32]) {
  int out = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (out < 0) {
    c->err = errno;
    c->syscall = "open";
    return;
  }
  int err = 0;
  const char* syscall = "write";
  for (size_t done = 0; done < len && err == 0;) {
    ssize_t w = write(out, data + done, len - done);
    if (w < 0 && errno != EINTR) err = errno;
    if (w > 0) done += (size_t)w;
  }
  struct stat st;
  if (err == 0) err = settle_open_file(out, c, &st, &syscall);
  if (!finish_staged(out, temp, err, syscall, &st, c) || digest == NULL) return;
  sha256_ctx_t ctx;
  sha256_init(&ctx);
  sha256_update(&ctx, data, len);
  sha256_final(&ctx, digest);
}

/* The bytes of Uint8Array argument `value` (a TypeError naming `what` otherwise). */
static int bytes_arg(napi_env env, napi_value value, const char* what, uint8_t** data, size_t* len) {
  bool is_typed = false;
  napi_typedarray_type type;
  void* ptr = NULL;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed ||
      napi_get_typedarray_info(env, value, &type, len, &ptr, NULL, NULL) != napi_ok || type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, what);
    return 0;
  }
  *data = ptr;
  return 1;
}

/* Reads (temp, data, mode, mtimeMs, flush, digest) into the job's fields; 0 after throwing. */
static int write_args(napi_env env, napi_value* argv, size_t argc, char** temp, uint8_t** data, size_t* len,
                      uint8_t** digest, copy_t* c) {
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "fastfs.writeNewSync(temp, data, mode, mtimeMs, flush, digest): arguments missing");
    return 0;
  }
  size_t digest_len = 0;
  if (!settle_args(env, argv, c, "fastfs.writeNewSync")) return 0;
  if (!bytes_arg(env, argv[1], "fastfs.writeNewSync: data must be a Uint8Array", data, len) ||
      !bytes_arg(env, argv[5], "fastfs.writeNewSync: digest must be a Uint8Array", digest, &digest_len))
    return 0;
  if (digest_len == 0) {
    *digest = NULL;
  } else if (digest_len < 32) {
    napi_throw_range_error(env, NULL, "fastfs.writeNewSync: digest must hold 32 bytes (or none)");
    return 0;
  }
  return (*temp = path_arg(env, argv[0])) != NULL;
}

static napi_value write_new_sync(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  copy_t c = {0};
  char* temp = NULL;
  uint8_t *data = NULL, *digest = NULL;
  size_t len = 0;
  if (!write_args(env, argv, argc, &temp, &data, &len, &digest, &c)) return NULL;
  write_new(temp, data, len, &c, digest);
  napi_value out = NULL;
  if (c.err != 0)
    napi_throw(env, make_errno_error(env, c.err, c.syscall, temp));
  else
    out = copy_result(env, &c);
  free(temp);
  return out;
}

/* ---- renaming without replacing -------------------------------------------------------------- */

/* 0, or the errno of renameat2(from, to, RENAME_NOREPLACE) (EINVAL: the file system cannot). */
static int rename_no_replace(const char* from, const char* to) {
  return renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0 ? 0 : errno;
}

/* Reads (from, to) into malloc'ed strings; 0 after throwing. */
static int rename_args(napi_env env, napi_value* argv, size_t argc, char** from, char** to) {
  if (argc < 2) {
    napi_throw_type_error(env, NULL, "fastfs.renameNoReplace(from, to): arguments missing");
    return 0;
  }
  return two_paths(env, argv, from, to);
}

static napi_value rename_sync(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  char *from = NULL, *to = NULL;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (!rename_args(env, argv, argc, &from, &to)) return NULL;
  int err = rename_no_replace(from, to);
  if (err != 0) napi_throw(env, make_errno_error(env, err, "rename", from));
  free(from);
  free(to);
  return NULL;
}

/* ---- the asynchronous variants -------------------------------------------------------------- */

typedef enum { JOB_LIST, JOB_COPY, JOB_HASH, JOB_RENAME } job_kind_t;

typedef struct {
  napi_async_work work;
  napi_ref callback;
  job_kind_t kind;
  char* path;
  char* temp;
  listing_t listing;
  copy_t copy;
  hashing_t hashing;
  int rename_err;
} job_t;

static void job_execute(napi_env env, void* data) {
  (void)env;
  job_t* job = data;
  if (job->kind == JOB_COPY) {
    copy_file(job->path, job->temp, &job->copy);
  } else if (job->kind == JOB_HASH) {
    hash_all(&job->hashing);
  } else if (job->kind == JOB_RENAME) {
    job->rename_err = rename_no_replace(job->path, job->temp);
  } else {
    list_folder(job->path, &job->listing);
  }
}

static void job_complete(napi_env env, napi_status status, void* data) {
  job_t* job = data;
  napi_value callback, global, argv[3];
  napi_get_reference_value(env, job->callback, &callback);
  napi_get_global(env, &global);
  napi_get_undefined(env, &argv[1]);
  napi_get_undefined(env, &argv[2]);
  if (status != napi_ok) {
    napi_value message;
    napi_create_string_utf8(env, "fastfs: the call was cancelled", NAPI_AUTO_LENGTH, &message);
    napi_create_error(env, NULL, message, &argv[0]);
  } else if (job->kind == JOB_COPY && job->copy.err != 0) {
    argv[0] = make_copy_error(env, job->copy.err, job->copy.syscall, job->path, job->temp,
                              job->copy.failed_on_src);
  } else if (job->kind == JOB_RENAME && job->rename_err != 0) {
    argv[0] = make_errno_error(env, job->rename_err, "rename", job->path);
  } else if (job->kind == JOB_LIST && job->listing.err != 0) {
    argv[0] = make_errno_error(env, job->listing.err, job->listing.syscall, job->path);
  } else {
    napi_get_null(env, &argv[0]);
    if (job->kind == JOB_HASH) hashing_result(env, &job->hashing, &argv[1]);
    else if (job->kind == JOB_RENAME) napi_get_undefined(env, &argv[1]);
    else argv[1] = job->kind == JOB_LIST ? result_of(env, &job->listing) : copy_result(env, &job->copy);
  }
  napi_delete_reference(env, job->callback);
  napi_delete_async_work(env, job->work);
  listing_free(&job->listing);
  if (job->kind == JOB_HASH) hashing_free(&job->hashing);
  free(job->path);
  free(job->temp);
  free(job);
  napi_call_function(env, global, callback, 3, argv, NULL);
}

/* Queues `job` (owning its strings) with the callback `fn`; NULL after throwing. */
static napi_value queue_job(napi_env env, job_t* job, napi_value fn) {
  napi_value name;
  static const char* const names[] = {"satchel.fastfs.list", "satchel.fastfs.copy", "satchel.fastfs.hash",
                                      "satchel.fastfs.rename"};
  napi_create_string_utf8(env, names[job->kind], NAPI_AUTO_LENGTH, &name);
  napi_create_reference(env, fn, 1, &job->callback);
  if (napi_create_async_work(env, NULL, name, job_execute, job_complete, job, &job->work) != napi_ok ||
      napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_reference(env, job->callback);
      if (job->kind == JOB_HASH) hashing_free(&job->hashing);
    free(job->path);
    free(job->temp);
    free(job);
    napi_throw_error(env, NULL, "fastfs: cannot queue the call");
  }
  return NULL;
}

static int is_function(napi_env env, napi_value value) {
  napi_valuetype type = napi_undefined;
  napi_typeof(env, value, &type);
  return type == napi_function;
}

/*
 * Reads `n` arguments, the last a callback, into `argv`, and allocates a job of `kind`; NULL after
 * throwing (`usage` names the call in the message).
 */
static job_t* start_job(napi_env env, napi_callback_info info, size_t n, napi_value* argv, job_kind_t kind,
                        const char* usage) {
  size_t argc = n;
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc < n || !is_function(env, argv[n - 1])) {
    char message[160];
    snprintf(message, sizeof message, "%s: callback must be a function", usage);
    napi_throw_type_error(env, NULL, message);
    return NULL;
  }
  job_t* job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, NULL, "fastfs: out of memory");
    return NULL;
  }
  job->kind = kind;
  return job;
}

static napi_value list_async(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  job_t* job = start_job(env, info, 2, argv, JOB_LIST, "fastfs.list(dir, callback)");
  if (job == NULL) return NULL;
  if ((job->path = path_arg(env, argv[0])) == NULL) {
    free(job);
    return NULL;
  }
  return queue_job(env, job, argv[1]);
}

static napi_value copy_async(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  job_t* job = start_job(env, info, 6, argv, JOB_COPY, "fastfs.copy(src, temp, mode, mtimeMs, flush, callback)");
  if (job == NULL) return NULL;
  if (!copy_args(env, argv, 6, &job->path, &job->temp, &job->copy)) {
    free(job);
    return NULL;
  }
  return queue_job(env, job, argv[5]);
}

static napi_value hash_async(napi_env env, napi_callback_info info) {
  napi_value argv[2];
  job_t* job = start_job(env, info, 2, argv, JOB_HASH, "fastfs.hash(paths, callback)");
  if (job == NULL) return NULL;
  if (!hashing_args(env, argv[0], &job->hashing)) {
    free(job);
    return NULL;
  }
  return queue_job(env, job, argv[1]);
}

static napi_value rename_async(napi_env env, napi_callback_info info) {
  napi_value argv[3];
  job_t* job = start_job(env, info, 3, argv, JOB_RENAME, "fastfs.renameNoReplace(from, to, callback)");
  if (job == NULL) return NULL;
  if (!rename_args(env, argv, 3, &job->path, &job->temp)) {
    free(job);
    return NULL;
  }
  return queue_job(env, job, argv[2]);
}

static napi_value init(napi_env env, napi_value exports) {
  pick_sha256("SATCHEL_FASTFS_NO_SHA_NI");
  napi_value fn, number;
  napi_create_function(env, "listSync", NAPI_AUTO_LENGTH, list_sync, NULL, &fn);
  napi_set_named_property(env, exports, "listSync", fn);
  napi_create_function(env, "list", NAPI_AUTO_LENGTH, list_async, NULL, &fn);
  napi_set_named_property(env, exports, "list", fn);
  napi_create_function(env, "copySync", NAPI_AUTO_LENGTH, copy_sync, NULL, &fn);
  napi_set_named_property(env, exports, "copySync", fn);
  napi_create_function(env, "copy", NAPI_AUTO_LENGTH, copy_async, NULL, &fn);
  napi_set_named_property(env, exports, "copy", fn);
  napi_create_function(env, "writeNewSync", NAPI_AUTO_LENGTH, write_new_sync, NULL, &fn);
  napi_set_named_property(env, exports, "writeNewSync", fn);
  napi_create_function(env, "renameNoReplaceSync", NAPI_AUTO_LENGTH, rename_sync, NULL, &fn);
  napi_set_named_property(env, exports, "renameNoReplaceSync", fn);
  napi_create_function(env, "renameNoReplace", NAPI_AUTO_LENGTH, rename_async, NULL, &fn);
  napi_set_named_property(env, exports, "renameNoReplace", fn);
  napi_create_function(env, "hash", NAPI_AUTO_LENGTH, hash_async, NULL, &fn);
  napi_set_named_property(env, exports, "hash", fn);
  napi_create_int32(env, FIELDS, &number);
  napi_set_named_property(env, exports, "FIELDS", number);
  napi_create_int32(env, COPY_FIELDS, &number);
  napi_set_named_property(env, exports, "COPY_FIELDS", number);
  napi_create_int32(env, HASH_FIELDS, &number);
  napi_set_named_property(env, exports, "HASH_FIELDS", number);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
