/**
 * @module cli/commands/resolve
 * `satchel resolve <path> --keep case|mirror|both`: settles one conflict in the case folder; the
 * next sync spreads the result.
 */
import { Option, type Command } from 'commander';
import { join } from 'node:path';
import { STATE_DIR_NAME } from '../../core/reserved.js';
import { askRunningDaemon } from '../../daemon/control.js';
import { resolveConflict, type KeepChoice, type Resolution } from '../../daemon/resolve.js';
import { printJson, runAction, say, withCase, withJsonOption, type Cli, type JsonOption } from '../output.js';

/** Options of `resolve`. */
interface ResolveOptions extends JsonOption {
  readonly keep: KeepChoice;
}

/** Registers `resolve` on `program`. */
export function registerResolve(program: Command, cli: Cli): void {
  withJsonOption(
    program
      .command('resolve')
      .description('settle a conflict: keep the case version, the mirror version, or both')
      .usage('<path> --keep case|mirror|both [--json]')
      .argument('<path>', 'the conflicted path or its conflict copy')
      .addOption(
        new Option('--keep <version>', 'which version to keep')
          .choices(['case', 'mirror', 'both'])
          .makeOptionMandatory(),
      ),
  ).action((path: string, options: ResolveOptions) =>
    runAction(options, () =>
      withCase(cli, async (ctx) => {
        // A running `satchel watch` holds the case: it settles the conflict (and ships it at once).
        const viaDaemon = (await askRunningDaemon(join(ctx.root, STATE_DIR_NAME), {
          resolve: { path, keep: options.keep, cwd: cli.dir() },
        })) as { resolved?: Resolution } | undefined;
        const r = viaDaemon?.resolved ?? resolveConflict(ctx, path, options.keep, cli.dir());
        const c = r.conflict;
        if (options.json) {
          return printJson({
            resolved: {
              ...c,
              detectedAt: new Date(c.detectedAt).toISOString(),
              keep: r.keep,
              kept: r.kept,
              ...(r.removed === undefined ? {} : { removed: r.removed }),
              ...(r.movedFrom === undefined ? {} : { movedFrom: r.movedFrom }),
            },
          });
        }
        const side = options.keep === 'case' ? 'case' : c.mirror;
        if (r.keep === 'both')
          say(`Kept both versions: ${c.path} and ${c.copyPath}. The conflict is forgotten.`);
        else if (r.movedFrom === undefined)
          say(`Kept the ${side} version of ${c.path}; deleted ${c.copyPath}.`);
        else
          say(
            `Kept the ${side} version of ${c.path} (moved from ${r.movedFrom}); the other version is deleted.`,
          );
        say(
          viaDaemon === undefined
            ? 'The next sync spreads this to the mirrors.'
            : 'The running satchel watch spreads this to the mirrors.',
        );
      }),
    ),
  );
}
