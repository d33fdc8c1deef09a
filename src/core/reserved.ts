/**
 * @module core/reserved
 * Names Satchel keeps for itself. They are never replicated and never reported by a scan: the
 * case's state folder, the marker at a mirror's root and temporary files of atomic writes.
 */

/** The marker file at a mirror's root that identifies the mirror (UUID and case name). */
export const MARKER_NAME = '.satchel-mirror';

/** The case's own folder (config and this machine's state), at the case root. */
export const STATE_DIR_NAME = '.satchel';

/** Prefix of temporary files staged beside their final name before the atomic rename. */
export const TEMP_PREFIX = '.satchel-tmp-';

/**
 * The exact names Satchel gives its temporary files and folders: the prefix and 16 hex digits
 * (staged files, backups, markers being written) or `probe-` and 12 (a capability probe). A
 * user's file that merely starts with the prefix (`.satchel-tmp-notes`) is an ordinary file.
 */
const TEMP_NAME = /^\.satchel-tmp-(?:[0-9a-f]{16}|probe-[0-9a-f]{12})$/;

/** A temporary name below the root, as it appears inside a path. */
const NESTED_TEMP = `/${TEMP_PREFIX}`;

/** Whether the single name `name` is one of Satchel's temporary names (see {@link tempSuffix}). */
export function isTempName(name: string): boolean {
  return name.startsWith(TEMP_PREFIX) && TEMP_NAME.test(name);
}

/** A temporary name's 16 hex digits for the number `n` (replicas that count instead of drawing random bytes). */
export function tempSuffix(n: number): string {
  return n.toString(16).padStart(16, '0');
}

/** Where a state folder or a marker may start below the root. */
const NESTED_STATE = `/${STATE_DIR_NAME}`;

/**
 * Whether `path` (relative, `/`-separated) is one of Satchel's own: a state folder or anything
 * below it, a marker, or any path with a segment that is a temporary name ({@link isTempName}:
 * a temporary file, or anything below a temporary folder). State folders and markers below the
 * root belong to another case or mirror kept inside this case (a nested case, a mirror folder of
 * another case): never replicated, as a database copied while in use is no copy, and a second
 * marker could be taken for that mirror.
 */
export function isSatchelInternal(path: string): boolean {
  // Called for every path of every scan: plain string tests first, no splitting.
  if (
    path.startsWith(STATE_DIR_NAME) &&
    (path.length === STATE_DIR_NAME.length || path[STATE_DIR_NAME.length] === '/')
  )
    return true;
  if (path === MARKER_NAME) return true;
  for (let i = path.indexOf(NESTED_STATE); i >= 0; i = path.indexOf(NESTED_STATE, i + 1)) {
    const end = i + NESTED_STATE.length;
    if (end === path.length || path[end] === '/') return true;
    if (path.endsWith(MARKER_NAME) && path.length === i + 1 + MARKER_NAME.length) return true;
  }
  for (
    let at = path.startsWith(TEMP_PREFIX) ? 0 : nestedTemp(path, 0);
    at >= 0;
    at = nestedTemp(path, at + 1)
  ) {
    const end = path.indexOf('/', at);
    if (TEMP_NAME.test(end < 0 ? path.slice(at) : path.slice(at, end))) return true;
  }
  return false;
}

/** Where the next segment starting with the temporary prefix begins, at or after `from`; -1 for none. */
function nestedTemp(path: string, from: number): number {
  const i = path.indexOf(NESTED_TEMP, from);
  return i < 0 ? -1 : i + 1;
}
