/**
 * @module daemon/case
 * The case: finding it from the current folder, making a folder one (`satchel init`), opening
 * it (config + state database) and adding or removing its mirrors.
 *
 * A mirror is identified by the UUID in its marker, never by its path. Adding a folder whose
 * marker names the same case adopts that marker's id: that is the briefcase, a second
 * computer's case taking the same stick as its mirror.
 */
import { NameCipher } from '../mirrors/encrypted/crypt.js';
import {
  PASSPHRASE_ENV,
  keysOfCheck,
  newPassphraseCheck,
  sameCheck,
  secondPassphraseGiven,
} from '../mirrors/encrypted/passphrase.js';
import { randomUUID } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { Capabilities } from '../core/capabilities.js';
import { SatchelError, type SatchelErrorCode } from '../core/errors.js';
import { isTempName, MARKER_NAME, STATE_DIR_NAME } from '../core/reserved.js';
import { readMarker, writeMarker, type Marker } from '../mirrors/path/marker.js';
import { probeCapabilities } from '../mirrors/path/probe.js';
import { ftpKind, sftpKind } from './mirror-kinds.js';
import { locateMirror } from './mirror-locate.js';
import { StateStore } from '../state/state-store.js';
import { acquireCaseLock } from './case-lock.js';
import { isWithin, realOrAbsolute } from './folders.js';
import {
  CONFIG_FILE_NAME,
  configFile,
  loadConfig,
  removeMirrorFromFile,
  saveConfig,
  type CaseConfig,
  type MirrorConfig,
} from './config.js';
import {
  describeMirrorUrl,
  shownRemotePath,
  parseMirrorUrl,
  validateMirrorName,
  type FtpMirrorUrl,
  type MirrorUrl,
  type SftpMirrorUrl,
} from './mirror-url.js';

/** The state database's name inside the case's state folder. */
export const STATE_DB_NAME = 'state.db';

/** An open case: its config and this machine's state. Close it when done. */
export interface CaseContext {
  /** Absolute path of the case folder. */
  readonly root: string;
  /** The case config as last loaded or saved by this process. */
  config: CaseConfig;
  /** This machine's state of the case (ancestors, conflicts, mirror status, locks). */
  readonly state: StateStore;
  /** This computer's name, safe inside a file name (used in conflict copy names). */
  readonly hostLabel: string;
  /** Closes the state database. */
  close(): void;
}

/** Options of {@link addMirror}. */
export interface AddMirrorOptions {
  /** Only write to the mirror, never read changes back. */
  readonly pushOnly?: boolean;
  /** Encrypt names and contents on the mirror, in rclone's `crypt` format. */
  readonly encrypt?: boolean;
  /** Encrypted mirrors: a file holding the passphrase (else `SATCHEL_PASSPHRASE` or a prompt). */
  readonly passphraseFile?: string;
  /**
   * Encrypted mirrors: the keys also take a second passphrase (rclone's `password2`); also taken
   * when `SATCHEL_PASSPHRASE2` is set or the passphrase file has a second line.
   */
  readonly secondPassphrase?: boolean;
  /** Poll the mirror for changes by other writers every this many seconds. */
  readonly pollSeconds?: number;
  /** Other folders where the mirror may be mounted (see {@link MirrorConfig.search}). */
  readonly search?: readonly string[];
  /** SFTP: record the server's key in known_hosts when it is not there yet (never a changed key). */
  readonly acceptNewHostKey?: boolean;
  /** FTP: the environment variable holding the password (its name is kept in the config). */
  readonly passwordEnv?: string;
  /** FTPS: the SHA-256 fingerprint of the server's certificate, trusted instead of the system store. */
  readonly ftpsFingerprint?: string;
}

/** What {@link addMirror} did. */
export interface AddedMirror {
  readonly name: string;
  readonly config: MirrorConfig;
  /** The mirror's folder. */
  readonly root: string;
  /** The folder already held a marker of this case, whose id was taken over. */
  readonly adopted: boolean;
  /** When the marker was written (by this command, or by the case that made the mirror). */
  readonly markerCreatedAt: string;
}

/** The state folder of the case at `root`. */
export function stateDir(root: string): string {
  return join(root, STATE_DIR_NAME);
}

/** `os.hostname()` reduced to its first label and to characters safe in file names. */
export function sanitizeHostLabel(name: string): string {
  const label = (name.split('.')[0] ?? '')
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^[-_]+|[-_]+$/g, '')
    .slice(0, 32);
  return label === '' ? 'host' : label;
}

/** The nearest folder at or above `dir` holding a case config, or `undefined`. */
function findCaseAbove(dir: string): string | undefined {
  let current = resolve(dir);
  for (;;) {
    if (existsSync(configFile(current))) return current;
    const parent = dirname(current);
    if (parent === current) return undefined;
    current = parent;
  }
}

/**
 * The case containing `startDir`: the nearest folder at or above it that holds
 * `.satchel/config.toml`. Throws `not-a-case` when there is none.
 */
export function findCaseRoot(startDir: string): string {
  if (!existsSync(startDir)) {
    throw new SatchelError('not-a-case', `${resolve(startDir)} does not exist`, {
      hint: 'check the folder given with -C (or the current folder)',
      data: { dir: resolve(startDir) },
    });
  }
  const root = findCaseAbove(startDir);
  if (root === undefined) {
    throw new SatchelError('not-a-case', `${resolve(startDir)} is not inside a case`, {
      hint: 'run `satchel init` to make this folder a case, or use `satchel -C <case folder> …`',
      data: { dir: resolve(startDir) },
    });
  }
  return root;
}

/**
 * Creates `path` and its missing parents one level at a time (Node's recursive mkdir loops
 * forever below /proc, where a missing parent cannot be created): the first refusal throws.
 */
function makeFolders(path: string): void {
  const missing: string[] = [];
  for (let p = path; !existsSync(p) && dirname(p) !== p; p = dirname(p)) missing.push(p);
  for (const dir of missing.reverse()) mkdirSync(dir);
}

/**
 * Makes `dir` (created when missing) a case named `name` (default: the folder's name): writes
 * `.satchel/config.toml` and creates the state database. Throws `already-a-case` when `dir` is a
 * case or lies inside one (a nested case would replicate its own state).
 */
export function initCase(dir: string, name?: string): { root: string; name: string; insideMirror?: string } {
  const root = resolve(dir);
  const existing = findCaseAbove(root);
  if (existing !== undefined) {
    throw new SatchelError(
      'already-a-case',
      existing === root ? `${root} is already a case` : `${root} is inside the case ${existing}`,
      {
        hint:
          existing === root
            ? 'nothing to do: add mirrors with `satchel mirror add`'
            : 'pick a folder outside it',
        data: { root: existing },
      },
    );
  }
  const own = markerFields(root);
  if (own !== undefined) {
    throw new SatchelError(
      'mirror-exists',
      `${root} is a mirror${caseLabel(own)} (it holds ${MARKER_NAME}): a case made in it would be overwritten by that case's syncs`,
      {
        hint: `make the case in another folder and add this one to it with \`satchel mirror add\`; if no case uses it any more, delete ${join(root, MARKER_NAME)} first`,
        data: { root },
      },
    );
  }
  const above = mirrorFolderAbove(root);
  const aboveMarker = above === undefined ? undefined : markerFields(above);
  if (above !== undefined && typeof aboveMarker?.passphraseCheck === 'string') {
    throw new SatchelError(
      'mirror-exists',
      `${root} lies inside the encrypted mirror ${above}${caseLabel(aboveMarker)}: a case there would be stored in plain text among the encrypted files, which that case cannot read`,
      { hint: 'make the case in a folder outside the mirror', data: { root, mirror: above } },
    );
  }
  const config: CaseConfig = { name: name ?? basename(root), mirrors: {} };
  if (config.name === '') {
    throw new SatchelError('usage', 'the case name must not be empty', { hint: 'give the case a name' });
  }
  try {
    makeFolders(stateDir(root));
    keepOutOfGit(root);
    StateStore.open(join(stateDir(root), STATE_DB_NAME)).close();
  } catch (cause) {
    throw new SatchelError('io', `cannot create ${stateDir(root)}: ${(cause as Error).message}`, {
      hint: `check that ${dirname(root)} is writable`,
      cause,
    });
  }
  // The config last: it is what makes the folder a case, so a failure above leaves none.
  saveConfig(root, config);
  return { root, name: config.name, ...(above === undefined ? {} : { insideMirror: above }) };
}

/** Where the marker of the mirror described as `root` is, for messages (a URL keeps its `//`). */
function markerPathIn(root: string): string {
  return root.includes('://') ? `${root.replace(/\/$/, '')}/${MARKER_NAME}` : join(root, MARKER_NAME);
}

/** The marker `dir` holds, as far as it can be read: undefined without one, `{}` when it does not parse. */
function markerFields(
  dir: string,
): { readonly case?: unknown; readonly passphraseCheck?: unknown } | undefined {
  let text: string;
  try {
    text = readFileSync(join(dir, MARKER_NAME), 'utf8');
  } catch {
    return undefined;
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  } catch {
    return {};
  }
}

/** ` of the case "<name>"` for a marker's fields, when they name one. */
function caseLabel(marker: { readonly case?: unknown }): string {
  return typeof marker.case === 'string' && marker.case !== '' ? ` of the case "${marker.case}"` : '';
}

/** The mirror folder (one holding a marker) that `dir` lies in, if any. */
function mirrorFolderAbove(dir: string): string | undefined {
  for (let d = dirname(dir); d !== dirname(d); d = dirname(d)) {
    if (existsSync(join(d, MARKER_NAME))) return d;
  }
  return undefined;
}

/** Opens the case containing `dir`: loads its config and opens its state database. */
export function openCase(dir: string): CaseContext {
  const root = findCaseRoot(dir);
  const config = loadConfig(root);
  let state: StateStore;
  try {
    state = StateStore.open(join(stateDir(root), STATE_DB_NAME));
  } catch (cause) {
    throw new SatchelError('io', `cannot open the case state ${join(stateDir(root), STATE_DB_NAME)}`, {
      hint: 'check the permissions of the .satchel folder and that the disk is not full',
      cause,
    });
  }
  keepOutOfGit(root);
  return { root, config, state, hostLabel: sanitizeHostLabel(hostname()), close: () => state.close() };
}

/**
 * Writes `.satchel/.gitignore` (`*`) unless there: the state is this computer's own, and a
 * `git add -A` in a case that is also a git work tree must not commit it (the replicated `.git`
 * would carry it to other computers). Best effort: a case on a read-only disk still opens.
 */
function keepOutOfGit(root: string): void {
  const file = join(stateDir(root), '.gitignore');
  if (existsSync(file)) return;
  try {
    writeFileSync(file, "# Satchel's state for this computer only: never committed\n*\n");
  } catch {
    // Not needed to work.
  }
}

/** Runs `fn` holding the case lock, with the config freshly reloaded from disk. */
async function underCaseLock<T>(ctx: CaseContext, purpose: string, fn: () => Promise<T> | T): Promise<T> {
  const lock = acquireCaseLock(stateDir(ctx.root), purpose);
  try {
    ctx.config = loadConfig(ctx.root);
    return await fn();
  } finally {
    lock.release();
  }
}

/** The real path of `dir`, which must be an existing folder, else an error naming it. */
function existingFolder(dir: string): string {
  let isDirectory = false;
  let exists = false;
  try {
    isDirectory = statSync(dir).isDirectory();
    exists = true;
  } catch {
    /* missing: reported below */
  }
  if (exists && !isDirectory) {
    throw new SatchelError('usage', `the mirror path ${dir} is a file, not a folder`, {
      hint: "give the folder that is to hold the mirror (for example the file's parent folder, or a new folder)",
      data: { root: dir },
    });
  }
  if (!isDirectory) {
    throw new SatchelError('mirror-absent', `the mirror folder ${dir} does not exist`, {
      hint: 'plug in and mount the stick (or mount the share), or create the folder, then add the mirror again',
      data: { root: dir },
    });
  }
  return realpathSync(dir);
}

/** Refuses a mirror folder that is the case, lies inside it, or contains it. */
function checkSeparateFromCase(mirrorRoot: string, caseRoot: string): void {
  const realCase = realpathSync(caseRoot);
  if (isWithin(mirrorRoot, realCase) || isWithin(realCase, mirrorRoot)) {
    throw new SatchelError(
      'usage',
      isWithin(mirrorRoot, realCase)
        ? `the mirror folder ${mirrorRoot} is inside the case ${realCase}`
        : `the mirror folder ${mirrorRoot} contains the case ${realCase}`,
      { hint: 'a mirror must be a folder outside the case, such as one on a stick or a share' },
    );
  }
}

/**
 * Refuses a path mirror folder that lies inside another path mirror of the case or contains
 * one: each sync would copy the inner mirror into the outer one, the outer's copy back into the
 * case, and so on, one level deeper every time.
 */
function checkSeparateFromMirrors(mirrorRoot: string, ctx: CaseContext): void {
  for (const [name, mirror] of Object.entries(ctx.config.mirrors)) {
    let other: string;
    try {
      const url = parseMirrorUrl(mirror.url);
      if (url.kind !== 'path') continue;
      other = realOrAbsolute(url.root);
    } catch {
      continue;
    }
    if (other === mirrorRoot || !(isWithin(mirrorRoot, other) || isWithin(other, mirrorRoot))) continue;
    throw new SatchelError(
      'usage',
      isWithin(mirrorRoot, other)
        ? `the mirror folder ${mirrorRoot} is inside the folder of mirror ${name} (${other})`
        : `the mirror folder ${mirrorRoot} contains the folder of mirror ${name} (${other})`,
      { hint: 'each mirror must be a folder of its own, not inside another mirror nor around one' },
    );
  }
}

/**
 * The marker to use for a new mirror at `root`: none yet → a fresh id; one of the same case →
 * adopt it (briefcase); one of another case → refuse, naming both cases.
 */
async function markerFor(root: string, ctx: CaseContext): Promise<{ marker: Marker; adopted: boolean }> {
  return decideMarker(await readMarker(root), root, ctx);
}

/** {@link markerFor} given the marker found at `root` (if any). */
function decideMarker(
  found: Marker | undefined,
  root: string,
  ctx: CaseContext,
): { marker: Marker; adopted: boolean } {
  if (found === undefined) {
    return {
      marker: { version: 1, id: randomUUID(), case: ctx.config.name, createdAt: new Date().toISOString() },
      adopted: false,
    };
  }
  if (found.case !== ctx.config.name) {
    throw new SatchelError(
      'mirror-exists',
      `${root} is a mirror of the case "${found.case}", not of this case "${ctx.config.name}"`,
      {
        hint: `pick another folder; if "${found.case}" no longer uses it, delete ${markerPathIn(root)} first`,
        data: { root, markerCase: found.case, case: ctx.config.name },
      },
    );
  }
  return { marker: found, adopted: true };
}

/**
 * Adds mirror `name` at `url` to the case: validates both, refuses a duplicate name or a folder
 * already used by another mirror of this case, checks the folder exists and is separate from
 * the case, writes (or adopts) its marker, probes its capabilities and saves the config.
 */
export async function addMirror(
  ctx: CaseContext,
  name: string,
  url: string,
  options: AddMirrorOptions = {},
): Promise<AddedMirror> {
  validateMirrorName(name);
  const parsed = parseMirrorUrl(url);
  if (options.encrypt === true && parsed.kind !== 'path') {
    throw new SatchelError(
      'mirror-unsupported',
      'encryption is only available on path mirrors in this version',
      {
        hint: 'add the mirror without --encrypt, or encrypt a local folder, stick or mounted share',
      },
    );
  }
  if (options.passphraseFile !== undefined && options.encrypt !== true) {
    throw new SatchelError('usage', '--passphrase-file only goes with --encrypt', {
      hint: 'add --encrypt, or leave --passphrase-file out',
    });
  }
  if (options.secondPassphrase === true && options.encrypt !== true) {
    throw new SatchelError('usage', '--second-passphrase only goes with --encrypt', {
      hint: 'add --encrypt, or leave --second-passphrase out',
    });
  }
  if (parsed.kind === 'ftp' && options.pushOnly !== true) {
    throw new SatchelError(
      'mirror-unsupported',
      'FTP mirrors are push-only: Satchel never reads changes back from them',
      {
        hint: `add --push-only: satchel mirror add ${name} ${url} --push-only`,
      },
    );
  }
  // Options that belong to one kind of mirror are refused for the others, not stored unused.
  const onlyFor = (option: string, kinds: string): SatchelError =>
    new SatchelError(
      'usage',
      `${option} only goes with ${kinds.replace(/^(.*?)( \(.*\))?$/, '$1 mirror$2')}`,
      {
        hint: `leave ${option} out for ${url}`,
      },
    );
  if (options.passwordEnv !== undefined && parsed.kind !== 'ftp')
    throw onlyFor('--password-env', 'an ftp:// or ftps://');
  if (options.acceptNewHostKey === true && parsed.kind !== 'sftp')
    throw onlyFor('--accept-new-host-key', 'an sftp://');
  if ((options.search?.length ?? 0) > 0 && parsed.kind !== 'path')
    throw onlyFor('--search', 'a path (a stick or share, looked for where it is mounted)');
  if (options.passwordEnv !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(options.passwordEnv)) {
    throw new SatchelError(
      'usage',
      `--password-env ${options.passwordEnv}: expected the name of an environment variable, for an ftp:// or ftps:// mirror`,
      {
        hint: 'for example --password-env FTP_PASSWORD (the variable holds the password; its name goes into the config)',
      },
    );
  }
  if (options.ftpsFingerprint !== undefined && !(parsed.kind === 'ftp' && parsed.secure)) {
    throw new SatchelError('usage', '--ftps-fingerprint only goes with an ftps:// mirror', {
      hint: 'use an ftps:// URL, or leave --ftps-fingerprint out',
    });
  }
  const ftpsFingerprint =
    options.ftpsFingerprint === undefined
      ? undefined
      : (await ftpKind()).normalizeFingerprint(options.ftpsFingerprint);
  const passphraseFile = options.passphraseFile === undefined ? undefined : resolve(options.passphraseFile);
  if (passphraseFile !== undefined) {
    if (isWithin(realOrAbsolute(passphraseFile), realpathSync(ctx.root))) {
      throw new SatchelError(
        'usage',
        `the passphrase file ${passphraseFile} is inside the case: it would be replicated, in plain text, to every mirror`,
        {
          hint: 'keep it outside the case, for example in ~/.config/satchel/ (chmod 600), and name that file',
        },
      );
    }
  }
  const secondPassphrase =
    options.encrypt === true && (options.secondPassphrase === true || secondPassphraseGiven(passphraseFile));
  // Asked before anything is checked or written (the prompt may take a while).
  const passphraseCheck =
    options.encrypt === true
      ? await newPassphraseCheck({
          mirror: name,
          ...(passphraseFile ? { file: passphraseFile } : {}),
          ...(secondPassphrase ? { second: true } : {}),
        })
      : undefined;
  if (options.pollSeconds !== undefined && !(options.pollSeconds >= 1 && options.pollSeconds <= 86_400)) {
    throw new SatchelError(
      'usage',
      `--poll ${options.pollSeconds}: expected a number of seconds from 1 to 86400`,
      {
        hint: 'for example --poll 2',
      },
    );
  }
  return underCaseLock(ctx, 'adding a mirror', async () => {
    if (ctx.config.mirrors[name] !== undefined) {
      throw new SatchelError('mirror-exists', `the case already has a mirror named "${name}"`, {
        hint: 'pick another name, or `satchel mirror remove` the old one first',
        data: { name },
      });
    }
    const prepared = await prepareMirrorRoot(parsed, ctx, {
      ...options,
      ...(ftpsFingerprint === undefined ? {} : { ftpsFingerprint }),
    });
    const { root, marker, adopted } = prepared;
    const twin = Object.entries(ctx.config.mirrors).find(([, m]) => m.id === marker.id);
    if (twin !== undefined) {
      prepared.done();
      throw new SatchelError('mirror-exists', `${root} is already the mirror "${twin[0]}" of this case`, {
        hint: `it needs no second name; \`satchel mirror remove ${twin[0]}\` first to rename it`,
        data: { name: twin[0] },
      });
    }
    // This case's marker without a passphrase check, taken with --encrypt: a plain mirror of the
    // case (or one of a version whose markers held no check). Its files must decrypt, and the
    // marker gets the check, so that every later computer must give the same passphrase.
    const checkToAdd = adopted && marker.passphraseCheck === undefined && passphraseCheck !== undefined;
    try {
      checkAdoptedEncryption(name, root, marker, adopted, passphraseCheck);
      if ((!adopted || checkToAdd) && passphraseCheck !== undefined && parsed.kind === 'path')
        checkExistingNamesDecrypt(name, root, passphraseCheck, checkToAdd);
    } catch (e) {
      prepared.done();
      throw e;
    }
    let capabilities: Capabilities;
    try {
      capabilities = await prepared.capabilities();
      if (!adopted || checkToAdd)
        await prepared.writeMarker(passphraseCheck === undefined ? marker : { ...marker, passphraseCheck });
    } finally {
      prepared.done();
    }
    const config: MirrorConfig = {
      url,
      id: marker.id,
      pushOnly: options.pushOnly === true,
      ...(options.passwordEnv === undefined ? {} : { passwordEnv: options.passwordEnv }),
      ...(ftpsFingerprint === undefined ? {} : { ftpsFingerprint }),
      encrypt: passphraseCheck !== undefined,
      ...(passphraseCheck === undefined ? {} : { passphraseCheck }),
      ...(passphraseFile === undefined ? {} : { passphraseFile }),
      ...(passphraseCheck !== undefined && secondPassphrase ? { secondPassphrase: true } : {}),
      ...(options.pollSeconds === undefined ? {} : { pollSeconds: options.pollSeconds }),
      ...(options.search === undefined || options.search.length === 0
        ? {}
        : { search: options.search.map((d) => resolve(d)) }),
      capabilities,
    };
    const next: CaseConfig = { ...ctx.config, mirrors: { ...ctx.config.mirrors, [name]: config } };
    saveConfig(ctx.root, next);
    ctx.config = next;
    return { name, config, root, adopted, markerCreatedAt: marker.createdAt };
  });
}

/**
 * Before anything is written to a mirror being added: a marker that holds a passphrase check
 * (an encrypted mirror, added on another computer) must be adopted with `--encrypt` and the
 * same passphrase. A marker without one (a plain mirror, or one written before markers held the
 * check) is taken as it is.
 */
function checkAdoptedEncryption(
  name: string,
  root: string,
  marker: Marker,
  adopted: boolean,
  passphraseCheck: string | undefined,
): void {
  if (!adopted || marker.passphraseCheck === undefined) return;
  if (passphraseCheck === undefined) {
    throw new SatchelError('usage', `${root} is an encrypted mirror of this case: add it with --encrypt`, {
      hint: `satchel mirror add ${name} ${root} --encrypt (with the passphrase it was encrypted with); nothing was written`,
      data: { root },
    });
  }
  if (!sameCheck(marker.passphraseCheck, passphraseCheck)) {
    throw new SatchelError('auth-failed', `wrong passphrase for the encrypted mirror "${name}" at ${root}`, {
      hint: `it was encrypted with another passphrase; check ${PASSPHRASE_ENV} or the passphrase file; nothing was written`,
      data: { root },
    });
  }
}

/**
 * A folder made encrypted by `rclone` (or by a case whose marker is gone) holds names
 * encrypted with some passphrase: when none of them decrypts with the one given, it is the
 * wrong one, and taking it would write this case's files beside them under another key.
 */
function checkExistingNamesDecrypt(
  name: string,
  root: string,
  passphraseCheck: string,
  plainMarker = false,
): void {
  const keys = keysOfCheck(passphraseCheck);
  if (keys === undefined) return;
  let names: string[];
  try {
    names = readdirSync(root).filter((n) => n !== MARKER_NAME && !isTempName(n));
  } catch {
    return;
  }
  if (names.length === 0) return;
  const cipher = new NameCipher(keys);
  if (names.some((n) => cipher.decryptSegment(n) !== undefined)) return;
  if (plainMarker)
    throw new SatchelError(
      'usage',
      `${root} holds a plain (unencrypted) mirror of this case (none of its names decrypt with this passphrase): --encrypt needs an empty folder, or one already encrypted with this passphrase`,
      {
        hint: `pick an empty folder for the encrypted mirror (the plain one's files are in the case; delete them and its ${MARKER_NAME} to reuse this folder); nothing was written`,
        data: { root },
      },
    );
  throw new SatchelError(
    'auth-failed',
    `wrong passphrase for the encrypted mirror "${name}": none of the ${names.length} names already in ${root} decrypt with it`,
    {
      hint: `give the passphrase it was encrypted with (for an rclone crypt remote, rclone's password); if the folder is not an encrypted one, pick an empty folder; nothing was written`,
      data: { root },
    },
  );
}

/** A new mirror's root, reached and checked, with its marker decided but not yet written. */
interface PreparedRoot {
  /** The folder, for messages (`user@host:port:/path` for SFTP). */
  readonly root: string;
  readonly marker: Marker;
  readonly adopted: boolean;
  capabilities(): Promise<Capabilities>;
  writeMarker(marker: Marker): Promise<void>;
  /** Releases the connection (SFTP). */
  done(): void;
}

/** Checks a new mirror's folder (local, or on an SFTP server) and decides its marker. */
async function prepareMirrorRoot(
  url: MirrorUrl,
  ctx: CaseContext,
  options: AddMirrorOptions,
): Promise<PreparedRoot> {
  if (url.kind === 'sftp') return prepareSftpRoot(url, ctx, options);
  if (url.kind === 'ftp') return prepareFtpRoot(url, ctx, options);
  const root = existingFolder(url.root);
  checkSeparateFromCase(root, ctx.root);
  checkSeparateFromMirrors(root, ctx);
  if (existsSync(join(root, STATE_DIR_NAME, CONFIG_FILE_NAME))) {
    throw new SatchelError(
      'usage',
      `${root} is the folder of another case (it holds ${STATE_DIR_NAME}/${CONFIG_FILE_NAME}): as a mirror of this case, both cases would be merged into it`,
      { hint: "pick an empty folder, or a stick or share folder of this case's own" },
    );
  }
  const { marker, adopted } = await markerFor(root, ctx);
  return {
    root,
    marker,
    adopted,
    capabilities: () => probeCapabilities(root),
    writeMarker: (m) => writeMarker(root, m),
    done: () => {},
  };
}

/** The error for a server path that is not a folder (`how` tells how to make one there). */
function remoteRootError(
  state: 'not-a-folder' | 'missing',
  path: string,
  where: string,
  root: string,
  how: string,
): SatchelError {
  if (state === 'not-a-folder')
    return new SatchelError('mirror-absent', `${path} on ${where} is a file, not a folder`, {
      hint: 'a mirror is a folder: give the path of the folder to replicate into (a new empty one, or one this case already uses)',
      data: { root },
    });
  return new SatchelError('mirror-absent', `the folder ${path} does not exist on ${where}`, {
    hint: `create it on the server (${how}), then add the mirror again`,
    data: { root },
  });
}

/** Connects to the server (accepting a new host key only when asked) and checks the folder there. */
async function prepareSftpRoot(
  url: SftpMirrorUrl,
  ctx: CaseContext,
  options: AddMirrorOptions,
): Promise<PreparedRoot> {
  const { acquireSession, readSftpMarker, remoteFolderState, writeSftpMarker, SFTP_CAPABILITIES } =
    await sftpKind();
  const session = await acquireSession(url, { acceptNewHostKey: options.acceptNewHostKey === true });
  const root = describeMirrorUrl(url);
  try {
    const state = await remoteFolderState(session, url.path);
    if (state !== 'folder') {
      throw remoteRootError(
        state,
        shownRemotePath(url.path),
        session.where,
        root,
        'for example `ssh host mkdir -p <path>`',
      );
    }
    const { marker, adopted } = decideMarker(await readSftpMarker(session, url.path), root, ctx);
    return {
      root,
      marker,
      adopted,
      capabilities: async () => SFTP_CAPABILITIES,
      writeMarker: (m) => writeSftpMarker(session, url.path, m),
      done: () => session.release(),
    };
  } catch (e) {
    session.release();
    throw e;
  }
}

/** Connects to the FTP server (asking for a missing password on a terminal) and checks the folder. */
async function prepareFtpRoot(
  url: FtpMirrorUrl,
  ctx: CaseContext,
  options: AddMirrorOptions,
): Promise<PreparedRoot> {
  const { ftpTarget, openFtpSession, ftpFolderState, readFtpMarker, writeFtpMarker, FTP_CAPABILITIES } =
    await ftpKind();
  const session = await openFtpSession(ftpTarget(url, options), { interactive: true });
  const root = describeMirrorUrl(url);
  try {
    const state = await ftpFolderState(session);
    if (state !== 'folder') {
      throw remoteRootError(
        state,
        session.root,
        session.where,
        root,
        'for example with lftp: mkdir -p <path>',
      );
    }
    const { marker, adopted } = decideMarker(await readFtpMarker(session), root, ctx);
    return {
      root,
      marker,
      adopted,
      capabilities: async () => FTP_CAPABILITIES,
      writeMarker: (m) => writeFtpMarker(session, m),
      done: () => session.close(),
    };
  } catch (e) {
    session.close();
    throw e;
  }
}

/**
 * Removes mirror `name` from the case: its config entry and this machine's state about it
 * (ancestor, hashes, status, conflicts). The mirror's files and marker are left alone.
 * Throws `mirror-unknown` when there is no such mirror.
 */
export async function removeMirror(ctx: CaseContext, name: string): Promise<MirrorConfig> {
  return underCaseLock(ctx, 'removing a mirror', () => {
    const removed = ctx.config.mirrors[name];
    if (removed === undefined) throw unknownMirror(ctx, name);
    const mirrors = { ...ctx.config.mirrors };
    delete mirrors[name];
    const next: CaseConfig = { ...ctx.config, mirrors };
    saveConfig(ctx.root, next);
    ctx.config = next;
    ctx.state.dropMirror(removed.id, name);
    return removed;
  });
}

/**
 * Removes mirror `name` from the case at or above `dir` when the config does not load because of
 * that mirror's own entry (a hand edit gone wrong): the entry goes, the rest of the config must
 * validate, and the mirror's state is dropped as {@link removeMirror} does.
 */
export function removeUnloadableMirror(
  dir: string,
  name: string,
): { readonly id?: string; readonly url?: string } {
  const root = findCaseRoot(dir);
  const lock = acquireCaseLock(stateDir(root), 'removing a mirror');
  try {
    const removed = removeMirrorFromFile(root, name);
    if (removed === undefined) {
      throw new SatchelError('mirror-unknown', `no mirror named "${name}" in this case`, { data: { name } });
    }
    const state = StateStore.open(join(stateDir(root), STATE_DB_NAME));
    try {
      // Without a readable id only the state kept by name can go; an id-keyed ancestor of an
      // unknown id is never read again (a re-added mirror gets a new id).
      state.dropMirror(removed.id ?? '', name);
    } finally {
      state.close();
    }
    return removed;
  } finally {
    lock.release();
  }
}

/** The `mirror-unknown` error for `name`, listing the configured mirrors. */
export function unknownMirror(ctx: CaseContext, name: string): SatchelError {
  const names = Object.keys(ctx.config.mirrors);
  return new SatchelError('mirror-unknown', `no mirror named "${name}" in this case`, {
    hint:
      names.length > 0
        ? `configured mirrors: ${names.join(', ')}`
        : 'add one with `satchel mirror add <name> <url>`',
    data: { name },
  });
}

/** Whether a configured mirror is present, and why not. */
export interface MirrorPresence {
  /** Its root holds the marker with the mirror's id. */
  readonly present: boolean;
  /** Why the mirror is absent (empty when present). */
  readonly message: string;
  /**
   * It is not missing but unusable: a damaged marker, a refused login, an unknown or changed
   * host key (`status` says failed: something to fix, not to plug in).
   */
  readonly damaged?: true;
  /** What to do about it, when known. */
  readonly hint?: string;
  /** The error's stable code, when the check failed with one. */
  readonly code?: SatchelErrorCode;
}

/**
 * Checks whether `mirror` is present: its URL is of a kind this version can use and its root
 * holds the marker with the mirror's id. Never throws: trouble is the reason it is absent.
 */
export async function mirrorPresence(mirror: MirrorConfig): Promise<MirrorPresence> {
  try {
    const url = parseMirrorUrl(mirror.url);
    // A server is asked once (a second connection doubled the wait on one that hangs).
    if (url.kind === 'sftp' || url.kind === 'ftp') {
      const why = url.kind === 'sftp' ? await sftpAbsence(url, mirror.id) : await ftpAbsence(url, mirror);
      return { present: why === '', message: why };
    }
    const located = await locateMirror(mirror);
    if (located) return { present: true, message: located.moved ? `found at ${located.root}` : '' };
    const why = await pathMirrorAbsence(url.root, mirror.id);
    return { present: why === '', message: why };
  } catch (e) {
    const damaged =
      e instanceof SatchelError &&
      ['config-invalid', 'auth-failed', 'host-key-unknown', 'host-key-changed'].includes(e.code);
    return {
      present: false,
      message: e instanceof Error ? e.message : String(e),
      ...(damaged ? { damaged } : {}),
      ...(e instanceof SatchelError && e.hint !== undefined ? { hint: e.hint } : {}),
      ...(e instanceof SatchelError ? { code: e.code } : {}),
    };
  }
}

/**
 * Why the path mirror `id` is not at `root`, from the marker there: it has none, or another
 * mirror's; `''` when the marker is this mirror's. Throws for a damaged marker.
 */
export async function pathMirrorAbsence(root: string, id: string): Promise<string> {
  const marker = await readMarker(root);
  if (marker === undefined) return `marker ${MARKER_NAME} not found at ${root}`;
  return marker.id === id ? '' : `the marker at ${root} belongs to another mirror (id ${marker.id})`;
}

/** Why an SFTP mirror is not present: the server's answer, or what its folder holds. */
async function sftpAbsence(url: SftpMirrorUrl, id: string): Promise<string> {
  const { acquireSession, readSftpMarker } = await sftpKind();
  const session = await acquireSession(url);
  try {
    const marker = await readSftpMarker(session, url.path);
    if (marker === undefined) return `marker ${MARKER_NAME} not found at ${describeMirrorUrl(url)}`;
    return marker.id === id
      ? ''
      : `the marker at ${describeMirrorUrl(url)} belongs to another mirror (id ${marker.id})`;
  } finally {
    session.release();
  }
}

/** Why an FTP mirror is not present: the server's answer, or what its folder holds. */
async function ftpAbsence(url: FtpMirrorUrl, mirror: MirrorConfig): Promise<string> {
  const { ftpTarget, openFtpSession, readFtpMarker } = await ftpKind();
  const session = await openFtpSession(ftpTarget(url, mirror));
  try {
    const marker = await readFtpMarker(session);
    if (marker === undefined) return `marker ${MARKER_NAME} not found at ${describeMirrorUrl(url)}`;
    return marker.id === mirror.id
      ? ''
      : `the marker at ${describeMirrorUrl(url)} belongs to another mirror (id ${marker.id})`;
  } finally {
    session.close();
  }
}
