/**
 * @module cli/main
 * The `satchel` command line: `satchel [-C <dir>] <command> …` (commander). Builds the program
 * from one file per command, runs it, and maps what goes wrong to the contract's exit codes:
 * 2 for bad usage (commander's message), 1 for failures (printed by each command), and 1 with
 * `satchel: internal error: …` for anything unexpected.
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, cliOf, errorInfo, printFailure, type Cli } from './output.js';

/**
 * The commands, in the order `--help` lists them, each loading its module only when needed: a
 * run of one command loads only that command's code (start-up time of `satchel sync`).
 */
const COMMANDS: readonly {
  readonly name: string;
  readonly register: (program: Command, cli: Cli) => Promise<void>;
}[] = [
  { name: 'init', register: async (p, cli) => (await import('./commands/init.js')).registerInit(p, cli) },
  {
    name: 'mirror',
    register: async (p, cli) => {
      const [add, list, remove] = await Promise.all([
        import('./commands/mirror-add.js'),
        import('./commands/mirror-list.js'),
        import('./commands/mirror-remove.js'),
      ]);
      const mirror = p.command('mirror').description('add, list or remove mirrors');
      add.registerMirrorAdd(mirror, cli);
      list.registerMirrorList(mirror, cli);
      remove.registerMirrorRemove(mirror, cli);
    },
  },
  { name: 'sync', register: async (p, cli) => (await import('./commands/sync.js')).registerSync(p, cli) },
  { name: 'watch', register: async (p, cli) => (await import('./commands/watch.js')).registerWatch(p, cli) },
  { name: 'eject', register: async (p, cli) => (await import('./commands/eject.js')).registerEject(p, cli) },
  {
    name: 'status',
    register: async (p, cli) => (await import('./commands/status.js')).registerStatus(p, cli),
  },
  {
    name: 'conflicts',
    register: async (p, cli) => (await import('./commands/conflicts.js')).registerConflicts(p, cli),
  },
  {
    name: 'resolve',
    register: async (p, cli) => (await import('./commands/resolve.js')).registerResolve(p, cli),
  },
];

/**
 * The command `argv` runs, when it is one of {@link COMMANDS} reached the plain way (only `-C`
 * options before it); undefined for anything else (help, version, unknown or planned commands),
 * which then gets the whole program.
 */
function chosenCommand(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '-C') i++;
    else if (arg.startsWith('-C') && arg.length > 2) continue;
    else return COMMANDS.some((c) => c.name === arg) ? arg : undefined;
  }
  return undefined;
}

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

/**
 * Builds the program: global options and every command, or only `only` (the command about to
 * run; the others would not be looked at).
 */
export async function buildProgram(only?: string): Promise<Command> {
  const program = new Command('satchel');
  // Settings first: commander copies them into every command created afterwards.
  program
    .description('Keep one working folder (the case) replicated to many mirrors.')
    .version(packageVersion(), '-V, --version', 'print the version')
    .option('-C <dir>', 'work on the case in <dir> (given before the command, as in git)')
    .enablePositionalOptions()
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(text) });
  const cli = cliOf(program);
  const chosen = COMMANDS.filter((c) => only === undefined || c.name === only);
  for (const c of chosen) await c.register(program, cli);
  if (only === undefined) {
    const { registerNotYet } = await import('./commands/not-yet.js');
    registerNotYet(program);
  }
  program.addHelpText(
    'after',
    '\nEvery command that prints state takes --json (JSON on stdout, nothing else there).\n' +
      'Exit codes: 0 success; 1 failure (`satchel: <reason>` and a hint on stderr); 2 bad usage.\n' +
      'Example: satchel init ~/work && satchel -C ~/work mirror add stick /media/me/STICK/work && satchel -C ~/work sync',
  );
  return program;
}

/**
 * A reader that went away (`satchel status | head -1`) ends the output, not the command: a
 * sync goes on to the end and exits with its own status, with nothing more printed.
 */
function ignoreClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED') throw err;
    });
  }
}

/** Usage errors about what a command was given: missing or wrong arguments and options. */
const ARGUMENT_ERRORS = new Set([
  'commander.missingArgument',
  'commander.missingMandatoryOptionValue',
  'commander.optionMissingArgument',
  'commander.invalidArgument',
  'commander.excessArguments',
]);

/**
 * What to do after a usage error of Commander's: `-C` after the command; for missing or wrong
 * arguments, the command's whole usage line (`satchel resolve <path> --keep case|mirror|both`);
 * else the command's help.
 */
function usageHint(error: CommanderError, argv: readonly string[], program: Command | undefined): string {
  const command = chosenCommand(argv);
  if (error.code === 'commander.unknownOption' && /'(-C|--dir)'/.test(error.message))
    return `-C <dir> goes before the command: satchel -C <dir> ${command ?? '<command>'} …`;
  if (command === undefined) return 'run `satchel --help` for usage';
  let sub = program?.commands.find((c) => c.name() === command);
  let name = command;
  // A group's subcommand (`mirror add`): the word after the group's name.
  const next = argv[argv.indexOf(command) + 1];
  const leaf = sub?.commands.find((c) => c.name() === next);
  if (leaf !== undefined) [sub, name] = [leaf, `${command} ${next}`];
  if (sub !== undefined && sub.commands.length === 0 && ARGUMENT_ERRORS.has(error.code))
    return `usage: satchel ${name} ${sub.usage()} (\`satchel ${name} --help\` says more)`;
  return `run \`satchel ${name} --help\` for usage`;
}

/**
 * Ctrl-C during a one-shot command: one line saying what is left (nothing half-written under a
 * final name), then exit 130 as shells expect. `watch` handles the signal itself (it finishes
 * the batch in flight).
 */
function sayWhenInterrupted(command: string | undefined): void {
  if (command === 'watch') return;
  process.once('SIGINT', () => {
    process.stderr.write(
      '\nsatchel: interrupted; nothing is left half-written under a final name (temporary files are removed by the next run)\n',
    );
    process.exit(130);
  });
}

/** Runs the CLI with `argv` (as in `process.argv`) and sets the process exit code. */
export async function main(argv: readonly string[]): Promise<void> {
  ignoreClosedOutput();
  sayWhenInterrupted(chosenCommand(argv));
  // `satchel help <command>` of a command that does not exist: say so (Commander shows the
  // whole help and exits 2 without a word about why).
  const asked = argv[2] === 'help' ? argv[3] : undefined;
  if (asked !== undefined && !asked.startsWith('-') && !COMMANDS.some((c) => c.name === asked)) {
    process.stderr.write(
      `error: unknown command '${asked}'\nhint: run \`satchel --help\` for the commands\n`,
    );
    process.exitCode = EXIT_USAGE;
    return;
  }
  let program: Command | undefined;
  try {
    program = await buildProgram(chosenCommand(argv));
    await program.parseAsync([...argv]);
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end with a CommanderError too, but they succeeded.
      // (`satchel help [command]` ends with `commander.help` and exit code 0; a command group
      // given no subcommand shows its help with exit code 1: bad usage.)
      if (
        error.code === 'commander.helpDisplayed' ||
        error.code === 'commander.version' ||
        (error.code === 'commander.help' && error.exitCode === 0)
      ) {
        process.exitCode = EXIT_OK;
        return;
      }
      // Commander has printed its message on stderr already; the hint follows (and, for
      // scripts asking for JSON, both go to stdout too).
      const hint = usageHint(error, argv, program);
      process.stderr.write(`hint: ${hint}\n`);
      if (argv.includes('--json')) {
        const message = error.message.replace(/^error: /, '');
        process.stdout.write(JSON.stringify({ error: { code: 'usage', message, hint } }, null, 2) + '\n');
      }
      process.exitCode = EXIT_USAGE;
      return;
    }
    printFailure(errorInfo(error), argv.includes('--json'));
    process.exitCode = EXIT_FAILURE;
  }
}

await main(process.argv);
