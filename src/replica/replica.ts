/**
 * @module replica/replica
 * The one narrow port every storage kind implements: the case itself, path mirrors (local
 * folders, sticks, mounted shares), and later SFTP, FTP, encrypted and peer mirrors.
 *
 * Contract (the shared suite in `contract.ts` checks it for every kind):
 * - Names in and out are the case's real names; a replica that must store a name differently
 *   encodes it on the way out and decodes it on the way in.
 * - `scan` never reports Satchel's own files: the marker `.satchel-mirror`, the case's
 *   `.satchel/` folder and temporary files `.satchel-tmp-*` (left over ones are deleted).
 * - Changes happen in two phases so that every content source is read before anything
 *   changes on either side: `prepare` stages the content of every write under a temporary name
 *   (and verifies the source did not move while it was read); `commit` then applies the
 *   operations in order, re-checking each operation's `expected` state right before it, makes
 *   them durable (fsync of files and folders) and reports per operation.
 * - After a thrown error the replica is dead except for `close()`. Per-path trouble is never
 *   thrown: it comes back as a {@link Problem}.
 */
import type { Readable } from 'node:stream';
import type { Capabilities } from '../core/capabilities.js';
import type { Entry, FileEntry, Snapshot } from '../core/entry.js';
import type { Operation } from '../core/plan.js';
import type { Problem } from '../core/problem.js';

/** A previously computed content hash, reusable while size and mtime (and inode) are unchanged. */
export interface CachedHash {
  readonly size: number;
  readonly mtimeMs: number;
  /** Inode number where the storage has one; a change forces a re-hash. */
  readonly ino?: number;
  readonly hash: string;
}

/** Read access to the hashes computed by the previous scan of the same replica. */
export interface HashCache {
  get(path: string): CachedHash | undefined;
}

/** Options of {@link Replica.scan}. */
export interface ScanOptions {
  /** Hashes from the previous scan; files whose size, mtime and inode match are not re-read. */
  readonly cache: HashCache;
  /** Paths to leave out (the case's ignore rules); a left-out directory is not descended into. */
  readonly ignore: (path: string, isDirectory: boolean) => boolean;
  /**
   * Modification times at or after this instant (ms since the epoch) are too recent to trust a
   * cached hash for (a same-size write within the timestamp granularity would go unnoticed).
   */
  readonly recentAfterMs?: number;
  readonly signal?: AbortSignal;
  /**
   * Scoped scan (the daemon's fast path): only these paths, each with everything below it, plus
   * the folders above them. Absent = the whole replica. See `core/scope.ts`.
   */
  readonly scope?: readonly string[];
}

/**
 * Something a scan noticed that is worth telling the user but is no trouble: unlike a
 * {@link Problem}, a noticed path is not left alone; it is reconciled like any other.
 */
export interface ScanNotice {
  /** The path in the case's spelling. */
  readonly path: string;
  /**
   * `drift`: a push-only mirror's file was changed on the storage by someone else (it no longer
   * matches what Satchel wrote there); the case's version replaces it.
   */
  readonly code: 'drift';
  /** Human-readable, one line. */
  readonly message: string;
}

/** What a scan found. */
export interface ScanResult {
  readonly snapshot: Snapshot;
  /** Hash-cache entries for every file of the snapshot (to store for the next scan). */
  readonly hashes: ReadonlyMap<string, CachedHash>;
  readonly problems: readonly Problem[];
  /** Things noticed that are no trouble (drift), in path order; absent = none. */
  readonly notices?: readonly ScanNotice[];
}

/** Read access to one replica's files, used as the content source of another replica's writes. */
export interface ContentSource {
  /** Opens `path`, which the caller believes holds `entry`. */
  open(path: string, entry: FileEntry): Promise<Readable>;
  /** An absolute local file name holding `path`, when there is one (lets copies use copy_file_range). */
  localFile(path: string): string | undefined;
  /** Whether `path` still holds `entry` (size and mtime), checked after reading it. */
  unchanged(path: string, entry: FileEntry): Promise<boolean>;
  /**
   * Writes the stored form of `path` (which the caller believes holds `entry`) straight into the
   * new local file `temp` (never replacing one), settled as asked, in one native call, where the
   * source can (an encrypting source over a local file): faster than {@link open}'s stream. Its
   * size, mtime and mode once settled; `undefined` (not a promise) when the source cannot, and
   * the caller then streams {@link open}. The outcome is checked as for a stream: the entry's
   * `hash` and {@link unchanged}. On failure nothing is left at `temp`; an error about the file
   * read carries `source: true` and names it in `path`. `settle.mode` may hold
   * MODE_CAP_BY_SOURCE (`mirrors/path/fastfs-binding.ts`), as the path replica's own copies do.
   */
  writeLocalCopy?(
    path: string,
    entry: FileEntry,
    temp: string,
    settle: { readonly mode: number; readonly mtimeMs: number; readonly flush: boolean },
  ): Promise<{ readonly size: number; readonly mtimeMs: number; readonly mode: number }> | undefined;
  /**
   * True when the source vouches for its streams: `open` yields exactly the bytes the entry's
   * `hash` was computed from (by the source itself, final once the stream ended), and
   * `unchanged` is false whenever the content read was not the planned one. A reader then need
   * not hash the stream again. Absent (false) for sources that pass content through.
   */
  readonly vouchesForStreams?: boolean;
}

/** The outcome of one operation of a commit. */
export type OperationResult =
  | {
      readonly ok: true;
      /** The entry as now stored at the operation's path (mtime as the storage kept it), if any. */
      readonly stored?: Entry;
    }
  | { readonly ok: false; readonly problem: Problem };

/** Content staged by {@link Replica.prepare}, waiting to be committed. */
export interface PreparedApply {
  /** Applies the operations in order; `results[i]` belongs to `operations[i]`. */
  commit(): Promise<readonly OperationResult[]>;
  /** Discards everything staged (restoring any locked file's mode). */
  abort(): Promise<void>;
}

/** One storage location taking part in replication. */
export interface Replica {
  /** A short label for messages: `case`, or the mirror's name. */
  readonly label: string;
  readonly capabilities: Capabilities;
  /** Lists every path with its entry, hashing only files the cache cannot vouch for. */
  scan(options: ScanOptions): Promise<ScanResult>;
  /** Read access to this replica's content. */
  readonly content: ContentSource;
  /** Stages the content of every `write` in `operations`, reading it from `source`. */
  prepare(
    operations: readonly Operation[],
    source: ContentSource,
    signal?: AbortSignal,
  ): Promise<PreparedApply>;
  /** Releases connections and handles. */
  close(): Promise<void>;
  /**
   * For a replica that stores names other than the case's (an encrypted mirror): the case path
   * of a path as stored (as a watcher of the storage reports it); undefined when it is not one
   * this replica wrote (it does not decrypt). Absent where stored names are the case's own.
   */
  casePathOf?(stored: string): string | undefined;
}
