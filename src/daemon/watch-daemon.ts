/**
 * @module daemon/watch-daemon
 * `satchel watch`: live replication. The case is watched with inotify (close-after-write tells
 * when a save is complete); every reported path goes to each mirror's own queue and worker
 * (`mirror-worker.ts`), which reconciles just those paths at once: no timer on the fast path.
 *
 * - Start: take the case lock (one daemon per case), undo locks a crash left, reconcile every
 *   present mirror fully, then follow the watcher.
 * - Files still being written (a modify without a close yet) wait for a quiet period
 *   ({@link WatchDaemonOptions.settleMs}); staging then re-checks size and mtime.
 * - Mirrors: local ones are watched too; network mounts (and mirrors with `poll` set) are
 *   reconciled fully every poll interval. An absent mirror is checked for every second and
 *   reconciled at once when it comes back (a stick plugged in again).
 * - The queue is durable (state store): after a kill, the first full reconciliation ships
 *   whatever was pending, and the case itself is the record of what changed.
 * - SIGTERM: stop taking events, finish the batch in flight, save state, exit 0.
 */
import { statSync } from 'node:fs';
import type { Server } from 'node:net';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPath } from '../core/entry.js';
import { SatchelError } from '../core/errors.js';
import { IGNORE_FILE_NAME, type IgnoreRules } from '../core/ignore-rules.js';
import { decodePath } from '../core/name-encoding.js';
import { isSatchelInternal, STATE_DIR_NAME } from '../core/reserved.js';
import type { Problem } from '../core/problem.js';
import { normalizeScope } from '../core/scope.js';
import { isNetworkFileSystem, mountFsType } from '../mirrors/path/probe.js';
import type { Replica } from '../replica/replica.js';
import { pathsWithInode } from '../state/state-store.js';
import { type WatchHint } from '../watch/coalescer.js';
import { TreeWatcher } from '../watch/tree-watcher.js';
import { pathMirrorAbsence, unknownMirror, type CaseContext } from './case.js';
import { NETWORK_POLL_SECONDS } from './config.js';
import { acquireCaseLock, type CaseLock } from './case-lock.js';
import { withFoldedSiblings } from './case-siblings.js';
import { type ControlRequest, controlSocketPath, serveControl } from './control.js';
import { type EjectReport, ejectReport } from './eject.js';
import { settleConflict } from './resolve.js';
import { type DaemonMirrorState, daemonStatusFile, writeDaemonStatusAsync } from './daemon-status.js';
import { type EventLog, notesFields } from './event-log.js';
import { MirrorWorker, type WorkerHost } from './mirror-worker.js';
import { locateMirror } from './mirror-locate.js';
import { openMirror } from './mirror-replica.js';
import { describeMirrorUrl, parseMirrorUrl } from './mirror-url.js';
import type { Notifier } from './notifier.js';
import { type MirrorReport, scopedHashUpdates, syncPair } from './pair-sync.js';
import {
  caseReplica,
  loadIgnoreRules,
  reconcileMirrors,
  releaseStaleLocks,
  scanReplica,
} from './sync-engine.js';

/** Tunables of the daemon (defaults suit people; tests shorten them). */
export interface WatchDaemonOptions {
  readonly ctx: CaseContext;
  readonly log: EventLog;
  readonly notifier: Notifier;
  /** Quiet period before shipping a file whose writer did not close it yet (ms). */
  readonly settleMs?: number;
  /** How often absent mirrors are looked for (ms). */
  readonly presenceIntervalMs?: number;
  /** Poll interval for mirrors on network mounts without a configured `poll` (s). */
  readonly networkPollSeconds?: number;
  /** Full reconciliation of watched mirrors as a safety net (ms). */
  readonly safetyIntervalMs?: number;
}

/**
 * Deletions in one batch (on a mirror), or in one scoped cycle's plan (either side), from which a
 * full reconciliation, with its mass-delete check, takes over.
 */
const DELETE_ESCALATION = 5;

/**
 * That full reconciliation waits until no path has been queued for this long (`rm -r` of a
 * big folder reports its deletions in many batches: judged batch by batch, each would be a
 * small part of what is left, and most of the folder would go before the halt), but no longer
 * than {@link DELETE_QUIET_MAX_MS} under a steady stream of changes.
 */
const DELETE_QUIET_MS = 1000;
const DELETE_QUIET_MAX_MS = 30_000;

/**
 * How long a path that became absent in the case (deleted, or renamed away) is held before the
 * mirrors are told. Editors that save by moving the old file away (vim and emacs to `x~`,
 * JetBrains to `x___jb_old___`) create the new `x` a moment later: seen within this grace, `x`
 * waits for its writer instead, so the mirror never loses `x` nor receives it half-written.
 */
const REMOVAL_GRACE_MS = 50;

/** Paths held back until their writer is done; one timer for all of them (a rename's two paths stay together). */
interface HeldPaths {
  readonly paths: Set<string>;
  ms: number;
  timer: NodeJS.Timeout | undefined;
}

/** Retry delays for paths that hit a problem: changed under us, or anything else. */
const RETRY_CHANGED_MS = 100;
/** At most this many of a mirror's problems go into daemon.json (for `status`). */
const MAX_PUBLISHED_PROBLEMS = 200;
const RETRY_PROBLEM_MS = [2_000, 10_000, 60_000, 300_000];

interface MirrorWatch {
  readonly mode: 'watching' | 'polling';
  /** Where the mirror is mounted now. */
  readonly root: string;
  readonly pollMs: number;
  watcher?: TreeWatcher;
  timer?: NodeJS.Timeout;
}

/** A full garbage collection, where the runtime allows one. */
function collectGarbage(): void {
  try {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
  } catch {
    // Not allowed here: V8 collects on its own schedule.
  }
}

/** Whether `path` is an existing folder. */
function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/** The live replication daemon of one case. */
export class WatchDaemon implements WorkerHost {
  readonly #ctx: CaseContext;
  readonly #log: EventLog;
  readonly #notifier: Notifier;
  readonly #settleMs: number;
  readonly #presenceMs: number;
  readonly #networkPollMs: number;
  readonly #safetyMs: number;
  readonly #stateDir: string;
  readonly #workers = new Map<string, MirrorWorker>();
  readonly #mirrorWatch = new Map<string, MirrorWatch>();
  readonly #settling = new Map<string, HeldPaths>();
  /** Per `mirror\0path` with a problem: the attempts so far and the message last logged. */
  readonly #retries = new Map<string, { attempts: number; logged: string }>();
  /** Per mirror: changed paths its watcher reported, held until it is quiet (see #settleMirrorPaths). */
  readonly #mirrorSettling = new Map<
    string,
    { readonly paths: Set<string>; timer: NodeJS.Timeout | undefined; readonly deadline: number }
  >();
  /**
   * Case files whose last cycle met a problem (not a change under way), with their size and
   * time then: a hint that finds them as they were (our own lock and unlock of the file,
   * changing only its mode) waits for the scheduled retry instead of retrying at once.
   */
  readonly #problemFiles = new Map<string, string>();
  readonly #timers = new Set<NodeJS.Timeout>();
  #ignore!: IgnoreRules;
  #theCase!: Replica;
  #lock: CaseLock | undefined;
  #caseWatcher: TreeWatcher | undefined;
  #statusTimer: NodeJS.Timeout | undefined;
  #startedAt = Date.now();
  #stopping = false;
  #control: Server | undefined;
  #lastStatusKey: string | undefined;
  #statusWriting = false;
  #fatal!: (error: SatchelError) => void;
  /**
   * Settles when the daemon cannot go on (the case folder was moved or deleted under it): the
   * caller stops it and reports the error.
   */
  readonly fatal = new Promise<SatchelError>((resolve) => (this.#fatal = resolve));

  constructor(options: WatchDaemonOptions) {
    this.#ctx = options.ctx;
    this.#log = options.log;
    this.#notifier = options.notifier;
    this.#settleMs = options.settleMs ?? 200;
    this.#presenceMs = options.presenceIntervalMs ?? 1000;
    this.#networkPollMs = (options.networkPollSeconds ?? NETWORK_POLL_SECONDS) * 1000;
    this.#safetyMs = options.safetyIntervalMs ?? 10 * 60_000;
    this.#stateDir = join(this.#ctx.root, STATE_DIR_NAME);
  }

  /** A worker's cycle threw: the case is gone (fatal), or it is logged and retried later. */
  failed(worker: MirrorWorker, error: unknown): void {
    if (this.#stopping) return;
    if (!isFolder(this.#ctx.root)) {
      const message = `the case folder ${this.#ctx.root} is gone (moved or deleted); watch stops`;
      this.#log.write({ event: 'problem', message });
      this.#fatal(
        new SatchelError('not-a-case', message, {
          hint: 'move it back, or start `satchel watch` again in its new place (nothing was lost: the mirrors were left as they were)',
        }),
      );
      return;
    }
    this.#failed(
      worker,
      error instanceof Error ? error.message : String(error),
      () => worker.requestFull(),
      error instanceof SatchelError ? error.hint : undefined,
    );
    this.changed();
  }

  /** Takes the case lock, reconciles every present mirror, then follows changes. */
  async start(): Promise<void> {
    const ctx = this.#ctx;
    this.#lock = acquireCaseLock(this.#stateDir, 'watching');
    this.#startedAt = Date.now();
    await releaseStaleLocks(ctx);
    this.#ignore = await loadIgnoreRules(ctx.root);
    this.#theCase = caseReplica(ctx);
    for (const [name, config] of Object.entries(ctx.config.mirrors)) {
      const worker = new MirrorWorker(name, config.id, this);
      this.#workers.set(name, worker);
      for (const p of ctx.state.queued(config.id)) worker.pending.add(p);
    }

    this.#caseWatcher = new TreeWatcher({
      root: ctx.root,
      ignore: (path, isDir) => isSatchelInternal(path) || this.#ignore.ignores(path, isDir),
      onHints: (hints) => this.#onCaseHints(hints),
      onLimit: (report) => {
        this.#log.write({
          event: 'watch-limit',
          message: report.message,
          unwatched: report.unwatched.length,
        });
        // The unwatched folders are covered by the periodic full reconciliation.
        for (const w of this.#workers.values()) this.#every(w, 30_000);
      },
      onError: (error) => this.#log.write({ event: 'failed', message: `case watcher: ${error.message}` }),
    });
    await this.#caseWatcher.start();

    // Catch up with everything that changed while no daemon ran (this also ships the durable queue).
    const present = [...this.#workers.keys()];
    const { reports, caseChanged } = await reconcileMirrors(ctx, this.#theCase, present, {
      ignore: this.#ignore,
    });
    for (const r of reports) await this.#afterFull(this.#workers.get(r.mirror)!, r, caseChanged, true);
    // Answering other commands before saying `started`: once started, `sync`, `resolve` and
    // `eject` reach this daemon.
    this.#control = await serveControl(controlSocketPath(this.#stateDir), (request) =>
      this.#onRequest(request),
    );
    this.#log.write({
      event: 'started',
      message: `watching ${ctx.root} (${this.#caseWatcher.backend}) with ${present.length} mirror(s)`,
      pid: process.pid,
    });
    this.#presenceLoop();
    // The first reconciliation allocated snapshots of the whole tree; give that memory back
    // now that the daemon goes idle (V8 would otherwise keep it until more allocation).
    collectGarbage();
    for (const w of this.#workers.values()) w.resume();
    this.changed();
  }

  /** Answers a request from another `satchel` command. */
  async #onRequest(request: ControlRequest): Promise<unknown> {
    if (request.sync !== undefined) return { sync: await this.#syncOnRequest(request.sync) };
    if (request.resolve !== undefined) {
      // The case watcher sees the files change and ships the result like any save.
      const { path, keep, cwd } = request.resolve;
      return { resolved: settleConflict(this.#ctx, path, keep, cwd) };
    }
    if (request.eject === undefined) throw new SatchelError('usage', 'unknown request');
    const worker = this.#workers.get(request.eject);
    if (!worker) throw unknownMirror(this.#ctx, request.eject);
    if (worker.ejected && worker.ejectedRoot !== undefined) {
      // Ejected already and left alone since: still safe to unplug, nothing new to do.
      return {
        ejected: {
          mirror: worker.name,
          state: 'ejected',
          root: worker.ejectedRoot,
          in: 0,
          out: 0,
          conflicts: 0,
          problems: [],
          already: true,
        } satisfies EjectReport,
      };
    }
    await worker.requestFull();
    const report = worker.lastReport;
    const root = this.#mirrorWatch.get(worker.name)?.root;
    if (!report || !root) {
      throw new SatchelError(
        'mirror-absent',
        `${worker.name} is ${worker.state}: ${worker.message ?? ''}`.trim(),
        {
          hint: 'it is not plugged in or not mounted: nothing to eject',
        },
      );
    }
    const ejected = ejectReport(report, root);
    // A stick or share is left alone from now on (saves wait in the queue) until it is
    // unplugged and back, or `satchel sync <mirror>` asks for it: a save just after `eject`
    // must not be half-written when the stick is pulled.
    // (A server is never unplugged: an SFTP or FTP mirror goes on being replicated.)
    const config = this.#ctx.config.mirrors[worker.name];
    if (config !== undefined && parseMirrorUrl(config.url).kind === 'path') {
      worker.ejected = true;
      worker.ejectedRoot = root;
      worker.state = 'absent';
      worker.message = `ejected: safe to unplug (${root}); synced again when it is plugged back in`;
      await this.#dropMirrorWatch(worker);
    }
    this.#log.write({ event: 'ejected', mirror: worker.name, message: `safe to unplug (${root})` });
    this.changed();
    return { ejected };
  }

  /**
   * `satchel sync` run while this daemon holds the case: a full reconciliation of each named
   * mirror (every one when none is named), with the mass-delete halt lifted when asked (which
   * also resumes a halted mirror); the reports in the order asked.
   */
  async #syncOnRequest(request: NonNullable<ControlRequest['sync']>): Promise<MirrorReport[]> {
    const names = request.mirrors.length > 0 ? request.mirrors : [...this.#workers.keys()];
    const unknown = names.filter((n) => !this.#workers.has(n));
    if (unknown.length > 0) throw unknownMirror(this.#ctx, unknown[0]!);
    const workers = names.map((n) => this.#workers.get(n)!);
    // Asked for by name (or all): an ejected mirror that is still plugged in is synced again.
    for (const w of workers) w.ejected = false;
    await Promise.all(workers.map((w) => w.requestFull({ allowMassDelete: request.allowMassDelete })));
    return workers.map(
      (w) =>
        w.lastReport ?? {
          mirror: w.name,
          state: 'failed',
          in: 0,
          out: 0,
          conflicts: [],
          problems: [],
          message: w.message ?? 'no reconciliation finished',
        },
    );
  }

  /** Stops watching, finishes the batch in flight, saves state and releases the case. */
  async stop(): Promise<void> {
    if (this.#stopping) return;
    this.#stopping = true;
    for (const t of this.#timers) clearTimeout(t);
    for (const held of this.#settling.values()) clearTimeout(held.timer);
    for (const held of this.#mirrorSettling.values()) clearTimeout(held.timer);
    if (this.#statusTimer) clearTimeout(this.#statusTimer);
    await new Promise<void>((resolve) => (this.#control ? this.#control.close(() => resolve()) : resolve()));
    await this.#caseWatcher?.stop();
    for (const mw of this.#mirrorWatch.values()) {
      if (mw.timer) clearInterval(mw.timer);
      await mw.watcher?.stop();
    }
    await Promise.all([...this.#workers.values()].map((w) => w.stop()));
    this.#log.write({ event: 'stopped', pid: process.pid });
    try {
      const { unlinkSync } = await import('node:fs');
      unlinkSync(daemonStatusFile(this.#stateDir));
    } catch {
      /* never written */
    }
    this.#lock?.release();
  }

  // ---- events from the case -------------------------------------------------------------

  #onCaseHints(hints: readonly WatchHint[]): void {
    if (this.#stopping) return;
    const ready: string[] = [];
    for (const h of hints) {
      if (h.path === IGNORE_FILE_NAME) void this.#reloadIgnore();
      if (h.kind === 'rescan' && h.path === '') {
        this.#log.write({ event: 'rescan', message: 'events were lost: reconciling everything' });
        for (const w of this.#workers.values()) w.requestFull();
        continue;
      }
      if (h.kind === 'changed' && !h.settled) {
        // Still being written: wait for a close or a quiet period.
        this.#hold([h.path], this.#settleMs);
        continue;
      }
      const from = h.kind === 'renamed' ? h.from : undefined;
      if (h.kind === 'deleted' || (from !== undefined && !this.#replacesKnownFile(h.path))) {
        // A path became absent: an editor may be about to create it again (see REMOVAL_GRACE_MS).
        this.#hold(
          from === undefined ? [h.path] : [from, h.path],
          Math.min(REMOVAL_GRACE_MS, this.#settleMs),
          h.isDir,
        );
        continue;
      }
      if (from === undefined && this.#unchangedProblemFile(h.path)) continue;
      if (h.kind === 'changed') ready.push(...this.#otherLinks(h.path));
      ready.push(...this.#release(h.path));
      if (from !== undefined) ready.push(...this.#release(from));
      if (from !== undefined) ready.push(from);
      ready.push(h.path);
    }
    if (ready.length > 0) this.#dispatch([...new Set(ready)]);
  }

  /** The size and time of case file `path`, or undefined when it is not a file. */
  #fileStamp(path: string): string | undefined {
    try {
      const st = statSync(join(this.#ctx.root, path), { bigint: true });
      return st.isFile() ? `${st.size}:${st.mtimeNs}:${st.ino}` : undefined;
    } catch {
      return undefined;
    }
  }

  /** Whether `path` met a problem last time and is still exactly as it was then (see #problemFiles). */
  #unchangedProblemFile(path: string): boolean {
    const then = this.#problemFiles.get(path);
    return then !== undefined && this.#fileStamp(path) === then;
  }

  /**
   * The case's other names of file `path` when it has hard links: a save through one name
   * changes them all, yet the watcher reports only the name written to.
   */
  #otherLinks(path: string): string[] {
    try {
      const st = statSync(join(this.#ctx.root, path));
      if (!st.isFile() || st.nlink < 2) return [];
      return pathsWithInode(this.#ctx.state.hashCache('case'), st.ino).filter((p) => p !== path);
    } catch {
      return [];
    }
  }

  /** Whether `path` is a case file the daemon already knew (a rename onto it is a save by rename). */
  #replacesKnownFile(path: string): boolean {
    return this.#ctx.state.hashCache('case').get(path) !== undefined;
  }

  /**
   * Holds `paths` (with any held path they touch) until `ms` pass without news of them; a
   * finished write of one of them releases them all at once ({@link #release}). A held folder
   * and held paths below it are one group (`rm -r` reports the folder after its content): were
   * the folder released first, its removal would meet content still held, and fail as not empty.
   */
  #hold(paths: readonly string[], ms: number, folder = false): void {
    const group: HeldPaths = { paths: new Set(paths), ms, timer: undefined };
    const touched = new Set<string>(paths);
    for (const p of paths) {
      for (let dir = parentPath(p); dir !== ''; dir = parentPath(dir))
        if (this.#settling.has(dir)) touched.add(dir);
      if (folder) for (const q of this.#settling.keys()) if (q.startsWith(`${p}/`)) touched.add(q);
    }
    for (const p of touched) {
      const old = this.#settling.get(p);
      if (old === undefined || old === group) continue;
      clearTimeout(old.timer);
      group.ms = Math.max(group.ms, old.ms);
      for (const q of old.paths) group.paths.add(q);
    }
    for (const p of group.paths) this.#settling.set(p, group);
    group.timer = setTimeout(() => this.#dispatch(this.#release([...group.paths][0]!)), group.ms);
  }

  /** Stops holding the group `path` belongs to; returns its paths ([] when not held). */
  #release(path: string): string[] {
    const group = this.#settling.get(path);
    if (group === undefined) return [];
    clearTimeout(group.timer);
    for (const p of group.paths) this.#settling.delete(p);
    return [...group.paths];
  }

  /** Queues case paths for every mirror but `except`. */
  #dispatch(paths: readonly string[], except?: MirrorWorker): void {
    const at = Date.now();
    for (const w of this.#workers.values()) {
      if (w === except) continue;
      this.#ctx.state.enqueue(w.id, paths, at);
      w.add(paths);
    }
  }

  /**
   * Takes the case's new ignore rules, and reconciles every mirror in full: paths a rule no
   * longer leaves out were never shipped by a save (their saves were ignored), so only a full
   * look finds them.
   */
  async #reloadIgnore(): Promise<void> {
    try {
      this.#ignore = await loadIgnoreRules(this.#ctx.root);
    } catch (e) {
      this.#log.write({ event: 'problem', message: `cannot read .satchelignore: ${(e as Error).message}` });
      return;
    }
    if (this.#stopping) return;
    for (const w of this.#workers.values()) void w.requestFull();
  }

  // ---- the worker host ------------------------------------------------------------------

  /** Full reconciliation of one mirror (start, poll, rescan, a mirror coming back). */
  async fullSync(worker: MirrorWorker): Promise<void> {
    if (worker.ejected) return;
    const allowMassDelete = worker.allowMassDelete;
    worker.allowMassDelete = false;
    const { reports, caseChanged } = await reconcileMirrors(this.#ctx, this.#theCase, [worker.name], {
      ignore: this.#ignore,
      allowMassDelete,
    });
    await this.#afterFull(worker, reports[0]!, caseChanged, false);
  }

  async #afterFull(
    worker: MirrorWorker,
    r: MirrorReport,
    caseChanged: ReadonlySet<string>,
    first: boolean,
  ): Promise<void> {
    const was = worker.state;
    worker.lastReport = r;
    if (r.state === 'synced') {
      const mw = await this.#ensureMirrorWatch(worker);
      worker.state = mw?.mode ?? 'watching';
      worker.message = undefined;
      worker.failures = 0;
      worker.lastSyncAt = Date.now();
      const k = r.conflicts.length;
      const counts = `${r.in} in, ${r.out} out, ${k} ${k === 1 ? 'conflict' : 'conflicts'}`;
      if (first || was === 'absent') {
        const at = this.#mirrorWatch.get(worker.name)?.root;
        this.#log.write({
          event: 'present',
          mirror: worker.name,
          message: counts,
          in: r.in,
          out: r.out,
          conflicts: k,
          ...(at ? { root: at } : {}),
        });
        if (!first || r.in + r.out + r.conflicts.length > 0)
          this.#notifier.notify('Satchel', `${worker.name}: ${counts}`);
      } else if (r.in + r.out > 0) {
        // A full cycle (a polled mirror, a retry) reports what came in as a scoped one does.
        if (caseChanged.size > 0) {
          const paths = [...caseChanged].sort();
          this.#log.write({ event: 'incoming', mirror: worker.name, paths });
          this.#notifier.notify('Satchel', `${worker.name}: ${paths.length} change(s) in`);
        }
        if (r.out > 0 || caseChanged.size === 0)
          this.#log.write({ event: 'shipped', mirror: worker.name, message: counts });
      }
      if (r.drift !== undefined && r.drift.length > 0)
        this.#log.write({
          event: 'drift',
          mirror: worker.name,
          paths: r.drift,
          message: "changed on the mirror by someone else; replaced with the case's version",
        });
      this.#reportProblems(worker, r, () => true);
      if (caseChanged.size > 0) this.#dispatch([...caseChanged], worker);
    } else if (r.state === 'absent') {
      worker.state = 'absent';
      worker.message = r.message;
      await this.#dropMirrorWatch(worker);
      if (was !== 'absent' || first)
        this.#log.write({ event: 'absent', mirror: worker.name, message: r.message ?? '' });
    } else if (r.state === 'halted') {
      worker.state = 'halted';
      worker.message = r.message;
      worker.hint = r.hint;
      if (was !== 'halted') {
        this.#log.write({
          event: 'halted',
          mirror: worker.name,
          message: `${r.message ?? ''} (${r.hint ?? ''})`,
        });
        this.#notifier.notify('Satchel: mirror halted', `${worker.name}: ${r.message ?? ''}`);
      }
    } else {
      this.#failed(worker, r.message ?? '', () => worker.requestFull(), r.hint);
    }
    this.changed();
  }

  /**
   * A cycle of `worker` failed with `message` (and what to do about it, `hint`): logged when it
   * first fails or the message changes, and `retry` is run after a pause that grows with each
   * failure in a row.
   */
  #failed(worker: MirrorWorker, message: string, retry: () => unknown, hint?: string): void {
    if (worker.state !== 'failed' || worker.message !== message)
      this.#log.write({ event: 'failed', mirror: worker.name, message });
    worker.state = 'failed';
    worker.message = message;
    worker.hint = hint;
    this.#later(retry, RETRY_PROBLEM_MS[Math.min(worker.failures++, RETRY_PROBLEM_MS.length - 1)]!);
  }

  /** Scoped cycle over the paths a watcher reported. */
  async scopedSync(worker: MirrorWorker, paths: string[]): Promise<void> {
    const ctx = this.#ctx;
    const config = ctx.config.mirrors[worker.name];
    if (config === undefined) return;
    // Paths held back since they were queued (a writer started on them) come with their release.
    paths = paths.filter((p) => !this.#settling.has(p));
    if (paths.length === 0) return;
    const opened = await openMirror(ctx, worker.name);
    if (opened.replica === undefined && opened.absentReport.state === 'failed') {
      // Not missing but unusable (a damaged marker): failed, retried with growing pauses.
      this.#failed(
        worker,
        opened.absentReport.message ?? '',
        () => worker.add(paths),
        opened.absentReport.hint,
      );
      return;
    }
    if (opened.replica === undefined) {
      for (const p of paths) worker.pending.add(p);
      if (worker.state !== 'absent') {
        worker.state = 'absent';
        worker.message = opened.absentReport.message;
        this.#log.write({ event: 'absent', mirror: worker.name, message: opened.absentReport.message ?? '' });
        await this.#dropMirrorWatch(worker);
      }
      return;
    }
    const replica = opened.replica;
    try {
      // Towards a case-insensitive mirror, names that mirror would hold as one come along.
      const scope = replica.capabilities.caseSensitive
        ? normalizeScope(paths)
        : await withFoldedSiblings(ctx.root, paths);
      const scanned = await scanReplica(ctx, this.#theCase, 'case', this.#ignore, scope);
      const mirrorScan = await scanReplica(ctx, replica, `mirror:${worker.id}`, this.#ignore, scope);
      // A writer started on (or removed) a case path while it was scanned (a mirror's change, a
      // retry or a folder brought it into this batch): leave it alone; its release ships it.
      const stillWritten = new Set<Problem>(
        [...new Set([...paths, ...scanned.snapshot.keys()])]
          .filter((p) => this.#settling.has(p))
          .map((p) => ({
            path: p,
            code: 'changed-during-sync' as const,
            message: `${p} is still being written`,
          })),
      );
      const caseScan =
        stillWritten.size === 0 ? scanned : { ...scanned, problems: [...scanned.problems, ...stillWritten] };
      const outcome = await syncPair({
        state: ctx.state,
        mirrorName: worker.name,
        mirrorId: worker.id,
        mirrorCapabilities: replica.capabilities,
        pushOnly: config.pushOnly,
        caseLabel: ctx.hostLabel,
        caseReplica: this.#theCase,
        caseScan,
        mirrorReplica: replica,
        mirrorScan,
        dryRun: false,
        allowMassDelete: true,
        now: Date.now(),
        scope,
        ignore: (path, isDirectory) => this.#ignore.ignores(path, isDirectory),
        escalateDeletesFrom: DELETE_ESCALATION,
      });
      if (outcome.escalate === true) {
        // Many deletions at once (`rm -r`, a branch switch): the whole pair decides, with the
        // mass-delete halt that a scoped view cannot judge, once the deleting is over.
        for (const p of paths) worker.pending.add(p);
        worker.requestFullWhenQuiet(DELETE_QUIET_MS, DELETE_QUIET_MAX_MS);
        return;
      }
      ctx.state.updateHashes('case', scopedHashUpdates(caseScan.snapshot, outcome.caseAfter.hashes));
      const r = { ...outcome.report, problems: outcome.report.problems.filter((p) => !stillWritten.has(p)) };
      if (outcome.mirrorChanged.length > 0)
        this.#log.write({
          event: 'shipped',
          mirror: worker.name,
          paths: outcome.mirrorChanged,
          ...notesFields(outcome.mirrorNotes),
        });
      if (outcome.caseChanged.length > 0) {
        this.#log.write({
          event: 'incoming',
          mirror: worker.name,
          paths: outcome.caseChanged,
          ...notesFields(outcome.caseNotes),
        });
        this.#notifier.notify('Satchel', `${worker.name}: ${outcome.caseChanged.length} change(s) in`);
        this.#dispatch(outcome.caseChanged, worker);
      }
      const covered = new Set(scanned.snapshot.keys());
      for (const p of paths) covered.add(p);
      const retry = this.#reportProblems(worker, r, (p) => covered.has(p));
      ctx.state.dequeue(
        worker.id,
        paths.filter((p) => !retry.has(p) && !this.#settling.has(p)),
      );
      worker.lastSyncAt = Date.now();
      worker.failures = 0;
      if (worker.state === 'failed') worker.state = this.#mirrorWatch.get(worker.name)?.mode ?? 'watching';
    } catch (e) {
      if (e instanceof SatchelError && e.code === 'mirror-absent') {
        for (const p of paths) worker.pending.add(p);
        worker.state = 'absent';
        worker.message = e.message;
        this.#log.write({ event: 'absent', mirror: worker.name, message: e.message });
        await this.#dropMirrorWatch(worker);
      } else {
        // The paths come back after a pause that grows while the trouble lasts (a full disk, a
        // broken database): queued again at once, the worker would retry them in a tight loop.
        this.#failed(
          worker,
          (e as Error).message,
          () => worker.add(paths),
          e instanceof SatchelError ? e.hint : undefined,
        );
      }
    } finally {
      await replica.close();
    }
  }

  /** Logs a report's conflicts and problems; schedules retries; returns the paths retried. */
  /**
   * Logs a cycle's conflicts and problems and schedules each problem path's retry (with
   * backoff). A problem is logged when it first appears or its message changes, not on every
   * retry or poll; a path the cycle `covered` without a problem starts afresh.
   */
  #reportProblems(worker: MirrorWorker, r: MirrorReport, covered: (path: string) => boolean): Set<string> {
    for (const c of r.conflicts) {
      this.#log.write({
        event: 'conflict',
        mirror: worker.name,
        paths: [c.path, c.copyPath],
        message: c.reason,
      });
      this.#notifier.notify('Satchel: conflict', `${c.path}: both versions kept (${c.copyPath})`);
    }
    const retry = new Set<string>();
    for (const p of r.problems) {
      retry.add(p.path);
      worker.problems.set(p.path, p);
      const key = `${worker.name}\0${p.path}`;
      const message = `${p.code}: ${p.message}`;
      const before = this.#retries.get(key);
      const attempt = before?.attempts ?? 0;
      // Logged again only when it says something else, not when only a number moved (free space).
      const gist = message.replace(/\d+(\.\d+)?/g, '#');
      // A change under way (a branch switch, a burst of saves) is retried within 100 ms and
      // nearly always settles: said only when it keeps happening.
      const transient = p.code === 'changed-during-sync' && attempt < 3;
      const log = !transient && before?.logged !== gist;
      this.#retries.set(key, { attempts: attempt + 1, logged: log ? gist : (before?.logged ?? '') });
      const delay =
        p.code === 'changed-during-sync' && attempt < 20
          ? RETRY_CHANGED_MS
          : RETRY_PROBLEM_MS[Math.min(attempt, RETRY_PROBLEM_MS.length - 1)]!;
      if (p.code !== 'changed-during-sync') {
        const stamp = this.#fileStamp(p.path);
        if (stamp !== undefined) this.#problemFiles.set(p.path, stamp);
      }
      if (log) this.#log.write({ event: 'problem', mirror: worker.name, paths: [p.path], message });
      this.#later(() => worker.add([p.path]), delay);
    }
    const prefix = `${worker.name}\0`;
    for (const key of this.#retries.keys()) {
      const path = key.slice(prefix.length);
      if (key.startsWith(prefix) && !retry.has(path) && covered(path)) {
        this.#retries.delete(key);
        this.#problemFiles.delete(path);
      }
    }
    for (const path of worker.problems.keys())
      if (!retry.has(path) && covered(path)) worker.problems.delete(path);
    return retry;
  }

  // ---- mirrors: watching, polling, presence -----------------------------------------------

  async #ensureMirrorWatch(worker: MirrorWorker): Promise<MirrorWatch | undefined> {
    const config = this.#ctx.config.mirrors[worker.name];
    if (config === undefined) return undefined;
    const url = parseMirrorUrl(config.url);
    const root =
      url.kind !== 'path' ? describeMirrorUrl(url) : ((await locateMirror(config))?.root ?? url.root);
    const existing = this.#mirrorWatch.get(worker.name);
    if (existing?.root === root) return existing;
    // Mounted somewhere else now (or first time): watch it there.
    await this.#dropMirrorWatch(worker);
    const fsType = url.kind !== 'path' ? undefined : await mountFsType(root);
    // Nothing reports changes made on an SFTP or FTP server to us: those mirrors are polled.
    const polled = url.kind !== 'path' || config.pollSeconds !== undefined || isNetworkFileSystem(fsType);
    const pollMs = config.pollSeconds !== undefined ? config.pollSeconds * 1000 : this.#networkPollMs;
    const mw: MirrorWatch = { mode: polled ? 'polling' : 'watching', root, pollMs };
    this.#mirrorWatch.set(worker.name, mw);
    if (polled) {
      mw.timer = setInterval(() => worker.requestFull(), pollMs);
      return mw;
    }
    mw.timer = setInterval(() => worker.requestFull(), this.#safetyMs);
    const caps = config.capabilities;
    const watcher = new TreeWatcher({
      root,
      ignore: (path, isDir) => {
        const p = caps ? decodePath(path, caps) : path;
        // An encrypted mirror's names are ciphertext: the case's ignore rules apply once decrypted.
        return isSatchelInternal(p) || (!config.encrypt && this.#ignore.ignores(p, isDir));
      },
      onHints: (hints) => this.#onMirrorHints(worker, hints, caps),
      onError: () => worker.requestFull(),
    });
    try {
      await watcher.start();
      mw.watcher = watcher;
    } catch (e) {
      // Not watchable (yet): poll instead.
      this.#log.write({
        event: 'problem',
        mirror: worker.name,
        message: `cannot watch: ${(e as Error).message}`,
      });
      clearInterval(mw.timer);
      mw.timer = setInterval(() => worker.requestFull(), this.#networkPollMs);
    }
    return mw;
  }

  #onMirrorHints(
    worker: MirrorWorker,
    hints: readonly WatchHint[],
    caps: Parameters<typeof decodePath>[1] | undefined,
  ): void {
    if (this.#stopping) return;
    const decode = (p: string): string => (caps ? decodePath(p, caps) : p);
    if (hints.some((h) => h.kind === 'rescan' && h.path === '')) {
      worker.requestFull();
      return;
    }
    // Many deletions at once on a mirror: let a full reconciliation decide (mass-delete check),
    // once they are over.
    if (hints.filter((h) => h.kind === 'deleted').length >= DELETE_ESCALATION) {
      worker.requestFullWhenQuiet(DELETE_QUIET_MS, DELETE_QUIET_MAX_MS);
      return;
    }
    const paths: string[] = [];
    for (const h of hints) {
      if (h.kind === 'renamed' && h.from !== undefined) paths.push(decode(h.from));
      paths.push(decode(h.path));
    }
    this.#settleMirrorPaths(worker, paths);
  }

  /**
   * Queues a mirror's changed paths once that mirror has been quiet for the settle time (at
   * most 2 s after the first): an editor there saving through a temporary file (write
   * `.doc.tmp`, rename it over `doc`) is then seen as one change of `doc`, not as a new file
   * brought into the case and shipped to every other mirror, then deleted again.
   */
  #settleMirrorPaths(worker: MirrorWorker, paths: readonly string[]): void {
    const queue = (all: readonly string[]): void => {
      if (this.#ctx.config.mirrors[worker.name]?.encrypt === true) void this.#queueStored(worker, all);
      else this.#queueMirrorPaths(worker, all);
    };
    if (this.#settleMs === 0) return queue(paths);
    const flush = (): void => {
      const held = this.#mirrorSettling.get(worker.name);
      this.#mirrorSettling.delete(worker.name);
      if (held !== undefined && !this.#stopping) queue([...held.paths]);
    };
    const held = this.#mirrorSettling.get(worker.name) ?? {
      paths: new Set<string>(),
      timer: undefined,
      deadline: Date.now() + 2000,
    };
    for (const p of paths) held.paths.add(p);
    clearTimeout(held.timer);
    held.timer = setTimeout(flush, Math.max(0, Math.min(this.#settleMs, held.deadline - Date.now())));
    this.#mirrorSettling.set(worker.name, held);
  }

  #queueMirrorPaths(worker: MirrorWorker, paths: readonly string[]): void {
    this.#ctx.state.enqueue(worker.id, paths, Date.now());
    worker.add(paths);
  }

  /**
   * Queues changes an encrypted mirror's watcher reported under stored (encrypted) names, as
   * case paths; a name that does not decrypt (written with another passphrase, damaged) or a
   * mirror that cannot be opened now asks for a full reconciliation, which reports it.
   */
  async #queueStored(worker: MirrorWorker, stored: readonly string[]): Promise<void> {
    try {
      const { replica } = await openMirror(this.#ctx, worker.name);
      if (replica === undefined) return worker.requestFull();
      try {
        const paths = stored.map((p) => replica.casePathOf?.(p));
        if (paths.some((p) => p === undefined)) return worker.requestFull();
        const wanted = (paths as string[]).filter((p) => !this.#ignore.ignores(p, false));
        if (wanted.length > 0) this.#queueMirrorPaths(worker, wanted);
      } finally {
        await replica.close();
      }
    } catch {
      worker.requestFull();
    }
  }

  async #dropMirrorWatch(worker: MirrorWorker): Promise<void> {
    const mw = this.#mirrorWatch.get(worker.name);
    if (!mw) return;
    this.#mirrorWatch.delete(worker.name);
    if (mw.timer) clearInterval(mw.timer);
    await mw.watcher?.stop();
  }

  /** Looks for absent mirrors every second; one that came back is reconciled at once. */
  #presenceLoop(): void {
    this.#later(async () => {
      for (const w of this.#workers.values()) {
        if (w.state !== 'absent' || w.busy) continue;
        const config = this.#ctx.config.mirrors[w.name];
        if (!config) continue;
        try {
          const found = await locateMirror(config);
          // An ejected mirror waits until it has been unplugged, then is like any absent one.
          if (w.ejected) w.ejected = found !== undefined;
          else if (found) w.requestFull();
          else {
            const url = parseMirrorUrl(config.url);
            if (url.kind !== 'path') continue;
            // Still absent: say so anew when another mirror's marker stands where it should be (or
            // no longer does); a stick simply gone keeps its first reason (where it was looked for).
            const why = await pathMirrorAbsence(url.root, config.id);
            const foreign = (m: string | undefined): boolean =>
              m?.includes('belongs to another mirror') ?? false;
            if (why !== '' && why !== w.message && (foreign(why) || foreign(w.message))) {
              w.message = why;
              this.#log.write({ event: 'absent', mirror: w.name, message: why });
              this.changed();
            }
          }
        } catch {
          // Still absent (unreachable, malformed): try again later.
          w.ejected = false;
        }
      }
      if (!this.#stopping) this.#presenceLoop();
    }, this.#presenceMs);
  }

  #every(worker: MirrorWorker, ms: number): void {
    const t = setInterval(() => worker.requestFull(), ms);
    this.#timers.add(t);
  }

  #later(fn: () => unknown, ms: number): void {
    const t = setTimeout(() => {
      this.#timers.delete(t);
      if (!this.#stopping) void fn();
    }, ms);
    this.#timers.add(t);
  }

  // ---- status -----------------------------------------------------------------------------

  /** Schedules a rewrite of the status file (at most every 100 ms). */
  changed(): void {
    if (this.#statusTimer || this.#stopping) return;
    this.#statusTimer = setTimeout(() => {
      this.#statusTimer = undefined;
      this.#writeStatus();
    }, 100);
  }

  #writeStatus(): void {
    if (this.#stopping) return;
    const queued = this.#ctx.state.queueCounts();
    const mirrors: Record<string, DaemonMirrorState> = {};
    for (const w of this.#workers.values()) {
      mirrors[w.name] = {
        state: w.busy && w.state !== 'absent' ? 'syncing' : w.state,
        pending: Math.max(w.pending.size, queued.get(w.id) ?? 0),
        ...(w.lastSyncAt ? { lastSyncAt: w.lastSyncAt } : {}),
        ...(w.message ? { message: w.message } : {}),
        ...(w.hint && (w.state === 'failed' || w.state === 'halted') ? { hint: w.hint } : {}),
        ...(w.problems.size > 0
          ? { problems: [...w.problems.values()].slice(0, MAX_PUBLISHED_PROBLEMS) }
          : {}),
      };
    }
    // Only real changes of state are written (not every save's time), off the event loop.
    const key = JSON.stringify(mirrors, (k, v: unknown) => (k === 'lastSyncAt' ? undefined : v));
    if (key === this.#lastStatusKey || this.#statusWriting) return;
    this.#lastStatusKey = key;
    this.#statusWriting = true;
    writeDaemonStatusAsync(this.#stateDir, {
      pid: process.pid,
      startedAt: this.#startedAt,
      updatedAt: Date.now(),
      backend: this.#caseWatcher?.backend,
      mirrors,
    })
      .catch(() => {
        // A full disk must not stop replication; status shows stale data meanwhile.
        this.#lastStatusKey = undefined;
      })
      .finally(() => {
        this.#statusWriting = false;
        // A change that arrived while writing is written now (an unchanged state is not).
        this.changed();
      });
  }
}
