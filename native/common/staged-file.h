/*
 * Shared by Satchel's addons: the last steps of a staged file (a new temporary file beside its
 * target, renamed in later), done on its open descriptor: early writeback, mode, mtime,
 * optional fsync, fstat. fastfs stages copies and in-memory writes this way, secretbox the
 * files it seals.
 */
#ifndef SATCHEL_STAGED_FILE_H
#define SATCHEL_STAGED_FILE_H

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* `ms` (milliseconds since 1970, as JavaScript holds a time) as a timespec, to the nearest ns. */
static inline void timespec_of_ms(struct timespec* ts, double ms) {
  double sec = ms / 1e3;
  time_t whole = (time_t)sec;
  if ((double)whole > sec) whole -= 1; /* floor for times before 1970 */
  double rest_ns = (ms - (double)whole * 1e3) * 1e6;
  long ns = (long)(rest_ns + 0.5);
  if (ns >= 1000000000L) {
    whole += 1;
    ns -= 1000000000L;
  }
  if (ns < 0) ns = 0;
  ts->tv_sec = whole;
  ts->tv_nsec = ns;
}

/* A timespec in milliseconds, computed exactly as Node's Stats.mtimeMs. */
static inline double ms_of_timespec(const struct timespec* ts) {
  return (double)ts->tv_sec * 1e3 + (double)ts->tv_nsec / 1e6;
}

/* Whether two fstat results show the same file with the same size and mtime. */
static inline int same_file_state(const struct stat* a, const struct stat* b) {
  return a->st_size == b->st_size && a->st_ino == b->st_ino && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
         a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/*
 * Sets the staged file `out`'s mode (unless `mode` < 0), its mtime and atime, fsyncs it when
 * `flush`, and fills `st` with its fstat: 0, or the errno of the call that failed (named in
 * `*syscall`).
 */
static inline int settle_staged(int out, double mode, const struct timespec* mtime, int flush, struct stat* st,
                                const char** syscall) {
  if (mode >= 0 && fchmod(out, (mode_t)mode) != 0) return (*syscall = "fchmod", errno);
  struct timespec times[2] = {*mtime, *mtime};
  if (futimens(out, times) != 0) return (*syscall = "futimens", errno);
  if (flush && fsync(out) != 0) return (*syscall = "fsync", errno);
  if (fstat(out, st) != 0) return (*syscall = "fstat", errno);
  return 0;
}

/*
 * Opens the file `path` to copy it: read-only, without following a final symbolic link, and
 * without waiting. O_NONBLOCK makes a named pipe put at the path since it was listed fail at
 * once instead of blocking until some writer opens it (on the main thread that would stop the
 * whole process; on the thread pool, a thread forever). The flag is then cleared (it means
 * nothing for a regular file). Fills `st`; returns the descriptor, or -1 with errno set and
 * `*syscall` named (EINVAL: not a regular file).
 */
static inline int open_regular_file(const char* path, struct stat* st, const char** syscall) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
  if (fd < 0) return (*syscall = "open", -1);
  int err = 0;
  if (fstat(fd, st) != 0) {
    err = errno;
    *syscall = "fstat";
  } else if (!S_ISREG(st->st_mode)) {
    err = EINVAL;
    *syscall = "open";
  } else {
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0) (void)fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
  }
  close(fd);
  errno = err;
  return -1;
}

/* Added to a copy's mode: cap its group and other bits by the source's. */
#define MODE_CAP_BY_SOURCE 1048576.0

/*
 * The mode to give a copy of a source with mode `source_mode`: `mode` itself, or, when it holds
 * MODE_CAP_BY_SOURCE, its permission bits with group and others no wider than the source's (a
 * new file never lets them do more than the source lets them: a 0600 key stays 0600).
 */
static inline double capped_mode(double mode, mode_t source_mode) {
  if (mode < MODE_CAP_BY_SOURCE) return mode;
  mode_t m = (mode_t)((long)mode & 07777);
  return (double)((m & ~(mode_t)077) | (m & source_mode & 077));
}

/* Staged files at least this long start their writeback at once (see start_writeback). */
#define EARLY_WRITEBACK_FROM_BYTES 65536

/*
 * Starts writing the staged file `out` (`size` bytes) to its device without waiting, when it
 * is not flushed on its own (a batch is flushed with one syncfs at the end) and is long enough:
 * the device then works while later files are staged, and the final syncfs waits less. Small
 * files are left to that syncfs (one call each would cost more than it saves). Errors are of
 * no concern here: the flush that follows reports them.
 */
static inline void start_writeback(int out, off_t size, int flush) {
  if (!flush && size >= EARLY_WRITEBACK_FROM_BYTES) (void)sync_file_range(out, 0, 0, SYNC_FILE_RANGE_WRITE);
}

#endif
