/**
 * @module daemon/resolve
 * `satchel resolve <path> --keep case|mirror|both`: settles a conflict the user has looked at.
 *
 * A sync that finds a conflict keeps both versions: the winner's at `path`, the other at
 * `copyPath`, in the case and on the mirror alike. Resolving works on the case folder only and
 * the next sync spreads the result like any other edit:
 * - keep both: the record is forgotten, both files stay as they are;
 * - keep case / keep mirror: the chosen version ends up at `path` (the copy is renamed over it
 *   when the copy holds it, atomically), the other version is deleted, the record removed.
 */
import { lstatSync, renameSync, rmSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { SatchelError } from '../core/errors.js';
import { STATE_DIR_NAME } from '../core/reserved.js';
import type { ConflictRecord } from '../state/state-store.js';
import type { CaseContext } from './case.js';
import { acquireCaseLock } from './case-lock.js';

/** Which version of a conflicted path to keep. */
export type KeepChoice = 'case' | 'mirror' | 'both';

/** What {@link resolveConflict} did. */
export interface Resolution {
  /** The conflict as it was recorded. */
  readonly conflict: ConflictRecord;
  readonly keep: KeepChoice;
  /** The path now holding the kept version (`path`), or both paths for `both`. */
  readonly kept: readonly string[];
  /** The path whose file was deleted, if any. */
  readonly removed?: string;
  /** The path renamed over `path`, if the kept version was the copy. */
  readonly movedFrom?: string;
}

/** The case-relative, `/`-separated spellings `input` may stand for (as typed, or from `cwd`). */
function candidatePaths(root: string, input: string, cwd: string): string[] {
  const out = new Set<string>();
  const add = (abs: string): void => {
    const rel = relative(root, abs);
    if (rel !== '' && !rel.startsWith('..') && !isAbsolute(rel)) out.add(rel.split(sep).join('/'));
  };
  if (isAbsolute(input)) add(input);
  else {
    add(resolve(cwd, input));
    add(resolve(root, input));
  }
  return [...out];
}

/** Finds the conflict `input` names (its path or its copy path). */
function findConflict(ctx: CaseContext, input: string, cwd: string): ConflictRecord {
  const conflicts = ctx.state.listConflicts();
  const wanted = candidatePaths(ctx.root, input, cwd);
  const byPath = conflicts.filter((c) => wanted.includes(c.path));
  if (byPath.length > 1) {
    // The same path lost a version to two mirrors: which one is meant must be said.
    throw new SatchelError(
      'usage',
      `${input} has ${byPath.length} conflicts (${byPath.map((c) => `${c.copyPath} from ${c.mirror}`).join(', ')})`,
      {
        hint: 'name the conflict copy to settle, e.g. `satchel resolve <copy path> --keep …`, one after the other',
        data: { path: input, copies: byPath.map((c) => c.copyPath) },
      },
    );
  }
  const found = byPath[0] ?? conflicts.find((c) => wanted.includes(c.copyPath));
  if (found === undefined) {
    throw new SatchelError('conflict-unknown', `no conflict recorded for ${input}`, {
      hint:
        conflicts.length === 0
          ? 'there are no conflicts to resolve'
          : 'run `satchel conflicts` to list them; give the path or the conflict copy path',
      data: { path: input },
    });
  }
  return found;
}

/** Whether something (a file, link or folder) exists at `abs`. */
function exists(abs: string): boolean {
  try {
    lstatSync(abs);
    return true;
  } catch {
    return false;
  }
}

/**
 * Moves `from` over `to`. A rename replaces a file in one step, so no reader ever sees `to`
 * missing or partial; only when the kinds differ (a folder on one side, a file on the other),
 * which rename cannot replace, is the old `to` deleted first.
 */
function moveOver(from: string, to: string): void {
  try {
    renameSync(from, to);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'ENOTDIR' && code !== 'ENOTEMPTY' && code !== 'EEXIST') throw e;
    rmSync(to, { recursive: true, force: true });
    renameSync(from, to);
  }
}

/** Wraps an I/O failure on `path` as a plain `io` error. */
function ioError(what: string, path: string, cause: unknown): SatchelError {
  return new SatchelError('io', `cannot ${what} ${path}: ${(cause as Error).message}`, {
    hint: 'check the permissions of the case folder, then run the same command again',
    data: { path },
    cause,
  });
}

/**
 * Resolves the conflict at `input`, which may be the conflicted path or its conflict copy,
 * relative to `cwd` or to the case root, or absolute. Throws `conflict-unknown` when no such
 * conflict is recorded, `io` when the version to keep is gone or a file cannot be changed.
 */
export function resolveConflict(
  ctx: CaseContext,
  input: string,
  keep: KeepChoice,
  cwd = process.cwd(),
): Resolution {
  const lock = acquireCaseLock(join(ctx.root, STATE_DIR_NAME), 'resolving a conflict');
  try {
    return settleConflict(ctx, input, keep, cwd);
  } finally {
    lock.release();
  }
}

/**
 * {@link resolveConflict} for a caller that holds the case lock already (a running `satchel
 * watch`, asked by `satchel resolve`).
 */
export function settleConflict(ctx: CaseContext, input: string, keep: KeepChoice, cwd: string): Resolution {
  const conflict = findConflict(ctx, input, cwd);
  if (keep === 'both') {
    ctx.state.removeConflict(conflict.copyPath);
    return { conflict, keep, kept: [conflict.path, conflict.copyPath] };
  }
  // At this point we know which version to keep: the winner's sits at `path`, the other at `copyPath`.
  const target = join(ctx.root, conflict.path);
  const copy = join(ctx.root, conflict.copyPath);
  if (keep === conflict.winner) {
    try {
      rmSync(copy, { recursive: true, force: true });
    } catch (cause) {
      throw ioError('delete', conflict.copyPath, cause);
    }
    ctx.state.removeConflict(conflict.copyPath);
    return { conflict, keep, kept: [conflict.path], removed: conflict.copyPath };
  }
  if (!exists(copy)) {
    throw new SatchelError(
      'io',
      `the ${keep} version of ${conflict.path} is gone: ${conflict.copyPath} no longer exists`,
      {
        hint: `keep the version at ${conflict.path} with \`satchel resolve ${conflict.path} --keep ${conflict.winner}\`, or \`--keep both\` to just forget the conflict`,
        data: { path: conflict.path, copyPath: conflict.copyPath },
      },
    );
  }
  try {
    moveOver(copy, target);
  } catch (cause) {
    throw ioError(`move ${conflict.copyPath} over`, conflict.path, cause);
  }
  ctx.state.removeConflict(conflict.copyPath);
  return { conflict, keep, kept: [conflict.path], removed: conflict.path, movedFrom: conflict.copyPath };
}
