/**
 * @module bench/encrypted-bench
 * Encrypted first sync of the 10,000-file, ~300 MB tree (fewer with `SATCHEL_BENCH_FILES`) to an
 * empty local folder, in the same run: the plain `satchel sync`, `satchel sync` to a mirror added
 * with `--encrypt` (rclone's crypt format), and `rclone copy` into a crypt remote over a local
 * folder (configured through the environment only, TESTBED.md §7; rclone's defaults otherwise).
 * The target is the encrypted sync within 1.3× of rclone.
 */
import { spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Measurement, measure, mib, printTable, secs } from './measure.js';
import { benchTree, freshDir } from './tree.js';

const SATCHEL_BIN = fileURLToPath(new URL('../../bin/satchel.js', import.meta.url));
const PASSPHRASE = 'bench passphrase, not a secret';

function satchel(args: string[], env: NodeJS.ProcessEnv = process.env): Measurement {
  return measure(process.execPath, [SATCHEL_BIN, ...args], env);
}

/** rclone's reversible obscuring of a password, for its environment config. */
function obscure(password: string, env: NodeJS.ProcessEnv): string {
  const r = spawnSync('rclone', ['obscure', '-'], { input: password, env, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench: rclone obscure failed: ${r.stderr}`);
  return r.stdout.trim();
}

/** Runs the benchmark in `work` (a scratch folder) and prints the table. */
export async function runEncryptedBench(work: string): Promise<void> {
  if (spawnSync('sh', ['-c', 'command -v rclone']).status !== 0) {
    throw new Error(
      "bench: 'rclone' is not installed (apt-get install rclone); it is measured beside satchel",
    );
  }
  const files = Number(process.env.SATCHEL_BENCH_FILES ?? 10_000);
  const spec = {
    files,
    folders: Math.max(1, Math.round(files / 20)),
    totalBytes: 300e6 * (files / 10_000),
  };
  const src = join(work, 'enc-src');
  await benchTree(src, spec);
  const fresh = (name: string): string => freshDir(work, name);

  // rclone copy into a crypt remote over a local folder (env-only config).
  const rcStore = fresh('enc-rclone');
  const rcConf = join(work, 'rclone-empty.conf');
  writeFileSync(rcConf, '');
  const base: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: work, RCLONE_CONFIG: rcConf };
  const rcEnv: NodeJS.ProcessEnv = {
    ...base,
    RCLONE_CONFIG_BENCHCRYPT_TYPE: 'crypt',
    RCLONE_CONFIG_BENCHCRYPT_REMOTE: rcStore,
    RCLONE_CONFIG_BENCHCRYPT_PASSWORD: obscure(PASSPHRASE, base),
    RCLONE_CONFIG_BENCHCRYPT_FILENAME_ENCRYPTION: 'standard',
    RCLONE_CONFIG_BENCHCRYPT_DIRECTORY_NAME_ENCRYPTION: 'true',
  };
  const rc = measure('rclone', ['copy', src, 'benchcrypt:'], rcEnv);
  const rcPlain = measure('rclone', ['copy', src, fresh('enc-rclone-plain')], base);
  rmSync(rcStore, { recursive: true, force: true });
  rmSync(join(work, 'enc-rclone-plain'), { recursive: true, force: true });

  // satchel: the plain mirror and the encrypted one, each from its own case (same tree).
  const plainCase = join(work, 'enc-src-plain');
  spawnSync('cp', ['-a', `${src}/.`, plainCase]);
  satchel(['init', plainCase]);
  satchel(['-C', plainCase, 'mirror', 'add', 'plain', fresh('enc-satchel-plain')]);
  const plain = satchel(['-C', plainCase, 'sync']);
  rmSync(plainCase, { recursive: true, force: true });
  rmSync(join(work, 'enc-satchel-plain'), { recursive: true, force: true });

  const env = { ...process.env, SATCHEL_PASSPHRASE: PASSPHRASE };
  satchel(['init', src]);
  satchel(['-C', src, 'mirror', 'add', 'stick', fresh('enc-satchel'), '--encrypt'], env);
  const enc = satchel(['-C', src, 'sync'], env);
  const enc2 = satchel(['-C', src, 'sync'], env);

  const ratio = (a: Measurement, b: Measurement): string => `${(a.seconds / b.seconds).toFixed(2)}×`;
  printTable(
    `Encrypted first sync, ${spec.files} files / ${(spec.totalBytes / 1e6).toFixed(0)} MB / ${spec.folders} folders, local folder`,
    ['tool', 'first sync', 'peak mem', 'vs rclone crypt'],
    [
      ['rclone copy (plain)', secs(rcPlain.seconds), mib(rcPlain.peakMiB), ratio(rcPlain, rc)],
      ['rclone copy → crypt', secs(rc.seconds), mib(rc.peakMiB), '1.00×'],
      ['satchel sync (plain)', secs(plain.seconds), mib(plain.peakMiB), ratio(plain, rc)],
      ['satchel sync --encrypt', secs(enc.seconds), mib(enc.peakMiB), ratio(enc, rc)],
      ['  no-change rerun', secs(enc2.seconds), mib(enc2.peakMiB), '-'],
    ],
  );
  console.log(
    `target: encrypted sync within 1.30× of rclone crypt: ${enc.seconds <= 1.3 * rc.seconds ? 'met' : 'NOT met'}`,
  );
}
