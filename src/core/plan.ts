/**
 * @module core/plan
 * The output of reconciliation: the operations to apply on each side of a (case, mirror) pair,
 * the conflicts found (already resolved by keeping both versions), and the problems. Pure data.
 *
 * Every operation carries `expected`: what the target path held when the plan was made. A
 * replica re-checks it right before changing anything (size, modification time and kind for
 * files; kind for the rest) and refuses with a `changed-during-sync` problem when the path moved
 * under it, so a save made during a sync is never overwritten (Mutagen's `ensureExpectedFile`).
 */
import type { Entry, FileEntry } from './entry.js';
import type { Problem } from './problem.js';

/** The two sides of a pair. */
export type Side = 'case' | 'mirror';

/** Where the content of a `write` comes from: a path on one side, holding `entry` at scan time. */
export interface ContentRef {
  readonly side: Side;
  readonly path: string;
  readonly entry: FileEntry;
}

/** Create a directory at `path` (its parent exists by then). */
export interface MkdirOperation {
  readonly type: 'mkdir';
  readonly path: string;
  readonly expected: undefined;
}

/**
 * Write a file at `path` atomically (staged under a temporary name, then renamed over): the
 * content of `from`, with `entry`'s executable bit and modification time.
 */
export interface WriteOperation {
  readonly type: 'write';
  readonly path: string;
  /** The entry the file must end up as (hash, size, mtime, executable bit). */
  readonly entry: FileEntry;
  readonly from: ContentRef;
  readonly expected: Entry | undefined;
}

/** Create (or replace) a symbolic link at `path`. */
export interface SymlinkOperation {
  readonly type: 'symlink';
  readonly path: string;
  readonly target: string;
  readonly expected: Entry | undefined;
}

/** Set the executable bit of an existing file whose content already matches. */
export interface ChmodOperation {
  readonly type: 'chmod';
  readonly path: string;
  readonly executable: boolean;
  readonly expected: FileEntry;
}

/** Remove a file, a link, or a directory that is empty by then (children are removed first). */
export interface RemoveOperation {
  readonly type: 'remove';
  readonly path: string;
  readonly expected: Entry;
}

/** Rename a file, link or whole directory (with everything below it) to an absent path. */
export interface RenameOperation {
  readonly type: 'rename';
  readonly from: string;
  readonly to: string;
  /** The entry at `from` when planned. */
  readonly expected: Entry;
  /**
   * For a file whose content is reused under a new name: the modification time it must carry
   * afterwards (the source's), when that differs from the moved file's own.
   */
  readonly mtimeMs?: number;
  /**
   * Only the letter case of the last name changes (`from` and `to` are one name to a
   * case-insensitive mirror): the other side spells it so.
   */
  readonly respell?: true;
}

/** One change to one side. */
export type Operation =
  MkdirOperation | WriteOperation | SymlinkOperation | ChmodOperation | RemoveOperation | RenameOperation;

/** A path both sides changed differently since the ancestor, and how it was resolved. */
export interface Conflict {
  /** The contested path. */
  readonly path: string;
  /** Where the losing (older) version is kept on both sides, e.g. `notes.conflict-20261125-081500-stick.txt`. */
  readonly copyPath: string;
  /** The side whose version stays at `path`. */
  readonly winner: Side;
  /** Plain-words reason, e.g. "edited on both the case and stick". */
  readonly reason: string;
}

/** Everything one reconciliation of a pair decided. */
export interface PairPlan {
  /** Operations on the case, in the order they must be applied. */
  readonly caseOps: readonly Operation[];
  /** Operations on the mirror, in the order they must be applied. */
  readonly mirrorOps: readonly Operation[];
  readonly conflicts: readonly Conflict[];
  readonly problems: readonly Problem[];
}

/** The path an operation changes (the destination for renames). */
export function operationPath(op: Operation): string {
  return op.type === 'rename' ? op.to : op.path;
}
