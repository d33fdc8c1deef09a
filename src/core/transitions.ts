/**
 * @module core/transitions
 * Turns "this side holds `current`, it must end up holding `target`" into the ordered
 * operations one replica applies, with the `expected` state of each operation exactly what the
 * path holds when that operation runs. The order (the replica applies it as given):
 *
 * 0. conflict renames: the losing version moves aside to its conflict copy name;
 * 1. removes of files and links;
 * 2. mkdirs, parents first;
 * 3. renames (detected by {@link detectRenames});
 * 4. writes, symlinks and chmods;
 * 5. removes of folders, children first;
 * 6. writes and symlinks at paths that were folders (removed in step 5).
 */
import { ancestorsOf, sameContent, sameEntry, type Entry, type Snapshot } from './entry.js';
import {
  operationPath,
  type ContentRef,
  type Operation,
  type RemoveOperation,
  type RenameOperation,
  type Side,
} from './plan.js';
import { detectRenames } from './renames.js';

/** A losing version moved aside on its own side before anything else happens. */
export interface ConflictMove {
  readonly from: string;
  readonly to: string;
  readonly expected: Entry;
}

/** Everything needed to plan one side. */
export interface TransitionInput {
  readonly side: Side;
  /** What this side holds now (the mirror as the planner sees it). */
  readonly current: Snapshot;
  /** What the other side holds now: the default content source of writes. */
  readonly other: Snapshot;
  /** What this side must hold afterwards, for every path not excluded. */
  readonly target: Snapshot;
  /** Every path to consider (of `current` and `target`), in {@link sortPaths} order, none excluded. */
  readonly paths: readonly string[];
  /** Losing versions on this side, renamed to their conflict copy names first. */
  readonly conflictMoves: readonly ConflictMove[];
  /** Content sources of conflict copies written on this side (copy path → source). */
  readonly copySources: ReadonlyMap<string, ContentRef>;
  /** Whether this side stores executable bits (if not, they never cause operations). */
  readonly withExec: boolean;
}

/**
 * `paths` sorted in {@link comparePaths} order (every folder before its children), fast:
 * comparing segment by segment is the same as comparing the strings with `/` taken as the
 * lowest character, which a path segment never contains.
 */
export function sortPaths(paths: Iterable<string>): string[] {
  return [...paths]
    .map((p) => [p.replaceAll('/', '\0'), p] as const)
    .sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))
    .map(([, p]) => p);
}

const otherSide = (side: Side): Side => (side === 'case' ? 'mirror' : 'case');

/** The operations that make `current` equal to `target` on one side, in applying order. */
export function planTransition(input: TransitionInput): Operation[] {
  const { target, withExec } = input;
  const same = withExec ? sameEntry : sameContent;
  const current = new Map(input.current);
  const conflictOps: Operation[] = input.conflictMoves.map((m) => {
    current.delete(m.from);
    current.set(m.to, m.expected);
    return { type: 'rename', from: m.from, to: m.to, expected: m.expected };
  });
  // At this point `current` is what this side holds once the losing versions moved aside.

  const source = (path: string, entry: Entry): ContentRef => {
    const copy = input.copySources.get(path);
    if (copy) return copy;
    const there = input.other.get(path);
    if (entry.kind === 'file' && there?.kind === 'file' && there.hash === entry.hash) {
      return { side: otherSide(input.side), path, entry: there };
    }
    throw new Error(`bug: no content source for ${path} on the ${input.side} side`);
  };
  const put = (path: string, entry: Entry, expected: Entry | undefined): Operation => {
    if (entry.kind === 'symlink') return { type: 'symlink', path, target: entry.target, expected };
    if (entry.kind === 'file') return { type: 'write', path, entry, from: source(path, entry), expected };
    throw new Error(`bug: put of a directory at ${path}`);
  };

  const fileRemoves: RemoveOperation[] = [];
  const mkdirs: Operation[] = [];
  const puts: Operation[] = [];
  const dirRemoves: RemoveOperation[] = [];
  const putsOverDirs: Operation[] = [];
  const removed: string[] = [];
  const created: string[] = [];
  for (const path of input.paths) {
    const s = current.get(path);
    const t = target.get(path);
    if (same(s, t)) continue;
    // At this point we know that this side must change at `path`.
    if (s?.kind === 'file' && t?.kind === 'file' && s.hash === t.hash) {
      puts.push({ type: 'chmod', path, executable: t.executable, expected: s });
      continue;
    }
    // At this point we know that the content or the kind changes (or the path comes or goes).
    if (s?.kind === 'directory') {
      // Everything below is absent from the target (its parents would be folders otherwise),
      // so the children are removed before the folder, or the folder is renamed as a whole.
      dirRemoves.push({ type: 'remove', path, expected: s });
      removed.push(path);
    } else if (s !== undefined && (t === undefined || t.kind === 'directory')) {
      fileRemoves.push({ type: 'remove', path, expected: s });
      // A file that becomes a folder is still there when renames run: not a rename source.
      if (t === undefined) removed.push(path);
    }
    if (t === undefined) continue;
    if (t.kind === 'directory') {
      // Whatever was here was a file or link, removed in step 1.
      mkdirs.push({ type: 'mkdir', path, expected: undefined });
      created.push(path);
    } else if (s?.kind === 'directory') {
      putsOverDirs.push(put(path, t, undefined));
    } else {
      puts.push(put(path, t, s));
      if (s === undefined) created.push(path);
    }
  }

  const renames: RenameOperation[] = detectRenames(current, target, removed, created, withExec).map((r) => {
    const expected = current.get(r.from)!;
    const wanted = target.get(r.to);
    // A file moved into place must still carry the source's modification time.
    return wanted?.kind === 'file' && expected.kind === 'file' && wanted.mtimeMs !== expected.mtimeMs
      ? { type: 'rename', from: r.from, to: r.to, expected, mtimeMs: wanted.mtimeMs }
      : { type: 'rename', from: r.from, to: r.to, expected };
  });
  // Operations inside a renamed subtree are covered by the rename.
  const froms = new Set(renames.map((r) => r.from));
  const tos = new Set(renames.map((r) => r.to));
  const within = (set: ReadonlySet<string>, path: string): boolean =>
    set.size > 0 && (set.has(path) || ancestorsOf(path).some((a) => set.has(a)));
  const notRenamedFrom = (op: Operation): boolean => op.type !== 'remove' || !within(froms, op.path);
  const notRenamedTo = (op: Operation): boolean => op.type === 'rename' || !within(tos, operationPath(op));
  return [
    ...conflictOps,
    ...fileRemoves.filter(notRenamedFrom),
    ...mkdirs.filter(notRenamedTo),
    ...renames,
    ...puts.filter(notRenamedTo),
    ...dirRemoves.filter(notRenamedFrom).reverse(),
    ...putsOverDirs,
  ];
}
