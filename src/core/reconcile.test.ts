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
import { sameEntry, type Entry, type Snapshot } from './entry.js';
import type { PairPlan, Side } from './plan.js';
import { D, F1, F2, L1, L2, snap, syncPair, type SimPair, type SyncOptions } from './testing.js';

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
function syncAndCheck(pair: SimPair, options: SyncOptions = {}): PairPlan {
  const before = { ancestor: pair.ancestor, case: pair.caseSnapshot, mirror: pair.mirrorSnapshot };
  const plan = syncPair(pair, options);
  assertEqualSides(pair);
  for (const side of ['case', 'mirror'] as const) {
    for (const [path, entry] of before[side]) {
      if (entry.kind === 'directory' || sameEntry(entry, before.ancestor.get(path))) continue;
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
