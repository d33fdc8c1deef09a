/**
 * @module daemon/config
 * The case configuration, `<case>/.satchel/config.toml`: the case's name and its mirrors. Read
 * with smol-toml, validated by core/schema; every mistake becomes a `config-invalid` error naming the
 * file, the key (`mirrors.stick.poll`) and what is allowed, so a hand edit is easy to fix.
 *
 * ```toml
 * [case]
 * name = "work"                      # defaults to the case folder's name
 * [mirrors.stick]
 * url = "/media/u/STICK/work"        # absolute path or file:///abs/path
 * id = "2b7c…"                       # the UUID in the mirror's marker
 * push_only = false
 * poll = 2                           # seconds, optional
 * encrypt = false
 * [mirrors.stick.capabilities]       # probed at `mirror add`
 * mtimeGranularityMs = 2000
 * …
 * ```
 */
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml';
import type { Capabilities } from '../core/capabilities.js';
import { SatchelError } from '../core/errors.js';
import {
  array,
  boolean,
  type Issue,
  matches,
  number,
  object,
  optional,
  record,
  type Schema,
  string,
  validate as validateSchema,
  withDefault,
} from '../core/schema.js';
import { STATE_DIR_NAME } from '../core/reserved.js';
import { isWithin, realOrAbsolute } from './folders.js';
import { MIRROR_NAME_PATTERN, parseMirrorUrl } from './mirror-url.js';

/** The mirror URLs a config may hold, for messages. */
const MIRROR_URL_FORMS =
  'an absolute path, file:///abs/path, sftp://user@host[:port]/path or ftp[s]://user@host[:port]/path';
/** How often `watch` polls a mirror it cannot watch (a server, a network mount) by default. */
export const NETWORK_POLL_SECONDS = 5;

/** The config file's name inside the case's state folder. */
export const CONFIG_FILE_NAME = 'config.toml';

/** One mirror of the case, as configured. */
export interface MirrorConfig {
  /** Where the mirror is: an absolute path or `file:///abs/path`. */
  readonly url: string;
  /** The UUID written in the mirror's marker; identifies the mirror whatever its mount path. */
  readonly id: string;
  /**
   * Satchel only writes to the mirror and never reads changes back from it. The probed
   * `capabilities` describe the storage and stay as probed; this flag is the user's choice.
   */
  readonly pushOnly: boolean;
  /** Seconds between polls for changes made by other writers (network mounts), if set. */
  readonly pollSeconds?: number;
  /** Client-side encryption of names and contents, in rclone's `crypt` format. */
  readonly encrypt: boolean;
  /** Encrypted mirrors: what tells a right passphrase from a wrong one (never the passphrase or a key). */
  readonly passphraseCheck?: string;
  /** Encrypted mirrors: a file holding the passphrase, read when `SATCHEL_PASSPHRASE` is not set. */
  readonly passphraseFile?: string;
  /**
   * Encrypted mirrors: the keys also take a second passphrase (rclone's `password2`, its salt),
   * read like the first (the passphrase file's second line, `SATCHEL_PASSPHRASE2`, a prompt).
   */
  readonly secondPassphrase?: boolean;
  /**
   * Folders where the mirror may be mounted instead of `url` (a stick at another mount path):
   * when `url` lacks the marker, the marker with this mirror's id is looked for up to three
   * levels below each.
   */
  readonly search?: readonly string[];
  /** What the mirror's storage can hold, probed when the mirror was added. */
  readonly capabilities?: Capabilities;
  /** FTP mirrors: the environment variable holding the password (never the password itself). */
  readonly passwordEnv?: string;
  /** FTPS mirrors: the pinned SHA-256 fingerprint of the server's certificate (`AB:CD:…`). */
  readonly ftpsFingerprint?: string;
}

/** The whole case configuration. */
export interface CaseConfig {
  /** The case's name, written into every mirror's marker. */
  readonly name: string;
  /** Mirrors by name, in the order they were added. */
  readonly mirrors: Readonly<Record<string, MirrorConfig>>;
}

/** The path of the config file of the case at `caseRoot`. */
export function configFile(caseRoot: string): string {
  return join(caseRoot, STATE_DIR_NAME, CONFIG_FILE_NAME);
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A boolean field, with the message every boolean shares. */
const flag = (): Schema<boolean> => boolean('expected true or false');

/** A whole number at least `min`, described as `what`. */
const count = (min: number, what: string): Schema<number> => {
  const message = `expected ${what}, a whole number ≥ ${min}`;
  return number(
    message,
    (v) => (Number.isInteger(v) && v >= min ? undefined : message),
    (v) => (v <= Number.MAX_SAFE_INTEGER ? undefined : `expected ${what} ≤ ${Number.MAX_SAFE_INTEGER}`),
  );
};

/** An absolute path (a string starting with `/`), described as `what`. */
const absolutePath = (expected: string, message: string): Schema<string> =>
  string(expected, (v) => (v.startsWith('/') ? undefined : message));

const capabilitiesSchema = object<Capabilities>(
  {
    readable: flag(),
    writable: flag(),
    symlinks: flag(),
    executableBit: flag(),
    caseSensitive: flag(),
    mtimeGranularityMs: count(1, 'a number of milliseconds'),
    forbiddenChars: string('expected a string of characters'),
    forbidsTrailingDotOrSpace: flag(),
    maxFileSize: count(1, 'a number of bytes'),
    maxNameLength: count(1, 'a length in characters'),
  },
  'expected a table of capabilities',
  true,
);

/** One `[mirrors.<name>]` table as written in the file. */
interface MirrorFile {
  readonly url: string;
  readonly id: string;
  readonly push_only: boolean;
  readonly poll?: number | undefined;
  readonly encrypt: boolean;
  readonly passphrase_check?: string | undefined;
  readonly passphrase_file?: string | undefined;
  readonly second_passphrase?: boolean | undefined;
  readonly search?: string[] | undefined;
  readonly capabilities?: Capabilities | undefined;
  readonly password_env?: string | undefined;
  readonly ftps_fingerprint?: string | undefined;
}

const POLL_MESSAGE = 'expected a number of seconds ≥ 1';

const mirrorSchema = object<MirrorFile>(
  {
    url: string(`expected a string: ${MIRROR_URL_FORMS}`, (v) => {
      try {
        parseMirrorUrl(v);
        return undefined;
      } catch (e) {
        // Kinds this version cannot use yet are still valid configuration; `sync` says so.
        if (e instanceof SatchelError && e.code === 'mirror-unsupported') return undefined;
        return `expected ${MIRROR_URL_FORMS} (${e instanceof Error ? e.message : String(e)})`;
      }
    }),
    id: string(
      'expected the UUID of the mirror marker',
      matches(UUID_PATTERN, 'expected the UUID of the mirror marker (like 2b7c1f3e-…)'),
    ),
    push_only: withDefault(flag(), false),
    poll: optional(
      number(
        POLL_MESSAGE,
        (v) => (v >= 1 ? undefined : POLL_MESSAGE),
        (v) => (v <= 86_400 ? undefined : 'expected a number of seconds ≤ 86400 (one day)'),
      ),
    ),
    encrypt: withDefault(flag(), false),
    passphrase_check: optional(
      string(
        'expected the passphrase check written by `satchel mirror add --encrypt`',
        matches(/^[0-9a-f]{32}$/, 'expected 32 hex digits, as written by `satchel mirror add --encrypt`'),
      ),
    ),
    second_passphrase: optional(flag()),
    passphrase_file: optional(
      absolutePath(
        'expected the absolute path of a file holding the passphrase',
        'expected an absolute path (starting with /)',
      ),
    ),
    search: optional(
      array(
        absolutePath('expected absolute folder paths', 'expected absolute folder paths (starting with /)'),
        'expected a list of absolute folder paths',
      ),
    ),
    capabilities: optional(capabilitiesSchema),
    password_env: optional(
      string(
        'expected the name of an environment variable holding the FTP password',
        matches(
          /^[A-Za-z_][A-Za-z0-9_]*$/,
          'expected the name of an environment variable (letters, digits, _), not a password',
        ),
      ),
    ),
    ftps_fingerprint: optional(
      string(
        'expected the SHA-256 fingerprint of the FTPS certificate',
        matches(
          /^([0-9A-Fa-f]{2}:){31}[0-9A-Fa-f]{2}$/,
          'expected a SHA-256 fingerprint: 32 hex pairs separated by colons (AB:CD:…)',
        ),
      ),
    ),
  },
  'expected a table of mirror settings',
  true,
);

/** The whole file as written. */
interface ConfigFile {
  readonly case: { readonly name?: string | undefined };
  readonly mirrors: Record<string, MirrorFile>;
}

const fileSchema = object<ConfigFile>(
  {
    case: withDefault(
      object<ConfigFile['case']>(
        {
          name: optional(
            string(
              'expected a string',
              (v) => (v.length >= 1 ? undefined : 'expected a non-empty name'),
              (v) => (v.length <= 255 ? undefined : 'expected a name of at most 255 characters'),
              // eslint-disable-next-line no-control-regex
              matches(/^[^\u0000-\u001f\u007f]*$/, 'expected a name without control characters'),
            ),
          ),
        },
        'expected a table',
        true,
      ),
      {},
    ),
    mirrors: withDefault(
      record(
        (name) =>
          MIRROR_NAME_PATTERN.test(name)
            ? undefined
            : 'expected a mirror name of 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit',
        mirrorSchema,
        'expected a table of mirrors',
      ),
      {},
    ),
  },
  'expected a TOML document',
  true,
);

/**
 * The hint of a config error: a mistake inside one mirror's table can also be undone by removing
 * that mirror (which works on a config that does not load, see {@link removeMirrorFromFile}).
 */
function editHint(file: string, mirror?: string): string {
  return mirror === undefined
    ? `fix ${file} by hand`
    : `fix ${file} by hand, or remove the mirror with \`satchel mirror remove ${mirror}\` and add it again`;
}

/** The value at `path` in the parsed TOML, or `undefined` when absent. */
function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let value = raw;
  for (const key of path) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

/**
 * The issue to report: an unknown key first (a misspelt key also makes the intended one look
 * missing, and the misspelling is what the user has to fix), else the first one.
 */
function firstIssue(issues: readonly Issue[]): Issue | undefined {
  return issues.find((i) => i.kind === 'unknown-key') ?? issues[0];
}

/** Describes an issue as `key.path: what is allowed`. */
function describeIssue(issue: Issue): { key: string; message: string } {
  const at = issue.path.map(String);
  switch (issue.kind) {
    case 'unknown-key':
      return {
        key: [...at, issue.keys[0] ?? ''].join('.'),
        message: `unknown key (allowed here: ${issue.allowed.join(', ')})`,
      };
    case 'missing':
      return { key: at.join('.'), message: `missing; ${issue.message}` };
    default:
      return { key: at.join('.'), message: issue.message };
  }
}

/**
 * Reads and validates the config of the case at `caseRoot`. Throws `config-invalid` when the
 * file is missing, is not valid TOML (naming line and column), or holds an unknown key, a value
 * of the wrong type or a value out of range (naming the key and what is allowed).
 */
export function loadConfig(caseRoot: string): CaseConfig {
  const file = configFile(caseRoot);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw new SatchelError(
      'config-invalid',
      `${file}: ${missing ? 'file not found' : (cause as Error).message}`,
      {
        hint: missing
          ? `the case config is gone; run \`satchel init\` in ${caseRoot} to write a new one, then add the mirrors again`
          : `check the permissions of ${file}`,
        data: { file },
        cause,
      },
    );
  }
  if (text.replace(/^\s*#.*$/gm, '').trim() === '') {
    // Written atomically by Satchel, so emptied by hand or by a full disk: never "no mirrors".
    throw new SatchelError('config-invalid', `${file}: the file is empty`, {
      hint: `write the case's settings back into it (\`[case]\` and the \`[mirrors.<name>]\` tables), or delete it and run \`satchel init\` in ${caseRoot}, then add the mirrors again`,
      data: { file },
    });
  }
  const config = validate(file, parseConfigText(file, text), caseRoot);
  checkMirrorFolders(file, config, caseRoot);
  return config;
}

/**
 * Refuses a path mirror whose folder is the case, lies inside it or contains it (an edit by
 * hand; `mirror add` refuses it too): every sync would copy the case into itself, one level
 * deeper each time, and `watch` would do so without end.
 */
function checkMirrorFolders(file: string, config: CaseConfig, caseRoot: string): void {
  const theCase = realOrAbsolute(caseRoot);
  for (const [name, m] of Object.entries(config.mirrors)) {
    const url = parseMirrorUrl(m.url);
    if (url.kind !== 'path') continue;
    const root = realOrAbsolute(url.root);
    if (!isWithin(root, theCase) && !isWithin(theCase, root)) continue;
    const where = isWithin(root, theCase) ? `is inside the case ${theCase}` : `contains the case ${theCase}`;
    throw new SatchelError('config-invalid', `${file}: mirrors.${name}.url: the folder ${root} ${where}`, {
      hint: `a mirror must be a folder outside the case; ${editHint(file, name)}`,
      data: { file, key: `mirrors.${name}.url`, mirror: name },
    });
  }
}

/** The config file's text parsed as TOML; a syntax error names the line and column. */
function parseConfigText(file: string, text: string): unknown {
  try {
    return parseToml(text);
  } catch (cause) {
    if (!(cause instanceof TomlError)) throw cause;
    const what = cause.message.split('\n')[0]?.replace(/^Invalid TOML document: /, '') ?? 'syntax error';
    throw new SatchelError(
      'config-invalid',
      `${file}:${cause.line}:${cause.column}: TOML syntax error: ${what}`,
      {
        hint: editHint(file),
        data: { file, line: cause.line, column: cause.column },
        cause,
      },
    );
  }
}

/** Validates the parsed file `raw`; an invalid one throws, naming the key and what is allowed. */
function validate(file: string, raw: unknown, caseRoot: string): CaseConfig {
  const parsed = validateSchema(fileSchema, raw);
  if (!parsed.ok) {
    const issue = firstIssue(parsed.issues);
    const { key, message } = issue === undefined ? { key: '', message: 'invalid' } : describeIssue(issue);
    // `mirrors.<name>.…`: the data names the mirror, so `mirror remove <name>` can drop it.
    const path = issue?.path ?? [];
    const mirror = path[0] === 'mirrors' && typeof path[1] === 'string' ? path[1] : undefined;
    throw new SatchelError('config-invalid', `${file}: ${key}: ${message}`, {
      hint: editHint(file, mirror),
      data: { file, key, ...(mirror === undefined ? {} : { mirror }) },
    });
  }
  return fromFile(parsed.value, caseRoot);
}

/**
 * Removes mirror `name` from the config file even when its entry does not validate (a hand edit
 * gone wrong): the rest must still be valid. Returns the removed entry's `id` and `url` when
 * they were strings (to drop the mirror's state), or undefined when there is no such mirror.
 * The caller holds the case lock.
 */
export function removeMirrorFromFile(
  caseRoot: string,
  name: string,
): { readonly id?: string; readonly url?: string } | undefined {
  const file = configFile(caseRoot);
  const raw = parseConfigText(file, readFileSync(file, 'utf8'));
  const mirrors = valueAt(raw, ['mirrors']);
  if (typeof mirrors !== 'object' || mirrors === null || !Object.hasOwn(mirrors, name)) return undefined;
  const entry = (mirrors as Record<string, unknown>)[name];
  delete (mirrors as Record<string, unknown>)[name];
  saveConfig(caseRoot, validate(file, raw, caseRoot));
  const field = (key: string): string | undefined => {
    const v = valueAt(entry, [key]);
    return typeof v === 'string' ? v : undefined;
  };
  const id = field('id');
  const url = field('url');
  return { ...(id === undefined ? {} : { id }), ...(url === undefined ? {} : { url }) };
}

/** Converts the validated file contents to a {@link CaseConfig}. */
function fromFile(data: ConfigFile, caseRoot: string): CaseConfig {
  const mirrors: Record<string, MirrorConfig> = {};
  for (const [name, m] of Object.entries(data.mirrors)) {
    mirrors[name] = {
      url: m.url,
      id: m.id,
      pushOnly: m.push_only,
      encrypt: m.encrypt,
      ...(m.passphrase_check === undefined ? {} : { passphraseCheck: m.passphrase_check }),
      ...(m.passphrase_file === undefined ? {} : { passphraseFile: m.passphrase_file }),
      ...(m.second_passphrase === true ? { secondPassphrase: true } : {}),
      ...(m.poll === undefined ? {} : { pollSeconds: m.poll }),
      ...(m.search === undefined ? {} : { search: m.search }),
      ...(m.capabilities === undefined ? {} : { capabilities: m.capabilities }),
      ...(m.password_env === undefined ? {} : { passwordEnv: m.password_env }),
      ...(m.ftps_fingerprint === undefined ? {} : { ftpsFingerprint: m.ftps_fingerprint }),
    };
  }
  return { name: data.case.name ?? basename(caseRoot), mirrors };
}

/** Renders `config` as the TOML text {@link loadConfig} reads back to the same value. */
export function renderConfig(config: CaseConfig): string {
  const mirrors: Record<string, Record<string, unknown>> = {};
  for (const [name, m] of Object.entries(config.mirrors)) {
    mirrors[name] = {
      url: m.url,
      id: m.id,
      push_only: m.pushOnly,
      ...(m.pollSeconds === undefined ? {} : { poll: m.pollSeconds }),
      encrypt: m.encrypt,
      ...(m.passphraseCheck === undefined ? {} : { passphrase_check: m.passphraseCheck }),
      ...(m.passphraseFile === undefined ? {} : { passphrase_file: m.passphraseFile }),
      ...(m.secondPassphrase === true ? { second_passphrase: true } : {}),
      ...(m.search === undefined ? {} : { search: [...m.search] }),
      ...(m.passwordEnv === undefined ? {} : { password_env: m.passwordEnv }),
      ...(m.ftpsFingerprint === undefined ? {} : { ftps_fingerprint: m.ftpsFingerprint }),
      ...(m.capabilities === undefined ? {} : { capabilities: { ...m.capabilities } }),
    };
  }
  const header = '# Satchel case configuration. Edit with care; `satchel mirror add/remove` rewrite it.\n\n';
  return header + stringifyToml({ case: { name: config.name }, mirrors }) + '\n';
}

/**
 * Writes `config` to the case at `caseRoot` atomically: a temporary file in the same folder,
 * flushed, then renamed over the old one (and the folder flushed), so a crash leaves either the
 * old or the new config, never half of one.
 */
export function saveConfig(caseRoot: string, config: CaseConfig): void {
  const file = configFile(caseRoot);
  const temp = join(dirname(file), `.${CONFIG_FILE_NAME}.tmp-${process.pid}`);
  try {
    const fd = openSync(temp, 'w', 0o644);
    try {
      writeSync(fd, renderConfig(config));
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(temp, file);
    const dir = openSync(dirname(file), 'r');
    try {
      fsyncSync(dir);
    } finally {
      closeSync(dir);
    }
  } catch (cause) {
    rmSync(temp, { force: true });
    throw new SatchelError('io', `cannot write ${file}: ${(cause as Error).message}`, {
      hint: `check that ${dirname(file)} is writable and the disk is not full`,
      data: { file },
      cause,
    });
  }
}
