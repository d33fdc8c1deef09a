/**
 * @module mirrors/encrypted/passphrase
 * Where the passphrase of an encrypted mirror comes from, in this order: the mirror's own
 * passphrase file (`--passphrase-file` at add time, then `passphrase_file` in the config), the
 * environment variable `SATCHEL_PASSPHRASE`, or a prompt on the terminal (only when standard
 * input is one; twice when a mirror is added). The file comes first because it is given for
 * one mirror, the variable for every mirror of the run. Never the command line. The passphrase and the keys
 * derived from it stay in memory: nothing here logs, prints or stores them; the config holds
 * only a {@link passphraseCheck}, and so does the mirror's marker (which is what lets a second
 * computer adopting the mirror refuse a wrong passphrase before writing anything).
 */
import { promptHidden } from '../secret-prompt.js';
import { timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SatchelError } from '../../core/errors.js';
import { checkPassphrase, deriveKeys, passphraseCheck, type CryptKeys } from './crypt.js';

/** The environment variable holding the passphrase. */
export const PASSPHRASE_ENV = 'SATCHEL_PASSPHRASE';

/** Reads a passphrase file: its first line (a trailing newline is not part of the passphrase). */
function readPassphraseFile(file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new SatchelError(
      'io',
      `cannot read the passphrase file ${file}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`,
      {
        hint: 'check the path and its permissions (the file should be readable by you alone: chmod 600)',
      },
    );
  }
  return text.replace(/\r?\n$/, '');
}

/** Where to look for the passphrase of one mirror. */
export interface PassphraseSource {
  /** The mirror's name, for messages. */
  readonly mirror: string;
  /** A file holding the passphrase, if one was given or configured. */
  readonly file?: string;
  /** Ask twice and compare (when a mirror is added). */
  readonly confirm?: boolean;
}

/** The passphrase, from the mirror's file, the environment or the terminal; see the module comment. */
export async function readPassphrase(source: PassphraseSource): Promise<string> {
  const env = process.env[PASSPHRASE_ENV];
  let passphrase: string | undefined;
  if (source.file !== undefined) passphrase = readPassphraseFile(source.file);
  else if (env !== undefined && env !== '') passphrase = env;
  else if (process.stdin.isTTY) {
    passphrase = await promptHidden(`Passphrase for the encrypted mirror "${source.mirror}": `);
    if (source.confirm === true && (await promptHidden('The same passphrase again: ')) !== passphrase) {
      throw new SatchelError('usage', 'the two passphrases differ', {
        hint: 'nothing was changed; try again',
      });
    }
  }
  if (passphrase === undefined) {
    throw new SatchelError('auth-failed', `the encrypted mirror "${source.mirror}" needs its passphrase`, {
      hint: `set ${PASSPHRASE_ENV}, or give --passphrase-file <file> when adding the mirror, or run from a terminal to be asked`,
    });
  }
  if (passphrase === '') {
    throw new SatchelError('auth-failed', `the passphrase of "${source.mirror}" is empty`, {
      hint: 'an empty passphrase would encrypt with all-zero keys; choose one',
    });
  }
  return passphrase;
}

/** Keys already derived and checked in this process, by passphrase check (scrypt is slow on purpose). */
const derived = new Map<string, CryptKeys>();

/**
 * The keys of an encrypted mirror whose config holds `check`: reads the passphrase, derives the
 * keys and refuses a wrong passphrase (`auth-failed`) before anything is read or written.
 */
export async function mirrorKeys(source: PassphraseSource & { readonly check: string }): Promise<CryptKeys> {
  const known = derived.get(source.check);
  if (known !== undefined) return known;
  const keys = await deriveKeys(await readPassphrase(source));
  if (!checkPassphrase(keys, source.check)) {
    throw new SatchelError('auth-failed', `wrong passphrase for the encrypted mirror "${source.mirror}"`, {
      hint: `check ${PASSPHRASE_ENV} or the passphrase file; nothing was read or written`,
    });
  }
  derived.set(source.check, keys);
  return keys;
}

/** For `mirror add --encrypt`: reads a new passphrase (twice on a terminal) and returns its check. */
export async function newPassphraseCheck(source: PassphraseSource): Promise<string> {
  const keys = await deriveKeys(await readPassphrase({ ...source, confirm: true }));
  const check = passphraseCheck(keys);
  derived.set(check, keys);
  return check;
}

/** The keys derived in this process for passphrase check `check` (by {@link newPassphraseCheck}). */
export function keysOfCheck(check: string): CryptKeys | undefined {
  return derived.get(check);
}

/** Whether two passphrase checks are the same (compared in constant time). */
export function sameCheck(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}
