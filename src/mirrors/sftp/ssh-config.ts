/**
 * @module mirrors/sftp/ssh-config
 * The user's SSH habits, read the way OpenSSH reads them, so that an SFTP mirror reaches the same
 * server with the same key as `ssh host` does: a small parser of `~/.ssh/config` (`Host` blocks
 * with patterns and negations, `HostName`, `User`, `Port`, `IdentityFile`, `Include` with glob
 * patterns as `ssh` expands them (sorted, relative to the SSH folder, inside a `Host` block only for
 * that block's hosts); the first value obtained for a keyword wins, `IdentityFile` accumulates;
 * `Match` blocks are skipped; `ProxyJump`/`ProxyCommand` are refused, not silently bypassed), and
 * where that folder is: `SATCHEL_SSH_DIR`, else `~/.ssh` (`HOME`). Pure except for reading files.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { SatchelError } from '../../core/errors.js';

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

/** Whether a file name matches one glob component (`*`, `?`, `[...]`; dot files only by a dot). */
function matchGlobName(name: string, pattern: string): boolean {
  if (name.startsWith('.') && !pattern.startsWith('.')) return false;
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    const close = c === '[' ? pattern.indexOf(']', i + 2) : -1;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (close > 0) {
      const body = pattern.slice(i + 1, close).replace(/\\/g, '\\\\');
      re += '[' + (body.startsWith('!') ? '^' + body.slice(1) : body) + ']';
      i = close;
    } else re += c.replace(/[\\^$.|+()[\]{}]/g, '\\$&');
  }
  return new RegExp(re + '$').test(name);
}

/** The existing files an `Include` argument names, expanded as glob(3) does, sorted per folder. */
export function expandInclude(absolute: string): string[] {
  let paths = ['/'];
  for (const part of absolute.split('/').filter((p) => p !== '')) {
    const next: string[] = [];
    for (const base of paths) {
      if (!/[*?[]/.test(part)) {
        next.push(join(base, part));
        continue;
      }
      let names: string[];
      try {
        names = readdirSync(base).sort();
      } catch {
        continue;
      }
      for (const name of names) if (matchGlobName(name, part)) next.push(join(base, name));
    }
    paths = next;
  }
  return paths.filter((f) => {
    try {
      return statSync(f).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * Parses config text into blocks; settings before the first `Host` apply to `patterns` (every
 * host at the top of `config`; the including block's hosts for an `Include` inside a block).
 */
export function parseSshConfig(
  text: string,
  dir: string,
  depth = 0,
  patterns: readonly string[] = ['*'],
): Block[] {
  const blocks: Block[] = [{ patterns, settings: [] }];
  for (const line of text.split(/\r?\n/)) {
    const parsed = splitLine(line);
    if (parsed === undefined) continue;
    const [key, args] = parsed;
    const current = blocks[blocks.length - 1]!;
    if (key === 'host') blocks.push({ patterns: args, settings: [] });
    else if (key === 'match') blocks.push({ patterns: undefined, settings: [] });
    else if (key === 'include' && depth < 16) {
      for (const name of args) {
        const path = name === '~' || name.startsWith('~/') ? homedir() + name.slice(1) : name;
        for (const file of expandInclude(isAbsolute(path) ? path : join(dir, path))) {
          const inner = current.patterns;
          blocks.push(...parseSshConfig(readFileSync(file, 'utf8'), dir, depth + 1, inner ?? []));
          // What follows the Include belongs to the block that held it again.
          blocks.push({ patterns: inner, settings: [] });
        }
      }
    } else if (args.length > 0) current.settings.push([key, args.join(' ')]);
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
  for (const key of ['proxyjump', 'proxycommand']) {
    const value = values.get(key);
    if (value !== undefined && value.toLowerCase() !== 'none') {
      const name = key === 'proxyjump' ? 'ProxyJump' : 'ProxyCommand';
      throw new SatchelError(
        'mirror-unsupported',
        `${join(dir, 'config')} sets ${name} for ${alias}, which Satchel does not follow yet`,
        {
          hint: `reach the server directly, or forward a port (\`ssh -N -L 2222:${values.get('hostname') ?? alias}:22 <jump host>\`) and use sftp://user@localhost:2222/path`,
        },
      );
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
