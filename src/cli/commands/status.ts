/**
 * @module cli/commands/status
 * `satchel status`: per mirror whether it is present, how many changes are pending (a dry-run
 * plan), when it last synced and with what result, its conflicts and the paths changed on a
 * push-only mirror by someone else (drift); and the locked case files.
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import { STATE_DIR_NAME } from '../../core/reserved.js';
import type { Problem } from '../../core/problem.js';
import { lockHolder, processAlive } from '../../daemon/case-lock.js';
import { type DaemonStatus, readDaemonStatus } from '../../daemon/daemon-status.js';
import { SatchelError, type SatchelErrorCode } from '../../core/errors.js';
import { mirrorPresence, type CaseContext, type MirrorPresence } from '../../daemon/case.js';
import type { MirrorReport } from '../../daemon/sync-engine.js';
import {
  isoTime,
  localTime,
  plural,
  printJson,
  runAction,
  say,
  withCase,
  withJsonOption,
  type Cli,
  type JsonOption,
} from '../output.js';

/** One mirror in `status --json`. */
export interface MirrorStatus {
  readonly name: string;
  readonly url: string;
  readonly present: boolean;
  /** `failed` when the pending changes could not be planned (the message says why). */
  readonly state: 'ok' | 'absent' | 'halted' | 'failed';
  /** Changes a sync would make (in + out), or null when unknown (absent, halted, failed). */
  readonly pending: number | null;
  /** When the last run with this mirror ended, whatever its result (`lastResult`). */
  readonly lastSync: string | null;
  readonly lastResult: string | null;
  /** When the last run that synced ended. */
  readonly lastSynced: string | null;
  /** Unresolved conflicts found with this mirror. */
  readonly conflicts: number;
  /**
   * Paths of a push-only mirror changed there by someone else (drift): those the last sync found
   * and replaced with the case's version, and those on the server now (see `driftPending`).
   */
  readonly drift: readonly string[];
  /** The drifted paths still on the server, which the next sync replaces (from a fresh dry run). */
  readonly driftPending: readonly string[];
  /**
   * Paths a sync would not replicate now, each with its problem (an unreadable file, a name the
   * mirror cannot store …), from the same dry run as `pending`; empty when unknown.
   */
  readonly problems: readonly Problem[];
  readonly message?: string;
  /** What to do about a failed or halted mirror, when known. */
  readonly hint?: string;
  /** For a failed mirror: the stable error code, when there is one (`host-key-changed`, `auth-failed`, …). */
  readonly code?: SatchelErrorCode;
}

/** `status --json`. */
export interface StatusReport {
  readonly case: string;
  readonly name: string;
  readonly mirrors: readonly MirrorStatus[];
  readonly locked: readonly { readonly path: string; readonly since: string | null }[];
  /**
   * Case files a satchel stopped mid-sync (killed, crashed) had left read-only, whose mode this
   * status restored (present when there were any).
   */
  readonly unlocked?: readonly string[];
  readonly conflicts: number;
  /** Present while `satchel watch` runs on the case: it is the source of `pending`. */
  readonly daemon?: {
    readonly pid: number;
    readonly since: string | null;
    readonly backend: string | undefined;
  };
}

/** Plans a dry run for the present mirrors; a case another process holds gives a message instead. */
async function planPending(ctx: CaseContext, names: string[]): Promise<Map<string, MirrorReport> | string> {
  if (names.length === 0) return new Map();
  // Loaded on demand: only the commands that sync pay for the engine and the replicas.
  const { syncCase } = await import('../../daemon/sync-engine.js');
  try {
    const reports = await syncCase(ctx, { dryRun: true, mirrors: names });
    return new Map(reports.map((r) => [r.mirror, r]));
  } catch (e) {
    if (e instanceof SatchelError && e.code === 'case-locked') {
      const holder = lockHolder(join(ctx.root, STATE_DIR_NAME));
      return holder?.purpose === 'watching'
        ? `pending unknown: satchel watch (pid ${holder.pid}) is starting (its first reconciliation is running)`
        : `pending unknown: ${e.message}`;
    }
    throw e;
  }
}

/** The status a running `satchel watch` of this case publishes, if one runs. */
function liveDaemon(ctx: CaseContext): DaemonStatus | undefined {
  const status = readDaemonStatus(join(ctx.root, STATE_DIR_NAME));
  return status !== undefined && processAlive(status.pid) ? status : undefined;
}

/** Per-mirror state from a running daemon, in the shape of a dry-run plan. */
function plansFromDaemon(daemon: DaemonStatus): Map<string, MirrorReport> {
  const plans = new Map<string, MirrorReport>();
  for (const [name, m] of Object.entries(daemon.mirrors)) {
    const state = m.state === 'halted' || m.state === 'failed' ? m.state : 'planned';
    plans.set(name, {
      mirror: name,
      state,
      in: 0,
      out: m.pending,
      conflicts: [],
      problems: m.problems ?? [],
      ...(m.message && state !== 'planned' ? { message: m.message } : {}),
      ...(m.hint && state !== 'planned' ? { hint: m.hint } : {}),
    });
  }
  return plans;
}

/** Gathers the status of the case. */
async function gatherStatus(ctx: CaseContext): Promise<StatusReport> {
  const conflicts = ctx.state.listConflicts();
  const daemon = liveDaemon(ctx);
  // A running daemon knows which mirrors are there: no second connection (nor password prompt).
  // The others are asked all at once: a server that hangs costs one timeout, not one per mirror.
  const presence = new Map<string, MirrorPresence>(
    await Promise.all(
      Object.entries(ctx.config.mirrors).map(async ([name, m]) => {
        const live = daemon?.mirrors[name];
        return [
          name,
          live === undefined
            ? await mirrorPresence(m)
            : { present: live.state !== 'absent', message: live.message ?? 'not there (satchel watch)' },
        ] as const;
      }),
    ),
  );
  const present = [...presence].filter(([, p]) => p.present).map(([name]) => name);
  // Without a daemon, a lock on record is one a stopped satchel left: the dry run undoes it.
  const leftLocked = daemon ? [] : ctx.state.listLocks().map((l) => l.path);
  const plans = daemon ? plansFromDaemon(daemon) : await planPending(ctx, present);
  const stillLocked = new Set(ctx.state.listLocks().map((l) => l.path));
  const unlocked = leftLocked.filter((p) => !stillLocked.has(p));
  const mirrors = Object.entries(ctx.config.mirrors).map(([name, m]): MirrorStatus => {
    const stored = ctx.state.getMirrorStatus(name);
    const p = presence.get(name)!;
    const plan = typeof plans === 'string' ? undefined : plans.get(name);
    const driftPending = p.present ? [...(plan?.drift ?? [])] : [];
    const drift = [...new Set([...(stored?.drift ?? []), ...driftPending])].sort();
    // Records from before lastSyncedAt existed: their time counts only when they synced.
    const storedSynced =
      stored?.lastSyncedAt ?? (stored?.lastResult === 'synced' ? stored.lastSyncAt : undefined);
    // A running daemon's last shipped batch counts too (the store has its full reconciliations only).
    const live = daemon?.mirrors[name];
    const liveSynced =
      live?.lastSyncAt !== undefined &&
      live.state !== 'failed' &&
      live.state !== 'halted' &&
      live.state !== 'absent'
        ? live.lastSyncAt
        : undefined;
    const newer = liveSynced !== undefined && liveSynced > (stored?.lastSyncAt ?? 0);
    const base = {
      name,
      url: m.url,
      present: p.present,
      lastSync: isoTime(newer ? liveSynced : stored?.lastSyncAt),
      lastResult: newer ? 'synced' : (stored?.lastResult ?? null),
      lastSynced: isoTime(newer ? liveSynced : storedSynced),
      conflicts: conflicts.filter((c) => c.mirror === name).length,
      drift,
      driftPending,
      problems: p.present ? [...(plan?.problems ?? [])] : [],
    };
    if (!p.present)
      return {
        ...base,
        state: p.damaged ? 'failed' : 'absent',
        pending: null,
        message: p.message,
        ...(p.hint !== undefined ? { hint: p.hint } : {}),
        ...(p.damaged && p.code !== undefined ? { code: p.code } : {}),
      };
    if (typeof plans === 'string') return { ...base, state: 'ok', pending: null, message: plans };
    if (plan === undefined || plan.state === 'planned' || plan.state === 'synced') {
      return { ...base, state: 'ok', pending: plan === undefined ? null : plan.in + plan.out };
    }
    const state = plan.state === 'failed' ? 'failed' : plan.state;
    return {
      ...base,
      state,
      pending: null,
      ...(plan.message ? { message: plan.message } : {}),
      ...(plan.hint ? { hint: plan.hint } : {}),
      ...(state === 'failed' && plan.code !== undefined ? { code: plan.code } : {}),
    };
  });
  return {
    case: ctx.root,
    name: ctx.config.name,
    ...(daemon
      ? { daemon: { pid: daemon.pid, since: isoTime(daemon.startedAt), backend: daemon.backend } }
      : {}),
    mirrors,
    locked: ctx.state.listLocks().map((l) => ({ path: l.path, since: isoTime(l.since) })),
    ...(unlocked.length > 0 ? { unlocked } : {}),
    conflicts: conflicts.length,
  };
}

/** One line about a mirror for people. */
function mirrorLine(m: MirrorStatus): string {
  // Only a run that synced is called a sync; another result says when it was tried.
  const at = (iso: string): string => localTime(Date.parse(iso));
  const synced = m.lastSynced === null ? 'never synced' : `last sync ${at(m.lastSynced)}`;
  const last =
    m.lastSync === null
      ? 'never synced'
      : m.lastResult === 'synced'
        ? `${synced} (synced)`
        : `${synced}, last tried ${at(m.lastSync)} (${m.lastResult})`;
  const conflicts = m.conflicts > 0 ? `, ${plural(m.conflicts, 'conflict')}` : '';
  switch (m.state) {
    case 'ok': {
      const pending =
        m.pending === null
          ? (m.message ?? 'pending unknown')
          : m.pending === 0
            ? 'up to date'
            : `${m.pending} pending`;
      const problems = m.problems.length > 0 ? ` (${plural(m.problems.length, 'path')} with a problem)` : '';
      return `  ${m.name}: present — ${pending}${problems}, ${last}${conflicts}`;
    }
    case 'absent':
      // A message that is a sentence already ends with its own stop: no second mark after it.
      return `  ${m.name}: absent — ${(m.message ?? '').replace(/\.$/, '')}; ${last}${conflicts}`;
    case 'halted':
      return `  ${m.name}: HALTED — ${(m.message ?? '').replace(/\.$/, '')}${conflicts}`;
    case 'failed':
      return `  ${m.name}: FAILED — ${(m.message ?? '').replace(/\.$/, '')}${conflicts}`;
  }
}

/** One drifted path of a mirror for people. */
function driftLine(m: MirrorStatus, path: string): string {
  const what = m.driftPending.includes(path)
    ? "the next sync replaces it with the case's version"
    : "replaced with the case's version by the last sync that found drift";
  return `    ~ ${path}: changed on the mirror (drift); ${what}`;
}

/** Registers `status` on `program`. */
export function registerStatus(program: Command, cli: Cli): void {
  withJsonOption(
    program
      .command('status')
      .description('per mirror: present/absent, pending, last sync, conflicts; locked files'),
  ).action((options: JsonOption) =>
    runAction(options, () =>
      withCase(cli, async (ctx) => {
        const status = await gatherStatus(ctx);
        if (options.json) return printJson(status);
        say(`case "${status.name}" at ${status.case}`);
        if (status.daemon)
          say(`  watched live by satchel watch (pid ${status.daemon.pid}, ${status.daemon.backend})`);
        if (status.mirrors.length === 0)
          say('  no mirrors yet: add one with `satchel mirror add <name> <path>`');
        for (const m of status.mirrors) {
          say(mirrorLine(m));
          for (const path of m.drift) say(driftLine(m, path));
          for (const problem of m.problems) say(`    ! ${problem.path}: ${problem.message}`);
          if (m.hint !== undefined) say(`    hint: ${m.hint}`);
        }
        if (status.unlocked !== undefined)
          say(
            `unlocked (left read-only by a satchel stopped mid-sync, its permissions restored): ${status.unlocked.join(', ')}`,
          );
        if (status.locked.length > 0) {
          say(`locked (incoming change pending): ${status.locked.map((l) => l.path).join(', ')}`);
        }
        if (status.conflicts > 0) say(`${plural(status.conflicts, 'conflict')}: see \`satchel conflicts\``);
      }),
    ),
  );
}
