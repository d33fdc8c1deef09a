/**
 * @module bench/sftp-bench
 * SFTP mirror over loopback SSH (a real sshd started here, TESTBED §1), on the same tree as the
 * local sync bench (10,000 files, ~300 MB in ~500 folders; `SATCHEL_BENCH_FILES` shrinks it),
 * beside `rsync -a -e ssh` and `scp -r` to the same server in the same run:
 *
 * - **first sync** to an empty folder and a **no-change resync**, in `SATCHEL_BENCH_SFTP_ROUNDS`
 *   rounds (default 2; the order of the tools alternates between rounds). Each round uses new
 *   destination folders (the satchel case gets a fresh `.satchel`), and nothing is deleted
 *   until the end: on this machine creating files right after a mass delete is very slow.
 *   Before each first sync the disk is flushed (`sync`, not timed), so that no tool pays for
 *   writing back what the one before it left dirty: satchel's copies are durable when it
 *   finishes (fsync per file, or one `sync -f` for a bulk upload), rsync's and scp's are not.
 * - **save-to-mirror latency** under `satchel watch` (the SFTP mirror's kept-alive connection):
 *   each of `SATCHEL_BENCH_SAMPLES` (default 40) samples writes a new 5 KB content to a file in
 *   the case; the clock runs from the end of the write until the server's copy (read from the
 *   server's folder, seen through `fs.watch` with a 100 ms backup poll) has exactly that
 *   content. For comparison, the same one-file change pushed by rerunning `rsync -a -e ssh` over
 *   the whole tree and by `scp` of the one file (each a new SSH connection), median of 5.
 *
 * Timings are reported, never asserted.
 */
import { spawnSync } from 'node:child_process';
import { type FSWatcher, mkdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSshd } from '../test/helpers/sshd.js';
import { SATCHEL_BIN } from '../test/helpers/cli.js';
import { pause, percentile, startProcess } from './latency-bench.js';
import { type Measurement, measure, mib, printTable, secs } from './measure.js';
import { benchTree } from './tree.js';

const LATENCY_FILE = 'bench-latency.txt';
const SAMPLE_TIMEOUT_MS = 30_000;

/** The median of some numbers. */
function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length === 0
    ? NaN
    : s.length % 2 === 1
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/** A 5 KB text whose first line makes it unique. */
function content(i: number): string {
  const line = 'the quick brown fox jumps over the lazy dog, sample text for the latency bench\n';
  return `save ${i} at ${Date.now()}\n` + line.repeat(Math.ceil(5000 / line.length));
}

/** Waits until `file` holds exactly `expected`; resolves with the ms since `start`. */
function arrival(dir: string, file: string, expected: string, start: bigint): Promise<number> {
  return new Promise((resolve, reject) => {
    const check = (): boolean => {
      let now: string | undefined;
      try {
        now = readFileSync(join(dir, file), 'utf8');
      } catch {
        now = undefined;
      }
      if (now !== expected) return false;
      finish(undefined, Number(process.hrtime.bigint() - start) / 1e6);
      return true;
    };
    const poll = setInterval(check, 100);
    const timeout = setTimeout(
      () => finish(new Error(`bench: a save did not reach the SFTP server in ${SAMPLE_TIMEOUT_MS} ms`)),
      SAMPLE_TIMEOUT_MS,
    );
    const finish = (err: Error | undefined, ms?: number): void => {
      clearInterval(poll);
      clearTimeout(timeout);
      watcher.close();
      if (err) reject(err);
      else resolve(ms!);
    };
    const watcher: FSWatcher = watch(dir, () => void check());
    check();
  });
}

/** Runs the SFTP benchmark in `work` and prints its tables. */
export async function runSftpBench(work: string): Promise<void> {
  const files = Number(process.env.SATCHEL_BENCH_FILES ?? 10_000);
  const spec = { files, folders: Math.max(1, Math.round(files / 20)), totalBytes: files * 30_000 };
  const rounds = Math.max(1, Number(process.env.SATCHEL_BENCH_SFTP_ROUNDS ?? 2));
  const samples = Math.max(1, Number(process.env.SATCHEL_BENCH_SAMPLES ?? 40));
  for (const tool of ['rsync', 'scp', 'ssh']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0)
      throw new Error(`bench: '${tool}' is not installed; it is measured beside satchel`);
  }
  const src = join(work, 'sftp-src');
  await benchTree(src, spec);
  writeFileSync(join(src, LATENCY_FILE), content(-1));
  mkdirSync(join(work, 'sftp-server'));
  const sshd = await startSshd(join(work, 'sftp-server'));
  const fresh = (name: string): string => {
    const d = join(work, name);
    mkdirSync(d);
    return d;
  };
  try {
    const env = { ...process.env, SATCHEL_SSH_DIR: sshd.sshDir, SSH_AUTH_SOCK: '' };
    const key = join(sshd.sshDir, 'id_ed25519');
    const knownHosts = `UserKnownHostsFile=${join(sshd.sshDir, 'known_hosts')}`;
    const ssh = `ssh -p ${sshd.port} -i ${key} -o BatchMode=yes -o ${knownHosts}`;
    const server = (dir: string): string => `root@127.0.0.1:${dir}`;
    const satchel = (args: readonly string[]): Measurement =>
      measure(process.execPath, [SATCHEL_BIN, ...args], env);
    const rsync = (dst: string): Measurement =>
      measure('rsync', ['-a', '--exclude', '.satchel', '-e', ssh, `${src}/`, `${server(dst)}/`]);
    const scpArgs = ['-q', '-P', String(sshd.port), '-i', key, '-o', 'BatchMode=yes', '-o', knownHosts];

    const sat: { first: Measurement; again: Measurement; dst: string }[] = [];
    const rs: { first: Measurement; again: Measurement }[] = [];
    const scp: Measurement[] = [];
    for (let r = 0; r < rounds; r++) {
      // Pre-read the tree so that no contestant pays for a cold cache.
      measure('tar', ['-cf', '/dev/null', '-C', src, '.']);
      const runSatchel = (): void => {
        const dst = fresh(`sftp-satchel-${r}`);
        rmSync(join(src, '.satchel'), { recursive: true, force: true });
        satchel(['init', src]);
        satchel(['-C', src, 'mirror', 'add', 'srv', `sftp://root@127.0.0.1:${sshd.port}${dst}`]);
        spawnSync('sync');
        const first = satchel(['-C', src, 'sync']);
        sat.push({ first, again: satchel(['-C', src, 'sync']), dst });
      };
      const runRsync = (): void => {
        const dst = fresh(`sftp-rsync-${r}`);
        spawnSync('sync');
        const first = rsync(dst);
        rs.push({ first, again: rsync(dst) });
      };
      const runScp = (): void => {
        // scp -r copies the folder itself into a target that does not exist yet.
        const dst = join(fresh(`sftp-scp-${r}`), 'tree');
        spawnSync('sync');
        scp.push(measure('scp', ['-r', ...scpArgs, src, server(dst)]));
      };
      const order = r % 2 === 0 ? [runSatchel, runRsync, runScp] : [runRsync, runScp, runSatchel];
      for (const run of order) run();
    }

    // Latency: `satchel watch` on the last round's case and mirror.
    const mirrorDir = sat[sat.length - 1]!.dst;
    const daemon = startProcess(process.execPath, [SATCHEL_BIN, '-C', src, 'watch'], env);
    const latencies: number[] = [];
    try {
      await daemon.waitFor(/started — watching/);
      await pause(500);
      for (let i = 0; i < samples; i++) {
        const text = content(i);
        writeFileSync(join(src, LATENCY_FILE), text);
        latencies.push(await arrival(mirrorDir, LATENCY_FILE, text, process.hrtime.bigint()));
        await pause(200);
      }
    } finally {
      await daemon.stop();
    }
    latencies.sort((a, b) => a - b);

    // The same one-file change pushed by the other tools (each opens a new SSH connection).
    const rsDst = fresh('sftp-rsync-latency');
    rsync(rsDst);
    const rsOne: number[] = [];
    const scpOne: number[] = [];
    for (let i = 0; i < 5; i++) {
      writeFileSync(join(src, LATENCY_FILE), content(1000 + i));
      rsOne.push(rsync(rsDst).seconds);
      scpOne.push(
        measure('scp', [...scpArgs, join(src, LATENCY_FILE), server(join(rsDst, LATENCY_FILE))]).seconds,
      );
    }

    const mb = (spec.totalBytes / 1e6).toFixed(0);
    const firsts = (xs: readonly Measurement[]): string =>
      xs.map((m) => m.seconds.toFixed(2)).join(' / ') + ' s';
    const ratios = sat.map((s, i) => (s.first.seconds / rs[i]!.first.seconds).toFixed(2)).join(' / ');
    printTable(
      `SFTP mirror over loopback SSH, ${files} files / ${mb} MB / ${spec.folders} folders (${rounds} round${rounds > 1 ? 's' : ''}, tools alternating)`,
      ['tool', 'first sync (each round)', 'peak mem', 'no-change resync', 'first vs rsync'],
      [
        [
          'satchel (sftp://)',
          firsts(sat.map((s) => s.first)),
          mib(Math.max(...sat.map((s) => s.first.peakMiB ?? 0))),
          firsts(sat.map((s) => s.again)),
          `${ratios}×`,
        ],
        ['rsync -a -e ssh', firsts(rs.map((s) => s.first)), '-', firsts(rs.map((s) => s.again)), '1.00×'],
        [
          'scp -r',
          firsts(scp),
          '-',
          'n/a (copies all)',
          scp.map((m, i) => (m.seconds / rs[i]!.first.seconds).toFixed(2)).join(' / ') + '×',
        ],
      ],
    );
    printTable(
      `One saved file (5 KB) reaching the SFTP server, ${latencies.length} samples`,
      ['tool', 'p50', 'p95', 'how'],
      [
        [
          'satchel watch',
          `${percentile(latencies, 50).toFixed(1)} ms`,
          `${percentile(latencies, 95).toFixed(1)} ms`,
          'end of the write → the new content under its final name on the server',
        ],
        [
          'rsync -a -e ssh',
          secs(median(rsOne)),
          '-',
          'a rerun over the whole tree after the change (median of 5)',
        ],
        ['scp', secs(median(scpOne)), '-', 'the one file, new connection (median of 5)'],
      ],
    );
  } finally {
    // The folders stay until the whole bench ends (see freshDir in tree.ts): deleting 30,000
    // files here would slow the next bench's file creation for a minute.
    await sshd.stop();
  }
}
