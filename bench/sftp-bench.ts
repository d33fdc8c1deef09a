/**
 * @module bench/sftp-bench
 * SFTP mirror over loopback SSH (a real sshd started here, TESTBED §1): first sync of the
 * benchmark tree to an empty SFTP mirror and a no-change resync, beside `rsync -a -e ssh` and
 * `scp -r` to the same server in the same run. Tree size: `SATCHEL_BENCH_FILES` (default 10,000
 * files, ~300 MB in ~500 folders).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { startSshd } from '../test/helpers/sshd.js';
import { SATCHEL_BIN } from '../test/helpers/cli.js';
import { measure, printTable, secs } from './measure.js';
import { generateTree } from './tree.js';

/** Runs the SFTP benchmark in `work` and prints its table. */
export async function runSftpBench(work: string): Promise<void> {
  const files = Number(process.env.SATCHEL_BENCH_FILES ?? 10_000);
  const src = join(work, 'sftp-src');
  await generateTree(src, {
    files,
    folders: Math.max(1, Math.round(files / 20)),
    totalBytes: files * 30_000,
    seed: 'satchel-bench',
  });
  mkdirSync(join(work, 'sftp-server'));
  const sshd = await startSshd(join(work, 'sftp-server'));
  try {
    const env = { ...process.env, SATCHEL_SSH_DIR: sshd.sshDir, SSH_AUTH_SOCK: '' };
    const ssh = `ssh -p ${sshd.port} -i ${join(sshd.sshDir, 'id_ed25519')} -o BatchMode=yes -o UserKnownHostsFile=${join(sshd.sshDir, 'known_hosts')}`;
    const rsDst = join(work, 'sftp-rsync');
    const scpDst = join(work, 'sftp-scp');
    const satDst = join(work, 'sftp-satchel');
    for (const d of [rsDst, satDst]) mkdirSync(d);
    // Pre-read the source so no contestant pays for a cold cache.
    measure('tar', ['-cf', '/dev/null', '-C', src, '.']);
    measure(process.execPath, [SATCHEL_BIN, 'init', src], env);
    measure(
      process.execPath,
      [SATCHEL_BIN, '-C', src, 'mirror', 'add', 'srv', `sftp://root@127.0.0.1:${sshd.port}${satDst}`],
      env,
    );
    const sat1 = measure(process.execPath, [SATCHEL_BIN, '-C', src, 'sync'], env);
    const rs1 = measure('rsync', [
      '-a',
      '--exclude',
      '.satchel',
      '-e',
      ssh,
      `${src}/`,
      `root@127.0.0.1:${rsDst}/`,
    ]);
    const scp1 = measure('scp', [
      '-r',
      '-q',
      '-P',
      String(sshd.port),
      '-i',
      join(sshd.sshDir, 'id_ed25519'),
      '-o',
      'BatchMode=yes',
      '-o',
      `UserKnownHostsFile=${join(sshd.sshDir, 'known_hosts')}`,
      src,
      `root@127.0.0.1:${scpDst}`,
    ]);
    const sat2 = measure(process.execPath, [SATCHEL_BIN, '-C', src, 'sync'], env);
    const rs2 = measure('rsync', [
      '-a',
      '--exclude',
      '.satchel',
      '-e',
      ssh,
      `${src}/`,
      `root@127.0.0.1:${rsDst}/`,
    ]);
    printTable(
      `SFTP mirror over loopback SSH, ${files} files (~${Math.round((files * 30_000) / 1e6)} MB)`,
      ['tool', 'first sync', 'no-change resync', 'first vs rsync'],
      [
        [
          'satchel (sftp://)',
          secs(sat1.seconds),
          secs(sat2.seconds),
          `${(sat1.seconds / rs1.seconds).toFixed(2)}×`,
        ],
        ['rsync -a -e ssh', secs(rs1.seconds), secs(rs2.seconds), '1.00×'],
        ['scp -r', secs(scp1.seconds), 'n/a (copies all)', `${(scp1.seconds / rs1.seconds).toFixed(2)}×`],
      ],
    );
  } finally {
    await sshd.stop();
  }
}
