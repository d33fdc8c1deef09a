/**
 * @module core/renames
 * Rename detection on one side of a plan: a removal and a creation of the same thing become a
 * single rename, so that moving a file or a whole folder is a rename on every replica that can
 * rename (DESIGN.md: "Renames are renames"), not a delete plus a copy.
 *
 * A removed file or link matches a created one with the same content (hash and executable
 * bit, or link target); a removed folder matches a created folder whose whole subtree is equal
 * (same relative names, same entries). Only unique matches count; among nested folder matches
 * the outermost wins.
 */
import { baseName, comparePaths, isSameOrBelow, parentPath, type Entry, type Snapshot } from './entry.js';

/** One detected rename. */
export interface DetectedRename {
  readonly from: string;
  readonly to: string;
}

/** Lists the children of every folder of a snapshot, built once. */
function childIndex(snapshot: Snapshot): Map<string, string[]> {
  const index = new Map<string, string[]>();
  for (const path of snapshot.keys()) {
    const parent = parentPath(path);
    const list = index.get(parent);
    if (list) list.push(path);
    else index.set(parent, [path]);
  }
  return index;
}

/** A string equal for two subtrees exactly when they hold equal entries under equal names. */
function subtreeSignature(
  snapshot: Snapshot,
  children: Map<string, string[]>,
  path: string,
  withExec: boolean,
): string {
  const entry = snapshot.get(path);
  if (entry === undefined) return '';
  if (entry.kind !== 'directory') return leafKey(entry, withExec);
  const parts = (children.get(path) ?? [])
    .map((child) => `${baseName(child)}\0${subtreeSignature(snapshot, children, child, withExec)}`)
    .sort();
  return `D{${parts.join('\u0001')}}`;
}

/** The matching key of a file or link. */
function leafKey(entry: Entry, withExec: boolean): string {
  if (entry.kind === 'file') return `F${entry.hash}${withExec ? (entry.executable ? '+x' : '-x') : ''}`;
  if (entry.kind === 'symlink') return `L${entry.target}`;
  return 'D';
}

/** Pairs up `from` and `to` items with the same key, where the key is unique on both sides. */
function uniquePairs(
  removed: readonly string[],
  created: readonly string[],
  keyOfRemoved: (p: string) => string,
  keyOfCreated: (p: string) => string,
): DetectedRename[] {
  const groups = new Map<string, { from: string[]; to: string[] }>();
  const group = (key: string): { from: string[]; to: string[] } => {
    let g = groups.get(key);
    if (!g) groups.set(key, (g = { from: [], to: [] }));
    return g;
  };
  for (const p of removed) group(keyOfRemoved(p)).from.push(p);
  for (const p of created) {
    const g = groups.get(keyOfCreated(p));
    if (g) g.to.push(p);
  }
  const pairs: DetectedRename[] = [];
  for (const g of groups.values()) {
    if (g.from.length === 1 && g.to.length === 1) pairs.push({ from: g.from[0]!, to: g.to[0]! });
  }
  return pairs;
}

/**
 * Finds renames on one side. `removed` are paths of `current` the plan removes together with
 * everything below them; `created` are paths absent from this side by the time renames run
 * that the plan creates, with everything below them, as `target` holds them. `withExec` says
 * whether executable bits must match (false on storage without them). Folder renames come
 * first, outermost first; files and links inside a renamed folder are not matched again.
 */
export function detectRenames(
  current: Snapshot,
  target: Snapshot,
  removed: readonly string[],
  created: readonly string[],
  withExec: boolean,
): DetectedRename[] {
  const isDir = (s: Snapshot) => (p: string) => s.get(p)?.kind === 'directory';
  const removedDirs = removed.filter(isDir(current));
  const createdDirs = created.filter(isDir(target));
  const accepted: DetectedRename[] = [];
  if (removedDirs.length > 0 && createdDirs.length > 0) {
    const currentChildren = childIndex(current);
    const targetChildren = childIndex(target);
    const candidates = uniquePairs(
      removedDirs,
      createdDirs,
      (p) => subtreeSignature(current, currentChildren, p, withExec),
      (p) => subtreeSignature(target, targetChildren, p, withExec),
    ).sort((x, y) => comparePaths(x.from, y.from));
    for (const pair of candidates) {
      // Outermost first: a pair inside an accepted one is already covered by it.
      const covered = accepted.some((a) => isSameOrBelow(pair.from, a.from) || isSameOrBelow(pair.to, a.to));
      if (!covered) accepted.push(pair);
    }
  }
  const outside = (side: 'from' | 'to') => (p: string) => !accepted.some((a) => isSameOrBelow(p, a[side]));
  const removedLeaves = removed.filter((p) => !isDir(current)(p)).filter(outside('from'));
  const createdLeaves = created.filter((p) => !isDir(target)(p)).filter(outside('to'));
  const leafPairs = uniquePairs(
    removedLeaves,
    createdLeaves,
    (p) => leafKey(current.get(p)!, withExec),
    (p) => leafKey(target.get(p)!, withExec),
  );
  return [...accepted, ...leafPairs.sort((x, y) => comparePaths(x.to, y.to))];
}
