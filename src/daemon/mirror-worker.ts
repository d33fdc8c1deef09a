/**
 * @module daemon/mirror-worker
 * One mirror's queue and worker inside `satchel watch`: each mirror works through its own set
 * of pending paths, so a slow or absent mirror never delays the others. The worker runs one
 * batch at a time (a scoped pair cycle over every path queued so far, so a rename's two paths
 * are compared together), and a full reconciliation when asked (start, poll, rescan, return of
 * an absent mirror).
 */
import type { Problem } from '../core/problem.js';

/** How long new changes must be quiet before a halted mirror is looked at again (at most the second). */
const HALT_RECHECK_QUIET_MS = 1000;
const HALT_RECHECK_MAX_MS = 30_000;

/** What the worker asks of its daemon. */
export interface WorkerHost {
  /** Full reconciliation of this mirror; returns whether the mirror is present. */
  fullSync(worker: MirrorWorker): Promise<void>;
  /** Scoped cycle over `paths`. */
  scopedSync(worker: MirrorWorker, paths: string[]): Promise<void>;
  /** The worker's state changed (for the status file). */
  changed(): void;
  /** A cycle threw (trouble of the case itself, or a bug): the host decides what follows. */
  failed(worker: MirrorWorker, error: unknown): void;
}

/** The queue and worker of one mirror. */
export class MirrorWorker {
  /** Paths waiting for the next batch. */
  readonly pending = new Set<string>();
  /** Set while the mirror is absent, halted or failing; cleared by a successful cycle. */
  state: 'watching' | 'polling' | 'absent' | 'halted' | 'failed' = 'watching';
  message: string | undefined;
  /** What to do about a halted or failing mirror, when known. */
  hint: string | undefined;
  /** Paths the last cycles could not replicate (until a cycle covering them succeeds), by path. */
  readonly problems = new Map<string, Problem>();
  /** `satchel eject` made it safe to unplug: left alone until it is unplugged (or asked for by `sync`). */
  ejected = false;
  /** The mirror's folder when it was ejected (a second `eject` says it again). */
  ejectedRoot: string | undefined;
  /** Cycles that failed in a row (for the retry's growing pause); 0 after one that did not. */
  failures = 0;
  lastSyncAt: number | undefined;
  /** The report of the last full reconciliation. */
  lastReport: import('./pair-sync.js').MirrorReport | undefined;
  /** The next full reconciliation may delete most of a side (`satchel sync --allow-mass-delete`). */
  allowMassDelete = false;
  #fullRequested = false;
  #fullWaiters: (() => void)[] = [];
  /** A full reconciliation waiting for the queue to be quiet (see {@link requestFullWhenQuiet}). */
  #quiet: { timer: NodeJS.Timeout; quietMs: number; deadline: number } | undefined;
  #running: Promise<void> | undefined;
  #paused = true;
  #stopped = false;

  constructor(
    readonly name: string,
    readonly id: string,
    private readonly host: WorkerHost,
  ) {}

  /** Whether a batch is in flight. */
  get busy(): boolean {
    return this.#running !== undefined;
  }

  /** Queues paths and starts a batch when idle. */
  add(paths: Iterable<string>): void {
    for (const p of paths) this.pending.add(p);
    if (this.#quiet !== undefined) this.#armQuiet(this.#quiet.quietMs, this.#quiet.deadline);
    // A halted mirror looks again once the changes are quiet: the files may be back (moved
    // away and back, a branch switched back), and then the halt is over by itself.
    else if (this.state === 'halted') this.requestFullWhenQuiet(HALT_RECHECK_QUIET_MS, HALT_RECHECK_MAX_MS);
    this.kick();
  }

  /**
   * Asks for a full reconciliation once no path has been queued for `quietMs` (and at most
   * `maxMs` from the first such request); no scoped batch runs meanwhile. Deletions still under
   * way (`rm -r` of a big folder, in the case or on the mirror) are so judged whole by the
   * mass-delete halt, not batch by batch, each one a small part of what is left.
   */
  requestFullWhenQuiet(quietMs: number, maxMs: number): void {
    this.#armQuiet(quietMs, this.#quiet?.deadline ?? Date.now() + maxMs);
  }

  #armQuiet(quietMs: number, deadline: number): void {
    if (this.#quiet !== undefined) clearTimeout(this.#quiet.timer);
    const timer = setTimeout(
      () => {
        this.#quiet = undefined;
        void this.requestFull();
      },
      Math.max(0, Math.min(quietMs, deadline - Date.now())),
    );
    this.#quiet = { timer, quietMs, deadline };
  }

  /**
   * Asks for a full reconciliation (it also covers every pending path); the promise settles
   * when one that started after this call has finished.
   */
  requestFull(options: { readonly allowMassDelete?: boolean } = {}): Promise<void> {
    if (options.allowMassDelete === true) this.allowMassDelete = true;
    this.#fullRequested = true;
    const done = new Promise<void>((resolve) => this.#fullWaiters.push(resolve));
    this.kick();
    return done;
  }

  /** Lets the worker run (it starts paused until the daemon's first reconciliation is done). */
  resume(): void {
    this.#paused = false;
    this.kick();
  }

  /** Starts working when there is work and nothing runs. */
  kick(): void {
    if (this.#running || this.#paused || this.#stopped) return;
    // An absent or halted mirror keeps its paths queued until a full reconciliation is asked for.
    const blocked = this.state === 'absent' || this.state === 'halted' || this.#quiet !== undefined;
    if (!this.#fullRequested && (this.pending.size === 0 || blocked)) return;
    this.#running = this.#loop()
      .catch((error: unknown) => this.host.failed(this, error))
      .finally(() => {
        this.#running = undefined;
        this.host.changed();
        // Work may have arrived while the last batch finished.
        this.kick();
      });
    this.host.changed();
  }

  async #loop(): Promise<void> {
    while (!this.#stopped && (this.#fullRequested || this.pending.size > 0)) {
      if (this.#fullRequested) {
        this.#fullRequested = false;
        this.pending.clear();
        const waiters = this.#fullWaiters;
        this.#fullWaiters = [];
        try {
          await this.host.fullSync(this);
        } finally {
          for (const w of waiters) w();
        }
      } else if (this.state === 'absent' || this.state === 'halted' || this.#quiet !== undefined) {
        // Paths stay queued (and durable) until the mirror is back, or the queue is quiet: the
        // full sync then covers them.
        return;
      } else {
        const batch = [...this.pending];
        this.pending.clear();
        await this.host.scopedSync(this, batch);
      }
    }
  }

  /** Stops taking work and waits for the batch in flight. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#quiet !== undefined) clearTimeout(this.#quiet.timer);
    await this.#running;
    for (const w of this.#fullWaiters.splice(0)) w();
  }
}
