/**
 * @module test/helpers/cli
 * Runs the real `satchel` binary (`bin/satchel.js`, which loads the compiled CLI from `dist/`)
 * the way a user does, and types the JSON shapes of its `--json` output as agreed in the CLI
 * contract (DESIGN.md). The repository root is found from this file's own location.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import assert from 'node:assert/strict';

/** The repository root: the nearest folder above this file holding Satchel's package.json. */
export const REPO_ROOT = findRepoRoot(dirname(fileURLToPath(import.meta.url)));

/** The command-line entry point. */
export const SATCHEL_BIN = join(REPO_ROOT, 'bin', 'satchel.js');

function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'satchel')
      return dir;
    if (dirname(dir) === dir) throw new Error(`no satchel package.json above ${start}`);
  }
}

/** Options of {@link runSatchel}. */
export interface RunOptions {
  /** Working folder (default: the repository root; most tests pass `-C <case>` instead). */
  readonly cwd?: string;
  /** Extra environment variables, merged over the test's own. */
  readonly env?: NodeJS.ProcessEnv;
  /** Text written to stdin (stdin is closed either way). */
  readonly input?: string;
  /** Kill the run with SIGKILL after this many ms (default 120 s) and report it. */
  readonly timeoutMs?: number;
  /** Run as this uid/gid through `setpriv` (to test what root cannot: unreadable files). */
  readonly asUser?: { readonly uid: number; readonly gid: number };
}

/** The outcome of one run of the binary. */
export interface RunResult {
  /** Exit code, or null when killed by a signal. */
  readonly code: number | null;
  /** The signal that ended it, if any. */
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall time of the run in ms. */
  readonly durationMs: number;
  /** The command line, for failure messages. */
  readonly command: string;
  /** stdout parsed as JSON; throws with the whole output when it is not JSON. */
  json<T = unknown>(): T;
}

/** A run in progress (see {@link spawnSatchel}). */
export interface RunningSatchel {
  readonly pid: number;
  /** Resolves when the process has exited, whatever the reason. */
  readonly done: Promise<RunResult>;
  /** Whether the process has exited. */
  hasExited(): boolean;
  /** Sends `signal` to this process only. */
  kill(signal: NodeJS.Signals): void;
}

/** Starts `satchel args…` and returns at once; the test may kill it (crash tests). */
export function spawnSatchel(args: readonly string[], options: RunOptions = {}): RunningSatchel {
  const nodeArgs = [SATCHEL_BIN, ...args];
  const [command, argv] = options.asUser
    ? [
        'setpriv',
        [
          `--reuid=${options.asUser.uid}`,
          `--regid=${options.asUser.gid}`,
          '--clear-groups',
          '--',
          process.execPath,
          ...nodeArgs,
        ],
      ]
    : [process.execPath, nodeArgs];
  const started = Date.now();
  const child = spawn(command, argv, {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`could not start ${command}`);
  let stdout = '';
  let stderr = '';
  let exited = false;
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.input ?? '');
  const commandLine = `satchel ${args.join(' ')}`;
  const timer = setTimeout(() => {
    stderr += `\n[test harness: killed after ${options.timeoutMs ?? 120_000} ms]`;
    child.kill('SIGKILL');
  }, options.timeoutMs ?? 120_000);
  const done = new Promise<RunResult>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => {
      exited = true;
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout,
        stderr,
        durationMs: Date.now() - started,
        command: commandLine,
        json<T>(): T {
          try {
            return JSON.parse(stdout) as T;
          } catch {
            throw new Error(
              `${commandLine}: stdout is not JSON (exit ${code})\nstdout: ${stdout}\nstderr: ${stderr}`,
            );
          }
        },
      });
    });
  });
  return {
    pid: child.pid,
    done,
    hasExited: () => exited,
    kill: (signal) => {
      if (!exited) child.kill(signal);
    },
  };
}

/** Runs `satchel args…` to completion. */
export function runSatchel(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return spawnSatchel(args, options).done;
}

/** A one-paragraph description of a run, for assertion messages. */
export function describeRun(r: RunResult): string {
  return `${r.command} → exit ${r.code ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** Asserts the run exited with `code` (default 0), showing its output otherwise. */
export function assertExit(r: RunResult, code = 0): RunResult {
  assert.equal(r.code, code, `expected exit ${code}: ${describeRun(r)}`);
  return r;
}

/** Runs `satchel args…` and asserts it exits 0. */
export async function satchelOk(args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return assertExit(await runSatchel(args, options), 0);
}

/** Runs `satchel args… --json`, asserts exit `code` (default 0) and returns the parsed output. */
export async function satchelJson<T>(
  args: readonly string[],
  options: RunOptions = {},
  code = 0,
): Promise<T> {
  const r = assertExit(await runSatchel([...args, '--json'], options), code);
  return r.json<T>();
}

// ---- JSON shapes of the CLI contract ----

/** `satchel init --json`. */
export interface InitReport {
  readonly case: string;
  readonly name: string;
}

/** One entry of `satchel mirror list --json`. */
export interface MirrorInfo {
  readonly name: string;
  readonly url: string;
  readonly id: string;
  readonly pushOnly: boolean;
  readonly encrypt: boolean;
  readonly poll: number | null;
  readonly present: boolean;
  readonly capabilities: {
    readonly mtimeGranularityMs: number;
    readonly caseSensitive: boolean;
    readonly symlinks: boolean;
    readonly executableBit?: boolean;
    readonly forbiddenChars?: string;
    readonly maxFileSize?: number;
  } | null;
}

/** `satchel mirror list --json`. */
export interface MirrorListReport {
  readonly mirrors: readonly MirrorInfo[];
}

/** A conflict as reported by `sync`. */
export interface SyncConflict {
  readonly path: string;
  readonly copyPath: string;
  readonly winner: string;
  readonly reason: string;
}

/** A per-path problem. */
export interface ProblemReport {
  readonly path: string;
  readonly code: string;
  readonly message: string;
}

/** What `sync` did with one mirror. */
export interface MirrorSyncReport {
  readonly mirror: string;
  readonly state: 'synced' | 'planned' | 'absent' | 'halted' | 'failed';
  readonly in: number;
  readonly out: number;
  readonly conflicts: readonly SyncConflict[];
  readonly problems: readonly ProblemReport[];
  /** Paths changed on a push-only mirror by someone else, found by this run. */
  readonly drift?: readonly string[];
  readonly message?: string;
  readonly hint?: string;
  /** For a failed mirror: the stable error code, when there is one. */
  readonly code?: string;
  readonly operations?: readonly unknown[];
}

/** `satchel sync --json`. */
export interface SyncReport {
  readonly mirrors: readonly MirrorSyncReport[];
}

/** `satchel status --json`. */
export interface StatusReport {
  readonly case: string;
  readonly name: string;
  readonly mirrors: readonly {
    readonly name: string;
    readonly url: string;
    readonly present: boolean;
    readonly state: string;
    readonly pending: number;
    readonly lastSync: string | null;
    readonly lastResult: string | null;
    readonly lastSynced: string | null;
    readonly drift: readonly string[];
    readonly driftPending: readonly string[];
    readonly message?: string;
  }[];
  readonly locked: readonly unknown[];
  readonly conflicts: number;
}

/** `satchel conflicts --json`. */
export interface ConflictsReport {
  readonly conflicts: readonly {
    readonly path: string;
    readonly copyPath: string;
    readonly mirror: string;
    readonly winner: string;
    readonly reason: string;
    readonly detectedAt: string;
  }[];
}

/** The report of mirror `name` in a sync report; fails when it is missing. */
export function mirrorReport(report: SyncReport, name: string): MirrorSyncReport {
  const m = report.mirrors.find((x) => x.mirror === name);
  assert.ok(m, `sync report has no mirror '${name}': ${JSON.stringify(report)}`);
  return m;
}
