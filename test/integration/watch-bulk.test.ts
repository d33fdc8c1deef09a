/**
 * @module test/integration/watch-bulk
 * Bulk changes under the real `satchel watch` with two path mirrors: a `git checkout`-like burst
 * (2,000 files rewritten and 200 renamed at once), `tar x` of a 500-file archive (the real
 * `tar`) and `rm -rf` of a 300-file folder (the real `rm`) all reach both mirrors, and files
 * renamed in the case are renamed on the mirrors (same inode there), not copied.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createCase, type TestCase } from '../helpers/case.js';
import { makeTempDir } from '../helpers/temp.js';
import { requireTools, runTool } from '../helpers/process.js';
import { readTree, writeTree, type TreeSpec } from '../helpers/tree.js';
import { startWatch, endWatchSuite, waitForMirrorsEqual, type WatchProcess } from '../helpers/watch.js';

let root: string;
let c: TestCase;
let daemon: WatchProcess;

/** Waits (generously: thousands of files on two shared cores) until both mirrors equal the case. */
const settle = (): Promise<void> => waitForMirrorsEqual(c, { timeoutMs: 90_000, intervalMs: 200 });

const REWRITTEN = 2000;
const RENAMED = 200;
const fileOf = (i: number): string => `repo/src/m${Math.floor(i / 100)}/file${i}.ts`;
const renamedFrom = (i: number): string => `repo/old/r${i}.ts`;
const renamedTo = (i: number): string => `repo/moved/r${i}.ts`;

describe('satchel watch: bulk changes', () => {
  before(async () => {
    requireTools([
      { command: 'tar', debianPackage: 'tar' },
      { command: 'rm', debianPackage: 'coreutils' },
    ]);
    root = makeTempDir('watch-bulk');
    c = await createCase(root, { a: undefined, b: undefined });
    const spec: Record<string, string | { dir: true }> = { 'repo/moved': { dir: true } };
    for (let i = 0; i < REWRITTEN; i++) spec[fileOf(i)] = `export const v${i} = 'branch main';\n`;
    for (let i = 0; i < RENAMED; i++) spec[renamedFrom(i)] = `// file ${i} that git moves\n`.repeat(3);
    writeTree(c.path, spec as TreeSpec);
    daemon = await startWatch(c, { startTimeoutMs: 90_000 });
    await settle();
  });

  after(() => endWatchSuite(daemon, root));

  test('a checkout rewriting 2,000 files and renaming 200 reaches both mirrors; renames stay renames', async () => {
    const inodesBefore = Object.values(c.mirrors).map((m) =>
      Array.from({ length: RENAMED }, (_, i) => statSync(join(m, renamedFrom(i))).ino),
    );
    // What `git checkout other-branch` does to the work tree, as fast as one process can.
    for (let i = 0; i < REWRITTEN; i++)
      writeFileSync(join(c.path, fileOf(i)), `export const v${i} = 'branch feature';\n`);
    for (let i = 0; i < RENAMED; i++) renameSync(join(c.path, renamedFrom(i)), join(c.path, renamedTo(i)));
    await settle();

    Object.values(c.mirrors).forEach((m, k) => {
      const tree = readTree(m);
      assert.equal(tree.get(fileOf(1234))?.content, `export const v1234 = 'branch feature';\n`);
      const copied = Array.from({ length: RENAMED }, (_, i) => i).filter(
        (i) => statSync(join(m, renamedTo(i))).ino !== inodesBefore[k]![i],
      );
      assert.deepEqual(copied.map(renamedTo), [], `files copied instead of renamed on ${m}`);
    });
  });

  test('tar x of a 500-file archive (real tar) reaches both mirrors with the archived mtimes', async () => {
    const src = join(root, 'tar-src');
    const spec: Record<string, { content: string; mtime: Date }> = {};
    for (let i = 0; i < 500; i++)
      spec[`pkg/d${i % 10}/f${i}.txt`] = {
        content: `archived file ${i}\n`,
        mtime: new Date(Date.UTC(2020, 0, 1, 0, 0, i % 60, i)),
      };
    writeTree(src, spec);
    const archive = join(root, 'pkg.tar');
    runTool('tar', ['-cf', archive, '-C', src, 'pkg']);
    mkdirSync(join(c.path, 'unpacked'));
    runTool('tar', ['-xf', archive, '-C', join(c.path, 'unpacked')]);
    await settle();
    for (const m of Object.values(c.mirrors)) {
      const t = readTree(m);
      assert.equal(
        [...t.keys()].filter((p) => p.startsWith('unpacked/pkg/') && p.endsWith('.txt')).length,
        500,
      );
      // tar sets the archived mtime after writing: the mirror has it too (second precision in tar).
      assert.equal(t.get('unpacked/pkg/d7/f7.txt')?.mtimeMs, Date.UTC(2020, 0, 1, 0, 0, 7));
    }
  });

  test('rm -rf of a 300-file folder (real rm) removes it from both mirrors', async () => {
    const spec: Record<string, string> = {};
    for (let i = 0; i < 300; i++) spec[`trash/sub${i % 7}/f${i}.log`] = `log ${i}\n`;
    writeTree(c.path, spec);
    await settle();
    for (const m of Object.values(c.mirrors)) assert.ok(readTree(m).has('trash/sub3/f3.log'));
    runTool('rm', ['-rf', join(c.path, 'trash')]);
    await settle();
    for (const m of Object.values(c.mirrors))
      assert.deepEqual(
        [...readTree(m).keys()].filter((p) => p.startsWith('trash')),
        [],
        `trash left on ${m}`,
      );
  });
});
