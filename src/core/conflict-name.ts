/**
 * @module core/conflict-name
 * Names of conflict copies: the losing version of a contested file is kept beside it as
 * `<stem>.conflict-<YYYYMMDD-HHMMSS>-<label>.<ext>`, where the stamp is the UTC modification
 * time of that version and the label names the replica it came from (the mirror, or this
 * computer's host name for the case). Pure: the stamp comes from the entry, never a clock.
 */
import { baseName, parentPath } from './entry.js';

const MARK = '.conflict-';

/** Splits a name into stem and last extension (with its dot); dot-files and `name.` have none. */
function splitExtension(name: string): [stem: string, ext: string] {
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || dot === name.length - 1) return [name, ''];
  return [name.slice(0, dot), name.slice(dot)];
}

/** `YYYYMMDD-HHMMSS` in UTC for `mtimeMs` (out-of-range times count as the epoch). */
function stamp(mtimeMs: number): string {
  const date = new Date(Number.isFinite(mtimeMs) ? mtimeMs : 0);
  const valid = Number.isNaN(date.getTime()) ? new Date(0) : date;
  const two = (n: number): string => String(n).padStart(2, '0');
  return (
    String(valid.getUTCFullYear()).padStart(4, '0') +
    two(valid.getUTCMonth() + 1) +
    two(valid.getUTCDate()) +
    '-' +
    two(valid.getUTCHours()) +
    two(valid.getUTCMinutes()) +
    two(valid.getUTCSeconds())
  );
}

/** The label reduced to `[A-Za-z0-9._-]` (anything else becomes `-`); never empty. */
export function sanitizeLabel(label: string): string {
  const clean = label.replace(/[^A-Za-z0-9._-]/g, '-');
  return clean === '' ? 'unknown' : clean;
}

/**
 * The path of the conflict copy of `path`: `<stem>.conflict-<YYYYMMDD-HHMMSS>-<label>.<ext>`
 * (UTC of `mtimeMs`), in the same folder. Only the last extension is kept after the label
 * (`a.tar.gz` → `a.tar.conflict-…-label.gz`); dot-files and names without extension get the
 * suffix at the end (`.bashrc` → `.bashrc.conflict-…-label`). The label is sanitized to
 * `[A-Za-z0-9._-]`. While `taken(candidate)` is true, `-2`, `-3`… is added before the extension.
 */
export function conflictCopyPath(
  path: string,
  mtimeMs: number,
  label: string,
  taken: (p: string) => boolean,
): string {
  const dir = parentPath(path);
  const [stem, ext] = splitExtension(baseName(path));
  const tail = `${MARK}${stamp(mtimeMs)}-${sanitizeLabel(label)}`;
  const at = (counter: string): string => {
    const name = fitName(stem, `${tail}${counter}`, ext);
    return dir === '' ? name : `${dir}/${name}`;
  };
  let candidate = at('');
  for (let n = 2; taken(candidate); n++) candidate = at(`-${n}`);
  return candidate;
}

/**
 * The most bytes (UTF-8) in one name: what ext4 and most file systems hold; FAT and exFAT hold
 * 255 UTF-16 units, which are never fewer characters.
 */
export const MAX_NAME_BYTES = 255;

/** The UTF-8 length of `s`. */
function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/**
 * `stem + tail + ext`, the stem shortened (whole characters) so the name has at most
 * {@link MAX_NAME_BYTES}: a conflict copy of a long name must be storable, or the conflict could
 * never be kept nor resolved. An extension too long to leave room for the tail is kept as part
 * of the stem instead.
 */
function fitName(stem: string, tail: string, ext: string): string {
  let [s, e] = [stem, ext];
  if (utf8Length(tail + e) >= MAX_NAME_BYTES) [s, e] = [stem + ext, ''];
  let room = MAX_NAME_BYTES - utf8Length(tail + e);
  if (utf8Length(s) <= room) return s + tail + e;
  let kept = '';
  for (const ch of s) {
    room -= utf8Length(ch);
    if (room < 0) break;
    kept += ch;
  }
  return kept + tail + e;
}

const PATTERN = /^(.+)\.conflict-(\d{8}-\d{6})-(.+)$/;

/**
 * Parses a conflict copy path back into the original path, the stamp and the label, or
 * `undefined` when `path` is not a conflict copy. Best effort where names are ambiguous: a
 * trailing `.xyz` is taken as the original's extension and a trailing `-<digits>` as the
 * uniqueness counter, not as part of the label.
 */
export function parseConflictCopyPath(
  path: string,
): { original: string; stamp: string; label: string } | undefined {
  const dir = parentPath(path);
  const match = PATTERN.exec(baseName(path));
  if (!match) return undefined;
  const [, stem, when, rest] = match as unknown as [string, string, string, string];
  const [labelPart, ext] = splitExtension(rest);
  const label = labelPart.replace(/-\d+$/, '');
  if (label === '') return undefined;
  const name = stem + ext;
  return { original: dir === '' ? name : `${dir}/${name}`, stamp: when, label };
}
