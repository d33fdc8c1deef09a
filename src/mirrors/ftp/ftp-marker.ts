/**
 * @module mirrors/ftp/ftp-marker
 * The marker `.satchel-mirror` at an FTP mirror's root, in the same JSON as on path mirrors
 * (`mirrors/path/marker.ts`): uploaded to a temporary name, then renamed into place.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { SatchelError } from '../../core/errors.js';
import { MARKER_NAME, TEMP_PREFIX } from '../../core/reserved.js';
import { parseMarker, type Marker } from '../path/marker.js';
import { replyCode, type FtpSession } from './connection.js';

/** What is at the session's root on the server: a folder, something else (a file), or nothing. */
export async function ftpFolderState(s: FtpSession): Promise<'folder' | 'not-a-folder' | 'missing'> {
  return s.use(async (c) => {
    try {
      await c.cd(s.root);
      return 'folder';
    } catch (err) {
      if (replyCode(err) === undefined) throw err;
    }
    try {
      // SIZE answers for a file only.
      await c.size(s.root);
      return 'not-a-folder';
    } catch (err) {
      if (replyCode(err) === undefined) throw err;
      return 'missing';
    }
  });
}

/** Reads the marker at the mirror's root; `undefined` when there is none. */
export async function readFtpMarker(s: FtpSession): Promise<Marker | undefined> {
  const file = posix.join(s.root, MARKER_NAME);
  const chunks: Buffer[] = [];
  const found = await s.use(async (c) => {
    chunks.length = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk);
        done();
      },
    });
    try {
      await c.downloadTo(sink, file);
      return true;
    } catch (err) {
      if (replyCode(err) === undefined) throw err;
      return false;
    }
  });
  if (!found) return undefined;
  return parseMarker(Buffer.concat(chunks).toString('utf8'), `${s.where}${file}`);
}

/** Writes `marker` at the mirror's root: upload to a temporary name, rename over. */
export async function writeFtpMarker(s: FtpSession, marker: Marker): Promise<void> {
  const file = posix.join(s.root, MARKER_NAME);
  const temp = posix.join(s.root, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
  const body = Buffer.from(JSON.stringify(marker, null, 2) + '\n', 'utf8');
  try {
    await s.use(async (c) => {
      await c.uploadFrom(Readable.from([body]), temp);
      await c.rename(temp, file);
    });
  } catch (err) {
    await s.use((c) => c.remove(temp, true)).catch(() => {});
    if (err instanceof SatchelError) throw err;
    throw new SatchelError(
      'io',
      `cannot write the mirror marker ${s.where}${file}: ${(err as Error).message}`,
      {
        hint: 'check that the folder on the server is writable by the FTP login',
        cause: err,
      },
    );
  }
}
