/**
 * @module bench/sync-bench
 * One-shot sync of a 10,000-file, ~300 MB tree in ~500 folders to an empty local mirror, then a
 * second sync with nothing changed: `satchel sync` beside `cp -a`, `rsync -a` and `unison`.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Measurement, measure, mib, printTable, secs } from './measure.js';
import { benchTree, freshDir } from './tree.js';

const SATCHEL_BIN = fileURLToPath(new URL('../../bin/satchel.js', import.meta.url));

function need(tool: string): void {
  if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) {
    throw new Error(
      `bench: '${tool}' is not installed (apt-get install ${tool}); it is measured beside satchel`,
    );
  }
}

function satchel(args: string[]): Measurement {
  return measure(process.execPath, [SATCHEL_BIN, ...args]);
}

/** Runs the benchmark in `work` (a scratch folder) and prints the table. */
export async function runSyncBench(
  work: string,
  spec = { files: 10_000, folders: 500, totalBytes: 300e6 },
): Promise<void> {
  for (const t of ['rsync', 'unison', 'cp']) need(t);
  const src = join(work, 'src');
  await benchTree(src, spec);
  const fresh = (name: string): string => freshDir(work, name);

  const cpDst = fresh('cp');
  const cp = measure('cp', ['-a', `${src}/.`, cpDst]);

  const rsDst = fresh('rsync');
  const rs1 = measure('rsync', ['-a', `${src}/`, `${rsDst}/`]);
  const rs2 = measure('rsync', ['-a', `${src}/`, `${rsDst}/`]);
  // rsync leaves its writes in the page cache; Satchel's sync returns only once they are on the
  // device. The same durability for rsync costs a `sync` after it.
  const rsSyncDst = fresh('rsync-sync');
  const rsDurable = measure('sh', ['-c', 'rsync -a "$1/" "$2/" && sync', 'sh', src, rsSyncDst]);

  const unDst = fresh('unison');
  const unHome = fresh('unison-home');
  const unArgs = [src, unDst, '-batch', '-auto', '-times', '-silent', '-ignore', 'Name .satchel'];
  const unEnv = { ...process.env, UNISON: unHome };
  const un1 = measure('unison', unArgs, unEnv);
  const un2 = measure('unison', unArgs, unEnv);

  const saDst = fresh('satchel');
  satchel(['init', src]);
  satchel(['-C', src, 'mirror', 'add', 'bench', saDst]);
  const sa1 = satchel(['-C', src, 'sync']);
  const sa2 = satchel(['-C', src, 'sync']);

  const ratio = (a: Measurement, b: Measurement): string => `${(a.seconds / b.seconds).toFixed(2)}×`;
  printTable(
    `One-shot sync, ${spec.files} files / ${(spec.totalBytes / 1e6).toFixed(0)} MB / ${spec.folders} folders, local disk`,
    ['tool', 'first sync', 'peak mem', 'no-change sync', 'peak mem', 'first vs rsync', 'no-change vs rsync'],
    [
      ['cp -a (floor)', secs(cp.seconds), mib(cp.peakMiB), '-', '-', ratio(cp, rs1), '-'],
      [
        'rsync -a',
        secs(rs1.seconds),
        mib(rs1.peakMiB),
        secs(rs2.seconds),
        mib(rs2.peakMiB),
        '1.00×',
        '1.00×',
      ],
      [
        'rsync -a + sync (durable)',
        secs(rsDurable.seconds),
        mib(rsDurable.peakMiB),
        '-',
        '-',
        ratio(rsDurable, rs1),
        '-',
      ],
      [
        'unison',
        secs(un1.seconds),
        mib(un1.peakMiB),
        secs(un2.seconds),
        mib(un2.peakMiB),
        ratio(un1, rs1),
        ratio(un2, rs2),
      ],
      [
        'satchel sync',
        secs(sa1.seconds),
        mib(sa1.peakMiB),
        secs(sa2.seconds),
        mib(sa2.peakMiB),
        ratio(sa1, rs1),
        ratio(sa2, rs2),
      ],
    ],
  );
}
