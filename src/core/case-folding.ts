/**
 * @module core/case-folding
 * Case-insensitive mirrors (FAT, exFAT, SMB, macOS volumes) hold `README.md` and `readme.md`
 * as one file and may report either spelling. The core only reasons in the case's spelling, so
 * a mirror snapshot is re-spelled to the case's (or the ancestor's) names wherever they are
 * equal under folding, and names of the case that only differ in letter case are a clash: one
 * of them is replicated, the others are reported and left alone.
 */
import { baseName, comparePaths, isSameOrBelow, parentPath, type Entry, type Snapshot } from './entry.js';
import type { Operation, RenameOperation } from './plan.js';
import type { Problem } from './problem.js';

/** The key under which a case-insensitive file system treats two paths as the same name. */
export function foldKey(path: string): string {
  return path.normalize('NFC').toLowerCase();
}

/** Case paths whose name only differs in letter case from a sibling that is replicated instead. */
export interface CaseClash {
  /** The case path that is not replicated (with everything below it). */
  readonly loser: string;
  /** The sibling spelling that is replicated. */
  readonly winner: string;
}

/**
 * Finds names of the case that a case-insensitive mirror cannot hold side by side (siblings
 * equal under {@link foldKey}). The replicated one is the spelling the mirror already holds,
 * else the one the ancestor holds, else the first in sort order; the others are losers.
 * Below a losing folder nothing is examined (the folder is left alone as a whole).
 */
export function findCaseClashes(caseSnapshot: Snapshot, mirror: Snapshot, ancestor: Snapshot): CaseClash[] {
  // Siblings are grouped by their exact parent and folded name: paths below two clashing
  // folders have different parents, and the folders themselves already clash.
  const groups = new Map<string, string[]>();
  for (const path of caseSnapshot.keys()) {
    const key = parentPath(path) + '\0' + foldKey(baseName(path));
    const group = groups.get(key);
    if (group) group.push(path);
    else groups.set(key, [path]);
  }
  // The mirror may spell parent folders differently: match its names by folded parent.
  const mirrorNames = new Set<string>();
  for (const path of mirror.keys()) mirrorNames.add(foldKey(parentPath(path)) + '\0' + baseName(path));
  const mirrorHolds = (p: string): boolean => mirrorNames.has(foldKey(parentPath(p)) + '\0' + baseName(p));

  const clashes: CaseClash[] = [];
  for (const group of groups.values()) {
    if (group.length < 2) continue;
    group.sort();
    const winner = group.find(mirrorHolds) ?? group.find((p) => ancestor.has(p)) ?? group[0]!;
    for (const loser of group) if (loser !== winner) clashes.push({ loser, winner });
  }
  const losers = new Set(clashes.map((c) => c.loser));
  const belowLoser = (p: string): boolean => {
    for (let dir = parentPath(p); dir !== ''; dir = parentPath(dir)) if (losers.has(dir)) return true;
    return false;
  };
  return clashes.filter((c) => !belowLoser(c.loser)).sort((x, y) => comparePaths(x.loser, y.loser));
}

/** The `case-clash` problem for one losing case path. */
export function caseClashProblem(clash: CaseClash, mirrorLabel: string): Problem {
  return {
    path: clash.loser,
    code: 'case-clash',
    message: `"${clash.loser}" differs from "${clash.winner}" only in letter case; mirror ${mirrorLabel} cannot hold both, so it is not replicated there`,
  };
}

/** A mirror snapshot in other spellings, and where the mirror's own spelling differs. */
export interface Respelled {
  readonly snapshot: Snapshot;
  /**
   * Paths of {@link snapshot} whose last name the mirror spells differently (under folding it
   * is the same name): path → the mirror's own spelling of that last name.
   */
  readonly ownNames: ReadonlyMap<string, string>;
}

/**
 * `snapshot` re-spelled folder by folder (parents first): `nameFor` gets each path under its
 * parent's new spelling and gives its new spelling; of paths landing on one name the first is
 * kept, and `kept(path, name, candidate)` hears of each kept one.
 */
function respellTree(
  snapshot: Snapshot,
  nameFor: (candidate: string) => string,
  kept: (path: string, name: string, candidate: string) => void,
): Map<string, Entry> {
  const mapped = new Map<string, string>();
  const out = new Map<string, Entry>();
  // Plain string order puts every folder before its children (a prefix sorts first).
  for (const path of [...snapshot.keys()].sort()) {
    const parent = parentPath(path);
    const newParent = parent === '' ? '' : (mapped.get(parent) ?? parent);
    const candidate = newParent === '' ? baseName(path) : `${newParent}/${baseName(path)}`;
    const name = nameFor(candidate);
    mapped.set(path, name);
    if (out.has(name)) continue;
    out.set(name, snapshot.get(path)!);
    kept(path, name, candidate);
  }
  return out;
}

/**
 * The mirror snapshot re-spelled: every mirror path equal under folding to a path of one of
 * `preferred` (searched in order, first wins) takes that spelling; other names keep the
 * mirror's spelling below their re-spelled parent. `skip` tells paths that must not lend their
 * spelling (clash losers and below). If two mirror paths land on one name, the first is kept.
 */
export function respell(
  mirror: Snapshot,
  preferred: readonly Snapshot[],
  skip: (path: string) => boolean = () => false,
): Respelled {
  const spelling = new Map<string, string>();
  for (const snapshot of preferred) {
    for (const path of snapshot.keys()) {
      if (skip(path)) continue;
      const key = foldKey(path);
      if (!spelling.has(key)) spelling.set(key, path);
    }
  }
  const ownNames = new Map<string, string>();
  const out = respellTree(
    mirror,
    (candidate) => spelling.get(foldKey(candidate)) ?? candidate,
    (path, name, candidate) => {
      if (name !== candidate) ownNames.set(name, baseName(path));
    },
  );
  return { snapshot: out, ownNames };
}

/**
 * The ancestor in the case's spelling, towards a case-insensitive mirror: a name the ancestor
 * spells otherwise than the case (one of the sides changed only its letter case) is the same
 * name there, so its content counts as the ancestor of the case's name. A name the case holds
 * in several spellings (a clash), or also exactly as the ancestor spells it, stays as it is.
 */
export function ancestorInCaseSpelling(ancestor: Snapshot, caseSnapshot: Snapshot): Snapshot {
  const byFold = new Map<string, string | null>();
  for (const path of caseSnapshot.keys()) {
    const key = foldKey(path);
    byFold.set(key, byFold.has(key) ? null : path);
  }
  let changed = false;
  const out = respellTree(
    ancestor,
    (candidate) => {
      const spelled = caseSnapshot.has(candidate) ? null : byFold.get(foldKey(candidate));
      return spelled === undefined || spelled === null || ancestor.has(spelled) ? candidate : spelled;
    },
    (path, name) => {
      if (name !== path) changed = true;
    },
  );
  return changed ? out : ancestor;
}

/** What {@link planRespells} looks at: one pair's reconciliation towards a case-insensitive mirror. */
export interface RespellInput {
  /** The mirror's own spellings where they differ from the view ({@link Respelled.ownNames}). */
  readonly ownNames: ReadonlyMap<string, string>;
  readonly ancestor: Snapshot;
  readonly caseSnapshot: Snapshot;
  /** The mirror in the case's spelling. */
  readonly mirror: Snapshot;
  /** What both sides hold after the plan. */
  readonly target: Snapshot;
  readonly isExcluded: (path: string) => boolean;
  readonly pushOnly: boolean;
  /** The plan's renames on the mirror (names below them keep the mirror's spelling as they move). */
  readonly mirrorMoves: readonly Spelling[];
}

/** Case-only renames that make both sides spell every name alike. */
export interface Respells {
  /** Mirror renames to the case's spelling: run first (names resolve without letter case there). */
  readonly mirror: RenameOperation[];
  /** Case renames to the mirror's spelling: run first too, deepest first. */
  readonly case: RenameOperation[];
  /** Every name the case takes the mirror's spelling of, renamed or (not there yet) created so. */
  readonly caseSpellings: Spelling[];
}

/** A name and its new spelling. */
export interface Spelling {
  readonly from: string;
  readonly to: string;
}

/**
 * The renames that carry a change of letter case across a case-insensitive mirror, which sees
 * `readme.md` and `README.md` as one name (so the plan itself finds nothing to do). Who renamed
 * is told by the ancestor's spelling: the case kept it and the mirror did not, the mirror
 * renamed and the case follows; otherwise (the case renamed, both did, or a new pair) the
 * mirror takes the case's spelling. Both kinds run before the plan's other operations, on
 * what each side holds now; the case's operations then go to the new names
 * ({@link respellOperations}). A path the plan removes keeps its name.
 */
export function planRespells(input: RespellInput): Respells {
  const out: Respells = { mirror: [], case: [], caseSpellings: [] };
  const movedTo = (path: string): string => {
    for (const r of input.mirrorMoves)
      if (path !== r.from && isSameOrBelow(path, r.from)) return r.to + path.slice(r.from.length);
    return path;
  };
  const sibling = (path: string, name: string): string => {
    const parent = parentPath(path);
    return parent === '' ? name : `${parent}/${name}`;
  };
  for (const [path, own] of input.ownNames) {
    const m = input.mirror.get(path);
    // Where the name ends up: here, or where the plan moves a folder above it on the mirror
    // (a name renamed itself takes the case's new name).
    const at = input.target.has(path) ? path : movedTo(path);
    if (m === undefined || !input.target.has(at) || input.isExcluded(path)) continue;
    const ownPath = sibling(path, own);
    const ownAt = sibling(at, own);
    const mirrorRenamed =
      !input.pushOnly &&
      input.ancestor.has(path) &&
      !input.ancestor.has(ownPath) &&
      !input.caseSnapshot.has(ownAt) &&
      !input.target.has(ownAt);
    if (!mirrorRenamed) {
      out.mirror.push({ type: 'rename', from: ownPath, to: path, expected: m, respell: true });
      continue;
    }
    const c = input.caseSnapshot.get(at);
    if (c !== undefined) out.case.push({ type: 'rename', from: at, to: ownAt, expected: c, respell: true });
    out.caseSpellings.push({ from: at, to: ownAt });
  }
  // Deepest first on the case: a folder's children are renamed under its old name.
  out.case.sort((a, b) => comparePaths(b.from, a.from));
  out.caseSpellings.sort((a, b) => comparePaths(b.from, a.from));
  return out;
}

/**
 * `ops` in new `spellings` (deepest first): every path at or below a respelled name takes the
 * new spelling (content sources were read before anything changed, so they keep theirs).
 */
export function respellOperations(ops: readonly Operation[], spellings: readonly Spelling[]): Operation[] {
  if (spellings.length === 0) return [...ops];
  const moved = (p: string): string => {
    for (const r of spellings) if (isSameOrBelow(p, r.from)) p = r.to + p.slice(r.from.length);
    return p;
  };
  return ops.map((op) =>
    op.type === 'rename'
      ? { ...op, from: moved(op.from), to: moved(op.to) }
      : { ...op, path: moved(op.path) },
  );
}
