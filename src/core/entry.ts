/**
 * @module core/entry
 * The data model shared by every part of Satchel: entries (what one path holds on one replica)
 * and snapshots (every path of one replica). Pure data, immutable, no I/O.
 *
 * Paths are relative to the replica root, use `/` as separator, have no leading or trailing
 * slash, and are never empty (the root itself is not an entry). They are always in the case's
 * spelling: replicas that must store a name differently (FAT forbids `:`) encode on the way out
 * and decode on the way in, so the core only ever sees the real names.
 */

/** A regular file. */
export interface FileEntry {
  readonly kind: 'file';
  /** Size in bytes. */
  readonly size: number;
  /** Modification time in milliseconds since the epoch, as the replica reports it. */
  readonly mtimeMs: number;
  /** Whether the owner-executable bit is set (false on replicas without permissions). */
  readonly executable: boolean;
  /** Lower-case hex SHA-256 of the content. */
  readonly hash: string;
}

/** A directory. Its children are separate entries of the snapshot. */
export interface DirectoryEntry {
  readonly kind: 'directory';
}

/** A symbolic link, stored as a link and never followed. */
export interface SymlinkEntry {
  readonly kind: 'symlink';
  /** The link's target exactly as stored (relative or absolute). */
  readonly target: string;
}

/** What one path holds on one replica. Absence is `undefined`, never an entry. */
export type Entry = FileEntry | DirectoryEntry | SymlinkEntry;

/** The kinds an entry can have. */
export type EntryKind = Entry['kind'];

/** Every path of one replica, mapped to its entry. Parents of every path are present. */
export type Snapshot = ReadonlyMap<string, Entry>;

/**
 * Whether two entries hold the same thing: same kind, and for files the same content and
 * executable bit, for links the same target. Modification times and sizes alone never decide
 * equality (clocks and file systems disagree; content does not).
 */
export function sameEntry(a: Entry | undefined, b: Entry | undefined): boolean {
  if (a === undefined || b === undefined) return a === b;
  if (a.kind !== b.kind) return false;
  switch (a.kind) {
    case 'directory':
      return true;
    case 'symlink':
      return a.target === (b as SymlinkEntry).target;
    case 'file':
      return a.hash === (b as FileEntry).hash && a.executable === (b as FileEntry).executable;
  }
}

/** Whether two entries hold the same content, ignoring the executable bit. */
export function sameContent(a: Entry | undefined, b: Entry | undefined): boolean {
  if (a?.kind === 'file' && b?.kind === 'file') return a.hash === b.hash;
  return sameEntry(a, b);
}

/** The parent path of `path`, or `''` for a top-level path. */
export function parentPath(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}

/** The last segment of `path`. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Whether `path` is `dir` itself or lies below it. */
export function isSameOrBelow(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir + '/');
}

/** Every proper ancestor directory of `path`, outermost first (`a/b/c` → `a`, `a/b`). */
export function ancestorsOf(path: string): string[] {
  const out: string[] = [];
  let i = path.indexOf('/');
  while (i >= 0) {
    out.push(path.slice(0, i));
    i = path.indexOf('/', i + 1);
  }
  return out;
}

/**
 * Orders paths so that every directory comes before its children (depth-first, by segment).
 * Use the reverse order to remove children before their directory.
 */
export function comparePaths(a: string, b: string): number {
  // Segment by segment without splitting (sorting a snapshot compares often): at the first
  // differing character, a '/' ends its segment, so it sorts before any other character.
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    if (x === SLASH) return -1;
    if (y === SLASH) return 1;
    return x < y ? -1 : 1;
  }
  // One is a prefix of the other: a shorter last segment, or an ancestor folder, comes first.
  return a.length === b.length ? 0 : a.length < b.length ? -1 : 1;
}

const SLASH = 0x2f;
