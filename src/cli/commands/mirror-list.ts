/**
 * @module cli/commands/mirror-list
 * `satchel mirror list`: every mirror of the case, whether it is present, and what its storage
 * can hold. Also defines the mirror entry that `mirror add --json` prints.
 */
import type { Command } from 'commander';
import type { Capabilities } from '../../core/capabilities.js';
import { mirrorPresence } from '../../daemon/case.js';
import { NETWORK_POLL_SECONDS, type MirrorConfig } from '../../daemon/config.js';
import { parseMirrorUrl } from '../../daemon/mirror-url.js';
import { encryptedKind } from '../../daemon/mirror-kinds.js';
import { printJson, runAction, say, withCase, withJsonOption, type Cli, type JsonOption } from '../output.js';

/** One mirror as `mirror list --json` and `mirror add --json` print it. */
export interface MirrorInfo {
  readonly name: string;
  readonly url: string;
  readonly id: string;
  readonly pushOnly: boolean;
  readonly encrypt: boolean;
  /** Seconds between polls, or null when the mirror is not polled. */
  readonly poll: number | null;
  readonly present: boolean;
  /** As probed when the mirror was added, or null when unknown. */
  readonly capabilities: Capabilities | null;
}

/** The {@link MirrorInfo} of mirror `name` (the encryption code is loaded only for an encrypted one). */
export async function mirrorInfo(name: string, mirror: MirrorConfig, present: boolean): Promise<MirrorInfo> {
  return {
    name,
    url: mirror.url,
    id: mirror.id,
    pushOnly: mirror.pushOnly,
    encrypt: mirror.encrypt,
    // A server is polled every 5 s unless the mirror says otherwise (see watch).
    poll: mirror.pollSeconds ?? (parseMirrorUrl(mirror.url).kind !== 'path' ? NETWORK_POLL_SECONDS : null),
    present,
    // What the mirror can store: an encrypted one holds no links, whatever its folder could.
    capabilities:
      mirror.capabilities === undefined
        ? null
        : mirror.encrypt
          ? (await encryptedKind()).encryptedCapabilities(mirror.capabilities)
          : mirror.capabilities,
  };
}

/**
 * What a mirror's storage cannot do like the case can, in a few words ("FAT-like" limits); an
 * encrypted mirror holds no links and shorter names than its folder could.
 */
export function describeCapabilities(caps: Capabilities, encrypted = false): string {
  const notes: string[] = [];
  if (encrypted) notes.push('encrypted (names up to 143 bytes)');
  if (caps.mtimeGranularityMs > 1) notes.push(`times to ${caps.mtimeGranularityMs / 1000} s`);
  if (!caps.caseSensitive) notes.push('case-insensitive names');
  if (!caps.symlinks || encrypted) notes.push('no symlinks');
  if (!caps.executableBit) notes.push('no executable bit');
  if (caps.forbiddenChars !== '')
    notes.push(`names with ${[...caps.forbiddenChars].join(' ')} stored encoded`);
  if (caps.maxFileSize < Number.MAX_SAFE_INTEGER) notes.push(`files up to ${formatSize(caps.maxFileSize)}`);
  return notes.length === 0 ? 'stores everything the case does' : notes.join(', ');
}

/** `4 GiB`, `512 MiB`, rounded down. */
function formatSize(bytes: number): string {
  const units = ['bytes', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  let n = bytes;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? n : Math.round(n)} ${units[i]}`;
}

/** The flags of a mirror worth showing in a listing. */
function flags(info: MirrorInfo): string {
  const out: string[] = [];
  if (info.pushOnly) out.push('push-only');
  if (info.encrypt) out.push('encrypted');
  if (info.poll !== null) out.push(`poll ${info.poll} s`);
  return out.join(', ');
}

/** Registers `list` on the `mirror` command. */
export function registerMirrorList(mirror: Command, cli: Cli): void {
  withJsonOption(mirror.command('list').description('list the mirrors of the case')).action(
    (options: JsonOption) =>
      runAction(options, () =>
        withCase(cli, async (ctx) => {
          // Every mirror is asked at once: a server that hangs costs one timeout, not one each.
          const infos: MirrorInfo[] = await Promise.all(
            Object.entries(ctx.config.mirrors).map(async ([name, m]) =>
              mirrorInfo(name, m, (await mirrorPresence(m)).present),
            ),
          );
          if (options.json) return printJson({ mirrors: infos });
          if (infos.length === 0)
            return say('No mirrors yet: add one with `satchel mirror add <name> <path>`.');
          const width = Math.max(...infos.map((i) => i.name.length));
          for (const info of infos) {
            const extra = flags(info);
            say(
              `${info.name.padEnd(width)}  ${info.present ? 'present' : 'absent '}  ${info.url}${extra ? `  (${extra})` : ''}`,
            );
            if (info.capabilities)
              say(`${' '.repeat(width)}  ${describeCapabilities(info.capabilities, info.encrypt)}`);
          }
        }),
      ),
  );
}
