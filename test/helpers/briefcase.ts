/**
 * @module test/helpers/briefcase
 * Pieces of the briefcase end-to-end test (two computers, one stick): a git repository driven
 * by the real `git`, the stick's tree with Satchel's name encoding undone, the expected view of
 * a tree spec, waiting for a daemon event, a cheap look for temporary files while a copy runs,
 * and the zones the two "computers" live in.
 */
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { runTool } from './process.js';
import { diffTrees, readTree, sha256, type CompareOptions, type Tree, type TreeSpec } from './tree.js';
import { readEvents, waitUntil, type LoggedEvent } from './watch.js';

// ---- time zones ---------------------------------------------------------------------------

/**
 * Where a computer is: `tz` is the `TZ` its satchel (and the exfat-fuse driver) runs with;
 * `fatOffsetMinutes` is the offset the kernel vfat driver converts FAT's zone-less local times
 * with on that computer (`time_offset=`), minutes east of UTC.
 */
export interface Zone {
  readonly tz: string;
  readonly fatOffsetMinutes: number;
}

/** The office on Monday (New York, winter time). */
export const OFFICE_MONDAY: Zone = { tz: 'America/New_York', fatOffsetMinutes: -300 };
/** The office on Tuesday: the clocks went forward overnight (New York, summer time). */
export const OFFICE_TUESDAY: Zone = { tz: 'America/New_York', fatOffsetMinutes: -240 };
/** The home computer, far away. */
export const HOME: Zone = { tz: 'Asia/Tokyo', fatOffsetMinutes: 540 };

// ---- git ----------------------------------------------------------------------------------

/** Runs `git -C <dir> args…` with a fixed identity and no user or system config; returns stdout. */
export function git(dir: string, args: readonly string[]): string {
  return runTool(
    'git',
    [
      '-C',
      dir,
      '-c',
      'user.name=Satchel Test',
      '-c',
      'user.email=test@satchel.invalid',
      '-c',
      'init.defaultBranch=main',
      '-c',
      'gc.auto=0',
      '-c',
      'safe.directory=*',
      ...args,
    ],
    { env: { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', GIT_TERMINAL_PROMPT: '0' } },
  ).stdout;
}

/** `git log` of HEAD as `<hash> <subject>` lines. */
export function gitLog(dir: string): string[] {
  return git(dir, ['log', '--format=%H %s']).trim().split('\n');
}

/** Asserts `git fsck --full --strict` finds nothing wrong (exit 0, no error or missing object). */
export function assertGitFsck(dir: string): void {
  const r = runTool(
    'git',
    ['-C', dir, '-c', 'safe.directory=*', 'fsck', '--full', '--strict', '--no-progress'],
    {
      check: false,
      env: { GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null' },
    },
  );
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, `git fsck in ${dir} failed:\n${out}`);
  assert.doesNotMatch(out, /^(error|missing|broken|fatal)/m, `git fsck in ${dir}:\n${out}`);
}

// ---- trees --------------------------------------------------------------------------------

/** The look-alikes Satchel stores on FAT for `:?*<>|"\`, back to the characters. */
const FULLWIDTH = /[：？＊＜＞｜＂＼]/g;

/** Undoes the stick's name encoding of one path (look-alike characters, trailing `．`/`␠`). */
export function decodeStickPath(path: string): string {
  return path
    .split('/')
    .map((seg) =>
      seg
        .replace(FULLWIDTH, (c) => String.fromCodePoint(c.codePointAt(0)! - 0xfee0))
        .replace(/．$/, '.')
        .replace(/␠$/, ' '),
    )
    .join('/');
}

/** The stick's tree under the case's names (see {@link decodeStickPath}). */
export function readStickTree(stickDir: string): Tree {
  return new Map([...readTree(stickDir)].map(([p, n]) => [decodeStickPath(p), n]));
}

/** A tree without the paths `drop` selects (and everything below them). */
export function without(tree: Tree, drop: (path: string) => boolean): Tree {
  return new Map([...tree].filter(([p]) => !drop(p)));
}

/**
 * What {@link contents} of `readTree` shows for a tree written from `files` (paths → content)
 * plus `emptyDirs`: every file, every folder on the way (`<dir>`).
 */
export function expectedContents(
  files: Readonly<Record<string, string | Buffer>>,
  emptyDirs: readonly string[] = [],
): Record<string, string> {
  const out: Record<string, string> = {};
  const addDirs = (p: string): void => {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) out[parts.slice(0, i).join('/')] = '<dir>';
  };
  for (const [p, c] of Object.entries(files)) {
    addDirs(p);
    const data = typeof c === 'string' ? Buffer.from(c) : c;
    out[p] = data.length < 4096 ? data.toString('utf8') : `sha256:${sha256(data)}`;
  }
  for (const d of emptyDirs) {
    addDirs(d);
    out[d] = '<dir>';
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** The spec as plain path → content (no metadata), for {@link expectedContents}. */
export function specFiles(spec: TreeSpec): Record<string, string | Buffer> {
  const out: Record<string, string | Buffer> = {};
  for (const [p, n] of Object.entries(spec)) {
    if (typeof n === 'string' || Buffer.isBuffer(n)) out[p] = n;
    else if ('content' in n) out[p] = n.content;
  }
  return out;
}

/** Deterministic, incompressible-looking bytes (a hash chain), `size` long. */
export function patternBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let block = Buffer.from(sha256(seed), 'hex');
  for (let off = 0; off < size; off += block.length) {
    block.copy(out, off);
    block = Buffer.from(sha256(block), 'hex');
  }
  return out;
}

// ---- while a copy runs --------------------------------------------------------------------

/** Satchel's temporary files directly in `dir`, with their sizes (never throws). */
export function tempFilesIn(dir: string): { name: string; size: number }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: { name: string; size: number }[] = [];
  for (const name of names) {
    if (!/^\.satchel-(tmp|stage|staging)/.test(name)) continue;
    try {
      out.push({ name, size: statSync(join(dir, name)).size });
    } catch {
      // Renamed or removed between the listing and the stat.
    }
  }
  return out;
}

/** The size of `file`, or undefined when it cannot be stat'ed. */
export function sizeOf(file: string): number | undefined {
  try {
    return statSync(file).size;
  } catch {
    return undefined;
  }
}

// ---- daemon events ------------------------------------------------------------------------

/**
 * Waits until the case's event log holds, after its first `since` lines, an event `match`
 * accepts; returns it. Fails after `timeoutMs` with the events seen.
 */
export async function waitForEvent(
  casePath: string,
  what: string,
  match: (e: LoggedEvent) => boolean,
  options: { since: number; timeoutMs?: number; abortIf?: () => string | undefined },
): Promise<LoggedEvent> {
  let found: LoggedEvent | undefined;
  await waitUntil(
    what,
    () => {
      found = readEvents(casePath).slice(options.since).find(match);
      return found !== undefined;
    },
    {
      timeoutMs: options.timeoutMs ?? 60_000,
      intervalMs: 50,
      abortIf: options.abortIf,
      detail: () =>
        readEvents(casePath)
          .slice(options.since)
          .map((e) => `  ${JSON.stringify(e)}`)
          .join('\n'),
    },
  );
  return found!;
}

/** Events of `mirror` logged after the first `since` lines. */
export function mirrorEvents(casePath: string, mirror: string, since: number): LoggedEvent[] {
  return readEvents(casePath)
    .slice(since)
    .filter((e) => e.mirror === mirror);
}

// ---- comparing replicas -------------------------------------------------------------------

/**
 * Whether `path` is a loose or packed git object. Git "freshens" an object it would write
 * again by setting its mtime to now (utime), without changing a byte; Satchel decides by
 * content, so such a touch stays on the side where it happened.
 */
export function isGitObject(path: string): boolean {
  return /(^|\/)\.git\/objects\//.test(path);
}

/** Options of {@link replicaDiff}: those of `diffTrees`, and where mtimes may differ. */
export interface ReplicaCompareOptions extends CompareOptions {
  /**
   * Paths whose mtimes are not compared (contents still are); default {@link isGitObject}.
   * A path both sides changed to the same content is no conflict, and Satchel, deciding by
   * content, leaves each side its own mtime there.
   */
  readonly timesMayDiffer?: (path: string) => boolean;
}

/**
 * The differences between two replicas' trees: contents, kinds and (as configured) exec bits
 * everywhere, and mtimes everywhere but where `timesMayDiffer` (git's object store by default).
 */
export function replicaDiff(a: Tree, b: Tree, options: ReplicaCompareOptions = {}): string[] {
  const content = diffTrees(a, b, { ...options, mtimeToleranceMs: false });
  if (options.mtimeToleranceMs === false) return content;
  const exempt = options.timesMayDiffer ?? isGitObject;
  const times = diffTrees(without(a, exempt), without(b, exempt), options);
  return [...content, ...times.filter((d) => !content.includes(d))];
}

/** Fails with the list of differences unless the two replicas hold the same (see {@link replicaDiff}). */
export function assertSameReplica(
  a: string | Tree,
  b: string | Tree,
  options: ReplicaCompareOptions = {},
): void {
  const ta = typeof a === 'string' ? readTree(a) : a;
  const tb = typeof b === 'string' ? readTree(b) : b;
  const diffs = replicaDiff(ta, tb, options);
  const names = `${typeof a === 'string' ? a : 'first tree'} vs ${typeof b === 'string' ? b : 'second tree'}`;
  assert.deepEqual(diffs, [], `trees differ (${names}):\n  ${diffs.join('\n  ')}`);
}

/**
 * Waits until `diffs` (a list of differences still left) is empty; fails naming `what` with the
 * first differences after `timeoutMs` (default 120 s).
 */
export async function waitForNoDiffs(
  what: string,
  diffs: () => string[],
  timeoutMs = 120_000,
): Promise<void> {
  await waitUntil(what, () => diffs().length === 0, {
    timeoutMs,
    intervalMs: 250,
    detail: () => diffs().slice(0, 30).join('\n'),
  });
}
