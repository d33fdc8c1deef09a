/**
 * @module daemon/mirror-url
 * Parsing what the user types for a mirror: its URL (which kind of mirror, and where) and its
 * name (a short label used in messages, conflict copy names and the config).
 *
 * Path, SFTP and FTP/FTPS mirrors are available now; peer (`ssh://`) URLs are recognised so the
 * user gets a plain "not available in this version" instead of "bad URL".
 */
import { isAbsolute, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SatchelError } from '../core/errors.js';

/** A parsed mirror URL of a kind this version can replicate to. */
export interface PathMirrorUrl {
  /** A folder on a local disk, stick, or mounted share. */
  readonly kind: 'path';
  /** Absolute, normalised folder path, without a trailing slash. */
  readonly root: string;
}

/** A folder on an SSH server, reached over SFTP: `sftp://user@host[:port]/path`. */
export interface SftpMirrorUrl {
  readonly kind: 'sftp';
  /** Host name, address, or a `Host` alias of `~/.ssh/config`. */
  readonly host: string;
  /** The port when the URL names one (else `~/.ssh/config`'s, else 22). */
  readonly port?: number;
  /** The login when the URL names one (else `~/.ssh/config`'s, else the local user's name). */
  readonly user?: string;
  /** The folder on the server: absolute, or relative to the login folder (`sftp://host/~/work`). */
  readonly path: string;
}

/**
 * A folder on an FTP server, push-only: `ftp://[user@]host[:port]/path`, or `ftps://` for
 * explicit TLS. The path is relative to the login folder (as curl reads it); `//abs` is absolute.
 */
export interface FtpMirrorUrl {
  readonly kind: 'ftp';
  readonly host: string;
  readonly port?: number;
  /** The login when the URL names one (else `anonymous`). */
  readonly user?: string;
  readonly path: string;
  /** `ftps://`: explicit TLS with the certificate checked. */
  readonly secure: boolean;
}

/** Every mirror URL this version can use. */
export type MirrorUrl = PathMirrorUrl | SftpMirrorUrl | FtpMirrorUrl;

/** The rule mirror names follow, as a regular expression. */
export const MIRROR_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** What mirror URLs may look like, for error messages. */
const ALLOWED_URLS =
  'an absolute path (/media/me/STICK/work), file:///abs/path, sftp://user@host[:port]/path or ftp[s]://user@host[:port]/path; later versions add ssh://';

/** Recognised schemes of mirror kinds that are planned but not built yet. */
const PLANNED_KINDS: Readonly<Record<string, string>> = {
  'ssh:': 'Peer (ssh://)',
};

/**
 * Parses a mirror URL: an absolute path or `file:///abs/path` gives a path mirror. Throws
 * `mirror-unsupported` for `ssh://` (not in this version), and
 * `usage` for anything else (relative paths, other schemes), naming what is allowed.
 */
export function parseMirrorUrl(url: string): MirrorUrl {
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*:)\/\//.exec(url)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    if (url === '' || !isAbsolute(url)) {
      throw new SatchelError('usage', `mirror URL "${url}" is not an absolute path`, {
        hint: `use ${ALLOWED_URLS}`,
        data: { url },
      });
    }
    return { kind: 'path', root: withoutTrailingSlash(normalize(url)) };
  }
  if (scheme === 'file:') return { kind: 'path', root: withoutTrailingSlash(fileUrlToRoot(url)) };
  if (scheme === 'sftp:') return parseSftpUrl(url);
  if (scheme === 'ftp:' || scheme === 'ftps:') return parseFtpUrl(url, scheme === 'ftps:');
  const planned = PLANNED_KINDS[scheme];
  if (planned !== undefined) {
    throw new SatchelError('mirror-unsupported', `${planned} mirrors are not available in this version`, {
      hint: 'use a path mirror for now: a local folder, a stick, or a share mounted into the file system',
      data: { url },
    });
  }
  throw new SatchelError('usage', `mirror URL "${url}" has an unknown scheme ${scheme}//`, {
    hint: `use ${ALLOWED_URLS}`,
    data: { url },
  });
}

/** Checks a mirror name against {@link MIRROR_NAME_PATTERN}; throws a `usage` error naming the rule. */
export function validateMirrorName(name: string): void {
  if (!MIRROR_NAME_PATTERN.test(name)) {
    throw new SatchelError('usage', `invalid mirror name "${name}"`, {
      hint: 'a mirror name has 1 to 64 letters, digits, dots, dashes or underscores, and starts with a letter or digit',
      data: { name },
    });
  }
}

/** Why `url` does not parse as a URL, as precisely as can be told (a bad port is named). */
function invalidUrlReason(url: string): string {
  const port = /^[a-z]+:\/\/(?:[^@/]*@)?(?:\[[^\]]*\]|[^:/]*):([^/]*)/i.exec(url)?.[1];
  if (port !== undefined && !(/^\d+$/.test(port) && Number(port) >= 1 && Number(port) <= 65535))
    return `the port "${port}" is not a number from 1 to 65535`;
  return 'it is not a valid URL';
}

/** Parses `sftp://[user@]host[:port]/path` (`/~/path`: relative to the login folder). */
function parseSftpUrl(url: string): SftpMirrorUrl {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw sftpUsage(url, invalidUrlReason(url), cause);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw sftpUsage(url, 'it names no host');
  if (parsed.password !== '')
    throw sftpUsage(url, 'passwords do not belong in the URL (use keys or ssh-agent)');
  let path = decodeURIComponent(parsed.pathname);
  if (path === '/~' || path.startsWith('/~/')) path = path.slice(3) || '.';
  else if (path === '' || path === '/') throw sftpUsage(url, 'it names no folder');
  path = withoutTrailingSlash(path);
  return {
    kind: 'sftp',
    host,
    ...(parsed.port === '' ? {} : { port: Number(parsed.port) }),
    ...(parsed.username === '' ? {} : { user: decodeURIComponent(parsed.username) }),
    path,
  };
}

function sftpUsage(url: string, why: string, cause?: unknown): SatchelError {
  return new SatchelError('usage', `mirror URL "${url}" is not a usable SFTP URL: ${why}`, {
    hint: 'write sftp://user@host[:port]/abs/path, or sftp://host/~/path for a folder below the login folder',
    data: { url },
    cause,
  });
}

/** Parses `ftp[s]://[user@]host[:port]/path`; a password in the URL is refused. */
function parseFtpUrl(url: string, secure: boolean): FtpMirrorUrl {
  // A password typed into the URL must not reach a message or a log.
  const shown = url.replace(/\/\/([^/@:]*):[^/@]*@/, '//$1:***@');
  const usage = (why: string, cause?: unknown): SatchelError =>
    new SatchelError('usage', `mirror URL "${shown}" is not a usable FTP URL: ${why}`, {
      hint: 'write ftp://user@host[:port]/path (or ftps:// for TLS); the password comes from ~/.netrc, --password-env or a prompt',
      data: { url: shown },
      cause,
    });
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (cause) {
    throw usage(invalidUrlReason(url), cause);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') throw usage('it names no host');
  if (parsed.password !== '') throw usage('passwords do not belong in the URL');
  const raw = decodeURIComponent(parsed.pathname);
  if (raw === '' || raw === '/')
    throw usage(
      'it names no folder (ftp://host/<folder> below the login folder, ftp://host//abs/path for an absolute one)',
    );
  const path = withoutTrailingSlash(raw.startsWith('//') ? raw : raw.slice(1));
  return {
    kind: 'ftp',
    host,
    ...(parsed.port === '' ? {} : { port: Number(parsed.port) }),
    ...(parsed.username === '' ? {} : { user: decodeURIComponent(parsed.username) }),
    path,
    secure,
  };
}

/** The folder a mirror URL names, for messages: the path, or `user@host:path` for SFTP and FTP. */
export function describeMirrorUrl(url: MirrorUrl): string {
  if (url.kind === 'path') return url.root;
  const host = bracketed(url.host);
  if (url.kind === 'ftp')
    // An absolute path (`//www`) is written as the URL gave it: one slash after the port, then its own.
    return `${url.secure ? 'ftps' : 'ftp'}://${url.user === undefined ? '' : `${url.user}@`}${host}${url.port === undefined ? '' : `:${url.port}`}/${url.path.replace(/^\/\//, '/')}`;
  return `${url.user === undefined ? '' : `${url.user}@`}${host}${url.port === undefined ? '' : `:${url.port}`}:${shownRemotePath(url.path)}`;
}

/** A host name as it is written before `:port`: an IPv6 address in brackets (`[::1]`). */
export function bracketed(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/** An SFTP path as people write it: one relative to the login folder starts with `~/` (`.` is `~`). */
export function shownRemotePath(path: string): string {
  if (path.startsWith('/')) return path;
  return path === '' || path === '.' ? '~' : `~/${path.replace(/^\.\//, '')}`;
}

/** Converts a `file://` URL to an absolute path, refusing remote hosts and malformed URLs. */
function fileUrlToRoot(url: string): string {
  try {
    return fileURLToPath(url);
  } catch (cause) {
    throw new SatchelError('usage', `mirror URL "${url}" is not a local file URL`, {
      hint: 'write file:///abs/path (three slashes, no host), or just the absolute path',
      data: { url },
      cause,
    });
  }
}

/** `/a/b/` → `/a/b`; `/` stays `/`. */
function withoutTrailingSlash(path: string): string {
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}
