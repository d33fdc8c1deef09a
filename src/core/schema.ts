/**
 * @module core/schema
 * A small validator for the few structured files Satchel reads (the case config, the mirror
 * marker): typed schemas that collect every issue with the path of the key it concerns and a
 * message saying what is allowed. It replaced zod, whose loading alone cost ~40 ms of CPU on
 * every `satchel` run (measured: 99 files, against ~2 ms for this module) for the same checks.
 */

/** A key or index on the way to a value. */
export type PathKey = string | number;

/** One thing wrong with a validated value. */
export type Issue =
  | {
      /** An object holds keys its schema does not know. */
      readonly kind: 'unknown-key';
      readonly path: readonly PathKey[];
      readonly keys: readonly string[];
      /** The keys the object may hold. */
      readonly allowed: readonly string[];
      readonly message: string;
    }
  | {
      /** A required key is missing (`message` says what it should hold). */
      readonly kind: 'missing';
      readonly path: readonly PathKey[];
      readonly message: string;
    }
  | {
      /** A value (or a record's key, for `bad-key`) is not what is allowed. */
      readonly kind: 'invalid' | 'bad-key';
      readonly path: readonly PathKey[];
      readonly message: string;
    };

/** Marks a value that did not validate (its issues were recorded). */
const INVALID: unique symbol = Symbol('invalid');
type Invalid = typeof INVALID;

/** A schema producing a `T` from an unknown value. */
export interface Schema<T> {
  /** Validates `value` found at `path`, recording issues; the result, or INVALID. */
  readonly check: (value: unknown, path: readonly PathKey[], issues: Issue[]) => T | Invalid;
  /** Whether an absent key is fine (an optional or defaulted field). */
  readonly mayBeAbsent?: boolean;
  /** What the value should be, for `missing` issues. */
  readonly expected: string;
}

/** A check of a value of the right type: undefined when fine, else the message. */
export type Rule<T> = (value: T) => string | undefined;

function primitive<T>(
  expected: string,
  is: (value: unknown) => value is T,
  rules: readonly Rule<T>[],
): Schema<T> {
  return {
    expected,
    check: (value, path, issues) => {
      if (!is(value)) {
        issues.push({ kind: 'invalid', path, message: expected });
        return INVALID;
      }
      for (const rule of rules) {
        const message = rule(value);
        if (message !== undefined) {
          issues.push({ kind: 'invalid', path, message });
          return INVALID;
        }
      }
      return value;
    },
  };
}

/** A string, `expected` describing it, that passes every rule. */
export function string(expected: string, ...rules: Rule<string>[]): Schema<string> {
  return primitive(expected, (v): v is string => typeof v === 'string', rules);
}

/** A finite number that passes every rule. */
export function number(expected: string, ...rules: Rule<number>[]): Schema<number> {
  return primitive(expected, (v): v is number => typeof v === 'number' && Number.isFinite(v), rules);
}

/** true or false. */
export function boolean(expected: string): Schema<boolean> {
  return primitive(expected, (v): v is boolean => typeof v === 'boolean', []);
}

/** Exactly `literal`. */
export function literal<T extends string | number | boolean>(literal: T, expected: string): Schema<T> {
  return primitive(expected, (v): v is T => v === literal, []);
}

/** A rule: the string matches `pattern`. */
export function matches(pattern: RegExp, message: string): Rule<string> {
  return (v) => (pattern.test(v) ? undefined : message);
}

/** An array whose items all satisfy `item`. */
export function array<T>(item: Schema<T>, expected: string): Schema<T[]> {
  return {
    expected,
    check: (value, path, issues) => {
      if (!Array.isArray(value)) {
        issues.push({ kind: 'invalid', path, message: expected });
        return INVALID;
      }
      const out: T[] = [];
      let ok = true;
      value.forEach((v, i) => {
        const r = item.check(v, [...path, i], issues);
        if (r === INVALID) ok = false;
        else out.push(r);
      });
      return ok ? out : INVALID;
    },
  };
}

/** `schema`, or absent (undefined). */
export function optional<T>(schema: Schema<T>): Schema<T | undefined> {
  return {
    expected: schema.expected,
    mayBeAbsent: true,
    check: (value, path, issues) => (value === undefined ? undefined : schema.check(value, path, issues)),
  };
}

/** `schema`, or `fallback` when absent. */
export function withDefault<T>(schema: Schema<T>, fallback: T): Schema<T> {
  return {
    expected: schema.expected,
    mayBeAbsent: true,
    check: (value, path, issues) => (value === undefined ? fallback : schema.check(value, path, issues)),
  };
}

/** The schema of each field of `T`. */
export type Shape<T> = { readonly [K in keyof T]-?: Schema<T[K]> };

/**
 * A plain object with the fields of `shape`. `strict`: other keys are an `unknown-key` issue;
 * otherwise they are left out of the result (a newer writer's additions).
 */
export function object<T>(shape: Shape<T>, expected: string, strict: boolean): Schema<T> {
  const keys = Object.keys(shape) as (keyof T & string)[];
  return {
    expected,
    check: (value, path, issues) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) {
        issues.push({ kind: 'invalid', path, message: expected });
        return INVALID;
      }
      const input = value as Record<string, unknown>;
      const out: Partial<T> = {};
      let ok = true;
      for (const key of keys) {
        const field = shape[key];
        const v = Object.hasOwn(input, key) ? input[key] : undefined;
        if (v === undefined && !field.mayBeAbsent) {
          issues.push({ kind: 'missing', path: [...path, key], message: field.expected });
          ok = false;
          continue;
        }
        const r = field.check(v, [...path, key], issues);
        if (r === INVALID) ok = false;
        else if (r !== undefined) out[key] = r;
      }
      if (strict) {
        const unknown = Object.keys(input).filter((k) => !Object.hasOwn(shape, k));
        if (unknown.length > 0) {
          issues.push({
            kind: 'unknown-key',
            path,
            keys: unknown,
            allowed: keys,
            message: `unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}`,
          });
          ok = false;
        }
      }
      return ok ? (out as T) : INVALID;
    },
  };
}

/** An object used as a map: every key passes `key` (a rule), every value `value`. */
export function record<T>(key: Rule<string>, value: Schema<T>, expected: string): Schema<Record<string, T>> {
  return {
    expected,
    check: (input, path, issues) => {
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        issues.push({ kind: 'invalid', path, message: expected });
        return INVALID;
      }
      const out: Record<string, T> = {};
      let ok = true;
      for (const [k, v] of Object.entries(input)) {
        const bad = key(k);
        if (bad !== undefined) {
          issues.push({ kind: 'bad-key', path: [...path, k], message: bad });
          ok = false;
          continue;
        }
        const r = value.check(v, [...path, k], issues);
        if (r === INVALID) ok = false;
        else out[k] = r;
      }
      return ok ? out : INVALID;
    },
  };
}

/** The outcome of {@link validate}. */
export type Validation<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly issues: readonly Issue[] };

/** Validates `value` against `schema`: the value, or every issue found. */
export function validate<T>(schema: Schema<T>, value: unknown): Validation<T> {
  const issues: Issue[] = [];
  const r = schema.check(value, [], issues);
  return r === INVALID || issues.length > 0 ? { ok: false, issues } : { ok: true, value: r };
}
