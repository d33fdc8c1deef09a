/**
 * @module bench/memory-bench
 * Resident memory of an idle `satchel watch`, for a case of 10,000 files in 1,000 folders and
 * of 100,000 files in 5,000 folders (100–500 bytes each), with one empty path mirror: the
 * daemon's first reconciliation copies everything before it is measured. A 100-file case
 * gives the baseline (Node, SQLite, the daemon's code).
 *
 * Idle means: `.satchel/daemon.json` says every mirror is `watching` (or `polling`) with
 * `pending: 0`, then 2 s more. Then VmRSS (and the peak, VmHWM) is read from
 * `/proc/<pid>/status` (with RssAnon: the heaps, without mapped code), the inotify watches are
 * counted from `/proc/<pid>/fdinfo`, and the daemon is stopped by PID. Also reported: the time from spawning the daemon to
 * `started — watching` on stderr (first reconciliation done) and to the idle status, and the
 * CPU time the daemon used until idle. Reported, never asserted.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pause, type Running, SATCHEL_BIN, satchelCli, startProcess } from './latency-bench.js';
import { printTable } from './measure.js';

/** Writes `files` files of 100–500 bytes spread evenly over `folders` folders (two levels). */
export function generateSmallTree(root: string, files: number, folders: number): void {
  const noise = randomBytes(1 << 16).toString('base64');
  const dirs: string[] = [];
  const top = Math.max(1, Math.round(Math.sqrt(folders)));
  for (let i = 0; i < folders; i++) {
    const d = join(root, `d${i % top}`, `s${i}`);
    mkdirSync(d, { recursive: true });
    dirs.push(d);
  }
  for (let i = 0; i < files; i++) {
    const size = 100 + ((i * 7919) % 401);
    const at = (i * 104729) % (noise.length - 500);
    writeFileSync(
      join(dirs[i % folders]!, `f${i}.txt`),
      `${i}\n${noise.slice(at, at + size)}`.slice(0, size),
    );
  }
}

/** Reads `Vm*` lines of /proc/<pid>/status in MiB. */
function vm(pid: number): { rss: number; hwm: number; anon: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string): number =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, hwm: kib('VmHWM') / 1024, anon: kib('RssAnon') / 1024 };
}

/** CPU seconds (user + system) the process used so far. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

/** Number of inotify watches the process holds. */
function inotifyWatches(pid: number): number {
  let n = 0;
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:inotify') continue;
      n += readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8')
        .split('\n')
        .filter((l) => l.startsWith('inotify wd:')).length;
    } catch {
      /* closed meanwhile */
    }
  }
  return n;
}

/** Files under `root`, `.satchel*` names excluded. */
function countFiles(root: string): number {
  let n = 0;
  for (const e of readdirSync(root, { withFileTypes: true, recursive: true })) {
    if (e.isFile() && !e.name.startsWith('.satchel')) n++;
  }
  return n;
}

interface DaemonJson {
  readonly mirrors: Record<string, { state: string; pending: number }>;
}

/** Waits until daemon.json says every mirror is idle; returns when. */
async function waitIdle(caseDir: string, daemon: Running, timeoutMs: number): Promise<bigint> {
  const file = join(caseDir, '.satchel', 'daemon.json');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const s = JSON.parse(readFileSync(file, 'utf8')) as DaemonJson;
      const ms = Object.values(s.mirrors);
      if (
        ms.length > 0 &&
        ms.every((m) => (m.state === 'watching' || m.state === 'polling') && m.pending === 0)
      )
        return process.hrtime.bigint();
    } catch {
      /* not written yet, or being replaced */
    }
    if (daemon.child.exitCode !== null)
      throw new Error(`satchel watch exited: ${daemon.output().slice(-2000)}`);
    if (Date.now() > deadline) throw new Error(`satchel watch not idle within ${timeoutMs} ms`);
    await pause(20);
  }
}

/** Runs the memory benchmark in `work` (a scratch folder) and prints the table. */
export async function runMemoryBench(
  work: string,
  sizes: readonly (readonly [files: number, folders: number])[] = [
    [100, 10],
    [10_000, 1_000],
    [100_000, 5_000],
  ],
): Promise<void> {
  const rows: string[][] = [];
  for (const [files, folders] of sizes) {
    const dir = mkdtempSync(join(work, 'mem-'));
    let daemon: Running | undefined;
    try {
      const caseDir = join(dir, 'case');
      const mirror = join(dir, 'mirror');
      console.log(
        `memory: generating ${files.toLocaleString('en')} files in ${folders.toLocaleString('en')} folders…`,
      );
      const g0 = process.hrtime.bigint();
      generateSmallTree(caseDir, files, folders);
      const genSeconds = Number(process.hrtime.bigint() - g0) / 1e9;
      mkdirSync(mirror);
      satchelCli(['init', caseDir]);
      satchelCli(['-C', caseDir, 'mirror', 'add', 'm1', mirror]);
      console.log(`memory: generated in ${genSeconds.toFixed(1)} s; starting satchel watch…`);
      const t0 = process.hrtime.bigint();
      daemon = startProcess(process.execPath, [SATCHEL_BIN, '-C', caseDir, 'watch']);
      await daemon.waitFor(/started — watching/, 1, 30 * 60_000);
      const tStarted = process.hrtime.bigint();
      const tIdle = await waitIdle(caseDir, daemon, 10 * 60_000);
      const cpu = cpuSeconds(daemon.pid);
      await pause(2000);
      const mem = vm(daemon.pid);
      const watches = inotifyWatches(daemon.pid);
      await daemon.stop();
      daemon = undefined;
      const copied = countFiles(mirror);
      rows.push([
        files.toLocaleString('en'),
        folders.toLocaleString('en'),
        `${(Number(tStarted - t0) / 1e9).toFixed(1)} s`,
        `${(Number(tIdle - t0) / 1e9).toFixed(1)} s`,
        `${cpu.toFixed(1)} s`,
        `${mem.rss.toFixed(0)} MiB`,
        `${mem.anon.toFixed(0)} MiB`,
        `${mem.hwm.toFixed(0)} MiB`,
        String(watches),
        copied === files ? 'all' : `${copied} of ${files}`,
      ]);
    } finally {
      // The tree stays until the whole bench ends (see freshDir in tree.ts): deleting it here
      // would slow the next size's file creation.
      await daemon?.stop();
    }
  }
  printTable(
    'satchel watch, one path mirror (empty at start): time to ready and resident memory while idle',
    [
      'files',
      'folders',
      'to started',
      'to idle',
      'CPU to idle',
      'RSS idle',
      'of it anon',
      'peak RSS',
      'inotify watches',
      'on mirror',
    ],
    rows,
  );
}
