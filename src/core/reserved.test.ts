/** Tests of Satchel's reserved names. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { isSatchelInternal, isTempName, tempSuffix } from './reserved.js';

it('isSatchelInternal: the state folder, the root marker and temporary files', () => {
  const internal = [
    '.satchel',
    '.satchel/state.db',
    '.satchel-mirror',
    // Another case's state, another mirror's marker, below the root.
    'a/.satchel',
    'a/b/.satchel/state.db',
    'a/.satchel-mirror',
    '.satchel-tmp-0123456789abcdef',
    'a/b/.satchel-tmp-fedcba9876543210',
    'a/.satchel-tmp-probe-0123456789ab/f',
    'a/.satchel-tmp-x/.satchel-tmp-0000000000000001',
  ];
  const ordinary = [
    'a/.satchelignore',
    'a/.satchel-notes',
    'a/.satchel-mirror/x',
    '.satchelignore',
    '.satchel-mirror/x',
    'satchel',
    'a/b.satchel-tmp-',
    // A user's names that only start like a temporary one.
    '.satchel-tmp-1',
    'a/b/.satchel-tmp-x',
    '.satchel-tmp-project/thesis.txt',
    '.satchel-tmp-0123456789abcdef0',
    '.satchel-tmp-0123456789ABCDEF',
    '.satchel-tmp-probe-0123',
  ];
  for (const p of internal) assert.equal(isSatchelInternal(p), true, p);
  for (const p of ordinary) assert.equal(isSatchelInternal(p), false, p);
});

it('isTempName and tempSuffix: the exact names Satchel gives its temporary files', () => {
  assert.equal(isTempName(`.satchel-tmp-${tempSuffix(1)}`), true);
  assert.equal(isTempName(`.satchel-tmp-${tempSuffix(2 ** 40 + 7)}`), true);
  assert.equal(isTempName('.satchel-tmp-probe-a1b2c3d4e5f6'), true);
  for (const n of ['.satchel-tmp-', '.satchel-tmp-notes', '.satchel-tmp-1', 'x.satchel-tmp-0123456789abcdef'])
    assert.equal(isTempName(n), false, n);
});
