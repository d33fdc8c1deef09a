/**
 * @module daemon/pair-sync
 * One synchronization cycle of a (case, mirror) pair, given both scans:
 * reconcile → safety check → stage on both sides → commit on both sides → record the ancestor.
 *
 * Order matters for safety: both sides stage (read every content source) before either side
 * commits, so a conflict's losing version is read before it is renamed away; the ancestor is
 * written only after both commits returned, i.e. after the changes it records are durable.
 */
import type { Capabilities } from '../core/capabilities.js';
import type { SatchelErrorCode } from '../core/errors.js';
import { comparePaths, parentPath, sameEntry, type Entry, type Snapshot } from '../core/entry.js';
import { inScope } from '../core/scope.js';
import type { Conflict, Operation, PairPlan } from '../core/plan.js';
import type { Problem } from '../core/problem.js';
import { reconcile } from '../core/reconcile.js';
import { checkMassDelete, mostDeletes } from '../core/safety.js';
import { ancestorUpdates, applyOperations, mirrorView } from '../core/snapshot-ops.js';
import type { CachedHash, OperationResult, PreparedApply, Replica, ScanResult } from '../replica/replica.js';
import type { Intent, StateStore } from '../state/state-store.js';

/** One operation of a dry run, for display. */
export interface PlannedOperation {
  readonly side: 'case' | 'mirror';
  readonly type: Operation['type'];
  readonly path: string;
  /** For renames: the old path. For writes: where the content comes from, when not the same path. */
  readonly from?: string;
}

/** What happened (or would happen, in a dry run) between the case and one mirror. */
export interface MirrorReport {
  readonly mirror: string;
  readonly state: 'synced' | 'planned' | 'absent' | 'halted' | 'failed';
  /** Changes applied to (or planned for) the case from this mirror. */
  readonly in: number;
  /** Changes applied to (or planned for) the mirror. */
  readonly out: number;
  readonly conflicts: readonly Conflict[];
  readonly problems: readonly Problem[];
  /**
   * Paths of a push-only mirror changed there by someone else (drift), found by this cycle's
   * scan: the case's version replaces them (or, in a dry run, would). Present for push-only
   * mirrors that were scanned.
   */
  readonly drift?: readonly string[];
  /**
   * For a failed mirror, the stable error code when there is one (`auth-failed`,
   * `host-key-changed`, `config-invalid` for a damaged marker or a wrong passphrase, …).
   */
  readonly code?: SatchelErrorCode;
  /** For absent, halted and failed mirrors: one line saying why. */
  readonly message?: string;
  /** What the user can do about it. */
  readonly hint?: string;
  /** Only in dry runs: the planned operations. */
  readonly operations?: readonly PlannedOperation[];
  /**
   * Files of the mirror that could not be read because they are damaged (an encrypted file that
   * fails authentication), which the case's version replaces (or its deletion removes) in this
   * run; absent when none.
   */
  readonly damaged?: readonly string[];
}

/** Everything one pair cycle needs. */
export interface PairInput {
  readonly state: StateStore;
  readonly mirrorName: string;
  readonly mirrorId: string;
  readonly mirrorCapabilities: Capabilities;
  readonly pushOnly: boolean;
  readonly caseLabel: string;
  readonly caseReplica: Replica;
  readonly caseScan: ScanResult;
  readonly mirrorReplica: Replica;
  readonly mirrorScan: ScanResult;
  readonly dryRun: boolean;
  readonly allowMassDelete: boolean;
  readonly now: number;
  /**
   * A scoped cycle (the daemon's fast path): both scans cover only these paths (see
   * core/scope.ts), so only this part of the ancestor and the hash caches is read and written.
   */
  readonly scope?: readonly string[];
  /**
   * The case's ignore rules (the scans left these paths out). An ignored path's ancestor entry
   * is kept as it is, so that taking the rule away later finds the last agreement, not two
   * unrelated versions (a false conflict).
   */
  readonly ignore?: (path: string, isDirectory: boolean) => boolean;
  /**
   * A scoped cycle whose plan deletes this many files or more on a side is not applied: the
   * outcome says `escalate`, and the caller reconciles the whole pair instead, where the
   * mass-delete halt sees the whole tree (`rm -r` of a big folder under `satchel watch`).
   */
  readonly escalateDeletesFrom?: number;
}

/** The result of a pair cycle: the report, and the case as it stands afterwards. */
export interface PairOutcome {
  readonly report: MirrorReport;
  /** The case after this cycle (scan of the case for the next pair). */
  readonly caseAfter: ScanResult;
  /** Case paths this cycle changed (written, created, removed, renamed from or to). */
  readonly caseChanged: readonly string[];
  /** Mirror paths this cycle changed. */
  readonly mirrorChanged: readonly string[];
  /** Which of the changes on each side were deletions and renames (for the daemon's log). */
  readonly caseNotes?: ChangeNotes;
  readonly mirrorNotes?: ChangeNotes;
  /** Nothing was applied: the plan deletes too much for a scoped cycle (see `escalateDeletesFrom`). */
  readonly escalate?: true;
}

function describe(side: 'case' | 'mirror', op: Operation): PlannedOperation {
  if (op.type === 'rename') return { side, type: op.type, path: op.to, from: op.from };
  if (op.type === 'write' && op.from.path !== op.path)
    return { side, type: op.type, path: op.path, from: op.from.path };
  return { side, type: op.type, path: op.path };
}

/** Hash-cache entries for the files of `after`, reusing the scan's (with inode) where unchanged. */
export function hashesAfter(scan: ReadonlyMap<string, CachedHash>, after: Snapshot): Map<string, CachedHash> {
  const out = new Map<string, CachedHash>();
  for (const [path, e] of after) {
    if (e.kind !== 'file') continue;
    const h = scan.get(path);
    out.set(
      path,
      h && h.hash === e.hash && h.size === e.size && h.mtimeMs === e.mtimeMs
        ? h
        : { size: e.size, mtimeMs: e.mtimeMs, hash: e.hash },
    );
  }
  return out;
}

/** Hash-cache changes of a scoped cycle: the files after it, and the paths no longer files. */
export function scopedHashUpdates(
  before: Snapshot,
  after: ReadonlyMap<string, CachedHash>,
): Map<string, CachedHash | undefined> {
  const updates = new Map<string, CachedHash | undefined>(after);
  for (const path of before.keys()) if (!after.has(path)) updates.set(path, undefined);
  return updates;
}

/** Paths changed by the successful operations. */

/** Which of a side's applied changes were deletions and renames (the rest are writes). */
export interface ChangeNotes {
  /** Paths removed. */
  readonly deleted: readonly string[];
  /** Renames, as [from, to]. */
  readonly renamed: readonly (readonly [string, string])[];
}

/** The paths a side's applied operations changed (renames: both names), and which were deletions and renames. */
function sideChanges(
  ops: readonly Operation[],
  results: readonly OperationResult[],
): { readonly changed: string[]; readonly notes: ChangeNotes } {
  const changed: string[] = [];
  const deleted: string[] = [];
  const renamed: [string, string][] = [];
  ops.forEach((op, i) => {
    if (!results[i]?.ok) return;
    if (op.type === 'rename') {
      changed.push(op.from, op.to);
      renamed.push([op.from, op.to]);
      return;
    }
    changed.push(op.path);
    if (op.type === 'remove') deleted.push(op.path);
  });
  return { changed, notes: { deleted, renamed } };
}

function problemsOf(results: readonly OperationResult[]): Problem[] {
  const out: Problem[] = [];
  for (const r of results) if (!r.ok) out.push(r.problem);
  return out;
}

function frozenPaths(...problemLists: (readonly Problem[])[]): Set<string> {
  const frozen = new Set<string>();
  for (const list of problemLists) for (const p of list) frozen.add(p.path);
  return frozen;
}

function okCount(results: readonly OperationResult[]): number {
  return results.filter((r) => r.ok).length;
}

function storedOf(results: readonly OperationResult[]): (i: number) => Entry | undefined {
  return (i) => {
    const r = results[i];
    return r?.ok ? r.stored : undefined;
  };
}

async function stageBoth(input: PairInput, plan: PairPlan): Promise<[PreparedApply, PreparedApply]> {
  const mirrorSide = await input.mirrorReplica.prepare(plan.mirrorOps, input.caseReplica.content);
  try {
    const caseSide = await input.caseReplica.prepare(plan.caseOps, input.mirrorReplica.content);
    return [mirrorSide, caseSide];
  } catch (e) {
    await mirrorSide.abort();
    throw e;
  }
}

/** The file writes and renames of `plan` on either side, as intents to record before the commits. */
function planIntents(plan: PairPlan): Intent[] {
  const intents: Intent[] = [];
  for (const [side, ops] of [
    ['mirror', plan.mirrorOps],
    ['case', plan.caseOps],
  ] as const) {
    for (const op of ops) {
      if (op.type === 'write') intents.push({ side, path: op.path, entry: op.entry });
      else if (op.type === 'rename') intents.push({ side, path: op.to, from: op.from });
    }
  }
  return intents;
}

/**
 * Settles the intents a sync killed during its commit left behind (crash safety), in plan
 * order. A rename whose side now has `path` and no longer `from` happened: the ancestor's
 * entries move with it. A write whose side now holds exactly the intended content happened, and
 * both sides agreed on that version at that moment: it becomes the ancestor. The changes are
 * stored at once. Without this, an edit made after such a kill met an ancestor from before the
 * commit and looked like a change on both sides: a false conflict. An intent its side does not
 * bear out (the commit never got there, or the path changed since) says nothing and is
 * forgotten. A scoped cycle settles only the intents in its scope.
 */
function settleIntents(input: PairInput, ancestor: Map<string, Entry>): void {
  const intents = input.state.loadIntents(input.mirrorId);
  if (intents.length === 0) return;
  const settled: string[] = [];
  const updates = new Map<string, Entry | undefined>();
  const set = (path: string, entry: Entry | undefined): void => {
    if (entry === undefined) ancestor.delete(path);
    else ancestor.set(path, entry);
    updates.set(path, entry);
  };
  for (const intent of intents) {
    const paths = 'from' in intent ? [intent.path, intent.from] : [intent.path];
    if (input.scope !== undefined && !paths.every((p) => inScope(p, input.scope!))) continue;
    settled.push(intent.path);
    const snapshot = (intent.side === 'mirror' ? input.mirrorScan : input.caseScan).snapshot;
    if ('from' in intent) {
      if (!snapshot.has(intent.path) || snapshot.has(intent.from)) continue;
      const prefix = `${intent.from}/`;
      for (const [p, e] of [...ancestor]) {
        if (p !== intent.from && !p.startsWith(prefix)) continue;
        set(p, undefined);
        set(intent.path + p.slice(intent.from.length), e);
      }
      continue;
    }
    const now = snapshot.get(intent.path);
    if (
      now?.kind === 'file' &&
      now.hash === intent.entry.hash &&
      !sameEntry(ancestor.get(intent.path), intent.entry)
    )
      set(intent.path, intent.entry);
  }
  input.state.updateAncestor(input.mirrorId, updates);
  input.state.forgetIntents(input.mirrorId, input.scope === undefined ? 'all' : settled);
}

/**
 * `ancestor` without the entries of ignored paths (and what is below them): left out of this
 * cycle, they are neither reconciled nor changed in the store. Only paths that neither scan
 * reported can be ignored ones, so only those are tested.
 */
function withoutIgnored(
  ancestor: Map<string, Entry>,
  caseSnapshot: Snapshot,
  mirrorSnapshot: Snapshot,
  ignore: PairInput['ignore'],
): Map<string, Entry> {
  if (ignore === undefined) return ancestor;
  const ignored = new Set<string>();
  const below = (path: string): boolean => {
    for (let dir = parentPath(path); dir !== ''; dir = parentPath(dir)) if (ignored.has(dir)) return true;
    return false;
  };
  // The store lists a folder before what is below it.
  for (const [path, entry] of ancestor) {
    if (caseSnapshot.has(path) || mirrorSnapshot.has(path)) continue;
    if (below(path) || ignore(path, entry.kind === 'directory')) ignored.add(path);
  }
  for (const path of ignored) ancestor.delete(path);
  return ancestor;
}

/**
 * The files of a push-only mirror someone else changed since Satchel wrote them (drift): a file
 * the ancestor records that the mirror now holds with other content, or as something else, or
 * no longer holds while the case does. The case's version replaces it (or is put back). (A scan that cannot read content cheaply, as FTP's, reports its
 * drift as scan notices.)
 */
function driftOf(ancestor: ReadonlyMap<string, Entry>, mirror: Snapshot, caseSnapshot: Snapshot): string[] {
  const out: string[] = [];
  for (const [path, a] of ancestor) {
    if (a.kind !== 'file') continue;
    const m = mirror.get(path);
    // Changed there, or deleted there while the case still has it (it is put back).
    if (m === undefined ? caseSnapshot.has(path) : m.kind !== 'file' || m.hash !== a.hash) out.push(path);
  }
  return out;
}

/**
 * What to do about a mass-delete halt: the files went missing on the other side than the one
 * that would lose them; either that was meant (then allow it), or they are put back there.
 */
function massDeleteHint(losing: 'case' | 'mirror', mirror: string): string {
  const allow = `\`satchel sync ${mirror} --allow-mass-delete\``;
  return losing === 'case'
    ? `the files are gone from ${mirror}: if that was meant, run ${allow} to delete them in the case too; if not, put them back on ${mirror} (or refill it from the case: \`satchel mirror remove ${mirror}\`, then add it again)`
    : `the files are gone from the case: if that was meant, run ${allow} to delete them on ${mirror} too; if not, put them back in the case (a \`git checkout\`, the trash) and sync again`;
}

/**
 * The mirror scan with its damaged files (see `Problem.damaged`) put up for replacement: where
 * the case holds a file at the path, or the ancestor recorded one there, the damaged entry
 * becomes both the mirror's entry and the ancestor's (in `ancestor`, in place, for this plan
 * only) and its problem goes. The plan then sees the mirror unchanged and the case changed (or
 * deleted): the case's version is written over the damaged file, or the deletion removes it.
 * Never the other way: unreadable content never reaches the case, and removing the damaged
 * copy never deletes the case's file. A damaged file the case and the ancestor know nothing of
 * stays a problem, left alone.
 */
function withDamagedReplaced(
  scan: ScanResult,
  caseSnapshot: Snapshot,
  ancestor: Map<string, Entry>,
): { readonly mirrorScan: ScanResult; readonly damaged: string[] } {
  const damaged: string[] = [];
  let snapshot: Map<string, Entry> | undefined;
  const problems = scan.problems.filter((p) => {
    if (p.damaged === undefined) return true;
    if (caseSnapshot.get(p.path)?.kind !== 'file' && !ancestor.has(p.path)) return true;
    snapshot ??= new Map(scan.snapshot);
    snapshot.set(p.path, p.damaged);
    ancestor.set(p.path, p.damaged);
    damaged.push(p.path);
    return false;
  });
  if (snapshot === undefined) return { mirrorScan: scan, damaged };
  const ordered = new Map([...snapshot].sort(([a], [b]) => comparePaths(a, b)));
  return { mirrorScan: { ...scan, snapshot: ordered, problems }, damaged };
}

/** Runs one cycle of the pair. Throws only when a replica fails as a whole (vanished, unreachable). */
export async function syncPair(given: PairInput): Promise<PairOutcome> {
  const { state, caseScan } = given;
  const ancestor = withoutIgnored(
    given.scope === undefined
      ? state.loadAncestor(given.mirrorId)
      : state.loadAncestorScoped(given.mirrorId, given.scope),
    caseScan.snapshot,
    given.mirrorScan.snapshot,
    given.ignore,
  );
  if (!given.dryRun) settleIntents(given, ancestor);
  // Damaged mirror files the case's version replaces: planned as if unchanged since the ancestor.
  const { mirrorScan, damaged } = withDamagedReplaced(given.mirrorScan, caseScan.snapshot, ancestor);
  const input: PairInput = damaged.length === 0 ? given : { ...given, mirrorScan };
  const scanProblems = [...caseScan.problems, ...mirrorScan.problems];
  const plan = reconcile({
    ancestor,
    caseSnapshot: caseScan.snapshot,
    mirrorSnapshot: mirrorScan.snapshot,
    mirrorCapabilities: input.mirrorCapabilities,
    mirrorLabel: input.mirrorName,
    caseLabel: input.caseLabel,
    pushOnly: input.pushOnly,
    frozen: frozenPaths(caseScan.problems, mirrorScan.problems),
    now: input.now,
  });
  // Only push-only mirrors can drift (others bring such a change into the case).
  const drift = input.pushOnly
    ? [
        ...new Set([
          ...(mirrorScan.notices ?? []).filter((n) => n.code === 'drift').map((n) => n.path),
          ...driftOf(ancestor, mirrorScan.snapshot, caseScan.snapshot),
        ]),
      ].sort(comparePaths)
    : [];
  const base = {
    mirror: input.mirrorName,
    conflicts: plan.conflicts,
    ...(damaged.length > 0 ? { damaged } : {}),
    ...(input.pushOnly || drift.length > 0 ? { drift } : {}),
  };

  if (
    input.escalateDeletesFrom !== undefined &&
    mostDeletes(plan, caseScan.snapshot, mirrorScan.snapshot) >= input.escalateDeletesFrom
  ) {
    return {
      report: { ...base, state: 'planned', in: 0, out: 0, conflicts: [], problems: [] },
      caseAfter: caseScan,
      caseChanged: [],
      mirrorChanged: [],
      escalate: true,
    };
  }

  if (!input.allowMassDelete) {
    const verdict = checkMassDelete(plan, caseScan.snapshot, mirrorScan.snapshot, input.mirrorName);
    if (verdict) {
      return {
        report: {
          ...base,
          state: 'halted',
          in: 0,
          out: 0,
          conflicts: [],
          problems: [...scanProblems, ...plan.problems],
          message: verdict.message,
          hint: massDeleteHint(verdict.side, input.mirrorName),
        },
        caseAfter: caseScan,
        caseChanged: [],
        mirrorChanged: [],
      };
    }
  }

  if (input.dryRun) {
    return {
      report: {
        ...base,
        state: 'planned',
        in: plan.caseOps.length,
        out: plan.mirrorOps.length,
        problems: [...scanProblems, ...plan.problems],
        operations: [
          ...plan.caseOps.map((op) => describe('case', op)),
          ...plan.mirrorOps.map((op) => describe('mirror', op)),
        ],
      },
      caseAfter: caseScan,
      caseChanged: [],
      mirrorChanged: [],
    };
  }

  // Stage everything on both sides first: every content source is read before anything changes.
  const [mirrorSide, caseSide] = await stageBoth(input, plan);
  const intents = planIntents(plan);
  state.recordIntents(input.mirrorId, intents);
  let mirrorResults: readonly OperationResult[];
  try {
    mirrorResults = await mirrorSide.commit();
  } catch (e) {
    await caseSide.abort();
    throw e;
  }
  const caseResults = await caseSide.commit();

  // At this point both commits returned: every successful operation is durable on its side.
  const caseAfter = applyOperations(
    caseScan.snapshot,
    plan.caseOps,
    (i) => caseResults[i]?.ok === true,
    storedOf(caseResults),
  );
  // The mirror's operations use the case's spelling: apply them to the mirror as the planner saw it.
  const mirrorSeen = mirrorView(mirrorScan.snapshot, caseScan.snapshot, ancestor, {
    caseSensitive: input.mirrorCapabilities.caseSensitive,
    executableBit: true,
  }).snapshot;
  // A case-only rename in the case renames the mirror's names as the planner saw them, too
  // (the mirror's operations use the new spelling); one the mirror refused leaves the
  // ancestor's spelling as it was, to be tried again.
  const caseRespells = plan.caseOps.filter(
    (op, i) => op.type === 'rename' && op.respell && caseResults[i]?.ok,
  );
  const mirrorAfter = applyOperations(
    applyOperations(mirrorSeen, caseRespells),
    plan.mirrorOps,
    (i) => mirrorResults[i]?.ok === true,
    storedOf(mirrorResults),
  );
  const refusedRespells = new Set(
    plan.mirrorOps.flatMap((op, i) =>
      op.type === 'rename' && op.respell && mirrorResults[i]?.ok !== true ? [op.from, op.to] : [],
    ),
  );
  state.updateAncestor(
    input.mirrorId,
    ancestorUpdates(ancestor, caseAfter, mirrorAfter, input.mirrorCapabilities, refusedRespells),
  );
  // A full cycle settled every earlier intent first: none is left but its own.
  state.forgetIntents(input.mirrorId, input.scope === undefined ? 'all' : intents.map((x) => x.path));
  const mirrorHashes = hashesAfter(mirrorScan.hashes, mirrorAfter);
  // A damaged file still there (its replacement failed) has no content hash to remember.
  for (const path of damaged) {
    const was = mirrorScan.snapshot.get(path);
    if (was?.kind === 'file' && mirrorHashes.get(path)?.hash === was.hash) mirrorHashes.delete(path);
  }
  // A file left alone for a problem keeps what the cache knew of it: an encrypted mirror
  // recognizes a file cut at a chunk boundary by it, on every sync until the file changes again.
  const known = state.hashCache(`mirror:${input.mirrorId}`);
  for (const { path } of mirrorScan.problems) {
    const before = known.get(path);
    if (before !== undefined && !mirrorHashes.has(path)) mirrorHashes.set(path, before);
  }
  if (input.scope === undefined) state.storeHashes(`mirror:${input.mirrorId}`, mirrorHashes);
  else state.updateHashes(`mirror:${input.mirrorId}`, scopedHashUpdates(mirrorScan.snapshot, mirrorHashes));
  state.recordConflicts(input.mirrorName, plan.conflicts, input.now);

  const caseChanges = sideChanges(plan.caseOps, caseResults);
  const mirrorChanges = sideChanges(plan.mirrorOps, mirrorResults);
  return {
    report: {
      ...base,
      state: 'synced',
      in: okCount(caseResults),
      out: okCount(mirrorResults),
      problems: [...scanProblems, ...plan.problems, ...problemsOf(mirrorResults), ...problemsOf(caseResults)],
    },
    caseAfter: {
      snapshot: caseAfter,
      hashes: hashesAfter(caseScan.hashes, caseAfter),
      problems: caseScan.problems,
    },
    caseChanged: caseChanges.changed,
    mirrorChanged: mirrorChanges.changed,
    caseNotes: caseChanges.notes,
    mirrorNotes: mirrorChanges.notes,
  };
}
