/**
 * @module cli/commands/watch
 * `satchel watch`: the foreground daemon (what a service unit runs). Replicates every save at
 * once, follows mirrors, and runs until SIGTERM or SIGINT, which finish the batch in flight,
 * save state and exit 0 (a second signal: at once, as safe as a crash). Events go to stderr and
 * to `.satchel/events.log`.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { join } from 'node:path';
import { STATE_DIR_NAME } from '../../core/reserved.js';
import { EventLog } from '../../daemon/event-log.js';
import { desktopNotifier } from '../../daemon/notifier.js';
import { WatchDaemon } from '../../daemon/watch-daemon.js';
import {
  printJson,
  runAction,
  useJsonLines,
  withCase,
  withJsonOption,
  type Cli,
  type JsonOption,
} from '../output.js';

/** Options of `watch`. */
interface WatchOptions extends JsonOption {
  readonly settle?: number;
}

/** Parses `--settle <ms>`: whole milliseconds from 0 to 60000. */
function parseSettleMs(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || n > 60_000) {
    throw new InvalidArgumentError('expected whole milliseconds from 0 to 60000.');
  }
  return n;
}

/** Registers `satchel watch`. */
export function registerWatch(program: Command, cli: Cli): void {
  withJsonOption(
    program
      .command('watch')
      .description('foreground daemon: replicate every save at once, follow mirrors (what a service runs)')
      .option('--settle <ms>', 'quiet period for files still open for writing (0-60000)', parseSettleMs, 200),
  ).action((options: WatchOptions) =>
    runAction(options, () =>
      withCase(cli, async (ctx) => {
        const log = new EventLog(join(ctx.root, STATE_DIR_NAME), (line) => {
          if (!options.json) process.stderr.write(`${line}\n`);
        });
        const daemon = new WatchDaemon({
          ctx,
          log,
          notifier: desktopNotifier(),
          settleMs: options.settle ?? 200,
        });
        let stop!: () => void;
        const stopped = new Promise<void>((resolve) => (stop = resolve));
        let signals = 0;
        // The first signal finishes the batch in flight (which may wait on a server that stopped
        // answering); a second one stops at once, as a crash would: every change is atomic and
        // recorded first, so the next run finishes the work.
        const onSignal = (): void => {
          if (++signals === 1) {
            log.write({
              event: 'stopping',
              message: 'finishing the batch in flight (signal again to stop at once)',
            });
            return stop();
          }
          log.write({
            event: 'stopped',
            pid: process.pid,
            message: 'at once; the next run finishes the work',
          });
          process.exit(0);
        };
        process.on('SIGTERM', onSignal);
        process.on('SIGINT', onSignal);
        // JSON lines on stdout: the start, then an error should one end it.
        if (options.json) useJsonLines();
        await daemon.start();
        if (options.json) printJson({ watching: ctx.root, pid: process.pid });
        // A signal ends it (exit 0), or the case folder vanishing under it (exit 1, reported).
        const fatal = await Promise.race([stopped.then(() => undefined), daemon.fatal]);
        await daemon.stop();
        if (fatal !== undefined) throw fatal;
        return 0;
      }),
    ),
  );
}
