/**
 * @module daemon/sync-engine
 * One-shot synchronization of a case with its mirrors (`satchel sync`, `status`'s pending count).
 *
 * The case is the hub: it is scanned once, then each present mirror is reconciled with it in
 * turn, the case's state carried from one pair to the next. When a mirror brought changes into
 * the case, the mirrors handled before it are visited again, so an edit made on mirror A reaches
 * mirror B in the same run (star topology).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { POSIX_CAPABILITIES } from '../core/capabilities.js';
import { SatchelError } from '../core/errors.js';
import { IGNORE_FILE_NAME, IgnoreRules } from '../core/ignore-rules.js';
import { STATE_DIR_NAME } from '../core/reserved.js';
import { PathReplica } from '../mirrors/path/path-replica.js';
import type { Replica, ScanResult } from '../replica/replica.js';
import { unknownMirror, type CaseContext } from './case.js';
import { acquireCaseLock } from './case-lock.js';
import { type OpenedMirror, openMirror } from './mirror-replica.js';
import { type MirrorReport, syncPair } from './pair-sync.js';

export type { MirrorReport, PlannedOperation } from './pair-sync.js';

/** Options of {@link syncCase}. */
export interface SyncOptions {
  /** Only these mirrors (by name); all configured mirrors when absent or empty. */
  readonly mirrors?: readonly string[];
  /** Plan only: change nothing, report what would be done. */
  readonly dryRun?: boolean;
  /** Let a sync go on that would delete more than half of a side's files. */
  readonly allowMassDelete?: boolean;
}

/** Files whose mtime is this recent are re-hashed even when size and mtime match the cache. */
const RACY_WINDOW_MS = 2000;

/** Reads the case's `.satchelignore` into ignore rules (defaults included). */
export async function loadIgnoreRules(caseRoot: string): Promise<IgnoreRules> {
  let text: string | undefined;
  try {
    text = await readFile(join(caseRoot, IGNORE_FILE_NAME), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  return IgnoreRules.fromText(text);
}

/** The case folder as a replica, with locks journaled in the state store. */
export function caseReplica(ctx: CaseContext): Replica {
  return new PathReplica({
    root: ctx.root,
    // Messages say "the case" (the host's name is for conflict copy names only).
    label: 'the case',
    capabilities: POSIX_CAPABILITIES,
    role: 'case',
    locks: {
      locked: (path, mode) => ctx.state.addLock(path, mode, Date.now()),
      unlocked: (path) => ctx.state.removeLock(path),
    },
  });
}

/** Restores the mode of case files a crashed process left locked (read-only). */
export async function releaseStaleLocks(ctx: CaseContext): Promise<void> {
  const { chmod, lstat } = await import('node:fs/promises');
  for (const lock of ctx.state.listLocks()) {
    try {
      const st = await lstat(join(ctx.root, lock.path));
      if (st.isFile() && (st.mode & 0o7777) !== lock.mode && (st.mode & 0o222) === 0)
        await chmod(join(ctx.root, lock.path), lock.mode);
    } catch {
      /* the file is gone: nothing to restore */
    }
    ctx.state.removeLock(lock.path);
  }
}

export function selectMirrors(ctx: CaseContext, names: readonly string[] | undefined): string[] {
  const configured = Object.keys(ctx.config.mirrors);
  if (!names || names.length === 0) return configured;
  for (const name of names) {
    if (!configured.includes(name)) throw unknownMirror(ctx, name);
  }
  return [...new Set(names)];
}

function mergeReports(a: MirrorReport | undefined, b: MirrorReport): MirrorReport {
  if (a === undefined) return b;
  return {
    ...b,
    in: a.in + b.in,
    out: a.out + b.out,
    conflicts: [...a.conflicts, ...b.conflicts],
    problems: b.problems,
    ...(a.drift || b.drift ? { drift: [...new Set([...(a.drift ?? []), ...(b.drift ?? [])])] } : {}),
  };
}

function failureReport(name: string, e: unknown): MirrorReport {
  const err = e instanceof SatchelError ? e : undefined;
  const absent = err?.code === 'mirror-absent';
  return {
    mirror: name,
    state: absent ? 'absent' : 'failed',
    in: 0,
    out: 0,
    conflicts: [],
    problems: [],
    message: e instanceof Error ? e.message : String(e),
    ...(err?.hint ? { hint: err.hint } : {}),
    ...(err !== undefined && !absent ? { code: err.code } : {}),
  };
}

/** Scans `replica` with the case's ignore rules and the replica's hash cache. */
export function scanReplica(
  ctx: CaseContext,
  replica: Replica,
  cacheKey: string,
  ignore: IgnoreRules,
  scope?: readonly string[],
): Promise<ScanResult> {
  return replica.scan({
    cache: ctx.state.hashCache(cacheKey),
    ignore: (path, isDirectory) => ignore.ignores(path, isDirectory),
    recentAfterMs: Date.now() - RACY_WINDOW_MS,
    ...(scope === undefined ? {} : { scope }),
  });
}

/** Records what a sync did, per mirror, for `status`. */
export function recordStatus(ctx: CaseContext, reports: Iterable<MirrorReport>, at: number): void {
  for (const r of reports) {
    if (r.state === 'planned') continue;
    const before = ctx.state.getMirrorStatus(r.mirror);
    const syncedAt = r.state === 'synced' ? at : before?.lastSyncedAt;
    // The drift a run replaced stays on record until a later run finds drift again: under
    // `watch` the next poll, seconds later, finds none and would wipe it before anyone looked.
    const drift = r.drift !== undefined && r.drift.length > 0 ? r.drift : before?.drift;
    ctx.state.setMirrorStatus(r.mirror, {
      lastSyncAt: at,
      ...(syncedAt === undefined ? {} : { lastSyncedAt: syncedAt }),
      lastResult: r.state,
      ...(r.message ? { message: r.message } : {}),
      in: r.in,
      out: r.out,
      problems: r.problems.length,
      ...(drift !== undefined && drift.length > 0 ? { drift } : {}),
      ...(r.state === 'halted' && r.message ? { halted: r.message } : {}),
    });
  }
}

/**
 * Opens the named mirrors one after another (a passphrase prompt never interleaves with
 * another); stops at the first that throws, returning those opened so far (to be closed).
 */
async function openInTurn(
  ctx: CaseContext,
  names: readonly string[],
): Promise<{ mirrors: OpenedMirror[]; failure?: unknown }> {
  const mirrors: OpenedMirror[] = [];
  for (const name of names) {
    try {
      mirrors.push(await openMirror(ctx, name));
    } catch (failure) {
      return { mirrors, failure };
    }
  }
  return { mirrors };
}

/**
 * Full reconciliation of the case with the named mirrors, by a caller that holds the case
 * lock (`satchel sync`, and `satchel watch` at start and on every poll). `theCase` is the case
 * replica (shared, so that concurrent work on it never mistakes a live staged file for debris).
 */
export async function reconcileMirrors(
  ctx: CaseContext,
  theCase: Replica,
  names: readonly string[],
  options: SyncOptions & { readonly ignore: IgnoreRules },
): Promise<{ reports: MirrorReport[]; caseChanged: Set<string> }> {
  const caseChanged = new Set<string>();
  // The mirrors are opened (connections, markers, passphrases: one after another) while the
  // case is scanned, so an SSH handshake or a stick lookup overlaps the case's hashing.
  const [scanned, opening] = await Promise.allSettled([
    scanReplica(ctx, theCase, 'case', options.ignore),
    openInTurn(ctx, names),
  ]);
  const all = opening.status === 'fulfilled' ? opening.value.mirrors : [];
  const opened = all.filter((m) => m.replica !== undefined);
  try {
    if (scanned.status === 'rejected') throw scanned.reason;
    if (opening.status === 'rejected') throw opening.reason;
    if (opening.value.failure !== undefined) throw opening.value.failure;
    let caseNow = scanned.value;
    let ignore = options.ignore;
    let rulesReloaded = false;
    const reports = new Map<string, MirrorReport>();
    for (const m of all) if (m.replica === undefined) reports.set(m.name, m.absentReport);

    // Rounds: a mirror visited before another mirror changed the case is visited again.
    let pending = opened;
    for (let round = 0; round < 4 && pending.length > 0; round++) {
      let lastChange = -1;
      for (let i = 0; i < pending.length; i++) {
        const m = pending[i]!;
        const replica = m.replica!;
        let report: MirrorReport;
        try {
          const mirrorScan = await scanReplica(ctx, replica, `mirror:${m.id}`, ignore);
          const outcome = await syncPair({
            state: ctx.state,
            mirrorName: m.name,
            mirrorId: m.id,
            mirrorCapabilities: replica.capabilities,
            pushOnly: m.pushOnly,
            caseLabel: ctx.hostLabel,
            caseReplica: theCase,
            caseScan: caseNow,
            mirrorReplica: replica,
            mirrorScan,
            dryRun: options.dryRun === true,
            allowMassDelete: options.allowMassDelete === true,
            now: Date.now(),
            ignore: (path, isDirectory) => ignore.ignores(path, isDirectory),
          });
          report = outcome.report;
          for (const p of outcome.caseChanged) caseChanged.add(p);
          if (report.state === 'synced' && report.in > 0) {
            caseNow = outcome.caseAfter;
            lastChange = i;
          }
          if (!rulesReloaded && !options.dryRun && outcome.caseChanged.includes(IGNORE_FILE_NAME)) {
            // The mirror brought new ignore rules: the case is seen through them from the next
            // mirror on, and those visited before are visited again.
            rulesReloaded = true;
            ignore = await loadIgnoreRules(ctx.root);
            caseNow = await scanReplica(ctx, theCase, 'case', ignore);
          }
          if (report.state === 'synced' && !options.dryRun) ctx.state.dequeue(m.id);
        } catch (e) {
          report = failureReport(m.name, e);
        }
        reports.set(m.name, mergeReports(reports.get(m.name), report));
      }
      if (!options.dryRun) ctx.state.storeHashes('case', caseNow.hashes);
      pending = pending
        .slice(0, Math.max(lastChange, 0))
        .filter((m) => reports.get(m.name)?.state === 'synced');
    }
    if (!options.dryRun) {
      // A conflict copy the user deleted by hand settles its conflict (the version at the path stays).
      if (scanned.status === 'fulfilled') ctx.state.pruneConflicts((copy) => caseNow.snapshot.has(copy));
      recordStatus(ctx, reports.values(), Date.now());
    }
    return { reports: names.map((n) => reports.get(n)!), caseChanged };
  } finally {
    for (const m of opened) await m.replica?.close();
  }
}

/**
 * Reconciles the case with every selected mirror that is present and reports per mirror.
 * Throws only for problems of the case itself (locked by another process, unreadable).
 */
export async function syncCase(ctx: CaseContext, options: SyncOptions = {}): Promise<MirrorReport[]> {
  const names = selectMirrors(ctx, options.mirrors);
  const lock = acquireCaseLock(join(ctx.root, STATE_DIR_NAME), options.dryRun ? 'planning' : 'syncing');
  try {
    await releaseStaleLocks(ctx);
    const ignore = await loadIgnoreRules(ctx.root);
    return (await reconcileMirrors(ctx, caseReplica(ctx), names, { ...options, ignore })).reports;
  } finally {
    lock.release();
  }
}
