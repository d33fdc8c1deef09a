/**
 * @module core/safety
 * Safety halts decided on a plan before anything is applied: a sync that would delete most of
 * a side's files is far more likely a vanished mount, an emptied stick or a wrong folder than
 * a wish, so it is refused until the user confirms (DESIGN.md, "Safety halts"; mutagen
 * `pkg/synchronization/safety.go`).
 */
import { ancestorsOf, type Snapshot } from './entry.js';
import type { Operation, PairPlan, Side } from './plan.js';

/** A refused plan: which side would lose how many of its files. */
export interface MassDeleteVerdict {
  /** The side that would lose the files. */
  readonly side: Side;
  /** Files and links the plan would delete on that side (renames excluded). */
  readonly deletes: number;
  /** Files and links that side holds now. */
  readonly files: number;
  /** One line for the user, naming the counts and the side (`would delete 8 of 10 files on the case`). */
  readonly message: string;
}

/** Whether an entry counts as a file for mass-delete purposes (files and links). */
const counts = (kind: string | undefined): boolean => kind === 'file' || kind === 'symlink';

/** Whether `path` or one of its ancestors is in `set`. */
function within(set: ReadonlySet<string>, path: string): boolean {
  return set.has(path) || ancestorsOf(path).some((dir) => set.has(dir));
}

/** Files and links of `snapshot` that `ops` delete, directly or by removing a folder. */
function deletedFiles(ops: readonly Operation[], snapshot: Snapshot): number {
  const moved = new Set(ops.flatMap((op) => (op.type === 'rename' ? [op.from] : [])));
  const removedDirs = new Set<string>();
  const deleted = new Set<string>();
  for (const op of ops) {
    if (op.type !== 'remove') continue;
    const kind = snapshot.get(op.path)?.kind;
    if (counts(kind)) deleted.add(op.path);
    else if (kind === 'directory') removedDirs.add(op.path);
  }
  if (removedDirs.size > 0) {
    for (const [path, entry] of snapshot) {
      // A file renamed out of the folder before the folder goes is not deleted.
      if (counts(entry.kind) && within(removedDirs, path) && !within(moved, path)) deleted.add(path);
    }
  }
  return deleted.size;
}

/** Files and links the plan deletes on the side that loses more of them (renames excluded). */
export function mostDeletes(plan: PairPlan, caseSnapshot: Snapshot, mirrorSnapshot: Snapshot): number {
  return Math.max(deletedFiles(plan.caseOps, caseSnapshot), deletedFiles(plan.mirrorOps, mirrorSnapshot));
}

/** Files and links a snapshot holds. */
function fileCount(snapshot: Snapshot): number {
  let n = 0;
  for (const entry of snapshot.values()) if (counts(entry.kind)) n++;
  return n;
}

/**
 * A plan that would delete more than half of a side's files (renames excluded), and at least
 * `minDeletes` (default 5) files, is refused: returns the verdict for the first such side
 * (the case is checked first), else `undefined`. Files removed by removing their folder count.
 */
export function checkMassDelete(
  plan: PairPlan,
  caseSnapshot: Snapshot,
  mirrorSnapshot: Snapshot,
  mirrorLabel: string,
  minDeletes = 5,
): MassDeleteVerdict | undefined {
  const sides: [Side, readonly Operation[], Snapshot][] = [
    ['case', plan.caseOps, caseSnapshot],
    ['mirror', plan.mirrorOps, mirrorSnapshot],
  ];
  for (const [side, ops, snapshot] of sides) {
    const deletes = deletedFiles(ops, snapshot);
    const files = fileCount(snapshot);
    if (deletes < minDeletes || deletes * 2 <= files) continue;
    const where = side === 'case' ? 'the case' : mirrorLabel;
    const message = `would delete ${deletes} of ${files} files on ${where}`;
    return { side, deletes, files, message };
  }
  return undefined;
}
