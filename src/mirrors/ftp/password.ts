/**
 * @module mirrors/ftp/password
 * Where an FTP mirror's password comes from, in order: an environment variable named in the
 * mirror's config (`password_env`), `~/.netrc` (`machine <host> login <user> password <pw>`, or
 * a `default` entry), else a prompt on the terminal. Never from the command line, never written
 * to the config or a log. Anonymous logins need none.
 */
import { promptHidden } from '../secret-prompt.js';
import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SatchelError } from '../../core/errors.js';

/** Where to look for one login's password. */
export interface PasswordSource {
  readonly host: string;
  readonly user: string;
  /** The environment variable holding the password (from the config). */
  readonly passwordEnv?: string;
  /** Whether a terminal prompt is allowed (never in the daemon). */
  readonly interactive?: boolean;
}

/** Whether `user` is an anonymous login (no password needed). */
export function isAnonymous(user: string): boolean {
  return user === 'anonymous' || user === 'ftp';
}

/** The netrc file: `$NETRC`, else `~/.netrc`. */
function netrcFile(): string {
  return process.env.NETRC ?? join(homedir(), '.netrc');
}

/**
 * The password `~/.netrc` holds for `user` at `host`, if any. As `ftp` and Python's netrc do, a
 * file others may read is refused when it holds that password (it would be theirs to read too).
 */
export function netrcPassword(host: string, user: string, file = netrcFile()): string | undefined {
  const found = netrcEntryPassword(host, user, file);
  if (found === undefined) return undefined;
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new SatchelError(
      'auth-failed',
      `${file} holds the password for ${user}@${host} but others may read it (mode ${mode.toString(8).padStart(4, '0')})`,
      {
        hint: `chmod 600 ${file}, then try again (and think about changing that password)`,
        data: { host, user },
      },
    );
  }
  return found;
}

/** The password the netrc `file` holds for `user` at `host`, if any. */
function netrcEntryPassword(host: string, user: string, file: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
  const tokens = text
    .split('\n')
    .filter((l) => !l.trimStart().startsWith('#'))
    .join('\n')
    .split(/\s+/)
    .filter((t) => t !== '');
  let machine: string | undefined;
  let login: string | undefined;
  let password: string | undefined;
  let fallback: string | undefined;
  const finish = (): string | undefined => {
    if (password === undefined || (login !== undefined && login !== user)) return undefined;
    if (machine === host) return password;
    if (machine === '' && fallback === undefined) fallback = password;
    return undefined;
  };
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (t === 'machine' || t === 'default') {
      const found = finish();
      if (found !== undefined) return found;
      machine = t === 'default' ? '' : tokens[++i];
      login = undefined;
      password = undefined;
    } else if (t === 'login') login = tokens[++i];
    else if (t === 'password') password = tokens[++i];
    else if (t === 'account' || t === 'macdef') i++;
  }
  return finish() ?? fallback;
}

/**
 * Passwords typed at a prompt, kept in memory for the rest of the process: asked once, also when
 * two mirrors on one server want it at the same time.
 */
const prompted = new Map<string, Promise<string>>();

/** The password for `source`; throws `auth-failed` naming where it was looked for. */
export async function ftpPassword(source: PasswordSource): Promise<string> {
  const { host, user, passwordEnv } = source;
  if (passwordEnv !== undefined) {
    const value = process.env[passwordEnv];
    if (value !== undefined) return value;
  }
  const fromNetrc = netrcPassword(host, user);
  if (fromNetrc !== undefined) return fromNetrc;
  if (isAnonymous(user)) return 'anonymous@';
  const key = `${user}@${host}`;
  const asked = prompted.get(key);
  if (asked !== undefined) return asked;
  if (source.interactive === true && process.stdin.isTTY) {
    const answer = promptHidden(`FTP password for ${key}: `);
    prompted.set(key, answer);
    // A cancelled prompt is not remembered: the next attempt asks again.
    answer.catch(() => prompted.delete(key));
    return answer;
  }
  throw new SatchelError('auth-failed', `no password for ${user}@${host}`, {
    hint:
      passwordEnv !== undefined
        ? `set the environment variable ${passwordEnv}, or add "machine ${host} login ${user} password …" to ~/.netrc (chmod 600)`
        : `add "machine ${host} login ${user} password …" to ~/.netrc (chmod 600), or add the mirror with --password-env <VAR>`,
    data: { host, user },
  });
}
