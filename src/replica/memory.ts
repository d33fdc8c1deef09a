/**
 * @module replica/memory
 * An in-memory {@link Replica} for tests, with knobs for the situations real storage produces
 * only with effort (in the manner of syncthing's `lib/fs/fakefs.go`). It keeps the same
 * two-phase contract as a path replica: `prepare` stages every write under a visible
 * `.satchel-tmp-<16 hex digits>` name beside its target, `commit` re-checks each operation's expected state
 * and renames over.
 *
 * Knobs (constructor options):
 * - `capabilities`: any {@link Capabilities} field, for example
 *   - `caseSensitive: false`: `A.txt` and `a.txt` are one file (the first spelling is kept);
 *   - `mtimeGranularityMs: 2000`: stored modification times are rounded down to it (FAT);
 *   - `executableBit: false`: the executable bit is not stored and always reads false;
 *   - `symlinks: false`: symlink operations fail with `symlink-unsupported`;
 *   - `forbiddenChars` / `forbidsTrailingDotOrSpace`: names are stored encoded (see `rawNames()`);
 *   - `maxFileSize`: larger writes fail with `too-large`.
 * - `latencyMs`: every scan, open, prepare and commit first waits this long.
 * - `capacityBytes`: total content it holds; a write beyond fails with `no-space`.
 * - `failOn(path, code)`: from then on, reading `path` fails (scan reports `unreadable` and leaves
 *   it out, `open` rejects) and every operation on it fails with a problem of `code`;
 *   `clearFailures()` undoes it.
 * - `calls`: counters of scans, files hashed, opens, prepares and commits.
 *
 * Test helpers change the storage behind the replica's back, in the case's spelling: `put`,
 * `mkdir`, `symlink`, `remove`, `read`, `tree`, `rawNames` (stored spellings).
 */
import { inScope } from '../core/scope.js';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { POSIX_CAPABILITIES, type Capabilities } from '../core/capabilities.js';
import { comparePaths, parentPath, type Entry, type FileEntry } from '../core/entry.js';
import { decodePath, encodePath } from '../core/name-encoding.js';
import type { Operation, WriteOperation } from '../core/plan.js';
import type { Problem, ProblemCode } from '../core/problem.js';
import { isSatchelInternal, isTempName, TEMP_PREFIX, tempSuffix } from '../core/reserved.js';
import type {
  CachedHash,
  ContentSource,
  OperationResult,
  PreparedApply,
  Replica,
  ScanOptions,
  ScanResult,
} from './replica.js';

/** Options of a {@link MemoryReplica}; every field is a knob described in the module comment. */
export interface MemoryReplicaOptions {
  readonly label?: string;
  readonly capabilities?: Partial<Capabilities>;
  readonly latencyMs?: number;
  readonly capacityBytes?: number;
}

/** What a path holds, as {@link MemoryReplica.tree} shows it. */
export type MemoryNode =
  | {
      readonly kind: 'file';
      readonly content: Buffer;
      readonly mtimeMs: number;
      readonly executable: boolean;
    }
  | { readonly kind: 'directory' }
  | { readonly kind: 'symlink'; readonly target: string };

/** A stored node: its spelling on storage (encoded), and an inode number for files. */
interface Stored {
  readonly name: string;
  readonly node: MemoryNode;
  readonly ino: number;
}

/** Counters of calls, for tests that check work was (not) done. */
export interface MemoryCalls {
  scan: number;
  /** Files whose content was hashed by a scan (cache misses). */
  hash: number;
  open: number;
  prepare: number;
  commit: number;
}

function sha256(content: Buffer): string {
  return createHash('sha256').update(content).digest('hex');
}

function problem(path: string, code: ProblemCode, message: string): Problem {
  return { path, code, message };
}

/** An in-memory replica with test knobs; see the module comment. */
export class MemoryReplica implements Replica {
  readonly label: string;
  readonly capabilities: Capabilities;
  readonly content: ContentSource;
  /** Call counters. */
  readonly calls: MemoryCalls = { scan: 0, hash: 0, open: 0, prepare: 0, commit: 0 };
  readonly #latencyMs: number;
  readonly #capacityBytes: number;
  /** Folded stored path → node. */
  readonly #nodes = new Map<string, Stored>();
  readonly #failures = new Map<string, ProblemCode>();
  readonly #liveTemps = new Set<string>();
  #nextIno = 1;
  #nextTemp = 1;

  constructor(options: MemoryReplicaOptions = {}) {
    this.label = options.label ?? 'memory';
    this.capabilities = Object.freeze({ ...POSIX_CAPABILITIES, ...options.capabilities });
    this.#latencyMs = options.latencyMs ?? 0;
    this.#capacityBytes = options.capacityBytes ?? Number.POSITIVE_INFINITY;
    this.content = {
      open: async (path: string) => {
        await this.#delay();
        this.calls.open++;
        const code = this.#failures.get(path);
        if (code !== undefined) throw Object.assign(new Error(`injected ${code} reading ${path}`), { code });
        const node = this.#get(path)?.node;
        if (node?.kind !== 'file')
          throw Object.assign(new Error(`ENOENT: no file ${path}`), { code: 'ENOENT' });
        return Readable.from([node.content]);
      },
      localFile: () => undefined,
      unchanged: async (path: string, entry: FileEntry) => {
        const node = this.#get(path)?.node;
        return node?.kind === 'file' && node.content.length === entry.size && node.mtimeMs === entry.mtimeMs;
      },
    };
  }

  // ---- knobs ----

  /** Makes every later read of `path` and operation on it fail with `code`. */
  failOn(path: string, code: ProblemCode): void {
    this.#failures.set(path, code);
  }

  /** Removes every injected failure. */
  clearFailures(): void {
    this.#failures.clear();
  }

  // ---- storage primitives ----

  #fold(storedPath: string): string {
    return this.capabilities.caseSensitive ? storedPath : storedPath.toLowerCase();
  }

  /** The stored spelling of `path`: existing parents keep their spelling (case-insensitive storage). */
  #storedName(path: string): string {
    const encoded = encodePath(path, this.capabilities);
    const existing = this.#nodes.get(this.#fold(encoded));
    if (existing !== undefined) return existing.name;
    const i = encoded.lastIndexOf('/');
    if (i < 0) return encoded;
    const parent = this.#nodes.get(this.#fold(encoded.slice(0, i)));
    return (parent?.name ?? encoded.slice(0, i)) + encoded.slice(i);
  }

  #get(path: string): Stored | undefined {
    return this.#nodes.get(this.#fold(encodePath(path, this.capabilities)));
  }

  #set(path: string, node: MemoryNode, ino = this.#nextIno++): void {
    const name = this.#storedName(path);
    this.#nodes.set(this.#fold(name), { name, node, ino });
  }

  #childrenOf(storedPath: string): Stored[] {
    const prefix = this.#fold(storedPath) + '/';
    return [...this.#nodes].filter(([k]) => k.startsWith(prefix)).map(([, v]) => v);
  }

  #usedBytes(): number {
    let n = 0;
    for (const { node } of this.#nodes.values()) if (node.kind === 'file') n += node.content.length;
    return n;
  }

  #mtime(mtimeMs: number): number {
    const g = this.capabilities.mtimeGranularityMs;
    return Math.floor(mtimeMs / g) * g;
  }

  async #delay(): Promise<void> {
    if (this.#latencyMs > 0) await sleep(this.#latencyMs);
  }

  // ---- test helpers (behind the replica's back) ----

  /** Creates the missing parent folders of `path`. */
  #ensureParents(path: string): void {
    const parent = parentPath(path);
    if (parent === '' || this.#get(parent)?.node.kind === 'directory') return;
    this.#ensureParents(parent);
    this.#set(parent, { kind: 'directory' });
  }

  /** Writes a file (creating parent folders), like an editor saving it. */
  put(
    path: string,
    content: string | Uint8Array,
    options: { mtimeMs?: number; executable?: boolean } = {},
  ): void {
    this.#ensureParents(path);
    this.#set(path, {
      kind: 'file',
      content: Buffer.from(content),
      mtimeMs: this.#mtime(options.mtimeMs ?? Date.now()),
      executable: this.capabilities.executableBit && options.executable === true,
    });
  }

  /** Creates a folder and its missing parents. */
  mkdir(path: string): void {
    this.#ensureParents(path);
    if (this.#get(path) === undefined) this.#set(path, { kind: 'directory' });
  }

  /** Creates a symbolic link (creating parent folders). */
  symlink(path: string, target: string): void {
    this.#ensureParents(path);
    this.#set(path, { kind: 'symlink', target });
  }

  /** Removes `path` and everything below it. */
  remove(path: string): void {
    const stored = this.#get(path);
    if (stored === undefined) return;
    for (const child of this.#childrenOf(stored.name)) this.#nodes.delete(this.#fold(child.name));
    this.#nodes.delete(this.#fold(stored.name));
  }

  /** The content of the file at `path` as UTF-8, or undefined when there is no file. */
  read(path: string): string | undefined {
    const node = this.#get(path)?.node;
    return node?.kind === 'file' ? node.content.toString('utf8') : undefined;
  }

  /** Everything stored, by path in the case's spelling, sorted (Satchel's own files included). */
  tree(): Map<string, MemoryNode> {
    const out = [...this.#nodes.values()].map(
      (s) => [decodePath(s.name, this.capabilities), s.node] as const,
    );
    return new Map(out.sort(([a], [b]) => comparePaths(a, b)));
  }

  /** Every stored path in its stored (encoded) spelling, sorted. */
  rawNames(): string[] {
    return [...this.#nodes.values()].map((s) => s.name).sort(comparePaths);
  }

  // ---- Replica ----

  /** Lists every path, hashing only files the cache cannot vouch for. */
  async scan(options: ScanOptions): Promise<ScanResult> {
    await this.#delay();
    this.calls.scan++;
    const snapshot = new Map<string, Entry>();
    const hashes = new Map<string, CachedHash>();
    const problems: Problem[] = [];
    const skipped: string[] = [];
    const sorted = [...this.#nodes.values()].sort((a, b) => comparePaths(a.name, b.name));
    for (const stored of sorted) {
      options.signal?.throwIfAborted();
      const path = decodePath(stored.name, this.capabilities);
      if (skipped.some((d) => path.startsWith(d + '/'))) continue;
      if (stored.name.split('/').some((s) => isTempName(s))) {
        // Crash debris, unless a prepare of this object is using it.
        if (!this.#liveTemps.has(stored.name)) this.#nodes.delete(this.#fold(stored.name));
        continue;
      }
      const { node } = stored;
      if (options.scope !== undefined && !inScope(path, options.scope)) continue;
      if (isSatchelInternal(path) || options.ignore(path, node.kind === 'directory')) {
        skipped.push(path);
        continue;
      }
      if (this.#failures.has(path)) {
        problems.push(problem(path, 'unreadable', `cannot read ${path}: injected failure`));
        skipped.push(path);
        continue;
      }
      if (node.kind !== 'file') {
        snapshot.set(
          path,
          node.kind === 'directory' ? { kind: 'directory' } : { kind: 'symlink', target: node.target },
        );
        continue;
      }
      const cached = options.cache.get(path);
      const size = node.content.length;
      const trusted = options.recentAfterMs === undefined || node.mtimeMs < options.recentAfterMs;
      let hash: string;
      if (trusted && cached?.size === size && cached.mtimeMs === node.mtimeMs && cached.ino === stored.ino) {
        hash = cached.hash;
      } else {
        this.calls.hash++;
        hash = sha256(node.content);
      }
      snapshot.set(path, { kind: 'file', size, mtimeMs: node.mtimeMs, executable: node.executable, hash });
      hashes.set(path, { size, mtimeMs: node.mtimeMs, ino: stored.ino, hash });
    }
    return { snapshot, hashes, problems };
  }

  /** Stages every write as a `.satchel-tmp-<16 hex digits>` node beside its target. */
  async prepare(
    operations: readonly Operation[],
    source: ContentSource,
    signal?: AbortSignal,
  ): Promise<PreparedApply> {
    await this.#delay();
    this.calls.prepare++;
    const staged = new Map<number, string | Problem>();
    const discard = (): void => {
      for (const s of staged.values()) if (typeof s === 'string') this.#dropTemp(s);
    };
    try {
      for (const [i, op] of operations.entries()) {
        signal?.throwIfAborted();
        if (op.type === 'write') staged.set(i, await this.#stage(op, source));
      }
    } catch (err) {
      discard();
      throw err;
    }
    let finished = false;
    return {
      commit: async () => {
        if (finished) throw new Error('bug: commit after the prepared apply was finished');
        finished = true;
        await this.#delay();
        this.calls.commit++;
        const results = operations.map((op, i) => this.#apply(op, staged.get(i)));
        discard();
        return results;
      },
      abort: async () => {
        finished = true;
        discard();
      },
    };
  }

  #dropTemp(temp: string): void {
    this.#nodes.delete(this.#fold(temp));
    this.#liveTemps.delete(temp);
  }

  async #stage(op: WriteOperation, source: ContentSource): Promise<string | Problem> {
    const path = op.path;
    const code = this.#failures.get(path);
    if (code !== undefined) return problem(path, code, `cannot write ${path}: injected ${code}`);
    const nameProblem = this.#nameProblem(path);
    if (nameProblem !== undefined) return nameProblem;
    if (op.entry.size > this.capabilities.maxFileSize) {
      return problem(
        path,
        'too-large',
        `cannot store ${path} on ${this.label}: over ${this.capabilities.maxFileSize} bytes`,
      );
    }
    const existing = this.#get(path)?.node;
    const freed = existing?.kind === 'file' ? existing.content.length : 0;
    if (this.#usedBytes() - freed + op.entry.size > this.#capacityBytes) {
      return problem(
        path,
        'no-space',
        `cannot write ${path}: no space left on ${this.label} (${op.entry.size} bytes needed)`,
      );
    }
    const chunks: Buffer[] = [];
    for await (const chunk of await source.open(op.from.path, op.from.entry))
      chunks.push(Buffer.from(chunk as Buffer));
    const content = Buffer.concat(chunks);
    if (
      content.length !== op.from.entry.size ||
      sha256(content) !== op.from.entry.hash ||
      !(await source.unchanged(op.from.path, op.from.entry))
    ) {
      return problem(
        path,
        'changed-during-sync',
        `${op.from.path} changed while it was copied; it is picked up by the next sync`,
      );
    }
    // Stage beside the target, or in the nearest existing ancestor when a mkdir of this plan creates the parent.
    let dir = parentPath(path);
    while (dir !== '' && this.#get(dir)?.node.kind !== 'directory') dir = parentPath(dir);
    const tempPath = (dir === '' ? '' : dir + '/') + `${TEMP_PREFIX}${tempSuffix(this.#nextTemp++)}`;
    this.#set(tempPath, {
      kind: 'file',
      content,
      mtimeMs: this.#mtime(op.entry.mtimeMs),
      executable: this.capabilities.executableBit && op.entry.executable,
    });
    const temp = this.#storedName(tempPath);
    this.#liveTemps.add(temp);
    return temp;
  }

  #nameProblem(path: string): Problem | undefined {
    const max = this.capabilities.maxNameLength;
    if (
      encodePath(path, this.capabilities)
        .split('/')
        .every((s) => s.length <= max)
    )
      return undefined;
    return problem(
      path,
      'name-not-storable',
      `cannot store ${path} on ${this.label}: a name is longer than ${max}`,
    );
  }

  /** Whether `path` holds what `expected` says (absent when undefined). */
  #holds(path: string, expected: Entry | undefined): boolean {
    const node = this.#get(path)?.node;
    if (node === undefined || expected === undefined) return node === expected;
    if (node.kind !== expected.kind) return false;
    if (node.kind === 'file' && expected.kind === 'file') {
      return node.content.length === expected.size && node.mtimeMs === expected.mtimeMs;
    }
    return node.kind !== 'symlink' || expected.kind !== 'symlink' || node.target === expected.target;
  }

  /** The entry at `path` as now stored. */
  #entry(path: string): Entry | undefined {
    const node = this.#get(path)?.node;
    if (node === undefined || node.kind !== 'file') return node;
    const { content, mtimeMs, executable } = node;
    return { kind: 'file', size: content.length, mtimeMs, executable, hash: sha256(content) };
  }

  #apply(op: Operation, staged: string | Problem | undefined): OperationResult {
    const path = op.type === 'rename' ? op.from : op.path;
    const code = this.#failures.get(path) ?? (op.type === 'rename' ? this.#failures.get(op.to) : undefined);
    if (op.type === 'write' && typeof staged !== 'string') {
      if (staged === undefined) throw new Error(`bug: write of ${op.path} was not staged`);
      return { ok: false, problem: staged };
    }
    if (code !== undefined)
      return { ok: false, problem: problem(path, code, `cannot change ${path}: injected ${code}`) };
    const nameProblem = this.#nameProblem(op.type === 'rename' ? op.to : op.path);
    if (nameProblem !== undefined) return { ok: false, problem: nameProblem };
    if (!this.#holds(path, op.expected)) {
      return {
        ok: false,
        problem: problem(
          path,
          'changed-during-sync',
          `${path} on ${this.label} changed since it was scanned`,
        ),
      };
    }
    if (op.type === 'symlink' && !this.capabilities.symlinks) {
      return {
        ok: false,
        problem: problem(path, 'symlink-unsupported', `${this.label} cannot hold symbolic links`),
      };
    }
    const parent = parentPath(op.type === 'rename' ? op.to : op.path);
    if (
      op.type !== 'remove' &&
      op.type !== 'chmod' &&
      parent !== '' &&
      this.#get(parent)?.node.kind !== 'directory'
    ) {
      return { ok: false, problem: problem(path, 'io-error', `cannot change ${path}: no folder ${parent}`) };
    }
    switch (op.type) {
      case 'write': {
        const temp = this.#nodes.get(this.#fold(staged as string))!;
        this.#dropTemp(staged as string);
        this.remove(op.path);
        this.#set(op.path, temp.node, temp.ino);
        return { ok: true, stored: { ...(this.#entry(op.path) as FileEntry), hash: op.entry.hash } };
      }
      case 'mkdir':
        this.#set(op.path, { kind: 'directory' });
        return { ok: true, stored: { kind: 'directory' } };
      case 'symlink':
        this.remove(op.path);
        this.#set(op.path, { kind: 'symlink', target: op.target });
        return { ok: true, stored: { kind: 'symlink', target: op.target } };
      case 'chmod': {
        const stored = this.#get(op.path)!;
        const node = stored.node as Extract<MemoryNode, { kind: 'file' }>;
        const executable = this.capabilities.executableBit && op.executable;
        this.#nodes.set(this.#fold(stored.name), { ...stored, node: { ...node, executable } });
        return { ok: true, stored: this.#entry(op.path) };
      }
      case 'remove': {
        const stored = this.#get(op.path)!;
        if (this.#childrenOf(stored.name).length > 0) {
          return {
            ok: false,
            problem: problem(path, 'not-empty', `cannot remove ${path}: the folder is not empty`),
          };
        }
        this.#nodes.delete(this.#fold(stored.name));
        return { ok: true };
      }
      case 'rename': {
        const from = this.#get(op.from)!;
        const there = this.#get(op.to);
        if (there !== undefined && there !== from) {
          return {
            ok: false,
            problem: problem(
              op.from,
              'changed-during-sync',
              `cannot rename ${op.from} to ${op.to}: ${op.to} exists now`,
            ),
          };
        }
        const children = this.#childrenOf(from.name);
        this.#nodes.delete(this.#fold(from.name));
        for (const c of children) this.#nodes.delete(this.#fold(c.name));
        const to = encodePath(op.to, this.capabilities);
        const toName =
          (parent === '' ? '' : this.#storedName(parent) + '/') + to.slice(to.lastIndexOf('/') + 1);
        const moved =
          op.mtimeMs !== undefined && from.node.kind === 'file'
            ? { ...from, node: { ...from.node, mtimeMs: this.#mtime(op.mtimeMs) } }
            : from;
        this.#nodes.set(this.#fold(toName), { ...moved, name: toName });
        for (const c of children) {
          const name = toName + c.name.slice(from.name.length);
          this.#nodes.set(this.#fold(name), { ...c, name });
        }
        return { ok: true, stored: this.#entry(op.to) };
      }
    }
  }

  /** Nothing to release. */
  async close(): Promise<void> {}
}
