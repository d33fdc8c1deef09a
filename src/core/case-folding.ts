/**
 * @module core/case-folding
 * Case-insensitive mirrors (FAT, exFAT, SMB, macOS volumes) hold `README.md` and `readme.md`
 * as one file and may report either spelling. The core only reasons in the case's spelling, so
 * a mirror snapshot is re-spelled to the case's (or the ancestor's) names wherever they are
 * equal under folding, and names of the case that only differ in letter case are a clash: one
 * of them is replicated, the others are reported and left alone.
 */
import { baseName, comparePaths, parentPath, type Entry, type Snapshot } from './entry.js';
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
): Snapshot {
  const spelling = new Map<string, string>();
  for (const snapshot of preferred) {
    for (const path of snapshot.keys()) {
      if (skip(path)) continue;
      const key = foldKey(path);
      if (!spelling.has(key)) spelling.set(key, path);
    }
  }
  const mapped = new Map<string, string>();
  const out = new Map<string, Entry>();
  // Plain string order puts every folder before its children (a prefix sorts first).
  for (const path of [...mirror.keys()].sort()) {
    const parent = parentPath(path);
    const newParent = parent === '' ? '' : (mapped.get(parent) ?? parent);
    const candidate = newParent === '' ? baseName(path) : `${newParent}/${baseName(path)}`;
    const name = spelling.get(foldKey(candidate)) ?? candidate;
    mapped.set(path, name);
    if (!out.has(name)) out.set(name, mirror.get(path)!);
  }
  return out;
}
