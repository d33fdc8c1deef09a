/** Tests of rename detection on one side. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { detectRenames } from './renames.js';
import { F1, F2, file, snap } from './testing.js';

describe('detectRenames', () => {
  it('matches a removed and a created file by content and bit', () => {
    const current = snap({ a: F1, b: F2 });
    const target = snap({ c: F1, d: file('2222', 5, true) });
    assert.deepEqual(detectRenames(current, target, ['a', 'b'], ['c', 'd'], true), [{ from: 'a', to: 'c' }]);
    // Without executable bits, content alone decides.
    assert.deepEqual(detectRenames(current, target, ['a', 'b'], ['c', 'd'], false), [
      { from: 'a', to: 'c' },
      { from: 'b', to: 'd' },
    ]);
  });

  it('does not guess between equal candidates', () => {
    const current = snap({ a: F1, b: F1 });
    assert.deepEqual(detectRenames(current, snap({ c: F1 }), ['a', 'b'], ['c'], true), []);
  });

  it('renames the outermost equal folder, and nothing inside it again', () => {
    const current = snap({ 'x/y/f': F1, 'x/g': F2 });
    const target = snap({ 'p/q/y/f': F1, 'p/q/g': F2 });
    const removed = ['x', 'x/y', 'x/y/f', 'x/g'];
    const created = ['p', 'p/q', 'p/q/y', 'p/q/y/f', 'p/q/g'];
    assert.deepEqual(detectRenames(current, target, removed, created, true), [{ from: 'x', to: 'p/q' }]);
  });

  it('falls back to inner folders and files when the outer ones differ', () => {
    const current = snap({ 'x/y/f': F1, 'x/g': F2 });
    const target = snap({ 'p/y/f': F1, 'p/h': F2 });
    const removed = ['x', 'x/y', 'x/y/f', 'x/g'];
    const created = ['p', 'p/y', 'p/y/f', 'p/h'];
    assert.deepEqual(detectRenames(current, target, removed, created, true), [
      { from: 'x/y', to: 'p/y' },
      { from: 'x/g', to: 'p/h' },
    ]);
  });
});
