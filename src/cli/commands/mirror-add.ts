/**
 * @module cli/commands/mirror-add
 * `satchel mirror add <name> <url> [--push-only] [--encrypt] [--poll <seconds>] [--accept-new-host-key]
 * [--password-env <VAR>] [--ftps-fingerprint <sha256>]`.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { addMirror } from '../../daemon/case.js';
import { printJson, runAction, say, withCase, withJsonOption, type Cli, type JsonOption } from '../output.js';
import { describeCapabilities, mirrorInfo } from './mirror-list.js';

/** Options of `mirror add`. */
interface MirrorAddOptions extends JsonOption {
  readonly pushOnly?: boolean;
  readonly encrypt?: boolean;
  readonly passphraseFile?: string;
  readonly secondPassphrase?: boolean;
  readonly poll?: number;
  readonly search?: string[];
  readonly acceptNewHostKey?: boolean;
  readonly passwordEnv?: string;
  readonly ftpsFingerprint?: string;
}

/** Parses `--poll <seconds>`: a number from 1 to 86400. */
function parsePollSeconds(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 1 || n > 86_400) {
    throw new InvalidArgumentError('expected a number of seconds from 1 to 86400.');
  }
  return n;
}

/** Registers `add` on the `mirror` command. */
export function registerMirrorAdd(mirror: Command, cli: Cli): void {
  withJsonOption(
    mirror
      .command('add')
      .description('add a mirror: a folder on a disk, stick, mounted share or SSH server')
      .argument('<name>', 'a short name: letters, digits, . _ - (up to 64)')
      .argument(
        '<url>',
        'an absolute path, file:///abs/path, sftp://user@host[:port]/path or ftp[s]://user@host[:port]/path',
      )
      .option('--push-only', 'only write to the mirror, never read changes back')
      .option(
        '--encrypt',
        "encrypt names and contents on the mirror in rclone's crypt format (passphrase from SATCHEL_PASSPHRASE, --passphrase-file, or asked twice)",
      )
      .option(
        '--passphrase-file <file>',
        'with --encrypt: a file holding the passphrase (kept in the config as a path); a second line is the second passphrase',
      )
      .option(
        '--second-passphrase',
        "with --encrypt: the keys also take a second passphrase, rclone's password2 (from SATCHEL_PASSPHRASE2, the passphrase file's second line, or asked)",
      )
      .option(
        '--accept-new-host-key',
        "SFTP: trust the server's key and add it to ~/.ssh/known_hosts when it is not there yet (a changed key is always refused)",
      )
      .option(
        '--password-env <VAR>',
        'FTP: the environment variable holding the password (else ~/.netrc, else a prompt); only its name is kept',
      )
      .option(
        '--ftps-fingerprint <sha256>',
        "FTPS: trust the server's certificate with this SHA-256 fingerprint (e.g. a self-signed one) instead of the system store",
      )
      .option('--poll <seconds>', 'look for changes made by other writers every <seconds>', parsePollSeconds)
      .option(
        '--search <dir>',
        'another folder where the mirror may be mounted (repeatable), e.g. /media/$USER',
        (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
      ),
  ).action((name: string, url: string, options: MirrorAddOptions) =>
    runAction(options, () =>
      withCase(cli, async (ctx) => {
        const added = await addMirror(ctx, name, url, {
          ...(options.pushOnly ? { pushOnly: true } : {}),
          ...(options.encrypt ? { encrypt: true } : {}),
          ...(options.passphraseFile === undefined ? {} : { passphraseFile: options.passphraseFile }),
          ...(options.secondPassphrase ? { secondPassphrase: true } : {}),
          ...(options.poll === undefined ? {} : { pollSeconds: options.poll }),
          ...(options.search === undefined ? {} : { search: options.search }),
          ...(options.acceptNewHostKey ? { acceptNewHostKey: true } : {}),
          ...(options.passwordEnv === undefined ? {} : { passwordEnv: options.passwordEnv }),
          ...(options.ftpsFingerprint === undefined ? {} : { ftpsFingerprint: options.ftpsFingerprint }),
        });
        if (options.json) return printJson(await mirrorInfo(added.name, added.config, true));
        say(
          `Added mirror "${added.name}" at ${added.root}` +
            (added.adopted
              ? ` (it already held this case's marker: the same mirror, added before here or on another computer)`
              : ' (marker written)'),
        );
        if (added.config.capabilities)
          say(`  storage: ${describeCapabilities(added.config.capabilities, added.config.encrypt)}`);
        if (added.adopted) {
          // Matched by the case's name only: a different case of the same name would be merged.
          say(
            `  it was made for a case named "${ctx.config.name}" on ${added.markerCreatedAt.slice(0, 10)}; ` +
              'the first sync merges what it holds with this case (a file both hold with different ' +
              'content is kept twice, as a conflict copy)',
          );
          say('next: `satchel sync --dry-run` shows what the first sync would do; `satchel sync` does it');
        } else say('next: `satchel sync` copies the case there');
      }),
    ),
  );
}
