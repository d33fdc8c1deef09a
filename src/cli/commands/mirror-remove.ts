/**
 * @module cli/commands/mirror-remove
 * `satchel mirror remove <name>`: forgets a mirror; its files and marker are left alone.
 */
import type { Command } from 'commander';
import { removeMirror } from '../../daemon/case.js';
import { printJson, runAction, say, withCase, withJsonOption, type Cli, type JsonOption } from '../output.js';

/** Registers `remove` on the `mirror` command. */
export function registerMirrorRemove(mirror: Command, cli: Cli): void {
  withJsonOption(
    mirror
      .command('remove')
      .description('forget a mirror (its files and marker stay where they are)')
      .argument('<name>', 'the mirror to forget'),
  ).action((name: string, options: JsonOption) =>
    runAction(options, () =>
      withCase(cli, async (ctx) => {
        const removed = await removeMirror(ctx, name);
        if (options.json) return printJson({ removed: { name, url: removed.url, id: removed.id } });
        say(`Removed mirror "${name}". Its files and marker at ${removed.url} were left as they are.`);
      }),
    ),
  );
}
