/**
 * @module replica/commit-groups
 * The order in which a replica's commit applies a plan's operations: one after another, except
 * that consecutive writes to distinct paths (none can depend on another) run in parallel. Shared
 * by every replica kind so they all keep the same ordering guarantees.
 */
import type { Operation } from '../core/plan.js';
import type { Problem } from '../core/problem.js';
import type { OperationResult } from './replica.js';

/** Indexes of `operations` in runs: each run may go in parallel, runs go in order. */
export function commitGroups(operations: readonly Operation[]): number[][] {
  const groups: number[][] = [];
  let i = 0;
  while (i < operations.length) {
    const group = [i];
    const first = operations[i]!;
    if (first.type === 'write') {
      const paths = new Set([first.path]);
      for (let j = i + 1; j < operations.length; j++) {
        const next = operations[j]!;
        if (next.type !== 'write' || paths.has(next.path)) break;
        paths.add(next.path);
        group.push(j);
      }
    }
    groups.push(group);
    i += group.length;
  }
  return groups;
}

/**
 * Calls `apply(i)` for every operation, group by group (see {@link commitGroups}), each call
 * through `limit`. A rejection stops the commit once its group has settled, and is rethrown
 * (through `mapError` when given).
 */
export async function applyInGroups(
  operations: readonly Operation[],
  limit: <T>(task: () => Promise<T>) => Promise<T>,
  apply: (index: number) => Promise<void>,
  mapError: (reason: unknown) => unknown = (reason) => reason,
): Promise<void> {
  for (const group of commitGroups(operations)) {
    const settled = await Promise.allSettled(group.map((j) => limit(() => apply(j))));
    const failure = settled.find((r) => r.status === 'rejected');
    if (failure !== undefined) throw mapError(failure.reason);
  }
}

/** The result of an operation whose target moved since the scan: left alone, retried next sync. */
export function changedSinceScan(path: string, label: string): OperationResult {
  return {
    ok: false,
    problem: {
      path,
      code: 'changed-during-sync',
      message: `${path} on ${label} changed since it was scanned; left as it is, it is picked up by the next sync`,
    },
  };
}

/** Discards (through `discard`) every staged file whose operation got no result. */
export async function discardUnused<S>(
  staged: ReadonlyMap<number, S | Problem>,
  results: readonly (OperationResult | undefined)[],
  discard: (staged: S) => Promise<void>,
): Promise<void> {
  await Promise.all(
    [...staged].map(async ([i, st]) => {
      if (results[i] === undefined && typeof st === 'object' && st !== null && 'temp' in st)
        await discard(st as S);
    }),
  );
}
