/**
 * @module watch/coalescer.test
 * Table tests for the pure coalescer, shaped like VS Code's watcherCoalescer tests: each case
 * is the event sequence a real program produces (written out from strace of the program where
 * it matters) and the hints it must fold into. A property test then drives a model file system
 * with random operations, generates the kernel's events for them, and checks that replaying
 * the hints on the starting tree (reading the real tree only where a hint says "look") gives
 * exactly the final tree: no change is ever missed, and every rename hint is true.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { IgnoreRules } from '../core/ignore-rules.js';
import { coalesceEvents, RESCAN_ROOT, type PathEvent, type WatchHint } from './coalescer.js';
import {
  IN_ATTRIB,
  IN_CLOSE_WRITE,
  IN_CREATE,
  IN_DELETE,
  IN_DELETE_SELF,
  IN_ISDIR,
  IN_MODIFY,
  IN_MOVE_SELF,
  IN_MOVED_FROM,
  IN_MOVED_TO,
  IN_Q_OVERFLOW,
  IN_UNMOUNT,
} from './inotify-constants.js';

// ---- event and hint shorthands (defined once, used by every case) -------------------------

const ev = (mask: number, path: string, cookie = 0): PathEvent => ({ path, mask, cookie });
const CREATE = (p: string): PathEvent => ev(IN_CREATE, p);
const MKDIR = (p: string): PathEvent => ev(IN_CREATE | IN_ISDIR, p);
const MODIFY = (p: string): PathEvent => ev(IN_MODIFY, p);
const ATTRIB = (p: string): PathEvent => ev(IN_ATTRIB, p);
const CLOSE = (p: string): PathEvent => ev(IN_CLOSE_WRITE, p);
const DELETE = (p: string): PathEvent => ev(IN_DELETE, p);
const RMDIR = (p: string): PathEvent => ev(IN_DELETE | IN_ISDIR, p);
const FROM = (p: string, cookie: number, dir = false): PathEvent =>
  ev(IN_MOVED_FROM | (dir ? IN_ISDIR : 0), p, cookie);
const TO = (p: string, cookie: number, dir = false): PathEvent =>
  ev(IN_MOVED_TO | (dir ? IN_ISDIR : 0), p, cookie);
/** A whole write of a new file: open(O_CREAT), write, close. */
const WRITE_NEW = (p: string): PathEvent[] => [CREATE(p), MODIFY(p), CLOSE(p)];
/** A whole in-place rewrite of an existing file: open(O_TRUNC), write, close. */
const REWRITE = (p: string): PathEvent[] => [MODIFY(p), MODIFY(p), CLOSE(p)];

const changed = (path: string, settled = true): WatchHint => ({
  kind: 'changed',
  path,
  isDir: false,
  settled,
});
const deleted = (path: string, isDir = false): WatchHint => ({ kind: 'deleted', path, isDir, settled: true });
const createdDir = (path: string): WatchHint => ({ kind: 'created-dir', path, isDir: true, settled: true });
const renamed = (from: string, path: string, isDir = false): WatchHint => ({
  kind: 'renamed',
  path,
  from,
  isDir,
  settled: true,
});
const rescan = (path: string, isDir = true): WatchHint => ({ kind: 'rescan', path, isDir, settled: true });

const RULES = IgnoreRules.fromText(undefined);
const ignore = (p: string, d: boolean): boolean => RULES.ignores(p, d);

interface Case {
  readonly description: string;
  readonly events: readonly PathEvent[];
  readonly expected: readonly WatchHint[];
  /** Apply the case's default ignore rules (editor temp files). */
  readonly withIgnore?: boolean;
}

// ---- editor and tool save patterns ---------------------------------------------------------

const editorCases: Case[] = [
  {
    description: 'in-place save (VS Code, nano): truncate, write, close',
    events: REWRITE('notes.txt'),
    expected: [changed('notes.txt')],
  },
  {
    description: 'echo >> appends: one write and a close',
    events: [MODIFY('log.txt'), CLOSE('log.txt')],
    expected: [changed('log.txt')],
  },
  {
    description: 'a write not yet closed is unsettled',
    events: [MODIFY('big.iso'), MODIFY('big.iso')],
    expected: [changed('big.iso', false)],
  },
  {
    description: 'a created file not yet closed is unsettled',
    events: [CREATE('new.txt')],
    expected: [changed('new.txt', false)],
  },
  {
    description: 'writes after a close make the file unsettled again',
    events: [MODIFY('a'), CLOSE('a'), MODIFY('a')],
    expected: [changed('a', false)],
  },
  {
    description: 'chmod or touch on a file: metadata only, settled',
    events: [ATTRIB('run.sh')],
    expected: [changed('run.sh')],
  },
  {
    description: 'vim (writebackup, no backup kept): 4913 probe, x -> x~, write new x, delete x~',
    events: [
      ...WRITE_NEW('4913'),
      ATTRIB('4913'),
      DELETE('4913'),
      FROM('x.c', 7),
      TO('x.c~', 7),
      ...WRITE_NEW('x.c'),
      ATTRIB('x.c'),
      DELETE('x.c~'),
    ],
    expected: [changed('x.c'), deleted('x.c~')],
  },
  {
    description: 'vim as above with the default ignore rules: exactly one update of x',
    events: [
      ...WRITE_NEW('4913'),
      DELETE('4913'),
      FROM('x.c', 7),
      TO('x.c~', 7),
      ...WRITE_NEW('x.c'),
      ATTRIB('x.c'),
      DELETE('x.c~'),
    ],
    expected: [changed('x.c')],
    withIgnore: true,
  },
  {
    description: 'vim with `backup` kept: x moves to x~, a new x is written',
    events: [FROM('x.c', 9), TO('x.c~', 9), ...WRITE_NEW('x.c')],
    expected: [renamed('x.c', 'x.c~'), changed('x.c')],
  },
  {
    description: 'vim with `backup` kept and the ignore rules: the backup is not replicated',
    events: [FROM('x.c', 9), TO('x.c~', 9), ...WRITE_NEW('x.c')],
    expected: [changed('x.c')],
    withIgnore: true,
  },
  {
    description: 'vim swap file activity is ignored',
    events: [...WRITE_NEW('.x.c.swp'), ...REWRITE('.x.c.swp'), DELETE('.x.c.swp')],
    expected: [],
    withIgnore: true,
  },
  {
    description: 'JetBrains safe write: temp written, x -> x___jb_old___, temp -> x, old deleted',
    events: [
      ...WRITE_NEW('A.kt___jb_tmp___'),
      FROM('A.kt', 3),
      TO('A.kt___jb_old___', 3),
      FROM('A.kt___jb_tmp___', 4),
      TO('A.kt', 4),
      DELETE('A.kt___jb_old___'),
    ],
    // The old name might have existed before (rename(2) replaces silently): a harmless "check it".
    expected: [changed('A.kt'), deleted('A.kt___jb_old___')],
  },
  {
    description: 'sed -i: temp sedXXXXXX written and chmod-ed, renamed over the file',
    events: [...WRITE_NEW('sedAb12Cd'), ATTRIB('sedAb12Cd'), FROM('sedAb12Cd', 11), TO('conf.ini', 11)],
    expected: [changed('conf.ini')],
  },
  {
    description: 'emacs: lock link .#x, backup x -> x~, new x written, lock removed',
    events: [
      CREATE('.#draft.md'),
      FROM('draft.md', 21),
      TO('draft.md~', 21),
      ...WRITE_NEW('draft.md'),
      DELETE('.#draft.md'),
    ],
    expected: [changed('draft.md')],
    withIgnore: true,
  },
  {
    description: 'emacs auto-save file #x# comes and goes, ignored',
    events: [...WRITE_NEW('#draft.md#'), DELETE('#draft.md#')],
    expected: [],
    withIgnore: true,
  },
  {
    description: 'a file created and deleted within the batch leaves nothing',
    events: [...WRITE_NEW('tmp'), DELETE('tmp')],
    expected: [],
  },
  {
    description: 'deleting an existing file',
    events: [DELETE('old.txt')],
    expected: [deleted('old.txt')],
  },
  {
    description: 'deleted then re-created: a change, not a deletion',
    events: [DELETE('a'), ...WRITE_NEW('a')],
    expected: [changed('a')],
  },
];

// ---- renames -------------------------------------------------------------------------------

const renameCases: Case[] = [
  {
    description: 'plain rename of a file',
    events: [FROM('a', 1), TO('b', 1)],
    expected: [renamed('a', 'b')],
  },
  {
    description: 'rename after a write: the rename, then the new content',
    events: [...REWRITE('a'), FROM('a', 1), TO('b', 1)],
    expected: [renamed('a', 'b'), changed('b')],
  },
  {
    description: 'rename onto an existing name replaces it (no IN_DELETE for the target)',
    events: [FROM('a', 1), TO('b', 1)],
    expected: [renamed('a', 'b')],
  },
  {
    description: 'renamed there and back: nothing happened to a (b may have been replaced: check)',
    events: [FROM('a', 1), TO('b', 1), FROM('b', 2), TO('a', 2)],
    expected: [deleted('b')],
  },
  {
    description: 'a chain a -> b -> c is one rename',
    events: [FROM('a', 1), TO('b', 1), FROM('b', 2), TO('c', 2)],
    expected: [renamed('a', 'c'), deleted('b')],
  },
  {
    description: 'swap through a temporary name',
    events: [FROM('a', 1), TO('t', 1), FROM('b', 2), TO('a', 2), FROM('t', 3), TO('b', 3)],
    expected: [renamed('b', 'a'), renamed('a', 'b'), deleted('t')],
  },
  {
    description: 'an unpaired IN_MOVED_FROM left the tree: deleted',
    events: [FROM('a', 5)],
    expected: [deleted('a')],
  },
  {
    description: 'an unpaired IN_MOVED_TO came from outside: a new, complete file',
    events: [TO('a', 5)],
    expected: [changed('a')],
  },
  {
    description: 'a folder moved in from outside: rescan its subtree',
    events: [TO('d', 5, true)],
    expected: [rescan('d')],
  },
  {
    description: 'a folder moved out of the tree: deleted, with what was written in it',
    events: [...REWRITE('d/x'), FROM('d', 5, true)],
    expected: [deleted('d', true)],
  },
  {
    description: 'folder rename, then writes inside under the new name',
    events: [FROM('src', 1, true), TO('lib', 1, true), ...REWRITE('lib/x.ts'), ...WRITE_NEW('lib/y.ts')],
    expected: [renamed('src', 'lib', true), changed('lib/x.ts'), changed('lib/y.ts')],
  },
  {
    description: 'writes before a folder rename move along with it',
    events: [...REWRITE('src/x.ts'), FROM('src', 1, true), TO('lib', 1, true)],
    expected: [renamed('src', 'lib', true), changed('lib/x.ts')],
  },
  {
    description: 'a file moved out of a folder before the folder is renamed',
    events: [FROM('d/x', 1), TO('y', 1), FROM('d', 2, true), TO('e', 2, true)],
    expected: [renamed('d/x', 'y'), renamed('d', 'e', true)],
  },
  {
    description: 'a file renamed inside a folder after the folder was renamed: `from` is the original path',
    events: [FROM('d', 1, true), TO('e', 1, true), FROM('e/x', 2), TO('e/z', 2)],
    expected: [renamed('d', 'e', true), renamed('d/x', 'e/z')],
  },
  {
    description: 'a folder made, filled, then renamed into place: all new',
    events: [MKDIR('tmp'), ...WRITE_NEW('tmp/x'), FROM('tmp', 1, true), TO('d', 1, true)],
    expected: [createdDir('d'), changed('d/x')],
  },
  {
    description: 'a rename whose interleaved events came between the pair (other writers)',
    events: [FROM('d', 1, true), ...REWRITE('d/x'), TO('e', 1, true)],
    expected: [renamed('d', 'e', true), changed('e/x')],
  },
  {
    description: 'renamed onto an ignored name: the original is deleted',
    events: [FROM('a.txt', 1), TO('a.txt~', 1)],
    expected: [deleted('a.txt')],
    withIgnore: true,
  },
  {
    description: 'renamed from an ignored name: new content',
    events: [FROM('a.txt~', 1), TO('a.txt', 1)],
    expected: [changed('a.txt')],
    withIgnore: true,
  },
];

// ---- folders, bulk, overflow ---------------------------------------------------------------

const folderCases: Case[] = [
  {
    description: 'mkdir -p a/b/c then a file in it',
    events: [MKDIR('a'), MKDIR('a/b'), MKDIR('a/b/c'), ...WRITE_NEW('a/b/c/f')],
    expected: [createdDir('a'), createdDir('a/b'), createdDir('a/b/c'), changed('a/b/c/f')],
  },
  {
    description: 'rm -rf of a folder: one deletion for the whole subtree',
    events: [DELETE('d/x'), DELETE('d/sub/y'), RMDIR('d/sub'), DELETE('d/z'), RMDIR('d')],
    expected: [deleted('d', true)],
  },
  {
    description: 'rm -rf of a folder, then a new folder of the same name: rescan it',
    events: [DELETE('d/x'), RMDIR('d'), MKDIR('d'), ...WRITE_NEW('d/y')],
    expected: [rescan('d')],
  },
  {
    description: 'a folder replaced by a file: rescan the path',
    events: [RMDIR('d'), ...WRITE_NEW('d')],
    expected: [rescan('d', false)],
  },
  {
    description: 'a folder created and removed again leaves nothing',
    events: [MKDIR('t'), ...WRITE_NEW('t/x'), DELETE('t/x'), RMDIR('t')],
    expected: [],
  },
  {
    description: 'chmod of a folder',
    events: [ev(IN_ATTRIB | IN_ISDIR, 'd')],
    expected: [{ kind: 'changed', path: 'd', isDir: true, settled: true }],
  },
  {
    description: 'queue overflow: one rescan of the root, whatever else came',
    events: [...REWRITE('a'), ev(IN_Q_OVERFLOW, ''), ...REWRITE('b')],
    expected: [RESCAN_ROOT],
  },
  {
    description: 'the root itself deleted: rescan the root (the daemon halts on it)',
    events: [DELETE('a'), ev(IN_DELETE_SELF, '')],
    expected: [RESCAN_ROOT],
  },
  {
    description: 'the root itself moved: rescan the root',
    events: [ev(IN_MOVE_SELF, '')],
    expected: [RESCAN_ROOT],
  },
  {
    description: 'a file system mounted inside the case went away: rescan the mount point',
    events: [ev(IN_UNMOUNT, 'mnt')],
    expected: [rescan('mnt')],
  },
  {
    description: 'events on the root folder itself (its metadata) give nothing',
    events: [ev(IN_ATTRIB | IN_ISDIR, '')],
    expected: [],
  },
  {
    description: 'a sub-folder deleted reports IN_DELETE_SELF too: the parent event decides',
    events: [DELETE('d/x'), ev(IN_DELETE_SELF, 'd'), RMDIR('d')],
    expected: [deleted('d', true)],
  },
];

function runCases(title: string, cases: readonly Case[]): void {
  describe(title, () => {
    for (const c of cases) {
      it(c.description, () => {
        const hints = coalesceEvents(c.events, c.withIgnore === true ? { ignore } : {});
        assert.deepEqual(hints, c.expected);
      });
    }
  });
}

runCases('coalescer: editor and tool save patterns', editorCases);
runCases('coalescer: renames', renameCases);
runCases('coalescer: folders and overflow', folderCases);

describe('coalescer: bulk changes', () => {
  const names = Array.from({ length: 2000 }, (_, i) => `src/m${String(i).padStart(4, '0')}.ts`);

  it('git checkout touching 2,000 files: one settled hint each, in path order', () => {
    const events = names.flatMap((n, i) => (i % 3 === 0 ? WRITE_NEW(n) : REWRITE(n)));
    const hints = coalesceEvents(events);
    assert.equal(hints.length, 2000);
    assert.deepEqual(
      hints.map((h) => h.path),
      [...names].sort(),
    );
    assert.ok(hints.every((h) => h.kind === 'changed' && h.settled));
  });

  it('the same 2,000 files written twice still give 2,000 hints', () => {
    const events = [...names.flatMap(REWRITE), ...names.flatMap(REWRITE)];
    assert.equal(coalesceEvents(events).length, 2000);
  });

  it('rm -rf of a folder with 2,000 files: one hint', () => {
    const events = [...names.map(DELETE), RMDIR('src')];
    assert.deepEqual(coalesceEvents(events), [deleted('src', true)]);
  });

  it('tar x of 2,000 files into new folders: the folders, then the files', () => {
    const events = [MKDIR('src'), ...names.flatMap(WRITE_NEW)];
    const hints = coalesceEvents(events);
    assert.equal(hints.length, 2001);
    assert.deepEqual(hints[0], createdDir('src'));
  });

  it('renaming 2,000 files (a refactoring tool) gives 2,000 renames', () => {
    const events = names.flatMap((n, i) => [FROM(n, i + 1), TO(n.replace('.ts', '.mts'), i + 1)]);
    const hints = coalesceEvents(events);
    assert.equal(hints.length, 2000);
    assert.ok(hints.every((h) => h.kind === 'renamed' && h.from === h.path.replace('.mts', '.ts')));
  });
});

// ---- property: replaying the hints on the old tree gives the new tree ------------------------

/** A model tree: path -> content id for files, 'dir' for folders. */
type Tree = Map<string, string>;

const under = (p: string, dir: string): boolean => p.startsWith(`${dir}/`);
const parent = (p: string): string => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '');

/** Operations a random user (or tool) performs, with the kernel's events for each. */
type Op =
  | { readonly op: 'write'; readonly a: number }
  | { readonly op: 'rm'; readonly a: number }
  | { readonly op: 'mkdir'; readonly a: number }
  | { readonly op: 'chmod'; readonly a: number }
  | { readonly op: 'mv'; readonly a: number; readonly b: number }
  /** Moved out of the case (only IN_MOVED_FROM is seen). */
  | { readonly op: 'out'; readonly a: number }
  /** Moved in from outside (only IN_MOVED_TO is seen): a file, or a folder holding one. */
  | { readonly op: 'in'; readonly a: number; readonly dir: boolean };

const NAMES = ['a', 'b', 'd', 'e'];
/** Every name at depth 1 and 2, and a few at depth 3: small, so most random operations apply. */
const PATHS: string[] = [
  ...NAMES,
  ...NAMES.flatMap((x) => NAMES.map((y) => `${x}/${y}`)),
  ...['d/e/a', 'd/e/b', 'd/e/e', 'd/d/a', 'e/d/a', 'e/e/b', 'b/d/a'],
];

function initialTree(): Tree {
  return new Map([
    ['a', 'a0'],
    ['b', 'b0'],
    ['d', 'dir'],
    ['d/a', 'da0'],
    ['d/e', 'dir'],
    ['d/e/b', 'deb0'],
    ['d/e/a', 'dea0'],
    ['e', 'dir'],
  ]);
}

/** Applies one operation to `t`, appending the events the kernel would report. */
function perform(t: Tree, o: Op, events: PathEvent[], counter: { n: number }): void {
  const a = PATHS[o.a % PATHS.length]!;
  const isDir = (p: string): boolean => t.get(p) === 'dir';
  const parentOk = (p: string): boolean => parent(p) === '' || isDir(parent(p));
  const fresh = (): string => `c${counter.n++}`;
  switch (o.op) {
    case 'write':
      if (isDir(a) || !parentOk(a)) return;
      if (!t.has(a)) events.push(CREATE(a));
      events.push(MODIFY(a), CLOSE(a));
      t.set(a, fresh());
      return;
    case 'chmod':
      if (!t.has(a)) return;
      events.push(ev(IN_ATTRIB | (isDir(a) ? IN_ISDIR : 0), a));
      if (!isDir(a)) t.set(a, fresh());
      return;
    case 'mkdir':
      if (t.has(a) || !parentOk(a)) return;
      events.push(MKDIR(a));
      t.set(a, 'dir');
      return;
    case 'rm': {
      if (!t.has(a)) return;
      // rm -rf: deepest first, each reported by its own folder.
      const doomed = [...t.keys()].filter((p) => under(p, a)).sort((x, y) => y.length - x.length);
      for (const p of [...doomed, a]) {
        events.push(ev(IN_DELETE | (isDir(p) ? IN_ISDIR : 0), p));
        t.delete(p);
      }
      return;
    }
    case 'out': {
      if (!t.has(a)) return;
      events.push(FROM(a, counter.n++, isDir(a)));
      for (const p of [...t.keys()]) if (p === a || under(p, a)) t.delete(p);
      return;
    }
    case 'in':
      if (t.has(a) || !parentOk(a)) return;
      events.push(TO(a, counter.n++, o.dir));
      if (o.dir) {
        t.set(a, 'dir');
        t.set(`${a}/x`, fresh());
      } else {
        t.set(a, fresh());
      }
      return;
    case 'mv': {
      const b = PATHS[o.b % PATHS.length]!;
      if (!t.has(a) || a === b || under(b, a) || !parentOk(b)) return;
      if (isDir(a) && t.has(b)) return; // only onto nothing (onto an empty folder is rare)
      if (!isDir(a) && isDir(b)) return;
      const cookie = counter.n++;
      const dir = isDir(a);
      events.push(FROM(a, cookie, dir), TO(b, cookie, dir));
      const moved = [...t.entries()].filter(([p]) => p === a || under(p, a));
      for (const [p] of moved) t.delete(p);
      for (const [p, v] of moved) t.set(b + p.slice(a.length), v);
      return;
    }
  }
}

/** What the daemon does with hints: renames as a set over the old paths, then a look at each hinted path. */
function replay(before: Tree, after: Tree, hints: readonly WatchHint[]): Tree {
  const renames = hints.filter((h) => h.kind === 'renamed');
  const result: Tree = new Map();
  const carried: [string, string][] = [];
  const named: [string, string][] = [];
  for (const [p, v] of before) {
    // Each old path goes with the deepest rename whose `from` contains it.
    let best: WatchHint | undefined;
    for (const r of renames) {
      if ((p === r.from || under(p, r.from!)) && (best === undefined || r.from!.length > best.from!.length))
        best = r;
    }
    if (best === undefined) result.set(p, v);
    else (p === best.from ? named : carried).push([best.path + p.slice(best.from!.length), v]);
  }
  // A rename replaces whatever stood at its target, and whatever a folder rename carried there.
  for (const [p, v] of [...carried, ...named]) result.set(p, v);
  const look = (p: string, subtree: boolean): void => {
    for (const k of [...result.keys()]) if (k === p || (subtree && under(k, p))) result.delete(k);
    for (const [k, v] of after) if (k === p || (subtree && under(k, p))) result.set(k, v);
  };
  for (const h of hints) {
    if (h.kind === 'changed' || h.kind === 'created-dir') look(h.path, false);
    else if (h.kind === 'deleted' || h.kind === 'rescan') look(h.path, true);
  }
  return result;
}

describe('coalescer: property', () => {
  it('replaying the hints on the old tree gives the new tree', () => {
    const path = fc.nat({ max: PATHS.length - 1 });
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      fc.record({ op: fc.constant('write' as const), a: path }),
      fc.record({ op: fc.constant('rm' as const), a: path }),
      fc.record({ op: fc.constant('mkdir' as const), a: path }),
      fc.record({ op: fc.constant('chmod' as const), a: path }),
      fc.record({ op: fc.constant('mv' as const), a: path, b: path }),
      fc.record({ op: fc.constant('mv' as const), a: path, b: path }),
      fc.record({ op: fc.constant('out' as const), a: path }),
      fc.record({ op: fc.constant('in' as const), a: path, dir: fc.boolean() }),
    );
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 40, size: 'max' }), (ops) => {
        const before = initialTree();
        const after = initialTree();
        const events: PathEvent[] = [];
        const counter = { n: 1 };
        for (const o of ops) perform(after, o, events, counter);
        const hints = coalesceEvents(events);
        const replayed = replay(before, after, hints);
        assert.deepEqual(new Map([...replayed].sort()), new Map([...after].sort()));
        // Every operation in the model finishes its writes: nothing is left unsettled.
        assert.ok(hints.every((h) => h.settled));
      }),
      { numRuns: 3000 },
    );
  });
});
