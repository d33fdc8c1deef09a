/**
 * @module mirrors/path/fs-errors
 * Maps Node file-system errors (`errno` codes) to Satchel's closed set of problem codes, with a
 * plain-words message naming the path and what was attempted. Also recognises the errors that
 * mean the whole mirror went away (a yanked stick, an unmounted share).
 */
import type { Problem, ProblemCode } from '../../core/problem.js';

/** The `code` of a Node system error, if `err` is one. */
export function errnoOf(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = (err as { code: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

/** The problem code for a failed write, create, rename or delete with errno `code`. */
export function problemCodeOf(code: string | undefined): ProblemCode {
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return 'no-space';
    case 'EFBIG':
      return 'too-large';
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return 'permission-denied';
    case 'EINVAL':
    case 'ENAMETOOLONG':
    case 'EILSEQ':
      return 'name-not-storable';
    case 'ENOTEMPTY':
    case 'EEXIST':
      return 'not-empty';
    default:
      return 'io-error';
  }
}

/** What was being attempted when an error happened, for the message. */
export interface FailedAction {
  /** The path in the case's spelling. */
  readonly path: string;
  /** A verb phrase: `write`, `create folder`, `remove`, `rename to x`… */
  readonly action: string;
  /** For writes: how many bytes the file needs (named in no-space messages). */
  readonly bytes?: number;
  /** For writes on a full disk: the bytes still free there, to say how much is missing. */
  readonly freeBytes?: number;
  /**
   * The name was being created: exFAT through FUSE answers ENOENT (fusefat EPERM) for a name
   * it cannot hold, so ENOENT on create means "name not storable" when the parent exists.
   */
  readonly creatingName?: boolean;
}

/** `1536` → `1.5 KiB`; bytes stay exact below 1 KiB. */
export function formatBytes(n: number): string {
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  if (n < 1024) return `${n} bytes`;
  let v = n;
  let u = -1;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

/** A {@link Problem} for `err`, raised while doing `what`. */
export function problemFromError(err: unknown, what: FailedAction): Problem {
  const errno = errnoOf(err);
  let code = problemCodeOf(errno);
  if (what.creatingName === true && errno === 'ENOENT') code = 'name-not-storable';
  const reason = err instanceof Error ? err.message : String(err);
  let message: string;
  switch (code) {
    case 'no-space':
      message =
        what.bytes === undefined
          ? `cannot ${what.action} ${what.path}: no space left on the device`
          : what.freeBytes === undefined
            ? `cannot ${what.action} ${what.path}: no space left on the device (${formatBytes(what.bytes)} needed)`
            : what.bytes > what.freeBytes
              ? `cannot ${what.action} ${what.path}: no space left on the device (${formatBytes(what.bytes)} needed, ${formatBytes(what.freeBytes)} free: ${formatBytes(what.bytes - what.freeBytes)} missing)`
              : // Free by the numbers, yet refused: the space went to something written meanwhile.
                `cannot ${what.action} ${what.path}: no space left on the device (${formatBytes(what.bytes)} needed; ${formatBytes(what.freeBytes)} free now, taken meanwhile by other writes)`;
      break;
    case 'permission-denied':
      message =
        errno === 'EROFS'
          ? `cannot ${what.action} ${what.path}: the file system is mounted read-only (EROFS)`
          : `cannot ${what.action} ${what.path}: permission denied (${errno})`;
      break;
    case 'name-not-storable':
      message = `cannot ${what.action} ${what.path}: the mirror cannot store this name (${errno})`;
      break;
    case 'not-empty':
      message = `cannot ${what.action} ${what.path}: the folder is not empty`;
      break;
    case 'too-large':
      message = `cannot ${what.action} ${what.path}: the file is too large for the mirror (${errno})`;
      break;
    default:
      message = `cannot ${what.action} ${what.path}: ${reason}`;
  }
  return { path: what.path, code, message };
}

/** Whether `err` can mean the storage itself is gone (FUSE daemon killed, device removed). */
export function mayMeanRootGone(err: unknown): boolean {
  const errno = errnoOf(err);
  return (
    errno === 'ENOTCONN' || errno === 'EIO' || errno === 'ENOENT' || errno === 'ENODEV' || errno === 'ESTALE'
  );
}
