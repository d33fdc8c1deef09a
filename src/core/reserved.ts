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

/** A temporary name below the root, as it appears inside a path. */
const NESTED_TEMP = `/${TEMP_PREFIX}`;

/**
 * Whether `path` (relative, `/`-separated) is one of Satchel's own: the root-level state folder
 * or anything below it, the root-level marker, or any path with a segment starting with
 * {@link TEMP_PREFIX} (a temporary file, or anything below one).
 */
export function isSatchelInternal(path: string): boolean {
  // Called for every path of every scan: plain string tests, no splitting.
  if (
    path.startsWith(STATE_DIR_NAME) &&
    (path.length === STATE_DIR_NAME.length || path[STATE_DIR_NAME.length] === '/')
  )
    return true;
  if (path === MARKER_NAME) return true;
  return path.startsWith(TEMP_PREFIX) || path.includes(NESTED_TEMP);
}
