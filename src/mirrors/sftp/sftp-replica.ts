/**
 * @module mirrors/sftp/sftp-replica
 * A two-way mirror in a folder on an SSH server, over SFTP, with the path replica's semantics:
 *
 * - **scan**: directory listings in parallel, spread over the connection's SFTP channels for a
 *   full scan; SFTP's `readdir` returns every entry's attributes, so nothing is stat'ed one by one. Hashes come from the cache while size and mtime agree,
 *   else from reading the content over SFTP (and re-checking it did not move meanwhile).
 *   Crash debris (`.satchel-tmp-*`) is deleted; the marker vanishing mid-scan means absent.
 * - **prepare**: each write is uploaded to `.satchel-tmp-<hex>` in its target folder (or the
 *   nearest existing one), with mode and mtime set, fsynced where the server offers
 *   `fsync@openssh.com`. Many files are in flight at once, spread over several SFTP channels
 *   of the one connection (each its own server process, so the server's fsyncs overlap), and
 *   each file's requests after its open are sent together (see `remote-fs.ts`). Every staged
 *   file is durable before `prepare` returns, so before any rename and before the ancestor is
 *   recorded: by its own fsync, or, for a bulk upload ({@link SFTP_BULK_SYNC_WRITES} writes or
 *   more) where the login may run commands, by one `sync -f` of the server's file systems at
 *   the end (`SftpSession.syncFileSystems`); where it may not, the files are fsynced one by one.
 * - **commit**: each operation re-checks its expected state (one `lstat`), then acts; a write is
 *   renamed over its final name with `posix-rename@openssh.com` (atomic replace). Operations on
 *   unrelated paths run at the same time (`commit-order.ts`). Without it, a
 *   replaced file is first renamed to a backup temporary name, the new one renamed in, and the
 *   backup deleted (a crash in between leaves the old content as debris, never a partial file).
 * - mtimes are whole seconds (SFTP v3): {@link SFTP_CAPABILITIES}.
 * - A lost connection throws `mirror-absent`; per-path trouble (permission denied on a folder,
 *   a full disk) comes back as problems.
 */
import { changedSinceScan, discardUnused } from '../../replica/commit-groups.js';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import type { SFTPWrapper, Stats } from 'ssh2';
import type { Capabilities } from '../../core/capabilities.js';
import { ancestorsOf, comparePaths, type Entry, type FileEntry } from '../../core/entry.js';
import { SatchelError } from '../../core/errors.js';
import { decodeSegment, encodePath } from '../../core/name-encoding.js';
import type { Operation, WriteOperation } from '../../core/plan.js';
import { notUtf8Message, type Problem, type ProblemCode, specialFileMessage } from '../../core/problem.js';
import { isSatchelInternal, isTempName, MARKER_NAME, TEMP_PREFIX } from '../../core/reserved.js';
import { normalizeScope } from '../../core/scope.js';
import type {
  CachedHash,
  ContentSource,
  OperationResult,
  PreparedApply,
  Replica,
  ScanOptions,
  ScanResult,
} from '../../replica/replica.js';
import { createLimiter, type Limiter } from '../path/limit.js';
import { withExecutable } from '../path/path-replica.js';
import { applyInPathOrder } from './commit-order.js';
import type { SftpSession } from './connection.js';
import {
  freeBytes,
  fsyncFile,
  lstatOrUndefined,
  openReadStream,
  readChunks,
  remoteCode,
  writeNewFile,
} from './remote-fs.js';

/** What an OpenSSH server on a POSIX file system stores; mtimes are whole seconds (SFTP v3). */
export const SFTP_CAPABILITIES: Capabilities = Object.freeze({
  readable: true,
  writable: true,
  symlinks: true,
  executableBit: true,
  caseSensitive: true,
  mtimeGranularityMs: 1000,
  forbiddenChars: '',
  forbidsTrailingDotOrSpace: false,
  maxFileSize: Number.MAX_SAFE_INTEGER,
  maxNameLength: 255,
});

/** How many SFTP requests a scan keeps in flight. */
export const SFTP_SCAN_PARALLELISM = 32;
/** How many files are uploaded at the same time. */
export const SFTP_WRITE_PARALLELISM = 64;
/** How many operations a commit keeps in flight. */
export const SFTP_COMMIT_PARALLELISM = 64;
/** How many SFTP channels a full scan or a prepare of many writes spreads over. */
export const SFTP_CHANNELS = 4;
/**
 * From this many writes on, a prepare makes its files durable with one `sync -f` on the server
 * where the login can run it (measured on loopback: one `sync -f` took 0.1-0.2 s, an fsync per
 * file ~0.25 ms each, ~0.16 ms with four channels flushing at once).
 */
export const SFTP_BULK_SYNC_WRITES = 500;
/** Files up to this size are read from the case in one call rather than streamed. */
const SMALL_FILE = 1024 * 1024;
/** How many times a file that keeps changing while it is hashed is read before giving up. */
const HASH_ATTEMPTS = 3;

/** How to open an {@link SftpReplica}. */
export interface SftpReplicaOptions {
  /** The connection (given back with `release()` on close). */
  readonly session: SftpSession;
  /** The mirror's folder on the server (absolute, or relative to the login folder). */
  readonly root: string;
  /** A short label for messages: the mirror's name. */
  readonly label: string;
  readonly capabilities?: Capabilities;
  /** Test knob: behave as if the server lacked `posix-rename@openssh.com`. */
  readonly noPosixRename?: boolean;
  /** From how many writes a prepare tries one `sync -f` instead of an fsync per file (tests lower it). */
  readonly bulkSyncWrites?: number;
}

/** The content of one write, uploaded and waiting for commit. */
interface Staged {
  readonly temp: string;
  /** What the server stored (size and whole-second mtime). */
  readonly stored: FileEntry;
}

/** A new temporary name in `dir`. */
function tempName(dir: string): string {
  return posix.join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
}

/** A replica in a folder on an SFTP server; see the module comment. */
export class SftpReplica implements Replica {
  readonly label: string;
  readonly capabilities: Capabilities;
  readonly content: ContentSource;
  readonly #s: SftpSession;
  readonly #root: string;
  readonly #posixRename: boolean;
  readonly #bulkSyncWrites: number;
  /** Temporary files staged by this object and not yet committed or discarded. */
  readonly #liveTemps = new Set<string>();
  #closed = false;

  constructor(options: SftpReplicaOptions) {
    this.label = options.label;
    this.capabilities = options.capabilities ?? SFTP_CAPABILITIES;
    this.#s = options.session;
    this.#root = options.root === '' ? '.' : options.root;
    this.#posixRename = options.session.posixRename && options.noPosixRename !== true;
    this.#bulkSyncWrites = options.bulkSyncWrites ?? SFTP_BULK_SYNC_WRITES;
    this.content = {
      open: async (path: string) => {
        try {
          return await openReadStream(this.#s, this.#abs(path));
        } catch (err) {
          throw this.#gone(err) ?? err;
        }
      },
      localFile: () => undefined,
      unchanged: async (path: string, entry: FileEntry) => {
        const st = await lstatOrUndefined(this.#s, this.#abs(path)).catch((err: unknown) => {
          throw this.#gone(err) ?? err;
        });
        return st !== undefined && st.isFile() && st.size === entry.size && st.mtime * 1000 === entry.mtimeMs;
      },
    };
  }

  /** The remote name of `path`. */
  #abs(path: string): string {
    return path === '' ? this.#root : posix.join(this.#root, encodePath(path, this.capabilities));
  }

  /** `mirror-absent` when the connection is gone, else undefined. */
  #gone(err: unknown): SatchelError | undefined {
    if (err instanceof SatchelError) return err;
    return this.#s.lost ? this.#s.lostError(err) : undefined;
  }

  /** The `mirror-absent` error for a root that is missing. */
  #absent(why: string, cause?: unknown): SatchelError {
    return new SatchelError(
      'mirror-absent',
      `${this.label} at ${this.#s.where}:${this.#root} is not available (${why})`,
      {
        hint: 'check the folder on the server; nothing was changed',
        data: { root: this.#root },
        cause,
      },
    );
  }

  /** Throws `mirror-absent` unless the root is an existing folder. */
  async #requireRoot(): Promise<void> {
    let st: Stats | undefined;
    try {
      st = await lstatOrUndefined(this.#s, this.#root);
    } catch (err) {
      throw this.#gone(err) ?? this.#absent(remoteCode(err) ?? (err as Error).message, err);
    }
    if (st === undefined) throw this.#absent('the folder does not exist');
    if (!st.isDirectory()) throw this.#absent('not a folder');
  }

  /** A problem for a failed remote call, or throws when the connection is gone. */
  async #problem(err: unknown, path: string, action: string, bytes?: number): Promise<Problem> {
    const gone = this.#gone(err);
    if (gone !== undefined) throw gone;
    const code = remoteCode(err);
    const reason = err instanceof Error ? err.message : String(err);
    let problem: ProblemCode = 'io-error';
    let message = `cannot ${action} ${path} on ${this.label}: ${reason}`;
    if (code === 'EACCES') {
      problem = 'permission-denied';
      message = `cannot ${action} ${path} on ${this.label}: permission denied by the server`;
    } else if (code === 'EFAILURE' && bytes !== undefined) {
      // OpenSSH reports ENOSPC as a bare "Failure": ask the file system how much room is left.
      const free = await freeBytes(this.#s, this.#root);
      if (free !== undefined && free < Math.max(bytes, 1) + 64 * 1024) {
        problem = 'no-space';
        message = `cannot ${action} ${path} on ${this.label}: no space left on the server's disk (${bytes} bytes needed, ${free} free)`;
      }
    }
    return { path, code: problem, message };
  }

  /** Lists the tree; see the module comment. */
  async scan(options: ScanOptions): Promise<ScanResult> {
    const { cache, ignore, recentAfterMs, signal } = options;
    const s = this.#s;
    const caps = this.capabilities;
    await this.#requireRoot();
    const hadMarker =
      (await lstatOrUndefined(s, posix.join(this.#root, MARKER_NAME)).catch(() => undefined)) !== undefined;
    const limit = createLimiter(SFTP_SCAN_PARALLELISM);
    const entries = new Map<string, Entry>();
    const hashes = new Map<string, CachedHash>();
    const problems: Problem[] = [];

    const failed = (path: string, err: unknown, action: string): void => {
      const gone = this.#gone(err);
      if (gone !== undefined) throw gone;
      if (remoteCode(err) === 'ENOENT') return;
      const reason =
        remoteCode(err) === 'EACCES' ? 'permission denied' : err instanceof Error ? err.message : String(err);
      problems.push({
        path,
        code: 'unreadable',
        message: `cannot ${action} ${path} on ${this.label}: ${reason}`,
      });
    };

    // A full scan spreads its listings and reads over the channels; a scoped one stays on one.
    const lanes = options.scope === undefined ? await this.#lanes() : [s.sftp];
    let turn = 0;
    const nextLane = (): SFTPWrapper => lanes[turn++ % lanes.length]!;

    const hashRemote = async (abs: string): Promise<string> => {
      const h = createHash('sha256');
      for await (const c of readChunks(s, abs, nextLane())) h.update(c);
      return h.digest('hex');
    };

    const scanFile = async (path: string, abs: string, first: Stats): Promise<void> => {
      let st = first;
      for (let attempt = 0; attempt < HASH_ATTEMPTS; attempt++) {
        if (attempt > 0) {
          const again = await limit(() => lstatOrUndefined(s, abs));
          if (again === undefined) return;
          st = again;
        }
        if (!st.isFile()) {
          problems.push({
            path,
            code: 'changed-during-sync',
            message: `${path} changed kind while it was scanned`,
          });
          return;
        }
        const mtimeMs = st.mtime * 1000;
        const cached = cache.get(path);
        const trusted = recentAfterMs === undefined || mtimeMs < recentAfterMs;
        let hash: string;
        if (trusted && cached !== undefined && cached.size === st.size && cached.mtimeMs === mtimeMs) {
          hash = cached.hash;
        } else {
          hash = await limit(() => hashRemote(abs));
          const after = await limit(() => lstatOrUndefined(s, abs));
          // The hash is only good if the file did not move while it was read.
          if (after === undefined || after.size !== st.size || after.mtime !== st.mtime) continue;
        }
        const executable = caps.executableBit && (st.mode & 0o100) !== 0;
        entries.set(path, { kind: 'file', size: st.size, mtimeMs, executable, hash });
        hashes.set(path, { size: st.size, mtimeMs, hash });
        return;
      }
      problems.push({
        path,
        code: 'changed-during-sync',
        message: `${path} kept changing while it was read (${HASH_ATTEMPTS} attempts); it is picked up by the next sync`,
      });
    };

    /** One listed or stat'ed path. */
    const visit = async (path: string, abs: string, st: Stats, descend: boolean): Promise<void> => {
      try {
        if (st.isDirectory()) {
          if (ignore(path, true)) return;
          if (descend) await walk(path, abs);
          else entries.set(path, { kind: 'directory' });
        } else if (st.isSymbolicLink()) {
          if (!ignore(path, false))
            entries.set(path, {
              kind: 'symlink',
              target: await limit(() => s.call<string>((d) => s.sftp.readlink(abs, d))),
            });
        } else if (st.isFile()) {
          if (!ignore(path, false)) await scanFile(path, abs, st);
        } else if (!ignore(path, false)) {
          // Anything else (fifo, socket, device) is not replicated: said, and left alone.
          problems.push({ path, code: 'special-file', message: specialFileMessage(path, st) });
        }
      } catch (err) {
        failed(path, err, st.isDirectory() ? 'read folder' : 'read');
      }
    };

    const walk = async (path: string, abs: string): Promise<void> => {
      signal?.throwIfAborted();
      const list = await limit(() =>
        s.call<{ filename: string; attrs: Stats }[]>((d) => nextLane().readdir(abs, d)),
      );
      // The folder is listed only once it could be read: an unreadable one is a problem, not an entry.
      if (path !== '') entries.set(path, { kind: 'directory' });
      await Promise.all(
        list.map(async ({ filename, attrs }) => {
          const childAbs = posix.join(abs, filename);
          if (isTempName(filename)) {
            // Crash debris: a staged file of a process that did not finish.
            if (!this.#liveTemps.has(childAbs))
              await limit(() => this.#removeDebris(childAbs, attrs)).catch(() => {});
            return;
          }
          const name = decodeSegment(filename, caps);
          const child = path === '' ? name : `${path}/${name}`;
          if (isSatchelInternal(child)) return;
          if (
            filename.includes('\ufffd') &&
            (await limit(() => lstatOrUndefined(s, childAbs)).catch(() => undefined)) === undefined
          ) {
            // Bytes that are not UTF-8 came as U+FFFD: the name cannot be reached as listed.
            problems.push({ path: child, code: 'unreadable', message: notUtf8Message(child) });
            return;
          }
          await visit(child, childAbs, attrs, true);
        }),
      );
    };

    /** A scoped scan: each scope path's subtree, after the folders above it (see core/scope.ts). */
    const walkScope = async (scope: readonly string[]): Promise<void> => {
      for (const target of scope) {
        if (isSatchelInternal(target)) continue;
        for (const dir of [...ancestorsOf(target), target]) {
          if (entries.has(dir)) continue;
          const abs = this.#abs(dir);
          let st: Stats | undefined;
          try {
            st = await limit(() => lstatOrUndefined(s, abs));
          } catch (err) {
            failed(dir, err, 'read');
            break;
          }
          if (st === undefined) break;
          await visit(dir, abs, st, dir === target);
          if (!st.isDirectory()) break;
        }
      }
    };

    try {
      const scope = options.scope === undefined ? undefined : normalizeScope(options.scope);
      if (scope === undefined || scope[0] === '') await walk('', this.#root);
      else await walkScope(scope);
    } catch (err) {
      throw this.#gone(err) ?? this.#absent(remoteCode(err) ?? (err as Error).message, err);
    }
    // A root that vanished or lost its marker mid-scan must not look like "all deleted".
    await this.#requireRoot();
    if (hadMarker && (await lstatOrUndefined(s, posix.join(this.#root, MARKER_NAME))) === undefined)
      throw this.#absent('marker vanished');
    const snapshot = new Map([...entries].sort(([a], [b]) => comparePaths(a, b)));
    return { snapshot, hashes, problems };
  }

  /** Deletes a leftover temporary file or folder. */
  async #removeDebris(abs: string, st: Stats): Promise<void> {
    const s = this.#s;
    if (!st.isDirectory()) {
      await s.call<void>((d) => s.sftp.unlink(abs, d));
      return;
    }
    const list = await s.call<{ filename: string; attrs: Stats }[]>((d) => s.sftp.readdir(abs, d));
    for (const c of list) await this.#removeDebris(posix.join(abs, c.filename), c.attrs);
    await s.call<void>((d) => s.sftp.rmdir(abs, d));
  }

  /** Stages every write's content beside its target; see the module comment. */
  async prepare(
    operations: readonly Operation[],
    source: ContentSource,
    signal?: AbortSignal,
  ): Promise<PreparedApply> {
    await this.#requireRoot();
    const staged = new Map<number, Staged | Problem>();
    const limit = createLimiter(SFTP_WRITE_PARALLELISM);
    const writes = operations.filter((op) => op.type === 'write').length;
    // A handful of writes (a save under `watch`) stays on the main channel.
    const lanes = writes >= 4 * SFTP_CHANNELS ? await this.#lanes() : [this.#s.sftp];
    const folders = new Map<string, Promise<string>>();
    // A bulk upload asks at once (unless this connection knows) whether one `sync -f` can make
    // it durable; the files staged before the answer are fsynced one by one as usual, the others
    // by that one command at the end.
    const bulk = writes >= this.#bulkSyncWrites;
    let syncLater = bulk && this.#s.syncsFileSystems === true;
    const asked =
      bulk && this.#s.syncsFileSystems === undefined
        ? this.#s.syncFileSystems([this.#root]).then((ok) => void (syncLater = ok))
        : undefined;
    const unsynced = new Map<number, SFTPWrapper>();
    let k = 0;
    const settled = await Promise.allSettled(
      operations.map(async (op, i) => {
        if (op.type !== 'write') return;
        const lane = lanes[k++ % lanes.length]!;
        signal?.throwIfAborted();
        staged.set(
          i,
          await limit(async () => {
            signal?.throwIfAborted();
            const fsync = !syncLater;
            const result = await this.#stage(op, source, lane, folders, fsync);
            if (!fsync && 'temp' in result) unsynced.set(i, lane);
            return result;
          }),
        );
      }),
    );
    await asked;
    let failure = settled.find((r) => r.status === 'rejected');
    if (failure === undefined) await this.#retryAfterNoSpace(operations, source, staged, folders);
    if (failure === undefined && unsynced.size > 0) {
      try {
        await this.#makeDurable(operations, staged, unsynced, limit);
      } catch (reason) {
        failure = { status: 'rejected', reason };
      }
    }
    if (failure !== undefined) {
      await this.#discardUnused(staged, []);
      throw this.#gone(failure.reason) ?? failure.reason;
    }
    let finished = false;
    return {
      commit: async () => {
        if (finished) throw new Error('bug: commit after the prepared apply was finished');
        finished = true;
        return this.#commit(operations, staged);
      },
      abort: async () => {
        if (finished) return;
        finished = true;
        await this.#discardUnused(staged, []);
      },
    };
  }

  /**
   * Uploads that ran out of room together may each fit alone (two 1.5 MB files, 2 MB free):
   * writes of a batch that failed for room, or with the bare "Failure" OpenSSH answers for it,
   * are tried again one at a time, the smallest first, each fsynced; then a full disk shows as
   * a no-space problem of the ones that still do not fit.
   */
  async #retryAfterNoSpace(
    operations: readonly Operation[],
    source: ContentSource,
    staged: Map<number, Staged | Problem>,
    folders: Map<string, Promise<string>>,
  ): Promise<void> {
    const failed = [...staged].filter(
      ([, r]) => 'code' in r && (r.code === 'no-space' || r.code === 'io-error'),
    );
    // Only when uploads ran side by side (one alone had nothing to share the room with), and
    // not for a whole tree that cannot fit.
    if (failed.length === 0 || failed.length > 64 || staged.size < 2) return;
    const bySize = failed
      .map(([i]) => [i, operations[i] as WriteOperation] as const)
      .sort(([, a], [, b]) => a.entry.size - b.entry.size);
    for (const [i, op] of bySize) staged.set(i, await this.#stage(op, source, this.#s.sftp, folders, true));
  }

  /**
   * Makes the files staged without their own fsync durable: one `sync -f` of the folders they
   * are in, else (the login cannot run it after all) an fsync of each; a file that cannot be
   * flushed is discarded and its write becomes a problem.
   */
  async #makeDurable(
    operations: readonly Operation[],
    staged: Map<number, Staged | Problem>,
    unsynced: ReadonlyMap<number, SFTPWrapper>,
    limit: Limiter,
  ): Promise<void> {
    const temps = new Map([...unsynced.keys()].map((i) => [i, (staged.get(i) as Staged).temp]));
    if (await this.#s.syncFileSystems([...new Set([...temps.values()].map((t) => posix.dirname(t)))])) return;
    await Promise.all(
      [...unsynced].map(([i, lane]) =>
        limit(async () => {
          const temp = temps.get(i)!;
          try {
            await fsyncFile(this.#s, temp, lane);
          } catch (err) {
            await this.#discard(temp);
            staged.set(i, await this.#problem(err, (operations[i] as WriteOperation).path, 'write'));
          }
        }),
      ),
    );
  }

  /** The session's channels for bulk work (the main one alone if more cannot be opened). */
  async #lanes(): Promise<readonly SFTPWrapper[]> {
    try {
      return await this.#s.lanes(SFTP_CHANNELS);
    } catch (err) {
      throw this.#gone(err) ?? err;
    }
  }

  /**
   * Uploads one write to a temporary name over `lane`; returns it, or the problem that stopped
   * it. `folders` caches, for this prepare, the nearest existing folder of each target folder.
   */
  async #stage(
    op: WriteOperation,
    source: ContentSource,
    lane: SFTPWrapper,
    folders: Map<string, Promise<string>>,
    fsync: boolean,
  ): Promise<Staged | Problem> {
    const tooLong = encodePath(op.path, this.capabilities)
      .split('/')
      .some((seg) => seg.length > this.capabilities.maxNameLength);
    if (tooLong)
      return {
        path: op.path,
        code: 'name-not-storable',
        message: `cannot store ${op.path} on ${this.label}: the name is longer than ${this.capabilities.maxNameLength} characters`,
      };
    const target = this.#abs(op.path);
    let temp: string | undefined;
    try {
      // The mode of the file replaced is kept; a new file has none to keep (commit re-checks).
      const existing =
        op.expected?.kind === 'file' ? await lstatOrUndefined(this.#s, target, lane) : undefined;
      const baseMode = existing?.isFile() === true ? existing.mode & 0o7777 : 0o644;
      const mode = this.capabilities.executableBit ? withExecutable(baseMode, op.entry.executable) : baseMode;
      const dir = posix.dirname(target);
      let folder = folders.get(dir);
      if (folder === undefined) {
        folder = this.#nearestExistingFolder(dir);
        folders.set(dir, folder);
      }
      temp = tempName(await folder);
      this.#liveTemps.add(temp);
      const local = source.localFile(op.from.path);
      const hasher = local === undefined ? createHash('sha256') : undefined;
      const content: Buffer | AsyncIterable<Buffer> =
        local !== undefined
          ? op.from.entry.size <= SMALL_FILE
            ? readFileSync(local)
            : createReadStream(local, { highWaterMark: 256 * 1024 })
          : (async function* () {
              for await (const chunk of await source.open(op.from.path, op.from.entry)) {
                const b = Buffer.from(chunk as Buffer);
                hasher!.update(b);
                yield b;
              }
            })();
      const written = await writeNewFile(
        this.#s,
        temp,
        content,
        { mode, mtimeMs: op.entry.mtimeMs },
        lane,
        fsync,
      );
      const moved =
        written.size !== op.from.entry.size ||
        (hasher !== undefined && hasher.digest('hex') !== op.from.entry.hash) ||
        !(await source.unchanged(op.from.path, op.from.entry));
      if (moved) {
        await this.#discard(temp);
        return {
          path: op.path,
          code: 'changed-during-sync',
          message: `${op.from.path} changed while it was copied to ${this.label}; it is picked up by the next sync`,
        };
      }
      const executable = this.capabilities.executableBit && (written.mode & 0o100) !== 0;
      return {
        temp,
        stored: {
          kind: 'file',
          size: written.size,
          mtimeMs: written.mtimeMs,
          executable,
          hash: op.entry.hash,
        },
      };
    } catch (err) {
      if (temp !== undefined) await this.#discard(temp);
      if (err instanceof SatchelError) throw err;
      return this.#problem(err, op.path, 'write', op.entry.size);
    }
  }

  /** The folder `dir`, or its nearest ancestor within the root that exists. */
  async #nearestExistingFolder(dir: string): Promise<string> {
    let d = dir;
    for (;;) {
      const st = await lstatOrUndefined(this.#s, d);
      if (st?.isDirectory() === true) return d;
      const rel = posix.relative(this.#root, d);
      if (rel === '' || rel.startsWith('..')) return this.#root;
      d = posix.dirname(d);
    }
  }

  /** Deletes a staged file. Never throws. */
  async #discard(temp: string): Promise<void> {
    if (!this.#s.lost) await this.#s.call<void>((d) => this.#s.sftp.unlink(temp, d)).catch(() => {});
    this.#liveTemps.delete(temp);
  }

  /** Discards every staged write whose operation has no result (all of them for an abort). */
  async #discardUnused(
    staged: ReadonlyMap<number, Staged | Problem>,
    results: readonly (OperationResult | undefined)[],
  ): Promise<void> {
    await discardUnused(staged, results, (st) => this.#discard(st.temp));
  }

  /**
   * Applies the operations in plan order, each after re-checking its expected state; an
   * operation waits only for the earlier ones on related paths (see `commit-order.ts`).
   */
  async #commit(
    operations: readonly Operation[],
    staged: ReadonlyMap<number, Staged | Problem>,
  ): Promise<readonly OperationResult[]> {
    const results = new Array<OperationResult | undefined>(operations.length);
    const limit = createLimiter(SFTP_COMMIT_PARALLELISM);
    // Many writes' checks and renames are spread over the channels, like their uploads.
    const lanes = operations.length >= 4 * SFTP_CHANNELS ? await this.#lanes() : [this.#s.sftp];
    try {
      await applyInPathOrder(
        operations,
        limit,
        async (j) => {
          const op = operations[j]!;
          const path = op.type === 'rename' ? op.from : op.path;
          try {
            results[j] = await this.#applyOne(op, staged.get(j), lanes[j % lanes.length]!);
          } catch (err) {
            if (err instanceof SatchelError) throw err;
            results[j] = { ok: false, problem: await this.#problem(err, path, `check ${path} on`) };
          }
        },
        (reason) => this.#gone(reason) ?? reason,
        (path) => encodePath(path, this.capabilities),
      );
    } finally {
      // Staged files of operations never reached (a thrown error) must not stay behind.
      await this.#discardUnused(staged, results);
    }
    return results as OperationResult[];
  }

  /** Whether `abs` holds what `expected` says (absent when undefined). */
  async #holds(abs: string, expected: Entry | undefined, lane = this.#s.sftp): Promise<boolean> {
    const st = await lstatOrUndefined(this.#s, abs, lane);
    if (expected === undefined || st === undefined) return expected === st;
    switch (expected.kind) {
      case 'file':
        return st.isFile() && st.size === expected.size && st.mtime * 1000 === expected.mtimeMs;
      case 'directory':
        return st.isDirectory();
      case 'symlink':
        return (
          st.isSymbolicLink() &&
          (await this.#s.call<string>((d) => this.#s.sftp.readlink(abs, d))) === expected.target
        );
    }
  }

  /** The entry now stored at `path` (`hash` for files: content is not re-read). */
  async #stored(path: string, hash: string | undefined): Promise<Entry | undefined> {
    const abs = this.#abs(path);
    const st = await lstatOrUndefined(this.#s, abs);
    if (st === undefined) return undefined;
    if (st.isDirectory()) return { kind: 'directory' };
    if (st.isSymbolicLink())
      return { kind: 'symlink', target: await this.#s.call<string>((d) => this.#s.sftp.readlink(abs, d)) };
    if (hash === undefined) throw new Error(`bug: no hash for stored file ${path}`);
    const executable = this.capabilities.executableBit && (st.mode & 0o100) !== 0;
    return { kind: 'file', size: st.size, mtimeMs: st.mtime * 1000, executable, hash };
  }

  /** Renames `from` over `to`: atomically with posix-rename, else through a backup name. */
  async #replace(from: string, to: string, lane = this.#s.sftp): Promise<void> {
    const s = this.#s;
    if (this.#posixRename) {
      await s.call<void>((d) => lane.ext_openssh_rename(from, to, d));
      return;
    }
    const there = await lstatOrUndefined(s, to);
    if (there === undefined) {
      // Plain SFTP rename refuses an existing target: nothing is ever clobbered here.
      await s.call<void>((d) => s.sftp.rename(from, to, d));
      return;
    }
    const backup = tempName(posix.dirname(to));
    this.#liveTemps.add(backup);
    await s.call<void>((d) => s.sftp.rename(to, backup, d));
    try {
      await s.call<void>((d) => s.sftp.rename(from, to, d));
    } catch (err) {
      if (!s.lost) await s.call<void>((d) => s.sftp.rename(backup, to, d)).catch(() => {});
      this.#liveTemps.delete(backup);
      throw err;
    }
    // At this point the new content is under the final name; the old one is only debris.
    await s.call<void>((d) => s.sftp.unlink(backup, d)).catch(() => {});
    this.#liveTemps.delete(backup);
  }

  /** Applies one operation (its write content already staged); a write's requests go over `lane`. */
  async #applyOne(
    op: Operation,
    staged: Staged | Problem | undefined,
    lane: SFTPWrapper,
  ): Promise<OperationResult> {
    const s = this.#s;
    const path = op.type === 'rename' ? op.from : op.path;
    const abs = this.#abs(path);
    const moved = (): OperationResult => changedSinceScan(path, this.label);
    if (op.type === 'write') {
      if (staged === undefined) throw new Error(`bug: write of ${op.path} was not staged`);
      if (!('temp' in staged)) return { ok: false, problem: staged };
      if (!(await this.#holds(abs, op.expected, lane))) {
        await this.#discard(staged.temp);
        return moved();
      }
      try {
        await this.#replace(staged.temp, abs, lane);
      } catch (err) {
        await this.#discard(staged.temp);
        return { ok: false, problem: await this.#problem(err, path, 'write') };
      }
      this.#liveTemps.delete(staged.temp);
      return { ok: true, stored: staged.stored };
    }
    if (!(await this.#holds(abs, op.expected))) return moved();
    const action =
      op.type === 'rename' ? `rename to ${op.to}` : op.type === 'mkdir' ? 'create folder' : op.type;
    try {
      switch (op.type) {
        case 'mkdir':
          await s.call<void>((d) => s.sftp.mkdir(abs, {}, d));
          return { ok: true, stored: { kind: 'directory' } };
        case 'symlink': {
          const temp = tempName(posix.dirname(abs));
          await s.call<void>((d) => s.sftp.symlink(op.target, temp, d));
          try {
            await this.#replace(temp, abs);
          } catch (err) {
            await s.call<void>((d) => s.sftp.unlink(temp, d)).catch(() => {});
            throw err;
          }
          return { ok: true, stored: { kind: 'symlink', target: op.target } };
        }
        case 'chmod': {
          if (this.capabilities.executableBit) {
            const st = await s.call<Stats>((d) => s.sftp.lstat(abs, d));
            await s.call<void>((d) =>
              s.sftp.setstat(abs, { mode: withExecutable(st.mode, op.executable) }, d),
            );
          }
          return { ok: true, stored: await this.#stored(path, op.expected.hash) };
        }
        case 'remove':
          if (op.expected.kind === 'directory') {
            const problem = await this.#removeFolder(abs, path);
            if (problem !== undefined) return { ok: false, problem };
          } else await s.call<void>((d) => s.sftp.unlink(abs, d));
          return { ok: true };
        case 'rename': {
          const dest = this.#abs(op.to);
          if ((await lstatOrUndefined(s, dest)) !== undefined) {
            return {
              ok: false,
              problem: {
                path: op.from,
                code: 'changed-during-sync',
                message: `cannot rename ${op.from} to ${op.to} on ${this.label}: ${op.to} exists now`,
              },
            };
          }
          // Plain SFTP rename never replaces an existing name: a file that appeared meanwhile is kept.
          await s.call<void>((d) => s.sftp.rename(abs, dest, d));
          if (op.mtimeMs !== undefined) {
            const t = Math.floor(op.mtimeMs / 1000);
            await s.call<void>((d) => s.sftp.setstat(dest, { atime: t, mtime: t }, d));
          }
          const hash = op.expected.kind === 'file' ? op.expected.hash : undefined;
          return { ok: true, stored: await this.#stored(op.to, hash) };
        }
      }
    } catch (err) {
      return { ok: false, problem: await this.#problem(err, path, action) };
    }
  }

  /** Removes an empty folder (our leftover temporary files inside do not count); a problem when it is not. */
  async #removeFolder(abs: string, path: string): Promise<Problem | undefined> {
    const s = this.#s;
    try {
      await s.call<void>((d) => s.sftp.rmdir(abs, d));
      return undefined;
    } catch (err) {
      // OpenSSH answers ENOTEMPTY with a bare "Failure": look inside.
      if (remoteCode(err) !== 'EFAILURE') throw err;
      const list = await s.call<{ filename: string; attrs: Stats }[]>((d) => s.sftp.readdir(abs, d));
      const debris = list.filter(
        (c) => isTempName(c.filename) && !this.#liveTemps.has(posix.join(abs, c.filename)),
      );
      if (debris.length !== list.length)
        return {
          path,
          code: 'not-empty',
          message: `cannot remove ${path} on ${this.label}: the folder is not empty`,
        };
      for (const c of debris) await this.#removeDebris(posix.join(abs, c.filename), c.attrs);
      await s.call<void>((d) => s.sftp.rmdir(abs, d));
      return undefined;
    }
  }

  /** Gives the connection back (it stays in the pool for a while for the next cycle). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#s.release();
  }
}
