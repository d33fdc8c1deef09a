/**
 * @module cli/commands/conflicts
 * `satchel conflicts`: the conflicts found by syncs and not yet resolved, with where each
 * version is.
 */
import type { Command } from 'commander';
import {
  isoTime,
  localTime,
  printJson,
  runAction,
  say,
  withCase,
  withJsonOption,
  type Cli,
  type JsonOption,
} from '../output.js';

/** Registers `conflicts` on `program`. */
export function registerConflicts(program: Command, cli: Cli): void {
  withJsonOption(program.command('conflicts').description('list unresolved conflicts')).action(
    (options: JsonOption) =>
      runAction(options, () =>
        withCase(cli, async (ctx) => {
          const conflicts = ctx.state.listConflicts();
          if (options.json) {
            return printJson({
              conflicts: conflicts.map((c) => ({ ...c, detectedAt: isoTime(c.detectedAt) })),
            });
          }
          if (conflicts.length === 0) return say('No conflicts.');
          for (const c of conflicts) {
            const other = c.winner === 'case' ? c.mirror : 'case';
            const winner = c.winner === 'case' ? 'case' : c.mirror;
            say(
              `${c.path}`,
              `  ${winner} version at ${c.path}; ${other} version at ${c.copyPath}`,
              `  ${c.reason} (with ${c.mirror}, ${localTime(c.detectedAt)})`,
            );
          }
          say('', 'resolve with: satchel resolve <path> --keep case|mirror|both');
        }),
      ),
  );
}
