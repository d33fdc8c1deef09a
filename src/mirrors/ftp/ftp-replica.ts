/**
 * @module mirrors/ftp/ftp-replica
 * A push-only mirror in a folder on an FTP server (a published copy others download):
 *
 * - **scan** lists the folder tree, by MLSD where the server offers it (exact times in seconds),
 *   else by LIST (parsed by basic-ftp; names with spaces, unicode and leading dashes survive,
 *   since every listing is of the current folder after an absolute `CWD`). FTP cannot hash a
 *   remote file cheaply, so the hash of a file is the hash Satchel recorded when it uploaded it
 *   (the mirror's hash cache), valid while the server still reports the same size and time;
 *   only a file Satchel knows nothing about, or one that drifted, is downloaded once to hash it.
 *   LIST times are coarse (minutes, or days for old files): a file whose coarse time agrees with
 *   the recorded one keeps it; any doubt, and every recent file, is settled with `MDTM`. A file
 *   whose size or time differs from what Satchel recorded was changed on the server by someone
 *   else (**drift**): it is reported as a scan notice (data, not a problem, so the path is not
 *   left alone) and, carrying a hash that differs from the case's, replaced with the case's version.
 *   Crash debris (`.satchel-tmp-*`) is deleted.
 * - **prepare** uploads each write to `.satchel-tmp-<hex>` in its target folder (or the nearest
 *   existing one) and sets its time (`MFMT`, else `MDTM <time> <file>`, else `SITE UTIME`; where
 *   none works, the time the server gave it is recorded instead, so Satchel still knows the file
 *   is current).
 * - **commit** renames each upload over its final name with RNFR/RNTO (pure-ftpd and vsftpd
 *   replace the target; a server that refuses gets a delete then the rename), so a reader never
 *   downloads a half-written file; then folders, deletes and renames. Push-only: the case always
 *   wins, so `expected` states are not re-checked (a change on the server is drift).
 * - A broken connection is retried on a fresh one; when the server stays away the replica
 *   throws `mirror-absent`. Per-path refusals (permissions, a full disk) come back as problems.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { posix } from 'node:path';
import { PassThrough, Transform, Writable, type Readable } from 'node:stream';
import type { Client, FileInfo } from 'basic-ftp';
import type { Capabilities } from '../../core/capabilities.js';
import { comparePaths, parentPath, type Entry, type FileEntry } from '../../core/entry.js';
import { SatchelError } from '../../core/errors.js';
import type { Operation, WriteOperation } from '../../core/plan.js';
import type { Problem, ProblemCode } from '../../core/problem.js';
import { isSatchelInternal, isTempName, MARKER_NAME, TEMP_PREFIX } from '../../core/reserved.js';
import { inScope, normalizeScope } from '../../core/scope.js';
import { applyInGroups, discardUnused } from '../../replica/commit-groups.js';
import type {
  CachedHash,
  ContentSource,
  OperationResult,
  PreparedApply,
  Replica,
  ScanNotice,
  ScanOptions,
  ScanResult,
} from '../../replica/replica.js';
import { createLimiter } from '../path/limit.js';
import { replyCode, type FtpSession } from './connection.js';

/** What an FTP server stores: no links, no permissions Satchel relies on, times in seconds. */
export const FTP_CAPABILITIES: Capabilities = Object.freeze({
  readable: false,
  writable: true,
  symlinks: false,
  executableBit: false,
  caseSensitive: true,
  mtimeGranularityMs: 1000,
  forbiddenChars: '',
  forbidsTrailingDotOrSpace: false,
  maxFileSize: Number.MAX_SAFE_INTEGER,
  maxNameLength: 255,
});

/**
 * Names FTP cannot carry: a control character (a line break would end the command and start
 * another; servers refuse the others) or a space at the end (servers trim command lines, and
 * some store such a name under another one).
 */
// eslint-disable-next-line no-control-regex -- control characters are exactly what is looked for
const UNSENDABLE_NAME = /[\x00-\x1f\x7f]| $/;

/** The `name-not-storable` problem of `path` when a segment of it cannot be sent over FTP. */
export function ftpNameProblem(path: string, label: string): Problem | undefined {
  if (!path.split('/').some((segment) => UNSENDABLE_NAME.test(segment))) return undefined;
  return {
    path,
    code: 'name-not-storable',
    message: `cannot store ${JSON.stringify(path)} on ${label}: FTP cannot carry a name with a control character (a line break, a tab) or a space at the end`,
  };
}

/** LIST times this recent are always re-read with MDTM (a same-size change within the minute). */
const RECENT_MS = 10 * 60_000;

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/**
 * A LIST time (`Nov 23 20:49`, or `Nov 23  2019` for old files) as UTC ms and its precision,
 * or undefined when it is in another format.
 */
export function parseListTime(raw: string, nowMs: number): { ms: number; unitMs: number } | undefined {
  const m = /^([A-Za-z]{3})\s+(\d{1,2})\s+(?:(\d{1,2}):(\d{2})|(\d{4}))$/.exec(raw.trim());
  if (m === null) return undefined;
  const month = MONTHS.indexOf(m[1]!.toLowerCase());
  if (month < 0) return undefined;
  const day = Number(m[2]);
  if (m[5] !== undefined) return { ms: Date.UTC(Number(m[5]), month, day), unitMs: 86_400_000 };
  const year = new Date(nowMs).getUTCFullYear();
  let ms = Date.UTC(year, month, day, Number(m[3]), Number(m[4]));
  // ls shows the time for the last six months: a date "in the future" is from last year.
  if (ms > nowMs + 86_400_000) ms = Date.UTC(year - 1, month, day, Number(m[3]), Number(m[4]));
  return { ms, unitMs: 60_000 };
}

/** `YYYYMMDDHHMMSS` (UTC) of `ms`. */
function ftpTime(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:T]/g, '').slice(0, 14);
}

/** A hash that matches no content: a file on the server whose content Satchel does not know. */
function unknownHash(path: string, size: number, mtimeMs: number): string {
  return createHash('sha256').update(`satchel-ftp-unknown\0${path}\0${size}\0${mtimeMs}`).digest('hex');
}

/** How to open an {@link FtpReplica}. */
export interface FtpReplicaOptions {
  /** The connections (closed with the replica unless `keepSession`). */
  readonly session: FtpSession;
  /** A short label for messages: the mirror's name. */
  readonly label: string;
  readonly capabilities?: Capabilities;
  /** Test knob: behave as if the server offered no MLSD (LIST parsing and MDTM). */
  readonly noMlsd?: boolean;
}

/** The content of one write, uploaded and waiting for commit. */
interface Staged {
  readonly temp: string;
  readonly stored: FileEntry;
}

/** A replica in a folder on an FTP server; see the module comment. */
export class FtpReplica implements Replica {
  readonly label: string;
  readonly capabilities: Capabilities;
  readonly content: ContentSource;
  readonly #s: FtpSession;
  readonly #noMlsd: boolean;
  /** Temporary files staged by this object and not yet committed or discarded. */
  readonly #liveTemps = new Set<string>();
  /** Folders the last scan found (where uploads can be staged). */
  #knownDirs = new Set<string>(['']);
  #closed = false;

  constructor(options: FtpReplicaOptions) {
    this.label = options.label;
    this.capabilities = options.capabilities ?? FTP_CAPABILITIES;
    this.#s = options.session;
    this.#noMlsd = options.noMlsd === true;
    this.content = {
      open: async (path: string) => {
        const out = new PassThrough();
        void this.#s
          .use((c) => c.downloadTo(out, this.#abs(path)))
          .catch((err: unknown) => out.destroy(err as Error));
        return out;
      },
      localFile: () => undefined,
      unchanged: async (path: string, entry: FileEntry) => {
        const abs = this.#abs(path);
        return this.#s.use(async (c) => {
          try {
            const size = await c.size(abs);
            const t = await c.lastMod(abs);
            return size === entry.size && t.getTime() === entry.mtimeMs;
          } catch (err) {
            if (replyCode(err) !== undefined) return false;
            throw err;
          }
        });
      },
    };
  }

  /** The absolute server path of `path`. */
  #abs(path: string): string {
    return path === '' ? this.#s.root : posix.join(this.#s.root, path);
  }

  /** The `mirror-absent` error for a missing root. */
  #absent(why: string, cause?: unknown): SatchelError {
    return new SatchelError(
      'mirror-absent',
      `${this.label} at ${this.#s.where}${this.#s.root} is not available (${why})`,
      {
        hint: 'check the folder on the server; nothing was changed',
        data: { root: this.#s.root },
        cause,
      },
    );
  }

  /**
   * The per-path problem for a refusal of the server (a broken connection is rethrown). FTP has
   * no reliable "disk full" reply: pure-ftpd answers `451 Error during write to file`, others
   * 452 or 552, so a failed write with one of those is reported as a full disk or quota.
   */
  #problem(err: unknown, path: string, action: string): Problem {
    if (err instanceof SatchelError) throw err;
    const code = replyCode(err);
    if (code === undefined) throw this.#s.lostError(err);
    const reason = err instanceof Error ? err.message : String(err);
    let problem: ProblemCode = 'io-error';
    if (
      code === 452 ||
      code === 552 ||
      /space|quota|full/i.test(reason) ||
      (action === 'write' && code === 451 && /write/i.test(reason))
    )
      problem = 'no-space';
    else if (code === 553) problem = 'name-not-storable';
    else if (code === 550 || code === 530 || code === 532) problem = 'permission-denied';
    const first = reason.split('\n')[0]!;
    const what =
      problem === 'no-space'
        ? `no space left on the server's disk, or over quota (the server answered ${first})`
        : `the server answered ${first}`;
    return { path, code: problem, message: `cannot ${action} ${path} on ${this.label}: ${what}` };
  }

  /** Lists one folder (absolute `CWD`, then a listing of the current folder). */
  async #list(abs: string): Promise<FileInfo[]> {
    return this.#s.use(async (c) => {
      await c.cd(abs);
      if (this.#noMlsd)
        (c as unknown as { availableListCommands: string[] }).availableListCommands = ['LIST -a', 'LIST'];
      const list = await c.list();
      return list.filter((f) => f.name !== '.' && f.name !== '..' && f.name !== '');
    });
  }

  /** Lists the tree; see the module comment. */
  async scan(options: ScanOptions): Promise<ScanResult> {
    const { cache, ignore, signal } = options;
    const scope = options.scope === undefined ? undefined : normalizeScope(options.scope);
    const whole = scope === undefined || scope[0] === '';
    const covered = (p: string): boolean => whole || inScope(p, scope!);
    const limit = createLimiter(8);
    const entries = new Map<string, Entry>();
    const hashes = new Map<string, CachedHash>();
    const problems: Problem[] = [];
    const drift: string[] = [];
    const dirs = new Set<string>(['']);
    const now = Date.now();

    let rootList: FileInfo[];
    try {
      rootList = await this.#list(this.#s.root);
    } catch (err) {
      if (err instanceof SatchelError) throw err;
      throw this.#absent(`the folder cannot be opened: ${(err as Error).message}`, err);
    }
    const hadMarker = rootList.some((f) => f.name === MARKER_NAME);

    const mdtm = (abs: string): Promise<number> => this.#s.use(async (c) => (await c.lastMod(abs)).getTime());

    const scanFile = async (path: string, abs: string, info: FileInfo): Promise<void> => {
      const cached = cache.get(path);
      const size = info.size;
      let mtimeMs: number;
      if (info.modifiedAt !== undefined && !this.#noMlsd) mtimeMs = info.modifiedAt.getTime();
      else {
        const coarse = parseListTime(info.rawModifiedAt, now);
        const agrees =
          coarse !== undefined &&
          cached !== undefined &&
          cached.size === size &&
          coarse.ms + coarse.unitMs < now - RECENT_MS &&
          Math.floor(cached.mtimeMs / coarse.unitMs) * coarse.unitMs === coarse.ms;
        mtimeMs = agrees ? cached.mtimeMs : await limit(() => mdtm(abs));
      }
      let hash: string;
      if (cached !== undefined && cached.size === size && cached.mtimeMs === mtimeMs) hash = cached.hash;
      else {
        // Not what Satchel uploaded (or not known at all): read it once to learn its content.
        hash = (await limit(() => this.#hashRemote(abs, size))) ?? unknownHash(path, size, mtimeMs);
        if (cached !== undefined) drift.push(path);
      }
      entries.set(path, { kind: 'file', size, mtimeMs, executable: false, hash });
      hashes.set(path, { size, mtimeMs, hash });
    };

    const visitList = async (path: string, abs: string, list: FileInfo[]): Promise<void> => {
      signal?.throwIfAborted();
      await Promise.all(
        list.map(async (info) => {
          const name = info.name;
          const childAbs = posix.join(abs, name);
          if (isTempName(name)) {
            // Crash debris: a staged file of a process that did not finish.
            if (!this.#liveTemps.has(childAbs) && info.isFile)
              await limit(() => this.#s.use((c) => c.remove(childAbs))).catch(() => {});
            return;
          }
          const child = path === '' ? name : `${path}/${name}`;
          if (isSatchelInternal(child) || !covered(child)) return;
          try {
            if (info.isDirectory) {
              if (ignore(child, true)) return;
              const sub = await limit(() => this.#list(childAbs));
              entries.set(child, { kind: 'directory' });
              dirs.add(child);
              await visitList(child, childAbs, sub);
            } else if (info.isFile) {
              if (!ignore(child, false)) await scanFile(child, childAbs, info);
            }
            // Links and anything else on the server are not Satchel's: left alone.
          } catch (err) {
            if (err instanceof SatchelError) throw err;
            if (replyCode(err) === undefined) throw this.#s.lostError(err);
            problems.push({
              path: child,
              code: 'unreadable',
              message: `cannot read ${child} on ${this.label}: ${(err as Error).message}`,
            });
          }
        }),
      );
    };
    await visitList('', this.#s.root, rootList);

    // A marker vanishing mid-scan must not look like "all deleted".
    if (hadMarker) {
      const still = await this.#s
        .use((c) => c.size(this.#abs(MARKER_NAME)))
        .then(
          () => true,
          (err: unknown) => {
            if (replyCode(err) === undefined) throw err;
            return false;
          },
        );
      if (!still) throw this.#absent('marker vanished');
    }
    const notices = drift.sort(comparePaths).map((path): ScanNotice => ({
      path,
      code: 'drift',
      message: `${path} was changed on ${this.label} by someone else (size or time differ from what Satchel uploaded); the case's version replaces it`,
    }));
    this.#knownDirs = whole ? dirs : new Set([...this.#knownDirs, ...dirs]);
    const snapshot = new Map([...entries].sort(([a], [b]) => comparePaths(a, b)));
    return { snapshot, hashes, problems, ...(notices.length > 0 ? { notices } : {}) };
  }

  /** The SHA-256 of a remote file, read over a data connection; undefined if it moved meanwhile. */
  async #hashRemote(abs: string, size: number): Promise<string | undefined> {
    return this.#s.use(async (c) => {
      const h = createHash('sha256');
      let bytes = 0;
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          h.update(chunk);
          done();
        },
      });
      try {
        await c.downloadTo(sink, abs);
      } catch (err) {
        if (replyCode(err) === undefined) throw err;
        return undefined;
      }
      return bytes === size ? h.digest('hex') : undefined;
    });
  }

  /** Sets the time of `abs` to `ms` with whatever the server offers; false when nothing works. */
  async #setMtime(c: Client, abs: string, ms: number): Promise<boolean> {
    const s = this.#s;
    const t = ftpTime(ms);
    if (s.mfmt) {
      try {
        await c.send(`MFMT ${t} ${abs}`);
        return true;
      } catch (err) {
        if (replyCode(err) === undefined) throw err;
      }
    }
    if (s.mdtmWrite !== false) {
      try {
        await c.send(`MDTM ${t} ${abs}`);
        s.mdtmWrite = true;
        return true;
      } catch (err) {
        if (replyCode(err) === undefined) throw err;
        if (s.mdtmWrite === undefined) s.mdtmWrite = false;
      }
    }
    if (s.siteUtime !== false) {
      try {
        await c.send(`SITE UTIME ${abs} ${t} ${t} ${t} UTC`);
        s.siteUtime = true;
        return true;
      } catch (err) {
        if (replyCode(err) === undefined) throw err;
        if (s.siteUtime === undefined) s.siteUtime = false;
      }
    }
    return false;
  }

  /** The folder `dir` (relative), or its nearest ancestor the last scan found. */
  #nearestKnownFolder(dir: string): string {
    let d = dir;
    while (d !== '' && !this.#knownDirs.has(d)) d = parentPath(d);
    return d;
  }

  /** Stages every write's content beside its target; see the module comment. */
  async prepare(
    operations: readonly Operation[],
    source: ContentSource,
    signal?: AbortSignal,
  ): Promise<PreparedApply> {
    const staged = new Map<number, Staged | Problem>();
    const settled = await Promise.allSettled(
      operations.map(async (op, i) => {
        if (op.type !== 'write') return;
        signal?.throwIfAborted();
        staged.set(i, await this.#stage(op, source));
      }),
    );
    const failure = settled.find((r) => r.status === 'rejected');
    if (failure !== undefined) {
      await this.#discardUnused(staged, []);
      throw failure.reason;
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

  /** Uploads one write to a temporary name; returns it, or the problem that stopped it. */
  async #stage(op: WriteOperation, source: ContentSource): Promise<Staged | Problem> {
    const unsendable = ftpNameProblem(op.path, this.label);
    if (unsendable !== undefined) return unsendable;
    const dir = this.#abs(this.#nearestKnownFolder(parentPath(op.path)));
    const temp = posix.join(dir, `${TEMP_PREFIX}${randomBytes(8).toString('hex')}`);
    this.#liveTemps.add(temp);
    try {
      const outcome = await this.#s.use(async (c) => {
        const local = source.localFile(op.from.path);
        const hasher = createHash('sha256');
        let bytes = 0;
        const input: Readable =
          local !== undefined
            ? createReadStream(local, { highWaterMark: 256 * 1024 })
            : await source.open(op.from.path, op.from.entry);
        const counting = new Transform({
          transform(chunk: Buffer, _enc, done) {
            bytes += chunk.length;
            hasher.update(chunk);
            done(null, chunk);
          },
        });
        input.on('error', (e) => counting.destroy(e));
        try {
          await c.uploadFrom(input.pipe(counting), temp);
        } catch (err) {
          input.destroy();
          // A partial upload under the temporary name is removed (or deleted as debris later).
          if (replyCode(err) !== undefined) await c.remove(temp, true).catch(() => undefined);
          throw err;
        }
        const set = await this.#setMtime(c, temp, op.entry.mtimeMs);
        const mtimeMs = set ? Math.floor(op.entry.mtimeMs / 1000) * 1000 : (await c.lastMod(temp)).getTime();
        return { bytes, hash: hasher.digest('hex'), mtimeMs };
      });
      const moved =
        outcome.bytes !== op.from.entry.size ||
        outcome.hash !== op.from.entry.hash ||
        !(await source.unchanged(op.from.path, op.from.entry));
      if (moved) {
        await this.#discard(temp);
        return {
          path: op.path,
          code: 'changed-during-sync',
          message: `${op.from.path} changed while it was copied to ${this.label}; it is picked up by the next sync`,
        };
      }
      return {
        temp,
        stored: {
          kind: 'file',
          size: outcome.bytes,
          mtimeMs: outcome.mtimeMs,
          executable: false,
          hash: op.entry.hash,
        },
      };
    } catch (err) {
      await this.#discard(temp);
      return this.#problem(err, op.path, 'write');
    }
  }

  /** Deletes a staged file. Never throws. */
  async #discard(temp: string): Promise<void> {
    await this.#s.use((c) => c.remove(temp, true)).catch(() => {});
    this.#liveTemps.delete(temp);
  }

  /** Discards every staged write whose operation has no result (all of them for an abort). */
  async #discardUnused(
    staged: ReadonlyMap<number, Staged | Problem>,
    results: readonly (OperationResult | undefined)[],
  ): Promise<void> {
    await discardUnused(staged, results, (st) => this.#discard(st.temp));
  }

  /** Applies the operations in order; consecutive writes to distinct paths run in parallel. */
  async #commit(
    operations: readonly Operation[],
    staged: ReadonlyMap<number, Staged | Problem>,
  ): Promise<readonly OperationResult[]> {
    const results = new Array<OperationResult | undefined>(operations.length);
    const limit = createLimiter(8);
    try {
      await applyInGroups(operations, limit, async (j) => {
        const op = operations[j]!;
        const path = op.type === 'rename' ? op.from : op.path;
        try {
          results[j] = await this.#applyOne(op, staged.get(j));
        } catch (err) {
          results[j] = {
            ok: false,
            problem: this.#problem(err, path, op.type === 'mkdir' ? 'create folder' : op.type),
          };
        }
      });
    } finally {
      await this.#discardUnused(staged, results);
    }
    return results as OperationResult[];
  }

  /** Renames `from` over `to` (a server refusing to replace gets a delete first). */
  async #replace(c: Client, from: string, to: string): Promise<void> {
    try {
      await c.rename(from, to);
    } catch (err) {
      if (replyCode(err) === undefined) throw err;
      const exists = await c.size(to).then(
        () => true,
        () => false,
      );
      if (!exists) throw err;
      await c.remove(to);
      await c.rename(from, to);
    }
  }

  /** Applies one operation (its write content already staged). */
  async #applyOne(op: Operation, staged: Staged | Problem | undefined): Promise<OperationResult> {
    switch (op.type) {
      case 'write': {
        if (staged === undefined) throw new Error(`bug: write of ${op.path} was not staged`);
        if (!('temp' in staged)) return { ok: false, problem: staged };
        try {
          await this.#s.use((c) => this.#replace(c, staged.temp, this.#abs(op.path)));
        } catch (err) {
          // Refused (or the server went away): the staged copy must not stay on a public server.
          await this.#discard(staged.temp);
          throw err;
        }
        this.#liveTemps.delete(staged.temp);
        return { ok: true, stored: staged.stored };
      }
      case 'mkdir': {
        const unsendable = ftpNameProblem(op.path, this.label);
        if (unsendable !== undefined) return { ok: false, problem: unsendable };
        const abs = this.#abs(op.path);
        await this.#s.use(async (c) => {
          try {
            await c.send(`MKD ${abs}`);
          } catch (err) {
            // Already there (a retry after a lost answer, or made by someone else): fine.
            if (replyCode(err) === undefined) throw err;
            await c.cd(abs).catch(() => {
              throw err;
            });
          }
        });
        this.#knownDirs.add(op.path);
        return { ok: true, stored: { kind: 'directory' } };
      }
      case 'symlink':
        return {
          ok: false,
          problem: {
            path: op.path,
            code: 'symlink-unsupported',
            message: `cannot store the link ${op.path} on ${this.label}: FTP has no symbolic links`,
          },
        };
      case 'chmod':
        return { ok: true, stored: op.expected };
      case 'remove': {
        const abs = this.#abs(op.path);
        if (op.expected.kind !== 'directory') {
          await this.#s.use(async (c) => {
            try {
              await c.remove(abs);
            } catch (err) {
              // Gone already (a retry after a lost answer): fine.
              if (replyCode(err) === undefined) throw err;
              const there = await c.size(abs).then(
                () => true,
                () => false,
              );
              if (there) throw err;
            }
          });
          return { ok: true };
        }
        const problem = await this.#removeFolder(abs, op.path);
        if (problem !== undefined) return { ok: false, problem };
        this.#knownDirs.delete(op.path);
        return { ok: true };
      }
      case 'rename': {
        const unsendable = ftpNameProblem(op.to, this.label);
        if (unsendable !== undefined) return { ok: false, problem: unsendable };
        const from = this.#abs(op.from);
        const to = this.#abs(op.to);
        let mtimeMs = op.expected.kind === 'file' ? op.expected.mtimeMs : 0;
        await this.#s.use(async (c) => {
          await c.rename(from, to);
          if (
            op.mtimeMs !== undefined &&
            op.expected.kind === 'file' &&
            (await this.#setMtime(c, to, op.mtimeMs))
          )
            mtimeMs = Math.floor(op.mtimeMs / 1000) * 1000;
        });
        if (op.expected.kind === 'directory') {
          this.#knownDirs.add(op.to);
          return { ok: true, stored: { kind: 'directory' } };
        }
        return { ok: true, stored: op.expected.kind === 'file' ? { ...op.expected, mtimeMs } : op.expected };
      }
    }
  }

  /** Removes an empty folder (our leftover temporary files inside do not count). */
  async #removeFolder(abs: string, path: string): Promise<Problem | undefined> {
    try {
      await this.#s.use((c) => c.removeEmptyDir(abs));
      return undefined;
    } catch (err) {
      if (replyCode(err) === undefined) throw err;
      let list: FileInfo[];
      try {
        list = await this.#list(abs);
      } catch {
        return undefined; // Gone already.
      }
      const debris = list.filter((f) => isTempName(f.name) && !this.#liveTemps.has(posix.join(abs, f.name)));
      if (debris.length !== list.length)
        return {
          path,
          code: 'not-empty',
          message: `cannot remove ${path} on ${this.label}: the folder is not empty`,
        };
      await this.#s.use(async (c) => {
        for (const f of debris) await c.remove(posix.join(abs, f.name), true);
        await c.removeEmptyDir(abs);
      });
      return undefined;
    }
  }

  /** Closes the connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#s.close();
  }
}
