/**
 * @module mirrors/path/marker
 * The marker file `.satchel-mirror` at a path mirror's root: it identifies the mirror by a UUID
 * whatever path it is mounted at, and tells "stick not plugged in" (no marker: absent) apart
 * from "everything deleted". JSON, written atomically (temporary file, fsync, rename).
 */
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { join } from 'node:path';
import { literal, matches, object, optional, string, validate } from '../../core/schema.js';
import { SatchelError } from '../../core/errors.js';
import { MARKER_NAME, TEMP_PREFIX } from '../../core/reserved.js';
import { errnoOf } from './fs-errors.js';

/** What the marker file holds. */
export interface Marker {
  /** Format version. */
  readonly version: 1;
  /** The mirror's identity, a UUID. */
  readonly id: string;
  /** The name of the case this mirror belongs to. */
  readonly case: string;
  /** When the mirror was added, ISO 8601. */
  readonly createdAt: string;
  /**
   * Encrypted mirrors only: what tells a right passphrase from a wrong one (an HMAC under the
   * derived data key, see `passphraseCheck` in mirrors/encrypted/crypt) — never the passphrase
   * or a key. Absent on plain mirrors and on markers written before it existed.
   */
  readonly passphraseCheck?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
/** An ISO 8601 date-time with seconds and a zone (`Z` or `+hh:mm`), as `toISOString` writes. */
const ISO_DATETIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** Unknown fields (written by a newer Satchel) are left out, not refused. */
const markerSchema = object<Marker>(
  {
    version: literal(1, 'expected 1'),
    id: string('expected a UUID', matches(UUID, 'expected a UUID')),
    case: string('expected a string', (v) => (v.length > 0 ? undefined : 'expected a non-empty name')),
    createdAt: string('expected an ISO 8601 date and time', (v) =>
      ISO_DATETIME.test(v) && !Number.isNaN(Date.parse(v)) ? undefined : 'expected an ISO 8601 date and time',
    ),
    passphraseCheck: optional(
      string('expected 32 hexadecimal digits', matches(/^[0-9a-f]{32}$/, 'expected 32 hexadecimal digits')),
    ),
  },
  'expected a JSON object',
  false,
);

/** The marker file's absolute name for a mirror rooted at `root`. */
export function markerFile(root: string): string {
  return join(root, MARKER_NAME);
}

/**
 * Reads the marker at `root`. Returns `undefined` when the root or the marker file is missing;
 * throws `config-invalid` (naming the file) when the marker is not a valid one.
 */
export async function readMarker(root: string): Promise<Marker | undefined> {
  const file = markerFile(root);
  let text: string;
  try {
    text = await fsp.readFile(file, 'utf8');
  } catch (err) {
    const errno = errnoOf(err);
    if (errno === 'ENOENT' || errno === 'ENOTDIR') return undefined;
    if (errno === 'ENOTCONN' || errno === 'ENODEV' || errno === 'EIO')
      throw new SatchelError('mirror-absent', `the mirror at ${root} is not reachable (${errno})`, {
        hint: 'plug the drive back in or remount the share',
        cause: err,
      });
    throw new SatchelError('io', `cannot read the mirror marker ${file}: ${(err as Error).message}`, {
      hint: 'check that the mirror is mounted and readable',
      cause: err,
    });
  }
  return parseMarker(text, file);
}

/** Parses the text of a marker file (`file` names it in errors); throws `config-invalid` when malformed. */
export function parseMarker(text: string, file: string): Marker {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw invalid(file, 'it is not valid JSON', err);
  }
  const parsed = validate(markerSchema, json);
  if (!parsed.ok) {
    const issue = parsed.issues[0];
    const field = issue === undefined || issue.path.length === 0 ? '(root)' : issue.path.join('.');
    const message = issue?.kind === 'missing' ? `missing; ${issue.message}` : (issue?.message ?? 'invalid');
    throw invalid(file, `field ${field}: ${message}`, undefined);
  }
  return parsed.value;
}

function invalid(file: string, detail: string, cause: unknown): SatchelError {
  return new SatchelError('config-invalid', `the mirror marker ${file} is malformed: ${detail}`, {
    hint: 'expected JSON {"version":1,"id":"<uuid>","case":"<name>","createdAt":"<ISO time>"}; nothing in that folder was changed: repair the file (the id is in the case\'s .satchel/config.toml), or delete it and add the mirror again (`satchel mirror remove` first if it is configured)',
    data: { file },
    cause,
  });
}

/** Writes `marker` at `root` atomically: temporary file, fsync, rename over, fsync of the folder. */
export async function writeMarker(root: string, marker: Marker): Promise<void> {
  if (!validate(markerSchema, marker).ok) throw new Error(`bug: invalid marker ${JSON.stringify(marker)}`);
  const file = markerFile(root);
  const temp = join(root, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
  const handle = await fsp.open(temp, 'wx', 0o644);
  try {
    try {
      await handle.writeFile(JSON.stringify(marker, null, 2) + '\n', 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fsp.rename(temp, file);
  } catch (err) {
    await fsp.rm(temp, { force: true });
    throw err;
  }
  await syncDirectory(root);
}

/** fsyncs a folder so a rename in it is durable; file systems that cannot (some FUSE) are tolerated. */
export async function syncDirectory(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch (err) {
    const errno = errnoOf(err);
    if (
      errno !== 'EINVAL' &&
      errno !== 'ENOSYS' &&
      errno !== 'ENOTSUP' &&
      errno !== 'EBADF' &&
      errno !== 'EPERM'
    )
      throw err;
  } finally {
    await handle?.close();
  }
}
