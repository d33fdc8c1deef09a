/**
 * @module core/reconcile
 * Three-way reconciliation of one (case, mirror) pair: compares what each side holds with the
 * ancestor (the state both agreed on after their last sync) and returns the plan that makes
 * both sides equal without losing any write. Pure: no I/O, no clock.
 *
 * The steps:
 * 1. The mirror is seen in the case's spelling and with executable bits it cannot store filled
 *    in ({@link mirrorView}), so that storage quirks never look like changes.
 * 2. Paths to leave alone are set aside, with problems saying why ({@link findExclusions}).
 * 3. The target — what both sides must hold afterwards — is decided path by path.
 * 4. Every folder that must hold something stays (or becomes) a folder.
 * 5. Every version that was the last write on one side and is not in the target at its path
 *    is kept as a conflict copy.
 * 6. Each side's operations are derived from its state and the target ({@link planTransition}).
 * 7. On a case-insensitive mirror, names spelled differently on the two sides are renamed to
 *    one spelling ({@link planRespells}).
 */
import type { Capabilities } from './capabilities.js';
import { ancestorInCaseSpelling, foldKey, planRespells, respellOperations } from './case-folding.js';
import { conflictCopyPath } from './conflict-name.js';
import { parentPath, sameContent, sameEntry, type Entry, type Snapshot } from './entry.js';
import { findExclusions } from './exclusions.js';
import type { Conflict, ContentRef, PairPlan, Side } from './plan.js';
import { mirrorView } from './snapshot-ops.js';
import { planTransition, sortPaths, type ConflictMove } from './transitions.js';

/** Everything the reconciliation of one pair looks at. */
export interface ReconcileInput {
  /** The state both sides agreed on after their last sync (empty for a new pair). */
  readonly ancestor: Snapshot;
  /** What the case holds now. */
  readonly caseSnapshot: Snapshot;
  /** What the mirror holds now, as its replica reports it. */
  readonly mirrorSnapshot: Snapshot;
  /** Capabilities of the mirror (case is POSIX). */
  readonly mirrorCapabilities: Capabilities;
  /** Mirror name, used in conflict copy names when the mirror's version loses. */
  readonly mirrorLabel: string;
  /** This computer's host name, used in conflict copy names when the case's version loses. */
  readonly caseLabel: string;
  /** The mirror is never a source: make it equal to the case, no conflicts, no case ops. */
  readonly pushOnly: boolean;
  /** Paths (and everything below them) that had scan problems on either side: leave them completely alone. */
  readonly frozen: ReadonlySet<string>;
  /**
   * The time of this sync (ms since the epoch): the time in the conflict copy name of a link,
   * which carries no modification time of its own (default 0).
   */
  readonly now?: number;
}

const DIRECTORY: Entry = Object.freeze({ kind: 'directory' });

/** Modification time used to pick the newer version; links carry none and count as 0. */
function mtimeOf(entry: Entry): number {
  return entry.kind === 'file' ? entry.mtimeMs : 0;
}

/**
 * Two files both changed since the ancestor: if at most one side changed the content and at
 * most one side changed the executable bit, the merge of both changes; else `undefined`
 * (a real conflict). Identical content with different bits and no ancestor file to tell who
 * changed the bit is also `undefined` (the newer one wins, no copy needed).
 */
function mergeFiles(
  a: Entry | undefined,
  c: Entry & { kind: 'file' },
  m: Entry & { kind: 'file' },
): Entry | undefined {
  const base = a?.kind === 'file' ? a : undefined;
  if (c.hash === m.hash) {
    // At this point we know that only the executable bits differ.
    if (base === undefined) return undefined;
    return c.executable !== base.executable ? c : m;
  }
  const caseEdited = base?.hash !== c.hash;
  const mirrorEdited = base?.hash !== m.hash;
  if (caseEdited && mirrorEdited) return undefined;
  // At this point we know that one side edited the content and the other only flipped the
  // executable bit (it would equal the ancestor otherwise): take both changes.
  const [edited, flipped] = caseEdited ? [c, m] : [m, c];
  return flipped.executable === edited.executable ? edited : { ...edited, executable: flipped.executable };
}

/** What both sides must hold at a path, from the ancestor `a`, the case `c` and the mirror `m`. */
function decide(a: Entry | undefined, c: Entry | undefined, m: Entry | undefined): Entry | undefined {
  if (sameEntry(c, m)) return c;
  // At this point we know that the two sides differ.
  if (sameEntry(a, c)) return m;
  if (sameEntry(a, m)) return c;
  // At this point we know that both sides changed the path, differently. Edit beats delete.
  if (c === undefined) return m;
  if (m === undefined) return c;
  // At this point we know that both sides hold something. A folder keeps the name.
  if (c.kind === 'directory') return c;
  if (m.kind === 'directory') return m;
  if (c.kind === 'file' && m.kind === 'file') {
    const merged = mergeFiles(a, c, m);
    if (merged) return merged;
  }
  // At this point we know that it is a real conflict: the newer version keeps the path (the
  // case on a tie); the other one is kept as a conflict copy in step 5.
  return mtimeOf(c) >= mtimeOf(m) ? c : m;
}

/** Whether the target `t` still carries the change the version `x` made over the ancestor `a`. */
function preserved(x: Entry, t: Entry | undefined, a: Entry | undefined): boolean {
  if (sameContent(x, t)) return true;
  // A version that only flipped the executable bit is kept if the target carries the bit.
  return (
    x.kind === 'file' &&
    t?.kind === 'file' &&
    a?.kind === 'file' &&
    a.hash === x.hash &&
    t.executable === x.executable
  );
}

/** Plain words for a conflict at `path`, lost by `loser` (holding `lost`). */
function conflictReason(loser: Side, lost: Entry, target: Entry | undefined, mirrorLabel: string): string {
  const name = (side: Side): string => (side === 'case' ? 'the case' : `mirror ${mirrorLabel}`);
  const what = lost.kind === 'symlink' ? 'a symbolic link' : 'a file';
  if (target?.kind === 'directory') {
    return `${what} on ${name(loser)} where ${name(loser === 'case' ? 'mirror' : 'case')} has a folder`;
  }
  return `changed on both the case and mirror ${mirrorLabel}`;
}

/**
 * Reconciles one (case, mirror) pair: the operations that make both sides equal, the conflicts
 * found (each already resolved by keeping both versions) and the problems (paths left alone).
 */
export function reconcile(input: ReconcileInput): PairPlan {
  const { caseSnapshot, mirrorCapabilities: caps, pushOnly } = input;
  // Towards a case-insensitive mirror, a name whose letter case changed keeps its ancestor.
  const ancestor = caps.caseSensitive ? input.ancestor : ancestorInCaseSpelling(input.ancestor, caseSnapshot);

  // Step 1: the mirror as comparable with the case.
  const view = mirrorView(input.mirrorSnapshot, caseSnapshot, ancestor, caps);
  const mirror = view.snapshot;

  // Step 2: paths to leave alone.
  const exclusions = findExclusions({
    caseSnapshot,
    mirrorSnapshot: mirror,
    mirrorCapabilities: caps,
    mirrorLabel: input.mirrorLabel,
    clashes: view.clashes,
    frozen: input.frozen,
  });
  const { isExcluded } = exclusions;

  // Step 3: the target, path by path.
  const target = new Map<string, Entry>();
  const union = sortPaths(new Set([...ancestor.keys(), ...caseSnapshot.keys(), ...mirror.keys()])).filter(
    (p) => !isExcluded(p),
  );
  for (const path of union) {
    const c = caseSnapshot.get(path);
    const a = ancestor.get(path);
    const m = mirror.get(path);
    // Push-only: the case's version wins everywhere it has one, and what the case deleted goes;
    // a file someone else put on the mirror, which Satchel never published, stays as it is.
    const t = !pushOnly ? decide(a, c, m) : c === undefined && a === undefined ? m : c;
    if (t !== undefined) target.set(path, t);
  }

  // Step 4: every parent of something that stays (including what is left alone) is a folder.
  // At this point a target path may lie below a file or link of the target (a side deleted a
  // folder or replaced it while the other side changed something inside): the folder wins.
  const needFolder = (path: string): void => {
    let dir = parentPath(path);
    while (dir !== '' && isExcluded(dir)) dir = parentPath(dir);
    if (dir !== '' && target.get(dir)?.kind !== 'directory') target.set(dir, DIRECTORY);
  };
  for (const path of exclusions.present) needFolder(path);
  // The iteration visits the folders added on the way too, so whole chains are filled in.
  for (const path of target.keys()) needFolder(path);
  // At this point the target is a valid snapshot of everything not excluded.

  // Step 5: keep every version that was a last write and is not in the target at its path.
  const conflicts: Conflict[] = [];
  const moves: Record<Side, ConflictMove[]> = { case: [], mirror: [] };
  const copySources: Record<Side, Map<string, ContentRef>> = { case: new Map(), mirror: new Map() };
  if (!pushOnly) {
    // Names already in use on either side, before or now, or by another copy of this plan (on a
    // case-insensitive mirror, under folding). The folded index is built only when needed.
    const planned = new Set<string>();
    const known = [ancestor, caseSnapshot, mirror, input.mirrorSnapshot];
    let folded: Set<string> | undefined;
    const taken = (p: string): boolean => {
      if (caps.caseSensitive) return planned.has(p) || known.some((s) => s.has(p));
      folded ??= new Set(known.flatMap((s) => [...s.keys()].map(foldKey)));
      return planned.has(foldKey(p)) || folded.has(foldKey(p));
    };
    const key = caps.caseSensitive ? (p: string) => p : foldKey;
    const sides: [Side, Snapshot, string][] = [
      ['case', caseSnapshot, input.caseLabel],
      ['mirror', mirror, input.mirrorLabel],
    ];
    for (const path of union) {
      const t = target.get(path);
      for (const [side, snapshot, label] of sides) {
        const lost = snapshot.get(path);
        if (lost === undefined || lost.kind === 'directory') continue;
        if (sameEntry(lost, ancestor.get(path)) || preserved(lost, t, ancestor.get(path))) continue;
        // At this point we know that `lost` is a new version the target would drop: it moves
        // aside on its own side and is copied to the other side under the same new name. The
        // copy's folder is the path's folder, which the target already holds.
        const copyPath = conflictCopyPath(
          path,
          lost.kind === 'file' ? lost.mtimeMs : (input.now ?? 0),
          label,
          taken,
        );
        planned.add(key(copyPath));
        target.set(copyPath, lost);
        const winner: Side = side === 'case' ? 'mirror' : 'case';
        moves[side].push({ from: path, to: copyPath, expected: lost });
        if (lost.kind === 'file') copySources[winner].set(copyPath, { side, path, entry: lost });
        conflicts.push({ path, copyPath, winner, reason: conflictReason(side, lost, t, input.mirrorLabel) });
      }
    }
  }

  // Step 6: each side's operations, over the paths of the three snapshots and the copies.
  const copyPaths = conflicts.map((c) => c.copyPath);
  const paths = copyPaths.length === 0 ? union : sortPaths([...union, ...copyPaths]);
  const plan = (side: Side, current: Snapshot, other: Snapshot, withExec: boolean) =>
    planTransition({
      side,
      current,
      other,
      target,
      paths,
      conflictMoves: moves[side],
      copySources: copySources[side],
      withExec,
    });
  const caseOps = pushOnly ? [] : plan('case', caseSnapshot, mirror, true);
  const mirrorOps = plan('mirror', mirror, caseSnapshot, caps.executableBit);
  if (view.ownNames.size === 0) return { caseOps, mirrorOps, conflicts, problems: exclusions.problems };

  // Step 7: names that differ only in letter case between the sides (a case-only rename).
  const respells = planRespells({
    ownNames: view.ownNames,
    ancestor: input.ancestor,
    caseSnapshot,
    mirror,
    target,
    isExcluded,
    pushOnly,
    mirrorMoves: mirrorOps.filter((op) => op.type === 'rename'),
  });
  return {
    caseOps: [...respells.case, ...respellOperations(caseOps, respells.caseSpellings)],
    // What the mirror creates takes the new spelling too (its other names resolve either way).
    mirrorOps: [...respells.mirror, ...respellOperations(mirrorOps, respells.caseSpellings)],
    conflicts,
    problems: exclusions.problems,
  };
}
