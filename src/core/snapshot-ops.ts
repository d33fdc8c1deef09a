/**
 * @module core/snapshot-ops
 * Pure operations on snapshots: the state after applying operations, the ancestor changes a
 * finished sync records, and the mirror snapshot as the planner sees it (in the case's
 * spelling, with executable bits the mirror cannot store taken from elsewhere).
 */
import type { Capabilities } from './capabilities.js';
import { findCaseClashes, respell, type CaseClash } from './case-folding.js';
import { isSameOrBelow, sameEntry, type Entry, type Snapshot } from './entry.js';
import type { Operation } from './plan.js';

/**
 * The snapshot after applying `ops` in order (only those for which `succeeded(i)` is true;
 * default all). `stored(i)` may give the entry as actually stored at the operation's path
 * (e.g. mtime rounded by FAT) to use instead of the planned one. Renames move whole subtrees;
 * removing a directory removes that path only (its children were removed by earlier ops).
 */
export function applyOperations(
  snapshot: Snapshot,
  ops: readonly Operation[],
  succeeded: (i: number) => boolean = () => true,
  stored: (i: number) => Entry | undefined = () => undefined,
): Snapshot {
  const out = new Map(snapshot);
  ops.forEach((op, i) => {
    if (!succeeded(i)) return;
    const actual = stored(i);
    switch (op.type) {
      case 'mkdir':
        out.set(op.path, actual ?? { kind: 'directory' });
        break;
      case 'write':
        out.set(op.path, actual ?? op.entry);
        break;
      case 'symlink':
        out.set(op.path, actual ?? { kind: 'symlink', target: op.target });
        break;
      case 'chmod': {
        const current = out.get(op.path);
        const base = current?.kind === 'file' ? current : op.expected;
        out.set(op.path, actual ?? { ...base, executable: op.executable });
        break;
      }
      case 'remove':
        out.delete(op.path);
        break;
      case 'rename': {
        const moved: [string, Entry][] = [];
        for (const [path, entry] of out) {
          if (isSameOrBelow(path, op.from)) moved.push([op.to + path.slice(op.from.length), entry]);
        }
        for (const [path] of moved) out.delete(op.from + path.slice(op.to.length));
        for (const [path, entry] of moved) out.set(path, entry);
        const renamed = out.get(op.to);
        if (op.mtimeMs !== undefined && renamed?.kind === 'file')
          out.set(op.to, { ...renamed, mtimeMs: op.mtimeMs });
        if (actual) out.set(op.to, actual);
        break;
      }
    }
  });
  return out;
}

/**
 * The mirror's files with executable bits it cannot store filled in: the bit of the first of
 * `sameContent` holding a file with the same hash at the path, else of the first of `anyFile`
 * holding a file there, else false. Other entries are returned as they are.
 */
export function inheritExecBits(
  mirror: Snapshot,
  sameContent: readonly Snapshot[],
  anyFile: readonly Snapshot[],
): Snapshot {
  const out = new Map<string, Entry>();
  for (const [path, entry] of mirror) {
    if (entry.kind !== 'file') {
      out.set(path, entry);
      continue;
    }
    let executable = false;
    const same = sameContent.map((s) => s.get(path)).find((e) => e?.kind === 'file' && e.hash === entry.hash);
    const any = anyFile.map((s) => s.get(path)).find((e) => e?.kind === 'file');
    const source = same ?? any;
    if (source?.kind === 'file') executable = source.executable;
    out.set(path, executable === entry.executable ? entry : { ...entry, executable });
  }
  return out;
}

/** A mirror snapshot as the planner compares it, with the case names that clash on it. */
export interface MirrorView {
  /** The mirror's entries in the case's spelling, with executable bits it cannot store filled in. */
  readonly snapshot: Snapshot;
  /** Case names a case-insensitive mirror cannot hold next to a sibling (empty otherwise). */
  readonly clashes: readonly CaseClash[];
  /** Paths whose last name the mirror itself spells differently: path → its spelling. */
  readonly ownNames: ReadonlyMap<string, string>;
}

/**
 * The mirror snapshot normalized for comparison with the case: on a case-insensitive mirror,
 * names equal under folding take the case's (else the ancestor's) spelling; on a mirror
 * without executable bits, a file's bit comes from the ancestor or the case — `preferCase`
 * decides which is asked first (the planner asks the ancestor so that only real changes show;
 * recording a finished sync asks the case, whose bit was just written).
 */
export function mirrorView(
  mirror: Snapshot,
  caseSnapshot: Snapshot,
  ancestor: Snapshot,
  capabilities: Pick<Capabilities, 'caseSensitive' | 'executableBit'>,
  preferCase = false,
): MirrorView {
  let snapshot = mirror;
  let clashes: CaseClash[] = [];
  let ownNames: ReadonlyMap<string, string> = new Map();
  if (!capabilities.caseSensitive) {
    clashes = findCaseClashes(caseSnapshot, mirror, ancestor);
    const losers = clashes.map((c) => c.loser);
    const isLoser = (p: string): boolean => losers.some((l) => isSameOrBelow(p, l));
    ({ snapshot, ownNames } = respell(mirror, [caseSnapshot, ancestor], isLoser));
  }
  if (!capabilities.executableBit) {
    const order = preferCase ? [caseSnapshot, ancestor] : [ancestor, caseSnapshot];
    snapshot = inheritExecBits(snapshot, order, order);
  }
  return { snapshot, clashes, ownNames };
}

/** Whether two entries are identical in every recorded field (modification time included). */
function identical(a: Entry | undefined, b: Entry | undefined): boolean {
  if (!sameEntry(a, b)) return false;
  if (a?.kind === 'file' && b?.kind === 'file') return a.size === b.size && a.mtimeMs === b.mtimeMs;
  return true;
}

/**
 * Ancestor changes after a sync: for every path in the union of the three snapshots, if the
 * case and the mirror now agree (`sameEntry`), the new ancestor is the case's entry (absent =
 * removal), else the old ancestor entry is kept. Returns only the changes: path → new entry,
 * or `undefined` for a removal.
 *
 * Pass the mirror's `capabilities` when it is case-insensitive or cannot store executable
 * bits: `mirrorPost` is then compared through {@link mirrorView}, exactly as the planner did.
 * Without it, agreement hidden by spelling or a missing bit would never be recorded. Paths in
 * `keep` keep their ancestor entries (a case-only rename the mirror refused: the ancestor's
 * spelling still tells who renamed).
 */
export function ancestorUpdates(
  ancestor: Snapshot,
  casePost: Snapshot,
  mirrorPost: Snapshot,
  capabilities?: Pick<Capabilities, 'caseSensitive' | 'executableBit'>,
  keep: ReadonlySet<string> = new Set(),
): Map<string, Entry | undefined> {
  const mirror = capabilities
    ? mirrorView(mirrorPost, casePost, ancestor, capabilities, true).snapshot
    : mirrorPost;
  const changes = new Map<string, Entry | undefined>();
  for (const path of new Set([...ancestor.keys(), ...casePost.keys(), ...mirror.keys()])) {
    const caseEntry = casePost.get(path);
    if (keep.has(path) || !sameEntry(caseEntry, mirror.get(path))) continue;
    if (!identical(caseEntry, ancestor.get(path))) changes.set(path, caseEntry);
  }
  return changes;
}
