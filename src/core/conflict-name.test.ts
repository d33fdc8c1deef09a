/** Tests of conflict copy names: format, extensions, labels, uniqueness and parsing back. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { conflictCopyPath, parseConflictCopyPath, sanitizeLabel } from './conflict-name.js';

const T = Date.UTC(2026, 10, 25, 8, 15, 0); // 2026-11-25 08:15:00 UTC
const none = (): boolean => false;

describe('conflictCopyPath', () => {
  const cases: [description: string, path: string, label: string, want: string][] = [
    ['extension kept after the label', 'notes.txt', 'stick', 'notes.conflict-20261125-081500-stick.txt'],
    ['only the last extension moves', 'a.tar.gz', 'stick', 'a.tar.conflict-20261125-081500-stick.gz'],
    ['dot-file has no extension', '.bashrc', 'laptop', '.bashrc.conflict-20261125-081500-laptop'],
    ['no extension', 'Makefile', 'laptop', 'Makefile.conflict-20261125-081500-laptop'],
    ['folder kept', 'src/lib/x.ts', 'stick', 'src/lib/x.conflict-20261125-081500-stick.ts'],
    ['label sanitized', 'x.md', 'my box/ü', 'x.conflict-20261125-081500-my-box--.md'],
    ['trailing dot is no extension', 'odd.', 'stick', 'odd..conflict-20261125-081500-stick'],
  ];
  for (const [description, path, label, want] of cases) {
    it(description, () => assert.equal(conflictCopyPath(path, T, label, none), want));
  }

  it('adds -2, -3 before the extension while the name is taken', () => {
    const taken = new Set([
      'notes.conflict-20261125-081500-stick.txt',
      'notes.conflict-20261125-081500-stick-2.txt',
    ]);
    assert.equal(
      conflictCopyPath('notes.txt', T, 'stick', (p) => taken.has(p)),
      'notes.conflict-20261125-081500-stick-3.txt',
    );
  });

  it('uses the UTC time of the version, and the epoch for times it cannot show', () => {
    assert.equal(conflictCopyPath('a', 0, 'x', none), 'a.conflict-19700101-000000-x');
    assert.equal(conflictCopyPath('a', Number.NaN, 'x', none), 'a.conflict-19700101-000000-x');
    assert.equal(conflictCopyPath('a', 1e20, 'x', none), 'a.conflict-19700101-000000-x');
  });

  it('an empty label becomes "unknown"', () => assert.equal(sanitizeLabel(''), 'unknown'));
});

describe('parseConflictCopyPath', () => {
  it('gives back the original, the stamp and the label', () => {
    for (const path of ['notes.txt', 'a.tar.gz', '.bashrc', 'Makefile', 'src/lib/x.ts']) {
      const copy = conflictCopyPath(path, T, 'stick', none);
      assert.deepEqual(parseConflictCopyPath(copy), {
        original: path,
        stamp: '20261125-081500',
        label: 'stick',
      });
    }
  });

  it('ignores the uniqueness counter', () => {
    assert.deepEqual(parseConflictCopyPath('d/n.conflict-20261125-081500-stick-2.txt'), {
      original: 'd/n.txt',
      stamp: '20261125-081500',
      label: 'stick',
    });
  });

  it('is undefined for other names', () => {
    assert.equal(parseConflictCopyPath('notes.txt'), undefined);
    assert.equal(parseConflictCopyPath('x.conflict-2026-stick'), undefined);
  });
});
