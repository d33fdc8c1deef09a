/**
 * @module cli/commands/init
 * `satchel init [<dir>]`: makes `<dir>` (default: the current folder, or `-C <dir>`) a case.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { SatchelError } from '../../core/errors.js';
import { initCase } from '../../daemon/case.js';
import { printJson, runAction, say, withJsonOption, type Cli, type JsonOption } from '../output.js';

/** Registers `init` on `program`. */
export function registerInit(program: Command, cli: Cli): void {
  withJsonOption(
    program
      .command('init')
      .description('make <dir> (default .) a case')
      .argument('[dir]', 'the folder to make a case (created when missing)'),
  ).action((dir: string | undefined, options: JsonOption) =>
    runAction(options, async () => {
      // An empty argument (an unset variable in a script) must not mean the current folder.
      if (dir !== undefined && dir.trim() === '')
        throw new SatchelError('usage', 'init: the folder argument is empty', {
          hint: 'give a folder (`satchel init ~/work`), or none for the current folder',
        });
      const created = initCase(resolve(cli.dir(), dir ?? '.'));
      if (options.json) return printJson({ case: created.root, name: created.name });
      say(`Initialized case "${created.name}" in ${created.root}`);
      if (created.insideMirror !== undefined)
        say(
          `note: it lies inside ${created.insideMirror}, the mirror folder of another case: that case replicates these files too (not this case's .satchel folder)`,
        );
      say('next: add a mirror with `satchel mirror add <name> <path>`, then run `satchel sync`');
    }),
  );
}
