/**
 * @module core/testing
 * Test support for the core (used by `*.test.ts` only): named fixture entries, a snapshot
 * builder, and a strict in-memory replica that applies a plan's operations the way a real one
 * does — re-checking each operation's `expected` state, requiring parents to exist, refusing to
 * remove non-empty folders or rename onto existing paths, and checking every write's content
 * source as it was when the plan was made.
 *
 * Knobs of {@link applyStrictly}: `caseInsensitive` (names equal under folding are one file,
 * kept in the spelling they were created with), `noExec` (executable bits are not stored).
 */
import type { Capabilities } from './capabilities.js';
import { POSIX_CAPABILITIES } from './capabilities.js';
import { foldKey } from './case-folding.js';
import {
  ancestorsOf,
  baseName,
  isSameOrBelow,
  parentPath,
  type Entry,
  type FileEntry,
  type Snapshot,
} from './entry.js';
import type { Operation, PairPlan, Side } from './plan.js';
import { reconcile, type ReconcileInput } from './reconcile.js';
import { ancestorUpdates } from './snapshot-ops.js';

/** A file entry with content `hash` (size derived from it), modification time and bit. */
export function file(hash: string, mtimeMs = 1000, executable = false): FileEntry {
  return { kind: 'file', size: hash.length, mtimeMs, executable, hash };
}

/** Fixture: a file with content 1. */
export const F1 = file('1111', 1000);
/** Fixture: a file with content 2, newer than F1. */
export const F2 = file('2222', 2000);
/** Fixture: a directory. */
export const D: Entry = { kind: 'directory' };
/** Fixture: a symbolic link to `t1`. */
export const L1: Entry = { kind: 'symlink', target: 't1' };
/** Fixture: a symbolic link to `t2`. */
export const L2: Entry = { kind: 'symlink', target: 't2' };

/** A snapshot from a record; missing parent folders are added. */
export function snap(entries: Record<string, Entry> = {}): Snapshot {
  const out = new Map<string, Entry>();
  for (const [path, entry] of Object.entries(entries)) {
    for (const dir of ancestorsOf(path)) if (!out.has(dir)) out.set(dir, D);
    out.set(path, entry);
  }
  return out;
}

/** Options of {@link applyStrictly}. */
export interface StrictOptions {
  readonly caseInsensitive?: boolean;
  readonly noExec?: boolean;
  /** Both sides as they were when the plan was made (the content sources of writes). */
  readonly sources?: Readonly<Record<Side, Snapshot>>;
  /** Whether the mirror's source snapshot is case-insensitive (its names may be spelled differently). */
  readonly mirrorSourceCaseInsensitive?: boolean;
}

/** Whether the stored entry is what an operation expected (what a real replica re-checks). */
function matches(actual: Entry | undefined, expected: Entry | undefined): boolean {
  if (actual === undefined || expected === undefined) return actual === expected;
  if (actual.kind !== expected.kind) return false;
  if (actual.kind === 'symlink') return actual.target === (expected as typeof actual).target;
  if (actual.kind === 'file') {
    const e = expected as FileEntry;
    return actual.hash === e.hash && actual.size === e.size && actual.mtimeMs === e.mtimeMs;
  }
  return true;
}

/**
 * The key `path` has in `state`: on a case-insensitive store each segment takes the spelling
 * of an existing name equal under folding (new segments keep theirs), else `path` itself.
 */
function lookup(state: ReadonlyMap<string, Entry>, path: string, insensitive: boolean): string {
  if (!insensitive || state.has(path)) return path;
  let out = '';
  for (const segment of path.split('/')) {
    const candidate = out === '' ? segment : `${out}/${segment}`;
    const key = foldKey(candidate);
    out = state.has(candidate) ? candidate : ([...state.keys()].find((p) => foldKey(p) === key) ?? candidate);
  }
  return out;
}

/** Applies `ops` in order like a real replica, throwing `Error('replica: …')` on any violation. */
export function applyStrictly(
  snapshot: Snapshot,
  ops: readonly Operation[],
  options: StrictOptions = {},
): Snapshot {
  const insensitive = options.caseInsensitive ?? false;
  const state = new Map(snapshot);
  const fail = (op: Operation, why: string): never => {
    throw new Error(`replica: ${op.type} ${JSON.stringify(op)}: ${why}`);
  };
  const at = (path: string): string => lookup(state, path, insensitive);
  const check = (op: Operation, path: string, expected: Entry | undefined): void => {
    const actual = state.get(at(path));
    if (!matches(actual, expected)) fail(op, `found ${JSON.stringify(actual)} at ${path}`);
  };
  const parentIsDir = (op: Operation, path: string): void => {
    const parent = parentPath(path);
    if (parent !== '' && state.get(at(parent))?.kind !== 'directory') fail(op, `no folder ${parent}`);
  };
  const store = (path: string, entry: Entry): void => {
    const key = at(path);
    const stored = options.noExec && entry.kind === 'file' ? { ...entry, executable: false } : entry;
    state.set(key, stored);
  };
  for (const op of ops) {
    switch (op.type) {
      case 'mkdir':
      case 'write':
      case 'symlink':
        check(op, op.path, op.expected);
        parentIsDir(op, op.path);
        if (op.type === 'write' && options.sources) {
          const source = options.sources[op.from.side];
          const insensitiveSource =
            op.from.side === 'mirror' && (options.mirrorSourceCaseInsensitive ?? false);
          const there = source.get(lookup(source, op.from.path, insensitiveSource));
          if (!matches(there, op.from.entry)) fail(op, `content source holds ${JSON.stringify(there)}`);
          if (op.from.entry.hash !== op.entry.hash) fail(op, 'content source has other content');
        }
        store(
          op.path,
          op.type === 'mkdir' ? D : op.type === 'write' ? op.entry : { kind: 'symlink', target: op.target },
        );
        break;
      case 'chmod':
        check(op, op.path, op.expected);
        store(op.path, {
          ...op.expected,
          ...(state.get(at(op.path)) as FileEntry),
          executable: op.executable,
        });
        break;
      case 'remove': {
        check(op, op.path, op.expected);
        const key = at(op.path);
        for (const p of state.keys())
          if (p !== key && isSameOrBelow(p, key)) fail(op, `folder not empty: ${p}`);
        state.delete(key);
        break;
      }
      case 'rename': {
        check(op, op.from, op.expected);
        const from = at(op.from);
        // A case-only rename on a case-insensitive replica finds itself at `to`; it takes the new spelling.
        const respell = insensitive && op.respell === true && at(op.to) === from;
        if (!respell) check(op, op.to, undefined);
        parentIsDir(op, op.to);
        const toParent = parentPath(op.to);
        const to = !respell ? at(op.to) : toParent === '' ? op.to : `${at(toParent)}/${baseName(op.to)}`;
        const moved = [...state].filter(([p]) => isSameOrBelow(p, from));
        for (const [p] of moved) state.delete(p);
        for (const [p, e] of moved) state.set(to + p.slice(from.length), e);
        const renamed = state.get(to);
        if (op.mtimeMs !== undefined && renamed?.kind === 'file')
          state.set(to, { ...renamed, mtimeMs: op.mtimeMs });
        break;
      }
    }
  }
  return state;
}

/** One (case, mirror) pair of a simulation, with its ancestor. */
export interface SimPair {
  caseSnapshot: Snapshot;
  mirrorSnapshot: Snapshot;
  ancestor: Snapshot;
}

/** Options of {@link syncPair}: reconcile inputs other than the snapshots. */
export type SyncOptions = Partial<Omit<ReconcileInput, 'ancestor' | 'caseSnapshot' | 'mirrorSnapshot'>>;

/** Reconciles a pair, applies the plan strictly on both sides and records the new ancestor. */
export function syncPair(pair: SimPair, options: SyncOptions = {}): PairPlan {
  const caps: Capabilities = options.mirrorCapabilities ?? POSIX_CAPABILITIES;
  const plan = reconcile({
    ancestor: pair.ancestor,
    caseSnapshot: pair.caseSnapshot,
    mirrorSnapshot: pair.mirrorSnapshot,
    mirrorCapabilities: caps,
    mirrorLabel: options.mirrorLabel ?? 'stick',
    caseLabel: options.caseLabel ?? 'desk',
    pushOnly: options.pushOnly ?? false,
    frozen: options.frozen ?? new Set(),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
  const sources = { case: pair.caseSnapshot, mirror: pair.mirrorSnapshot };
  const common = { sources, mirrorSourceCaseInsensitive: !caps.caseSensitive };
  const casePost = applyStrictly(pair.caseSnapshot, plan.caseOps, common);
  const mirrorPost = applyStrictly(pair.mirrorSnapshot, plan.mirrorOps, {
    ...common,
    caseInsensitive: !caps.caseSensitive,
    noExec: !caps.executableBit,
  });
  const ancestor = new Map(pair.ancestor);
  for (const [path, entry] of ancestorUpdates(pair.ancestor, casePost, mirrorPost, caps)) {
    if (entry === undefined) ancestor.delete(path);
    else ancestor.set(path, entry);
  }
  pair.caseSnapshot = casePost;
  pair.mirrorSnapshot = mirrorPost;
  pair.ancestor = ancestor;
  return plan;
}
