/** Tests of scope helpers. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Entry } from './entry.js';
import { inScope, normalizeScope, restrictSnapshot, scopeAncestors } from './scope.js';

test('normalizeScope keeps outermost paths only', () => {
  assert.deepEqual(normalizeScope(['a/b', 'a', 'c/d', 'c/d/e', 'cc']), ['a', 'c/d', 'cc']);
  assert.deepEqual(normalizeScope(['x', '']), ['']);
});

test('inScope covers paths below and folders above, nothing beside', () => {
  const scope = ['a/b'];
  assert.equal(inScope('a/b', scope), true);
  assert.equal(inScope('a/b/c', scope), true);
  assert.equal(inScope('a', scope), true);
  assert.equal(inScope('a/bc', scope), false);
  assert.equal(inScope('a/c', scope), false);
  assert.equal(inScope('anything', ['']), true);
  assert.deepEqual([...scopeAncestors(['a/b/c', 'x'])], ['a', 'a/b']);
});

test('restrictSnapshot filters by scope', () => {
  const D: Entry = { kind: 'directory' };
  const snap = new Map<string, Entry>([
    ['a', D],
    ['a/b', D],
    ['a/b/f', D],
    ['a/c', D],
  ]);
  assert.deepEqual([...restrictSnapshot(snap, ['a/b']).keys()], ['a', 'a/b', 'a/b/f']);
});
