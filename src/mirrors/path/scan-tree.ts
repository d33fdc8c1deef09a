/**
 * @module mirrors/path/scan-tree
 * Walks a local folder tree into a snapshot, one folder listing at a time (the fastfs addon's,
 * or readdir + lstat + readlink through Node's fs without it), content hashes reused from the
 * previous scan's cache when size, mtime and inode match; on local disks the addon hashes new
 * files in batches on the thread pool while the walk goes on (hash-batches.ts). At most
 * {@link SCAN_PARALLELISM} file-system calls run at once. Names are decoded to the case's
 * spelling; Satchel's own files are left out and leftover temporary files (crash debris) are
 * deleted. Fifos, sockets and devices are skipped silently.
 */
import { createHash } from 'node:crypto';
import { closeSync, createReadStream, openSync, promises as fsp, readSync, type Stats } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Capabilities } from '../../core/capabilities.js';
import {
  ancestorsOf,
  baseName,
  comparePaths,
  type Entry,
  parentPath,
  type Snapshot,
} from '../../core/entry.js';
import { foldKey } from '../../core/case-folding.js';
import { normalizeScope } from '../../core/scope.js';
import { SatchelError } from '../../core/errors.js';
import { decodeSegment, encodePath } from '../../core/name-encoding.js';
import { notUtf8Message, type Problem, specialFileMessage } from '../../core/problem.js';
import type { CachedHash, ScanOptions, ScanResult } from '../../replica/replica.js';
import { constants as osConstants } from 'node:os';
import {
  fastFs,
  type FastFs,
  type FolderListing,
  LISTING_FIELDS,
  ListedKind,
  listWithNode,
} from './fastfs-binding.js';
import { errnoOf } from './fs-errors.js';
import { hashInBatches } from './hash-batches.js';
import { createLimiter, type Limiter } from './limit.js';
import { blockingIo, type LocalIo, threadPoolIo } from './local-io.js';
import { isSatchelInternal, isTempName, MARKER_NAME } from '../../core/reserved.js';

/** How many file-system calls a scan keeps in flight. */
export const SCAN_PARALLELISM = 32;

/** How many times a file that keeps changing while it is hashed is read before giving up. */
export const HASH_ATTEMPTS = 3;

/** Files up to this size are hashed from one read; larger ones are streamed. */
const SMALL_FILE_BYTES = 1024 * 1024;

/** Errors that mean the storage itself went away rather than one path. */
const GONE_ERRNOS = new Set(['ENOTCONN', 'ENODEV', 'ESTALE']);

/** What {@link scanTree} needs besides the scan options. */
export interface ScanTreeOptions extends ScanOptions {
  /** The absolute folder to scan. */
  readonly root: string;
  readonly capabilities: Capabilities;
  /** Absolute names of temporary files this process is using right now (not debris). */
  readonly liveTemps: ReadonlySet<string>;
  /** How to make file-system calls (default: through the thread pool). */
  readonly io?: LocalIo;
  /**
   * Native folder listings (one call per folder, with the stat of every file), or `false` to
   * list through `io`. Default: the addon's, blocking when `io` is, when it is built.
   */
  readonly fast?: FastFs | false;
}

/** The part of a file's stat a scan uses. */
interface FileStat {
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
  readonly mode: number;
}

/** One buffer for every blocking read of a hash: no allocation (and no garbage) per file. */
const hashBuffer = Buffer.allocUnsafe(SMALL_FILE_BYTES);

/** The SHA-256 of `file` read with blocking calls into {@link hashBuffer} (local disks). */
function hashFileBlocking(file: string): string {
  const hash = createHash('sha256');
  const fd = openSync(file, 'r');
  try {
    for (;;) {
      const n = readSync(fd, hashBuffer, 0, hashBuffer.length, null);
      if (n === 0) break;
      hash.update(hashBuffer.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return hash.digest('hex');
}

/** The lower-case hex SHA-256 of the file at `file`. */
export async function hashFile(file: string, size?: number, io: LocalIo = threadPoolIo): Promise<string> {
  if (io === blockingIo) return hashFileBlocking(file);
  const hash = createHash('sha256');
  if (size !== undefined && size <= SMALL_FILE_BYTES) {
    hash.update(await io.readFile(file));
  } else {
    await pipeline(createReadStream(file, { highWaterMark: SMALL_FILE_BYTES }), hash);
  }
  return hash.digest('hex');
}

/** Throws `mirror-absent` unless `root` is an existing, reachable folder. */
export async function requireRootFolder(root: string, label: string): Promise<void> {
  let st: Stats;
  try {
    st = await fsp.stat(root);
  } catch (err) {
    throw absent(root, label, errnoOf(err) ?? String(err), err);
  }
  if (!st.isDirectory()) throw absent(root, label, 'not a folder', undefined);
}

/** The error for a root that is missing or unreachable. */
export function absent(root: string, label: string, why: string, cause: unknown): SatchelError {
  return new SatchelError('mirror-absent', `${label} at ${root} is not available (${why})`, {
    hint: 'plug the drive back in or mount the share; nothing was changed',
    data: { root },
    cause,
  });
}

async function exists(file: string): Promise<boolean> {
  try {
    await fsp.lstat(file);
    return true;
  } catch {
    return false;
  }
}

/** The errno names by number (`2` → `ENOENT`). */
const ERRNO_NAMES = new Map(Object.entries(osConstants.errno).map(([name, n]) => [n, name]));

/** The name of errno `n`, as Node's errors carry it in `code`. */
function osErrorName(n: number): string {
  return ERRNO_NAMES.get(n) ?? `E${n}`;
}

/**
 * `entries` as a snapshot in {@link comparePaths} order, by a walk of `children` (sibling paths
 * share their prefix, so a plain sort of each folder's few children orders them): much cheaper
 * than sorting all paths with a comparator.
 */
function inPathOrder(entries: ReadonlyMap<string, Entry>, children: ReadonlyMap<string, string[]>): Snapshot {
  const ordered = new Map<string, Entry>();
  const emit = (dir: string): void => {
    const kids = children.get(dir);
    if (kids === undefined) return;
    kids.sort();
    for (const p of kids) {
      ordered.set(p, entries.get(p)!);
      emit(p);
    }
  };
  emit('');
  // Every entry's folder is listed before it; should one not be, sort the whole map instead.
  if (ordered.size !== entries.size) return new Map([...entries].sort(([x], [y]) => comparePaths(x, y)));
  return ordered;
}

/** Scans the tree below `options.root`; see the module comment. */
export async function scanTree(label: string, options: ScanTreeOptions): Promise<ScanResult> {
  const { root, capabilities: caps, cache, ignore, recentAfterMs, signal, liveTemps } = options;
  const io = options.io ?? threadPoolIo;
  const fast = options.fast === false ? undefined : (options.fast ?? fastFs(io === blockingIo));
  await requireRootFolder(root, label);
  const hadMarker = await exists(join(root, MARKER_NAME));
  const hashLimit = createLimiter(SCAN_PARALLELISM);
  // Local disks: new files are hashed in batches on the thread pool while the walk goes on.
  const batched = fast !== undefined && io === blockingIo ? hashInBatches(fast.hash) : undefined;
  // Blocking calls run one at a time by nature: bounding them would only add promises per call.
  // Hashing stays bounded either way (large files are streamed, holding a buffer each).
  const limit: Limiter = io === blockingIo ? (task) => task() : hashLimit;
  const entries = new Map<string, Entry>();
  /** Child paths by parent path: the snapshot is emitted in order from it, without a full sort. */
  const children = new Map<string, string[]>();
  const add = (path: string, entry: Entry): void => {
    if (!entries.has(path)) {
      const parent = parentPath(path);
      const siblings = children.get(parent);
      if (siblings === undefined) children.set(parent, [path]);
      else siblings.push(path);
    }
    entries.set(path, entry);
  };
  const hashes = new Map<string, CachedHash>();
  const problems: Problem[] = [];

  /** Records trouble with one path; throws when it means the whole storage is gone. */
  const failed = (path: string, err: unknown, action: string): void => {
    const errno = errnoOf(err);
    if (errno !== undefined && GONE_ERRNOS.has(errno)) throw absent(root, label, errno, err);
    // A path that vanished since it was listed is simply gone (the next scan confirms it).
    if (errno === 'ENOENT') return;
    const reason = err instanceof Error ? err.message : String(err);
    problems.push({ path, code: 'unreadable', message: `cannot ${action} ${path}: ${reason}` });
  };

  const scanFile = async (path: string, abs: string, listed?: FileStat): Promise<void> => {
    for (let attempt = 0; attempt < HASH_ATTEMPTS; attempt++) {
      const lstat = attempt === 0 && listed !== undefined ? undefined : await limit(() => io.lstat(abs));
      if (lstat !== undefined && !lstat.isFile()) {
        problems.push({
          path,
          code: 'changed-during-sync',
          message: `${path} changed kind while it was scanned`,
        });
        return;
      }
      const st: FileStat = lstat ?? listed!;
      const cached = cache.get(path);
      const trusted = recentAfterMs === undefined || st.mtimeMs < recentAfterMs;
      let hash: string;
      if (
        trusted &&
        cached !== undefined &&
        cached.size === st.size &&
        cached.mtimeMs === st.mtimeMs &&
        (cached.ino === undefined || cached.ino === st.ino)
      ) {
        hash = cached.hash;
      } else if (batched !== undefined && lstat === undefined) {
        // As listed: the addon hashes it on the thread pool. Anything unexpected (an error, a
        // file that moved or differs from its listing) is looked at again below, one by one.
        const r = await batched(abs, st.size);
        if (
          typeof r === 'number' ||
          r.moved ||
          r.size !== st.size ||
          r.mtimeMs !== st.mtimeMs ||
          r.ino !== st.ino
        )
          continue;
        hash = r.hash;
      } else {
        hash = await hashLimit(() => hashFile(abs, st.size, io));
        const after = await limit(() => io.lstat(abs));
        // The hash is only good if the file did not move while it was read.
        if (after.size !== st.size || after.mtimeMs !== st.mtimeMs || after.ino !== st.ino) continue;
      }
      const executable = caps.executableBit && (st.mode & 0o100) !== 0;
      add(path, { kind: 'file', size: st.size, mtimeMs: st.mtimeMs, executable, hash });
      hashes.set(path, { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino, hash });
      return;
    }
    problems.push({
      path,
      code: 'changed-during-sync',
      message: `${path} kept changing while it was read (${HASH_ATTEMPTS} attempts); it is picked up by the next sync`,
    });
  };

  /** Visits the `i`-th entry of `listing`, the folder `parentAbs` (case path `parent`). */
  const visitListed = async (
    parent: string,
    parentAbs: string,
    listing: FolderListing,
    i: number,
    target: string | undefined,
  ): Promise<void> => {
    signal?.throwIfAborted();
    const raw = listing.names[i]!;
    // The parent is already normalized and a listed name has no slash: no join() needed.
    const abs = parentAbs.endsWith('/') ? parentAbs + raw : `${parentAbs}/${raw}`;
    if (isTempName(raw)) {
      // Crash debris: a staged file or probe folder of a process that did not finish.
      if (!liveTemps.has(abs))
        await limit(() => io.rm(abs, { recursive: true, force: true })).catch(() => {});
      return;
    }
    const name = decodeSegment(raw, caps);
    const path = parent === '' ? name : `${parent}/${name}`;
    if (
      raw.includes('\ufffd') &&
      !(await limit(() => io.lstat(abs)).then(
        () => true,
        () => false,
      ))
    ) {
      // Bytes that are not UTF-8 were listed as U+FFFD: the name cannot be reached as listed.
      problems.push({
        path,
        code: 'unreadable',
        message: notUtf8Message(path),
      });
      return;
    }
    if (isSatchelInternal(path)) return;
    const at = i * LISTING_FIELDS;
    const kind = listing.info[at]!;
    try {
      if (kind === ListedKind.Directory) {
        if (!ignore(path, true)) await walk(path, abs);
      } else if (kind === ListedKind.Symlink) {
        if (!ignore(path, false)) add(path, { kind: 'symlink', target: target! });
      } else if (kind === ListedKind.File) {
        if (!ignore(path, false)) {
          const info = listing.info;
          await scanFile(path, abs, {
            mode: info[at + 1]!,
            size: info[at + 2]!,
            mtimeMs: info[at + 3]!,
            ino: info[at + 4]!,
          });
        }
      } else if (kind < 0) {
        // The entry could not be examined: the same trouble as a failed lstat of it.
        const code = osErrorName(-kind);
        failed(path, Object.assign(new Error(`${code}: cannot examine ${abs}`), { code }), 'read');
      } else if (!ignore(path, false)) {
        // Anything else (fifo, socket, device) is not replicated: said, and left alone.
        problems.push({
          path,
          code: 'special-file',
          message: specialFileMessage(path, await limit(() => io.lstat(abs))),
        });
      }
    } catch (err) {
      if (err instanceof SatchelError) throw err;
      failed(path, err, kind === ListedKind.Directory ? 'read folder' : 'read');
    }
  };

  const walk = async (path: string, abs: string): Promise<void> => {
    const listing = fast !== undefined ? await fast.list(abs) : await listWithNode(io, abs, limit);
    // The folder is listed only once it could be read: an unreadable one is a problem, not an entry.
    if (path !== '') add(path, { kind: 'directory' });
    const pending: Promise<void>[] = [];
    let link = 0;
    for (let i = 0; i < listing.names.length; i++) {
      const target =
        listing.info[i * LISTING_FIELDS] === ListedKind.Symlink ? listing.targets[link++] : undefined;
      pending.push(visitListed(path, abs, listing, i, target));
    }
    await Promise.all(pending);
  };

  /** Each folder's names (decoded) as a case-insensitive replica stores them, listed once per scan. */
  const storedNames = new Map<string, Promise<string[] | undefined>>();
  /**
   * The spelling under which a case-insensitive replica stores `name` in the folder `parent`
   * (stored spelling): the same name if it is there, else the first equal under folding;
   * undefined when there is none. A path looked up by name would answer under the asked spelling.
   */
  const storedSpelling = async (parent: string, name: string): Promise<string | undefined> => {
    let names = storedNames.get(parent);
    if (names === undefined) {
      const abs = join(root, encodePath(parent, caps));
      names = limit(() => io.readdirNames(abs)).then(
        (raw) => raw.map((n) => decodeSegment(n, caps)),
        (err: unknown) => {
          if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'ENOTDIR') failed(parent, err, 'read folder');
          return undefined;
        },
      );
      storedNames.set(parent, names);
    }
    const listed = await names;
    if (listed === undefined || listed.includes(name)) return listed === undefined ? undefined : name;
    const key = foldKey(name);
    return listed.find((n) => !isTempName(n) && foldKey(n) === key);
  };

  /** Whether the folder of `abs` lists its name (decoded, U+FFFD and all) though it cannot be opened by it. */
  const listedButUnreachable = async (abs: string): Promise<boolean> => {
    const names = await limit(() => io.readdirNames(dirname(abs))).catch(() => [] as string[]);
    return names.includes(basename(abs));
  };

  /** A scoped scan: each scope path's subtree, after the folders above it (see core/scope.ts). */
  const walkScope = async (scope: readonly string[]): Promise<void> => {
    for (const target of scope) {
      if (isSatchelInternal(target)) continue;
      let stored = '';
      for (const asked of [...ancestorsOf(target), target]) {
        // A case-insensitive replica is walked under its own spelling of each name.
        let dir = asked;
        if (!caps.caseSensitive) {
          const name = await storedSpelling(stored, baseName(asked));
          if (name === undefined) break;
          dir = stored = stored === '' ? name : `${stored}/${name}`;
        }
        if (entries.has(dir)) continue;
        const abs = join(root, encodePath(dir, caps));
        let st: Stats;
        try {
          st = await limit(() => io.lstat(abs));
        } catch (err) {
          if (errnoOf(err) !== 'ENOENT' && errnoOf(err) !== 'ENOTDIR') failed(dir, err, 'read');
          // A name listed with U+FFFD for bytes that are not UTF-8 cannot be reached as listed.
          else if (dir.includes('\ufffd') && (await listedButUnreachable(abs)))
            problems.push({ path: dir, code: 'unreadable', message: notUtf8Message(dir) });
          break;
        }
        const isDir = st.isDirectory();
        if (ignore(dir, isDir)) break;
        try {
          if (isDir && asked === target) await walk(dir, abs);
          else if (isDir) add(dir, { kind: 'directory' });
          else if (st.isSymbolicLink()) add(dir, { kind: 'symlink', target: await io.readlink(abs) });
          else if (st.isFile()) await scanFile(dir, abs);
          // Anything else (fifo, socket, device) is not replicated: said, and left alone.
          else problems.push({ path: dir, code: 'special-file', message: specialFileMessage(dir, st) });
        } catch (err) {
          if (err instanceof SatchelError) throw err;
          failed(dir, err, isDir ? 'read folder' : 'read');
        }
        if (!isDir) break;
      }
    }
  };

  try {
    const scope = options.scope === undefined ? undefined : normalizeScope(options.scope);
    if (scope === undefined || scope[0] === '') await walk('', root);
    else await walkScope(scope);
  } catch (err) {
    if (err instanceof SatchelError) throw err;
    throw absent(root, label, errnoOf(err) ?? String(err), err);
  }
  // A root that vanished or lost its marker mid-scan (unmounted) must not look like "all deleted".
  await requireRootFolder(root, label);
  if (hadMarker && !(await exists(join(root, MARKER_NAME))))
    throw absent(root, label, 'marker vanished', undefined);

  return { snapshot: inPathOrder(entries, children), hashes, problems };
}
