/** Tests of Satchel's reserved names. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { isSatchelInternal } from './reserved.js';

it('isSatchelInternal: the state folder, the root marker and temporary files', () => {
  const internal = [
    '.satchel',
    '.satchel/state.db',
    '.satchel-mirror',
    '.satchel-tmp-1',
    'a/b/.satchel-tmp-x',
    'a/.satchel-tmp-d/f',
  ];
  const ordinary = [
    'a/.satchel',
    'a/.satchel-mirror',
    '.satchelignore',
    '.satchel-mirror/x',
    'satchel',
    'a/b.satchel-tmp-',
  ];
  for (const p of internal) assert.equal(isSatchelInternal(p), true, p);
  for (const p of ordinary) assert.equal(isSatchelInternal(p), false, p);
});
