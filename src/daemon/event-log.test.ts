/** Tests of the event log's one-line summaries. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { notesFields, summary } from './event-log.js';

it('a conflict names its path and where the other version went', () => {
  assert.equal(
    summary({
      event: 'conflict',
      mirror: 'stick',
      paths: ['a.txt', 'a.conflict-20261125-081500-stick.txt'],
      message: 'edited on both the case and stick',
    }),
    'stick: conflict a.txt (the other version kept as a.conflict-20261125-081500-stick.txt) — edited on both the case and stick',
  );
});

it('paths are counted and listed once each, at most three', () => {
  assert.equal(
    summary({ event: 'shipped', mirror: 'm', paths: ['k.txt', 'k.conflict.txt', 'k.txt'] }),
    'm: shipped 2 (k.txt, k.conflict.txt)',
  );
  assert.equal(
    summary({ event: 'shipped', mirror: 'm', paths: ['a', 'b', 'c', 'd'] }),
    'm: shipped 4 (a, b, c, …)',
  );
});

it('deletions and renames say so: a deleted path is not read as shipped content', () => {
  assert.equal(
    summary({
      event: 'shipped',
      mirror: 'm',
      paths: ['new.txt', 'old.txt', 'new name.txt', 'gone.txt'],
      ...notesFields({ deleted: ['gone.txt'], renamed: [['old.txt', 'new name.txt']] }),
    }),
    'm: shipped 3 (new.txt, old.txt → new name.txt, gone.txt deleted)',
  );
  assert.deepEqual(notesFields({ deleted: [], renamed: [] }), {}, 'no fields when there is nothing to say');
  assert.deepEqual(notesFields(undefined), {});
});

it('a control character in a name is written as an escape: one event, one line', () => {
  assert.equal(
    summary({ event: 'shipped', mirror: 'm', paths: ['two\nlines.txt', '\u001b[2Jclear.txt'] }),
    'm: shipped 2 (two\\nlines.txt, \\x1b[2Jclear.txt)',
  );
});
