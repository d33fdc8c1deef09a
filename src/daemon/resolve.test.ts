/** @module daemon/resolve.test Tests of resolving recorded conflicts in the case folder. */
import { after, before, beforeEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SatchelError } from '../core/errors.js';
import type { Conflict } from '../core/plan.js';
import { initCase, openCase, type CaseContext } from './case.js';
import { resolveConflict } from './resolve.js';

/** The conflict fixtures: the winner's version at `path`, the other at `copyPath`. */
const C_CASE: Conflict = {
  path: 'docs/notes.txt',
  copyPath: 'docs/notes.conflict-20260101-120000-stick.txt',
  winner: 'case',
  reason: 'edited on both the case and stick',
};
const C_MIRROR: Conflict = {
  path: 'plan.md',
  copyPath: 'plan.conflict-20260101-120000-laptop.md',
  winner: 'mirror',
  reason: 'edited on both the case and stick',
};

describe('resolveConflict', () => {
  let top = '';
  let ctx: CaseContext;
  before(() => {
    top = mkdtempSync(join(tmpdir(), 'satchel-resolve-'));
    initCase(join(top, 'work'));
    ctx = openCase(join(top, 'work'));
  });
  after(() => {
    ctx.close();
    rmSync(top, { recursive: true, force: true });
  });
  beforeEach(() => {
    for (const c of ctx.state.listConflicts()) ctx.state.removeConflict(c.copyPath);
    mkdirSync(join(ctx.root, 'docs'), { recursive: true });
    for (const c of [C_CASE, C_MIRROR]) {
      const [winner, loser] = c.winner === 'case' ? ['case', 'mirror'] : ['mirror', 'case'];
      writeFileSync(join(ctx.root, c.path), `${winner} version\n`);
      writeFileSync(join(ctx.root, c.copyPath), `${loser} version\n`);
    }
    ctx.state.recordConflicts('stick', [C_CASE, C_MIRROR], 1_700_000_000_000);
  });

  /** The content at case-relative `path`, or undefined when there is no file. */
  const content = (path: string): string | undefined =>
    existsSync(join(ctx.root, path)) ? readFileSync(join(ctx.root, path), 'utf8') : undefined;
  const recorded = (): string[] => ctx.state.listConflicts().map((c) => c.path);

  it('keep both forgets the record and leaves both files', () => {
    const r = resolveConflict(ctx, 'docs/notes.txt', 'both', ctx.root);
    assert.deepEqual(r.kept, [C_CASE.path, C_CASE.copyPath]);
    assert.equal(content(C_CASE.path), 'case version\n');
    assert.equal(content(C_CASE.copyPath), 'mirror version\n');
    assert.deepEqual(recorded(), [C_MIRROR.path]);
  });
  it('keeping the winner deletes the copy', () => {
    const r = resolveConflict(ctx, 'docs/notes.txt', 'case', ctx.root);
    assert.equal(r.removed, C_CASE.copyPath);
    assert.equal(content(C_CASE.path), 'case version\n');
    assert.equal(content(C_CASE.copyPath), undefined);
    assert.deepEqual(recorded(), [C_MIRROR.path]);
  });
  it('keeping the copy moves it over the path', () => {
    const r = resolveConflict(ctx, 'docs/notes.txt', 'mirror', ctx.root);
    assert.equal(r.movedFrom, C_CASE.copyPath);
    assert.equal(content(C_CASE.path), 'mirror version\n');
    assert.equal(content(C_CASE.copyPath), undefined);
  });
  it('works the same when the mirror won', () => {
    resolveConflict(ctx, 'plan.md', 'case', ctx.root);
    assert.equal(content(C_MIRROR.path), 'case version\n');
    assert.equal(content(C_MIRROR.copyPath), undefined);
    assert.deepEqual(recorded(), [C_CASE.path]);
  });
  it('accepts the copy path instead of the path', () => {
    resolveConflict(ctx, C_CASE.copyPath, 'mirror', ctx.root);
    assert.equal(content(C_CASE.path), 'mirror version\n');
    assert.deepEqual(recorded(), [C_MIRROR.path]);
  });
  it('accepts a path relative to the current folder inside the case', () => {
    resolveConflict(ctx, 'notes.txt', 'case', join(ctx.root, 'docs'));
    assert.equal(content(C_CASE.copyPath), undefined);
  });
  it('accepts a path relative to the case root from another folder, and an absolute path', () => {
    resolveConflict(ctx, 'docs/notes.txt', 'both', top);
    resolveConflict(ctx, join(ctx.root, 'plan.md'), 'both', top);
    assert.deepEqual(recorded(), []);
  });
  it('refuses to keep a copy that was deleted meanwhile, changing nothing', () => {
    rmSync(join(ctx.root, C_CASE.copyPath));
    assert.throws(
      () => resolveConflict(ctx, C_CASE.path, 'mirror', ctx.root),
      (e: unknown) => e instanceof SatchelError && e.code === 'io' && /no longer exists/.test(e.message),
    );
    assert.equal(content(C_CASE.path), 'case version\n');
    assert.deepEqual(recorded(), [C_CASE.path, C_MIRROR.path]);
  });
  it('replaces a folder at the path by the kept file', () => {
    rmSync(join(ctx.root, C_MIRROR.path));
    mkdirSync(join(ctx.root, C_MIRROR.path, 'inner'), { recursive: true });
    resolveConflict(ctx, C_MIRROR.path, 'case', ctx.root);
    assert.equal(content(C_MIRROR.path), 'case version\n');
  });
  it('says when no conflict is recorded for the path', () => {
    assert.throws(
      () => resolveConflict(ctx, 'other.txt', 'case', ctx.root),
      (e: unknown) =>
        e instanceof SatchelError &&
        e.code === 'conflict-unknown' &&
        /no conflict recorded for other\.txt/.test(e.message) &&
        /satchel conflicts/.test(e.hint ?? ''),
    );
  });
});
