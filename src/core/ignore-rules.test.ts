/** @module core/ignore-rules.test Tests of the built-in and user ignore rules. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { IgnoreRules } from './ignore-rules.js';

const defaults = IgnoreRules.fromText(undefined);

/** Paths the defaults must ignore, each with the reason it exists. */
const IGNORED: readonly { path: string; description: string }[] = [
  { path: '.notes.txt.swp', description: 'vim swap file' },
  { path: '.notes.txt.swo', description: 'vim second swap file' },
  { path: '.notes.txt.swx', description: 'vim third swap file' },
  { path: 'notes.txt.swp', description: 'vim swap file in a swap directory' },
  { path: '4913', description: "vim's write probe" },
  { path: 'notes.txt~', description: 'backup copy' },
  { path: '#notes.txt#', description: 'emacs auto-save file' },
  { path: '.#notes.txt', description: 'emacs lock link' },
  { path: '~$report.docx', description: 'Microsoft Office lock file' },
  { path: '.~lock.report.odt#', description: 'LibreOffice lock file' },
  { path: 'src/Main.kt___jb_tmp___', description: 'JetBrains safe-write temporary' },
  { path: 'src/Main.kt___jb_old___', description: 'JetBrains safe-write old copy' },
  { path: '.git/index.lock', description: 'git index lock' },
  { path: '.git/HEAD.lock', description: 'git HEAD lock' },
  { path: '.git/refs/heads/main.lock', description: 'git ref lock, nested' },
  { path: 'vendor/lib/.git/index.lock', description: 'lock of a nested repository' },
];

/** Paths the defaults must replicate. */
const KEPT: readonly { path: string; description: string }[] = [
  { path: 'notes.txt', description: 'ordinary file' },
  { path: '.git/index', description: 'git index' },
  { path: '.git/HEAD', description: 'git HEAD' },
  { path: '.git/objects/ab/cdef', description: 'git object' },
  { path: 'Cargo.lock', description: 'lock file outside .git' },
  { path: 'src/yarn.lock', description: 'nested lock file outside .git' },
  { path: '49130', description: 'a name that merely starts like the vim probe' },
  { path: 'a#b#', description: 'hash signs not at the start' },
  { path: '.satchelignore', description: 'the ignore file itself' },
  { path: 'notes.swp.txt', description: 'swp not at the end' },
];

describe('IgnoreRules defaults', () => {
  for (const { path, description } of IGNORED) {
    it(`ignores ${path} (${description})`, () => {
      assert.equal(defaults.ignores(path, false), true);
    });
    it(`ignores ${path} in a sub-folder (${description})`, () => {
      const nested = path.startsWith('.git/') || path.includes('/.git/') ? `sub/${path}` : `a/b/${path}`;
      assert.equal(defaults.ignores(nested, false), true);
    });
  }
  for (const { path, description } of KEPT) {
    it(`keeps ${path} (${description})`, () => {
      assert.equal(defaults.ignores(path, false), false);
    });
  }
  it('keeps the .git folder itself and its sub-folders', () => {
    assert.equal(defaults.ignores('.git', true), false);
    assert.equal(defaults.ignores('.git/refs', true), false);
    assert.equal(defaults.ignores('project/.git', true), false);
  });
  it('never ignores the root', () => {
    assert.equal(defaults.ignores('', true), false);
  });
});

describe('IgnoreRules from .satchelignore', () => {
  it('applies gitignore patterns at any depth', () => {
    const rules = IgnoreRules.fromText('*.o\nbuild/\n');
    assert.equal(rules.ignores('main.o', false), true);
    assert.equal(rules.ignores('src/deep/main.o', false), true);
    assert.equal(rules.ignores('build', true), true);
    assert.equal(rules.ignores('src/build', true), true);
    assert.equal(rules.ignores('build', false), false, 'a file named build is not matched by build/');
  });
  it('ignores everything below an ignored directory', () => {
    const rules = IgnoreRules.fromText('node_modules/\n');
    assert.equal(rules.ignores('node_modules/x/index.js', false), true);
    assert.equal(rules.ignores('app/node_modules/x/y/z.js', false), true);
  });
  it('anchors patterns with a leading slash to the case root', () => {
    const rules = IgnoreRules.fromText('/out\n');
    assert.equal(rules.ignores('out', true), true);
    assert.equal(rules.ignores('src/out', true), false);
  });
  it('anchors patterns with a middle slash to the case root', () => {
    const rules = IgnoreRules.fromText('docs/*.pdf\n');
    assert.equal(rules.ignores('docs/a.pdf', false), true);
    assert.equal(rules.ignores('docs/sub/a.pdf', false), false);
    assert.equal(rules.ignores('x/docs/a.pdf', false), false);
  });
  it('lets a user rule with ! re-include a default', () => {
    const rules = IgnoreRules.fromText('!*~\n!.git/**/*.lock\n');
    assert.equal(rules.ignores('notes.txt~', false), false);
    assert.equal(rules.ignores('a/notes.txt~', false), false);
    assert.equal(rules.ignores('.git/index.lock', false), false);
    assert.equal(rules.ignores('.notes.txt.swp', false), true, 'other defaults still apply');
  });
  it('lets a later ! rule re-include a file ignored by an earlier user rule', () => {
    const rules = IgnoreRules.fromText('*.log\n!keep.log\n');
    assert.equal(rules.ignores('debug.log', false), true);
    assert.equal(rules.ignores('keep.log', false), false);
    assert.equal(rules.ignores('sub/keep.log', false), false);
  });
  it('skips comments and blank lines', () => {
    const rules = IgnoreRules.fromText('# a comment\n\n   \n*.tmp\n');
    assert.equal(rules.ignores('# a comment', false), false);
    assert.equal(rules.ignores('x.tmp', false), true);
  });
  it('matches case-sensitively', () => {
    const rules = IgnoreRules.fromText('*.TMP\n');
    assert.equal(rules.ignores('x.TMP', false), true);
    assert.equal(rules.ignores('x.tmp', false), false);
  });
  it('accepts CRLF line endings', () => {
    const rules = IgnoreRules.fromText('*.tmp\r\n*.bak\r\n');
    assert.equal(rules.ignores('x.tmp', false), true);
    assert.equal(rules.ignores('x.bak', false), true);
  });
});
