/** Tests of the case-insensitive helpers: folding, clash detection and re-spelling. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { findCaseClashes, foldKey, respell } from './case-folding.js';
import { D, F1, F2, snap } from './testing.js';

describe('case folding', () => {
  it('foldKey ignores letter case and Unicode normalization form', () => {
    assert.equal(foldKey('Docs/README.md'), foldKey('docs/readme.MD'));
    assert.equal(foldKey('Cafe\u0301'), foldKey('CAF\u00c9'));
    assert.notEqual(foldKey('a/b'), foldKey('a-b'));
  });

  it('a clash keeps the spelling the mirror holds, else the ancestor, else the first in sort order', () => {
    const c = snap({ 'd/A.txt': F1, 'd/a.txt': F2 });
    assert.deepEqual(findCaseClashes(c, snap({ 'D/a.txt': F2 }), snap()), [
      { loser: 'd/A.txt', winner: 'd/a.txt' },
    ]);
    assert.deepEqual(findCaseClashes(c, snap(), snap({ 'd/a.txt': F2 })), [
      { loser: 'd/A.txt', winner: 'd/a.txt' },
    ]);
    assert.deepEqual(findCaseClashes(c, snap(), snap()), [{ loser: 'd/a.txt', winner: 'd/A.txt' }]);
  });

  it('below a losing folder nothing more is reported', () => {
    const c = snap({ 'X/f': F1, 'x/f': F2, 'x/sub/a': F1, 'x/sub/A': F2 });
    assert.deepEqual(findCaseClashes(c, snap(), snap()), [{ loser: 'x', winner: 'X' }]);
  });

  it('respell: mirror names take the case spelling, new names keep theirs below a respelled folder', () => {
    const m = snap({ 'DOCS/Readme.md': F1, 'DOCS/new.txt': F2 });
    const { snapshot: out, ownNames } = respell(m, [snap({ 'docs/README.md': F1 })]);
    assert.deepEqual([...out.keys()].sort(), ['docs', 'docs/README.md', 'docs/new.txt']);
    assert.equal(out.get('docs'), D);
    assert.deepEqual(
      [...ownNames],
      [
        ['docs', 'DOCS'],
        ['docs/README.md', 'Readme.md'],
      ],
    );
  });
});
