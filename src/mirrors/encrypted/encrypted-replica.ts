/**
 * @module mirrors/encrypted/encrypted-replica
 * A decorator that stores names and contents encrypted, in rclone's `crypt` format (see
 * `crypt.ts`), on any inner {@link Replica} (a path mirror: a folder, a stick, a mounted share),
 * in the manner of syncthing's `encryptedModel`. The inner replica keeps doing what it does
 * best (atomic staging, expected-state checks, fsync, mtimes); this layer only translates:
 *
 * - scan: stored names are decrypted (a name that does not decrypt is a per-path problem, and a
 *   folder with such a name is not entered); sizes are the plaintext sizes; hashes are the
 *   plaintext's, from the cache (keyed by plaintext path, checked against the stored size and
 *   mtime) or by decrypting — and so authenticating — the whole file.
 * - reads (`content.open`) decrypt and authenticate every chunk before it is passed on and
 *   check the total length: a tampered file fails the read with a message naming it, so the
 *   reader (the case's staging) turns it into a per-path problem and nothing of it lands.
 * - writes: the inner replica's `prepare` gets a content source that encrypts the outer one on
 *   the fly; renames and removes are the inner's, on encrypted names.
 *
 * Satchel's own files (the marker `.satchel-mirror`, temporary `.satchel-tmp-*`) stay in clear
 * at the inner root: rclone lists them as names that do not decrypt and skips them.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Capabilities } from '../../core/capabilities.js';
import { isSatchelInternal } from '../../core/reserved.js';
import { comparePaths, type Entry, type FileEntry, type Snapshot } from '../../core/entry.js';
import type { Operation, WriteOperation } from '../../core/plan.js';
import type { Problem } from '../../core/problem.js';
import type {
  CachedHash,
  ContentSource,
  OperationResult,
  PreparedApply,
  Replica,
  ScanOptions,
  ScanResult,
} from '../../replica/replica.js';
import {
  CHUNK_BYTES,
  CryptError,
  decryptedSize,
  decryptStream,
  encryptedSize,
  encryptFile,
  encryptFileTo,
  encryptStream,
  hashDecrypted,
  maxPlainNameBytes,
  NameCipher,
  type CryptKeys,
} from './crypt.js';
import { createLimiter } from '../path/limit.js';

/** How many files a scan decrypts at once to hash them. */
const DECRYPT_PARALLELISM = 4;

/** How to open an {@link EncryptedReplica}. */
export interface EncryptedReplicaOptions {
  /** The replica that stores the encrypted names and contents. */
  readonly inner: Replica;
  /** Keys derived from the passphrase (see `deriveKeys`). */
  readonly keys: CryptKeys;
}

/** What the encrypted layer can store, given what the inner storage can. */
export function encryptedCapabilities(inner: Capabilities): Capabilities {
  const overhead = encryptedSize(inner.maxFileSize) - inner.maxFileSize;
  return {
    ...inner,
    // rclone's crypt has no links.
    symlinks: false,
    // Stored names are lower-case base32hex: any name, in any case, is storable as such.
    caseSensitive: true,
    forbiddenChars: '',
    forbidsTrailingDotOrSpace: false,
    maxFileSize:
      inner.maxFileSize >= Number.MAX_SAFE_INTEGER / 2
        ? inner.maxFileSize
        : (decryptedSize(inner.maxFileSize) ?? inner.maxFileSize - overhead),
    maxNameLength: maxPlainNameBytes(inner.maxNameLength),
  };
}

/** Replaces every mention of a stored path in an inner message by the real one. */
function reword(message: string, stored: string, real: string): string {
  return stored === real ? message : message.split(stored).join(real);
}

/** The entry of a damaged stored file (plaintext size, stored mtime), for the case's version to replace. */
function damagedEntry(path: string, stored: FileEntry, size: number): FileEntry {
  return {
    kind: 'file',
    size,
    mtimeMs: stored.mtimeMs,
    executable: stored.executable,
    hash: `damaged:${path}`,
  };
}

/** A replica storing everything encrypted on an inner one; see the module comment. */
export class EncryptedReplica implements Replica {
  readonly label: string;
  readonly capabilities: Capabilities;
  readonly content: ContentSource;
  readonly #inner: Replica;
  readonly #keys: CryptKeys;
  readonly #names: NameCipher;

  constructor(options: EncryptedReplicaOptions) {
    this.#inner = options.inner;
    this.#keys = options.keys;
    this.#names = new NameCipher(options.keys);
    this.label = options.inner.label;
    this.capabilities = encryptedCapabilities(options.inner.capabilities);
    this.content = {
      open: async (path: string, entry: FileEntry): Promise<Readable> => {
        const stored = this.#names.encryptPath(path);
        const input = await this.#inner.content.open(stored, this.#storedEntry(entry));
        return Readable.from(decryptStream(input, this.#keys, `${path} on ${this.label}`, entry.size));
      },
      localFile: () => undefined,
      unchanged: (path: string, entry: FileEntry) =>
        this.#inner.content.unchanged(this.#names.encryptPath(path), this.#storedEntry(entry)),
    };
  }

  /** `entry` as the inner replica stores it (files: the encrypted size). */
  #storedEntry<E extends Entry>(entry: E): E {
    return entry.kind === 'file' ? { ...entry, size: encryptedSize(entry.size) } : entry;
  }

  /** The problem for a name whose encrypted form is too long for the inner storage. */
  #nameProblem(path: string): Problem | undefined {
    const max = this.#inner.capabilities.maxNameLength;
    const tooLong = path.split('/').find((s) => this.#names.encryptSegment(s).length > max);
    if (tooLong === undefined) return undefined;
    return {
      path,
      code: 'name-not-storable',
      message: `cannot store ${path} on ${this.label}: the encrypted name of "${tooLong}" is longer than the ${max} characters its file system allows (keep names under ${this.capabilities.maxNameLength} bytes)`,
    };
  }

  /** Scans the inner replica and decrypts what it found; see the module comment. */
  async scan(options: ScanOptions): Promise<ScanResult> {
    const problems: Problem[] = [];
    /** Inner path → the plaintext hash handed to the inner scan through its cache. */
    const handedOut = new Map<string, string>();
    /** Inner path → what the outer cache said about it (asked once per path). */
    const lookedUp = new Map<string, CachedHash | undefined>();
    const undecryptable = (stored: string, isDirectory: boolean): void => {
      const slash = stored.lastIndexOf('/');
      const parent = slash < 0 ? '' : this.#names.decryptPath(stored.slice(0, slash));
      const name = stored.slice(slash + 1);
      const path = parent === '' || parent === undefined ? name : `${parent}/${name}`;
      problems.push({
        path,
        code: 'unreadable',
        message: `cannot read ${isDirectory ? 'the folder' : 'the file'} ${path} on ${this.label}: its name does not decrypt with this passphrase (written with another one, or damaged); left alone`,
      });
    };
    const innerResult = await this.#inner.scan({
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.recentAfterMs === undefined ? {} : { recentAfterMs: options.recentAfterMs }),
      ...(options.scope === undefined ? {} : { scope: options.scope.map((p) => this.#names.encryptPath(p)) }),
      cache: {
        get: (stored: string): CachedHash | undefined => {
          const path = this.#names.decryptPath(stored);
          const cached = path === undefined ? undefined : options.cache.get(path);
          lookedUp.set(stored, cached);
          if (cached === undefined) return undefined;
          handedOut.set(stored, cached.hash);
          return { ...cached, size: encryptedSize(cached.size) };
        },
      },
      ignore: (stored: string, isDirectory: boolean): boolean => {
        const path = this.#names.decryptPath(stored);
        if (path === undefined) {
          undecryptable(stored, isDirectory);
          return true;
        }
        // Satchel's own names below the root (another case's state) are stored encrypted.
        return isSatchelInternal(path) || options.ignore(path, isDirectory);
      },
    });

    const snapshot = new Map<string, Entry>();
    const hashes = new Map<string, CachedHash>();
    const limit = createLimiter(DECRYPT_PARALLELISM);
    const work: Promise<void>[] = [];
    for (const [stored, entry] of innerResult.snapshot) {
      const path = this.#names.decryptPath(stored);
      if (path === undefined) {
        // Only reachable when the inner scan did not consult `ignore` (a scope path).
        undecryptable(stored, entry.kind === 'directory');
        continue;
      }
      if (entry.kind === 'directory') {
        snapshot.set(path, entry);
        continue;
      }
      if (entry.kind === 'symlink') {
        problems.push({
          path,
          code: 'symlink-unsupported',
          message: `${path} on ${this.label} is a symbolic link, which an encrypted mirror does not hold; left alone`,
        });
        continue;
      }
      const size = decryptedSize(entry.size);
      if (size === undefined) {
        problems.push({
          path,
          code: 'unreadable',
          message: `cannot read ${path} on ${this.label}: its stored size (${entry.size} bytes) is not that of an encrypted file (truncated or damaged); left alone`,
        });
        continue;
      }
      const before = lookedUp.has(stored) ? lookedUp.get(stored) : options.cache.get(path);
      if (
        before !== undefined &&
        before.mtimeMs === entry.mtimeMs &&
        size < before.size &&
        size % CHUNK_BYTES === 0
      ) {
        // rclone's format does not authenticate a file's length: a file cut at a chunk boundary
        // still decrypts. Shorter with the same modification time is no edit anyone made.
        problems.push({
          path,
          code: 'unreadable',
          message: `cannot read ${path} on ${this.label}: it is ${before.size - size} bytes shorter than when it was last seen, with the same modification time (cut off?)`,
          damaged: damagedEntry(path, entry, size),
        });
        continue;
      }
      const innerHash = innerResult.hashes.get(stored);
      const record = (hash: string): void => {
        snapshot.set(path, { ...entry, size, hash });
        hashes.set(path, {
          size,
          mtimeMs: entry.mtimeMs,
          ...(innerHash?.ino === undefined ? {} : { ino: innerHash.ino }),
          hash,
        });
      };
      if (handedOut.get(stored) === entry.hash) {
        // The inner scan trusted the cache: size and mtime are as when the plaintext was hashed.
        record(entry.hash);
        continue;
      }
      work.push(
        limit(async () => {
          try {
            const input = await this.#inner.content.open(stored, entry);
            record(await hashDecrypted(input, this.#keys, `${path} on ${this.label}`, size));
          } catch (err) {
            const damaged = err instanceof CryptError;
            problems.push({
              path,
              code: 'unreadable',
              message: `cannot read ${path}: ${err instanceof Error ? err.message : String(err)}${damaged ? '' : '; left alone'}`,
              // Content that fails authentication is nobody's: the case's version may replace it.
              ...(damaged ? { damaged: damagedEntry(path, entry, size) } : {}),
            });
          }
        }),
      );
    }
    await Promise.all(work);
    for (const q of innerResult.problems) {
      const path = this.#names.decryptPath(q.path) ?? q.path;
      problems.push({ ...q, path, message: reword(q.message, q.path, path) });
    }
    const sorted: Snapshot = new Map([...snapshot].sort(([a], [b]) => comparePaths(a, b)));
    return { snapshot: sorted, hashes, problems };
  }

  /** The case path of a stored (encrypted) path; see {@link Replica.casePathOf}. */
  casePathOf(stored: string): string | undefined {
    return this.#names.decryptPath(stored);
  }

  /** Translates the operations to encrypted names and stages them through the inner replica. */
  async prepare(
    operations: readonly Operation[],
    source: ContentSource,
    signal?: AbortSignal,
  ): Promise<PreparedApply> {
    /** Results decided here (names that cannot be stored), by outer index. */
    const early = new Map<number, OperationResult>();
    /** Outer index of each inner operation. */
    const outerIndex: number[] = [];
    const innerOps: Operation[] = [];
    const encrypting = new EncryptingSource(source, this.#keys);
    operations.forEach((op, i) => {
      const problem = this.#problemOf(op);
      if (problem !== undefined) {
        early.set(i, { ok: false, problem });
        return;
      }
      outerIndex.push(i);
      innerOps.push(this.#innerOperation(op, encrypting));
    });
    const prepared = await this.#inner.prepare(innerOps, encrypting, signal);
    return {
      commit: async () => {
        const innerResults = await prepared.commit();
        const results: OperationResult[] = operations.map((_, i) => early.get(i)!);
        innerResults.forEach((r, j) => {
          const i = outerIndex[j]!;
          results[i] = this.#outerResult(operations[i]!, innerOps[j]!, r);
        });
        return results;
      },
      abort: () => prepared.abort(),
    };
  }

  /** A problem decided before the inner replica sees `op`, if any. */
  #problemOf(op: Operation): Problem | undefined {
    if (op.type === 'symlink') {
      return {
        path: op.path,
        code: 'symlink-unsupported',
        message: `cannot store the symbolic link ${op.path} on ${this.label}: an encrypted mirror holds no links`,
      };
    }
    if (op.type === 'write' || op.type === 'mkdir') return this.#nameProblem(op.path);
    if (op.type === 'rename') return this.#nameProblem(op.to);
    return undefined;
  }

  /** `op` on encrypted names and stored sizes. */
  #innerOperation(op: Operation, encrypting: EncryptingSource): Operation {
    const enc = (p: string): string => this.#names.encryptPath(p);
    const expected = <E extends Entry | undefined>(e: E): E =>
      (e === undefined ? e : this.#storedEntry(e as Entry)) as E;
    switch (op.type) {
      case 'mkdir':
        return { ...op, path: enc(op.path) };
      case 'write':
        return {
          type: 'write',
          path: enc(op.path),
          // The plaintext hash: the inner replica reports it back as the stored entry's hash.
          entry: this.#storedEntry(op.entry),
          from: { side: op.from.side, path: op.from.path, entry: encrypting.ref(op) },
          expected: expected(op.expected),
        };
      case 'chmod':
        return { ...op, path: enc(op.path), expected: expected(op.expected) };
      case 'remove':
        return { ...op, path: enc(op.path), expected: expected(op.expected) };
      case 'rename':
        return { ...op, from: enc(op.from), to: enc(op.to), expected: expected(op.expected) };
      case 'symlink':
        throw new Error('bug: symbolic links are refused before they reach the inner replica');
    }
  }

  /** The inner result of `innerOp` in the case's terms. */
  #outerResult(op: Operation, innerOp: Operation, r: OperationResult): OperationResult {
    if (!r.ok) {
      const storedPath = innerOp.type === 'rename' ? innerOp.from : innerOp.path;
      const realPath = op.type === 'rename' ? op.from : op.path;
      const path =
        r.problem.path === storedPath ? realPath : (this.#names.decryptPath(r.problem.path) ?? realPath);
      let message = reword(r.problem.message, storedPath, realPath);
      if (innerOp.type === 'rename' && op.type === 'rename') message = reword(message, innerOp.to, op.to);
      return { ok: false, problem: { ...r.problem, path, message } };
    }
    const stored = r.stored;
    if (stored?.kind !== 'file') return r;
    const size = decryptedSize(stored.size);
    return { ok: true, stored: { ...stored, size: size ?? stored.size } };
  }

  async close(): Promise<void> {
    await this.#inner.close();
  }
}

/** A write's content as the inner replica sees it: encrypted, its hash known once produced. */
interface EncryptedRef {
  /** The outer operation's source entry (plaintext). */
  readonly plain: FileEntry;
  /**
   * The final ciphertext hash, {@link SEALED_FROM_CHECKED_FILE}, or {@link SOURCE_CHANGED} when
   * the plaintext was not the planned one.
   */
  result: string | undefined;
  /** The plaintext was read from a local file whose size and mtime matched the plan throughout. */
  checked?: boolean;
}

/**
 * What an {@link EncryptedRef} holds instead of a hash for a copy sealed in one native job from a
 * local file that matched the plan throughout (see {@link EncryptingSource.writeLocalCopy}).
 */
const SEALED_FROM_CHECKED_FILE = 'sealed from a local file that matched the plan (not hashed)';

/** What an {@link EncryptedRef} holds instead of a hash when the plaintext read was not the planned one. */
const SOURCE_CHANGED = 'the source changed while it was read';

/**
 * The content source handed to the inner replica: reads the outer source and encrypts on the
 * way. The inner replica checks a copied file's size and hash against `from.entry`; the size of
 * the ciphertext is known in advance, its hash (random nonce) only once produced, so each
 * write's `from.entry` reports its `hash` through a getter that is final when the stream ends.
 * A source that changed under the read makes the ciphertext hash mismatch and `unchanged`
 * false, which the inner replica reports as `changed-during-sync` (the source vouches for its
 * streams, so the inner replica does not hash them again): a local source file (the case) is checked as the
 * plain mirror checks its copies (bytes read against the planned size here, size and mtime
 * after the copy by the inner replica); a streamed source is hashed against the planned hash.
 * For a local file and a local inner disk, `writeLocalCopy` does the whole copy in one native
 * job (read, seal, write, settle), which also compares the source's fstat with the plan.
 */
class EncryptingSource implements ContentSource {
  readonly #outer: ContentSource;
  readonly #keys: CryptKeys;
  readonly #refs = new WeakMap<FileEntry, EncryptedRef>();

  constructor(outer: ContentSource, keys: CryptKeys) {
    this.#outer = outer;
    this.#keys = keys;
  }

  /** The inner `from.entry` of the outer write `op`. */
  ref(op: WriteOperation): FileEntry {
    const state: EncryptedRef = { plain: op.from.entry, result: undefined };
    const entry: FileEntry = {
      kind: 'file',
      size: encryptedSize(op.from.entry.size),
      mtimeMs: op.from.entry.mtimeMs,
      executable: op.from.entry.executable,
      get hash(): string {
        return state.result ?? 'pending: not all of the content was encrypted yet';
      },
    };
    this.#refs.set(entry, state);
    return entry;
  }

  #state(entry: FileEntry): EncryptedRef {
    const state = this.#refs.get(entry);
    if (state === undefined)
      throw new Error('bug: the encrypted source was asked for a file it did not plan');
    return state;
  }

  async open(path: string, entry: FileEntry): Promise<Readable> {
    const state = this.#state(entry);
    const keys = this.#keys;
    const planned = state.plain;
    const local = this.#outer.localFile(path);
    if (local !== undefined) {
      // A local file (the case): read straight into the cipher's buffers, the ciphertext hashed
      // where it is sealed. The plaintext is not hashed again: as for the plain mirror's file
      // copy, the size read here and the inner replica's `unchanged` check (size and mtime,
      // after the copy) tell a file that changed.
      return Readable.from(
        (async function* (): AsyncGenerator<Buffer> {
          const sealed = encryptFile(local, keys, planned.size);
          let step = await sealed.next();
          while (step.done !== true) {
            yield step.value;
            step = await sealed.next();
          }
          state.result = step.value.plainBytes === planned.size ? step.value.hash : SOURCE_CHANGED;
        })(),
      );
    }
    const input = await this.#outer.open(path, planned);
    const plainHash = createHash('sha256');
    let plainBytes = 0;
    const counted = (async function* (): AsyncGenerator<Buffer> {
      for await (const chunk of input as AsyncIterable<Buffer>) {
        plainHash.update(chunk);
        plainBytes += chunk.length;
        yield chunk;
      }
    })();
    const cipherHash = createHash('sha256');
    return Readable.from(
      (async function* (): AsyncGenerator<Buffer> {
        for await (const chunk of encryptStream(counted, keys, undefined, planned.size)) {
          cipherHash.update(chunk);
          yield chunk;
        }
        const same = plainBytes === planned.size && plainHash.digest('hex') === planned.hash;
        state.result = same ? cipherHash.digest('hex') : SOURCE_CHANGED;
      })(),
    );
  }

  writeLocalCopy(
    path: string,
    entry: FileEntry,
    temp: string,
    settle: { readonly mode: number; readonly mtimeMs: number; readonly flush: boolean },
  ): Promise<{ readonly size: number; readonly mtimeMs: number; readonly mode: number }> | undefined {
    const state = this.#state(entry);
    const planned = state.plain;
    const local = this.#outer.localFile(path);
    if (local === undefined) return undefined;
    // One native job reads, seals and writes (on the thread pool for larger files), and compares
    // the source's fstat before and after with the plan, as the plain mirror's copy does. The
    // copy is not hashed: nothing compares a vouched-for copy's ciphertext hash (the stored
    // entry carries the plaintext hash), and the fstat comparison is the check.
    const job = encryptFileTo(local, temp, this.#keys, planned.size, settle);
    return job?.then((copy) => {
      const same =
        copy.plainBytes === planned.size &&
        !copy.sourceMoved &&
        copy.sourceSize === planned.size &&
        copy.sourceMtimeMs === planned.mtimeMs;
      state.result = same ? SEALED_FROM_CHECKED_FILE : SOURCE_CHANGED;
      state.checked = same;
      return copy.stat;
    });
  }

  localFile(): string | undefined {
    return undefined;
  }

  /** The ciphertext hash is computed here from the very bytes the stream yields. */
  readonly vouchesForStreams = true;

  async unchanged(path: string, entry: FileEntry): Promise<boolean> {
    const state = this.#state(entry);
    if (state.result === undefined || state.result === SOURCE_CHANGED) return false;
    return state.checked === true || this.#outer.unchanged(path, state.plain);
  }
}
