/**
 * @module core/errors
 * Fatal errors: thrown only when an operation cannot go on at all. Each has a stable `code`
 * scripts can match, a one-line `message`, and a `hint` saying what the user can do.
 * Per-path trouble is a {@link Problem} instead, returned as data.
 */

/** Stable error codes. */
export type SatchelErrorCode =
  | 'usage'
  | 'not-a-case'
  | 'already-a-case'
  | 'config-invalid'
  | 'mirror-unknown'
  | 'mirror-exists'
  | 'mirror-absent'
  | 'mirror-unsupported'
  | 'mirror-halted'
  | 'case-locked'
  | 'host-key-unknown'
  | 'host-key-changed'
  | 'auth-failed'
  | 'conflict-unknown'
  | 'io';

/** A fatal error with a code, a hint for the user and optional structured data. */
export class SatchelError extends Error {
  /** Stable machine-readable code. */
  readonly code: SatchelErrorCode;
  /** What the user can do about it, one line. */
  readonly hint: string | undefined;
  /** Structured details for `--json` output. */
  readonly data: Readonly<Record<string, unknown>> | undefined;

  constructor(
    code: SatchelErrorCode,
    message: string,
    options: { hint?: string; data?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SatchelError';
    this.code = code;
    this.hint = options.hint;
    this.data = options.data;
  }
}
