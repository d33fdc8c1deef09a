/** Tests of the mapping of file-system errors to problems and their messages. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { problemFromError } from './fs-errors.js';

const error = (code: string): Error => Object.assign(new Error(`${code}: failed`), { code });

it('a read-only file system is said as such, as a permission-denied problem', () => {
  const p = problemFromError(error('EROFS'), { path: 'a.txt', action: 'write' });
  assert.equal(p.code, 'permission-denied');
  assert.equal(p.message, 'cannot write a.txt: the file system is mounted read-only (EROFS)');
  assert.match(
    problemFromError(error('EACCES'), { path: 'a.txt', action: 'write' }).message,
    /permission denied/,
  );
});

it('no space: how much is missing, or that the space went to other writes meanwhile', () => {
  const short = problemFromError(error('ENOSPC'), {
    path: 'b',
    action: 'write',
    bytes: 3072,
    freeBytes: 1024,
  });
  assert.equal(short.code, 'no-space');
  assert.match(short.message, /\(3\.0 KiB needed, 1\.0 KiB free: 2\.0 KiB missing\)$/);
  const raced = problemFromError(error('ENOSPC'), {
    path: 'b',
    action: 'write',
    bytes: 1024,
    freeBytes: 4096,
  });
  assert.match(raced.message, /\(1\.0 KiB needed; 4\.0 KiB free now, taken meanwhile by other writes\)$/);
  assert.doesNotMatch(raced.message, /missing/);
});
