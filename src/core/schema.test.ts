import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  array,
  boolean,
  literal,
  matches,
  number,
  object,
  optional,
  record,
  string,
  validate,
  withDefault,
} from './schema.js';

interface Thing {
  readonly name: string;
  readonly size?: number | undefined;
  readonly on: boolean;
  readonly tags?: string[] | undefined;
}

const thing = object<Thing>(
  {
    name: string('expected a name', matches(/^[a-z]+$/, 'expected lower-case letters')),
    size: optional(number('expected a size', (v) => (v >= 0 ? undefined : 'expected a size ≥ 0'))),
    on: withDefault(boolean('expected true or false'), true),
    tags: optional(array(string('expected a tag'), 'expected a list of tags')),
  },
  'expected a thing',
  true,
);

describe('schema', () => {
  it('accepts a valid value, fills defaults and leaves absent optionals out', () => {
    assert.deepEqual(validate(thing, { name: 'box' }), { ok: true, value: { name: 'box', on: true } });
    assert.deepEqual(validate(thing, { name: 'box', size: 3, on: false, tags: ['a'] }), {
      ok: true,
      value: { name: 'box', size: 3, on: false, tags: ['a'] },
    });
  });
  it('reports each issue with its path and what is allowed', () => {
    const r = validate(thing, { name: 'Box', size: -1, on: 'yes', tags: ['a', 2], colour: 'red' });
    assert.equal(r.ok, false);
    assert.deepEqual(!r.ok && r.issues.map((i) => [i.kind, i.path.join('.'), i.message]), [
      ['invalid', 'name', 'expected lower-case letters'],
      ['invalid', 'size', 'expected a size ≥ 0'],
      ['invalid', 'on', 'expected true or false'],
      ['invalid', 'tags.1', 'expected a tag'],
      ['unknown-key', '', 'unknown key colour'],
    ]);
    const unknown = !r.ok ? r.issues.find((i) => i.kind === 'unknown-key') : undefined;
    assert.deepEqual(unknown?.kind === 'unknown-key' && unknown.allowed, ['name', 'size', 'on', 'tags']);
  });
  it('reports a missing required key and a value of the wrong shape', () => {
    const r = validate(thing, {});
    assert.deepEqual(!r.ok && r.issues, [{ kind: 'missing', path: ['name'], message: 'expected a name' }]);
    assert.deepEqual(!validate(thing, [1]).ok && (validate(thing, [1]) as { issues: unknown }).issues, [
      { kind: 'invalid', path: [], message: 'expected a thing' },
    ]);
    assert.equal(validate(number('n'), Number.NaN).ok, false, 'NaN is not a number here');
  });
  it('checks record keys and values; a non-strict object drops unknown keys', () => {
    const r = validate(
      record(
        (k) => (k.length <= 3 ? undefined : 'expected a short name'),
        literal(1, 'expected 1'),
        'expected a map',
      ),
      { abc: 1, long: 1, x: 2 },
    );
    assert.deepEqual(!r.ok && r.issues.map((i) => [i.kind, i.path.join('.')]), [
      ['bad-key', 'long'],
      ['invalid', 'x'],
    ]);
    const loose = object<{ readonly a: number }>({ a: number('n') }, 'expected an object', false);
    assert.deepEqual(validate(loose, { a: 1, b: 2 }), { ok: true, value: { a: 1 } });
  });
});
