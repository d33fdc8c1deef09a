/**
 * @module mirrors/path/fastfs-binding
 * Types for Satchel's fast file-system addon (`native/fastfs`): one call lists a whole folder
 * with the stat of its files, one call makes a whole staged copy (see the C file's comment for
 * why). The addon is optional: without it the path replica makes the same calls through Node's
 * fs module, with the same results ({@link listWithNode}; the path replica's own copy steps).
 */
import { constants as fsc, promises as fsp, type Stats } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { loadAddon } from '../../native/addon.js';
import type { Limiter } from './limit.js';
import type { LocalIo } from './local-io.js';

/** One folder as the addon lists it. */
export interface FolderListing {
  /** Entry names in readdir order. */
  readonly names: string[];
  /** {@link LISTING_FIELDS} numbers per entry: kind, mode, size, mtimeMs, ino (files only). */
  readonly info: Float64Array;
  /** Link targets of the symbolic links, in order of appearance. */
  readonly targets: string[];
}

/** Numbers per entry in {@link FolderListing.info}. */
export const LISTING_FIELDS = 5;

/** `info[i * LISTING_FIELDS]`: what the entry is (negative: -errno of a failed fstatat). */
export const enum ListedKind {
  File = 0,
  Directory = 1,
  Symlink = 2,
  Other = 3,
}

/** What a staged copy reports, from fstat of both open descriptors. */
export interface CopyReport {
  readonly sourceSize: number;
  readonly sourceMtimeMs: number;
  /** The source's size, mtime or inode changed while it was copied. */
  readonly sourceMoved: boolean;
  readonly size: number;
  readonly mtimeMs: number;
  readonly mode: number;
  readonly ino: number;
}

/** One file as the addon hashed it (its fstat at open). */
export interface FileHash {
  /** SHA-256 of the content, hex. */
  readonly hash: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly ino: number;
  /** Its size, mtime or inode changed while it was read: the hash is not good. */
  readonly moved: boolean;
}

/**
 * On a local disk (the blocking flavour) files of this size and more are still copied on the
 * thread pool: their copies then run on another core while the main thread copies the small
 * files one after another (measured on 2 cores, 10,000 files / 300 MB: first sync 1.96 s ->
 * 1.53 s median of 6; with every copy on the pool the creates of small files cost more system
 * time than they save).
 */
export const POOL_COPY_FROM_BYTES = 64 * 1024;

/** Numbers per file in the addon's hash results. */
const HASH_FIELDS = 5;

/** A staged copy's arguments, as the addon and {@link FastFs.copy} take them. */
type CopyArgs = [src: string, temp: string, mode: number, mtimeMs: number, flush: boolean];

/** The addon's functions (see `native/fastfs/fastfs.c`). */
interface FastFsBinding {
  listSync(dir: string): FolderListing;
  list(dir: string, callback: (err: Error | null, listing: FolderListing) => void): void;
  copySync(...args: CopyArgs): Float64Array;
  copy(...args: [...CopyArgs, callback: (err: Error | null, out: Float64Array) => void]): void;
  hash(
    paths: readonly string[],
    callback: (err: Error | null, out: Float64Array, digests: Buffer) => void,
  ): void;
  writeNewSync(
    temp: string,
    data: Uint8Array,
    mode: number,
    mtimeMs: number,
    flush: boolean,
    digest: Uint8Array,
  ): Float64Array;
  renameNoReplaceSync(from: string, to: string): void;
  renameNoReplace(from: string, to: string, callback: (err: Error | null) => void): void;
}

/** The folder and copy calls, blocking or through the thread pool. */
export interface FastFs {
  /** Lists folder `dir`; rejects with a Node-style system error (`code`, `syscall`, `path`). */
  list(dir: string): Promise<FolderListing>;
  /**
   * Creates `temp` (never replacing a file), copies `src` into it, sets `mode` (unless negative)
   * and the mtime, fsyncs it when `flush`. On failure nothing is left at `temp`. `size` is the
   * size planned: in the blocking flavour, files from {@link POOL_COPY_FROM_BYTES} are copied on
   * the thread pool all the same.
   */
  copy(...args: [...CopyArgs, size: number]): Promise<CopyReport>;
  /**
   * Hashes the files `paths` on the thread pool (both flavours), one job for the batch; per file
   * its {@link FileHash}, or the errno number that stopped it (EINVAL: not a regular file).
   */
  hash(paths: readonly string[]): Promise<(FileHash | number)[]>;
  /**
   * Creates `temp` (never replacing a file) holding `data`, sets `mode` (unless negative) and the
   * mtime, fsyncs it when `flush`; its stat and, when `hash`, the SHA-256 (hex) of `data`. Blocking in both
   * flavours (for local disks: parallel creates on the thread pool cost more system time than
   * they save). On failure nothing is left at `temp`.
   */
  writeNew(
    temp: string,
    data: Uint8Array,
    mode: number,
    mtimeMs: number,
    flush: boolean,
    hash: boolean,
  ): Promise<{ readonly stat: CopyReport; readonly hash: string | undefined }>;
  /**
   * Renames `from` to `to` unless `to` exists (EEXIST), in one step (renameat2 with
   * RENAME_NOREPLACE); EINVAL (or ENOSYS) where the file system cannot.
   */
  renameNoReplace(from: string, to: string): Promise<void>;
}

function report(out: Float64Array): CopyReport {
  return {
    sourceSize: out[0]!,
    sourceMtimeMs: out[1]!,
    sourceMoved: out[2] === 1,
    size: out[3]!,
    mtimeMs: out[4]!,
    mode: out[5]!,
    ino: out[6]!,
  };
}

function hashesOf(count: number, out: Float64Array, digests: Buffer): (FileHash | number)[] {
  const results = new Array<FileHash | number>(count);
  for (let i = 0; i < count; i++) {
    const at = i * HASH_FIELDS;
    results[i] =
      out[at] !== 0
        ? out[at]!
        : {
            hash: digests.toString('hex', i * 32, i * 32 + 32),
            size: out[at + 1]!,
            mtimeMs: out[at + 2]!,
            ino: out[at + 3]!,
            moved: out[at + 4] === 1,
          };
  }
  return results;
}

/**
 * The addon's calls, `blocking` (on the calling thread: local disks) or through the thread pool
 * (network mounts); undefined when the addon is not available (not built, not Linux).
 */
export function fastFs(blocking: boolean): FastFs | undefined {
  if (process.platform !== 'linux' || process.env.SATCHEL_NO_FASTFS === '1') return undefined;
  const load = loadAddon<FastFsBinding>('fastfs');
  if (!load.ok) return undefined;
  const b = load.binding;
  const digest = Buffer.alloc(32);
  const noDigest = Buffer.alloc(0);
  const writeNew: FastFs['writeNew'] = async (temp, data, mode, mtimeMs, flush, hash) => {
    const stat = report(b.writeNewSync(temp, data, mode, mtimeMs, flush, hash ? digest : noDigest));
    return { stat, hash: hash ? digest.toString('hex') : undefined };
  };
  const hash = (paths: readonly string[]): Promise<(FileHash | number)[]> =>
    new Promise((resolve, reject) =>
      b.hash(paths, (err, out, digests) =>
        err ? reject(err) : resolve(hashesOf(paths.length, out, digests)),
      ),
    );
  const copyOnPool: FastFs['copy'] = (src, temp, mode, mtimeMs, flush) =>
    new Promise((resolve, reject) =>
      b.copy(src, temp, mode, mtimeMs, flush, (err, out) => (err ? reject(err) : resolve(report(out)))),
    );
  if (blocking) {
    return {
      list: async (dir) => b.listSync(dir),
      copy: async (src, temp, mode, mtimeMs, flush, size) =>
        size >= POOL_COPY_FROM_BYTES
          ? copyOnPool(src, temp, mode, mtimeMs, flush, size)
          : report(b.copySync(src, temp, mode, mtimeMs, flush)),
      hash,
      writeNew,
      renameNoReplace: async (from, to) => b.renameNoReplaceSync(from, to),
    };
  }
  return {
    hash,
    writeNew,
    renameNoReplace: (from, to) =>
      new Promise((resolve, reject) => b.renameNoReplace(from, to, (err) => (err ? reject(err) : resolve()))),
    list: (dir) =>
      new Promise((resolve, reject) => b.list(dir, (err, listing) => (err ? reject(err) : resolve(listing)))),
    copy: copyOnPool,
  };
}

/** The positive errno of a Node system error (EIO when it carries none). */
function errnoNumber(err: unknown): number {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.errno === 'number') return Math.abs(e.errno);
  const byName =
    typeof e?.code === 'string' ? (osConstants.errno as Record<string, number>)[e.code] : undefined;
  return byName ?? osConstants.errno.EIO;
}

/**
 * Lists folder `dir` as the addon does, through Node's fs module: readdir, then lstat of each file
 * and readlink of each link, `limit` bounding the calls in flight. For machines without the addon.
 */
export async function listWithNode(io: LocalIo, dir: string, limit: Limiter): Promise<FolderListing> {
  const dirents = await limit(() => io.readdir(dir, { withFileTypes: true }));
  const names = dirents.map((d) => d.name);
  const info = new Float64Array(names.length * LISTING_FIELDS);
  const links = new Array<string | undefined>(names.length);
  await Promise.all(
    dirents.map(async (d, i) => {
      const at = i * LISTING_FIELDS;
      const abs = join(dir, d.name);
      try {
        if (d.isDirectory()) info[at] = ListedKind.Directory;
        else if (d.isSymbolicLink()) {
          links[i] = await limit(() => io.readlink(abs));
          info[at] = ListedKind.Symlink;
        } else if (d.isFile()) {
          const st = await limit(() => io.lstat(abs));
          info[at] = st.isFile() ? ListedKind.File : ListedKind.Other;
          info[at + 1] = st.mode;
          info[at + 2] = st.size;
          info[at + 3] = st.mtimeMs;
          info[at + 4] = st.ino;
        } else info[at] = ListedKind.Other;
      } catch (err) {
        info[at] = -errnoNumber(err);
      }
    }),
  );
  return { names, info, targets: links.filter((t): t is string => t !== undefined) };
}

/**
 * The steps after a staged file's content is written, through Node's fs: its mode (unless
 * negative), its mtime and atime, a flush when `flush`; returns its stat.
 */
export async function settleWithNode(
  io: LocalIo,
  temp: string,
  mode: number,
  mtimeMs: number,
  flush: boolean,
): Promise<Stats> {
  if (mode >= 0) await io.chmod(temp, mode);
  await io.utimes(temp, mtimeMs / 1000, mtimeMs / 1000);
  if (flush) {
    const handle = await fsp.open(temp, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }
  return io.lstat(temp);
}

/**
 * Added to {@link FastFs.copy}'s mode: the copy's group and other bits are capped by the
 * source's, so that a new copy is never more open than its source (a 0600 key stays 0600).
 */
export const MODE_CAP_BY_SOURCE = 0x100000;

/** {@link FastFs.copy} through Node's fs (copyFile, then {@link settleWithNode}), for machines without the addon. */
export function copyWithNode(io: LocalIo): FastFs['copy'] {
  return async (src, temp, mode, mtimeMs, flush) => {
    const before = await io.lstat(src);
    if (!before.isFile()) {
      // As the addon refuses it: opening a named pipe for reading would wait for a writer.
      throw Object.assign(new Error(`EINVAL: not a regular file, open '${src}'`), {
        code: 'EINVAL',
        syscall: 'open',
        path: src,
        source: true,
      });
    }
    if (mode >= MODE_CAP_BY_SOURCE) {
      const m = mode & 0o7777;
      mode = (m & ~0o077) | (m & before.mode & 0o077);
    }
    // copy_file_range where the kernel can: no bytes pass through JavaScript.
    await io.copyFile(src, temp, fsc.COPYFILE_EXCL);
    try {
      const copy = await settleWithNode(io, temp, mode, mtimeMs, flush);
      const after = await io.lstat(src);
      return {
        sourceSize: after.size,
        sourceMtimeMs: after.mtimeMs,
        sourceMoved:
          after.size !== before.size || after.mtimeMs !== before.mtimeMs || after.ino !== before.ino,
        size: copy.size,
        mtimeMs: copy.mtimeMs,
        mode: copy.mode,
        ino: copy.ino,
      };
    } catch (err) {
      await io.rm(temp, { force: true }).catch(() => {});
      throw err;
    }
  };
}
