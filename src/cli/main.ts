/**
 * @module cli/main
 * The `satchel` command line: `satchel [-C <dir>] <command> …` (commander). Builds the program
 * from one file per command, runs it, and maps what goes wrong to the contract's exit codes:
 * 2 for bad usage (commander's message), 1 for failures (printed by each command), and 1 with
 * `satchel: internal error: …` for anything unexpected.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { registerConflicts } from './commands/conflicts.js';
import { registerEject } from './commands/eject.js';
import { registerInit } from './commands/init.js';
import { registerMirrorAdd } from './commands/mirror-add.js';
import { registerMirrorList } from './commands/mirror-list.js';
import { registerMirrorRemove } from './commands/mirror-remove.js';
import { registerNotYet } from './commands/not-yet.js';
import { registerResolve } from './commands/resolve.js';
import { registerStatus } from './commands/status.js';
import { registerSync } from './commands/sync.js';
import { registerWatch } from './commands/watch.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, cliOf, errorInfo, printFailure } from './output.js';

/** The version in package.json (the repository root is three levels above `dist/src/cli`). */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Builds the whole program: global options and every command. */
export function buildProgram(): Command {
  const program = new Command('satchel');
  // Settings first: commander copies them into every command created afterwards.
  program
    .description('Keep one working folder (the case) replicated to many mirrors.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('-C <dir>', 'work on the case in <dir> (given before the command, as in git)')
    .enablePositionalOptions()
    .exitOverride()
    .showHelpAfterError('(run `satchel --help` for usage)')
    .configureOutput({ outputError: (text, write) => write(text) });
  const cli = cliOf(program);
  registerInit(program, cli);
  const mirror = program.command('mirror').description('add, list or remove mirrors');
  registerMirrorAdd(mirror, cli);
  registerMirrorList(mirror, cli);
  registerMirrorRemove(mirror, cli);
  registerSync(program, cli);
  registerWatch(program, cli);
  registerEject(program, cli);
  registerStatus(program, cli);
  registerConflicts(program, cli);
  registerResolve(program, cli);
  registerNotYet(program);
  program.addHelpText(
    'after',
    '\nEvery command that prints state takes --json (JSON on stdout, nothing else there).\n' +
      'Exit codes: 0 success; 1 failure (`satchel: <reason>` and a hint on stderr); 2 bad usage.\n' +
      'Example: satchel init ~/work && satchel -C ~/work mirror add stick /media/me/STICK/work && satchel -C ~/work sync',
  );
  return program;
}

/** Runs the CLI with `argv` (as in `process.argv`) and sets the process exit code. */
export async function main(argv: readonly string[]): Promise<void> {
  try {
    await buildProgram().parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end with a CommanderError too, but they succeeded.
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') {
        process.exitCode = EXIT_OK;
        return;
      }
      // Commander has printed its message on stderr already; scripts asking for JSON get it on stdout too.
      if (argv.includes('--json')) {
        const message = error.message.replace(/^error: /, '');
        process.stdout.write(
          JSON.stringify(
            { error: { code: 'usage', message, hint: 'run `satchel --help` for usage' } },
            null,
            2,
          ) + '\n',
        );
      }
      process.exitCode = EXIT_USAGE;
      return;
    }
    printFailure(errorInfo(error), argv.includes('--json'));
    process.exitCode = EXIT_FAILURE;
  }
}

await main(process.argv);
