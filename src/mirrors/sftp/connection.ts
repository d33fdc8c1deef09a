/**
 * @module mirrors/sftp/connection
 * One SSH connection with its SFTP session, opened the way `ssh` would open it: host, port and
 * user from the URL and `~/.ssh/config`, keys from `ssh-agent` (`SSH_AUTH_SOCK`) and the
 * config's and default `~/.ssh/id_*` files, the server's key checked against
 * `~/.ssh/known_hosts` (see `known-hosts.ts`).
 *
 * - Every SFTP request goes through {@link SftpSession.call}, which counts requests in flight:
 *   a connection with requests outstanding and no answer for {@link requestTimeoutMs} is
 *   declared lost (a cut link does not reset a TCP connection) and destroyed, which fails every
 *   outstanding request; callers turn that into `mirror-absent`.
 * - Requests issued in the same tick leave in one socket write: the socket is corked on the
 *   first and uncorked on the next tick, so a burst of pipelined requests (a file's open-write-
 *   setstat-fsync-close tail, a round of renames) costs one `writev` instead of one system call
 *   and one server wake-up per SSH packet.
 * - Bulk work can spread over several SFTP channels of the one connection
 *   ({@link SftpSession.lanes}): OpenSSH serves each channel with its own `sftp-server`
 *   process, so the server's `fsync`s and file-system calls of different files overlap instead
 *   of waiting for each other in one process. Extra channels are opened on first use and live
 *   as long as the connection.
 * - A bulk upload can be made durable with one `sync -f` of the server's file systems instead of
 *   an fsync per file ({@link SftpSession.syncFileSystems}), where the login may run commands:
 *   flushing 10,000 files one by one costs the server's disk one cache flush each.
 * - Connections are kept in a small pool ({@link acquireSession}/{@link SftpSession.release}):
 *   the daemon's saves go out on a kept-alive connection instead of a new handshake each.
 *   An idle pooled connection does not keep the process alive (its socket is unref'd) and is
 *   closed after {@link IDLE_MS}.
 *
 * Test knobs (environment): `SATCHEL_SSH_DIR` replaces `~/.ssh`; `SATCHEL_SFTP_TIMEOUT_MS`
 * shortens the request and connect timeouts (the partition test); `SATCHEL_SFTP_CHANNELS`
 * caps the channels {@link SftpSession.lanes} opens (benchmarks; 1 = the main one only).
 */
import { connect as netConnect, type Socket } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { AuthAttempt, Client, ClientChannel, SFTPWrapper, SftpError } from 'ssh2';
import { SatchelError } from '../../core/errors.js';
import {
  addKnownHost,
  checkHostKey,
  fingerprint,
  keyType,
  knownHostsName,
  knownKeyTypes,
  readKnownHosts,
  type HostKeyVerdict,
} from './known-hosts.js';
import { resolveHost, sshDir, type ResolvedHost } from './ssh-config.js';
import { ssh2 } from './ssh2-module.js';

const { Client: SshClient, utils } = ssh2;

/** Where an SFTP mirror lives, as its URL says. */
export interface SftpTarget {
  /** Host name, address or `~/.ssh/config` alias. */
  readonly host: string;
  readonly port?: number;
  readonly user?: string;
}

/** Options of {@link acquireSession}. */
export interface ConnectOptions {
  /** Record the key of a host not in known_hosts yet (never a changed key). */
  readonly acceptNewHostKey?: boolean;
  /** The SSH folder (default {@link sshDir}). */
  readonly sshDir?: string;
}

/** How long an idle pooled connection is kept. */
export const IDLE_MS = 30_000;

/** Requests without any answer for this long mean the connection is lost. */
export function requestTimeoutMs(): number {
  const n = Number(process.env.SATCHEL_SFTP_TIMEOUT_MS);
  return Number.isFinite(n) && n > 0 ? n : 15_000;
}

/** The host-key algorithms ssh2 offers, for each key type a known_hosts line can hold. */
const ALGORITHMS_OF_TYPE: Readonly<Record<string, readonly string[]>> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
};

/** `user@host:port`, for messages. */
function describe(h: ResolvedHost): string {
  // An IPv6 address goes in brackets before its port, as in URLs.
  const host = h.hostName.includes(':') ? `[${h.hostName}]` : h.hostName;
  return `${h.user}@${host}:${h.port}`;
}

/** An SFTP status error's number (2 no such file, 3 permission denied, 4 failure…), if any. */
export function sftpStatus(err: unknown): number | undefined {
  const code = (err as SftpError | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

/** SFTP status numbers (draft-ietf-secsh-filexfer-02). */
export const STATUS = { EOF: 1, NO_SUCH_FILE: 2, PERMISSION_DENIED: 3, FAILURE: 4, OP_UNSUPPORTED: 8 };

/** A live SSH connection with its SFTP session; see the module comment. */
export class SftpSession {
  readonly sftp: SFTPWrapper;
  /** `user@host:port`, for messages. */
  readonly where: string;
  /** The server offers `posix-rename@openssh.com` (atomic replace). */
  readonly posixRename: boolean;
  /** The server offers `fsync@openssh.com`. */
  readonly fsync: boolean;
  /** The server offers `statvfs@openssh.com`. */
  readonly statvfs: boolean;
  /** Why the connection is gone, once it is. */
  lostReason: string | undefined;
  readonly #client: Client;
  readonly #socket: Socket;
  readonly #key: string;
  #inFlight = 0;
  #lastAnswer = Date.now();
  #users = 0;
  #idleTimer: NodeJS.Timeout | undefined;
  readonly #watchdog: NodeJS.Timeout;
  /** The main channel, then the extra ones opened by {@link lanes}. */
  readonly #lanes: SFTPWrapper[];
  /** Extra channels being opened (one opening at a time). */
  #opening: Promise<void> | undefined;
  /** The server refused another channel (MaxSessions): use what is open. */
  #laneLimit = false;
  #corked = false;
  /** Whether `sync -f` ran here: unknown until tried, false for good after one failure. */
  #syncfs: boolean | undefined;

  constructor(client: Client, socket: Socket, sftp: SFTPWrapper, where: string, key: string) {
    this.#client = client;
    this.#socket = socket;
    this.sftp = sftp;
    this.where = where;
    this.#key = key;
    this.#lanes = [sftp];
    this.posixRename = sftp._extensions['posix-rename@openssh.com'] === '1';
    this.fsync = sftp._extensions['fsync@openssh.com'] === '1';
    this.statvfs = sftp._extensions['statvfs@openssh.com'] === '2';
    const gone = (this.#gone = (why: string): void => {
      this.lostReason ??= why;
      pool.delete(this.#key);
    });
    client.on('close', () => gone('the connection was closed'));
    client.on('error', (err: Error) => gone(err.message));
    sftp.on('close', () => gone('the SFTP session was closed'));
    const timeout = requestTimeoutMs();
    this.#watchdog = setInterval(
      () => {
        if (this.#inFlight > 0 && Date.now() - this.#lastAnswer > timeout) {
          gone(`no answer from ${where} for ${Math.round(timeout / 1000)} s`);
          this.#client.destroy();
          this.#socket.destroy();
        }
      },
      Math.min(1000, timeout / 4),
    );
    this.#watchdog.unref();
  }

  readonly #gone: (why: string) => void;

  /** Whether the connection is gone. */
  get lost(): boolean {
    return this.lostReason !== undefined;
  }

  /** Runs one SFTP request; counts it in flight for the watchdog. */
  call<T>(request: (done: (err: SftpError | undefined | null, value?: T) => void) => void): Promise<T> {
    if (this.lostReason !== undefined) return Promise.reject(this.lostError());
    if (this.#inFlight === 0) this.#lastAnswer = Date.now();
    this.#inFlight++;
    this.#cork();
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const done = (err: SftpError | undefined | null, value?: T): void => {
        if (settled) return;
        settled = true;
        this.#inFlight--;
        this.#lastAnswer = Date.now();
        if (err) reject(err);
        else resolve(value as T);
      };
      try {
        request(done);
      } catch (err) {
        done(err as SftpError);
      }
    });
  }

  /** Holds the socket's writes until the next tick, so that this tick's requests leave together. */
  #cork(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.#socket.cork();
    process.nextTick(() => {
      this.#corked = false;
      this.#socket.uncork();
    });
  }

  /**
   * Up to `n` SFTP channels of this connection for work that can be spread (see the module
   * comment): the main channel first, then extra ones, opened now if needed. Fewer come back
   * when the server refuses more channels; a request and the handle it uses must stay on one
   * channel.
   */
  async lanes(n: number): Promise<readonly SFTPWrapper[]> {
    const cap = Number(process.env.SATCHEL_SFTP_CHANNELS);
    const want = Math.max(1, Math.min(n, Number.isInteger(cap) && cap > 0 ? cap : n));
    while (this.#lanes.length < want && !this.#laneLimit && !this.lost) {
      this.#opening ??= this.#openLanes(want - this.#lanes.length).finally(() => (this.#opening = undefined));
      await this.#opening;
    }
    return this.#lanes.slice(0, want);
  }

  /** Opens `n` more channels at once; notes when the server allows no more. */
  async #openLanes(n: number): Promise<void> {
    const opened = await Promise.all(
      Array.from(
        { length: n },
        () =>
          new Promise<SFTPWrapper | undefined>((resolve) => {
            this.#client.sftp((err, s) => resolve(err ? undefined : s));
          }),
      ),
    );
    for (const extra of opened) {
      if (extra === undefined) {
        this.#laneLimit = true;
        continue;
      }
      extra.on('close', () => this.#gone('an SFTP session was closed'));
      if (this.lost) extra.end();
      else this.#lanes.push(extra);
    }
  }

  /** Whether {@link syncFileSystems} worked here: undefined until it was tried. */
  get syncsFileSystems(): boolean | undefined {
    return this.#syncfs;
  }

  /**
   * Flushes the server's file systems holding `dirs` (folders on the server, as SFTP names them)
   * to disk with one `sync -f -- <dirs>` run over an exec channel (the shell starts in the login
   * folder, as SFTP does): Linux's `syncfs`, which returns once the data is written. True only
   * when the command exited 0 and printed the token after it; false when the server is not Linux
   * (a BSD `sync` ignores its arguments and may return before the disk has the data), the login
   * cannot run commands (an SFTP-only account, `ForceCommand internal-sftp`) or runs a shell
   * without `$(…)`, `sync` has no `-f`, a name is not plain enough to quote for every shell, or
   * no answer came within the request timeout. After a failure it is not tried again on this
   * connection.
   */
  async syncFileSystems(dirs: readonly string[]): Promise<boolean> {
    if (this.#syncfs === false || this.lost) return false;
    if (dirs.length === 0) return true;
    if (!dirs.every((d) => PLAIN_NAME.test(d))) return false;
    const quoted = dirs.map((d) => `'${d}'`).join(' ');
    const command = `[ "$(uname -s)" = Linux ] && sync -f -- ${quoted} && echo ${SYNC_TOKEN}`;
    if (command.length > 32 * 1024) return false;
    const ok = await new Promise<boolean>((resolve) => {
      let channel: ClientChannel | undefined;
      const timer = setTimeout(() => {
        resolve(false);
        channel?.close();
      }, requestTimeoutMs());
      const finish = (result: boolean): void => {
        clearTimeout(timer);
        resolve(result);
      };
      try {
        this.#client.exec(command, (err, ch) => {
          if (err) return finish(false);
          channel = ch;
          let out = '';
          let code: number | null = null;
          ch.on('data', (d: Buffer) => {
            out = (out + d.toString('utf8')).slice(-4096);
          });
          ch.stderr.resume();
          ch.on('exit', (c: number | null) => (code = c));
          ch.on('close', () => finish(code === 0 && out.includes(SYNC_TOKEN)));
          ch.on('error', () => finish(false));
          // A forced SFTP server in place of the command sees the end of its input and quits.
          ch.end();
        });
      } catch {
        finish(false);
      }
    });
    this.#syncfs = ok;
    return ok;
  }

  /** The `mirror-absent` error for a lost connection. */
  lostError(cause?: unknown): SatchelError {
    return new SatchelError(
      'mirror-absent',
      `the connection to ${this.where} was lost (${this.lostReason ?? 'closed'})`,
      {
        hint: 'nothing under a final name was left half-written; the next sync picks up where this one stopped',
        cause,
      },
    );
  }

  /** Takes one more user (a replica) of a pooled connection. */
  use(): this {
    this.#users++;
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    this.#socket.ref();
    return this;
  }

  /** Gives back one use; the last one leaves the connection idle in the pool for a while. */
  release(): void {
    this.#users = Math.max(0, this.#users - 1);
    if (this.#users > 0) return;
    if (this.lost || !pool.has(this.#key)) {
      this.close();
      return;
    }
    this.#socket.unref();
    this.#idleTimer = setTimeout(() => this.close(), IDLE_MS);
    this.#idleTimer.unref();
  }

  /** Closes the connection now. */
  close(): void {
    this.lostReason ??= 'closed by Satchel';
    pool.delete(this.#key);
    clearInterval(this.#watchdog);
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#client.end();
    this.#socket.destroy();
  }
}

/** Names that mean the same quoted with `'…'` in sh, csh and fish (nothing any of them expands). */
const PLAIN_NAME = /^[A-Za-z0-9._/+,@%=:~ -]+$/;
/** What `sync -f` is followed by, so that its success is not mistaken for another program's. */
const SYNC_TOKEN = 'satchel-sync-ok';

/** Connections by `user@host:port`, connecting or connected. */
const pool = new Map<string, Promise<SftpSession>>();

/** Closes every pooled connection (tests, and the end of a benchmark). */
export function closeAllSessions(): void {
  for (const p of pool.values()) void p.then((s) => s.close()).catch(() => {});
  pool.clear();
}

/**
 * A connection to `target`, from the pool when one is alive, else a new one. Throws
 * `mirror-absent` (unreachable), `auth-failed`, `host-key-unknown` or `host-key-changed`.
 * Give it back with {@link SftpSession.release}.
 */
export async function acquireSession(target: SftpTarget, options: ConnectOptions = {}): Promise<SftpSession> {
  const dir = options.sshDir ?? sshDir();
  const host = resolveHost(target.host, { user: target.user, port: target.port }, dir);
  const key = `${describe(host)}\0${dir}`;
  const pooled = pool.get(key);
  if (pooled !== undefined && options.acceptNewHostKey !== true) {
    const session = await pooled.catch(() => undefined);
    if (session !== undefined && !session.lost) return session.use();
  }
  const opening = openSession(host, dir, key, options.acceptNewHostKey === true);
  pool.set(key, opening);
  opening.catch(() => {
    if (pool.get(key) === opening) pool.delete(key);
  });
  return (await opening).use();
}

/** Opens a TCP connection, or throws `mirror-absent` saying why not. */
function openSocket(host: ResolvedHost): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: host.hostName, port: host.port });
    const timeout = requestTimeoutMs();
    const timer = setTimeout(() => {
      socket.destroy();
      reject(unreachable(host, `no answer within ${Math.round(timeout / 1000)} s`));
    }, timeout);
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why =
        err.code === 'ECONNREFUSED'
          ? 'connection refused: no SSH server listens there'
          : err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN'
            ? 'unknown host name'
            : (err.code ?? err.message);
      reject(unreachable(host, why, err));
    });
  });
}

function unreachable(host: ResolvedHost, why: string, cause?: unknown): SatchelError {
  return new SatchelError('mirror-absent', `cannot reach ${describe(host)} (${why})`, {
    hint: 'check that the server is up and reachable (try `ssh` to it); the mirror is left as it is',
    data: { host: host.hostName, port: host.port },
    cause,
  });
}

/**
 * The authentication attempts to make, in order: the agent, then every readable key file; each
 * with what messages call it (`ssh-agent`, the key file's name).
 */
function authAttempts(host: ResolvedHost): {
  attempts: (AuthAttempt & { readonly label: string })[];
  skipped: string[];
} {
  const attempts: (AuthAttempt & { readonly label: string })[] = [];
  const skipped: string[] = [];
  const agent = process.env.SSH_AUTH_SOCK;
  if (agent !== undefined && agent !== '' && existsSync(agent))
    attempts.push({ type: 'agent', username: host.user, agent, label: 'ssh-agent' });
  for (const file of host.identityFiles) {
    if (!existsSync(file)) continue;
    let data: Buffer;
    try {
      data = readFileSync(file);
    } catch {
      skipped.push(`${file} (unreadable)`);
      continue;
    }
    const parsed = utils.parseKey(data);
    if (parsed instanceof Error) {
      // A key with a passphrase can only be used through the agent (no prompt in a daemon).
      skipped.push(
        `${file} (${/passphrase/i.test(parsed.message) ? 'needs a passphrase: load it into ssh-agent' : parsed.message})`,
      );
      continue;
    }
    attempts.push({ type: 'publickey', username: host.user, key: data, label: `the key ${file}` });
  }
  return { attempts, skipped };
}

/** Connects, authenticates and starts SFTP; see {@link acquireSession}. */
async function openSession(
  host: ResolvedHost,
  dir: string,
  key: string,
  accept: boolean,
): Promise<SftpSession> {
  const knownHostsFile = join(dir, 'known_hosts');
  const known = readKnownHosts(knownHostsFile);
  const preferred = knownKeyTypes(known, host.hostName, host.port).flatMap(
    (t) => ALGORITHMS_OF_TYPE[t] ?? [],
  );
  const all = Object.values(ALGORITHMS_OF_TYPE).flat();
  const { attempts, skipped } = authAttempts(host);
  const tried: string[] = [];
  let verdict: (HostKeyVerdict & { blob: Buffer }) | undefined;
  const socket = await openSocket(host);
  const client = new SshClient();
  const ready = new Promise<void>((resolve, reject) => {
    client.once('ready', () => resolve());
    // `on`, not `once`: after a handshake timeout ssh2 reports the lost connection as a second
    // error, which would otherwise be an unhandled 'error' event (a crash of `watch`).
    client.on('error', (err: Error & { level?: string }) => reject(err));
    client.once('close', () => reject(new Error('the server closed the connection during the handshake')));
  });
  client.connect({
    sock: socket,
    username: host.user,
    readyTimeout: requestTimeoutMs(),
    algorithms: { serverHostKey: [...new Set([...preferred, ...all])] },
    hostVerifier: (blob: Buffer, verify: (ok: boolean) => void) => {
      const v = checkHostKey(readKnownHosts(knownHostsFile), host.hostName, host.port, blob);
      verdict = { ...v, blob };
      if (v.status === 'unknown' && accept) {
        addKnownHost(knownHostsFile, host.hostName, host.port, blob);
        verify(true);
        return;
      }
      verify(v.status === 'known');
    },
    authHandler: () => {
      const next = attempts.shift();
      if (next === undefined) return false;
      const { label, ...attempt } = next;
      tried.push(label);
      return attempt;
    },
  });
  try {
    await ready;
  } catch (err) {
    client.destroy();
    socket.destroy();
    throw connectError(host, knownHostsFile, verdict, err as Error & { level?: string }, skipped, tried);
  }
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) =>
    client.sftp((err, s) => (err ? reject(err) : resolve(s))),
  ).catch((err: Error) => {
    client.destroy();
    socket.destroy();
    throw new SatchelError('mirror-absent', `${describe(host)} offers no SFTP (${err.message})`, {
      hint: "enable the sftp subsystem in the server's sshd_config (Subsystem sftp internal-sftp)",
      cause: err,
    });
  });
  return new SftpSession(client, socket, sftp, describe(host), key);
}

/** The error for a failed handshake: host key, authentication, or the network. */
function connectError(
  host: ResolvedHost,
  knownHostsFile: string,
  verdict: (HostKeyVerdict & { blob: Buffer }) | undefined,
  err: Error & { level?: string },
  skipped: readonly string[],
  tried: readonly string[],
): SatchelError {
  const name = knownHostsName(host.hostName, host.port);
  // How to accept a key: `mirror add` takes a flag; a mirror added before takes one ssh login.
  const accept = `add --accept-new-host-key to \`satchel mirror add\`, or, for a mirror added before, log in once with \`ssh -p ${host.port} -o UserKnownHostsFile=${knownHostsFile} ${host.user}@${host.hostName}\` and answer yes`;
  if (verdict !== undefined && verdict.status !== 'known') {
    const fp = `${keyType(verdict.blob)} ${fingerprint(verdict.blob)}`;
    const data = { host: name, fingerprint: fingerprint(verdict.blob), keyType: keyType(verdict.blob) };
    if (verdict.status === 'unknown')
      return new SatchelError(
        'host-key-unknown',
        `the host key of ${name} is not known: ${fp} (not in ${knownHostsFile})`,
        {
          hint: `make sure this is the server's fingerprint (ask its admin, or run \`ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub\` there), then accept it: ${accept}`,
          data,
          cause: err,
        },
      );
    return new SatchelError(
      'host-key-changed',
      `REFUSED: the host key of ${name} has CHANGED (${verdict.status === 'revoked' ? 'it is marked @revoked' : `known_hosts line ${verdict.line} has another key`}), now ${fp}. Someone may be intercepting the connection (man in the middle), or the server was reinstalled.`,
      {
        hint: `nothing was sent. If the server really was reinstalled, remove the old key with \`ssh-keygen -f ${knownHostsFile} -R '${name}'\`, check the new fingerprint with its admin, then accept it: ${accept}`,
        data,
        cause: err,
      },
    );
  }
  if (err.level === 'client-authentication') {
    const offered = tried.length === 0 ? 'no key was available' : `tried ${[...new Set(tried)].join(', ')}`;
    const notes = skipped.length > 0 ? `; skipped ${skipped.join(', ')}` : '';
    return new SatchelError('auth-failed', `${describe(host)} refused the login (${offered}${notes})`, {
      hint: `put your public key in ~${host.user}/.ssh/authorized_keys on the server, or load the key into ssh-agent; keys are looked for in ${host.identityFiles.join(', ')}`,
      data: { host: host.hostName, port: host.port, user: host.user },
      cause: err,
    });
  }
  return unreachable(host, err.message, err);
}
