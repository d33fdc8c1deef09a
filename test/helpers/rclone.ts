/**
 * @module test/helpers/rclone
 * The real `rclone` (Debian package `rclone`, 1.60) with a `crypt` remote over a local folder,
 * configured through the environment only (TESTBED.md §7): nothing is read from or written to
 * the user's `~/.config/rclone`. Missing `rclone` fails the test; it does not skip.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** A crypt remote named `tbcrypt:` over `store`. */
export interface CryptRemote {
  /** The remote's name with its colon, e.g. `tbcrypt:`. */
  readonly remote: string;
  /** The folder holding the encrypted files. */
  readonly store: string;
  /** The environment that configures the remote (pass to {@link rclone}). */
  readonly env: NodeJS.ProcessEnv;
}

/** Runs `rclone args…` with `env`, returning its standard output; throws with stderr on failure. */
export function rclone(args: readonly string[], env: NodeJS.ProcessEnv, input?: Buffer): Buffer {
  return execFileSync('rclone', [...args], {
    env,
    ...(input === undefined ? {} : { input }),
    stdio: ['pipe', 'pipe', 'pipe'],
    maxBuffer: 256 * 1024 * 1024,
  });
}

/** rclone's reversible obscuring of a password for its config. */
export function obscure(password: string): string {
  return execFileSync('rclone', ['obscure', '-'], {
    input: password,
    env: { ...process.env, RCLONE_CONFIG: '/dev/null' },
  })
    .toString()
    .trim();
}

/**
 * A crypt remote over `store` (created on first write by rclone), with `password` and the
 * optional second password `salt`; the empty config file is written into `dir`.
 */
export function cryptRemote(dir: string, store: string, password: string, salt = ''): CryptRemote {
  const config = join(dir, 'rclone-empty.conf');
  writeFileSync(config, '');
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: dir,
    RCLONE_CONFIG: config,
    RCLONE_CONFIG_TBCRYPT_TYPE: 'crypt',
    RCLONE_CONFIG_TBCRYPT_REMOTE: store,
    RCLONE_CONFIG_TBCRYPT_PASSWORD: obscure(password),
    RCLONE_CONFIG_TBCRYPT_FILENAME_ENCRYPTION: 'standard',
    RCLONE_CONFIG_TBCRYPT_DIRECTORY_NAME_ENCRYPTION: 'true',
    ...(salt === '' ? {} : { RCLONE_CONFIG_TBCRYPT_PASSWORD2: obscure(salt) }),
  };
  return { remote: 'tbcrypt:', store, env };
}
