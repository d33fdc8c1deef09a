/** Tests of the commit ordering shared by every replica kind. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { FileEntry } from '../core/entry.js';
import type { Operation } from '../core/plan.js';
import { applyInGroups, commitGroups } from './commit-groups.js';

const F: FileEntry = { kind: 'file', size: 1, mtimeMs: 0, executable: false, hash: 'h' };
const write = (path: string): Operation => ({
  type: 'write',
  path,
  entry: F,
  from: { side: 'case', path, entry: F },
  expected: undefined,
});

test('consecutive writes to distinct paths form one group; everything else stands alone', () => {
  const ops: Operation[] = [
    { type: 'mkdir', path: 'd', expected: undefined },
    write('d/a'),
    write('d/b'),
    write('d/a'),
    { type: 'remove', path: 'x', expected: F },
    write('c'),
  ];
  assert.deepEqual(commitGroups(ops), [[0], [1, 2], [3], [4], [5]]);
});

test('a rejection stops the commit after its group settles', async () => {
  const ops = [write('a'), write('b'), { type: 'mkdir', path: 'z', expected: undefined } as Operation];
  const done: number[] = [];
  await assert.rejects(
    applyInGroups(
      ops,
      (task) => task(),
      async (i) => {
        done.push(i);
        if (i === 0) throw new Error('boom');
      },
      (reason) => new Error(`mapped: ${(reason as Error).message}`),
    ),
    /mapped: boom/,
  );
  assert.deepEqual(done, [0, 1]);
});
