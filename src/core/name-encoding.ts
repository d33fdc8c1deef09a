/**
 * @module core/name-encoding
 * Reversible encoding of name segments a mirror cannot store as they are, in the manner of
 * rclone's `lib/encoder`: every forbidden character is replaced by a look-alike, so that a FAT
 * stick shows `a：b.txt` for the case's `a:b.txt`, and decoding gives back the exact name.
 *
 * The rules, applied only when {@link needsEncoding} is true:
 * - a forbidden ASCII character `c` (`:?*<>|"\` on FAT) becomes its fullwidth form
 *   (U+FF01..U+FF5E, `：？＊＜＞｜＂＼`); a forbidden control character becomes its control
 *   picture (U+2400..U+241F);
 * - with `forbidsTrailingDotOrSpace`, a final `.` becomes `．` (U+FF0E) and a final space `␠`
 *   (U+2420);
 * - a character of the name that is itself one of the replacements in use, or the quote
 *   character `‛` (U+201B), is written as `‛` followed by that character, so that decoding
 *   can tell a replacement from a character the user typed.
 *
 * Pure: no I/O.
 */
import type { Capabilities } from './capabilities.js';

/** The quote (escape) character: `‛` (U+201B SINGLE HIGH-REVERSED-9 QUOTATION MARK). */
export const QUOTE_CHAR = '\u201b';
/** What a trailing `.` becomes: `．` (U+FF0E FULLWIDTH FULL STOP). */
const TRAILING_DOT = '\uff0e';
/** What a trailing space becomes: `␠` (U+2420 SYMBOL FOR SPACE). */
const TRAILING_SPACE = '\u2420';

/** The capability fields that decide the encoding. */
export type EncodingCapabilities = Pick<Capabilities, 'forbiddenChars' | 'forbidsTrailingDotOrSpace'>;

/** The replacement tables derived from one set of capabilities. */
interface Table {
  /** Forbidden character → replacement. */
  readonly encode: ReadonlyMap<string, string>;
  /** Replacement (anywhere in a name) → forbidden character. */
  readonly decode: ReadonlyMap<string, string>;
  readonly trailing: boolean;
}

const tables = new Map<string, Table>();

/** The look-alike of one forbidden character. */
function replacementOf(c: string): string {
  const code = c.codePointAt(0)!;
  if (code > 0x20 && code < 0x7f) return String.fromCodePoint(code + 0xfee0);
  if (code < 0x20) return String.fromCodePoint(code + 0x2400);
  throw new Error(`bug: no replacement character for forbidden character U+${code.toString(16)}`);
}

function tableFor(caps: EncodingCapabilities): Table {
  const key = `${caps.forbidsTrailingDotOrSpace ? 1 : 0}${caps.forbiddenChars}`;
  let table = tables.get(key);
  if (table === undefined) {
    const encode = new Map<string, string>();
    const decode = new Map<string, string>();
    for (const c of caps.forbiddenChars) {
      const r = replacementOf(c);
      encode.set(c, r);
      decode.set(r, c);
    }
    table = { encode, decode, trailing: caps.forbidsTrailingDotOrSpace };
    tables.set(key, table);
  }
  return table;
}

/** Whether names must be encoded at all for storage with `caps`. */
export function needsEncoding(caps: EncodingCapabilities): boolean {
  return caps.forbiddenChars !== '' || caps.forbidsTrailingDotOrSpace;
}

/** Encodes one name segment (no `/`) for storage with `caps`. */
export function encodeSegment(name: string, caps: EncodingCapabilities): string {
  if (!needsEncoding(caps)) return name;
  const table = tableFor(caps);
  const chars = Array.from(name);
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    const last = i === chars.length - 1;
    const replacement = table.encode.get(c);
    if (replacement !== undefined) {
      out += replacement;
    } else if (c === QUOTE_CHAR || table.decode.has(c)) {
      out += QUOTE_CHAR + c;
    } else if (last && table.trailing && (c === '.' || c === ' ')) {
      out += c === '.' ? TRAILING_DOT : TRAILING_SPACE;
    } else if (last && table.trailing && (c === TRAILING_DOT || c === TRAILING_SPACE)) {
      out += QUOTE_CHAR + c;
    } else {
      out += c;
    }
  }
  return out;
}

/** Decodes one stored name segment back to the case's spelling (the inverse of {@link encodeSegment}). */
export function decodeSegment(name: string, caps: EncodingCapabilities): string {
  if (!needsEncoding(caps)) return name;
  const table = tableFor(caps);
  const chars = Array.from(name);
  let out = '';
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i]!;
    const last = i === chars.length - 1;
    if (c === QUOTE_CHAR && !last) {
      // An escaped character stands for itself.
      out += chars[++i]!;
    } else if (table.decode.has(c)) {
      out += table.decode.get(c)!;
    } else if (last && table.trailing && c === TRAILING_DOT) {
      out += '.';
    } else if (last && table.trailing && c === TRAILING_SPACE) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

/** Encodes every segment of a `/`-separated relative path. */
export function encodePath(path: string, caps: EncodingCapabilities): string {
  if (!needsEncoding(caps)) return path;
  return path
    .split('/')
    .map((s) => encodeSegment(s, caps))
    .join('/');
}

/** Decodes every segment of a stored `/`-separated relative path. */
export function decodePath(path: string, caps: EncodingCapabilities): string {
  if (!needsEncoding(caps)) return path;
  return path
    .split('/')
    .map((s) => decodeSegment(s, caps))
    .join('/');
}
