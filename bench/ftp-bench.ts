/**
 * @module bench/ftp-bench
 * FTP publish mirror over loopback (a real pure-ftpd started here, TESTBED §2): the first
 * publish of the benchmark tree to an empty folder, a no-change resync, and one save's latency
 * (`satchel watch` running: from the write in the case to the new content under its final name
 * on the server's disk), beside `lftp mirror -R` to the same server in the same run (first
 * upload, no-change rerun, and a rerun after the same one-file change). Tree size:
 * `SATCHEL_BENCH_FTP_FILES` (default 1,000 files, ~30 MB in ~50 folders).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SATCHEL_BIN } from '../test/helpers/cli.js';
import { startPureFtpd } from '../test/helpers/ftpd.js';
import { pause, startProcess } from './latency-bench.js';
import { measure, printTable, secs } from './measure.js';
import { generateTree } from './tree.js';

const PW_ENV = 'SATCHEL_BENCH_FTP_PW';

/** Runs the FTP benchmark in `work` and prints its table. */
export async function runFtpBench(work: string): Promise<void> {
  const files = Number(process.env.SATCHEL_BENCH_FTP_FILES ?? 1_000);
  const src = join(work, 'ftp-src');
  const paths = await generateTree(src, {
    files,
    folders: Math.max(1, Math.round(files / 20)),
    totalBytes: files * 30_000,
    seed: 'satchel-bench',
  });
  mkdirSync(join(work, 'ftp-server'));
  const ftpd = await startPureFtpd(join(work, 'ftp-server'));
  const pub = join(ftpd.root, 'pub');
  for (const d of ['satchel', 'lftp']) {
    mkdirSync(join(pub, d));
    spawnSync('chown', ['65534:65534', join(pub, d)]);
  }
  try {
    const env = { ...process.env, [PW_ENV]: ftpd.password };
    const lftp = (extra: string): number => {
      const script = [
        'set ftp:ssl-allow no',
        `open -u ${ftpd.user},${ftpd.password} -p ${ftpd.port} ${ftpd.host}`,
        `mirror -R --parallel=4 --no-perms --exclude-glob .satchel/ ${extra} ${src} /pub/lftp`,
        '',
      ].join('\n');
      return measure('lftp', ['-c', script]).seconds;
    };
    measure('tar', ['-cf', '/dev/null', '-C', src, '.']);
    measure(process.execPath, [SATCHEL_BIN, 'init', src], env);
    measure(
      process.execPath,
      [
        SATCHEL_BIN,
        '-C',
        src,
        'mirror',
        'add',
        'site',
        `ftp://${ftpd.user}@${ftpd.host}:${ftpd.port}/pub/satchel`,
        '--push-only',
        '--password-env',
        PW_ENV,
      ],
      env,
    );
    const sat1 = measure(process.execPath, [SATCHEL_BIN, '-C', src, 'sync'], env).seconds;
    const sat2 = measure(process.execPath, [SATCHEL_BIN, '-C', src, 'sync'], env).seconds;
    const lf1 = lftp('');
    const lf2 = lftp('');

    // One save with `satchel watch` running: write, then wait for it under its final name.
    const target = paths[Math.floor(paths.length / 2)]!;
    const daemon = startProcess(process.execPath, [SATCHEL_BIN, '-C', src, 'watch'], env);
    const latencies: number[] = [];
    try {
      await daemon.waitFor(/started — watching/);
      await pause(500);
      for (let i = 0; i < 5; i++) {
        const content = `save ${i} ${Date.now()}\n`;
        const start = process.hrtime.bigint();
        writeFileSync(join(src, target), content);
        const deadline = Date.now() + 30_000;
        for (;;) {
          let now: string | undefined;
          try {
            now = readFileSync(join(pub, 'satchel', target), 'utf8');
          } catch {
            now = undefined;
          }
          if (now === content) break;
          if (Date.now() > deadline) throw new Error('bench: a save did not reach the FTP server in 30 s');
          await pause(1);
        }
        latencies.push(Number(process.hrtime.bigint() - start) / 1e6);
        await pause(300);
      }
    } finally {
      await daemon.stop();
    }
    latencies.sort((a, b) => a - b);
    const median = latencies[Math.floor(latencies.length / 2)]!;
    const lf3 = lftp('');
    const mb = Math.round((files * 30_000) / 1e6);
    printTable(
      `FTP publish over loopback pure-ftpd, ${files} files (~${mb} MB)`,
      ['tool', 'first publish', 'no-change rerun', 'one saved file'],
      [
        [
          'satchel (ftp://, push-only)',
          secs(sat1),
          secs(sat2),
          `${median.toFixed(0)} ms median of ${latencies.length} (watch: save → final name on the server)`,
        ],
        ['lftp mirror -R --parallel=4', secs(lf1), secs(lf2), `${secs(lf3)} (a rerun uploading the change)`],
      ],
    );
  } finally {
    await ftpd.stop();
  }
}
