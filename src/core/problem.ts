/**
 * @module core/problem
 * Per-path, non-fatal trouble, returned as data by scans, plans and applies (never thrown):
 * the rest of a sync goes on, and the path is retried on the next one.
 */
import type { FileEntry } from './entry.js';

/** The closed set of reasons a path could not be handled. */
export type ProblemCode =
  | 'unreadable' // the file or folder could not be read (permissions, I/O error)
  | 'changed-during-sync' // the path moved under us; it is picked up by the next sync
  | 'name-not-storable' // the mirror cannot hold this name, even encoded
  | 'case-clash' // two names differ only in case and the mirror is case-insensitive
  | 'too-large' // over the mirror's maximum file size (FAT32: 4 GiB - 1)
  | 'symlink-unsupported' // the mirror cannot hold symbolic links
  | 'no-space' // the mirror's disk is full
  | 'permission-denied' // the mirror refused the write or delete
  | 'not-empty' // a folder to delete still holds something that is not ours to delete
  | 'special-file' // a named pipe, socket or device: only files, folders and links are replicated
  | 'io-error'; // any other failure of the underlying storage

/** One path that could not be handled, with the reason in plain words. */
export interface Problem {
  /** The path in the case's spelling (`''` for the root). */
  readonly path: string;
  /** Machine-readable reason. */
  readonly code: ProblemCode;
  /** Human-readable reason, one line, naming what was attempted. */
  readonly message: string;
  /**
   * For a file a mirror holds but cannot read because it is damaged (an encrypted file that
   * fails authentication or was cut off): its entry as a plan sees it, so that the case's
   * version can replace it, or the case's deletion remove it. Its `hash` is not a content hash.
   */
  readonly damaged?: FileEntry;
}

/** The message of a `special-file` problem: what `path` is, and that it is left out. */
export function specialFileMessage(path: string, st: { isFIFO(): boolean; isSocket(): boolean }): string {
  const what = st.isFIFO() ? 'a named pipe (FIFO)' : st.isSocket() ? 'a socket' : 'a device file';
  return `${path} is ${what}: only files, folders and symbolic links are replicated (add it to .satchelignore to leave it out quietly)`;
}

/** The message of a name that is not UTF-8 (listed with U+FFFD for its bytes): it cannot be reached as listed. */
export function notUtf8Message(path: string): string {
  return `cannot read ${path}: its name is not valid UTF-8 (shown with \ufffd for the bytes that are not); rename it (convmv -f <charset> -t utf8 --notest) to replicate it`;
}
