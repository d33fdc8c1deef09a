/**
 * @module test/helpers/process
 * Small process utilities for the integration tests: check that the system tools a test needs
 * are installed (failing loudly with what to install, never skipping), run a tool to
 * completion, start long-lived helpers (FUSE drivers) and stop them by PID within a time bound,
 * and poll for a condition.
 */
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** A system tool a test needs, with the Debian package that provides it. */
export interface RequiredTool {
  /** The command name, looked up on `PATH` (plus the sbin folders). */
  readonly command: string;
  /** The Debian package to install when it is missing. */
  readonly debianPackage: string;
}

/** `PATH` extended with the sbin folders, where mkfs, losetup and mount helpers live. */
export const TOOL_PATH = [process.env.PATH ?? '', '/usr/local/sbin', '/usr/sbin', '/sbin']
  .filter(Boolean)
  .join(':');

/** Whether `command` can be found on {@link TOOL_PATH}. */
export function hasTool(command: string): boolean {
  return (
    spawnSync('sh', ['-c', `command -v "$1"`, 'sh', command], { env: { ...process.env, PATH: TOOL_PATH } })
      .status === 0
  );
}

/**
 * Throws (so the test FAILS, it is never skipped) when any of `tools` is missing, naming the
 * Debian packages to install.
 */
export function requireTools(tools: readonly RequiredTool[]): void {
  const missing = tools.filter((t) => !hasTool(t.command));
  if (missing.length === 0) return;
  const packages = [...new Set(missing.map((t) => t.debianPackage))].join(' ');
  throw new Error(
    `missing system tools: ${missing.map((t) => t.command).join(', ')}; ` +
      `install them with: apt-get install -y ${packages} (scripts/ci.sh does this as root)`,
  );
}

/** Throws unless the test runs as root (loop devices and mounts need it). */
export function requireRoot(what: string): void {
  if (process.getuid?.() !== 0)
    throw new Error(`${what} needs root (loop devices, mounts); run the tests as root`);
}

/** Throws unless `/dev/fuse` exists (FUSE file systems need it). */
export function requireFuse(): void {
  if (!existsSync('/dev/fuse'))
    throw new Error(
      '/dev/fuse is missing: FUSE mounts need it (modprobe fuse, or a container with --device /dev/fuse)',
    );
}

/** What a finished tool run produced. */
export interface ToolResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `command args` to completion (bounded by `timeoutMs`) and returns its output. With
 * `check` (the default) a non-zero exit throws with the command line and its stderr.
 */
export function runTool(
  command: string,
  args: readonly string[],
  options: { check?: boolean; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {},
): ToolResult {
  const r = spawnSync(command, args, {
    encoding: 'utf8',
    timeout: options.timeoutMs ?? 60_000,
    env: { ...process.env, ...options.env, PATH: TOOL_PATH },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (r.error) throw new Error(`${command} ${args.join(' ')}: ${r.error.message}`, { cause: r.error });
  const result = { status: r.status, stdout: r.stdout, stderr: r.stderr };
  if ((options.check ?? true) && r.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} exited with ${r.status}: ${r.stderr.trim() || r.stdout.trim()}`,
    );
  }
  return result;
}

/** Sleeps for `ms` milliseconds. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `condition` every `intervalMs` until it returns true; throws naming `what` after
 * `timeoutMs`. `abortIf` is checked too, so a helper that died early fails fast with its reason.
 */
export async function waitFor(
  what: string,
  condition: () => boolean,
  options: { timeoutMs: number; intervalMs?: number; abortIf?: () => string | undefined },
): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (condition()) return;
    const abort = options.abortIf?.();
    if (abort !== undefined) throw new Error(`gave up waiting for ${what}: ${abort}`);
    if (Date.now() > deadline) throw new Error(`timed out after ${options.timeoutMs} ms waiting for ${what}`);
    await sleep(options.intervalMs ?? 50);
  }
}

/** A long-lived child process (a FUSE driver) that the test owns and stops by PID. */
export interface Daemon {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  readonly exited: Promise<number | string>;
  /** Whether the process has exited. */
  hasExited(): boolean;
}

/** Starts `command args` as a {@link Daemon}, with stdin closed and output as given. */
export function startDaemon(command: string, args: readonly string[], options: SpawnOptions = {}): Daemon {
  const child = spawn(command, args, {
    stdio: ['ignore', 'ignore', 'ignore'],
    ...options,
    env: { ...process.env, ...options.env, PATH: TOOL_PATH },
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once('exit', (code, signal) => {
      done = true;
      resolve(code ?? signal ?? 'unknown');
    });
    child.once('error', (err) => {
      done = true;
      resolve(`error: ${err.message}`);
    });
  });
  return { child, pid: child.pid, exited, hasExited: () => done };
}

/** Waits up to `timeoutMs` for the daemon to exit on its own; returns whether it did. */
export async function waitExit(daemon: Daemon, timeoutMs: number): Promise<boolean> {
  if (daemon.hasExited()) return true;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
  try {
    return await Promise.race([daemon.exited.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Sends `signal` to the daemon's PID and waits up to `timeoutMs` for it to exit. Returns
 * whether it exited in time. Never signals anything but that one PID.
 */
export async function stopDaemon(
  daemon: Daemon,
  signal: NodeJS.Signals,
  timeoutMs: number,
): Promise<boolean> {
  if (daemon.hasExited()) return true;
  try {
    process.kill(daemon.pid, signal);
  } catch {
    // Already gone between the check and the kill.
  }
  return waitExit(daemon, timeoutMs);
}

/**
 * Whether `dir` is currently a mount point. Read from `/proc/self/mountinfo` rather than asked
 * of `mountpoint -q`, which fails on a mount whose FUSE driver died (ENOTCONN) although the
 * mount is still there and must be unmounted.
 */
export function isMountPoint(dir: string): boolean {
  const target = resolve(dir);
  const unescape = (s: string): string =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .some((line) => line !== '' && unescape(line.split(' ')[4] ?? '') === target);
}

/** Whether the mount at `dir` answers (`mountpoint -q` succeeds: mounted and its driver alive). */
export function isMountAlive(dir: string): boolean {
  return spawnSync('mountpoint', ['-q', dir], { env: { ...process.env, PATH: TOOL_PATH } }).status === 0;
}

/**
 * Cleanup actions that must run even when a test process ends abruptly (an uncaught error
 * between mount and unmount): they run synchronously on `exit`. Each returns an unregister
 * function for the normal path.
 */
const exitCleanups = new Set<() => void>();
let exitHookInstalled = false;

/** Registers `cleanup` to run synchronously if the process exits before it is unregistered. */
export function onAbruptExit(cleanup: () => void): () => void {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of exitCleanups) {
        try {
          c();
        } catch {
          // Best effort: the process is ending.
        }
      }
    });
  }
  exitCleanups.add(cleanup);
  return () => exitCleanups.delete(cleanup);
}
