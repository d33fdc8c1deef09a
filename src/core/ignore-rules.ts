/**
 * @module core/ignore-rules
 * Which paths of the case are left out of replication: the case's `.satchelignore` (gitignore
 * syntax, replicated with the case) on top of built-in rules for editor temporary files and
 * transient git lock files. Pure: the caller reads the file and passes its text.
 *
 * The built-in rules come first, so a user rule starting with `!` re-includes a default (for
 * example `!*~` replicates backup files again). `.git` itself is replicated: people carry their
 * repository home on the stick; only git's short-lived `*.lock` files below it are ignored.
 * As in git, a path below an ignored directory is ignored too, whatever later rules say.
 */
import ignore, { type Ignore } from 'ignore';

/** The name of the ignore file at the case root. */
export const IGNORE_FILE_NAME = '.satchelignore';

/**
 * Built-in rules, in gitignore syntax, applied before the user's own. Each line says why:
 * these files exist for seconds while an editor or git works, and replicating them would only
 * lock or confuse the same program on another computer.
 */
export const DEFAULT_IGNORE_RULES: readonly string[] = Object.freeze([
  // vim swap files (`.notes.txt.swp`, and `x.swp` when 'directory' puts them elsewhere)
  '.*.swp',
  '.*.swo',
  '.*.swx',
  '*.swp',
  // vim probes whether it may create files in a folder by writing `4913`
  '4913',
  // backup copies kept by vim, emacs, nano and others
  '*~',
  // emacs auto-save files `#notes.txt#` (escaped: `#` starts a comment) and lock links `.#notes.txt`
  '\\#*#',
  '.#*',
  // office lock files: Microsoft Office `~$report.docx`, LibreOffice `.~lock.report.odt#`
  '~$*',
  '.~lock.*#',
  // JetBrains "safe write": the new content as `x___jb_tmp___`, the old kept as `x___jb_old___`
  '*___jb_tmp___',
  '*___jb_old___',
  // transient git lock files: `.git/index.lock`, `.git/refs/heads/main.lock`, also in nested repositories
  '**/.git/**/*.lock',
]);

/** The case's ignore rules: built-in defaults plus the user's `.satchelignore`. */
export class IgnoreRules {
  readonly #matcher: Ignore;

  private constructor(matcher: Ignore) {
    this.#matcher = matcher;
  }

  /**
   * Builds the rules from the text of `.satchelignore`, or from the defaults alone when the
   * case has no such file (`undefined`). Matching is case-sensitive, as paths are in the case.
   */
  static fromText(text: string | undefined): IgnoreRules {
    const matcher = ignore({ ignorecase: false }).add([...DEFAULT_IGNORE_RULES]);
    if (text !== undefined) matcher.add(text);
    return new IgnoreRules(matcher);
  }

  /**
   * Whether `path` (relative to the case root, `/`-separated, no leading slash) is left out.
   * `isDirectory` matters for rules ending in `/`, which match directories only.
   */
  ignores(path: string, isDirectory: boolean): boolean {
    if (path === '') return false;
    return this.#matcher.ignores(isDirectory ? `${path}/` : path);
  }
}
