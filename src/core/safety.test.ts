/** Tests of the mass-delete safety check. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Operation, PairPlan } from './plan.js';
import { checkMassDelete } from './safety.js';
import { D, F1, snap } from './testing.js';

const tree = (n: number) => snap(Object.fromEntries(Array.from({ length: n }, (_, i) => [`d/f${i}`, F1])));
const plan = (mirrorOps: Operation[], caseOps: Operation[] = []): PairPlan => ({
  caseOps,
  mirrorOps,
  conflicts: [],
  problems: [],
});
const removeFiles = (n: number): Operation[] =>
  Array.from({ length: n }, (_, i): Operation => ({ type: 'remove', path: `d/f${i}`, expected: F1 }));

describe('checkMassDelete', () => {
  it('refuses a plan deleting more than half of a side, naming the side and the way out', () => {
    const verdict = checkMassDelete(plan(removeFiles(6)), tree(10), tree(10), 'stick');
    assert.equal(verdict?.side, 'mirror');
    assert.equal(verdict?.deletes, 6);
    assert.equal(verdict?.files, 10);
    assert.equal(verdict!.message, 'would delete 6 of 10 files on stick');
  });

  it('checks the case too', () => {
    assert.equal(checkMassDelete(plan([], removeFiles(8)), tree(10), tree(10), 'stick')?.side, 'case');
  });

  it('allows half, and fewer than the minimum', () => {
    assert.equal(checkMassDelete(plan(removeFiles(5)), tree(10), tree(10), 'stick'), undefined);
    assert.equal(checkMassDelete(plan(removeFiles(4)), tree(4), tree(4), 'stick'), undefined);
    assert.ok(checkMassDelete(plan(removeFiles(4)), tree(4), tree(4), 'stick', 3));
  });

  it('counts files removed with their folder, but not files renamed out of it first', () => {
    const ops: Operation[] = [
      { type: 'rename', from: 'd/f0', to: 'kept', expected: F1 },
      { type: 'remove', path: 'd', expected: D },
    ];
    assert.equal(checkMassDelete(plan(ops), tree(8), tree(8), 'stick')?.deletes, 7);
  });

  it('a renamed folder is not a delete', () => {
    const ops: Operation[] = [{ type: 'rename', from: 'd', to: 'e', expected: D }];
    assert.equal(checkMassDelete(plan(ops), tree(8), tree(8), 'stick'), undefined);
  });
});
