/**
 * @module bench/watch-latency
 * Measures, on this machine, how fast each way of watching reports a save, and what watching
 * a large tree costs. Run by hand: `node dist/bench/watch-latency.js [samples]`.
 *
 * 1. Write-to-callback latency: another process appends a line to a file (in place, as an
 *    editor's save does) and says when its write call began; time until the watcher's callback; p50 and p95 over 200 samples, a short
 *    pause between samples so each is its own event. Backends: Satchel's TreeWatcher over the
 *    inotify addon (events read, resolved and coalesced: the real path), Node's fs.watch on the
 *    folder (not recursive), and @parcel/watcher.
 * 2. Watching 20,000 folders: wall time of start() and the growth of the process's resident
 *    memory, each backend in a fresh child process so the figures do not mix. (Kernel memory
 *    for inotify watches, about 1 KiB each, is not in the process's RSS for any backend.)
 * Timings are reported, never asserted.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TreeWatcher } from '../src/watch/tree-watcher.js';
import { printTable } from './measure.js';

const FOLDERS = 20_000;

/** A watcher under test: start on a folder, call `onChange(path)` for each changed file path, stop. */
interface Subject {
  readonly name: string;
  start(root: string, onChange: (file: string) => void): Promise<() => Promise<void>>;
}

const subjects: Subject[] = [
  {
    name: 'satchel TreeWatcher (inotify addon)',
    async start(root, onChange) {
      const w = new TreeWatcher({
        root,
        backend: 'inotify',
        onHints: (hints) => {
          for (const h of hints) if (h.kind === 'changed' && h.settled) onChange(h.path);
        },
      });
      await w.start();
      return () => w.stop();
    },
  },
  {
    name: 'fs.watch (one folder, not recursive)',
    async start(root, onChange) {
      const w = watch(root, (_event, file) => {
        if (file !== null) onChange(file.toString());
      });
      return async () => w.close();
    },
  },
  {
    name: '@parcel/watcher',
    async start(root, onChange) {
      const parcel = (await import('@parcel/watcher')).default;
      const sub = await parcel.subscribe(root, (_error, events) => {
        for (const e of events) onChange(e.path.slice(root.length + 1));
      });
      return () => sub.unsubscribe();
    },
  },
];

const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Milliseconds from the end of each append to the watcher's callback for that file. The
 * append is made by a separate writer process (as an editor would), which reports the
 * CLOCK_MONOTONIC time its write call began; the callback's time is read on the
 * same clock here, so the figure includes waking this process up.
 */
async function latencies(subject: Subject, work: string, samples: number): Promise<number[]> {
  const root = mkdtempSync(join(work, 'lat-'));
  const file = 'notes.txt';
  writeFileSync(join(root, file), 'x'.repeat(5000));
  let waiting: ((t: bigint) => void) | undefined;
  const stop = await subject.start(root, (changed) => {
    if (changed === file && waiting !== undefined) {
      const resolve = waiting;
      waiting = undefined;
      resolve(process.hrtime.bigint());
    }
  });
  const writer = spawn(
    process.execPath,
    [fileURLToPath(import.meta.url), '--child-writer', join(root, file)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
    },
  );
  const written = createInterface({ input: writer.stdout! })[Symbol.asyncIterator]();
  await pause(200); // let the writer start and a backend settle (parcel's first batch)
  const out: number[] = [];
  try {
    for (let i = 0; i < samples; i++) {
      const seen = new Promise<bigint>((resolve, reject) => {
        waiting = resolve;
        setTimeout(() => reject(new Error(`${subject.name}: no event within 5 s`)), 5000).unref();
      });
      writer.stdin!.write(`line ${i}\n`);
      const t0 = BigInt((await written.next()).value as string);
      const t1 = await seen;
      out.push(Number(t1 - t0) / 1e6);
      await pause(subject.name.startsWith('@parcel') ? 60 : 5);
    }
  } finally {
    writer.stdin!.end();
    await stop();
    rmSync(root, { recursive: true, force: true });
  }
  return out.sort((a, b) => a - b);
}

/** Child process: append each line read from stdin to `file`, then print when the write began. */
function childWriter(file: string): void {
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    // Timed from the start of the write call: the watcher may well wake before it returns.
    const start = process.hrtime.bigint();
    appendFileSync(file, `${line}\n`);
    process.stdout.write(`${start}\n`);
  });
}

/** Child process: watch the tree at `root` with `backend` and print time and RSS growth. */
async function childWatchTree(root: string, backend: string): Promise<void> {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  const t0 = process.hrtime.bigint();
  let stop: () => Promise<void>;
  let watched: number | undefined;
  if (backend === 'fs.watch-recursive') {
    const w = watch(root, { recursive: true }, () => undefined);
    stop = async () => w.close();
  } else {
    const w = new TreeWatcher({ root, backend: backend as 'inotify' | 'parcel', onHints: () => undefined });
    await w.start();
    watched = w.stats().watchedDirs;
    stop = () => w.stop();
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  gc?.();
  await pause(200); // fs.watch recursive lists folders asynchronously
  gc?.();
  const rssMiB = (process.memoryUsage().rss - rss0) / 2 ** 20;
  const heapMiB = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
  await stop();
  process.stdout.write(JSON.stringify({ seconds, rssMiB, heapMiB, watched }) + '\n');
}

/** Runs both measurements in `work` and prints the tables. */
export async function runWatchLatencyBench(work: string, samples = 200): Promise<void> {
  const rows: string[][] = [];
  for (const subject of subjects) {
    const ms = await latencies(subject, work, samples);
    rows.push([
      subject.name,
      `${percentile(ms, 50).toFixed(2)} ms`,
      `${percentile(ms, 95).toFixed(2)} ms`,
      `${ms.at(-1)!.toFixed(2)} ms`,
    ]);
  }
  printTable(
    `Write-to-callback latency, append to a 5 KB file (${samples} samples)`,
    ['watcher', 'p50', 'p95', 'max'],
    rows,
  );

  const tree = join(work, 'tree');
  for (let i = 0; i < FOLDERS / 100; i++) {
    for (let j = 0; j < 99; j++) mkdirSync(join(tree, `d${i}`, `e${j}`), { recursive: true });
  }
  const treeRows: string[][] = [];
  const self = fileURLToPath(import.meta.url);
  for (const backend of ['inotify', 'parcel', 'fs.watch-recursive']) {
    const out = execFileSync(process.execPath, ['--expose-gc', self, '--child-watch', tree, backend], {
      encoding: 'utf8',
    });
    const r = JSON.parse(out.trim().split('\n').at(-1)!) as {
      seconds: number;
      rssMiB: number;
      heapMiB: number;
      watched?: number;
    };
    treeRows.push([
      backend === 'inotify'
        ? 'satchel TreeWatcher (inotify addon)'
        : backend === 'parcel'
          ? '@parcel/watcher'
          : 'fs.watch recursive',
      `${r.seconds.toFixed(3)} s`,
      `+${r.rssMiB.toFixed(1)} MiB`,
      `+${r.heapMiB.toFixed(1)} MiB`,
      r.watched === undefined ? 'n/a' : String(r.watched),
    ]);
  }
  printTable(
    `Watching ${FOLDERS.toLocaleString('en')} folders (fresh process each)`,
    ['watcher', 'start', 'RSS growth', 'JS heap growth', 'watches'],
    treeRows,
  );
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv[2] === '--child-writer') {
    childWriter(process.argv[3]!);
  } else if (process.argv[2] === '--child-watch') {
    await childWatchTree(process.argv[3]!, process.argv[4]!);
  } else {
    const work = mkdtempSync(join(process.env.SATCHEL_BENCH_DIR ?? tmpdir(), 'satchel-watch-bench-'));
    try {
      await runWatchLatencyBench(work, Number(process.argv[2] ?? 200));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
}
