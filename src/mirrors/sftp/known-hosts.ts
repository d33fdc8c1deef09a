/**
 * @module mirrors/sftp/known-hosts
 * Host-key checking against `~/.ssh/known_hosts`, as OpenSSH does it: plain host patterns
 * (`host`, `[host]:port`, lists, `*`/`?` wildcards, `!` negations) and hashed entries
 * (`|1|salt|hmac`, HMAC-SHA1 of the host name keyed with the salt); `@revoked` lines refuse a key,
 * `@cert-authority` lines are ignored (no certificates here). A key that matches is `known`; a host
 * with other keys on record is `changed` (refused, always); a host with none is `unknown` (refused
 * unless the user accepts it explicitly, which appends a line).
 */
import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { hostMatches } from './ssh-config.js';

/** The name a host is recorded under: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** OpenSSH's fingerprint of a public key blob: `SHA256:` and unpadded base64. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The key type named inside a public key blob (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`…). */
export function keyType(keyBlob: Buffer): string {
  const len = keyBlob.length >= 4 ? keyBlob.readUInt32BE(0) : 0;
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

/** One usable line of a known_hosts file. */
interface KnownKey {
  readonly marker: '' | '@revoked' | '@cert-authority';
  readonly hosts: string;
  readonly type: string;
  readonly key: string;
  readonly line: number;
}

function parseLines(text: string): KnownKey[] {
  const out: KnownKey[] = [];
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const fields = raw.trim().split(/\s+/);
    if (fields[0] === undefined || fields[0] === '' || fields[0].startsWith('#')) continue;
    const marker = fields[0].startsWith('@') ? fields.shift()! : '';
    if (marker !== '' && marker !== '@revoked' && marker !== '@cert-authority') continue;
    const [hosts, type, key] = fields;
    if (hosts === undefined || type === undefined || key === undefined) continue;
    out.push({ marker: marker as KnownKey['marker'], hosts, type, key, line: i + 1 });
  }
  return out;
}

/** Whether the host field of a line (hashed, or a pattern list) names `name`. */
function lineNames(hosts: string, name: string): boolean {
  if (hosts.startsWith('|1|')) {
    const [, , salt, hash] = hosts.split('|');
    if (salt === undefined || hash === undefined) return false;
    const mac = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return mac === hash;
  }
  return hostMatches(name, hosts.split(','));
}

/** The outcome of checking a server's key. */
export type HostKeyVerdict =
  | { readonly status: 'known' }
  | { readonly status: 'unknown' }
  | { readonly status: 'revoked'; readonly line: number }
  | { readonly status: 'changed'; readonly line: number; readonly types: readonly string[] };

/** Checks `keyBlob` presented by `host`:`port` against the known_hosts text. */
export function checkHostKey(text: string, host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
  const name = knownHostsName(host, port);
  const b64 = keyBlob.toString('base64');
  const lines = parseLines(text);
  const revoked = lines.find((l) => l.marker === '@revoked' && l.key === b64);
  if (revoked !== undefined) return { status: 'revoked', line: revoked.line };
  const forHost = lines.filter((l) => l.marker === '' && lineNames(l.hosts, name));
  if (forHost.some((l) => l.key === b64)) return { status: 'known' };
  if (forHost.length === 0) return { status: 'unknown' };
  return { status: 'changed', line: forHost[0]!.line, types: [...new Set(forHost.map((l) => l.type))] };
}

/** The key types on record for `host`:`port` (to ask the server for one of those first). */
export function knownKeyTypes(text: string, host: string, port: number): string[] {
  const name = knownHostsName(host, port);
  return [
    ...new Set(
      parseLines(text)
        .filter((l) => l.marker === '' && lineNames(l.hosts, name))
        .map((l) => l.type),
    ),
  ];
}

/** The text of the known_hosts file at `file` ('' when there is none). */
export function readKnownHosts(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}

/** Appends `host`:`port`'s key to the known_hosts file (creating it, mode 0600). */
export function addKnownHost(file: string, host: string, port: number, keyBlob: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const existing = readKnownHosts(file);
  const sep = existing === '' || existing.endsWith('\n') ? '' : '\n';
  const line = `${knownHostsName(host, port)} ${keyType(keyBlob)} ${keyBlob.toString('base64')}\n`;
  appendFileSync(file, sep + line, { mode: 0o600 });
}
