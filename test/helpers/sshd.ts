/**
 * @module test/helpers/sshd
 * A real OpenSSH `sshd` for tests (TESTBED.md §1): its own config, host key and authorized key
 * in a temp folder, listening on 127.0.0.1 on a free port (or on an address inside a network
 * namespace), started as a child of the test and stopped by PID together with its
 * per-connection children (they run in sessions of their own). A matching client SSH folder
 * (`id_ed25519`, optionally `known_hosts`) is made for `SATCHEL_SSH_DIR`, so nothing touches
 * the real `~/.ssh`.
 *
 * Knobs: `sftpAs` runs the SFTP server as another uid/gid (through `setpriv`), so permissions
 * mean something although the tests log in as root; `netns` starts sshd inside that network
 * namespace (`ip netns exec`); `listen` is the address to bind.
 */
import { readdirSync, readFileSync, writeFileSync, mkdirSync, chmodSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { requireTools, runTool, sleep, startDaemon, waitExit, type Daemon } from './process.js';

/** The packages the SFTP tests need (named in the failure when missing). */
export const SSH_TOOLS = [
  { command: 'sshd', debianPackage: 'openssh-server' },
  { command: 'ssh-keygen', debianPackage: 'openssh-client' },
  { command: 'setpriv', debianPackage: 'util-linux' },
];

/** Options of {@link startSshd}. */
export interface SshdOptions {
  /** Run the SFTP server as this uid/gid instead of as the login user. */
  readonly sftpAs?: { readonly uid: number; readonly gid: number };
  /** Start inside this network namespace. */
  readonly netns?: string;
  /** Address to listen on (default 127.0.0.1). */
  readonly listen?: string;
  /** Port (default: a free one on 127.0.0.1). */
  readonly port?: number;
  /** Write the server's key into the client's known_hosts (default true). */
  readonly trustHostKey?: boolean;
}

/** A running sshd. */
export interface Sshd {
  readonly host: string;
  readonly port: number;
  /** A client SSH folder: `id_ed25519` (authorized), `known_hosts` (when trusted). Use as SATCHEL_SSH_DIR. */
  readonly sshDir: string;
  /** The server's public host key line (`ssh-ed25519 AAAA…`). */
  readonly hostKeyLine: string;
  /** `sha256` fingerprint of the host key as `ssh-keygen -l` prints it (`SHA256:…`). */
  readonly fingerprint: string;
  /** The known_hosts line for this server. */
  readonly knownHostsLine: string;
  readonly log: () => string;
  /** Stops sshd and every session it started. */
  stop(): Promise<void>;
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Whether something accepts connections on 127.0.0.1:`port`. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}

/** Every descendant PID of `pid` (from /proc), deepest last. */
function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(name));
      children.set(ppid, list);
    } catch {
      // Exited meanwhile.
    }
  }
  const out: number[] = [];
  const walk = (p: number): void => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(pid);
  return out;
}

/** Stops a process and its descendants by PID (never by name). */
export async function stopTree(daemon: Daemon): Promise<void> {
  for (const pid of descendants(daemon.pid)) {
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      // Gone already.
    }
  }
  try {
    process.kill(daemon.pid, 'SIGTERM');
  } catch {
    // Gone already.
  }
  if (!(await waitExit(daemon, 5000))) {
    try {
      process.kill(daemon.pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
    await waitExit(daemon, 5000);
  }
}

/** Starts sshd with its files in `dir` (a fresh temp folder); see the module comment. */
export async function startSshd(dir: string, options: SshdOptions = {}): Promise<Sshd> {
  requireTools(SSH_TOOLS);
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const host = options.listen ?? '127.0.0.1';
  const port = options.port ?? (await freePort());
  runTool('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'satchel-test-host',
    '-f',
    join(dir, 'host_ed25519'),
  ]);
  const sshDir = join(dir, 'client-ssh');
  mkdirSync(sshDir, { mode: 0o700 });
  runTool('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'satchel-test-client',
    '-f',
    join(sshDir, 'id_ed25519'),
  ]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(sshDir, 'id_ed25519.pub')));
  const sftp =
    options.sftpAs === undefined
      ? 'internal-sftp'
      : `/usr/bin/setpriv --reuid=${options.sftpAs.uid} --regid=${options.sftpAs.gid} --clear-groups /usr/lib/openssh/sftp-server`;
  const config = [
    `Port ${port}`,
    `ListenAddress ${host}`,
    `HostKey ${join(dir, 'host_ed25519')}`,
    `PidFile ${join(dir, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    'PubkeyAuthentication yes',
    'PasswordAuthentication no',
    'KbdInteractiveAuthentication no',
    'PermitRootLogin prohibit-password',
    'UsePAM no',
    'StrictModes no',
    `Subsystem sftp ${sftp}`,
    'LogLevel VERBOSE',
    '',
  ].join('\n');
  writeFileSync(join(dir, 'sshd_config'), config);
  runTool('/usr/sbin/sshd', ['-t', '-f', join(dir, 'sshd_config')]);
  if (options.netns === undefined && (await accepts(port))) throw new Error(`port ${port} is already in use`);
  const logFile = join(dir, 'sshd.log');
  const { openSync } = await import('node:fs');
  const out = openSync(logFile, 'a');
  const command = options.netns === undefined ? '/usr/sbin/sshd' : 'ip';
  const args = ['-D', '-e', '-f', join(dir, 'sshd_config')];
  const daemon = startDaemon(
    command,
    options.netns === undefined ? args : ['netns', 'exec', options.netns, '/usr/sbin/sshd', ...args],
    {
      stdio: ['ignore', out, out],
    },
  );
  const log = (): string => readFileSync(logFile, 'utf8');
  // Ready when the log says so (works inside a namespace too, where we cannot connect from here).
  const deadline = Date.now() + 10_000;
  while (!/Server listening on/.test(log())) {
    if (daemon.hasExited()) throw new Error(`sshd exited at start: ${log()}`);
    if (Date.now() > deadline) {
      await stopTree(daemon);
      throw new Error(`sshd did not start within 10 s: ${log()}`);
    }
    await sleep(20);
  }
  const hostKeyLine = readFileSync(join(dir, 'host_ed25519.pub'), 'utf8')
    .trim()
    .split(' ')
    .slice(0, 2)
    .join(' ');
  const knownHostsLine = `${port === 22 ? host : `[${host}]:${port}`} ${hostKeyLine}`;
  if (options.trustHostKey !== false) writeFileSync(join(sshDir, 'known_hosts'), knownHostsLine + '\n');
  chmodSync(sshDir, 0o700);
  const fp = runTool('ssh-keygen', ['-l', '-E', 'sha256', '-f', join(dir, 'host_ed25519.pub')]).stdout.split(
    ' ',
  )[1]!;
  return {
    host,
    port,
    sshDir,
    hostKeyLine,
    fingerprint: fp,
    knownHostsLine,
    log,
    stop: () => stopTree(daemon),
  };
}
