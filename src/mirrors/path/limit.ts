/**
 * @module mirrors/path/limit
 * A counting semaphore bounding how many file-system calls run at once (the thread pool is
 * small, and thousands of parallel `lstat`s only queue up in it and cost memory).
 */

/** Runs `task` when fewer than the limit are running; resolves with its result. */
export type Limiter = <T>(task: () => Promise<T>) => Promise<T>;

/** A limiter letting at most `max` tasks run at the same time. */
export function createLimiter(max: number): Limiter {
  if (!(max >= 1)) throw new Error(`bug: limiter size ${max}`);
  let running = 0;
  const waiting: (() => void)[] = [];
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    // At this point we hold one of the `max` slots: a free one, or one a finishing task handed over.
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next === undefined) running--;
      else next();
    }
  };
}
