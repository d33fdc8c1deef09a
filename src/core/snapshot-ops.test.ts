/** Tests of snapshot operations: applying plans, ancestor updates and the planner's mirror view. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { POSIX_CAPABILITIES } from './capabilities.js';
import type { Operation } from './plan.js';
import { ancestorUpdates, applyOperations, mirrorView } from './snapshot-ops.js';
import { D, F1, F2, L1, file, snap } from './testing.js';

const X1 = file('1111', 1000, true);

describe('applyOperations', () => {
  const before = snap({ 'a/x': F1, 'a/sub/y': F2, b: F1, l: L1 });
  const ops: Operation[] = [
    { type: 'remove', path: 'b', expected: F1 },
    { type: 'mkdir', path: 'n', expected: undefined },
    { type: 'rename', from: 'a', to: 'n/a', expected: D },
    {
      type: 'write',
      path: 'n/w',
      entry: F2,
      from: { side: 'case', path: 'a/sub/y', entry: F2 },
      expected: undefined,
    },
    { type: 'chmod', path: 'n/a/x', executable: true, expected: F1 },
    { type: 'symlink', path: 'l', target: 't2', expected: L1 },
  ];

  it('applies every operation in order; renames move whole subtrees', () => {
    const after = applyOperations(before, ops);
    assert.deepEqual(
      Object.fromEntries(after),
      Object.fromEntries(
        snap({ 'n/a/x': X1, 'n/a/sub/y': F2, 'n/w': F2, l: { kind: 'symlink', target: 't2' } }),
      ),
    );
  });

  it('skips failed operations and uses entries as stored', () => {
    const stored = file('2222', 2001);
    const after = applyOperations(
      before,
      ops,
      (i) => i !== 0,
      (i) => (i === 3 ? stored : undefined),
    );
    assert.deepEqual(after.get('b'), F1);
    assert.deepEqual(after.get('n/w'), stored);
  });

  it('removing a folder removes that path only', () => {
    const after = applyOperations(snap({ 'd/x': F1 }), [{ type: 'remove', path: 'd', expected: D }]);
    assert.deepEqual([...after.keys()], ['d/x']);
  });
});

describe('ancestorUpdates', () => {
  it('records agreement (the case entry), keeps disagreement, drops what both removed', () => {
    const ancestor = snap({ same: F1, gone: F1, differ: F1, touched: F1 });
    const c = snap({ same: F1, differ: F2, fresh: F2, touched: file('1111', 5000) });
    const m = snap({ same: F1, differ: L1, fresh: F2, touched: F1 });
    const changes = ancestorUpdates(ancestor, c, m);
    assert.deepEqual(Object.fromEntries(changes), {
      gone: undefined,
      fresh: F2,
      touched: file('1111', 5000),
    });
  });

  it('with the mirror capabilities, sees through spelling and missing executable bits', () => {
    const caps = { ...POSIX_CAPABILITIES, caseSensitive: false, executableBit: false };
    const c = snap({ 'Dir/run': X1 });
    const m = snap({ 'dir/RUN': F1 });
    assert.deepEqual(Object.fromEntries(ancestorUpdates(snap(), c, m)), {});
    assert.deepEqual(Object.fromEntries(ancestorUpdates(snap(), c, m, caps)), { Dir: D, 'Dir/run': X1 });
  });
});

describe('mirrorView', () => {
  it('takes missing executable bits from the ancestor first, then the case, and keeps them on edits', () => {
    const caps = { caseSensitive: true, executableBit: false };
    const a = snap({ p: X1, q: X1 });
    const c = snap({ p: F1, q: F1 });
    const m = snap({ p: F1, q: F2 });
    const view = mirrorView(m, c, a, caps).snapshot;
    assert.deepEqual(view.get('p'), X1);
    assert.deepEqual(view.get('q'), { ...F2, executable: true });
    assert.deepEqual(mirrorView(m, c, a, caps, true).snapshot.get('p'), F1);
  });
});
