/**
 * @module bench/latency-bench
 * Save-to-mirror latency of `satchel watch`, beside lsyncd (`default.rsync`, `delay = 0`) and
 * unison (`-repeat watch`), in the same run on the same machine.
 *
 * A case holds a 5 KB text file. Each sample appends 10 lines to it, in one of two ways:
 * - `in place`: open for append, write, close (`echo >>`, VS Code);
 * - `temp+rename`: write the whole new content to a temporary name in the same folder, then
 *   rename it over the file (JetBrains "safe write", `sed -i`).
 * The clock starts when close (or rename) has returned and stops when the mirror's copy has
 * exactly the new content; with four mirrors the sample is the time until all four have it
 * (each mirror's own time is kept too). 50 samples per mode (`SATCHEL_BENCH_SAMPLES`
 * overrides), 150 ms apart so each save is its own event; the file is reset to 5 KB (unmeasured)
 * before each mode, so it grows to about 35 KB over a mode's samples.
 *
 * How arrival is seen: `fs.watch` (inotify) on each mirror folder; on every event the mirror
 * file is read and compared with the expected bytes. This adds well under a millisecond and
 * burns no CPU while waiting, whereas a tight read-and-compare loop would keep one of the
 * machine's two cores busy and slow down the tool under test. A 100 ms backup poll catches an
 * arrival whose event was somehow missed; such samples are counted in the table (`late`) so a
 * coarse figure is never hidden.
 *
 * Each tool runs in a fresh case and fresh mirrors, is started, waited for until its initial
 * sync is done (satchel: `started — watching` on stderr; lsyncd: `Startup of … finished` for
 * every target; unison: the file on the mirror), then measured, then stopped by PID. Unison's
 * `-repeat watch` needs the `unison-fsmonitor` helper; where that is not installed (Debian 12
 * ships none) unison runs with `-repeat 1`, its shortest polling interval, and the row says so.
 * Timings are reported, never asserted. `SATCHEL_BENCH_LOG_DIR=<dir>` keeps each process's output
 * there; `SATCHEL_BENCH_DAEMON_NODE_ARGS` passes Node flags to the daemon (e.g. `--cpu-prof
 * --cpu-prof-dir=<dir>`); `SATCHEL_BENCH_TOOLS=satchel,lsyncd` measures only those tools.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  appendFileSync,
  closeSync,
  type FSWatcher,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  watch,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { printTable } from './measure.js';

/** The compiled CLI's entry point (this file runs from `dist/bench/`). */
export const SATCHEL_BIN = fileURLToPath(new URL('../../bin/satchel.js', import.meta.url));

const FILE = 'notes.txt';
const PAUSE_MS = 150;
const SAMPLE_TIMEOUT_MS = 10_000;
const READY_TIMEOUT_MS = 60_000;

export const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Whether `tool` is on the PATH. */
export function have(tool: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${tool}`]).status === 0;
}

/** Runs the satchel CLI to completion, failing loudly. */
export function satchelCli(args: readonly string[]): void {
  const r = spawnSync(process.execPath, [SATCHEL_BIN, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench: satchel ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
}

/** A process started by a bench, with its output kept for readiness checks and error messages. */
export interface Running {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Everything written to stdout and stderr so far. */
  output(): string;
  /** Resolves when `re` matches the output `count` times (rejects on exit or timeout). */
  waitFor(re: RegExp, count?: number, timeoutMs?: number): Promise<void>;
  /** SIGTERM by PID, SIGKILL after 10 s; then SIGTERM to its process group for stray children. */
  stop(): Promise<void>;
}

/** Starts `cmd args` in its own process group. */
export function startProcess(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): Running {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  if (child.pid === undefined) throw new Error(`bench: cannot start ${cmd}`);
  const pid = child.pid;
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer): void => {
    out += d.toString('utf8');
    if (out.length > 1_000_000) out = out.slice(-500_000);
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  let exitCode: number | null | undefined;
  const exited = new Promise<void>((resolve) =>
    child.on('exit', (code, signal) => {
      exitCode = code ?? (signal ? -1 : null);
      for (const l of listeners) l();
      resolve();
    }),
  );
  return {
    child,
    pid,
    output: () => out,
    waitFor(re, count = 1, timeoutMs = READY_TIMEOUT_MS) {
      const global = new RegExp(re.source, re.flags.includes('g') ? re.flags : `${re.flags}g`);
      return new Promise<void>((resolve, reject) => {
        const check = (): void => {
          if ((out.match(global) ?? []).length >= count) done(undefined);
          else if (exitCode !== undefined)
            done(new Error(`${cmd} exited (${exitCode}): ${out.slice(-2000)}`));
        };
        const timer = setTimeout(
          () => done(new Error(`${cmd}: no ${re} within ${timeoutMs} ms: ${out.slice(-2000)}`)),
          timeoutMs,
        );
        const done = (e: Error | undefined): void => {
          clearTimeout(timer);
          listeners.delete(check);
          if (e) reject(e);
          else resolve();
        };
        listeners.add(check);
        check();
      });
    },
    async stop() {
      if (exitCode === undefined) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          /* already gone */
        }
        const killer = setTimeout(() => {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            /* already gone */
          }
        }, 10_000);
        await exited;
        clearTimeout(killer);
      }
      const logDir = process.env.SATCHEL_BENCH_LOG_DIR;
      if (logDir)
        appendFileSync(join(logDir, `${basename(cmd)}-${pid}.log`), `$ ${cmd} ${args.join(' ')}\n${out}`);
      try {
        process.kill(-pid, 'SIGTERM'); // children it left behind (lsyncd's rsync), if any
      } catch {
        /* none */
      }
    },
  };
}

/** Nearest-rank percentile of an ascending array. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const ms = (v: number): string => (Number.isFinite(v) ? `${v.toFixed(1)}` : 'n/a');

/** A replication tool under test: starts on a case and its mirrors, ready once its first sync is done. */
interface Tool {
  readonly name: string;
  start(
    dir: string,
    caseDir: string,
    mirrors: readonly string[],
    waitMirrors: () => Promise<void>,
  ): Promise<Running[]>;
}

function satchelTool(): Tool {
  const nodeArgs = (process.env.SATCHEL_BENCH_DAEMON_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  return {
    name: 'satchel watch',
    async start(_dir, caseDir, mirrors, waitMirrors) {
      satchelCli(['init', caseDir]);
      mirrors.forEach((m, i) => satchelCli(['-C', caseDir, 'mirror', 'add', `m${i + 1}`, m]));
      const daemon = startProcess(process.execPath, [...nodeArgs, SATCHEL_BIN, '-C', caseDir, 'watch']);
      try {
        await daemon.waitFor(/started — watching/);
        await waitMirrors();
      } catch (e) {
        await daemon.stop();
        throw e;
      }
      return [daemon];
    },
  };
}

/** Lua string literal. */
const lua = (s: string): string => JSON.stringify(s);

function lsyncdTool(): Tool {
  return {
    name: 'lsyncd (rsync, delay 0)',
    async start(dir, caseDir, mirrors, waitMirrors) {
      const config = join(dir, 'lsyncd.conf.lua');
      writeFileSync(
        config,
        [
          'settings { nodaemon = true }',
          ...mirrors.map(
            (m) =>
              `sync { default.rsync, source = ${lua(`${caseDir}/`)}, target = ${lua(`${m}/`)}, delay = 0 }`,
          ),
        ].join('\n') + '\n',
      );
      const p = startProcess('lsyncd', [config]);
      try {
        await p.waitFor(/Startup of .* finished/, mirrors.length);
        await waitMirrors();
      } catch (e) {
        await p.stop();
        throw e;
      }
      return [p];
    },
  };
}

function unisonTool(watchMode: boolean): Tool {
  return {
    name: watchMode ? 'unison -repeat watch' : 'unison -repeat 1 (no fsmonitor)',
    async start(dir, caseDir, mirrors, waitMirrors) {
      const home = join(dir, 'unison-home');
      mkdirSync(home);
      const env = { ...process.env, UNISON: home };
      const ps = mirrors.map((m) =>
        startProcess(
          'unison',
          [caseDir, m, '-repeat', watchMode ? 'watch' : '1', '-batch', '-auto', '-times', '-silent'],
          env,
        ),
      );
      try {
        await waitMirrors();
        await pause(1500); // the first cycle is done once the file is there; let its loop start
        for (const p of ps) if (p.child.exitCode !== null) throw new Error(`unison exited: ${p.output()}`);
      } catch (e) {
        await Promise.all(ps.map((p) => p.stop()));
        throw e;
      }
      return ps;
    },
  };
}

/** 5 KB of text in 80 lines. */
function baseText(): string {
  const lines: string[] = [];
  for (let i = 0; lines.join('').length < 5000 - 64; i++)
    lines.push(`${String(i).padStart(4, '0')} The quick brown fox jumps over the lazy dog.\n`);
  return lines.join('').padEnd(5000, '.').slice(0, 4999) + '\n';
}

/** Watches mirror copies of one file and resolves when each has the expected bytes. */
class ArrivalWatch {
  readonly #files: string[];
  readonly #watchers: FSWatcher[];
  #expected: Buffer = Buffer.alloc(0);
  #arrived: (bigint | undefined)[] = [];
  #late = false;
  #resolve: (() => void) | undefined;
  #poll: NodeJS.Timeout | undefined;

  constructor(mirrors: readonly string[]) {
    this.#files = mirrors.map((m) => join(m, FILE));
    this.#watchers = mirrors.map((m, i) => watch(m, () => this.#check(i, false)));
  }

  #check(i: number, fromPoll: boolean): void {
    if (this.#resolve === undefined || this.#arrived[i] !== undefined) return;
    let content: Buffer;
    try {
      content = readFileSync(this.#files[i]!);
    } catch {
      return;
    }
    if (!content.equals(this.#expected)) return;
    this.#arrived[i] = process.hrtime.bigint();
    if (fromPoll) this.#late = true;
    if (this.#arrived.every((t) => t !== undefined)) {
      const resolve = this.#resolve;
      this.#resolve = undefined;
      clearInterval(this.#poll);
      resolve();
    }
  }

  /** Waits until every mirror holds `expected`; returns each mirror's arrival time, or undefined on timeout. */
  async until(
    expected: Buffer,
    timeoutMs = SAMPLE_TIMEOUT_MS,
  ): Promise<{ arrived: (bigint | undefined)[]; late: boolean; timedOut: boolean }> {
    this.#expected = expected;
    this.#arrived = this.#files.map(() => undefined);
    this.#late = false;
    const done = new Promise<void>((resolve) => (this.#resolve = resolve));
    this.#poll = setInterval(() => this.#files.forEach((_, i) => this.#check(i, true)), 100);
    this.#files.forEach((_, i) => this.#check(i, false)); // already there (readiness checks)
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      done.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), timeoutMs))),
    ]);
    clearTimeout(timer);
    clearInterval(this.#poll);
    this.#resolve = undefined;
    return { arrived: this.#arrived, late: this.#late, timedOut };
  }

  close(): void {
    for (const w of this.#watchers) w.close();
  }
}

/**
 * CPU time used so far by `procs` and their waited-for children (lsyncd's rsync runs), in ms:
 * utime + stime + cutime + cstime of /proc/<pid>/stat (USER_HZ = 100).
 */
function cpuMs(procs: readonly Running[]): number {
  let ticks = 0;
  for (const p of procs) {
    try {
      const stat = readFileSync(`/proc/${p.pid}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
    } catch {
      /* exited */
    }
  }
  return ticks * 10;
}

type Mode = 'in place' | 'temp+rename';
const MODES: readonly Mode[] = ['in place', 'temp+rename'];

/** One measured row. */
interface Row {
  readonly tool: string;
  readonly mode: Mode;
  readonly mirrors: number;
  /** Sorted ms until every mirror had the content. */
  readonly all: number[];
  /** Per mirror, sorted ms. */
  readonly perMirror: number[][];
  readonly late: number;
  /** CPU time (user + system, children included) the tool's processes used per save, ms. */
  readonly cpuPerSave: number;
  readonly timeouts: number;
  /** Names other than the file (and satchel's own `.satchel*`) left on the mirrors after the run. */
  stray: string[];
}

/** Measures one tool with `n` mirrors in a fresh folder under `work`; one row per mode. */
async function measureTool(tool: Tool, work: string, n: number, samples: number): Promise<Row[]> {
  const dir = mkdtempSync(join(work, 'lat-'));
  const caseDir = join(dir, 'case');
  const mirrors = Array.from({ length: n }, (_, i) => join(dir, `m${i + 1}`));
  mkdirSync(caseDir);
  for (const m of mirrors) mkdirSync(m);
  const file = join(caseDir, FILE);
  const base = Buffer.from(baseText());
  writeFileSync(file, base);
  const arrival = new ArrivalWatch(mirrors);
  const rows: Row[] = [];
  let procs: Running[] = [];
  try {
    const ready = async (): Promise<void> => {
      const r = await arrival.until(base, READY_TIMEOUT_MS);
      if (r.timedOut) throw new Error(`${tool.name}: the initial sync did not reach the mirrors`);
    };
    procs = await tool.start(dir, caseDir, mirrors, ready);
    await pause(300);
    for (const mode of MODES) {
      // Reset to 5 KB (not measured), the same way for every tool.
      let current: Buffer = base;
      writeFileSync(`${file}.reset`, current);
      renameSync(`${file}.reset`, file);
      await arrival.until(current);
      await pause(300);
      const cpu0 = cpuMs(procs);
      const all: number[] = [];
      const perMirror: number[][] = mirrors.map(() => []);
      let late = 0;
      let timeouts = 0;
      for (let s = 0; s < samples; s++) {
        let chunk = '';
        for (let l = 0; l < 10; l++) chunk += `sample ${s} line ${l}: appended by the latency bench\n`;
        const added = Buffer.from(chunk);
        current = Buffer.concat([current, added]);
        let t0: bigint;
        if (mode === 'in place') {
          const fd = openSync(file, 'a');
          writeSync(fd, added);
          closeSync(fd);
          t0 = process.hrtime.bigint();
        } else {
          const temp = join(caseDir, `sed${Math.random().toString(36).slice(2, 8)}`);
          writeFileSync(temp, current);
          renameSync(temp, file);
          t0 = process.hrtime.bigint();
        }
        const r = await arrival.until(current);
        if (r.timedOut) {
          timeouts++;
          all.push(Infinity);
        } else {
          all.push(Number(r.arrived.reduce((a, b) => (a! > b! ? a : b))! - t0) / 1e6);
        }
        r.arrived.forEach((t, i) => perMirror[i]!.push(t === undefined ? Infinity : Number(t - t0) / 1e6));
        if (r.late) late++;
        await pause(PAUSE_MS);
      }
      const asc = (a: number, b: number): number => a - b;
      const cpuPerSave = (cpuMs(procs) - cpu0) / samples;
      rows.push({
        tool: tool.name,
        mode,
        mirrors: n,
        all: all.sort(asc),
        perMirror: perMirror.map((p) => p.sort(asc)),
        late,
        timeouts,
        stray: [],
        cpuPerSave,
      });
    }
    await pause(500);
    const stray = mirrors.flatMap((m) =>
      readdirSync(m).filter((name) => name !== FILE && !name.startsWith('.satchel')),
    );
    for (const r of rows) r.stray = stray;
  } finally {
    arrival.close();
    await Promise.all(procs.map((p) => p.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
  return rows;
}

/** Runs the latency benchmark in `work` (a scratch folder) and prints the tables. */
export async function runLatencyBench(
  work: string,
  samples = Number(process.env.SATCHEL_BENCH_SAMPLES ?? 50),
): Promise<void> {
  for (const t of ['lsyncd', 'rsync', 'unison']) {
    if (!have(t))
      throw new Error(`bench: '${t}' is not installed (apt-get install ${t}); it is measured beside satchel`);
  }
  const unisonWatch = have('unison-fsmonitor');
  if (!unisonWatch)
    console.log(
      'note: unison-fsmonitor is not installed (no Debian 12 package has it): unison runs with -repeat 1',
    );
  const tools = [satchelTool(), lsyncdTool(), unisonTool(unisonWatch)];
  const only = (process.env.SATCHEL_BENCH_TOOLS ?? '').split(',').filter((t) => t !== '');
  const rows: Row[] = [];
  const load0 = loadavg()[0]!;
  for (const n of [1, 4]) {
    for (const tool of tools) {
      if (only.length > 0 && !only.some((o) => tool.name.startsWith(o))) continue;
      console.log(`latency: ${tool.name}, ${n} mirror(s), ${samples} samples per mode…`);
      rows.push(...(await measureTool(tool, work, n, samples)));
    }
  }
  console.log(
    `load average (1 min) at start ${load0.toFixed(1)}, at end ${loadavg()[0]!.toFixed(1)}, on ${availableParallelism()} CPUs`,
  );
  const lsyncd = (r: Row): Row | undefined =>
    rows.find((x) => x.tool.startsWith('lsyncd') && x.mode === r.mode && x.mirrors === r.mirrors);
  const ratio = (a: number, b: number | undefined): string =>
    b === undefined || !Number.isFinite(a) || !Number.isFinite(b) ? '-' : `${(a / b).toFixed(2)}×`;
  printTable(
    `Save-to-mirror latency, append 10 lines to a 5 KB file (${samples} samples, ms until every mirror has it)`,
    [
      'tool',
      'mode',
      'mirrors',
      'p50',
      'p95',
      'max',
      'per-mirror p50',
      'p50 vs lsyncd',
      'p95 vs lsyncd',
      'CPU/save',
      'late/lost',
      'stray files',
    ],
    rows.map((r) => {
      const l = lsyncd(r);
      return [
        r.tool,
        r.mode,
        String(r.mirrors),
        ms(percentile(r.all, 50)),
        ms(percentile(r.all, 95)),
        ms(r.all.at(-1)!),
        r.mirrors > 1 ? r.perMirror.map((p) => ms(percentile(p, 50))).join(' / ') : '-',
        ratio(percentile(r.all, 50), l && percentile(l.all, 50)),
        ratio(percentile(r.all, 95), l && percentile(l.all, 95)),
        `${r.cpuPerSave.toFixed(1)} ms`,
        `${r.late}/${r.timeouts}`,
        r.stray.length === 0 ? 'none' : r.stray.slice(0, 3).join(' '),
      ];
    }),
  );
  const targets: string[][] = [];
  for (const r of rows.filter((x) => x.tool.startsWith('satchel'))) {
    const l = lsyncd(r);
    const p50 = percentile(r.all, 50);
    const p95 = percentile(r.all, 95);
    const limit = r.mirrors === 1 ? 50 : 150;
    targets.push([
      r.mode,
      String(r.mirrors),
      l
        ? `${ms(p50)} vs ${ms(percentile(l.all, 50))}: ${p50 <= percentile(l.all, 50) ? 'met' : 'NOT met'}`
        : '-',
      `${ms(p95)} < ${limit}: ${p95 < limit ? 'met' : 'NOT met'}`,
    ]);
  }
  if (targets.length > 0)
    printTable('Targets (issue 3)', ['mode', 'mirrors', 'p50 ≤ lsyncd p50', 'p95 under limit'], targets);
}
