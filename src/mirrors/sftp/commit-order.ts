/**
 * @module mirrors/sftp/commit-order
 * The order in which the SFTP replica commits a plan: every operation waits only for the
 * earlier operations it can depend on — those on the same path, on a folder above it, or on
 * anything below it (a rename counts for both its names) — and otherwise runs at once. Two
 * operations on unrelated paths commute, so the outcome is the one of applying the plan in
 * order; paths are compared case-folded and NFC-normalised, which can only add waiting.
 *
 * The shared `replica/commit-groups` only overlaps runs of consecutive writes; a plan that
 * interleaves folders and files (a first sync: `mkdir d0`, writes in `d0`, `mkdir d0/s45`, …)
 * then becomes hundreds of small steps, each waiting for its slowest request. Over a network
 * each step costs round trips, which is what this order avoids.
 */
import { ancestorsOf } from '../../core/entry.js';
import type { Operation } from '../../core/plan.js';
import type { Limiter } from '../path/limit.js';

/** The paths an operation touches. */
function touched(op: Operation): readonly string[] {
  return op.type === 'rename' ? [op.from, op.to] : [op.path];
}

/**
 * Calls `apply(i)` for every operation (through `limit`) as soon as the earlier operations it
 * depends on have finished (see the module comment). A rejection stops starting new operations;
 * it is rethrown (through `mapError`) once every started one has settled. `key` maps a path to
 * the name compared (e.g. its encoded remote name).
 */
export async function applyInPathOrder(
  operations: readonly Operation[],
  limit: Limiter,
  apply: (index: number) => Promise<void>,
  mapError: (reason: unknown) => unknown = (reason) => reason,
  key: (path: string) => string = (path) => path,
): Promise<void> {
  const fold = (path: string): string => key(path).normalize('NFC').toLowerCase();
  /** The last operation at exactly this path. */
  const last = new Map<string, Promise<void>>();
  /** Operations below this path since the last one at it. */
  const below = new Map<string, Promise<void>[]>();
  let failure: { reason: unknown } | undefined;
  const all: Promise<void>[] = [];
  for (let i = 0; i < operations.length; i++) {
    const paths = touched(operations[i]!).map(fold);
    const deps: Promise<void>[] = [];
    for (const p of paths) {
      const atPath = last.get(p);
      if (atPath !== undefined) deps.push(atPath);
      for (const a of ancestorsOf(p)) {
        const above = last.get(a);
        if (above !== undefined) deps.push(above);
      }
      const under = below.get(p);
      if (under !== undefined) deps.push(...under);
    }
    const start = deps.length === 0 ? Promise.resolve() : Promise.all(deps);
    // Never rejects: a failure is kept and stops every operation not started yet.
    const done = start
      .then(() =>
        failure === undefined
          ? limit(() => (failure === undefined ? apply(i) : Promise.resolve()))
          : undefined,
      )
      .catch((reason: unknown) => {
        failure ??= { reason };
      });
    all.push(done);
    for (const p of paths) {
      last.set(p, done);
      // This operation waited for everything below it: later ones need only wait for it.
      below.delete(p);
      for (const a of ancestorsOf(p)) {
        const list = below.get(a);
        if (list === undefined) below.set(a, [done]);
        else list.push(done);
      }
    }
  }
  await Promise.all(all);
  if (failure !== undefined) throw mapError(failure.reason);
}
