/**
 * Tests of the SFTP commit order: operations on related paths (same, above, below, either name
 * of a rename) run in plan order; unrelated ones overlap; a failure stops what has not started.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Operation } from '../../core/plan.js';
import { createLimiter } from '../path/limit.js';
import { applyInPathOrder } from './commit-order.js';

const file = { kind: 'file', size: 1, mtimeMs: 0, executable: false, hash: 'h' } as const;
const mkdir = (path: string): Operation => ({ type: 'mkdir', path, expected: undefined });
const write = (path: string): Operation => ({
  type: 'write',
  path,
  entry: file,
  from: { side: 'case', path, entry: file },
  expected: undefined,
});
const remove = (path: string): Operation => ({ type: 'remove', path, expected: file });
const rename = (from: string, to: string): Operation => ({ type: 'rename', from, to, expected: file });

function related(a: Operation, b: Operation): boolean {
  const paths = (op: Operation): string[] => (op.type === 'rename' ? [op.from, op.to] : [op.path]);
  const rel = (x: string, y: string): boolean =>
    x.toLowerCase() === y.toLowerCase() ||
    y.toLowerCase().startsWith(x.toLowerCase() + '/') ||
    x.toLowerCase().startsWith(y.toLowerCase() + '/');
  return paths(a).some((x) => paths(b).some((y) => rel(x, y)));
}

/** Runs `ops` with random delays; returns each operation's [start, end] in a logical clock. */
async function run(ops: readonly Operation[], seed: number): Promise<[number, number][]> {
  let s = seed;
  const rand = (): number => ((s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31) * 3;
  let clock = 0;
  const spans: [number, number][] = [];
  await applyInPathOrder(ops, createLimiter(8), async (i) => {
    const start = clock++;
    await new Promise((r) => setTimeout(r, rand()));
    spans[i] = [start, clock++];
  });
  return spans;
}

describe('SFTP commit order', () => {
  const plan: Operation[] = [
    mkdir('a'),
    write('a/1'),
    write('a/2'),
    mkdir('a/b'),
    write('a/b/3'),
    write('c/4'),
    rename('c/4', 'A/5'),
    write('c/4'),
    remove('a/1'),
    remove('a/2'),
    remove('a/b/3'),
    remove('a/b'),
    write('d'),
    write('e'),
    rename('x', 'y'),
    write('y/z'),
  ];

  it('runs every operation after the earlier ones on related paths', async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const spans = await run(plan, seed);
      for (let j = 0; j < plan.length; j++)
        for (let i = 0; i < j; i++)
          if (related(plan[i]!, plan[j]!))
            assert.ok(
              spans[i]![1] <= spans[j]![0],
              `seed ${seed}: op ${j} started before op ${i} (related) ended`,
            );
    }
  });

  it('overlaps operations on unrelated paths', async () => {
    const spans = await run([write('p/1'), write('q/2'), mkdir('r'), write('s')], 7);
    // All four start before any ends.
    assert.ok(Math.max(...spans.map((x) => x[0])) < Math.min(...spans.map((x) => x[1])));
  });

  it('stops starting operations after a failure and rethrows it', async () => {
    const started: number[] = [];
    await assert.rejects(
      applyInPathOrder(
        [mkdir('a'), write('a/1'), write('a/2')],
        createLimiter(4),
        async (i) => {
          started.push(i);
          if (i === 0) throw new Error('gone');
        },
        (reason) => new Error(`mapped: ${(reason as Error).message}`),
      ),
      /mapped: gone/,
    );
    assert.deepEqual(started, [0]);
  });
});
