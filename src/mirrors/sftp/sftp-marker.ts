/**
 * @module mirrors/sftp/sftp-marker
 * The marker `.satchel-mirror` at an SFTP mirror's root, read and written over SFTP in the same
 * JSON as on path mirrors (`mirrors/path/marker.ts`): written to a temporary name, fsynced, then
 * renamed into place.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { SatchelError } from '../../core/errors.js';
import { MARKER_NAME, TEMP_PREFIX } from '../../core/reserved.js';
import { parseMarker, type Marker } from '../path/marker.js';
import type { SftpSession } from './connection.js';
import { readChunks, remoteCode, writeNewFile } from './remote-fs.js';

/** Reads the marker at `root` on the server; `undefined` when there is none. */
export async function readSftpMarker(s: SftpSession, root: string): Promise<Marker | undefined> {
  const file = posix.join(root, MARKER_NAME);
  const chunks: Buffer[] = [];
  try {
    for await (const c of readChunks(s, file)) chunks.push(c);
  } catch (err) {
    if (s.lost) throw s.lostError(err);
    if (remoteCode(err) === 'ENOENT') return undefined;
    throw new SatchelError(
      'io',
      `cannot read the mirror marker ${s.where}${file}: ${(err as Error).message}`,
      {
        hint: 'check the permissions of the mirror folder on the server',
        cause: err,
      },
    );
  }
  return parseMarker(Buffer.concat(chunks).toString('utf8'), `${s.where}${file}`);
}

/** What is at `root` on the server: a folder, something else (a file, a link), or nothing. */
export async function remoteFolderState(
  s: SftpSession,
  root: string,
): Promise<'folder' | 'not-a-folder' | 'missing'> {
  try {
    const st = await s.call<{ isDirectory(): boolean }>((done) => s.sftp.lstat(root, done));
    return st.isDirectory() ? 'folder' : 'not-a-folder';
  } catch (err) {
    if (s.lost) throw s.lostError(err);
    return 'missing';
  }
}

/** Writes `marker` at `root` on the server: temporary file, fsync, rename over. */
export async function writeSftpMarker(s: SftpSession, root: string, marker: Marker): Promise<void> {
  const file = posix.join(root, MARKER_NAME);
  const temp = posix.join(root, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
  try {
    await writeNewFile(s, temp, [Buffer.from(JSON.stringify(marker, null, 2) + '\n', 'utf8')], {
      mode: 0o644,
      mtimeMs: Date.now(),
    });
    if (s.posixRename) await s.call<void>((done) => s.sftp.ext_openssh_rename(temp, file, done));
    else {
      await s.call<void>((done) => s.sftp.unlink(file, done)).catch(() => {});
      await s.call<void>((done) => s.sftp.rename(temp, file, done));
    }
  } catch (err) {
    await s.call<void>((done) => s.sftp.unlink(temp, done)).catch(() => {});
    if (s.lost) throw s.lostError(err);
    throw new SatchelError(
      'io',
      `cannot write the mirror marker ${s.where}${file}: ${(err as Error).message}`,
      {
        hint: 'check that the folder on the server is writable by the SSH user',
        cause: err,
      },
    );
  }
}
