/**
 * @module bench/measure
 * Runs a command and measures its wall time and peak resident memory (through GNU time's
 * `%M`, which covers the whole process tree's largest member), plus table printing. Every
 * measurement starts on a flushed disk.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** One measured run. */
export interface Measurement {
  readonly seconds: number;
  /** Peak resident set size in MiB, when GNU time is available. */
  readonly peakMiB: number | undefined;
}

const GNU_TIME = '/usr/bin/time';

/**
 * Runs `cmd args` (failing loudly on a non-zero exit) and measures it. The disk is flushed
 * first (`sync`), so no run pays for writing back what an earlier one left dirty.
 */
export function measure(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Measurement {
  spawnSync('sync');
  const useTime = existsSync(GNU_TIME);
  const start = process.hrtime.bigint();
  const r = useTime
    ? spawnSync(GNU_TIME, ['-f', 'SATCHEL_BENCH_RSS %M', cmd, ...args], { env, encoding: 'utf8' })
    : spawnSync(cmd, args, { env, encoding: 'utf8' });
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) {
    throw new Error(`bench: '${cmd} ${args.join(' ')}' exited ${r.status}: ${r.stderr.slice(-2000)}`);
  }
  const m = /SATCHEL_BENCH_RSS (\d+)/.exec(r.stderr);
  return { seconds, peakMiB: m ? Number(m[1]) / 1024 : undefined };
}

/** Prints rows as an aligned text table. */
export function printTable(
  title: string,
  header: readonly string[],
  rows: readonly (readonly string[])[],
): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log(`\n${title}`);
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const r of rows) console.log(line(r));
}

/** Formats seconds. */
export const secs = (s: number): string => `${s.toFixed(3)} s`;
/** Formats MiB. */
export const mib = (m: number | undefined): string => (m === undefined ? 'n/a' : `${m.toFixed(0)} MiB`);
