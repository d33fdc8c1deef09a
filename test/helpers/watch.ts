/**
 * @module test/helpers/watch
 * Runs the real `satchel watch` daemon for end-to-end tests: start it as a child process, wait
 * for its first full reconciliation (the `started` event in `.satchel/events.log` with its pid),
 * stop it by PID (SIGTERM, then SIGKILL) and poll replicas until they reach a wanted state.
 *
 * Every daemon started here is remembered until it has exited: {@link stopAllWatches} (call it
 * in `after`) stops the ones a failing test left running, and a process-exit hook SIGKILLs any
 * that are still alive if the test process ends abruptly. Only those PIDs are ever signalled.
 */
import { existsSync, lstatSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describeRun, spawnSatchel, type RunResult, type RunningSatchel } from './cli.js';
import type { TestCase } from './case.js';
import { onAbruptExit, sleep } from './process.js';
import { removeTempDir } from './temp.js';
import { diffTrees, isSatchelInternal, readTree, satchelTempFiles, type CompareOptions } from './tree.js';

/** One line of `.satchel/events.log`. */
export interface LoggedEvent {
  readonly time: string;
  readonly event: string;
  readonly mirror?: string;
  readonly message?: string;
  readonly paths?: readonly string[];
  readonly pid?: number;
  readonly [key: string]: unknown;
}

/** A running `satchel watch` started by {@link startWatch}. */
export interface WatchProcess {
  readonly pid: number;
  readonly run: RunningSatchel;
  readonly casePath: string;
  /** The run's outcome once it has exited, else undefined. */
  exited(): RunResult | undefined;
}

const running = new Set<WatchProcess>();
onAbruptExit(() => {
  for (const w of running) {
    try {
      process.kill(w.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
});

/** The events of the case's `.satchel/events.log`, oldest first. */
export function readEvents(casePath: string): LoggedEvent[] {
  const file = join(casePath, '.satchel', 'events.log');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as LoggedEvent);
}

/** The test's environment for a daemon: everything but the switch that silences notifications. */
export function daemonEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env = { ...process.env, ...extra };
  delete env.SATCHEL_NO_NOTIFY;
  return env;
}

/** Options of {@link startWatch}. */
export interface StartWatchOptions {
  /** Extra arguments after `watch` (e.g. `--settle 50`). */
  readonly args?: readonly string[];
  /** The daemon's whole environment (default {@link daemonEnv}()). */
  readonly env?: NodeJS.ProcessEnv;
  /** How long the first reconciliation may take (default 30 s). */
  readonly startTimeoutMs?: number;
}

/** Starts `satchel -C <case> watch` without waiting for anything (see {@link startWatch}). */
export function spawnWatch(c: TestCase, options: StartWatchOptions = {}): WatchProcess {
  const run = spawnSatchel(['-C', c.path, 'watch', ...(options.args ?? [])], {
    ...c.runOptions,
    env: options.env ?? daemonEnv(),
    timeoutMs: 600_000,
  });
  let result: RunResult | undefined;
  const w: WatchProcess = { pid: run.pid, run, casePath: c.path, exited: () => result };
  running.add(w);
  void run.done.then((r) => {
    result = r;
    running.delete(w);
  });
  return w;
}

/**
 * Starts `satchel -C <case> watch` and waits until it logged `started` (its first full
 * reconciliation is done). Fails with the daemon's output if it exits first.
 */
export async function startWatch(c: TestCase, options: StartWatchOptions = {}): Promise<WatchProcess> {
  const before = readEvents(c.path).length;
  const w = spawnWatch(c, options);
  const { run } = w;
  await waitUntil(
    `satchel watch (pid ${run.pid}) to finish its first reconciliation`,
    () =>
      readEvents(c.path)
        .slice(before)
        .some((e) => e.event === 'started' && e.pid === run.pid),
    {
      timeoutMs: options.startTimeoutMs ?? 30_000,
      abortIf: () => {
        const result = w.exited();
        return result ? `it exited early: ${describeRun(result)}` : undefined;
      },
    },
  );
  return w;
}

/**
 * Sends SIGTERM (or `signal`) to the daemon's PID and waits up to `timeoutMs` (default 10 s);
 * SIGKILLs it if it is still running then. Returns its result and whether it exited in time.
 */
export async function stopWatch(
  w: WatchProcess,
  signal: NodeJS.Signals = 'SIGTERM',
  timeoutMs = 10_000,
): Promise<{ result: RunResult; inTime: boolean }> {
  w.run.kill(signal);
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), timeoutMs)));
  const r = await Promise.race([w.run.done, late]);
  clearTimeout(timer);
  if (r !== undefined) return { result: r, inTime: true };
  w.run.kill('SIGKILL');
  return { result: await w.run.done, inTime: false };
}

/** Stops every daemon still running (for `after` hooks). */
export async function stopAllWatches(): Promise<void> {
  await Promise.all([...running].map((w) => stopWatch(w)));
}

/** Options of {@link waitUntil}. */
export interface WaitUntilOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  /** Checked each round: a string gives up at once with that reason. */
  readonly abortIf?: () => string | undefined;
  /** Added to the timeout message (e.g. the differences still left). */
  readonly detail?: () => string;
}

/**
 * Polls `condition` (errors count as "not yet": files move under the test) every `intervalMs`
 * (default 15) until true; throws naming `what` and the last detail after `timeoutMs`.
 */
export async function waitUntil(
  what: string,
  condition: () => boolean,
  options: WaitUntilOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let ok: boolean;
    try {
      ok = condition();
    } catch {
      ok = false;
    }
    if (ok) return;
    const abort = options.abortIf?.();
    if (abort !== undefined) throw new Error(`gave up waiting for ${what}: ${abort}`);
    if (Date.now() > deadline) {
      let detail: string;
      try {
        detail = options.detail ? `\n${options.detail()}` : '';
      } catch (e) {
        detail = `\n(detail failed: ${(e as Error).message})`;
      }
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
    }
    await sleep(options.intervalMs ?? 15);
  }
}

/** The file's content as UTF-8, or undefined when it does not exist. */
export function readOrUndefined(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The differences between the case and `mirror` (see {@link diffTrees}); [] when equal. */
export function caseMirrorDiff(casePath: string, mirror: string, options: CompareOptions = {}): string[] {
  return diffTrees(readTree(casePath), readTree(mirror), options);
}

/** Options of {@link waitForMirrorsEqual}. */
export interface MirrorsEqualOptions {
  /** The mirrors to compare (default: all of the case's). */
  readonly mirrors?: readonly string[];
  /** Case paths to leave out of the comparison. */
  readonly caseIgnore?: (path: string) => boolean;
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
}

/**
 * Waits until every mirror of `c` holds the same tree as the case (content, exec bit, mtime
 * within 1 ms) and no Satchel temporary file is left anywhere; fails with the differences.
 */
export async function waitForMirrorsEqual(c: TestCase, options: MirrorsEqualOptions = {}): Promise<void> {
  const dirs = (options.mirrors ?? Object.keys(c.mirrors)).map((n) => c.mirrors[n]!);
  const caseIgnore = options.caseIgnore ?? (() => false);
  const settled = (): string[] => {
    const out: string[] = [];
    const tree = readTree(c.path, { ignore: (p) => isSatchelInternal(p) || caseIgnore(p) });
    for (const d of dirs) {
      out.push(...diffTrees(tree, readTree(d)).map((x) => `${d}: ${x}`));
      out.push(...satchelTempFiles(d).map((x) => `${d}: temporary file ${x}`));
    }
    out.push(...satchelTempFiles(c.path).map((x) => `case: temporary file ${x}`));
    return out;
  };
  await waitUntil('the mirrors to equal the case', () => settled().length === 0, {
    timeoutMs: options.timeoutMs ?? 15_000,
    intervalMs: options.intervalMs ?? 20,
    detail: () => settled().slice(0, 20).join('\n'),
  });
}

/** Case files without any write permission bit (left locked), relative to the case. */
export function readOnlyFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(rel === '' ? root : join(root, rel))) {
      const path = rel === '' ? name : `${rel}/${name}`;
      if (path === '.satchel') continue;
      const st = lstatSync(join(root, path));
      if (st.isDirectory()) walk(path);
      else if (st.isFile() && (st.mode & 0o222) === 0) out.push(path);
    }
  };
  walk('');
  return out;
}

/** What {@link sampleFiles} saw. */
export interface Samples {
  /** Every content read from the files (undefined: the file did not exist at that moment). */
  readonly contents: Set<string | undefined>;
  /** Every name listed in the folders. */
  readonly names: Set<string>;
  /** How many rounds of reading were done. */
  readonly rounds: number;
}

/**
 * Reads `files` (and lists `folders`) over and over, yielding to the event loop between
 * rounds, so a test can check that a replica never showed a partial or stray version while
 * the daemon worked on it.
 */
export function sampleFiles(
  files: readonly string[],
  folders: readonly string[] = [],
): { stop(): Promise<Samples> } {
  const contents = new Set<string | undefined>();
  const names = new Set<string>();
  let rounds = 0;
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      for (const f of files) contents.add(readOrUndefined(f));
      for (const d of folders) {
        try {
          for (const n of readdirSync(d)) names.add(n);
        } catch {
          // A folder renamed away for a moment: nothing to list.
        }
      }
      rounds++;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return { contents, names, rounds };
    },
  };
}

/**
 * The `after` of a suite that ran one daemon in `root`: stops it by PID (it must exit 0 in
 * time), stops any other daemon a failed test left, and removes `root`.
 */
export async function endWatchSuite(
  daemon: WatchProcess | undefined,
  root: string | undefined,
): Promise<void> {
  try {
    if (daemon && !daemon.exited()) {
      const { result, inTime } = await stopWatch(daemon);
      if (!inTime || result.code !== 0)
        throw new Error(`satchel watch did not stop cleanly on SIGTERM: ${describeRun(result)}`);
    }
  } finally {
    await stopAllWatches();
    // SATCHEL_KEEP_TEST_DIRS=1 keeps the folder (case, mirrors, events.log) for a post-mortem.
    if (root !== undefined && process.env.SATCHEL_KEEP_TEST_DIRS === undefined) removeTempDir(root);
  }
}
