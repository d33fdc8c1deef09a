/**
 * Table tests of the three-way reconciliation for one path, over every combination of the
 * ancestor, case and mirror states (absent, F1, F2, D, L1, L2), plus hand-written rows for
 * the subtle cases. Each generated row's outcome comes from these rules:
 *
 * R1. The sides hold the same thing: nothing to do.
 * R2. Only one side changed since the ancestor: its state is copied to the other side.
 * R3. Both changed, one deleted: the other side's version wins (edit beats delete).
 * R4. Both changed, one holds a folder: the folder keeps the name; the file or link is kept as
 *     a conflict copy on both sides, labelled with the losing side.
 * R5. Both changed, both hold a file or link: the newer (links count as mtime 0, a tie goes
 *     to the case) keeps the name; the older is kept as a conflict copy on both sides.
 *
 * For every row: the plan applies cleanly on a strict replica (every `expected` holds), both
 * sides end up equal, every version that was the last write on a side is still there (at the
 * path or as a conflict copy), and a second reconciliation finds nothing to do.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { POSIX_CAPABILITIES, type Capabilities } from './capabilities.js';
import { sameContent, sameEntry, type Entry, type FileEntry, type Snapshot } from './entry.js';
import { operationPath, type PairPlan, type Side } from './plan.js';
import { reconcile } from './reconcile.js';
import { D, F1, F2, L1, L2, file, snap, syncPair, type SimPair, type SyncOptions } from './testing.js';

const STATES: [string, Entry | undefined][] = [
  ['absent', undefined],
  ['F1', F1],
  ['F2', F2],
  ['D', D],
  ['L1', L1],
  ['L2', L2],
];

/** What rules R1–R5 say the row must end with. */
interface Expectation {
  readonly rule: string;
  /** The entry at the path on both sides afterwards. */
  readonly final: Entry | undefined;
  /** The losing side's version, kept as a conflict copy, if any. */
  readonly copy?: { readonly side: Side; readonly entry: Entry };
}

const mtime = (e: Entry): number => (e.kind === 'file' ? e.mtimeMs : 0);

function expectation(a: Entry | undefined, c: Entry | undefined, m: Entry | undefined): Expectation {
  if (sameEntry(c, m)) return { rule: 'R1 same on both sides', final: c };
  if (sameEntry(a, c)) return { rule: 'R2 only the mirror changed', final: m };
  if (sameEntry(a, m)) return { rule: 'R2 only the case changed', final: c };
  if (c === undefined) return { rule: 'R3 case deleted, mirror edited', final: m };
  if (m === undefined) return { rule: 'R3 mirror deleted, case edited', final: c };
  if (c.kind === 'directory')
    return { rule: 'R4 folder on the case', final: c, copy: { side: 'mirror', entry: m } };
  if (m.kind === 'directory')
    return { rule: 'R4 folder on the mirror', final: m, copy: { side: 'case', entry: c } };
  return mtime(c) >= mtime(m)
    ? { rule: 'R5 case newer', final: c, copy: { side: 'mirror', entry: m } }
    : { rule: 'R5 mirror newer', final: m, copy: { side: 'case', entry: c } };
}

/** Every path of both sides must hold the same thing. */
function assertEqualSides(pair: SimPair): void {
  const paths = new Set([...pair.caseSnapshot.keys(), ...pair.mirrorSnapshot.keys()]);
  for (const p of paths) {
    assert.ok(sameEntry(pair.caseSnapshot.get(p), pair.mirrorSnapshot.get(p)), `sides differ at ${p}`);
  }
}

/** Whether `entry` is held somewhere in `s` (files by content, links by target). */
function holds(s: Snapshot, entry: Entry): boolean {
  return [...s.values()].some(
    (e) => sameEntry(e, entry) || (e.kind === 'file' && entry.kind === 'file' && e.hash === entry.hash),
  );
}

/** Syncs and checks the properties every row must have; returns the plan. */
function syncAndCheck(pair: SimPair, options: SyncOptions = {}, foreign: readonly string[] = []): PairPlan {
  const before = { ancestor: pair.ancestor, case: pair.caseSnapshot, mirror: pair.mirrorSnapshot };
  const plan = syncPair(pair, options);
  // Files someone else put on a push-only mirror stay there, and only there.
  const withoutForeign = new Map([...pair.mirrorSnapshot].filter(([p]) => !foreign.includes(p)));
  for (const p of foreign)
    assert.ok(pair.mirrorSnapshot.has(p), `${p} was removed from the push-only mirror`);
  assertEqualSides({ ...pair, mirrorSnapshot: withoutForeign });
  // Push-only mirrors are never a source: their drift is overwritten on purpose.
  for (const side of options.pushOnly ? (['case'] as const) : (['case', 'mirror'] as const)) {
    for (const [path, entry] of before[side]) {
      // A version is new content (a flipped executable bit alone is not a version).
      if (entry.kind === 'directory' || sameContent(entry, before.ancestor.get(path))) continue;
      assert.ok(holds(pair.caseSnapshot, entry), `lost the ${side}'s ${JSON.stringify(entry)} at ${path}`);
    }
  }
  const again = syncPair(pair, options);
  assert.deepEqual(
    [again.caseOps, again.mirrorOps, again.conflicts],
    [[], [], []],
    'second sync is not empty',
  );
  return plan;
}

describe('reconcile: every (ancestor, case, mirror) state of one path', () => {
  for (const [an, a] of STATES) {
    for (const [cn, c] of STATES) {
      for (const [mn, m] of STATES) {
        const want = expectation(a, c, m);
        it(`A=${an} C=${cn} M=${mn}: ${want.rule}`, () => {
          const entries = (e: Entry | undefined): Snapshot => snap(e ? { p: e } : {});
          const pair: SimPair = {
            ancestor: entries(a),
            caseSnapshot: entries(c),
            mirrorSnapshot: entries(m),
          };
          const plan = syncAndCheck(pair);
          assert.ok(
            sameEntry(pair.caseSnapshot.get('p'), want.final),
            `path holds ${JSON.stringify(pair.caseSnapshot.get('p'))}`,
          );
          const others = [...pair.caseSnapshot].filter(([p]) => p !== 'p');
          if (want.copy) {
            assert.equal(plan.conflicts.length, 1);
            const conflict = plan.conflicts[0]!;
            assert.equal(conflict.winner, want.copy.side === 'case' ? 'mirror' : 'case');
            assert.match(
              conflict.copyPath,
              want.copy.side === 'case'
                ? /^p\.conflict-\d{8}-\d{6}-desk$/
                : /^p\.conflict-\d{8}-\d{6}-stick$/,
            );
            assert.deepEqual(
              others.map(([p]) => p),
              [conflict.copyPath],
            );
            assert.ok(sameEntry(others[0]![1], want.copy.entry));
            // The losing side moves its version aside; the other side writes a copy of it.
            const loserOps = want.copy.side === 'case' ? plan.caseOps : plan.mirrorOps;
            assert.deepEqual(loserOps[0], {
              type: 'rename',
              from: 'p',
              to: conflict.copyPath,
              expected: want.copy.entry,
            });
          } else {
            assert.equal(plan.conflicts.length, 0);
            assert.deepEqual(others, []);
          }
          // A side that already holds the final state gets no operations.
          if (!want.copy && sameEntry(c, want.final)) assert.deepEqual(plan.caseOps, []);
          if (!want.copy && sameEntry(m, want.final)) assert.deepEqual(plan.mirrorOps, []);
        });
      }
    }
  }
});

/** Reconciles without applying. */
function planOf(a: Snapshot, c: Snapshot, m: Snapshot, options: SyncOptions = {}): PairPlan {
  return reconcile({
    ancestor: a,
    caseSnapshot: c,
    mirrorSnapshot: m,
    mirrorCapabilities: options.mirrorCapabilities ?? POSIX_CAPABILITIES,
    mirrorLabel: 'stick',
    caseLabel: 'desk',
    pushOnly: options.pushOnly ?? false,
    frozen: options.frozen ?? new Set(),
  });
}

const X1 = file('1111', 1000, true);
const F3 = file('3333', 3000);

describe('reconcile: hand-written rows', () => {
  it('a conflict with equal modification times goes to the case', () => {
    const pair: SimPair = {
      ancestor: snap({ p: F1 }),
      caseSnapshot: snap({ p: file('aa', 5000) }),
      mirrorSnapshot: snap({ p: file('bb', 5000) }),
    };
    const plan = syncAndCheck(pair);
    assert.equal(plan.conflicts[0]?.winner, 'case');
    assert.equal(plan.conflicts[0]?.copyPath, 'p.conflict-19700101-000005-stick');
  });

  it('an executable-bit change on one side is a chmod on the other', () => {
    const plan = planOf(snap({ p: F1 }), snap({ p: X1 }), snap({ p: F1 }));
    assert.deepEqual(plan.caseOps, []);
    assert.deepEqual(plan.mirrorOps, [{ type: 'chmod', path: 'p', executable: true, expected: F1 }]);
  });

  it('a bit flipped on one side and content edited on the other are merged, no conflict', () => {
    const pair: SimPair = {
      ancestor: snap({ p: F1 }),
      caseSnapshot: snap({ p: X1 }),
      mirrorSnapshot: snap({ p: F2 }),
    };
    const plan = syncAndCheck(pair);
    assert.deepEqual(plan.conflicts, []);
    assert.deepEqual(pair.caseSnapshot.get('p'), { ...F2, executable: true });
    assert.deepEqual(plan.mirrorOps, [{ type: 'chmod', path: 'p', executable: true, expected: F2 }]);
  });

  it('the same content created on both sides with different bits: the newer bit wins, no copy', () => {
    const newer = file('1111', 9000, true);
    const pair: SimPair = {
      ancestor: snap(),
      caseSnapshot: snap({ p: F1 }),
      mirrorSnapshot: snap({ p: newer }),
    };
    const plan = syncAndCheck(pair);
    assert.deepEqual(plan.conflicts, []);
    assert.deepEqual(plan.caseOps, [{ type: 'chmod', path: 'p', executable: true, expected: F1 }]);
    assert.deepEqual(plan.mirrorOps, []);
  });

  it('identical edits on both sides need nothing', () => {
    const plan = planOf(snap({ p: F1 }), snap({ p: F2 }), snap({ p: file('2222', 7777) }));
    assert.deepEqual([plan.caseOps, plan.mirrorOps, plan.conflicts], [[], [], []]);
  });

  it('a file created on both sides keeps both, the older as a copy labelled with its side', () => {
    const pair: SimPair = {
      ancestor: snap(),
      caseSnapshot: snap({ 'notes.txt': F3 }),
      mirrorSnapshot: snap({ 'notes.txt': F1 }),
    };
    const plan = syncAndCheck(pair);
    assert.deepEqual(plan.conflicts, [
      {
        path: 'notes.txt',
        copyPath: 'notes.conflict-19700101-000001-stick.txt',
        winner: 'case',
        reason: 'changed on both the case and mirror stick',
      },
    ]);
    assert.deepEqual(
      plan.caseOps.map((op) => op.type),
      ['write'],
    );
    assert.deepEqual(
      plan.mirrorOps.map((op) => op.type),
      ['rename', 'write'],
    );
  });
});

describe('reconcile: scenarios', () => {
  it('a folder deleted on one side while a child was edited on the other survives with that child', () => {
    const a = snap({ 'd/x': F1, 'd/y': F1, 'd/sub/z': F1 });
    const pair: SimPair = {
      ancestor: a,
      caseSnapshot: snap(),
      mirrorSnapshot: snap({ 'd/x': F2, 'd/y': F1, 'd/sub/z': F1 }),
    };
    const plan = syncAndCheck(pair);
    assert.deepEqual([...pair.caseSnapshot.keys()].sort(), ['d', 'd/x']);
    assert.deepEqual(
      plan.caseOps.map((op) => `${op.type} ${operationPath(op)}`),
      ['mkdir d', 'write d/x'],
    );
    assert.deepEqual(
      plan.mirrorOps.map((op) => `${op.type} ${operationPath(op)}`),
      ['remove d/sub/z', 'remove d/y', 'remove d/sub'],
    );
    assert.deepEqual(plan.conflicts, []);
  });

  it('a renamed file is a rename on the other side', () => {
    const a = snap({ 'old.txt': F1, other: F2 });
    const pair: SimPair = {
      ancestor: a,
      caseSnapshot: snap({ 'dir/new.txt': F1, other: F2 }),
      mirrorSnapshot: a,
    };
    const plan = syncAndCheck(pair);
    assert.deepEqual(plan.mirrorOps, [
      { type: 'mkdir', path: 'dir', expected: undefined },
      { type: 'rename', from: 'old.txt', to: 'dir/new.txt', expected: F1 },
    ]);
  });

  it('a renamed folder is one rename of the folder, the outermost', () => {
    const tree = { 'x/a': F1, 'x/sub/b': F2, 'x/sub/c': L1, 'x/empty': D };
    const moved = Object.fromEntries(Object.entries(tree).map(([p, e]) => [p.replace(/^x/, 'y/z'), e]));
    const pair: SimPair = { ancestor: snap(tree), caseSnapshot: snap(tree), mirrorSnapshot: snap(moved) };
    const plan = syncAndCheck(pair);
    assert.deepEqual(plan.caseOps, [
      { type: 'mkdir', path: 'y', expected: undefined },
      { type: 'rename', from: 'x', to: 'y/z', expected: D },
    ]);
    assert.deepEqual(plan.mirrorOps, []);
  });

  it('ambiguous content is not guessed: two equal files removed, one created is a write', () => {
    const a = snap({ a: F1, b: F1 });
    const plan = planOf(a, snap({ c: F1 }), a);
    assert.deepEqual(plan.mirrorOps.map((op) => op.type).sort(), ['remove', 'remove', 'write']);
  });

  it('type changes: file to folder, folder to file, link to file', () => {
    const a = snap({ f: F1, 'd/x': F1, l: L1 });
    const c = snap({ 'f/inner': F2, d: F3, l: F2 });
    const pair: SimPair = { ancestor: a, caseSnapshot: c, mirrorSnapshot: a };
    const plan = syncAndCheck(pair);
    assert.deepEqual(
      plan.mirrorOps.map((op) => `${op.type} ${operationPath(op)}`),
      ['remove d/x', 'remove f', 'mkdir f', 'write f/inner', 'write l', 'remove d', 'write d'],
    );
  });

  it('a folder on one side and a file on the other: the folder keeps the name', () => {
    const pair: SimPair = {
      ancestor: snap(),
      caseSnapshot: snap({ 'p/x': F1 }),
      mirrorSnapshot: snap({ p: F2 }),
    };
    const plan = syncAndCheck(pair);
    assert.equal(plan.conflicts[0]?.winner, 'case');
    assert.equal(plan.conflicts[0]?.copyPath, 'p.conflict-19700101-000002-stick');
    assert.deepEqual(
      plan.mirrorOps.map((op) => op.type),
      ['rename', 'mkdir', 'write'],
    );
  });

  it('a case-insensitive mirror: the case spelling wins on a new pair, clashing names are reported', () => {
    const caps = { ...POSIX_CAPABILITIES, caseSensitive: false };
    const c = snap({ 'Docs/README.txt': F1, 'Docs/Read.me': F2, 'Docs/READ.me': F3 });
    const m = snap({ 'docs/readme.TXT': F1, 'docs/READ.me': F3 });
    const pair: SimPair = { ancestor: snap(), caseSnapshot: c, mirrorSnapshot: m };
    const plan = syncPair(pair, { mirrorCapabilities: caps });
    assert.deepEqual(plan.caseOps, []);
    assert.deepEqual(plan.mirrorOps, [
      { type: 'rename', from: 'docs', to: 'Docs', expected: D, respell: true },
      { type: 'rename', from: 'Docs/readme.TXT', to: 'Docs/README.txt', expected: F1, respell: true },
    ]);
    assert.deepEqual([...pair.mirrorSnapshot.keys()].sort(), ['Docs', 'Docs/READ.me', 'Docs/README.txt']);
    assert.deepEqual(
      plan.problems.map((p) => [p.path, p.code]),
      [['Docs/Read.me', 'case-clash']],
    );
    // The ancestor records the agreement in the case's spelling, and the clash stays out of it.
    assert.deepEqual([...pair.ancestor.keys()].sort(), ['Docs', 'Docs/READ.me', 'Docs/README.txt']);
    // Deleting on the case now deletes on the mirror (the pair agreed on the file).
    pair.caseSnapshot = snap({ 'Docs/Read.me': F2, 'Docs/READ.me': F3 });
    const next = syncPair(pair, { mirrorCapabilities: caps });
    assert.deepEqual(next.mirrorOps, [{ type: 'remove', path: 'Docs/README.txt', expected: F1 }]);
  });

  it('a link kept as a conflict copy is named with the time of the sync, not 1970', () => {
    const pair: SimPair = {
      ancestor: snap({ s: F1 }),
      caseSnapshot: snap({ s: F2 }),
      mirrorSnapshot: snap({ s: L1 }),
    };
    const now = Date.UTC(2026, 10, 25, 8, 15, 0);
    const plan = syncPair(pair, { now });
    assert.deepEqual(
      plan.conflicts.map((c) => c.copyPath),
      ['s.conflict-20261125-081500-stick'],
    );
  });

  it('a case-only rename crosses a case-insensitive mirror: the side that renamed is followed', () => {
    const caps = { ...POSIX_CAPABILITIES, caseSensitive: false };
    const start = { 'docs/readme.md': F1, 'docs/sub/x': F2 };
    const pair: SimPair = { ancestor: snap(start), caseSnapshot: snap(start), mirrorSnapshot: snap(start) };
    // Renamed in the case: the mirror follows, folder and file.
    pair.caseSnapshot = snap({ 'Docs/README.md': F1, 'Docs/sub/x': F2 });
    const out = syncPair(pair, { mirrorCapabilities: caps });
    assert.deepEqual(out.caseOps, []);
    assert.deepEqual(
      out.mirrorOps.map((op) => [op.type, op.type === 'rename' ? op.from : '', operationPath(op)]),
      [
        ['rename', 'docs', 'Docs'],
        ['rename', 'Docs/readme.md', 'Docs/README.md'],
      ],
    );
    assert.deepEqual([...pair.mirrorSnapshot.keys()].sort(), [
      'Docs',
      'Docs/README.md',
      'Docs/sub',
      'Docs/sub/x',
    ]);
    assert.deepEqual([...pair.ancestor.keys()].sort(), ['Docs', 'Docs/README.md', 'Docs/sub', 'Docs/sub/x']);
    assert.deepEqual(syncPair(pair, { mirrorCapabilities: caps }).mirrorOps, []);

    // Renamed on the mirror: the case follows, deepest first, and the ancestor takes the spelling.
    pair.mirrorSnapshot = snap({ 'DOCS/README.md': F1, 'DOCS/Sub/x': F2 });
    const back = syncPair(pair, { mirrorCapabilities: caps });
    assert.deepEqual(back.mirrorOps, []);
    assert.deepEqual(
      back.caseOps.map((op) => (op.type === 'rename' ? [op.from, op.to] : [])),
      [
        ['Docs/sub', 'Docs/Sub'],
        ['Docs', 'DOCS'],
      ],
    );
    assert.deepEqual([...pair.caseSnapshot.keys()].sort(), [
      'DOCS',
      'DOCS/README.md',
      'DOCS/Sub',
      'DOCS/Sub/x',
    ]);
    assert.deepEqual([...pair.ancestor.keys()].sort(), ['DOCS', 'DOCS/README.md', 'DOCS/Sub', 'DOCS/Sub/x']);
    const quiet = syncPair(pair, { mirrorCapabilities: caps });
    assert.deepEqual([quiet.caseOps, quiet.mirrorOps], [[], []]);

    // Both renamed differently: the case's spelling wins.
    pair.caseSnapshot = snap({ 'DOCS/readme.MD': F1, 'DOCS/Sub/x': F2 });
    pair.mirrorSnapshot = snap({ 'DOCS/ReadMe.md': F1, 'DOCS/Sub/x': F2 });
    const both = syncPair(pair, { mirrorCapabilities: caps });
    assert.deepEqual(both.caseOps, []);
    assert.deepEqual(both.mirrorOps, [
      { type: 'rename', from: 'DOCS/ReadMe.md', to: 'DOCS/readme.MD', expected: F1, respell: true },
    ]);
  });

  it('a case-only rename with an edit, on either side, is an edit: no conflict, the new spelling everywhere', () => {
    const caps = { ...POSIX_CAPABILITIES, caseSensitive: false };
    const pair: SimPair = {
      ancestor: snap({ 'notes.txt': F1 }),
      caseSnapshot: snap({ 'Notes.txt': F2 }),
      mirrorSnapshot: snap({ 'notes.txt': F1 }),
    };
    const out = syncPair(pair, { mirrorCapabilities: caps });
    assert.deepEqual(out.conflicts, []);
    assert.deepEqual([...pair.mirrorSnapshot], [['Notes.txt', F2]]);
    pair.mirrorSnapshot = snap({ 'NOTES.TXT': F3 });
    const back = syncPair(pair, { mirrorCapabilities: caps });
    assert.deepEqual(back.conflicts, []);
    assert.deepEqual([...pair.caseSnapshot], [['NOTES.TXT', F3]]);
    assert.deepEqual([...pair.ancestor], [['NOTES.TXT', F3]]);
  });

  it('a case-only rename on a push-only mirror is always the case spelling; a removed path is not renamed', () => {
    const caps = { ...POSIX_CAPABILITIES, caseSensitive: false };
    const pair: SimPair = {
      ancestor: snap({ 'a.txt': F1, 'b.txt': F2 }),
      caseSnapshot: snap({ 'a.txt': F1 }),
      mirrorSnapshot: snap({ 'A.txt': F1, 'B.TXT': F2 }),
    };
    const plan = syncPair(pair, { mirrorCapabilities: caps, pushOnly: true });
    assert.deepEqual(plan.caseOps, []);
    assert.deepEqual(
      plan.mirrorOps.map((op) => [op.type, operationPath(op)]),
      [
        ['rename', 'a.txt'],
        ['remove', 'b.txt'],
      ],
    );
  });

  it('a mirror without executable bits never causes or receives bit changes', () => {
    const caps = { ...POSIX_CAPABILITIES, executableBit: false };
    const pair: SimPair = { ancestor: snap(), caseSnapshot: snap({ run: X1 }), mirrorSnapshot: snap() };
    syncAndCheckWith(pair, caps);
    assert.equal((pair.mirrorSnapshot.get('run') as FileEntry).executable, false);
    pair.caseSnapshot = snap({ run: F1 });
    assert.deepEqual(syncPair(pair, { mirrorCapabilities: caps }).mirrorOps, []);
    pair.caseSnapshot = snap({ run: X1 });
    assert.deepEqual(syncPair(pair, { mirrorCapabilities: caps }).mirrorOps, []);
    // Edited on the stick: the new content keeps the case's bit.
    pair.mirrorSnapshot = snap({ run: F2 });
    const plan = syncPair(pair, { mirrorCapabilities: caps });
    assert.deepEqual(pair.caseSnapshot.get('run'), { ...F2, executable: true });
    assert.deepEqual(plan.mirrorOps, []);
  });

  it('push-only: the mirror follows the case, its drift overwritten, renames kept, what others added kept', () => {
    const a = snap({ keep: F1, moved: F2, edited: F1, gone: F1 });
    const c = snap({ keep: F1, 'dir/moved': F2, edited: F1 });
    const m = snap({ keep: F1, moved: F2, edited: F3, gone: F1, extra: F1, '.htaccess': F3 });
    const pair: SimPair = { ancestor: a, caseSnapshot: c, mirrorSnapshot: m };
    const plan = syncAndCheck(pair, { pushOnly: true }, ['extra', '.htaccess']);
    assert.deepEqual(plan.caseOps, []);
    assert.deepEqual(plan.conflicts, []);
    assert.deepEqual(
      plan.mirrorOps.map(
        (op) => `${op.type} ${op.type === 'rename' ? op.from + '→' : ''}${operationPath(op)}`,
      ),
      ['remove gone', 'mkdir dir', 'rename moved→dir/moved', 'write edited'],
    );
  });

  it('frozen paths are left alone on both sides, and their folders stay', () => {
    const a = snap({ 'd/bad/x': F1, 'd/ok': F1 });
    const c = snap({ 'd/bad': D });
    const m = a;
    const plan = planOf(a, c, m, { frozen: new Set(['d/bad']) });
    assert.deepEqual(plan.caseOps, []);
    assert.deepEqual(plan.mirrorOps, [{ type: 'remove', path: 'd/ok', expected: F1 }]);
  });

  it('too-large files and links a mirror cannot store are problems, not sent, every sync', () => {
    const caps = { ...POSIX_CAPABILITIES, symlinks: false, maxFileSize: 3, maxNameLength: 8 };
    const c = snap({ 'big/file': F1, 'sub/link': L1, small: file('ab'), 'much-too-long': file('ab') });
    const pair: SimPair = { ancestor: snap(), caseSnapshot: c, mirrorSnapshot: snap() };
    for (let i = 0; i < 2; i++) {
      const plan = syncPair(pair, { mirrorCapabilities: caps });
      assert.deepEqual(
        plan.problems.map((p) => [p.path, p.code]),
        [
          ['big/file', 'too-large'],
          ['much-too-long', 'name-not-storable'],
          ['sub/link', 'symlink-unsupported'],
        ],
      );
    }
    assert.deepEqual([...pair.mirrorSnapshot.keys()].sort(), ['big', 'small', 'sub']);
  });

  it('conflict copies get distinct names, never over an existing path', () => {
    const taken = 'a.conflict-19700101-000001-stick.txt';
    const pair: SimPair = {
      ancestor: snap({ 'a.txt': F2 }),
      caseSnapshot: snap({ 'a.txt': F3, [taken]: F2 }),
      mirrorSnapshot: snap({ 'a.txt': F1, [taken]: F2 }),
    };
    const plan = syncAndCheck(pair);
    assert.equal(plan.conflicts[0]?.copyPath, 'a.conflict-19700101-000001-stick-2.txt');
  });
});

/** {@link syncAndCheck} with the mirror's capabilities. */
function syncAndCheckWith(pair: SimPair, caps: Capabilities): PairPlan {
  const plan = syncPair(pair, { mirrorCapabilities: caps });
  const again = syncPair(pair, { mirrorCapabilities: caps });
  assert.deepEqual(
    [again.caseOps, again.mirrorOps, again.conflicts],
    [[], [], []],
    'second sync is not empty',
  );
  return plan;
}
