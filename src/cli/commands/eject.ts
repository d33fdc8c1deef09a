/**
 * @module cli/commands/eject
 * `satchel eject <mirror> [--unmount]`: finish everything pending for the mirror (through the
 * running `satchel watch`, or by syncing it here), flush it to the device, and say it is safe to
 * unplug. `--unmount` also unmounts it through udisks where available.
 */
import type { Command } from 'commander';
import { join } from 'node:path';
import { STATE_DIR_NAME } from '../../core/reserved.js';
import { unknownMirror, type CaseContext } from '../../daemon/case.js';
import { askRunningDaemon } from '../../daemon/control.js';
import { type EjectReport, ejectReport, unmountThroughUdisks } from '../../daemon/eject.js';
import { locateMirror } from '../../daemon/mirror-locate.js';
import { parseMirrorUrl } from '../../daemon/mirror-url.js';
import { SatchelError } from '../../core/errors.js';
import { printJson, runAction, say, withCase, withJsonOption, type Cli, type JsonOption } from '../output.js';

/** Options of `eject`. */
interface EjectOptions extends JsonOption {
  readonly unmount?: boolean;
}

async function ejectThroughDaemon(ctx: CaseContext, name: string): Promise<EjectReport | undefined> {
  const answer = (await askRunningDaemon(join(ctx.root, STATE_DIR_NAME), { eject: name })) as
    { ejected?: EjectReport } | undefined;
  return answer?.ejected;
}

async function ejectHere(ctx: CaseContext, name: string): Promise<EjectReport> {
  const { syncCase } = await import('../../daemon/sync-engine.js');
  const [report] = await syncCase(ctx, { mirrors: [name] });
  const located = await locateMirror(ctx.config.mirrors[name]!);
  return ejectReport(report!, located?.root ?? '');
}

/** Registers `satchel eject`. */
export function registerEject(program: Command, cli: Cli): void {
  withJsonOption(
    program
      .command('eject')
      .description('finish and flush everything pending for a mirror, then say it is safe to unplug')
      .argument('<mirror>', 'the mirror (usually a stick) to eject')
      .option('--unmount', 'also unmount it (through udisksctl)'),
  ).action((name: string, options: EjectOptions) =>
    runAction(options, () =>
      withCase(cli, async (ctx) => {
        const config = ctx.config.mirrors[name];
        if (config === undefined) throw unknownMirror(ctx, name);
        // A server is not unplugged: eject then only finishes what is pending for it.
        const server = parseMirrorUrl(config.url).kind !== 'path';
        if (server && options.unmount)
          throw new SatchelError(
            'usage',
            `--unmount goes with a stick or share, not with the server mirror ${name}`,
            {
              hint: `leave --unmount out: \`satchel eject ${name}\` finishes what is pending for the server`,
            },
          );
        let report = (await ejectThroughDaemon(ctx, name)) ?? (await ejectHere(ctx, name));
        if (options.unmount) report = { ...report, unmount: unmountThroughUdisks(report.root) };
        if (options.json) return printJson(report);
        const k = report.conflicts;
        if (report.already) say(`${name}: ejected already, nothing changed since`);
        else say(`${name}: ${report.in} in, ${report.out} out, ${k} ${k === 1 ? 'conflict' : 'conflicts'}`);
        for (const p of report.problems) say(`  ! ${p.path}: ${p.message}`);
        if (report.unmount) say(`  ${report.unmount.message}`);
        say(server ? `${name}: everything pending is on the server` : `${name}: safe to unplug`);
      }),
    ),
  );
}
