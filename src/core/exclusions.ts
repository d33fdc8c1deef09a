/**
 * @module core/exclusions
 * Paths a reconciliation must leave completely alone, and the problems that say why: scan
 * trouble on either side (frozen), names a case-insensitive mirror cannot hold side by side,
 * and what the mirror cannot store (symbolic links, files over its size limit, names too long).
 * Satchel's own files are excluded silently. An excluded path is excluded with everything
 * below it; no operation touches it on either side and its ancestor entry is not changed.
 */
import type { Capabilities } from './capabilities.js';
import type { CaseClash } from './case-folding.js';
import { caseClashProblem } from './case-folding.js';
import { parentPath, type Snapshot } from './entry.js';
import type { Problem } from './problem.js';
import { isSatchelInternal } from './reserved.js';

/** What reconciliation must not touch. */
export interface Exclusions {
  /** One problem per excluded path that has a reason to report (below it, nothing more). */
  readonly problems: readonly Problem[];
  /** Whether `path` is excluded (it, or one of its ancestors, is an excluded root). */
  isExcluded(path: string): boolean;
  /** Excluded paths present on either side: their parent folders must stay where they are. */
  readonly present: readonly string[];
}

/** Inputs of {@link findExclusions}. */
export interface ExclusionInput {
  readonly caseSnapshot: Snapshot;
  /** The mirror, as the planner sees it (in the case's spelling). */
  readonly mirrorSnapshot: Snapshot;
  readonly mirrorCapabilities: Capabilities;
  readonly mirrorLabel: string;
  /** Case names that clash on a case-insensitive mirror. */
  readonly clashes: readonly CaseClash[];
  /** Paths with scan problems on either side. */
  readonly frozen: ReadonlySet<string>;
}

/** Why the mirror cannot hold the case's `path`, as a problem, or `undefined` when it can. */
function unstorable(path: string, input: ExclusionInput): Problem | undefined {
  const caps = input.mirrorCapabilities;
  const entry = input.caseSnapshot.get(path);
  const name = path.slice(path.lastIndexOf('/') + 1);
  const where = `mirror ${input.mirrorLabel}`;
  // Forbidden characters and trailing dots or spaces are encoded one for one by the replica,
  // so the stored name is as long (in UTF-16 units) as the real one.
  if (name.length > caps.maxNameLength) {
    const message = `the name is ${name.length} characters long; ${where} stores at most ${caps.maxNameLength}`;
    return { path, code: 'name-not-storable', message };
  }
  if (entry?.kind === 'symlink' && !caps.symlinks) {
    const message = `symbolic link not copied: ${where} cannot store symbolic links`;
    return { path, code: 'symlink-unsupported', message };
  }
  if (entry?.kind === 'file' && entry.size > caps.maxFileSize) {
    const message = `file of ${entry.size} bytes not copied: ${where} stores files of at most ${caps.maxFileSize} bytes`;
    return { path, code: 'too-large', message };
  }
  return undefined;
}

/** Finds every path the reconciliation of one pair must leave alone. */
export function findExclusions(input: ExclusionInput): Exclusions {
  const roots = new Set<string>(input.frozen);
  const problems: Problem[] = [];
  for (const clash of input.clashes) {
    roots.add(clash.loser);
    problems.push(caseClashProblem(clash, input.mirrorLabel));
  }
  const isExcluded = (path: string): boolean => {
    if (roots.size === 0) return false;
    for (let p = path; p !== ''; p = parentPath(p)) if (roots.has(p)) return true;
    return false;
  };
  // Plain string order puts every folder before its children (a prefix sorts first).
  for (const path of [...input.caseSnapshot.keys()].sort()) {
    if (isExcluded(path)) continue;
    if (isSatchelInternal(path)) {
      roots.add(path);
      continue;
    }
    const problem = unstorable(path, input);
    if (problem) {
      roots.add(path);
      problems.push(problem);
    }
  }
  for (const path of input.mirrorSnapshot.keys()) if (isSatchelInternal(path)) roots.add(path);
  const present = [...new Set([...input.caseSnapshot.keys(), ...input.mirrorSnapshot.keys()])].filter(
    isExcluded,
  );
  return { problems, isExcluded, present };
}
