/**
 * @module bench/run
 * `npm run bench`: runs the benchmarks in a scratch folder under the system temp dir (or
 * `SATCHEL_BENCH_DIR`) and prints the tables. Never part of the test suite: timings on a shared
 * machine are noisy and are reported, not asserted.
 *
 * `node dist/bench/run.js [sync] [watch] [latency] [memory] [sftp] [ftp] [encrypted]` runs only the benches named (in
 * the order given); with no argument, all of them. Nothing is deleted until every bench has run:
 * on an ext4 without a journal, creating files within a minute of many deletions is several
 * times slower (see freshDir in tree.ts), so start a new bench run a minute after the last.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runEncryptedBench } from './encrypted-bench.js';
import { runFtpBench } from './ftp-bench.js';
import { runLatencyBench } from './latency-bench.js';
import { runMemoryBench } from './memory-bench.js';
import { runSftpBench } from './sftp-bench.js';
import { runSyncBench } from './sync-bench.js';
import { runWatchLatencyBench } from './watch-latency.js';

const benches: Record<string, (work: string) => Promise<void>> = {
  sync: (work) => runSyncBench(work),
  watch: (work) => runWatchLatencyBench(work),
  latency: (work) => runLatencyBench(work),
  memory: (work) => runMemoryBench(work),
  sftp: (work) => runSftpBench(work),
  ftp: (work) => runFtpBench(work),
  encrypted: (work) => runEncryptedBench(work),
};

const asked = process.argv.slice(2);
const unknown = asked.filter((a) => !(a in benches));
if (unknown.length > 0) {
  console.error(`bench: unknown bench ${unknown.join(', ')}; choose from ${Object.keys(benches).join(', ')}`);
  process.exit(2);
}
const work = mkdtempSync(join(process.env.SATCHEL_BENCH_DIR ?? tmpdir(), 'satchel-bench-'));
try {
  for (const name of asked.length > 0 ? asked : Object.keys(benches)) await benches[name]!(work);
} finally {
  if (!process.env.SATCHEL_BENCH_KEEP) rmSync(work, { recursive: true, force: true });
}
