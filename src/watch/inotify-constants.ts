/**
 * @module watch/inotify-constants
 * The Linux inotify mask bits (from `<sys/inotify.h>`; part of the kernel ABI, so they never
 * change) and the mask Satchel asks for on every watched folder. Pure data, usable on any
 * platform: the coalescer and its tests need the numbers without loading the native addon
 * (`inotify-binding.test.ts` checks they equal the addon's own `constants`).
 */

/** File was read. Not requested by Satchel. */
export const IN_ACCESS = 0x00000001;
/** File content was written (once per write call: "still being written"). */
export const IN_MODIFY = 0x00000002;
/** Metadata changed: permissions, timestamps, owner, link count, extended attributes. */
export const IN_ATTRIB = 0x00000004;
/** A file opened for writing was closed: the writer is done with it. */
export const IN_CLOSE_WRITE = 0x00000008;
/** A file opened read-only was closed. Not requested by Satchel. */
export const IN_CLOSE_NOWRITE = 0x00000010;
/** A file was opened. Not requested by Satchel. */
export const IN_OPEN = 0x00000020;
/** A name was renamed away from the watched folder (paired with IN_MOVED_TO by `cookie`). */
export const IN_MOVED_FROM = 0x00000040;
/** A name was renamed into the watched folder (paired with IN_MOVED_FROM by `cookie`). */
export const IN_MOVED_TO = 0x00000080;
/** A name was created in the watched folder (file, folder, link, device). */
export const IN_CREATE = 0x00000100;
/** A name was removed from the watched folder. */
export const IN_DELETE = 0x00000200;
/** The watched folder itself was deleted (an IN_IGNORED follows). */
export const IN_DELETE_SELF = 0x00000400;
/** The watched folder itself was renamed. */
export const IN_MOVE_SELF = 0x00000800;
/** The file system holding the watched folder was unmounted (an IN_IGNORED follows). */
export const IN_UNMOUNT = 0x00002000;
/** The kernel's event queue overflowed: events were lost (`wd` is -1). */
export const IN_Q_OVERFLOW = 0x00004000;
/** The watch was removed (explicitly, or because its folder is gone): the `wd` is dead. */
export const IN_IGNORED = 0x00008000;
/** Watch flag: fail with ENOTDIR unless the path is a folder. */
export const IN_ONLYDIR = 0x01000000;
/** Watch flag: do not follow a symbolic link at the path. */
export const IN_DONT_FOLLOW = 0x02000000;
/** Watch flag: no events for children after they are unlinked (files kept open by someone). */
export const IN_EXCL_UNLINK = 0x04000000;
/** Watch flag: add to an existing watch's mask instead of replacing it. */
export const IN_MASK_ADD = 0x20000000;
/** Event flag: the subject of the event is a folder. */
export const IN_ISDIR = 0x40000000;

/**
 * What Satchel watches on each folder of the case: every change of content, name and
 * metadata of its children, and the folder's own deletion or move. Only folders are watched
 * (IN_ONLYDIR), never through a link (IN_DONT_FOLLOW), and deleted-but-open files stay silent
 * (IN_EXCL_UNLINK).
 */
export const FOLDER_WATCH_MASK =
  IN_MODIFY |
  IN_ATTRIB |
  IN_CLOSE_WRITE |
  IN_MOVED_FROM |
  IN_MOVED_TO |
  IN_CREATE |
  IN_DELETE |
  IN_DELETE_SELF |
  IN_MOVE_SELF |
  IN_ONLYDIR |
  IN_DONT_FOLLOW |
  IN_EXCL_UNLINK;

/** One event as the kernel reports it (and the addon hands it over). */
export interface RawInotifyEvent {
  /** Watch descriptor of the folder the event happened in; -1 for IN_Q_OVERFLOW. */
  readonly wd: number;
  /** IN_* bits. */
  readonly mask: number;
  /** Links an IN_MOVED_FROM with its IN_MOVED_TO; 0 otherwise. */
  readonly cookie: number;
  /** Name of the child inside the folder; empty for events on the folder itself. */
  readonly name: string;
}

const NAMES: readonly (readonly [number, string])[] = [
  [IN_ACCESS, 'ACCESS'],
  [IN_MODIFY, 'MODIFY'],
  [IN_ATTRIB, 'ATTRIB'],
  [IN_CLOSE_WRITE, 'CLOSE_WRITE'],
  [IN_CLOSE_NOWRITE, 'CLOSE_NOWRITE'],
  [IN_OPEN, 'OPEN'],
  [IN_MOVED_FROM, 'MOVED_FROM'],
  [IN_MOVED_TO, 'MOVED_TO'],
  [IN_CREATE, 'CREATE'],
  [IN_DELETE, 'DELETE'],
  [IN_DELETE_SELF, 'DELETE_SELF'],
  [IN_MOVE_SELF, 'MOVE_SELF'],
  [IN_UNMOUNT, 'UNMOUNT'],
  [IN_Q_OVERFLOW, 'Q_OVERFLOW'],
  [IN_IGNORED, 'IGNORED'],
  [IN_ISDIR, 'ISDIR'],
];

/** Spells a mask out for logs and test failures, e.g. `CREATE|ISDIR`. */
export function describeMask(mask: number): string {
  const parts = NAMES.filter(([bit]) => (mask & bit) !== 0).map(([, name]) => name);
  return parts.length > 0 ? parts.join('|') : `0x${mask.toString(16)}`;
}
