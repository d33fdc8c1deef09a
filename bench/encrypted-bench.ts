/**
 * @module bench/encrypted-bench
 * Encrypted first sync of the 10,000-file, ~300 MB tree (fewer with `SATCHEL_BENCH_FILES`) to an
 * empty local folder, in the same run: the plain `satchel sync`, `satchel sync` to a mirror added
 * with `--encrypt` (rclone's crypt format), and `rclone copy` into a crypt remote over a local
 * folder (configured through the environment only, TESTBED.md §7; rclone's defaults otherwise),
 * plus the same rclone copy followed by `sync -f` (satchel flushes what it wrote before it
 * records it; rclone does not). `SATCHEL_BENCH_ENCRYPTED_ROUNDS` rounds (default 3), the order
 * of the tools rotating, each run from a fresh case and into an empty folder; ratios are taken
 * within a round, so a busy moment on a shared machine weighs on all tools alike. The target is
 * the encrypted sync within 1.3× of rclone.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Measurement, measure, mib, printTable, secs } from './measure.js';
import { benchTree, freshDir } from './tree.js';

const SATCHEL_BIN = fileURLToPath(new URL('../../bin/satchel.js', import.meta.url));
const PASSPHRASE = 'bench passphrase, not a secret';

function satchel(args: string[], env: NodeJS.ProcessEnv): Measurement {
  return measure(process.execPath, [SATCHEL_BIN, ...args], env);
}

/** rclone's reversible obscuring of a password, for its environment config. */
function obscure(password: string, env: NodeJS.ProcessEnv): string {
  const r = spawnSync('rclone', ['obscure', '-'], { input: password, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench: rclone obscure failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** The median of `xs` (not empty). */
function median(xs: readonly number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs the benchmark in `work` (a scratch folder) and prints the table. */
export async function runEncryptedBench(work: string): Promise<void> {
  if (spawnSync('sh', ['-c', 'command -v rclone']).status !== 0) {
    throw new Error(
      "bench: 'rclone' is not installed (apt-get install rclone); it is measured beside satchel",
    );
  }
  const files = Number(process.env.SATCHEL_BENCH_FILES ?? 10_000);
  const rounds = Math.max(1, Number(process.env.SATCHEL_BENCH_ENCRYPTED_ROUNDS ?? 3));
  const spec = {
    files,
    folders: Math.max(1, Math.round(files / 20)),
    totalBytes: 300e6 * (files / 10_000),
  };
  const src = join(work, 'enc-src');
  await benchTree(src, spec);
  const fresh = (name: string): string => freshDir(work, name);

  // rclone: a crypt remote over a local folder, configured through the environment only.
  const rcConf = join(work, 'rclone-empty.conf');
  writeFileSync(rcConf, '');
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: work, RCLONE_CONFIG: rcConf };
  const obscured = obscure(PASSPHRASE, base);
  const rcEnv = (store: string): NodeJS.ProcessEnv => ({
    ...base,
    RCLONE_CONFIG_BENCHCRYPT_TYPE: 'crypt',
    RCLONE_CONFIG_BENCHCRYPT_REMOTE: store,
    RCLONE_CONFIG_BENCHCRYPT_PASSWORD: obscured,
    RCLONE_CONFIG_BENCHCRYPT_FILENAME_ENCRYPTION: 'standard',
    RCLONE_CONFIG_BENCHCRYPT_DIRECTORY_NAME_ENCRYPTION: 'true',
  });
  const env = { ...process.env, SATCHEL_PASSPHRASE: PASSPHRASE };

  const rc: Measurement[] = [];
  const rcSynced: Measurement[] = [];
  const plain: Measurement[] = [];
  const enc: Measurement[] = [];
  let again: Measurement | undefined;
  for (let r = 0; r < rounds; r++) {
    const runRclone = (): void => {
      rc.push(measure('rclone', ['copy', src, 'benchcrypt:'], rcEnv(fresh('enc-rclone'))));
      // The same copy followed by a flush of its file system: the durability satchel gives.
      const store = fresh('enc-rclone');
      rcSynced.push(
        measure('sh', ['-c', 'rclone copy "$1" benchcrypt: && sync -f "$2"', 'sh', src, store], rcEnv(store)),
      );
    };
    // satchel: each run from its own fresh case (a copy of the tree), so every sync is a first one.
    const runSatchel = (name: string, add: string[], into: Measurement[], last: boolean): void => {
      const kase = fresh(`enc-case-${name}`);
      spawnSync('cp', ['-a', `${src}/.`, kase]);
      satchel(['init', kase], env);
      satchel(['-C', kase, 'mirror', 'add', 'm', fresh(`enc-satchel-${name}`), ...add], env);
      into.push(satchel(['-C', kase, 'sync'], env));
      if (last) again = satchel(['-C', kase, 'sync'], env);
    };
    const runPlain = (): void => runSatchel('plain', [], plain, false);
    const runEnc = (): void => runSatchel('encrypted', ['--encrypt'], enc, r === rounds - 1);
    // The order rotates between rounds: no tool always runs right after another's writes.
    const order = [runRclone, runPlain, runEnc];
    for (let i = 0; i < order.length; i++) order[(i + r) % order.length]!();
  }

  const each = (xs: readonly Measurement[]): string => xs.map((m) => m.seconds.toFixed(2)).join(' / ') + ' s';
  const med = (xs: readonly Measurement[]): number => median(xs.map((m) => m.seconds));
  /** Each round's ratio to rclone (same round), and their median. */
  const vsRclone = (xs: readonly Measurement[]): string => {
    const ratios = xs.map((m, i) => m.seconds / rc[i]!.seconds);
    return `${ratios.map((x) => x.toFixed(2)).join(' / ')} (median ${median(ratios).toFixed(2)})×`;
  };
  const peak = (xs: readonly Measurement[]): string => mib(Math.max(...xs.map((m) => m.peakMiB ?? 0)));
  printTable(
    `Encrypted first sync, ${spec.files} files / ${(spec.totalBytes / 1e6).toFixed(0)} MB / ${spec.folders} folders, local folder (${rounds} round${rounds > 1 ? 's' : ''}, order rotating)`,
    ['tool', 'first sync (each round)', 'median', 'peak mem', 'vs rclone crypt (same round)'],
    [
      ['rclone copy → crypt', each(rc), secs(med(rc)), peak(rc), '1.00×'],
      ['  + sync -f (durable)', each(rcSynced), secs(med(rcSynced)), '-', vsRclone(rcSynced)],
      ['satchel sync (plain)', each(plain), secs(med(plain)), peak(plain), vsRclone(plain)],
      ['satchel sync --encrypt', each(enc), secs(med(enc)), peak(enc), vsRclone(enc)],
      [
        '  no-change rerun',
        again === undefined ? '-' : each([again]),
        '-',
        again === undefined ? '-' : peak([again]),
        '-',
      ],
    ],
  );
  const ratios = enc.map((m, i) => m.seconds / rc[i]!.seconds);
  console.log(
    `target: encrypted sync within 1.30× of rclone crypt (median of the rounds' ratios ${median(ratios).toFixed(2)}×): ${median(ratios) <= 1.3 ? 'met' : 'NOT met'}`,
  );
}
