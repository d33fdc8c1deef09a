/**
 * @module cli/output
 * What every command shares: where it works (`-C <dir>` or the current folder), printing for
 * people or as `--json`, and turning errors into the contract's exit codes:
 * 0 success; 1 failure, with one line `satchel: <reason>` and one `hint: …` line on stderr (and,
 * with `--json`, `{"error": {"code", "message", "hint"}}` on stdout); 2 bad usage.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { SatchelError } from '../core/errors.js';
import { visible } from '../core/visible.js';
import { openCase, type CaseContext } from '../daemon/case.js';

/** Exit code of a successful run. */
export const EXIT_OK = 0;
/** Exit code of a failed run. */
export const EXIT_FAILURE = 1;
/** Exit code of bad usage (unknown command or option, missing or malformed argument). */
export const EXIT_USAGE = 2;

/** What the commands need from the program they belong to. */
export interface Cli {
  /** The folder the command works from: `-C <dir>` resolved, or the current folder. */
  dir(): string;
}

/** Options every state-printing command takes. */
export interface JsonOption {
  /** Print JSON on stdout instead of text. */
  readonly json?: boolean;
}

/** The error object printed on failure (also the `error` member of `--json` output). */
export interface ErrorInfo {
  readonly code: string;
  readonly message: string;
  readonly hint: string;
}

/** Adds the `--json` option to `command`. */
export function withJsonOption(command: Command): Command {
  return command.option('--json', 'print the result as JSON on stdout');
}

/** Makes the {@link Cli} of `program`, reading its global `-C <dir>` option when asked. */
export function cliOf(program: Command): Cli {
  return {
    dir: () => {
      const c = program.opts<{ C?: string }>().C;
      return c === undefined ? process.cwd() : resolve(c);
    },
  };
}

/** Writes lines to stdout (control characters in them, as a file name may hold, as escapes). */
export function say(...lines: readonly string[]): void {
  if (lines.length > 0) process.stdout.write(lines.map(visible).join('\n') + '\n');
}

/** Writes `value` as the one JSON document on stdout. */
export function printJson(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, jsonLines ? undefined : 2) + '\n');
}

/** Set by a command whose stdout is JSON lines (`watch --json`): every document on one line. */
let jsonLines = false;

/** Makes every later {@link printJson} print one line (see `jsonLines`). */
export function useJsonLines(): void {
  jsonLines = true;
}

/** An ISO 8601 time for JSON and messages, or `null` when unknown. */
export function isoTime(ms: number | undefined): string | null {
  return ms === undefined || !Number.isFinite(ms) ? null : new Date(ms).toISOString();
}

/** A short local time for people (`2026-01-05 14:03:12`). */
export function localTime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/** `1 conflict`, `3 conflicts`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

/** The code, message and hint of any error; unexpected ones are `internal`. */
export function errorInfo(error: unknown): ErrorInfo {
  if (error instanceof SatchelError) {
    return { code: error.code, message: error.message, hint: error.hint ?? 'see `satchel --help`' };
  }
  const message = error instanceof Error ? error.message : String(error);
  return {
    code: 'internal',
    message: `internal error: ${message}`,
    hint: 'this is a bug in satchel; please report it with the command you ran and this message',
  };
}

/** The exit code for an error: 2 for usage errors, 1 for everything else. */
export function exitCodeOf(error: unknown): number {
  return error instanceof SatchelError && error.code === 'usage' ? EXIT_USAGE : EXIT_FAILURE;
}

/** Prints a failure: `satchel: <reason>` and `hint: …` on stderr, plus `{"error": …}` on stdout with --json. */
export function printFailure(info: ErrorInfo, json: boolean, extra: Record<string, unknown> = {}): void {
  if (json) printJson({ ...extra, error: info });
  process.stderr.write(`satchel: ${visible(info.message)}\nhint: ${visible(info.hint)}\n`);
}

/**
 * Runs a command's body and sets the process exit code: what the body returns (default 0), or
 * the failure code after printing the error it threw.
 */
export async function runAction(options: JsonOption, body: () => Promise<number | void>): Promise<void> {
  try {
    process.exitCode = (await body()) ?? EXIT_OK;
  } catch (error) {
    printFailure(errorInfo(error), options.json === true);
    process.exitCode = exitCodeOf(error);
  }
}

/** Opens the case containing the command's folder, runs `fn` and closes the case whatever happens. */
export async function withCase<T>(cli: Cli, fn: (ctx: CaseContext) => Promise<T>): Promise<T> {
  const ctx = openCase(cli.dir());
  try {
    return await fn(ctx);
  } finally {
    ctx.close();
  }
}
