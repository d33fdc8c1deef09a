/** Tests of the state store: ancestors, hash caches, conflicts, status and locks survive reopening. */
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { Entry } from '../core/entry.js';
import { StateStore } from './state-store.js';

const dir = mkdtempSync(join(tmpdir(), 'satchel-state-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const F1: Entry = { kind: 'file', size: 3, mtimeMs: 1700000000123.5, executable: true, hash: 'aa' };
const D: Entry = { kind: 'directory' };
const L: Entry = { kind: 'symlink', target: '../x' };

test('ancestor updates persist per mirror and survive reopening', () => {
  const file = join(dir, 'a.db');
  let s = StateStore.open(file);
  s.updateAncestor(
    'm1',
    new Map<string, Entry | undefined>([
      ['d', D],
      ['d/f', F1],
      ['l', L],
    ]),
  );
  s.updateAncestor('m2', new Map([['other', D]]));
  s.updateAncestor('m1', new Map([['l', undefined]]));
  s.close();
  s = StateStore.open(file);
  assert.deepEqual(
    s.loadAncestor('m1'),
    new Map<string, Entry>([
      ['d', D],
      ['d/f', F1],
    ]),
  );
  assert.deepEqual([...s.loadAncestor('m2').keys()], ['other']);
  s.dropMirror('m1', 'stick');
  assert.equal(s.loadAncestor('m1').size, 0);
  s.close();
});

test('hash cache stores only differences and reloads', () => {
  const file = join(dir, 'b.db');
  let s = StateStore.open(file);
  s.storeHashes('case', new Map([['a', { size: 1, mtimeMs: 5, ino: 7, hash: 'h1' }]]));
  s.storeHashes(
    'case',
    new Map([
      ['a', { size: 1, mtimeMs: 5, ino: 7, hash: 'h1' }],
      ['b', { size: 2, mtimeMs: 6, hash: 'h2' }],
    ]),
  );
  s.close();
  s = StateStore.open(file);
  const c = s.hashCache('case');
  assert.deepEqual(c.get('a'), { size: 1, mtimeMs: 5, ino: 7, hash: 'h1' });
  assert.deepEqual(c.get('b'), { size: 2, mtimeMs: 6, hash: 'h2' });
  s.storeHashes('case', new Map());
  assert.equal(s.hashCache('case').get('a'), undefined);
  s.close();
});

test('a store of an earlier version keeps its conflicts (one per path then, one per copy now)', () => {
  const file = join(dir, 'old.db');
  const old = new Database(file);
  old.exec(
    'CREATE TABLE conflict (path TEXT PRIMARY KEY, copy_path TEXT NOT NULL, mirror TEXT NOT NULL, winner TEXT NOT NULL, reason TEXT NOT NULL, detected_at INTEGER NOT NULL)',
  );
  old
    .prepare('INSERT INTO conflict VALUES (?, ?, ?, ?, ?, ?)')
    .run('a.txt', 'a.conflict-x-m.txt', 'm', 'case', 'r', 7);
  old.close();
  const s = StateStore.open(file);
  assert.deepEqual(
    s.listConflicts().map((c) => [c.path, c.copyPath, c.mirror, c.detectedAt]),
    [['a.txt', 'a.conflict-x-m.txt', 'm', 7]],
  );
  s.close();
  // Opening again finds nothing left to move.
  const again = StateStore.open(file);
  assert.equal(again.listConflicts().length, 1);
  again.close();
});

test('conflicts, mirror status and locks round-trip', () => {
  const s = StateStore.open(join(dir, 'c.db'));
  s.recordConflicts(
    'stick',
    [{ path: 'n.txt', copyPath: 'n.conflict-x-stick.txt', winner: 'case', reason: 'r' }],
    42,
  );
  assert.deepEqual(s.listConflicts(), [
    {
      path: 'n.txt',
      copyPath: 'n.conflict-x-stick.txt',
      mirror: 'stick',
      winner: 'case',
      reason: 'r',
      detectedAt: 42,
    },
  ]);
  // The same path in conflict with a second mirror: both are kept.
  s.recordConflicts(
    'share',
    [{ path: 'n.txt', copyPath: 'n.conflict-x-share.txt', winner: 'case', reason: 'r' }],
    43,
  );
  assert.deepEqual(
    s.listConflicts().map((c) => [c.mirror, c.copyPath]),
    [
      ['stick', 'n.conflict-x-stick.txt'],
      ['share', 'n.conflict-x-share.txt'],
    ],
  );
  s.removeConflict('n.conflict-x-stick.txt');
  assert.deepEqual(
    s.listConflicts().map((c) => c.mirror),
    ['share'],
  );
  // A copy deleted by hand: its record goes with the next prune.
  s.pruneConflicts((copy) => copy !== 'n.conflict-x-share.txt');
  assert.deepEqual(s.listConflicts(), []);
  s.setMirrorStatus('stick', { lastSyncAt: 1, lastResult: 'synced', in: 2, out: 3 });
  assert.deepEqual(s.getMirrorStatus('stick'), { lastSyncAt: 1, lastResult: 'synced', in: 2, out: 3 });
  s.addLock('a/b', 0o644, 9);
  assert.deepEqual(s.listLocks(), [{ path: 'a/b', mode: 0o644, since: 9 }]);
  s.removeLock('a/b');
  assert.deepEqual(s.listLocks(), []);
  s.close();
});
