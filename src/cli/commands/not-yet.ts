/**
 * @module cli/commands/not-yet
 * Commands of the CLI contract that this version does not have yet: `ui` and `agent`. They are listed in `--help`, accept their documented arguments, and answer exit 1
 * with a plain "not available in this version" (error code `not-available`) and what to use instead.
 */
import type { Command } from 'commander';
import { EXIT_FAILURE, printFailure, withJsonOption, type JsonOption } from '../output.js';

/** A command not built yet: its name, description, arguments and what to use meanwhile. */
interface PlannedCommand {
  readonly name: string;
  readonly description: string;
  readonly define: (command: Command) => Command;
  readonly instead: string;
}

const PLANNED: readonly PlannedCommand[] = [
  {
    name: 'ui',
    description: 'local web dashboard on 127.0.0.1 (not available in this version)',
    define: (c) => c.option('--port <n>', 'port to listen on'),
    instead: 'use `satchel status` and `satchel conflicts`',
  },
  {
    name: 'agent',
    description: 'the remote side of a peer mirror (not available in this version)',
    define: (c) => c.option('--stdio', 'talk over stdin and stdout'),
    instead: 'use a path mirror on a mounted share for now',
  },
];

/** Registers `ui` and `agent`, each answering "not available in this version". */
export function registerNotYet(program: Command): void {
  for (const planned of PLANNED) {
    withJsonOption(planned.define(program.command(planned.name).description(planned.description))).action(
      (...args: unknown[]) => {
        const options = (args.at(-2) ?? {}) as JsonOption;
        // Not a SatchelError: `not-available` describes the program, not the case or a mirror.
        printFailure(
          {
            code: 'not-available',
            message: `${planned.name} is not available in this version`,
            hint: planned.instead,
          },
          options.json === true,
        );
        process.exitCode = EXIT_FAILURE;
      },
    );
  }
}
