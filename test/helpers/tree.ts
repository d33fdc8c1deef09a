/**
 * @module test/helpers/tree
 * Write, read and compare folder trees on real file systems.
 *
 * - {@link writeTree} creates files (with content, mtime, mode), folders and symbolic links
 *   from a compact spec.
 * - {@link readTree} reads a tree back, never following links, as path → {@link TreeNode}.
 * - {@link assertTreesEqual} compares two trees, ignoring Satchel's own files at the root
 *   (`.satchel/`, `.satchel-mirror`; `.satchelignore` is user data and is compared), with an
 *   mtime tolerance for file systems of coarse granularity (FAT: 2 s).
 */
import { createHash } from 'node:crypto';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import assert from 'node:assert/strict';

/** A file with optional metadata. `mtime` is a Date or milliseconds since the epoch. */
export interface FileSpec {
  readonly content: string | Buffer;
  readonly mtime?: Date | number;
  readonly mode?: number;
}

/** What one path of a {@link TreeSpec} holds. A plain string or Buffer is a file's content. */
export type NodeSpec = string | Buffer | FileSpec | { readonly symlink: string } | { readonly dir: true };

/** A tree to write: relative path (with `/`) → what it holds. Parents are created as needed. */
export type TreeSpec = Readonly<Record<string, NodeSpec>>;

/** What one path of a real tree holds, as read by {@link readTree}. */
export interface TreeNode {
  readonly kind: 'file' | 'dir' | 'symlink';
  /** Files: the content as UTF-8 text when under 4 KiB, else `sha256:<hex>`. */
  readonly content?: string;
  /** Files: lower-case hex SHA-256 of the content. */
  readonly hash?: string;
  /** Files: size in bytes. */
  readonly size?: number;
  /** Permission bits (`mode & 0o7777`). */
  readonly mode: number;
  /** Modification time in ms since the epoch. */
  readonly mtimeMs: number;
  /** Inode number (to tell a rename from a copy). */
  readonly ino: number;
  /** Symbolic links: the target exactly as stored. */
  readonly target?: string;
}

/** A tree as read by {@link readTree}, sorted by path. */
export type Tree = Map<string, TreeNode>;

/** Whether a root-level name is Satchel's own bookkeeping (`.satchel/`, `.satchel-mirror`, …). */
export function isSatchelInternal(path: string): boolean {
  const first = path.split('/')[0] ?? '';
  return first.startsWith('.satchel') && first !== '.satchelignore';
}

/** Writes `spec` under `root`, creating parents; existing paths are replaced. */
export function writeTree(root: string, spec: TreeSpec): void {
  const mtimes: [string, Date | number][] = [];
  for (const [rel, node] of Object.entries(spec)) {
    const p = join(root, rel);
    mkdirSync(dirname(p), { recursive: true });
    if (typeof node === 'string' || Buffer.isBuffer(node)) {
      replaceWithFile(p, node);
    } else if ('symlink' in node) {
      rmSync(p, { recursive: true, force: true });
      symlinkSync(node.symlink, p);
    } else if ('dir' in node) {
      mkdirSync(p, { recursive: true });
    } else {
      replaceWithFile(p, node.content);
      if (node.mode !== undefined) chmodSync(p, node.mode);
      if (node.mtime !== undefined) mtimes.push([p, node.mtime]);
    }
  }
  // Times last: writing a later file must not disturb an earlier one's mtime.
  for (const [p, t] of mtimes)
    utimesSync(p, t instanceof Date ? t : new Date(t), t instanceof Date ? t : new Date(t));
}

function replaceWithFile(p: string, content: string | Buffer): void {
  try {
    if (!lstatSync(p).isFile()) rmSync(p, { recursive: true, force: true });
  } catch {
    // Absent: nothing to replace.
  }
  writeFileSync(p, content);
}

/** Lower-case hex SHA-256 of `data`. */
export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Options of {@link readTree}. */
export interface ReadTreeOptions {
  /** Paths to leave out (with everything below them); default {@link isSatchelInternal}. */
  readonly ignore?: (path: string) => boolean;
}

/** Reads every path under `root` (links are read, never followed), sorted by path. */
export function readTree(root: string, options: ReadTreeOptions = {}): Tree {
  const ignore = options.ignore ?? isSatchelInternal;
  const out: [string, TreeNode][] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel === '' ? root : join(root, rel))) {
      const path = rel === '' ? name : `${rel}/${name}`;
      if (ignore(path)) continue;
      const p = join(root, path);
      const st = lstatSync(p);
      const common = { mode: st.mode & 0o7777, mtimeMs: st.mtimeMs, ino: st.ino };
      if (st.isSymbolicLink()) {
        out.push([path, { kind: 'symlink', target: readlinkSync(p), ...common }]);
      } else if (st.isDirectory()) {
        out.push([path, { kind: 'dir', ...common }]);
        walk(path);
      } else if (st.isFile()) {
        const data = readFileSync(p);
        const hash = sha256(data);
        const content = data.length < 4096 ? data.toString('utf8') : `sha256:${hash}`;
        out.push([path, { kind: 'file', content, hash, size: data.length, ...common }]);
      } else {
        throw new Error(`readTree: ${p} is neither file, folder nor link`);
      }
    }
  };
  walk('');
  out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return new Map(out);
}

/** Options of {@link assertTreesEqual}. */
export interface CompareOptions {
  /**
   * Compare file mtimes within this many ms, inclusive (the coarser side's granularity: 1 on
   * ext4, 2000 on FAT); `false` to ignore mtimes. Default 1.
   */
  readonly mtimeToleranceMs?: number | false;
  /** Compare the owner-executable bit of files (default true; false for FAT/exFAT). */
  readonly execBit?: boolean;
  /** Compare symbolic links (default true). */
  readonly symlinks?: boolean;
}

/**
 * A readable list of differences between two trees: kinds, contents, link targets, and
 * (as configured) executable bits and file mtimes. Empty when they are equal.
 */
export function diffTrees(a: Tree, b: Tree, options: CompareOptions = {}): string[] {
  const tolerance = options.mtimeToleranceMs ?? 1;
  const diffs: string[] = [];
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  for (const path of paths) {
    const x = a.get(path);
    const y = b.get(path);
    if (x === undefined || y === undefined) {
      diffs.push(`${path}: only in ${x ? 'first' : 'second'} (${(x ?? y)!.kind})`);
      continue;
    }
    if (x.kind !== y.kind) {
      diffs.push(`${path}: ${x.kind} vs ${y.kind}`);
      continue;
    }
    if (x.kind === 'symlink' && options.symlinks !== false && x.target !== y.target) {
      diffs.push(`${path}: link to ${x.target} vs ${y.target}`);
    }
    if (x.kind !== 'file') continue;
    if (x.hash !== y.hash)
      diffs.push(`${path}: content ${JSON.stringify(x.content)} vs ${JSON.stringify(y.content)}`);
    if (options.execBit !== false && (x.mode & 0o100) !== (y.mode & 0o100)) {
      diffs.push(`${path}: mode ${x.mode.toString(8)} vs ${y.mode.toString(8)}`);
    }
    // Within the tolerance, inclusive (+1 µs for float noise): a copy whose mtime was rounded
    // to whole ms may sit up to 1 ms off a source with sub-ms precision.
    if (tolerance !== false && Math.abs(x.mtimeMs - y.mtimeMs) > tolerance + 0.001) {
      diffs.push(
        `${path}: mtime ${new Date(x.mtimeMs).toISOString()} vs ${new Date(y.mtimeMs).toISOString()}`,
      );
    }
  }
  return diffs;
}

/** Fails with the list of differences unless the trees under `a` and `b` are equal. */
export function assertTreesEqual(a: string | Tree, b: string | Tree, options: CompareOptions = {}): void {
  const ta = typeof a === 'string' ? readTree(a) : a;
  const tb = typeof b === 'string' ? readTree(b) : b;
  const diffs = diffTrees(ta, tb, options);
  const names = `${typeof a === 'string' ? a : 'first tree'} vs ${typeof b === 'string' ? b : 'second tree'}`;
  assert.deepEqual(diffs, [], `trees differ (${names}):\n  ${diffs.join('\n  ')}`);
}

/** The paths of `tree` that are conflict copies (`<stem>.conflict-YYYYMMDD-HHMMSS-<who>[.ext]`). */
export function conflictCopies(tree: Tree): string[] {
  return [...tree.keys()].filter((p) => /\.conflict-\d{8}-\d{6}-/.test(p.slice(p.lastIndexOf('/') + 1)));
}

/**
 * Every path under `root` whose name looks like a Satchel temporary file (`.satchel-tmp-*`),
 * anywhere in the tree; only the case's state folder `.satchel/` is not looked into.
 */
export function satchelTempFiles(root: string): string[] {
  const all = readTree(root, { ignore: (p) => p === '.satchel' });
  return [...all.keys()].filter((p) => /(^|\/)\.satchel-(tmp|stage|staging)/.test(p));
}

/** A plain object view of a tree (path → content or kind) for compact assertions. */
export function contents(tree: Tree): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [p, n] of tree)
    out[p] = n.kind === 'file' ? n.content! : n.kind === 'dir' ? '<dir>' : `-> ${n.target}`;
  return out;
}
