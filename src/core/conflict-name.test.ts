/** Tests of conflict copy names: format, extensions, labels, uniqueness and parsing back. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { conflictCopyPath, MAX_NAME_BYTES, parseConflictCopyPath, sanitizeLabel } from './conflict-name.js';

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

  it('shortens the stem of a long name so the copy fits in 255 bytes, whole characters only', () => {
    const bytes = (p: string): number => Buffer.byteLength(p.split('/').pop()!);
    const t = Date.UTC(2024, 0, 2, 3, 4, 5);
    const long = `${'y'.repeat(251)}.txt`;
    const copy = conflictCopyPath(`dir/${long}`, t, 'stick', () => false);
    assert.equal(bytes(copy), MAX_NAME_BYTES);
    assert.match(copy, /^dir\/y+\.conflict-20240102-030405-stick\.txt$/);
    const taken = new Set([copy]);
    const second = conflictCopyPath(`dir/${long}`, t, 'stick', (p) => taken.has(p));
    assert.match(second, /\.conflict-20240102-030405-stick-2\.txt$/);
    assert.ok(bytes(second) <= MAX_NAME_BYTES);
    // Three-byte characters are never cut in half.
    const wide = conflictCopyPath(`${'名'.repeat(84)}.md`, t, 'home', () => false);
    assert.ok(bytes(wide) <= MAX_NAME_BYTES, `${bytes(wide)} bytes`);
    assert.match(wide, /^名+\.conflict-20240102-030405-home\.md$/);
    // An extension that leaves no room is kept as part of the stem.
    const odd = conflictCopyPath(`a.${'e'.repeat(252)}`, t, 'm', () => false);
    assert.ok(bytes(odd) <= MAX_NAME_BYTES);
    assert.match(odd, /^a\.e+\.conflict-20240102-030405-m$/);
    // Short names are untouched.
    assert.equal(
      conflictCopyPath('notes.txt', t, 'm', () => false),
      'notes.conflict-20240102-030405-m.txt',
    );
  });
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
