/**
 * @module core/visible
 * Text for a terminal: the control characters a file name may hold (a newline, a tab, an
 * escape sequence) shown as C-style escapes, so that one name never spans two lines of output
 * and never drives the terminal. JSON output keeps names as they are.
 */

const NAMED: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };

/** `text` with every C0 and C1 control character and DEL written as `\n`, `\t`, `\r` or `\xHH`. */
export function visible(text: string): string {
  return text.replace(
    // eslint-disable-next-line no-control-regex
    /[\u0000-\u001f\u007f-\u009f]/g,
    (c) => NAMED[c] ?? `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}
