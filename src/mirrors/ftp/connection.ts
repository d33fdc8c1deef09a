/**
 * @module mirrors/ftp/connection
 * Connections to one FTP server for one mirror, over `basic-ftp`: a small set of logged-in
 * control connections used in parallel ({@link FtpSession.use}), each doing one thing at a time.
 *
 * - FTPS is explicit TLS (`AUTH TLS`), the certificate checked against the system's store, or,
 *   when the user pinned one, against its SHA-256 fingerprint (checked before the password is
 *   sent). A certificate that does not verify refuses, naming its fingerprint. Data connections
 *   are TLS too, offering the control connection's session for resumption (basic-ftp); they are
 *   verified like the control connection: against the system's store and the host name (the
 *   same TLS options), or, when pinned, each one's certificate against the pin the moment its
 *   handshake completes ({@link guardDataConnections}) — session resumption alone is not relied
 *   on, since a server that does not resume makes a full handshake.
 * - Paths sent to the server are always absolute (the login folder from `PWD`, joined with the
 *   URL's path), so names with leading dashes or spaces are never taken for options.
 * - What the server offers is read from `FEAT` once: `MLSD` (exact listings), `MFMT`; the write
 *   form `MDTM <time> <file>` and `SITE UTIME` are tried once and remembered.
 * - A connection that breaks (closed by the server, reset, a refused passive data connection,
 *   a timeout) is dropped; the operation is retried on a fresh one with backoff
 *   ({@link RETRY_DELAYS_MS}); when that fails too, the mirror is `mirror-absent` with the reason.
 *   A refused login or certificate is never retried.
 * - A server that refuses one more connection (`421`, a per-user or per-address limit) is
 *   used with the connections it accepted.
 * - Idle connections are kept for {@link IDLE_MS} between cycles (the daemon's saves reuse
 *   them) and never keep the process alive.
 *
 * Test knob: `SATCHEL_FTP_TIMEOUT_MS` (connect and reply timeout, default 30 s).
 */
import { posix } from 'node:path';
import { TLSSocket } from 'node:tls';
import { Client, FTPError, type FTPContext } from 'basic-ftp';
import { SatchelError } from '../../core/errors.js';
import { ftpPassword } from './password.js';

/** Where an FTP mirror lives, as its URL and config say. */
export interface FtpTarget {
  readonly host: string;
  readonly port?: number;
  /** The login; `anonymous` when the URL names none. */
  readonly user?: string;
  /** The folder, relative to the login folder (absolute when it starts with `//`). */
  readonly path: string;
  /** Explicit TLS (`ftps://`). */
  readonly secure: boolean;
  /** The certificate's pinned SHA-256 fingerprint (any case, colons optional). */
  readonly fingerprint?: string;
  /** The environment variable holding the password. */
  readonly passwordEnv?: string;
}

/**
 * The target of an FTP mirror: its parsed URL's fields, with the pinned fingerprint and the
 * password's environment variable of its config (both optional).
 */
export function ftpTarget(
  url: Omit<FtpTarget, 'fingerprint' | 'passwordEnv'>,
  config: { readonly ftpsFingerprint?: string | undefined; readonly passwordEnv?: string | undefined },
): FtpTarget {
  return {
    host: url.host,
    ...(url.port === undefined ? {} : { port: url.port }),
    ...(url.user === undefined ? {} : { user: url.user }),
    path: url.path,
    secure: url.secure,
    ...(config.ftpsFingerprint === undefined ? {} : { fingerprint: config.ftpsFingerprint }),
    ...(config.passwordEnv === undefined ? {} : { passwordEnv: config.passwordEnv }),
  };
}

/** Options of {@link openFtpSession}. */
export interface FtpSessionOptions {
  /** Ask for a missing password on the terminal. */
  readonly interactive?: boolean;
  /** How many control connections at most (default {@link FTP_CONNECTIONS}). */
  readonly connections?: number;
}

/** Parallel control connections per mirror. */
export const FTP_CONNECTIONS = 4;
/** How long an idle connection is kept. */
export const IDLE_MS = 30_000;
/** Pauses before each retry of an operation whose connection broke. */
export const RETRY_DELAYS_MS = [200, 1000, 3000];

function timeoutMs(): number {
  const v = Number(process.env.SATCHEL_FTP_TIMEOUT_MS);
  return Number.isFinite(v) && v > 0 ? v : 30_000;
}

/** `AB:CD:…` upper-case form of a SHA-256 fingerprint given in any usual spelling. */
export function normalizeFingerprint(fp: string): string {
  const hex = fp
    .replace(/^sha256:/i, '')
    .replace(/[:\s]/g, '')
    .toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex))
    throw new SatchelError('usage', `"${fp}" is not a SHA-256 fingerprint`, {
      hint: 'give 64 hex digits, with or without colons (as `openssl x509 -noout -fingerprint -sha256` prints it)',
    });
  return hex.match(/../g)!.join(':');
}

/** The FTP reply code of an error, when the server answered with one. */
export function replyCode(err: unknown): number | undefined {
  return err instanceof FTPError ? err.code : undefined;
}

/**
 * Makes every TLS data connection of `ftp` pass `check` (given the peer certificate's SHA-256
 * fingerprint) as soon as its handshake completes, before a byte is sent or read on it: a data
 * connection that fails is destroyed with the error `check` returns, which fails the transfer.
 * basic-ftp builds each data connection with the control connection's TLS options (so, with a
 * pinned certificate, `rejectUnauthorized: false`) and offers the control connection's session
 * for resumption; a server that does not resume, or a machine in the middle that answers the
 * data port first, gets a full handshake that nothing else would check.
 */
export function guardDataConnections(
  ftp: FTPContext,
  check: (fingerprint: string | undefined) => Error | undefined,
): void {
  const accessor = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(ftp) as object, 'dataSocket');
  if (accessor?.get === undefined || accessor.set === undefined)
    throw new Error('bug: basic-ftp has no dataSocket accessor to guard');
  const { get, set } = accessor;
  Object.defineProperty(ftp, 'dataSocket', {
    configurable: true,
    enumerable: false,
    get(this: FTPContext): unknown {
      return get.call(this);
    },
    set(this: FTPContext, socket: unknown) {
      if (socket instanceof TLSSocket) {
        socket.prependOnceListener('secureConnect', () => {
          const error = check(socket.getPeerCertificate().fingerprint256?.toUpperCase());
          if (error !== undefined) socket.destroy(error);
        });
      }
      set.call(this, socket);
    },
  });
}

/** Whether `err` means the connection (control or data) is broken rather than a refusal. */
export function isConnectionError(err: unknown, client?: Client): boolean {
  if (err instanceof SatchelError) return false;
  if (client?.closed === true) return true;
  if (err instanceof FTPError) return err.code === 421 || err.code === 425 || err.code === 426;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return true;
  const msg = err instanceof Error ? err.message : String(err);
  // basic-ftp reports a data connection it could not open (e.g. `425` to PASV and EPSV) as a plain Error.
  return /closed|timeout|FIN packet|socket hang up|ECONN|EPIPE|transfer strateg|\b42[156]\b/i.test(msg);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The server refused one more connection (421) while others are open. */
class TooManyConnections extends Error {}

/** How long a failed connect answers for the session's other uses (see FtpSession's acquire). */
const LOST_MEMORY_MS = 2000;

/** Logged-in connections to one mirror's server; see the module comment. */
export class FtpSession {
  readonly target: FtpTarget;
  /** `user@host:port`, for messages. */
  readonly where: string;
  /** The mirror folder as an absolute server path (known after {@link open}). */
  root = '/';
  /** The server offers MLSD (exact listings with seconds). */
  mlsd = false;
  /** The server offers MFMT. */
  mfmt = false;
  /** Whether `MDTM <time> <file>` sets times (undefined until tried). */
  mdtmWrite: boolean | undefined;
  /** Whether `SITE UTIME` sets times (undefined until tried). */
  siteUtime: boolean | undefined;
  #max: number;
  readonly #interactive: boolean;
  readonly #idle: { client: Client; timer: NodeJS.Timeout }[] = [];
  readonly #waiting: (() => void)[] = [];
  #open = 0;
  #password: string | undefined;
  #closed = false;
  /** The last failed connect, while it is recent: every waiting use fails with it at once. */
  #lost: { readonly error: unknown; readonly at: number } | undefined;

  constructor(target: FtpTarget, options: FtpSessionOptions = {}) {
    this.target = target;
    this.#max = options.connections ?? FTP_CONNECTIONS;
    this.#interactive = options.interactive === true;
    // An IPv6 address goes in brackets before its port, as in URLs.
    const host = target.host.includes(':') ? `[${target.host}]` : target.host;
    this.where = `${target.user ?? 'anonymous'}@${host}:${target.port ?? 21}`;
  }

  /** Connects the first connection, learns the features and the root; throws a SatchelError. */
  async open(): Promise<void> {
    const client = await this.#connect();
    try {
      const features = await client.features();
      this.mlsd = features.has('MLST');
      this.mfmt = features.has('MFMT');
      const home = await client.pwd();
      const p = this.target.path;
      this.root = p.startsWith('//') ? posix.normalize(p.slice(1)) : posix.join(home, p);
      if (this.root.length > 1 && this.root.endsWith('/')) this.root = this.root.slice(0, -1);
    } catch (err) {
      client.close();
      this.#open--;
      throw this.lostError(err);
    }
    this.#release(client);
  }

  /** The `mirror-absent` error for a broken connection. */
  lostError(err: unknown): SatchelError {
    if (err instanceof SatchelError) return err;
    const why = err instanceof Error ? err.message : String(err);
    const what = /transfer strateg|\b425\b/i.test(why)
      ? 'could not open a passive data connection'
      : 'is not reachable';
    return new SatchelError('mirror-absent', `the FTP server ${this.where} ${what} (${why})`, {
      hint: 'check that the server is running and that its passive data ports are open; nothing was changed on the case, and the next sync picks up where this one stopped',
      data: { where: this.where },
      cause: err,
    });
  }

  /** Connects and logs in one control connection. */
  async #connect(): Promise<Client> {
    if (this.#closed) throw new Error('bug: FTP session used after close');
    this.#open++;
    const { host, port, secure } = this.target;
    const user = this.target.user ?? 'anonymous';
    const client = new Client(timeoutMs());
    try {
      try {
        await client.connect(host, port ?? 21);
      } catch (err) {
        // "421 Too many connections": the server allows fewer at once; use the ones open.
        if (replyCode(err) === 421 && this.#open > 1) throw new TooManyConnections();
        throw this.lostError(err);
      }
      if (secure) await this.#startTls(client);
      this.#password ??= await ftpPassword({
        host,
        user,
        ...(this.target.passwordEnv === undefined ? {} : { passwordEnv: this.target.passwordEnv }),
        interactive: this.#interactive,
      });
      await client.sendIgnoringError('OPTS UTF8 ON').catch(() => undefined);
      try {
        await client.login(user, this.#password);
      } catch (err) {
        if (replyCode(err) === 530 || replyCode(err) === 430)
          throw new SatchelError('auth-failed', `the FTP server ${this.where} refused the login as ${user}`, {
            hint: 'check the password (~/.netrc, or the environment variable named with --password-env) and that the account may log in',
            data: { where: this.where },
          });
        throw err;
      }
      await client.useDefaultSettings();
      return client;
    } catch (err) {
      client.close();
      this.#open--;
      if (err instanceof SatchelError || err instanceof TooManyConnections) throw err;
      throw this.lostError(err);
    }
  }

  /** Upgrades the control connection to TLS and checks the certificate; see the module comment. */
  async #startTls(client: Client): Promise<void> {
    const pin =
      this.target.fingerprint === undefined ? undefined : normalizeFingerprint(this.target.fingerprint);
    try {
      await client.useTLS({
        host: this.target.host,
        servername: /^[\d.:]+$/.test(this.target.host) ? undefined : this.target.host,
        rejectUnauthorized: pin === undefined,
      } as Parameters<Client['useTLS']>[0]);
    } catch (err) {
      if (replyCode(err) !== undefined)
        throw new SatchelError(
          'mirror-unsupported',
          `the FTP server ${this.where} does not offer TLS (AUTH TLS refused)`,
          {
            hint: 'use ftp:// if the server only speaks plain FTP, or enable TLS on the server',
            data: { where: this.where },
          },
        );
      const seen = await this.#peekFingerprint();
      const why = err instanceof Error ? err.message : String(err);
      throw new SatchelError(
        'host-key-unknown',
        `the TLS certificate of ${this.where} is not trusted (${why})`,
        {
          hint:
            seen === undefined
              ? 'install the issuing CA in the system store, or pin the certificate with --ftps-fingerprint <sha256>'
              : `if ${seen} is the SHA-256 fingerprint of the server's certificate (ask its administrator), add the mirror with --ftps-fingerprint ${seen}`,
          data: { where: this.where, ...(seen === undefined ? {} : { fingerprint: seen }) },
        },
      );
    }
    if (pin === undefined) return;
    const cert = (client.ftp.socket as TLSSocket).getPeerCertificate();
    const seen = cert.fingerprint256?.toUpperCase();
    if (seen !== pin) {
      client.close();
      throw new SatchelError(
        'host-key-changed',
        `the TLS certificate of ${this.where} does not match the pinned fingerprint`,
        {
          hint: `the server presented ${seen ?? 'no certificate'}; if the certificate was replaced on purpose, remove the mirror and add it again with the new --ftps-fingerprint`,
          data: { where: this.where, ...(seen === undefined ? {} : { fingerprint: seen }) },
        },
      );
    }
    // Data connections do not verify (rejectUnauthorized is off for a pinned certificate): each
    // one is checked against the pin as well.
    guardDataConnections(client.ftp, (fingerprint) =>
      fingerprint === pin
        ? undefined
        : new SatchelError(
            'host-key-changed',
            `the TLS certificate of a data connection to ${this.where} does not match the pinned fingerprint`,
            {
              hint: `the data connection presented ${fingerprint ?? 'no certificate'}: something between Satchel and the server may be intercepting it; nothing was written through it`,
              data: { where: this.where, ...(fingerprint === undefined ? {} : { fingerprint }) },
            },
          ),
    );
  }

  /** The fingerprint the server presents, read without trusting it (for the refusal's hint). */
  async #peekFingerprint(): Promise<string | undefined> {
    const probe = new Client(timeoutMs());
    try {
      await probe.connect(this.target.host, this.target.port ?? 21);
      await probe.useTLS({ host: this.target.host, rejectUnauthorized: false });
      return (probe.ftp.socket as TLSSocket).getPeerCertificate().fingerprint256?.toUpperCase();
    } catch {
      return undefined;
    } finally {
      probe.close();
    }
  }

  /**
   * A connection for exclusive use: an idle one, a new one, or the next one given back. When a
   * new connection cannot be made (the server went away), that failure is given to every use
   * waiting for a connection and to those asking within {@link LOST_MEMORY_MS}: otherwise the
   * waiters would wait for a connection that is never given back, or each try the dead server in
   * turn.
   */
  async #acquire(): Promise<Client> {
    for (;;) {
      if (this.#lost !== undefined && Date.now() - this.#lost.at < LOST_MEMORY_MS) throw this.#lost.error;
      const idle = this.#idle.pop();
      if (idle !== undefined) {
        clearTimeout(idle.timer);
        if (!idle.client.closed) {
          idle.client.ftp.socket.ref();
          return idle.client;
        }
        this.#open--;
        continue;
      }
      if (this.#open < this.#max) {
        try {
          const client = await this.#connect();
          this.#lost = undefined;
          return client;
        } catch (err) {
          if (!(err instanceof TooManyConnections)) {
            this.#lost = { error: err, at: Date.now() };
            for (const wake of this.#waiting.splice(0)) wake();
            throw err;
          }
          this.#max = Math.max(1, this.#open);
        }
        if (this.#open === 0) continue;
      }
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    }
  }

  #release(client: Client): void {
    if (client.closed || this.#closed) {
      if (!client.closed) client.close();
      this.#open--;
    } else {
      const timer = setTimeout(() => {
        const i = this.#idle.findIndex((e) => e.client === client);
        if (i >= 0) {
          this.#idle.splice(i, 1);
          client.close();
          this.#open--;
        }
      }, IDLE_MS);
      timer.unref();
      // An idle connection does not keep the process alive.
      client.ftp.socket.unref();
      this.#idle.push({ client, timer });
    }
    this.#waiting.shift()?.();
  }

  /**
   * Runs `fn` on a connection of its own. A broken connection is dropped and `fn` retried on a
   * fresh one (after {@link RETRY_DELAYS_MS}); `fn` must therefore be safe to run again. Other
   * failures (the server's refusals) are thrown as they are.
   */
  async use<T>(fn: (client: Client) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      const client = await this.#acquire();
      try {
        const result = await fn(client);
        this.#release(client);
        return result;
      } catch (err) {
        const broken = isConnectionError(err, client);
        if (broken && !client.closed) client.close();
        this.#release(client);
        if (!broken) throw err;
        if (attempt >= RETRY_DELAYS_MS.length) throw this.lostError(err);
        await sleep(RETRY_DELAYS_MS[attempt]!);
      }
    }
  }

  /** Closes every connection. */
  close(): void {
    this.#closed = true;
    for (const { client, timer } of this.#idle.splice(0)) {
      clearTimeout(timer);
      client.close();
      this.#open--;
    }
  }
}

/** Opens a session to `target` (one connection now, more on demand). */
export async function openFtpSession(
  target: FtpTarget,
  options: FtpSessionOptions = {},
): Promise<FtpSession> {
  const session = new FtpSession(target, options);
  await session.open();
  return session;
}
