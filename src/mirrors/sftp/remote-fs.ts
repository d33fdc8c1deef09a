/**
 * @module mirrors/sftp/remote-fs
 * Promise-shaped SFTP calls over one {@link SftpSession}, with the pipelining that keeps a
 * far server busy: a file's writes, its attributes, fsync, fstat and close are sent together
 * and answered in order, and reads keep a window of requests in flight. SFTP status errors
 * become Node-like `code`s (`ENOENT`, `EACCES`, `EFAILURE`, `ENOTSUP`) so callers can tell them
 * apart the way the path replica tells errno codes apart. Functions that take a `lane` send
 * their requests on that channel of the session (see {@link SftpSession.lanes}); a handle is
 * only valid on the channel that opened it.
 */
import type { Readable } from 'node:stream';
import type { SFTPWrapper, Stats, SftpError, StatVfs } from 'ssh2';
import { type SftpSession, sftpStatus, STATUS } from './connection.js';

/** How many read requests of one file are in flight. */
const READ_WINDOW = 8;

/** An SFTP failure with a Node-like `code`. */
export class RemoteError extends Error {
  readonly code: string;
  constructor(message: string, code: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.code = code;
  }
}

/** The Node-like code of an SFTP status error (what the path replica's errno would be). */
export function remoteCode(err: unknown): string | undefined {
  if (err instanceof RemoteError) return err.code;
  switch (sftpStatus(err)) {
    case STATUS.NO_SUCH_FILE:
      return 'ENOENT';
    case STATUS.PERMISSION_DENIED:
      return 'EACCES';
    case STATUS.FAILURE:
      return 'EFAILURE';
    case STATUS.OP_UNSUPPORTED:
      return 'ENOTSUP';
    case STATUS.EOF:
      return 'EOF';
    default:
      return undefined;
  }
}

/** The attributes of a path, `undefined` when it does not exist. */
export async function lstatOrUndefined(
  s: SftpSession,
  path: string,
  lane: SFTPWrapper = s.sftp,
): Promise<Stats | undefined> {
  try {
    return await s.call<Stats>((done) => lane.lstat(path, done));
  } catch (err) {
    if (remoteCode(err) === 'ENOENT') return undefined;
    throw err;
  }
}

/** Free bytes on the file system holding `path`, when the server can say (statvfs@openssh.com). */
export async function freeBytes(s: SftpSession, path: string): Promise<number | undefined> {
  if (!s.statvfs || s.lost) return undefined;
  try {
    const info = await s.call<StatVfs>((done) => s.sftp.ext_openssh_statvfs(path, done));
    return Number(info.f_bavail) * Number(info.f_frsize);
  } catch {
    return undefined;
  }
}

/** The file's content in order, reading ahead with a window of requests in flight. */
export async function* readChunks(
  s: SftpSession,
  path: string,
  lane: SFTPWrapper = s.sftp,
): AsyncGenerator<Buffer> {
  const handle = await s.call<Buffer>((done) => lane.open(path, 'r', {}, done));
  const chunk = Math.max(32 * 1024, Math.min(lane._maxReadLen, 255 * 1024));
  let next = 0;
  const pending: Promise<Buffer>[] = [];
  const issue = (): void => {
    const position = next;
    next += chunk;
    const p = s.call<Buffer>((done) => {
      const buf = Buffer.allocUnsafe(chunk);
      lane.read(handle, buf, 0, chunk, position, (err: SftpError | undefined, n: number) => {
        if (err !== undefined && err !== null && sftpStatus(err) === STATUS.EOF)
          done(undefined, Buffer.alloc(0));
        else done(err, err ? undefined : buf.subarray(0, n));
      });
    });
    p.catch(() => {});
    pending.push(p);
  };
  try {
    for (let i = 0; i < READ_WINDOW; i++) issue();
    while (pending.length > 0) {
      const buf = await pending.shift()!;
      if (buf.length > 0) yield buf;
      // A short read is the end of the file (OpenSSH reads regular files in full otherwise).
      if (buf.length < chunk) break;
      issue();
    }
  } finally {
    await Promise.allSettled(pending);
    await s.call<void>((done) => lane.close(handle, done)).catch(() => {});
  }
}

/** A readable stream of the file's content. */
export async function openReadStream(s: SftpSession, path: string): Promise<Readable> {
  const { Readable } = await import('node:stream');
  return Readable.from(readChunks(s, path), { objectMode: false });
}

/** What {@link writeNewFile} stored. */
export interface Written {
  readonly size: number;
  readonly mtimeMs: number;
  readonly mode: number;
}

/**
 * Creates `path` (which must not exist) with `content`, then sets its mode and mtime (whole
 * seconds), fsyncs it where the server can (unless `sync` is false: the caller makes it durable
 * another way) and reads back what it stored. Only the open waits
 * for its answer (the handle); then the writes (up to 16 in flight for a large file) and the
 * tail — fsetstat, fsync, fstat, close — are sent without waiting, and the server answers them
 * in order: one round trip for the whole file once the handle is known.
 */
export async function writeNewFile(
  s: SftpSession,
  path: string,
  content: Buffer | AsyncIterable<Buffer> | Iterable<Buffer>,
  attrs: { readonly mode: number; readonly mtimeMs: number },
  lane: SFTPWrapper = s.sftp,
  sync = true,
): Promise<Written> {
  const handle = await s.call<Buffer>((done) => lane.open(path, 'wx', { mode: attrs.mode }, done));
  const inFlight = new Set<Promise<void>>();
  let failure: unknown;
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await s.call<void>((done) => lane.close(handle, done));
  };
  try {
    let position = 0;
    const max = lane._maxWriteLen;
    for await (const data of Buffer.isBuffer(content) ? [content] : content) {
      for (let off = 0; off < data.length; off += max) {
        const len = Math.min(max, data.length - off);
        const at = position;
        position += len;
        const p = s
          .call<void>((done) => lane.write(handle, data, off, len, at, done))
          .catch((err: unknown) => {
            failure ??= err;
          });
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
        if (inFlight.size >= 16) await Promise.race(inFlight);
        if (failure !== undefined) throw failure;
      }
    }
    const seconds = Math.floor(attrs.mtimeMs / 1000);
    // These are answered in order after the writes: one round trip for the whole tail.
    const setAttrs = s.call<void>((done) =>
      lane.fsetstat(handle, { mode: attrs.mode, atime: seconds, mtime: seconds }, done),
    );
    const synced =
      s.fsync && sync ? s.call<void>((done) => lane.ext_openssh_fsync(handle, done)) : Promise.resolve();
    const stat = s.call<Stats>((done) => lane.fstat(handle, done));
    const closing = close();
    const results = await Promise.allSettled([...inFlight, setAttrs, synced, stat, closing]);
    if (failure !== undefined) throw failure;
    const bad = results.find((r) => r.status === 'rejected');
    if (bad !== undefined) throw (bad as PromiseRejectedResult).reason;
    const st = await stat;
    return { size: st.size, mtimeMs: st.mtime * 1000, mode: st.mode };
  } catch (err) {
    await Promise.allSettled(inFlight);
    await close().catch(() => {});
    throw err;
  }
}

/** Flushes an existing file to the server's disk (fsync@openssh.com on a handle opened to read). */
export async function fsyncFile(s: SftpSession, path: string, lane: SFTPWrapper = s.sftp): Promise<void> {
  if (!s.fsync) return;
  const handle = await s.call<Buffer>((done) => lane.open(path, 'r', {}, done));
  const synced = s.call<void>((done) => lane.ext_openssh_fsync(handle, done));
  const closed = s.call<void>((done) => lane.close(handle, done));
  const [a, b] = await Promise.allSettled([synced, closed]);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
}
