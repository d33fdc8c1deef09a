/**
 * @module test/helpers/ftpd
 * Real FTP servers for tests (TESTBED.md §2), each in its own temp folder, listening on
 * 127.0.0.1 on a free port with its own passive port range, started as a child of the test and
 * stopped by PID (with the per-session children).
 *
 * - `pure-ftpd` (Debian package `pure-ftpd`): MLSD and MFMT; one virtual user `sync` (password
 *   `secret`, SHA-512 crypt so a login takes ~20 ms) chrooted into `root/`, files owned by
 *   nobody. With `tls`, explicit FTPS (`-Y 1`) with a fresh self-signed certificate (`-2`).
 * - `vsftpd`: LIST and `MDTM <time> <file>` only. It conflicts with pure-ftpd as a Debian
 *   package, so it is used unpacked: `apt-get download vsftpd && dpkg-deb -x vsftpd_*.deb
 *   /opt/vsftpd` (or `vsftpd` on the PATH, or `SATCHEL_VSFTPD=/path/to/vsftpd`). Anonymous
 *   writable login; the writable folder is `up/` (the chroot root itself is root-owned).
 */
import {
  chownSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { freePort, stopTree } from './sshd.js';
import { requireTools, runTool, sleep, startDaemon, type Daemon } from './process.js';

const NOBODY = 65534;

/** A running FTP server. */
export interface Ftpd {
  readonly host: string;
  readonly port: number;
  /** The login (anonymous for vsftpd). */
  readonly user: string;
  readonly password: string;
  /** The folder on the local disk that the login sees as `/`. */
  readonly root: string;
  /** The writable folder below `root` that tests use as the mirror (`pub` or `up`). */
  readonly folder: string;
  /** The first and last passive data port. */
  readonly passivePorts: readonly [number, number];
  /** With TLS: the certificate's SHA-256 fingerprint, as `AB:CD:…`. */
  readonly fingerprint?: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** A run of `n` consecutive ports that are free on 127.0.0.1 right now. */
async function freePortRange(n: number): Promise<number> {
  const isFree = (port: number): Promise<boolean> =>
    new Promise((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
  for (let attempt = 0; attempt < 50; attempt++) {
    // Below the ephemeral range (32768+), where TIME_WAIT client sockets would block the bind.
    const start = 20_000 + Math.floor(Math.random() * 12_000);
    let ok = true;
    for (let p = start; p < start + n && ok; p++) ok = await isFree(p);
    if (ok) return start;
  }
  throw new Error('no free passive port range found');
}

async function waitListening(daemon: Daemon, port: number, log: () => string): Promise<void> {
  const { connect } = await import('node:net');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => resolve(false));
    });
    if (up) return;
    if (daemon.hasExited()) throw new Error(`FTP server exited at start: ${log()}`);
    if (Date.now() > deadline) {
      await stopTree(daemon);
      throw new Error(`FTP server did not start listening: ${log()}`);
    }
    await sleep(50);
  }
}

/** SHA-256 fingerprint of a PEM certificate, as `AB:CD:…`. */
function certFingerprint(pemFile: string): string {
  const out = runTool('openssl', ['x509', '-noout', '-fingerprint', '-sha256', '-in', pemFile]).stdout;
  return out.trim().replace(/^.*=/, '');
}

/** Options of {@link startPureFtpd}. */
export interface PureFtpdOptions {
  /** Explicit FTPS with a fresh self-signed certificate (`-Y 1`: TLS allowed, not required). */
  readonly tls?: boolean;
  /** Reuse this port (a restart of the same server). */
  readonly port?: number;
  /** Serve this existing root folder instead of a new one below `dir`. */
  readonly root?: string;
}

/** Starts pure-ftpd with its files in `dir` (a fresh temp folder); see the module comment. */
export async function startPureFtpd(dir: string, options: PureFtpdOptions = {}): Promise<Ftpd> {
  requireTools([
    { command: 'pure-ftpd', debianPackage: 'pure-ftpd' },
    { command: 'pure-pw', debianPackage: 'pure-ftpd' },
    { command: 'openssl', debianPackage: 'openssl' },
  ]);
  const root = options.root ?? join(dir, 'root');
  if (options.root === undefined) {
    mkdirSync(join(root, 'pub'), { recursive: true });
    chownSync(root, NOBODY, NOBODY);
    chownSync(join(root, 'pub'), NOBODY, NOBODY);
  }
  const hash = runTool('openssl', ['passwd', '-6', 'secret']).stdout.trim();
  writeFileSync(join(dir, 'pureftpd.passwd'), `sync:${hash}:${NOBODY}:${NOBODY}::${root}/./::::::::::::\n`);
  runTool('pure-pw', ['mkdb', join(dir, 'pureftpd.pdb'), '-f', join(dir, 'pureftpd.passwd')]);
  const port = options.port ?? (await freePort());
  const pasv = await freePortRange(10);
  const args = [
    '-S',
    `127.0.0.1,${port}`,
    '-p',
    `${pasv}:${pasv + 9}`,
    '-P',
    '127.0.0.1',
    '-l',
    `puredb:${join(dir, 'pureftpd.pdb')}`,
    '-E',
    '-H',
    '-4',
    '-A',
    '-u',
    '1',
    '-g',
    join(dir, 'pure-ftpd.pid'),
  ];
  let fingerprint: string | undefined;
  if (options.tls === true) {
    const pem = join(dir, 'pure-ftpd.pem');
    if (!existsSync(pem)) {
      runTool('openssl', [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '2',
        '-subj',
        '/CN=satchel-test-ftpd',
        '-keyout',
        pem,
        '-out',
        join(dir, 'cert.pem'),
      ]);
      writeFileSync(pem, readFileSync(pem, 'utf8') + readFileSync(join(dir, 'cert.pem'), 'utf8'));
    }
    fingerprint = certFingerprint(join(dir, 'cert.pem'));
    args.push('-Y', '1', '-2', pem);
  }
  const logFile = join(dir, 'pure-ftpd.log');
  const out = openSync(logFile, 'a');
  const daemon = startDaemon('/usr/sbin/pure-ftpd', args, { stdio: ['ignore', out, out] });
  const log = (): string => readFileSync(logFile, 'utf8');
  await waitListening(daemon, port, log);
  return {
    host: '127.0.0.1',
    port,
    user: 'sync',
    password: 'secret',
    root,
    folder: 'pub',
    passivePorts: [pasv, pasv + 9],
    ...(fingerprint === undefined ? {} : { fingerprint }),
    pid: daemon.pid,
    stop: () => stopTree(daemon),
  };
}

/** The vsftpd binary: on the PATH, `SATCHEL_VSFTPD`, or unpacked in /opt/vsftpd. */
export function vsftpdBinary(): string {
  const candidates = [process.env.SATCHEL_VSFTPD, '/usr/sbin/vsftpd', '/opt/vsftpd/usr/sbin/vsftpd'].filter(
    (c): c is string => c !== undefined && c !== '',
  );
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined)
    throw new Error(
      'vsftpd is missing: run `apt-get download vsftpd && dpkg-deb -x vsftpd_*.deb /opt/vsftpd` (it conflicts with pure-ftpd as a package), or set SATCHEL_VSFTPD',
    );
  return found;
}

/** Starts vsftpd (anonymous, writable `up/`) with its files in `dir`; see the module comment. */
export async function startVsftpd(dir: string, options: { port?: number } = {}): Promise<Ftpd> {
  const bin = vsftpdBinary();
  const root = join(dir, 'root');
  mkdirSync(join(root, 'up'), { recursive: true });
  mkdirSync(join(dir, 'empty'), { recursive: true });
  const daemonUid = Number(runTool('id', ['-u', 'daemon']).stdout.trim());
  const daemonGid = Number(runTool('id', ['-g', 'daemon']).stdout.trim());
  chownSync(join(root, 'up'), daemonUid, daemonGid);
  const port = options.port ?? (await freePort());
  const pasv = await freePortRange(10);
  const conf = [
    'listen=YES',
    'listen_ipv6=NO',
    'listen_address=127.0.0.1',
    `listen_port=${port}`,
    'background=NO',
    'pasv_enable=YES',
    'pasv_address=127.0.0.1',
    `pasv_min_port=${pasv}`,
    `pasv_max_port=${pasv + 9}`,
    'anonymous_enable=YES',
    'no_anon_password=YES',
    `anon_root=${root}`,
    'ftp_username=daemon',
    'write_enable=YES',
    'anon_upload_enable=YES',
    'anon_mkdir_write_enable=YES',
    'anon_other_write_enable=YES',
    'anon_umask=022',
    'local_enable=NO',
    'mdtm_write=YES',
    'use_localtime=NO',
    `secure_chroot_dir=${join(dir, 'empty')}`,
    'seccomp_sandbox=NO',
    `vsftpd_log_file=${join(dir, 'vsftpd.log')}`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'vsftpd.conf'), conf);
  const logFile = join(dir, 'vsftpd.out');
  const out = openSync(logFile, 'a');
  const daemon = startDaemon(bin, [join(dir, 'vsftpd.conf')], { stdio: ['ignore', out, out] });
  const log = (): string => readFileSync(logFile, 'utf8');
  await waitListening(daemon, port, log);
  return {
    host: '127.0.0.1',
    port,
    user: 'anonymous',
    password: '',
    root,
    folder: 'up',
    passivePorts: [pasv, pasv + 9],
    pid: daemon.pid,
    stop: () => stopTree(daemon),
  };
}

/** Runs curl against the server (an independent client); returns stdout. */
export function curl(ftpd: Ftpd, args: readonly string[]): string {
  requireTools([{ command: 'curl', debianPackage: 'curl' }]);
  return runTool('curl', ['-sS', '--user', `${ftpd.user}:${ftpd.password}`, ...args]).stdout;
}

/** The URL of `path` (relative to the login folder, `/`-separated, unencoded) on the server. */
export function ftpUrl(ftpd: Ftpd, path: string): string {
  const enc = path
    .split('/')
    .map((s) => encodeURIComponent(s))
    .join('/');
  return `ftp://${ftpd.host}:${ftpd.port}/${enc}`;
}

/**
 * Every file below `folder` as the server lists it, with content, fetched with lftp (an
 * independent client): `path → content`. Folders map to `null`.
 */
export function lftpTree(ftpd: Ftpd, folder: string): Map<string, string | null> {
  requireTools([{ command: 'lftp', debianPackage: 'lftp' }]);
  const local = runTool('mktemp', ['-d']).stdout.trim();
  const script = [
    'set ftp:ssl-allow no',
    'set net:max-retries 1',
    `open -u ${ftpd.user},${ftpd.password === '' ? 'x' : ftpd.password} -p ${ftpd.port} ${ftpd.host}`,
    `mirror --no-perms ${JSON.stringify(folder)} ${JSON.stringify(local)}`,
    '',
  ].join('\n');
  runTool('lftp', ['-c', script]);
  const out = new Map<string, string | null>();
  const walk = (dir: string, rel: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = rel === '' ? e.name : `${rel}/${e.name}`;
      if (e.isDirectory()) {
        out.set(p, null);
        walk(join(dir, e.name), p);
      } else out.set(p, readFileSync(join(dir, e.name), 'utf8'));
    }
  };
  walk(local, '');
  runTool('rm', ['-rf', local]);
  return out;
}
