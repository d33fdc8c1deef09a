/**
 * @module mirrors/sftp/ssh-config
 * The user's SSH habits, read the way OpenSSH reads them, so that an SFTP mirror reaches the same
 * server with the same key as `ssh host` does: a small parser of `~/.ssh/config` (`Host` blocks
 * with patterns and negations, `HostName`, `User`, `Port`, `IdentityFile`, `Include`; the first
 * value obtained for a keyword wins, `IdentityFile` accumulates; `Match` blocks are skipped), and
 * where that folder is: `SATCHEL_SSH_DIR`, else `~/.ssh` (`HOME`). Pure except for reading files.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';

/** The folder holding `config`, `known_hosts` and the `id_*` keys. */
export function sshDir(): string {
  const fromEnv = process.env.SATCHEL_SSH_DIR;
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : join(homedir(), '.ssh');
}

/** Where to connect, after the config has been applied to what the URL said. */
export interface ResolvedHost {
  /** What the user wrote (the `Host` alias). */
  readonly alias: string;
  /** The name or address to connect to (`HostName`, else the alias). */
  readonly hostName: string;
  readonly port: number;
  readonly user: string;
  /** Private key files to try, in order (config `IdentityFile`s, then the default `id_*`). */
  readonly identityFiles: readonly string[];
}

/** One `Host` (or `Match`) block: its patterns and its settings, keywords in lower case. */
interface Block {
  /** `undefined` for a `Match` block (never applied). */
  readonly patterns: readonly string[] | undefined;
  readonly settings: [string, string][];
}

/** Whether `host` matches one OpenSSH pattern (`*` and `?` wildcards). */
function matchPattern(host: string, pattern: string): boolean {
  const re = new RegExp(
    '^' +
      pattern
        .split('')
        .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[\\^$.|+()[\]{}]/g, '\\$&')))
        .join('') +
      '$',
    'i',
  );
  return re.test(host);
}

/** Whether `host` matches a `Host` line: some positive pattern matches and no negated one does. */
export function hostMatches(host: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (matchPattern(host, p.slice(1))) return false;
    } else if (matchPattern(host, p)) matched = true;
  }
  return matched;
}

/** Splits a config line into keyword and arguments (`Key value`, `Key=value`, quoted arguments). */
function splitLine(line: string): [string, string[]] | undefined {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return undefined;
  const m = /^(\S+?)(?:\s*=\s*|\s+)(.*)$/.exec(trimmed);
  if (m === null) return [trimmed.toLowerCase(), []];
  const args: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let a = re.exec(m[2]!); a !== null; a = re.exec(m[2]!)) args.push(a[1] ?? a[2]!);
  return [m[1]!.toLowerCase(), args];
}

/** Parses config text into blocks; settings before the first `Host` apply to every host. */
export function parseSshConfig(text: string, dir: string, depth = 0): Block[] {
  const blocks: Block[] = [{ patterns: ['*'], settings: [] }];
  for (const line of text.split(/\r?\n/)) {
    const parsed = splitLine(line);
    if (parsed === undefined) continue;
    const [key, args] = parsed;
    if (key === 'host') blocks.push({ patterns: args, settings: [] });
    else if (key === 'match') blocks.push({ patterns: undefined, settings: [] });
    else if (key === 'include' && depth < 8) {
      // Literal file names only (relative to the SSH folder); globs are left out.
      for (const name of args) {
        const file = isAbsolute(name) ? name : join(dir, name.replace(/^~\//, homedir() + '/'));
        if (!/[*?]/.test(file) && existsSync(file))
          blocks.push(...parseSshConfig(readFileSync(file, 'utf8'), dir, depth + 1));
      }
    } else if (args.length > 0) blocks[blocks.length - 1]!.settings.push([key, args.join(' ')]);
  }
  return blocks;
}

/** Expands `~` and the `%` tokens OpenSSH allows in `IdentityFile`. */
function expandPath(value: string, host: ResolvedHost | { hostName: string; user: string }): string {
  const home = homedir();
  let out = value.replace(/%(.)/g, (_, t: string) => {
    switch (t) {
      case 'd':
        return home;
      case 'h':
        return host.hostName;
      case 'r':
        return host.user;
      case 'u':
        return userInfo().username;
      case '%':
        return '%';
      default:
        return `%${t}`;
    }
  });
  if (out === '~' || out.startsWith('~/')) out = home + out.slice(1);
  return out;
}

/** The default private keys OpenSSH tries, in its order (only the kinds ssh2 supports). */
export const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/**
 * Applies the SSH config in `dir` (default {@link sshDir}) to a host from a URL: the URL's own
 * user and port win over the config's, as with `ssh -p … user@host`.
 */
export function resolveHost(
  alias: string,
  fromUrl: { readonly user?: string; readonly port?: number },
  dir: string = sshDir(),
): ResolvedHost {
  const file = join(dir, 'config');
  const blocks = existsSync(file) ? parseSshConfig(readFileSync(file, 'utf8'), dir) : [];
  const values = new Map<string, string>();
  const identities: string[] = [];
  for (const block of blocks) {
    if (block.patterns === undefined || !hostMatches(alias, block.patterns)) continue;
    for (const [key, value] of block.settings) {
      if (key === 'identityfile') identities.push(value);
      else if (!values.has(key)) values.set(key, value);
    }
  }
  const hostName = (values.get('hostname') ?? alias).replace(/%h/g, alias);
  const user = fromUrl.user ?? values.get('user') ?? userInfo().username;
  const configPort = Number(values.get('port'));
  const port = fromUrl.port ?? (Number.isInteger(configPort) && configPort > 0 ? configPort : 22);
  const files = identities.map((f) => expandPath(f, { hostName, user }));
  for (const name of DEFAULT_IDENTITIES) {
    const f = join(dir, name);
    if (!files.includes(f)) files.push(f);
  }
  return { alias, hostName, port, user, identityFiles: files };
}
