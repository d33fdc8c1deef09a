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
 * Whether `path` (relative, `/`-separated) is one of Satchel's own: the root-level state folder
 * or anything below it, the root-level marker, or any path with a segment starting with
 * {@link TEMP_PREFIX} (a temporary file, or anything below one).
 */
export function isSatchelInternal(path: string): boolean {
  const segments = path.split('/');
  const first = segments[0];
  if (first === STATE_DIR_NAME) return true;
  if (first === MARKER_NAME && segments.length === 1) return true;
  return segments.some((s) => s.startsWith(TEMP_PREFIX));
}
