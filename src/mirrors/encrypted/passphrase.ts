/**
 * @module mirrors/encrypted/passphrase
 * Where the passphrase of an encrypted mirror comes from, in this order: the mirror's own
 * passphrase file (`--passphrase-file` at add time, then `passphrase_file` in the config), the
 * environment variable `SATCHEL_PASSPHRASE`, or a prompt on the terminal (only when standard
 * input is one; twice when a mirror is added). The file comes first because it is given for
 * one mirror, the variable for every mirror of the run. A mirror whose keys also take rclone's
 * second password (`password2`, the salt) reads it the same way: the file's second line,
 * `SATCHEL_PASSPHRASE2`, or a prompt. Never the command line. The passphrase and the keys
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

/** The environment variable holding the second passphrase (rclone's `password2`, its salt). */
export const SECOND_PASSPHRASE_ENV = 'SATCHEL_PASSPHRASE2';

/**
 * Reads a passphrase file: its first line is the passphrase, its second line (if any) the second
 * passphrase; a final newline belongs to neither.
 */
function readPassphraseFile(file: string): { readonly first: string; readonly second?: string } {
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
  const [first = '', second] = text.replace(/\r?\n$/, '').split(/\r?\n/);
  return second === undefined ? { first } : { first, second };
}

/** Where to look for the passphrase of one mirror. */
export interface PassphraseSource {
  /** The mirror's name, for messages. */
  readonly mirror: string;
  /** A file holding the passphrase, if one was given or configured. */
  readonly file?: string;
  /** Ask twice and compare (when a mirror is added). */
  readonly confirm?: boolean;
  /** The keys also take a second passphrase (rclone's `password2`). */
  readonly second?: boolean;
}

/** A mirror's passphrases: the passphrase, and the second one (`''`: none, rclone's own salt). */
export interface Passphrases {
  readonly passphrase: string;
  readonly second: string;
}

/** One passphrase from the file's line, the environment variable or the terminal, if any. */
async function oneFrom(
  fromFile: string | undefined,
  envName: string,
  prompt: string,
  confirm: boolean,
): Promise<string | undefined> {
  const env = process.env[envName];
  if (fromFile !== undefined) return fromFile;
  if (env !== undefined && env !== '') return env;
  if (!process.stdin.isTTY) return undefined;
  const answer = await promptHidden(prompt);
  if (confirm && (await promptHidden('The same again: ')) !== answer) {
    throw new SatchelError('usage', 'the two entries differ', { hint: 'nothing was changed; try again' });
  }
  return answer;
}

/**
 * Whether a second passphrase was given for a new mirror without being asked for: in
 * `SATCHEL_PASSPHRASE2`, or on the second line of the passphrase `file`.
 */
export function secondPassphraseGiven(file: string | undefined): boolean {
  const env = process.env[SECOND_PASSPHRASE_ENV];
  if (env !== undefined && env !== '') return true;
  return file !== undefined && (readPassphraseFile(file).second ?? '') !== '';
}

/** The passphrases, from the mirror's file, the environment or the terminal; see the module comment. */
export async function readPassphrases(source: PassphraseSource): Promise<Passphrases> {
  const file = source.file === undefined ? undefined : readPassphraseFile(source.file);
  const where = source.file === undefined ? '' : ` (the passphrase file ${source.file})`;
  const passphrase = await oneFrom(
    file?.first,
    PASSPHRASE_ENV,
    `Passphrase for the encrypted mirror "${source.mirror}": `,
    source.confirm === true,
  );
  if (passphrase === undefined) {
    throw new SatchelError('auth-failed', `the encrypted mirror "${source.mirror}" needs its passphrase`, {
      hint: `set ${PASSPHRASE_ENV}, or give --passphrase-file <file> when adding the mirror, or run from a terminal to be asked`,
    });
  }
  if (passphrase === '') {
    throw new SatchelError('auth-failed', `the passphrase of "${source.mirror}" is empty${where}`, {
      hint: 'an empty passphrase would encrypt with all-zero keys; choose one',
    });
  }
  if (source.second !== true) return { passphrase, second: '' };
  const second = await oneFrom(
    file?.second,
    SECOND_PASSPHRASE_ENV,
    `Second passphrase (rclone's password2) for "${source.mirror}": `,
    source.confirm === true,
  );
  if (second === undefined || second === '') {
    throw new SatchelError(
      'auth-failed',
      `the encrypted mirror "${source.mirror}" needs its second passphrase${where}`,
      {
        hint: `set ${SECOND_PASSPHRASE_ENV}, or put it on the second line of the passphrase file, or run from a terminal to be asked`,
      },
    );
  }
  return { passphrase, second };
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
  const { passphrase, second } = await readPassphrases(source);
  const keys = await deriveKeys(passphrase, second);
  if (!checkPassphrase(keys, source.check)) {
    throw new SatchelError('auth-failed', `wrong passphrase for the encrypted mirror "${source.mirror}"`, {
      hint:
        source.file !== undefined
          ? `check the passphrase file ${source.file}${source.second === true ? ' (both lines)' : ''}; nothing was read or written`
          : `check ${PASSPHRASE_ENV}${source.second === true ? ` and ${SECOND_PASSPHRASE_ENV}` : ''}; nothing was read or written`,
    });
  }
  derived.set(source.check, keys);
  return keys;
}

/** For `mirror add --encrypt`: reads a new passphrase (twice on a terminal) and returns its check. */
export async function newPassphraseCheck(source: PassphraseSource): Promise<string> {
  const { passphrase, second } = await readPassphrases({ ...source, confirm: true });
  const keys = await deriveKeys(passphrase, second);
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
