/**
 * @module bench/run
 * `npm run bench`: runs every benchmark in a scratch folder under the system temp dir (or
 * `SATCHEL_BENCH_DIR`) and prints the tables. Never part of the test suite: timings on a shared
 * machine are noisy and are reported, not asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runSyncBench } from './sync-bench.js';

const work = mkdtempSync(join(process.env.SATCHEL_BENCH_DIR ?? tmpdir(), 'satchel-bench-'));
try {
  await runSyncBench(work);
} finally {
  if (!process.env.SATCHEL_BENCH_KEEP) rmSync(work, { recursive: true, force: true });
}
