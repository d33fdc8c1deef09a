/**
 * @module cli/commands/sync
 * `satchel sync [<mirror>...] [--dry-run] [--allow-mass-delete]`: one-shot reconciliation of the
 * case with every present mirror (or the ones named), then exit.
 *
 * Exit 1 when a mirror is halted or failed, or when a mirror named on the command line is
 * absent; problems with single paths do not fail the run (they are printed and retried).
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import { SatchelError } from '../../core/errors.js';
import { STATE_DIR_NAME } from '../../core/reserved.js';
import { askRunningDaemon } from '../../daemon/control.js';
import type { MirrorReport } from '../../daemon/sync-engine.js';
import {
  EXIT_FAILURE,
  errorInfo,
  plural,
  printFailure,
  printJson,
  runAction,
  say,
  withCase,
  withJsonOption,
  type Cli,
  type JsonOption,
} from '../output.js';

/** Options of `sync`. */
interface SyncCommandOptions extends JsonOption {
  readonly dryRun?: boolean;
  readonly allowMassDelete?: boolean;
}

/** The first line of a mirror's report, e.g. `stick: synced — 12 in, 3 out, 0 conflicts`. */
function headline(r: MirrorReport): string {
  const counts = `${r.in} in, ${r.out} out, ${plural(r.conflicts.length, 'conflict')}`;
  switch (r.state) {
    case 'synced':
      return `${r.mirror}: synced — ${counts}`;
    case 'planned':
      return `${r.mirror}: dry run — would make ${counts}`;
    case 'absent':
      return `${r.mirror}: absent — ${r.message ?? 'not reachable'}`;
    case 'halted':
      return `${r.mirror}: HALTED — ${r.message ?? 'stopped by a safety check'}`;
    case 'failed':
      return `${r.mirror}: FAILED — ${r.message ?? 'unknown error'}`;
  }
}

/**
 * What became, in the run `r` reports, of a mirror file the case's version replaces (drifted or
 * damaged); `done` says it for a sync that went through.
 */
function replacementOutcome(
  r: MirrorReport,
  path: string,
  done = "replaced with the case's version",
): string {
  switch (r.state) {
    case 'synced':
      return r.problems.some((p) => p.path === path)
        ? 'not replaced (see the problem below); retried by the next sync'
        : done;
    case 'planned':
      return "a sync replaces it with the case's version";
    default:
      return 'not replaced yet (the sync did not go through)';
  }
}

/**
 * Prints one mirror's report for people: headline, hint, planned operations, drift, problems,
 * conflicts.
 */
function printReport(r: MirrorReport): void {
  say(headline(r));
  if ((r.state === 'halted' || r.state === 'failed') && r.hint) say(`  hint: ${r.hint}`);
  for (const op of r.operations ?? []) {
    say(`  ${op.side}: ${op.type} ${op.from === undefined ? op.path : `${op.from} → ${op.path}`}`);
  }
  for (const path of r.drift ?? [])
    say(`  ~ ${path}: changed on the mirror (drift); ${replacementOutcome(r, path)}`);
  for (const path of r.damaged ?? [])
    say(
      `  ~ ${path}: damaged on the mirror (it cannot be read); ${replacementOutcome(r, path, "replaced with the case's version (or removed, where the case deleted it)")}`,
    );
  for (const p of r.problems) say(`  ! ${p.path === '' ? '(root)' : p.path}: ${p.message}`);
  for (const c of r.conflicts) say(`  conflict: ${c.path} (kept older version as ${c.copyPath})`);
}

/**
 * The failure of a run, if any: halted or failed mirrors, and absent ones the user named.
 * Returns undefined when the run succeeded.
 */
function runFailure(reports: readonly MirrorReport[], named: readonly string[]): SatchelError | undefined {
  const failing = reports.filter(
    (r) => r.state === 'halted' || r.state === 'failed' || (r.state === 'absent' && named.includes(r.mirror)),
  );
  const first = failing[0];
  if (first === undefined) return undefined;
  // Failed mirrors that all failed for one reason give that reason's code (a wrong passphrase,
  // a refused login), else the generic `io`.
  const codes = new Set(failing.filter((r) => r.state === 'failed').map((r) => r.code ?? 'io'));
  const code = failing.some((r) => r.state === 'halted')
    ? 'mirror-halted'
    : codes.size === 1
      ? [...codes][0]!
      : codes.size > 1
        ? 'io'
        : 'mirror-absent';
  const what = failing.map((r) => `${r.mirror} ${r.state}`).join(', ');
  return new SatchelError(code, `sync incomplete: ${what}`, {
    hint:
      first.hint ||
      (first.state === 'absent' ? 'plug in or mount the mirror, then sync again' : 'see the lines above'),
  });
}

/** Registers `sync` on `program`. */
export function registerSync(program: Command, cli: Cli): void {
  withJsonOption(
    program
      .command('sync')
      .description('reconcile the case with every present mirror (or those named), then exit')
      .argument('[mirror...]', 'only these mirrors')
      .option('--dry-run', 'show what would change, change nothing')
      .option(
        '--allow-mass-delete',
        'let a sync delete most of the files of a side (a safety halt otherwise)',
      ),
  ).action((mirrors: string[], options: SyncCommandOptions) =>
    runAction(options, () =>
      withCase(cli, async (ctx) => {
        // A running `satchel watch` holds the case: it does the sync (and lifts a halt when asked).
        const allowMassDelete = options.allowMassDelete === true;
        const viaDaemon =
          options.dryRun === true
            ? undefined
            : ((await askRunningDaemon(join(ctx.root, STATE_DIR_NAME), {
                sync: { mirrors, allowMassDelete },
              })) as { sync?: MirrorReport[] } | undefined);
        // Loaded on demand: only the commands that sync pay for the engine and the replicas.
        const { syncCase } = await import('../../daemon/sync-engine.js');
        const reports =
          viaDaemon?.sync ??
          (await syncCase(ctx, { mirrors, dryRun: options.dryRun === true, allowMassDelete }));
        const failure = runFailure(reports, mirrors);
        if (options.json) {
          if (failure === undefined) printJson({ mirrors: reports });
          else printFailure(errorInfo(failure), true, { mirrors: reports });
          return failure === undefined ? undefined : EXIT_FAILURE;
        }
        if (reports.length === 0) say('No mirrors yet: add one with `satchel mirror add <name> <path>`.');
        for (const r of reports) printReport(r);
        if (failure === undefined) return;
        printFailure(errorInfo(failure), false);
        return EXIT_FAILURE;
      }),
    ),
  );
}
