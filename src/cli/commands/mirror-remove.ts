/**
 * @module cli/commands/mirror-remove
 * `satchel mirror remove <name>`: forgets a mirror; its files and marker are left alone. Also
 * works when the config does not load because of that mirror's entry (the hint of such errors).
 */
import type { Command } from 'commander';
import { SatchelError } from '../../core/errors.js';
import { removeMirror, removeUnloadableMirror } from '../../daemon/case.js';
import { printJson, runAction, say, withCase, withJsonOption, type Cli, type JsonOption } from '../output.js';

/** Registers `remove` on the `mirror` command. */
export function registerMirrorRemove(mirror: Command, cli: Cli): void {
  withJsonOption(
    mirror
      .command('remove')
      .description('forget a mirror (its files and marker stay where they are)')
      .argument('<name>', 'the mirror to forget'),
  ).action((name: string, options: JsonOption) =>
    runAction(options, async () => {
      let removed: { readonly id?: string; readonly url?: string };
      try {
        removed = await withCase(cli, (ctx) => removeMirror(ctx, name));
      } catch (e) {
        // A config that does not load because of this very mirror's entry: removing it is the fix.
        if (!(e instanceof SatchelError && e.code === 'config-invalid' && e.data?.mirror === name)) throw e;
        removed = removeUnloadableMirror(cli.dir(), name);
      }
      if (options.json) return printJson({ removed: { name, url: removed.url, id: removed.id } });
      const where = removed.url === undefined ? '' : ` at ${removed.url}`;
      say(`Removed mirror "${name}". Its files and marker${where} were left as they are.`);
    }),
  );
}
