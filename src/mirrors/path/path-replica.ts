/**
 * @module mirrors/path/path-replica
 * A replica on a local file system: the case itself (role `case`) and path mirrors (a local
 * folder, a USB stick, a mounted share). Writes are atomic for readers and durable before
 * `commit` returns: content is staged as `.satchel-tmp-<hex>` in the target's folder, fsynced
 * (one `syncfs` for a large batch), then renamed over the final name, and every changed folder
 * is fsynced once at the end.
 *
 * In the case, an incoming write first locks the local file (makes it read-only and records it
 * in the {@link LockJournal}) so editors refuse to save over it while the new content is staged;
 * commit re-checks that the file is still what the plan was based on before replacing it.
 */
import { spawn } from 'node:child_process';
import { randomBytes, createHash } from 'node:crypto';
import {
  closeSync,
  createWriteStream,
  open,
  promises as fsp,
  readFileSync,
  type Stats,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Capabilities } from '../../core/capabilities.js';
import type { Entry, FileEntry } from '../../core/entry.js';
import { encodePath } from '../../core/name-encoding.js';
import type { Operation, WriteOperation } from '../../core/plan.js';
import type { Problem } from '../../core/problem.js';
import type {
  ContentSource,
  OperationResult,
  PreparedApply,
  Replica,
  ScanOptions,
  ScanResult,
} from '../../replica/replica.js';
import { applyInGroups, changedSinceScan } from '../../replica/commit-groups.js';
import { SatchelError } from '../../core/errors.js';
import { errnoOf, mayMeanRootGone, problemFromError } from './fs-errors.js';
import { createLimiter } from './limit.js';
import { copyWithNode, fastFs, type FastFs, MODE_CAP_BY_SOURCE, settleWithNode } from './fastfs-binding.js';
import { blockingIo, type LocalIo, threadPoolIo } from './local-io.js';
import { syncDirectory } from './marker.js';
import { isTempName, TEMP_PREFIX } from '../../core/reserved.js';
import { absent, requireRootFolder, scanTree } from './scan-tree.js';

/** How many writes are staged or committed at the same time. */
export const WRITE_PARALLELISM = 8;

/**
 * Where the case records the files it locked, so a crashed process's locks can be undone on
 * the next start (the daemon keeps this journal in its state store).
 */
export interface LockJournal {
  /** `path` was made read-only; `mode` is the permission bits to restore. */
  locked(path: string, mode: number): void;
  /** `path` is no longer locked (its mode was restored, or it was replaced). */
  unlocked(path: string): void;
}

/** How to open a {@link PathReplica}. */
export interface PathReplicaOptions {
  /** The absolute folder the replica lives in. */
  readonly root: string;
  /** A short label for messages: `case`, or the mirror's name. */
  readonly label: string;
  /** What the file system can store (probed when the mirror was added). */
  readonly capabilities: Capabilities;
  /** `case` locks local files before replacing them; `mirror` does not. */
  readonly role: 'case' | 'mirror';
  /** Journal of locked case files (role `case`). */
  readonly locks?: LockJournal;
  /**
   * Make file-system calls synchronously (local disks: much faster, never hang); false keeps
   * them on the thread pool (network mounts, where a slow server must not freeze the daemon).
   * Default: true.
   */
  readonly blockingIo?: boolean;
  /**
   * Use Satchel's native addon (one call per folder listing and per staged copy) when it is
   * built; false makes every call through Node's fs module. Default: true.
   */
  readonly nativeCalls?: boolean;
}

/** The process umask, read without changing it (Node's `process.umask()` getter is deprecated). */
function readUmask(): number {
  try {
    const m = /^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m !== null) return parseInt(m[1]!, 8);
  } catch {
    // Not Linux: fall through to the common default.
  }
  return 0o022;
}

const UMASK = readUmask();

/**
 * Test knob (never set in real use): `SATCHEL_TEST_HOLD_INCOMING_MS` keeps an incoming write to
 * the case pending for that many ms after its content is staged and the local file locked, so
 * end-to-end tests can observe the pending window (read-only file, `status` listing it) and
 * write into it to provoke a conflict, deterministically.
 */
const TEST_HOLD_INCOMING_MS = Math.max(0, Number(process.env.SATCHEL_TEST_HOLD_INCOMING_MS ?? 0) || 0);

/** `mode`'s permission bits with the execute bits set where readable (or all cleared). */
export function withExecutable(mode: number, executable: boolean): number {
  const perm = mode & 0o7777;
  return executable ? perm | ((perm & 0o444) >> 2) : perm & ~0o111;
}

/** Up to this many staged files are fsynced one by one; more are flushed with one syncfs. */
const FSYNC_EACH_UP_TO = 16;

/**
 * Flushes the whole file system holding `dir` to its device (Linux `syncfs`, through coreutils'
 * `sync -f`); falls back to a global `sync` where `-f` is not understood.
 */
async function flushFileSystem(dir: string): Promise<void> {
  const run = (args: string[]): Promise<number | null> =>
    new Promise((resolve) => {
      const child = spawn('sync', args, { stdio: 'ignore' });
      child.on('error', () => resolve(null));
      child.on('exit', (code) => resolve(code));
    });
  if ((await run(['-f', dir])) !== 0 && (await run([])) !== 0) {
    throw new Error(`cannot flush ${dir} to its device: the 'sync' command failed`);
  }
}

/** Bytes free for unprivileged writers on the file system holding `dir`, when it says. */
async function freeSpace(dir: string): Promise<number | undefined> {
  try {
    const st = await fsp.statfs(dir);
    return st.blocks > 0 ? st.bavail * st.bsize : undefined;
  } catch {
    return undefined;
  }
}

/** Random bytes for temporary names, drawn in batches (one call per name cost more than the name). */
let randomPool = Buffer.alloc(0);
let randomAt = 0;

/**
 * The problem of a rename whose target name was taken meanwhile: a problem of `from`, which
 * stays where it is and is what a retry must look at again (a conflict copy's name is then
 * chosen anew).
 */
function existsNow(from: string, to: string, label: string): Problem {
  return {
    path: from,
    code: 'changed-during-sync',
    message: `cannot rename ${from} to ${to} on ${label}: ${to} exists now`,
  };
}

/** A new temporary name in `dir`: the prefix and 8 random bytes in hex. */
function tempName(dir: string): string {
  if (randomAt + 8 > randomPool.length) {
    randomPool = randomBytes(4096);
    randomAt = 0;
  }
  const hex = randomPool.toString('hex', randomAt, randomAt + 8);
  randomAt += 8;
  return join(dir, `${TEMP_PREFIX}${hex}`);
}

async function lstatOrUndefined(file: string, io: LocalIo = threadPoolIo): Promise<Stats | undefined> {
  try {
    return await io.lstat(file);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') return undefined;
    throw err;
  }
}

/** What was written into a staged file: its stat, and the SHA-256 of the bytes written (if asked). */
interface Written {
  readonly stat: StoredStat;
  readonly hash: string | undefined;
}

/**
 * Writes `input` into the new file `temp` (never replacing one) on a local disk, then sets
 * `mode` (unless negative) and the mtime and flushes it when `flush`, hashing it when
 * `settle.hash`. Content in one piece (most files) is written by one call of the addon, which
 * also hashes it; longer streams are created on the thread pool (a create can wait long on a
 * busy disk), then written with blocking calls (a write stream's thread-pool hand-offs cost more
 * than the writes).
 */
async function writeToNewFile(
  input: Readable,
  temp: string,
  settle: {
    readonly mode: number;
    readonly mtimeMs: number;
    readonly flush: boolean;
    readonly hash: boolean;
  },
  fast: FastFs | undefined,
): Promise<Written> {
  const chunks = (input as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  const first = await chunks.next();
  const second = first.done === true ? first : await chunks.next();
  const data = first.done === true ? Buffer.alloc(0) : first.value;
  if (fast !== undefined && second.done === true && data instanceof Uint8Array) {
    return fast.writeNew(temp, data, settle.mode, settle.mtimeMs, settle.flush, settle.hash);
  }
  const hasher = settle.hash ? createHash('sha256') : undefined;
  const fd = await new Promise<number>((resolve, reject) =>
    open(temp, 'wx', 0o666, (err, opened) => (err === null ? resolve(opened) : reject(err))),
  );
  try {
    const write = (chunk: Buffer): void => {
      hasher?.update(chunk);
      for (let at = 0; at < chunk.length;) at += writeSync(fd, chunk, at);
    };
    if (first.done !== true) write(first.value);
    if (second.done !== true) {
      write(second.value);
      for (let next = await chunks.next(); next.done !== true; next = await chunks.next()) write(next.value);
    }
  } finally {
    closeSync(fd);
  }
  const stat = await settleWithNode(blockingIo, temp, settle.mode, settle.mtimeMs, settle.flush);
  return { stat, hash: hasher?.digest('hex') };
}

/** A locked case file: the mode to restore. */
interface Lock {
  readonly mode: number;
}

/** The content of one write, staged and waiting for commit. */
interface Staged {
  readonly temp: string;
  readonly lock: Lock | undefined;
  /** The staged file's stat once its mode and times were set (a rename keeps them). */
  readonly stat: StoredStat;
}

/** What the path replica needs of a stored file's stat. */
type StoredStat = Pick<Stats, 'mode' | 'size' | 'mtimeMs'>;

/** A replica on a local (or locally mounted) file system. */
export class PathReplica implements Replica {
  readonly label: string;
  readonly capabilities: Capabilities;
  readonly content: ContentSource;
  readonly #root: string;
  readonly #role: 'case' | 'mirror';
  readonly #locks: LockJournal | undefined;
  readonly #io: LocalIo;
  /** The native calls (folder listings, staged copies), when the addon is built. */
  readonly #fast: FastFs | undefined;
  /** The file system takes renames that never replace (until one is refused with EINVAL). */
  #noReplace = true;
  /** A staged copy of a local file: the addon's one call, or the same steps through Node's fs. */
  readonly #copyLocal: FastFs['copy'];
  /** Temporary files staged by this object and not yet committed or discarded. */
  readonly #liveTemps = new Set<string>();

  constructor(options: PathReplicaOptions) {
    this.#io = options.blockingIo === false ? threadPoolIo : blockingIo;
    this.#fast = options.nativeCalls === false ? undefined : fastFs(options.blockingIo !== false);
    this.#copyLocal = this.#fast?.copy ?? copyWithNode(this.#io);
    this.label = options.label;
    this.capabilities = options.capabilities;
    this.#root = options.root;
    this.#role = options.role;
    this.#locks = options.locks;
    this.content = {
      open: async (path: string): Promise<Readable> => {
        const handle = await fsp.open(this.#abs(path), 'r');
        return handle.createReadStream();
      },
      localFile: (path: string) => this.#abs(path),
      unchanged: async (path: string, entry: FileEntry) => {
        const st = await lstatOrUndefined(this.#abs(path), this.#io);
        return st !== undefined && st.isFile() && st.size === entry.size && st.mtimeMs === entry.mtimeMs;
      },
    };
  }

  /** The absolute stored name of `path`. */
  #abs(path: string): string {
    return join(this.#root, encodePath(path, this.capabilities));
  }

  /** The problem for a name this file system cannot hold, if `path` has one. */
  #nameProblem(path: string): Problem | undefined {
    const encoded = encodePath(path, this.capabilities);
    const tooLong = encoded.split('/').find((s) => s.length > this.capabilities.maxNameLength);
    if (tooLong === undefined) return undefined;
    return {
      path,
      code: 'name-not-storable',
      message: `cannot store ${path} on ${this.label}: the name is longer than ${this.capabilities.maxNameLength} characters`,
    };
  }

  /** Throws `mirror-absent` if `err` came from the storage disappearing. */
  async #rethrowIfGone(err: unknown): Promise<void> {
    if (errnoOf(err) === 'ENOTCONN' || errnoOf(err) === 'ENODEV')
      throw absent(this.#root, this.label, errnoOf(err)!, err);
    if (mayMeanRootGone(err)) await requireRootFolder(this.#root, this.label);
  }

  /** Lists the tree; see {@link scanTree}. */
  async scan(options: ScanOptions): Promise<ScanResult> {
    return scanTree(this.label, {
      ...options,
      root: this.#root,
      capabilities: this.capabilities,
      liveTemps: this.#liveTemps,
      io: this.#io,
      fast: this.#fast ?? false,
    });
  }

  /** Stages every write's content beside its target; see the module comment. */
  async prepare(
    operations: readonly Operation[],
    source: ContentSource,
    signal?: AbortSignal,
  ): Promise<PreparedApply> {
    await requireRootFolder(this.#root, this.label);
    const staged = new Map<number, Staged | Problem>();
    // Folders do not appear during staging (only temporary files do): look each one up once.
    const folders = new Map<string, Promise<string>>();
    const limit = createLimiter(WRITE_PARALLELISM);
    const writes = operations.filter((op) => op.type === 'write').length;
    // Many files: flush them all with one syncfs at the end instead of one fsync each (the
    // guarantee is the same: every staged file is on the device before any is renamed in).
    const flushEach = writes <= FSYNC_EACH_UP_TO;
    const settled = await Promise.allSettled(
      operations.map(async (op, i) => {
        if (op.type !== 'write') return;
        signal?.throwIfAborted();
        staged.set(i, await limit(() => this.#stage(op, source, flushEach, folders)));
      }),
    );
    if (!flushEach && settled.every((r) => r.status === 'fulfilled')) await flushFileSystem(this.#root);
    const failure = settled.find((r) => r.status === 'rejected');
    if (failure !== undefined) {
      // Every staging has finished by now, so nothing is left behind.
      await this.#discardUnused(operations, staged, []);
      throw failure.reason;
    }
    let finished = false;
    const finish = (what: string): void => {
      if (finished) throw new Error(`bug: ${what} after the prepared apply was finished`);
      finished = true;
    };
    return {
      commit: async () => {
        finish('commit');
        return this.#commit(operations, staged);
      },
      abort: async () => {
        if (finished) return;
        finished = true;
        await this.#discardUnused(operations, staged, []);
      },
    };
  }

  /**
   * Applies the operations in order, each after re-checking its expected state; consecutive
   * writes to distinct paths run in parallel (none depends on another). Then fsyncs every
   * changed folder once.
   */
  async #commit(
    operations: readonly Operation[],
    staged: ReadonlyMap<number, Staged | Problem>,
  ): Promise<readonly OperationResult[]> {
    const results: (OperationResult | undefined)[] = new Array<OperationResult | undefined>(
      operations.length,
    );
    const changed = new Set<string>();
    const limit = createLimiter(WRITE_PARALLELISM);
    try {
      await applyInGroups(operations, limit, async (j) => {
        const op = operations[j]!;
        try {
          results[j] = await this.#applyOne(op, staged.get(j), changed);
        } catch (err) {
          // The operation found the storage gone (mirror-absent): the whole commit stops.
          if (err instanceof SatchelError) throw err;
          // Trouble outside the operation itself (the expected-state check, reading back what was stored).
          await this.#rethrowIfGone(err);
          const path = op.type === 'rename' ? op.from : op.path;
          results[j] = { ok: false, problem: problemFromError(err, { path, action: `check ${path}` }) };
        }
      });
      await this.#syncFolders(changed);
    } finally {
      // Staged files of operations never reached (a thrown error) must not stay behind.
      await this.#discardUnused(operations, staged, results);
    }
    return results as OperationResult[];
  }

  /** Stages one write, returning its temporary file or the problem that stopped it. */
  async #stage(
    op: WriteOperation,
    source: ContentSource,
    flush: boolean,
    folders: Map<string, Promise<string>>,
  ): Promise<Staged | Problem> {
    const nameProblem = this.#nameProblem(op.path);
    if (nameProblem !== undefined) return nameProblem;
    if (op.entry.size > this.capabilities.maxFileSize) {
      return {
        path: op.path,
        code: 'too-large',
        message: `cannot store ${op.path} on ${this.label}: ${op.entry.size} bytes is over the limit of ${this.capabilities.maxFileSize}`,
      };
    }
    const target = this.#abs(op.path);
    let temp: string | undefined;
    let lock: Lock | undefined;
    let local: string | undefined;
    try {
      // A mirror's new file needs no look at the target: should one have appeared since the
      // scan, the expected-state check at commit refuses to replace it.
      const existing =
        this.#role === 'mirror' && op.expected === undefined
          ? undefined
          : await lstatOrUndefined(target, this.#io);
      const baseMode = existing?.isFile() === true ? existing.mode & 0o7777 : 0o666 & ~UMASK;
      if (this.#role === 'case' && existing?.isFile() === true) {
        // Lock: editors refuse to save over a read-only file while the new content is staged.
        // Journal first: a kill right after the chmod must still find the lock to undo.
        this.#locks?.locked(op.path, baseMode);
        lock = { mode: baseMode };
        await this.#io.chmod(target, baseMode & ~0o222);
      }
      const dir = dirname(target);
      let folder = folders.get(dir);
      if (folder === undefined) {
        folder = this.#nearestExistingFolder(dir);
        folders.set(dir, folder);
      }
      temp = tempName(await folder);
      this.#liveTemps.add(temp);
      const mode = this.capabilities.executableBit ? withExecutable(baseMode, op.entry.executable) : -1;
      local = source.localFile(op.from.path);
      const from = op.from.entry;
      // A new file is no more open to group and others than its source (where the copy sees it).
      const capped = existing === undefined && mode >= 0 ? mode + MODE_CAP_BY_SOURCE : mode;
      let stat: StoredStat | undefined;
      if (local !== undefined) {
        // One call (native where built): copy, mode, mtime, flush and the stats of both files.
        const r = await this.#copyLocal(local, temp, capped, op.entry.mtimeMs, flush, from.size);
        const moved = r.sourceMoved || r.sourceSize !== from.size || r.sourceMtimeMs !== from.mtimeMs;
        if (!moved) stat = r;
      } else {
        stat = await this.#copyFromSource(op, source, temp, { mode, capped }, flush);
      }
      if (stat === undefined || stat.size !== from.size) {
        await this.#discard(temp, op.path, lock);
        return this.#movedDuringCopy(op);
      }
      if (lock !== undefined && TEST_HOLD_INCOMING_MS > 0)
        await new Promise((resolve) => setTimeout(resolve, TEST_HOLD_INCOMING_MS));
      return { temp, lock, stat };
    } catch (err) {
      await this.#rethrowIfGone(err);
      if (temp !== undefined || lock !== undefined) await this.#discard(temp, op.path, lock);
      // The file read: the case file of a local copy, or what an addon's copy names as its source.
      const sourceFile =
        local ??
        ((err as { source?: unknown }).source === true ? (err as NodeJS.ErrnoException).path : undefined);
      // The source was renamed or deleted since the scan (an editor's temporary file, a checkout).
      if (
        errnoOf(err) === 'ENOENT' &&
        sourceFile !== undefined &&
        (await lstatOrUndefined(sourceFile, this.#io)) === undefined
      )
        return this.#movedDuringCopy(op);
      // The file read could not be (made unreadable since the scan): not the mirror's fault.
      // (Node's copyFile names its source in `path` for every error: it also has `dest`.)
      const e = err as NodeJS.ErrnoException & { dest?: string };
      const reading = sourceFile !== undefined && e.path === sourceFile && e.dest === undefined;
      const freeBytes = errnoOf(err) === 'ENOSPC' ? await freeSpace(this.#root) : undefined;
      return problemFromError(err, {
        path: op.path,
        action: reading ? 'read' : 'write',
        bytes: op.entry.size,
        ...(freeBytes === undefined ? {} : { freeBytes }),
      });
    }
  }

  /** The problem of a write whose source changed while it was copied. */
  #movedDuringCopy(op: WriteOperation): Problem {
    return {
      path: op.path,
      code: 'changed-during-sync',
      message: `${op.from.path} changed or went away while it was copied to ${this.label}; it is picked up by the next sync`,
    };
  }

  /**
   * Writes the content of `op.from` (a source without a local file) into `temp`: in one native
   * call where the source offers it for a local disk ({@link ContentSource.writeLocalCopy}),
   * else streamed; its stat, or undefined when the content is not what the plan expected.
   */
  async #copyFromSource(
    op: WriteOperation,
    source: ContentSource,
    temp: string,
    modes: { readonly mode: number; readonly capped: number },
    flush: boolean,
  ): Promise<StoredStat | undefined> {
    const direct =
      this.#io === blockingIo && this.#fast !== undefined
        ? source.writeLocalCopy?.(op.from.path, op.from.entry, temp, {
            mode: modes.capped,
            mtimeMs: op.entry.mtimeMs,
            flush,
          })
        : undefined;
    // A stream does not show its source's mode: no cap there.
    if (direct === undefined) return this.#copyStream(op, source, temp, modes.mode, flush);
    const stat = await direct;
    return (await source.unchanged(op.from.path, op.from.entry)) ? stat : undefined;
  }

  /**
   * Streams the content of `op.from` (a source without a local file) into `temp`, hashing it,
   * and settles it (mode unless negative, mtime, flush); its stat, or undefined when the content
   * is not what the plan expected or the source moved meanwhile. The copy's size is checked by
   * the caller.
   */
  async #copyStream(
    op: WriteOperation,
    source: ContentSource,
    temp: string,
    mode: number,
    flush: boolean,
  ): Promise<StoredStat | undefined> {
    const input = await source.open(op.from.path, op.from.entry);
    // A source that vouches for its streams reports any difference through `unchanged`.
    const hash = source.vouchesForStreams !== true;
    const settle = { mode, mtimeMs: op.entry.mtimeMs, flush, hash };
    let written: Written;
    if (this.#io === blockingIo) {
      written = await writeToNewFile(input, temp, settle, this.#fast);
    } else {
      const hasher = hash ? createHash('sha256') : undefined;
      await pipeline(
        input,
        async function* (chunks: AsyncIterable<Buffer>) {
          for await (const chunk of chunks) {
            hasher?.update(chunk);
            yield chunk;
          }
        },
        createWriteStream(temp, { flags: 'wx' }),
      );
      const stat = await settleWithNode(this.#io, temp, mode, op.entry.mtimeMs, flush);
      written = { stat, hash: hasher?.digest('hex') };
    }
    if (hash && written.hash !== op.from.entry.hash) return undefined;
    return (await source.unchanged(op.from.path, op.from.entry)) ? written.stat : undefined;
  }

  /** The folder `dir`, or its nearest ancestor within the root that exists (same file system). */
  async #nearestExistingFolder(dir: string): Promise<string> {
    let d = dir;
    for (;;) {
      const st = await lstatOrUndefined(d, this.#io);
      if (st?.isDirectory() === true) return d;
      const rel = relative(this.#root, d);
      if (rel === '' || rel.startsWith('..')) return this.#root;
      d = dirname(d);
    }
  }

  /** Deletes a staged file and undoes the lock taken for it. Never throws. */
  async #discard(temp: string | undefined, path: string, lock: Lock | undefined): Promise<void> {
    if (temp !== undefined) {
      await this.#io.rm(temp, { force: true }).catch(() => {});
      this.#liveTemps.delete(temp);
    }
    if (lock !== undefined) await this.#unlock(path, lock);
  }

  /** Restores a locked case file's mode, unless someone replaced it or changed its mode since. */
  async #unlock(path: string, lock: Lock): Promise<void> {
    const file = this.#abs(path);
    try {
      const st = await lstatOrUndefined(file, this.#io);
      if (st?.isFile() === true && (st.mode & 0o7777) === (lock.mode & ~0o222))
        await this.#io.chmod(file, lock.mode);
    } catch {
      // The journal keeps the lock; the daemon restores it on its next start.
      return;
    }
    this.#locks?.unlocked(path);
  }

  /**
   * Renames staged `temp` over `target` if `target` still holds `expected`; false (nothing
   * renamed) when it does not. A new file (`expected` absent) goes in with one rename that never
   * replaces, where the file system has it: a file someone creates at `target` meanwhile is kept,
   * not overwritten, and no lstat is needed first.
   */
  async #renameIn(temp: string, target: string, expected: Entry | undefined): Promise<boolean> {
    if (expected === undefined && this.#fast !== undefined && this.#noReplace) {
      try {
        await this.#fast.renameNoReplace(temp, target);
        return true;
      } catch (err) {
        const code = errnoOf(err);
        if (code === 'EEXIST') return false;
        if (code !== 'EINVAL' && code !== 'ENOSYS' && code !== 'EOPNOTSUPP' && code !== 'ENOTSUP') throw err;
        // This file system cannot: check, then rename, from now on.
        this.#noReplace = false;
      }
    }
    if (!(await this.#holds(target, expected))) return false;
    await this.#io.rename(temp, target);
    return true;
  }

  /** Whether `file` holds what `expected` says (absent when undefined). */
  async #holds(file: string, expected: Entry | undefined): Promise<boolean> {
    const st = await lstatOrUndefined(file, this.#io);
    if (expected === undefined || st === undefined) return expected === st;
    switch (expected.kind) {
      case 'file':
        return st.isFile() && st.size === expected.size && st.mtimeMs === expected.mtimeMs;
      case 'directory':
        return st.isDirectory();
      case 'symlink':
        return st.isSymbolicLink() && (await this.#io.readlink(file)) === expected.target;
    }
  }

  /** The entry now stored at `path`, with `hash` for files (content is not re-read). */
  async #stored(path: string, hash: string | undefined): Promise<Entry | undefined> {
    const file = this.#abs(path);
    const st = await lstatOrUndefined(file, this.#io);
    if (st === undefined) return undefined;
    if (st.isDirectory()) return { kind: 'directory' };
    if (st.isSymbolicLink()) return { kind: 'symlink', target: await this.#io.readlink(file) };
    if (hash === undefined) throw new Error(`bug: no hash for stored file ${path}`);
    return this.#fileEntry(st, hash);
  }

  /** The entry of a stored file with stat `st` and content `hash`. */
  #fileEntry(st: StoredStat, hash: string): Entry {
    const executable = this.capabilities.executableBit && (st.mode & 0o100) !== 0;
    return { kind: 'file', size: st.size, mtimeMs: st.mtimeMs, executable, hash };
  }

  /** Applies one operation (its write content already staged); see {@link PathApply}. */
  async #applyOne(
    op: Operation,
    staged: Staged | Problem | undefined,
    changed: Set<string>,
  ): Promise<OperationResult> {
    const path = op.type === 'rename' ? op.from : op.path;
    const target = this.#abs(path);
    const moved = (): OperationResult => changedSinceScan(path, this.label);
    if (op.type === 'write') {
      if (staged === undefined) throw new Error(`bug: write of ${op.path} was not staged`);
      if (!('temp' in staged)) return { ok: false, problem: staged };
      try {
        if (!(await this.#renameIn(staged.temp, target, op.expected))) {
          await this.#discard(staged.temp, op.path, staged.lock);
          return moved();
        }
      } catch (err) {
        await this.#rethrowIfGone(err);
        await this.#discard(staged.temp, op.path, staged.lock);
        return { ok: false, problem: problemFromError(err, { path, action: 'write', creatingName: true }) };
      }
      this.#liveTemps.delete(staged.temp);
      if (staged.lock !== undefined) this.#locks?.unlocked(op.path);
      changed.add(dirname(staged.temp)).add(dirname(target));
      // The file renamed in is the staged one: its stat (mode, size, mtime) is what is stored now.
      return { ok: true, stored: this.#fileEntry(staged.stat, op.entry.hash) };
    }
    const nameProblem = op.type === 'rename' ? this.#nameProblem(op.to) : this.#nameProblem(op.path);
    if (nameProblem !== undefined) return { ok: false, problem: nameProblem };
    if (op.type === 'symlink' && !this.capabilities.symlinks) {
      return {
        ok: false,
        problem: {
          path,
          code: 'symlink-unsupported',
          message: `cannot store the symbolic link ${path} on ${this.label}: its file system has no links`,
        },
      };
    }
    if (!(await this.#holds(target, op.expected))) return moved();
    const action =
      op.type === 'rename' ? `rename to ${op.to}` : op.type === 'mkdir' ? 'create folder' : op.type;
    try {
      switch (op.type) {
        case 'mkdir':
          await this.#io.mkdir(target);
          changed.add(dirname(target));
          return { ok: true, stored: { kind: 'directory' } };
        case 'symlink': {
          const temp = tempName(dirname(target));
          await this.#io.symlink(op.target, temp);
          try {
            await this.#io.rename(temp, target);
          } catch (err) {
            await this.#io.rm(temp, { force: true });
            throw err;
          }
          changed.add(dirname(target));
          return { ok: true, stored: { kind: 'symlink', target: op.target } };
        }
        case 'chmod':
          if (this.capabilities.executableBit) {
            await this.#io.chmod(target, withExecutable((await this.#io.lstat(target)).mode, op.executable));
          }
          return { ok: true, stored: await this.#stored(path, op.expected.hash) };
        case 'remove':
          if (op.expected.kind === 'directory') await this.#removeFolder(target);
          else await this.#io.unlink(target);
          changed.add(dirname(target));
          return { ok: true };
        case 'rename': {
          const dest = this.#abs(op.to);
          if (op.respell === true) {
            if (!(await this.#respell(target, dest)))
              return { ok: false, problem: existsNow(op.from, op.to, this.label) };
            changed.add(dirname(dest));
            const hash = op.expected.kind === 'file' ? op.expected.hash : undefined;
            return { ok: true, stored: await this.#stored(op.to, hash) };
          }
          const there = await lstatOrUndefined(dest, this.#io);
          // Renames only go to absent paths; a case-only rename on a case-insensitive file system finds itself.
          if (there !== undefined && there.ino !== (await this.#io.lstat(target)).ino)
            return { ok: false, problem: existsNow(op.from, op.to, this.label) };
          await this.#io.rename(target, dest);
          if (op.mtimeMs !== undefined) {
            const t = new Date(op.mtimeMs);
            await this.#io.utimes(dest, t, t);
          }
          changed.add(dirname(target)).add(dirname(dest));
          const hash = op.expected.kind === 'file' ? op.expected.hash : undefined;
          return { ok: true, stored: await this.#stored(op.to, hash) };
        }
      }
    } catch (err) {
      await this.#rethrowIfGone(err);
      const creatingName = op.type === 'mkdir' || op.type === 'symlink' || op.type === 'rename';
      return { ok: false, problem: problemFromError(err, { path, action, creatingName }) };
    }
  }

  /**
   * Changes the letter case of a name: `from` and `to` differ only in it. A case-insensitive
   * driver takes one rename (exFAT, SMB) or ignores a rename onto the same name (it finds
   * itself): then through an intermediate name that stays visible, so that a crash between the
   * two renames leaves an ordinary name (replicated like any other), never debris to sweep. On
   * a case-sensitive file system `to` may be another file: false, nothing replaced.
   */
  async #respell(from: string, to: string): Promise<boolean> {
    const there = await lstatOrUndefined(to, this.#io);
    if (there !== undefined && this.capabilities.caseSensitive) return false;
    if (there === undefined) return this.#renameIn(from, to, undefined);
    await this.#io.rename(from, to);
    if ((await this.#io.readdirNames(dirname(to))).includes(basename(to))) return true;
    const between = `${to}.satchel-renaming`;
    if (!(await this.#renameIn(from, between, undefined))) return false;
    if (await this.#renameIn(between, to, undefined)) return true;
    await this.#io.rename(between, from);
    return false;
  }

  /** Removes an empty folder; leftover temporary files of ours inside do not count. */
  async #removeFolder(dir: string): Promise<void> {
    try {
      await this.#io.rmdir(dir);
    } catch (err) {
      if (errnoOf(err) !== 'ENOTEMPTY' && errnoOf(err) !== 'EEXIST') throw err;
      const names = await this.#io.readdirNames(dir);
      const debris = names.filter((n) => isTempName(n) && !this.#liveTemps.has(join(dir, n)));
      if (debris.length !== names.length) throw err;
      for (const n of debris) await this.#io.rm(join(dir, n), { recursive: true, force: true });
      await this.#io.rmdir(dir);
    }
  }

  /** Discards every staged write whose operation has no result (all of them for an abort). */
  async #discardUnused(
    operations: readonly Operation[],
    staged: ReadonlyMap<number, Staged | Problem>,
    results: readonly (OperationResult | undefined)[],
  ): Promise<void> {
    for (const [i, s] of staged) {
      if (results[i] === undefined && 'temp' in s)
        await this.#discard(
          s.temp,
          operations[i]!.type === 'write' ? (operations[i] as WriteOperation).path : '',
          s.lock,
        );
    }
  }

  /** Makes the changed folders durable, each once. */
  async #syncFolders(dirs: ReadonlySet<string>): Promise<void> {
    // Many folders: one syncfs costs one journal commit instead of one per folder.
    if (dirs.size > FSYNC_EACH_UP_TO) {
      try {
        await flushFileSystem(this.#root);
      } catch (err) {
        await this.#rethrowIfGone(err);
        throw err;
      }
      return;
    }
    for (const dir of dirs) {
      try {
        await syncDirectory(dir);
      } catch (err) {
        await this.#rethrowIfGone(err);
        // A folder that vanished since (renamed by a later operation) needs no sync under this name.
        if (errnoOf(err) !== 'ENOENT') throw err;
      }
    }
  }

  /** Nothing to release: every call opens and closes its own handles. */
  async close(): Promise<void> {}
}
