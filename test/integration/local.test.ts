/**
 * @module test/integration/local
 * End-to-end tests of the real `satchel` binary on local folders (ext4): a case with two path
 * mirrors `a` and `b`, driven only through the CLI (`init`, `mirror add`, `sync --json`,
 * `status`, `conflicts`, `resolve`), checked by reading the real trees.
 *
 * Fixture names: `F1`/`F2` are file contents, `T0` a fixed old mtime, `older`/`newer` the
 * mtimes that decide which side of a conflict wins (the newer one keeps the path).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  chownSync,
  lstatSync,
  statSync,
  readFileSync,
  renameSync,
  rmSync,
  unlinkSync,
  writeFileSync,
  symlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import {
  assertExit,
  describeRun,
  mirrorReport,
  runSatchel,
  satchelJson,
  satchelOk,
  spawnSatchel,
  type SyncReport,
} from '../helpers/cli.js';
import { waitUntil } from '../helpers/watch.js';
import {
  assertQuietSync,
  conflicts,
  createCase,
  mirrorList,
  status,
  sync,
  type TestCase,
} from '../helpers/case.js';
import { runTool } from '../helpers/process.js';
import { withTempDir } from '../helpers/temp.js';
import {
  assertTreesEqual,
  conflictCopies,
  contents,
  readTree,
  satchelTempFiles,
  writeTree,
  type Tree,
} from '../helpers/tree.js';

const F1 = 'first version\n';
const F2 = 'second version, a little longer\n';
const T0 = new Date('2021-03-04T05:06:07.250Z');
const older = (): Date => new Date(Date.now() - 60_000);
const newer = (): Date => new Date(Date.now() - 30_000);

/** Runs `fn` with a fresh case and two mirrors `a` and `b` in a temporary folder. */
function withCase(fn: (c: TestCase, root: string) => Promise<void>): Promise<void> {
  return withTempDir('local', async (root) =>
    fn(await createCase(root, { a: undefined, b: undefined }), root),
  );
}

/** Asserts the case and every mirror hold the same tree, and no temporary file is left. */
function assertAllEqual(c: TestCase): void {
  for (const [name, dir] of Object.entries(c.mirrors)) {
    assertTreesEqual(c.path, dir);
    assert.deepEqual(satchelTempFiles(dir), [], `temporary files left on mirror ${name}`);
  }
  assert.deepEqual(satchelTempFiles(c.path), [], 'temporary files left in the case');
}

/** Contents of the files of `tree` whose name starts with `stem` (the file and its conflict copies). */
function versionsOf(tree: Tree, stem: string): string[] {
  return [...tree]
    .filter(([p, n]) => n.kind === 'file' && p.startsWith(stem))
    .map(([, n]) => n.content!)
    .sort();
}

describe('local mirrors through the real CLI', () => {
  test('creates, edits, deletes and empty folders reach every mirror; a second sync does nothing', async () => {
    await withCase(async (c) => {
      writeTree(c.path, {
        'hello.txt': F1,
        'docs/guide.md': '# Guide\n',
        'docs/deep/er/file.bin': Buffer.alloc(100_000, 7),
        empty: { dir: true },
        'nested/empty/dir': { dir: true },
        'zero.txt': '',
      });
      const first = await sync(c);
      for (const name of ['a', 'b']) {
        const m = mirrorReport(first, name);
        assert.equal(m.state, 'synced', JSON.stringify(m));
        assert.ok(m.out > 0, `nothing went out to ${name}: ${JSON.stringify(m)}`);
      }
      assertAllEqual(c);
      await assertQuietSync(c);

      writeTree(c.path, { 'hello.txt': F2, 'docs/new.md': 'new\n' });
      rmSync(join(c.path, 'docs/guide.md'));
      rmSync(join(c.path, 'empty'), { recursive: true });
      await sync(c);
      assertAllEqual(c);
      assert.equal(readFileSync(join(c.mirrors.a!, 'hello.txt'), 'utf8'), F2);
      assert.equal(readTree(c.mirrors.b!).has('docs/guide.md'), false);
      assert.equal(readTree(c.mirrors.b!).has('empty'), false);
      assert.equal(readTree(c.mirrors.b!).get('nested/empty/dir')?.kind, 'dir');
      await assertQuietSync(c);
    });
  });

  test('symbolic links are kept as links and never followed', async () => {
    await withCase(async (c, root) => {
      writeTree(root, { 'outside/secret.txt': 'outside the case\n' });
      writeTree(c.path, {
        'target.txt': F1,
        'sub/inner.txt': F2,
        'rel-link': { symlink: 'target.txt' },
        'dir-link': { symlink: 'sub' },
        dangling: { symlink: 'does/not/exist' },
        escape: { symlink: '../outside' },
        'abs-link': { symlink: join(root, 'outside', 'secret.txt') },
      });
      await sync(c);
      assertAllEqual(c);
      const m = readTree(c.mirrors.a!);
      assert.deepEqual(
        ['rel-link', 'dir-link', 'dangling', 'escape', 'abs-link'].map((p) => [
          p,
          m.get(p)?.kind,
          m.get(p)?.target,
        ]),
        [
          ['rel-link', 'symlink', 'target.txt'],
          ['dir-link', 'symlink', 'sub'],
          ['dangling', 'symlink', 'does/not/exist'],
          ['escape', 'symlink', '../outside'],
          ['abs-link', 'symlink', join(root, 'outside', 'secret.txt')],
        ],
      );
      assert.equal(m.has('escape/secret.txt'), false, 'a link was followed');
      assert.equal(m.has('dir-link/inner.txt'), false, 'a link was followed');

      // A link retargeted on a mirror comes back to the case as a link.
      unlinkSync(join(c.mirrors.b!, 'rel-link'));
      symlinkSync('sub/inner.txt', join(c.mirrors.b!, 'rel-link'));
      await sync(c);
      assert.equal(lstatSync(join(c.path, 'rel-link')).isSymbolicLink(), true);
      assertAllEqual(c);
      await assertQuietSync(c);
    });
  });

  test('the executable bit and the modification time are preserved both ways', async () => {
    await withCase(async (c) => {
      writeTree(c.path, {
        'run.sh': { content: '#!/bin/sh\necho hi\n', mode: 0o755, mtime: T0 },
        'data.txt': { content: F1, mode: 0o644, mtime: new Date(T0.getTime() + 1234) },
      });
      await sync(c);
      assertAllEqual(c);
      const a = readTree(c.mirrors.a!);
      assert.equal(a.get('run.sh')!.mode & 0o100, 0o100);
      assert.equal(a.get('data.txt')!.mode & 0o100, 0);
      // Within 1 ms: utimes takes seconds as a double, so ms values come back as …483.999.
      assert.ok(Math.abs(a.get('run.sh')!.mtimeMs - T0.getTime()) < 1, 'mtime of run.sh');
      assert.ok(Math.abs(a.get('data.txt')!.mtimeMs - (T0.getTime() + 1234)) < 1, 'mtime of data.txt');

      // Only the mode changes, on a mirror: it reaches the case and the other mirror.
      chmodSync(join(c.mirrors.a!, 'run.sh'), 0o644);
      chmodSync(join(c.mirrors.a!, 'data.txt'), 0o755);
      await sync(c);
      assertAllEqual(c);
      assert.equal(readTree(c.path).get('run.sh')!.mode & 0o100, 0);
      assert.equal(readTree(c.mirrors.b!).get('data.txt')!.mode & 0o100, 0o100);
      await assertQuietSync(c);
    });
  });

  test('type changes (file ↔ folder ↔ link) in the case and on a mirror', async () => {
    await withCase(async (c) => {
      writeTree(c.path, {
        f2d: F1,
        'd2f/child.txt': F1,
        f2l: F1,
        l2f: { symlink: 'f2d' },
        'd2l/child.txt': F2,
        'm-f2d': F1,
        'm-d2f/child.txt': F1,
      });
      await sync(c);
      assertAllEqual(c);

      rmSync(join(c.path, 'f2d'));
      rmSync(join(c.path, 'd2f'), { recursive: true });
      rmSync(join(c.path, 'f2l'));
      rmSync(join(c.path, 'l2f'));
      rmSync(join(c.path, 'd2l'), { recursive: true });
      writeTree(c.path, {
        'f2d/now-a-dir.txt': F2,
        d2f: F2,
        f2l: { symlink: 'd2f' },
        l2f: 'was a link\n',
        d2l: { symlink: 'f2d' },
      });
      const mb = c.mirrors.b!;
      rmSync(join(mb, 'm-f2d'));
      rmSync(join(mb, 'm-d2f'), { recursive: true });
      writeTree(mb, { 'm-f2d/inside.txt': F2, 'm-d2f': F2 });
      await sync(c);
      assertAllEqual(c);
      const t = readTree(c.mirrors.a!);
      assert.deepEqual(
        ['f2d', 'd2f', 'f2l', 'l2f', 'd2l', 'm-f2d', 'm-d2f'].map((p) => t.get(p)?.kind),
        ['dir', 'file', 'symlink', 'file', 'symlink', 'dir', 'file'],
      );
      await assertQuietSync(c);
    });
  });

  test('edit against delete: the edit wins, on either side, without a conflict copy', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'edited-in-case.txt': F1, 'edited-on-mirror.txt': F1 });
      await sync(c);
      writeTree(c.path, { 'edited-in-case.txt': F2 });
      rmSync(join(c.mirrors.a!, 'edited-in-case.txt'));
      rmSync(join(c.path, 'edited-on-mirror.txt'));
      writeTree(c.mirrors.a!, { 'edited-on-mirror.txt': F2 });
      const report = await sync(c);
      assert.deepEqual(mirrorReport(report, 'a').conflicts, []);
      assertAllEqual(c);
      const t = readTree(c.path);
      assert.equal(t.get('edited-in-case.txt')?.content, F2);
      assert.equal(t.get('edited-on-mirror.txt')?.content, F2);
      assert.deepEqual(conflictCopies(t), []);
      await assertQuietSync(c);
    });
  });

  test('edit against edit: both versions kept everywhere, listed by `conflicts`, settled by `resolve`', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'notes.txt': F1, 'plan.md': F1, 'todo.txt': F1 });
      await sync(c);
      // The mirror's edits are newer, so they keep the paths; the case's become the copies.
      writeTree(c.path, {
        'notes.txt': { content: 'case edit\n', mtime: older() },
        'plan.md': { content: 'case plan\n', mtime: older() },
        'todo.txt': { content: 'case todo\n', mtime: older() },
      });
      writeTree(c.mirrors.a!, {
        'notes.txt': { content: 'mirror edit, longer\n', mtime: newer() },
        'plan.md': { content: 'mirror plan, longer\n', mtime: newer() },
        'todo.txt': { content: 'mirror todo, longer\n', mtime: newer() },
      });
      const report = await sync(c);
      const found = mirrorReport(report, 'a').conflicts;
      assert.deepEqual(found.map((x) => x.path).sort(), ['notes.txt', 'plan.md', 'todo.txt']);
      for (const x of found) {
        assert.match(x.copyPath, /^[^/]+\.conflict-\d{8}-\d{6}-[^/]+$/, `copy name of ${x.path}`);
        assert.ok(x.reason.length > 0, 'a conflict needs a reason');
      }
      const notesCopy = found.find((x) => x.path === 'notes.txt')!.copyPath;
      assert.match(notesCopy, /^notes\.conflict-\d{8}-\d{6}-.+\.txt$/);
      assert.match(found.find((x) => x.path === 'plan.md')!.copyPath, /^plan\.conflict-\d{8}-\d{6}-.+\.md$/);
      // Both versions are on the case and on both mirrors after this one sync.
      for (const dir of [c.path, c.mirrors.a!, c.mirrors.b!]) {
        const t = readTree(dir);
        assert.equal(t.get('notes.txt')?.content, 'mirror edit, longer\n', `winner at the path in ${dir}`);
        assert.equal(t.get(notesCopy)?.content, 'case edit\n', `older version in the copy in ${dir}`);
        assert.deepEqual(versionsOf(t, 'plan'), ['case plan\n', 'mirror plan, longer\n']);
      }
      assertAllEqual(c);
      await assertQuietSync(c);

      const listed = await conflicts(c);
      assert.deepEqual(listed.conflicts.map((x) => [x.path, x.mirror]).sort(), [
        ['notes.txt', 'a'],
        ['plan.md', 'a'],
        ['todo.txt', 'a'],
      ]);
      assert.equal((await status(c)).conflicts, 3);

      await satchelOk(['-C', c.path, 'resolve', 'notes.txt', '--keep', 'case']);
      await satchelOk(['-C', c.path, 'resolve', 'plan.md', '--keep', 'mirror']);
      await satchelOk(['-C', c.path, 'resolve', 'todo.txt', '--keep', 'both']);
      assert.deepEqual((await conflicts(c)).conflicts, []);
      await sync(c);
      assertAllEqual(c);
      const t = readTree(c.mirrors.b!);
      assert.deepEqual(versionsOf(t, 'notes'), ['case edit\n']);
      assert.deepEqual(versionsOf(t, 'plan'), ['mirror plan, longer\n']);
      assert.deepEqual(versionsOf(t, 'todo'), ['case todo\n', 'mirror todo, longer\n']);
      assert.equal(t.get('notes.txt')?.content, 'case edit\n');
      assert.equal(t.get('plan.md')?.content, 'mirror plan, longer\n');
      await assertQuietSync(c);
    });
  });

  test('one path in conflict with two mirrors: both conflicts are listed and settled one by one', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'f.txt': F1 });
      await sync(c);
      const t = Date.now();
      writeTree(c.mirrors.a!, { 'f.txt': { content: 'from a\n', mtime: t - 30_000 } });
      writeTree(c.mirrors.b!, { 'f.txt': { content: 'from b\n', mtime: t - 20_000 } });
      writeTree(c.path, { 'f.txt': { content: 'from the case\n', mtime: t - 10_000 } });
      await sync(c);
      const listed = (await conflicts(c)).conflicts;
      assert.deepEqual(listed.map((x) => [x.path, x.mirror]).sort(), [
        ['f.txt', 'a'],
        ['f.txt', 'b'],
      ]);
      const st = await status(c);
      assert.equal(st.conflicts, 2);
      // `resolve f.txt` cannot tell which is meant: it says so and names both copies.
      const ambiguous = await runSatchel(['-C', c.path, 'resolve', 'f.txt', '--keep', 'case']);
      assert.notEqual(ambiguous.code, 0);
      for (const x of listed) assert.ok(ambiguous.stderr.includes(x.copyPath), ambiguous.stderr);
      const [fromA, fromB] = [listed.find((x) => x.mirror === 'a')!, listed.find((x) => x.mirror === 'b')!];
      await satchelOk(['-C', c.path, 'resolve', fromA.copyPath, '--keep', 'case']);
      assert.deepEqual(
        (await conflicts(c)).conflicts.map((x) => x.mirror),
        ['b'],
      );
      // A copy deleted by hand settles its conflict at the next sync.
      rmSync(join(c.path, fromB.copyPath));
      await sync(c);
      assert.deepEqual((await conflicts(c)).conflicts, []);
      assertAllEqual(c);
      assert.equal(readFileSync(join(c.mirrors.b!, 'f.txt'), 'utf8'), 'from the case\n');
      assert.deepEqual(conflictCopies(readTree(c.path)), []);
    });
  });

  test('the same change on both sides is not a conflict', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'same.txt': F1, 'gone.txt': F1 });
      await sync(c);
      writeTree(c.path, { 'same.txt': { content: F2, mtime: older() }, 'new.txt': 'both made me\n' });
      writeTree(c.mirrors.a!, { 'same.txt': { content: F2, mtime: newer() }, 'new.txt': 'both made me\n' });
      rmSync(join(c.path, 'gone.txt'));
      rmSync(join(c.mirrors.a!, 'gone.txt'));
      const report = await sync(c);
      assert.deepEqual(mirrorReport(report, 'a').conflicts, []);
      assertTreesEqual(c.path, c.mirrors.b!, { mtimeToleranceMs: false });
      assert.deepEqual(conflictCopies(readTree(c.path)), []);
      assert.equal(readTree(c.mirrors.b!).get('same.txt')?.content, F2);
    });
  });

  test('renaming a file or a whole folder renames on the mirror (same inode), not delete + copy', async () => {
    await withCase(async (c) => {
      writeTree(c.path, {
        'docs/report.txt': 'a report with unique content\n'.repeat(200),
        'olddir/one.txt': 'one\n'.repeat(100),
        'olddir/two.txt': 'two\n'.repeat(100),
        'olddir/sub/three.txt': 'three\n'.repeat(100),
      });
      await sync(c);
      const before = readTree(c.mirrors.a!);
      renameSync(join(c.path, 'docs/report.txt'), join(c.path, 'docs/final.txt'));
      renameSync(join(c.path, 'olddir'), join(c.path, 'newdir'));
      await sync(c);
      assertAllEqual(c);
      const after = readTree(c.mirrors.a!);
      const pairs: [string, string][] = [
        ['docs/report.txt', 'docs/final.txt'],
        ['olddir/one.txt', 'newdir/one.txt'],
        ['olddir/two.txt', 'newdir/two.txt'],
        ['olddir/sub/three.txt', 'newdir/sub/three.txt'],
      ];
      for (const [from, to] of pairs) {
        assert.equal(after.has(from), false, `${from} still on the mirror`);
        assert.equal(after.get(to)?.ino, before.get(from)!.ino, `${from} → ${to} was copied, not renamed`);
      }
      await assertQuietSync(c);
    });
  });

  test('star topology: an edit made on mirror a reaches mirror b in one sync', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'shared.txt': F1 });
      await sync(c);
      writeTree(c.mirrors.a!, { 'shared.txt': F2, 'from-a/new.txt': 'made on a\n' });
      rmSync(join(c.mirrors.b!, 'shared.txt'), { force: true });
      writeTree(c.mirrors.b!, { 'shared.txt': F1 }); // unchanged content, new inode and mtime
      const report = await sync(c);
      assert.ok(mirrorReport(report, 'a').in > 0);
      assertAllEqual(c);
      assert.equal(readFileSync(join(c.mirrors.b!, 'shared.txt'), 'utf8'), F2);
      assert.equal(readFileSync(join(c.mirrors.b!, 'from-a/new.txt'), 'utf8'), 'made on a\n');
      await assertQuietSync(c);
    });
  });

  test('a mirror whose marker is missing is reported absent and left untouched', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'keep.txt': F1, 'also.txt': F1 });
      await sync(c);
      const marker = join(c.mirrors.b!, '.satchel-mirror');
      const markerText = readFileSync(marker);
      rmSync(marker);
      const before = readTree(c.mirrors.b!, { ignore: () => false });
      writeTree(c.path, { 'keep.txt': F2 });
      rmSync(join(c.path, 'also.txt'));
      const report = await sync(c);
      assert.equal(mirrorReport(report, 'b').state, 'absent');
      assert.equal(mirrorReport(report, 'a').state, 'synced');
      assert.deepEqual(
        readTree(c.mirrors.b!, { ignore: () => false }),
        before,
        'an absent mirror was touched',
      );
      const st = await status(c);
      assert.equal(st.mirrors.find((m) => m.name === 'b')?.present, false);

      // Root gone altogether (a share not mounted): absent as well, nothing created there.
      renameSync(c.mirrors.b!, `${c.mirrors.b!}.away`);
      assert.equal(mirrorReport(await sync(c), 'b').state, 'absent');
      assert.throws(() => lstatSync(c.mirrors.b!), /ENOENT/, 'the missing mirror root was recreated');
      renameSync(`${c.mirrors.b!}.away`, c.mirrors.b!);

      // Marker back: the mirror catches up.
      writeFileSync(marker, markerText);
      assert.equal(mirrorReport(await sync(c), 'b').state, 'synced');
      assertAllEqual(c);
    });
  });

  test('a sync that would delete most of a side halts until --allow-mass-delete', async () => {
    await withCase(async (c) => {
      const spec: Record<string, string> = {};
      for (let i = 0; i < 10; i++) spec[`f${i}.txt`] = `file ${i}\n`;
      writeTree(c.path, spec);
      await sync(c);
      for (let i = 0; i < 8; i++) rmSync(join(c.path, `f${i}.txt`));
      const r = await runSatchel(['-C', c.path, 'sync', '--json']);
      assertExit(r, 1);
      const halted = r.json<{
        mirrors: { mirror: string; state: string; message?: string; hint?: string }[];
      }>();
      for (const name of ['a', 'b']) {
        const m = halted.mirrors.find((x) => x.mirror === name);
        assert.equal(m?.state, 'halted', JSON.stringify(halted));
        assert.ok(m?.message && m.hint, `a halt needs a message and a hint: ${JSON.stringify(m)}`);
        assert.equal(readTree(c.mirrors[name]!).size, 10, `mirror ${name} lost files while halted`);
      }
      assert.equal(readTree(c.path).size, 2, 'the halted sync brought deleted files back');
      // Without --json the reason goes to stderr.
      const plain = await runSatchel(['-C', c.path, 'sync']);
      assertExit(plain, 1);
      assert.match(plain.stdout + plain.stderr, /--allow-mass-delete/);

      await satchelOk(['-C', c.path, 'sync', '--allow-mass-delete']);
      assertAllEqual(c);
      assert.deepEqual([...readTree(c.mirrors.a!).keys()], ['f8.txt', 'f9.txt']);
    });
  });

  test('.satchelignore and the default editor ignores; .git is replicated but not its lock files', async () => {
    await withCase(async (c) => {
      writeTree(c.path, {
        '.satchelignore': '*.log\nbuild/\n',
        'app.log': 'log\n',
        'build/out.bin': 'binary\n',
        'src/main.c': 'int main(void) { return 0; }\n',
        'src/.main.c.swp': 'vim swap\n',
        'src/4913': '',
        'src/main.c~': 'backup\n',
        'src/#main.c#': 'emacs autosave\n',
        'src/.#main.c': { symlink: 'root@host.1234:1700000000' },
        '.git/HEAD': 'ref: refs/heads/main\n',
        '.git/objects/ab/cdef0123456789': 'object\n',
        '.git/index.lock': 'lock\n',
        '.git/refs/heads/main.lock': 'lock\n',
      });
      writeTree(c.mirrors.a!, { 'notes.txt.swp': 'swap on the mirror\n', 'other~': 'backup\n' });
      await sync(c);
      const expected = [
        '.git',
        '.git/HEAD',
        '.git/objects',
        '.git/objects/ab',
        '.git/objects/ab/cdef0123456789',
        '.git/refs',
        '.git/refs/heads',
        '.satchelignore',
        'src',
        'src/main.c',
      ];
      assert.deepEqual([...readTree(c.mirrors.b!).keys()], expected);
      assert.deepEqual(
        [...readTree(c.mirrors.a!).keys()],
        [...expected, 'notes.txt.swp', 'other~'].sort(),
        'ignored files on a mirror are left alone',
      );
      const caseTree = readTree(c.path);
      assert.equal(caseTree.has('notes.txt.swp'), false, 'an ignored file came into the case');
      assert.equal(caseTree.get('app.log')?.content, 'log\n', 'an ignored file in the case was touched');
      await assertQuietSync(c);
    });
  });

  test('a .satchelignore brought in from a mirror applies to the rest of the same sync', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'src/main.c': F1, 'build/out.bin': F2 });
      writeTree(c.mirrors.a!, { '.satchelignore': 'build/\n' });
      const report = await sync(c);
      assert.deepEqual(mirrorReport(report, 'b').problems, []);
      assert.equal(readFileSync(join(c.path, '.satchelignore'), 'utf8'), 'build/\n');
      assert.equal(readFileSync(join(c.mirrors.b!, '.satchelignore'), 'utf8'), 'build/\n');
      assert.equal(readFileSync(join(c.mirrors.b!, 'src/main.c'), 'utf8'), F1);
      assert.equal(existsSync(join(c.mirrors.b!, 'build')), false, 'b got what the new rules ignore');
      assert.equal(readFileSync(join(c.path, 'build/out.bin'), 'utf8'), F2, 'the case keeps it');
    });
  });

  test('a rule taken away again: an edit made while the path was ignored goes out, no false conflict', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'n.txt': 'v1\n', 'build/out.txt': 'out v1\n' });
      await sync(c);
      writeTree(c.path, { '.satchelignore': 'n.txt\nbuild/\n' });
      await sync(c);
      writeTree(c.path, { 'n.txt': 'v2\n', 'build/out.txt': 'out v2\n' });
      await sync(c);
      for (const dir of Object.values(c.mirrors))
        assert.equal(readFileSync(join(dir, 'n.txt'), 'utf8'), 'v1\n');
      writeTree(c.path, { '.satchelignore': '' });
      const r = mirrorReport(await sync(c), 'a');
      assert.deepEqual(r.conflicts, [], JSON.stringify(r));
      assertAllEqual(c);
      assert.equal(readFileSync(join(c.mirrors.a!, 'n.txt'), 'utf8'), 'v2\n');
      assert.equal(readFileSync(join(c.mirrors.b!, 'build/out.txt'), 'utf8'), 'out v2\n');
      assert.deepEqual(conflictCopies(readTree(c.path)), []);
    });
  });

  test('an unreadable file is reported per path, the rest syncs, and it follows once readable', async () => {
    // Root reads every file whatever its mode, so this test runs satchel as `nobody`.
    await withTempDir('unreadable', async (root) => {
      const nobody = { uid: 65534, gid: 65534 };
      const env = { HOME: root };
      chmodSync(root, 0o755);
      chownSync(root, nobody.uid, nobody.gid);
      const c = await createCase(root, { a: undefined }, { asUser: nobody, env });
      writeTree(c.path, {
        'ok.txt': F1,
        'dir/ok2.txt': F2,
        'secret.txt': 'private\n',
        'dir/locked/x.txt': F1,
      });
      for (const p of ['ok.txt', 'dir', 'dir/ok2.txt', 'secret.txt', 'dir/locked', 'dir/locked/x.txt']) {
        chownSync(join(c.path, p), nobody.uid, nobody.gid);
      }
      chmodSync(join(c.path, 'secret.txt'), 0o000);
      chmodSync(join(c.path, 'dir/locked'), 0o000);
      const report = await sync(c);
      const m = mirrorReport(report, 'a');
      const problems = m.problems.map((p) => [p.path, p.code]).sort();
      assert.deepEqual(problems, [
        ['dir/locked', 'unreadable'],
        ['secret.txt', 'unreadable'],
      ]);
      for (const p of m.problems) assert.ok(p.message.length > 0);
      const mirror = readTree(c.mirrors.a!);
      assert.equal(mirror.get('ok.txt')?.content, F1);
      assert.equal(mirror.get('dir/ok2.txt')?.content, F2);
      assert.equal(mirror.has('secret.txt'), false);
      assert.equal(mirror.has('dir/locked/x.txt'), false, 'an unreadable folder was treated as empty');
      chmodSync(join(c.path, 'secret.txt'), 0o644);
      chmodSync(join(c.path, 'dir/locked'), 0o755);
      const retried = mirrorReport(await sync(c), 'a');
      assert.deepEqual(retried.problems, []);
      assertTreesEqual(c.path, c.mirrors.a!);
    });
  });

  test('a push-only mirror: what Satchel never published there is kept; what it published follows the case', async () => {
    await withTempDir('push-only', async (root) => {
      const site = join(root, 'site');
      writeTree(site, { '.htaccess': 'Deny from all\n', 'guestbook.txt': 'signed by a visitor\n' });
      const c = await createCase(root, {});
      writeTree(c.path, { 'index.html': '<h1>site</h1>\n', 'old.html': 'old\n' });
      await satchelOk(['-C', c.path, 'mirror', 'add', 'site', site, '--push-only']);
      await sync(c);
      const published = () => contents(readTree(site, { ignore: (p) => p === '.satchel-mirror' }));
      assert.deepEqual(published(), {
        '.htaccess': 'Deny from all\n',
        'guestbook.txt': 'signed by a visitor\n',
        'index.html': '<h1>site</h1>\n',
        'old.html': 'old\n',
      });
      // Someone adds a file later; the case deletes one it published: only that one goes.
      writeTree(site, { 'comment-42.txt': 'nice site\n' });
      rmSync(join(c.path, 'old.html'));
      await sync(c);
      assert.deepEqual(published(), {
        '.htaccess': 'Deny from all\n',
        'comment-42.txt': 'nice site\n',
        'guestbook.txt': 'signed by a visitor\n',
        'index.html': '<h1>site</h1>\n',
      });
      await assertQuietSync(c);

      // Someone edits a published file on the mirror (drift): said by name, and replaced.
      writeTree(site, { 'index.html': '<h1>defaced</h1>\n' });
      const status = await satchelJson<{ mirrors: { name: string; driftPending: string[] }[] }>([
        '-C',
        c.path,
        'status',
        '--json',
      ]);
      assert.deepEqual(status.mirrors.find((m) => m.name === 'site')?.driftPending, ['index.html']);
      const human = await satchelOk(['-C', c.path, 'sync']);
      assert.match(
        human.stdout,
        /~ index\.html: changed on the mirror \(drift\); replaced with the case's version/,
      );
      assert.equal(readFileSync(join(site, 'index.html'), 'utf8'), '<h1>site</h1>\n');
      assert.deepEqual(mirrorReport(await sync(c), 'site').drift, [], 'drift is gone once replaced');
      // A published file deleted there is drift too: put back.
      rmSync(join(site, 'index.html'));
      assert.deepEqual(mirrorReport(await sync(c), 'site').drift, ['index.html']);
      assert.equal(readFileSync(join(site, 'index.html'), 'utf8'), '<h1>site</h1>\n');
    });
  });

  test('a named pipe is a special-file problem: left alone on both sides, quiet once ignored', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'ok.txt': F1 });
      runTool('mkfifo', [join(c.path, 'pipe')]);
      // The mirror holds a file of that name: it must not be copied over the pipe, nor removed.
      writeTree(c.mirrors.a!, { pipe: F2 });
      for (const round of [1, 2]) {
        const m = mirrorReport(await sync(c), 'a');
        assert.deepEqual(
          m.problems.map((p) => [p.path, p.code]),
          [['pipe', 'special-file']],
          `round ${round}`,
        );
        assert.match(
          m.problems[0]!.message,
          /pipe is a named pipe \(FIFO\): only files, folders and symbolic links/,
        );
        assert.ok(lstatSync(join(c.path, 'pipe')).isFIFO(), 'the pipe was replaced');
        assert.equal(readFileSync(join(c.mirrors.a!, 'pipe'), 'utf8'), F2);
        assert.equal(readFileSync(join(c.mirrors.a!, 'ok.txt'), 'utf8'), F1);
      }
      // status does not call the mirror simply up to date: it names what a sync leaves out.
      const st = await satchelJson<{
        mirrors: { name: string; pending: number; problems: { path: string; code: string }[] }[];
      }>(['-C', c.path, 'status', '--json']);
      const a = st.mirrors.find((m) => m.name === 'a')!;
      assert.equal(a.pending, 0);
      assert.deepEqual(
        a.problems.map((p) => [p.path, p.code]),
        [['pipe', 'special-file']],
      );
      const text = await satchelOk(['-C', c.path, 'status']);
      assert.match(text.stdout, /a: present — up to date \(1 path with a problem\)/);
      assert.match(text.stdout, /\n {4}! pipe: pipe is a named pipe/);
      writeTree(c.path, { '.satchelignore': 'pipe\n' });
      assert.deepEqual(mirrorReport(await sync(c), 'a').problems, []);
      // A pipe on a mirror where the pair agreed on a file is no deletion of that file.
      unlinkSync(join(c.mirrors.b!, 'ok.txt'));
      runTool('mkfifo', [join(c.mirrors.b!, 'ok.txt')]);
      const b = mirrorReport(await sync(c), 'b');
      assert.deepEqual(
        b.problems.map((p) => [p.path, p.code]),
        [['ok.txt', 'special-file']],
      );
      assert.equal(readFileSync(join(c.path, 'ok.txt'), 'utf8'), F1, 'the case lost its file');
      assert.equal(readFileSync(join(c.mirrors.a!, 'ok.txt'), 'utf8'), F1, 'mirror a lost its file');
    });
  });

  test('--dry-run reports the plan and changes nothing anywhere', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'a.txt': F1, 'b.txt': F1 });
      const fresh = readTree(c.path);
      const dry0 = await sync(c, ['--dry-run']);
      assert.equal(mirrorReport(dry0, 'a').state, 'planned');
      assert.deepEqual(readTree(c.mirrors.a!), new Map(), 'dry run wrote to a fresh mirror');
      assert.deepEqual(readTree(c.path), fresh);
      await sync(c);

      writeTree(c.path, { 'a.txt': F2, 'c.txt': 'new\n' });
      rmSync(join(c.path, 'b.txt'));
      writeTree(c.mirrors.b!, { 'from-b.txt': 'b\n' });
      // Everything but the case's state folder (the database may be opened), markers included.
      const all = () =>
        [c.path, c.mirrors.a!, c.mirrors.b!].map((d) => readTree(d, { ignore: (p) => p === '.satchel' }));
      const before = all().map((t) => contents(t));
      const beforeStat = all();
      const dry = await sync(c, ['--dry-run']);
      for (const name of ['a', 'b']) {
        const m = mirrorReport(dry, name);
        assert.equal(m.state, 'planned');
        assert.ok((m.operations?.length ?? 0) > 0, `no operations listed for ${name}: ${JSON.stringify(m)}`);
      }
      assert.deepEqual(
        all().map((t) => contents(t)),
        before,
      );
      const afterStat = all();
      for (let i = 0; i < 3; i++) {
        for (const [p, n] of beforeStat[i]!) {
          assert.equal(afterStat[i]!.get(p)?.mtimeMs, n.mtimeMs, `dry run touched ${p}`);
        }
      }
      await sync(c);
      assertAllEqual(c);
      assert.equal(readTree(c.path).get('from-b.txt')?.content, 'b\n');
    });
  });

  test('a newline or an escape sequence in a name shows as an escape: one name, one line', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'two\nlines.txt': F1, '\u001b[31mred.txt': F2 });
      const dry = await satchelOk(['-C', c.path, 'sync', '--dry-run']);
      const lines = dry.stdout.split('\n');
      assert.ok(
        lines.some((l) => l.includes('two\\nlines.txt')),
        `the name on one line, its newline as \\n:\n${dry.stdout}`,
      );
      assert.ok(
        lines.some((l) => l.includes('\\x1b[31mred.txt')),
        dry.stdout,
      );
      assert.ok(!dry.stdout.includes('\u001b'), 'no raw escape character reaches the terminal');
      assert.ok(!lines.some((l) => l.startsWith('lines.txt')), dry.stdout);
      // JSON keeps the names as they are.
      const json = await sync(c, ['--dry-run']);
      const paths = (mirrorReport(json, 'a').operations ?? []).map((o) => (o as { path: string }).path);
      assert.ok(
        paths.includes('two\nlines.txt') && paths.includes('\u001b[31mred.txt'),
        JSON.stringify(paths),
      );
      await sync(c);
      assertAllEqual(c);
    });
  });

  test('Ctrl-C during a sync: one line says nothing is half-written; the next sync converges', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'held.txt': F1 });
      await sync(c);
      // An edit on the mirror: its arrival in the case is held 10 s while the file is locked.
      writeTree(c.mirrors.a!, { 'held.txt': F2 });
      const run = spawnSatchel(['-C', c.path, 'sync'], { env: { SATCHEL_TEST_HOLD_INCOMING_MS: '10000' } });
      await waitUntil('the case file locked for the incoming edit', () => {
        try {
          return (statSync(join(c.path, 'held.txt')).mode & 0o222) === 0;
        } catch {
          return false;
        }
      });
      process.kill(run.pid, 'SIGINT');
      const r = await run.done;
      assert.equal(r.code, 130, describeRun(r));
      assert.match(r.stderr, /satchel: interrupted; nothing is left half-written under a final name/);
      // The case file it had locked is unlocked by the next command, which says so.
      assert.equal(statSync(join(c.path, 'held.txt')).mode & 0o222, 0, 'left read-only by the stop');
      const st = await satchelJson<{ unlocked?: string[]; locked: unknown[] }>([
        '-C',
        c.path,
        'status',
        '--json',
      ]);
      assert.deepEqual(st.unlocked, ['held.txt']);
      assert.deepEqual(st.locked, []);
      assert.notEqual(statSync(join(c.path, 'held.txt')).mode & 0o200, 0, 'status restored the permissions');
      await sync(c);
      assertAllEqual(c);
      assert.equal(readFileSync(join(c.path, 'held.txt'), 'utf8'), F2);
      assert.notEqual(statSync(join(c.path, 'held.txt')).mode & 0o200, 0, 'the lock was undone');
    });
  });

  test('a malformed config.toml fails with exit 1 naming the file and the key', async () => {
    await withCase(async (c) => {
      const config = join(c.path, '.satchel', 'config.toml');
      const good = readFileSync(config, 'utf8');
      assert.match(good, /push_only\s*=/, 'config.toml layout changed: update this test');
      writeFileSync(config, good.replace(/push_only\s*=.*/, 'push_only = "sometimes"'));
      for (const command of [['status'], ['sync']]) {
        const r = await runSatchel(['-C', c.path, ...command]);
        assertExit(r, 1);
        assert.match(r.stderr, /^satchel: .*config\.toml/m, `names the file: ${r.stderr}`);
        assert.match(r.stderr, /push_only/, `names the key: ${r.stderr}`);
        assert.match(r.stderr, /true or false/, `says what is allowed: ${r.stderr}`);
        assert.match(r.stderr, /^hint: /m);
      }
      writeFileSync(config, `${good}\n[mirrors.broken\n`);
      const syntax = await runSatchel(['-C', c.path, 'status']);
      assertExit(syntax, 1);
      assert.match(syntax.stderr, /config\.toml/);
      writeFileSync(config, good);
      await satchelOk(['-C', c.path, 'status']);
    });
  });

  test('a mirror with a damaged marker fails alone: the other mirrors are synced, the damaged one untouched', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'x.txt': F1 });
      const marker = join(c.mirrors.a!, '.satchel-mirror');
      writeFileSync(marker, '{garbage');
      const r = await runSatchel(['-C', c.path, 'sync', '--json']);
      assertExit(r, 1);
      const report = r.json<SyncReport>();
      const a = report.mirrors.find((m) => m.mirror === 'a')!;
      assert.equal(a.state, 'failed');
      assert.match(a.message ?? '', /\.satchel-mirror is malformed/);
      assert.equal(report.mirrors.find((m) => m.mirror === 'b')?.state, 'synced');
      assert.equal(readFileSync(join(c.mirrors.b!, 'x.txt'), 'utf8'), F1);
      assert.equal(existsSync(join(c.mirrors.a!, 'x.txt')), false);
      assert.equal(readFileSync(marker, 'utf8'), '{garbage');
      // status says so too: not absent (it is there), failed, with the reason.
      const st = (await status(c)).mirrors.find((m) => m.name === 'a')!;
      assert.deepEqual([st.state, st.present], ['failed', false]);
      assert.match(st.message ?? '', /\.satchel-mirror is malformed/);
    });
  });

  test('status, mirror list and mirror remove report and change the configuration', async () => {
    await withCase(async (c) => {
      writeTree(c.path, { 'x.txt': F1 });
      const before = await status(c);
      assert.equal(before.case, c.path);
      assert.deepEqual(
        before.mirrors.map((m) => [m.name, m.present]),
        [
          ['a', true],
          ['b', true],
        ],
      );
      await sync(c);
      const after = await status(c);
      for (const m of after.mirrors) {
        assert.equal(m.pending, 0, JSON.stringify(m));
        assert.ok(m.lastSync, `no lastSync after a sync: ${JSON.stringify(m)}`);
      }
      assert.deepEqual(after.locked, []);
      assert.equal(after.conflicts, 0);

      const listed = await mirrorList(c);
      assert.deepEqual(
        listed.mirrors.map((m) => [m.name, m.url, m.pushOnly, m.present]),
        [
          ['a', c.mirrors.a, false, true],
          ['b', c.mirrors.b, false, true],
        ],
      );
      await satchelOk(['-C', c.path, 'mirror', 'remove', 'b']);
      assert.deepEqual(
        (await mirrorList(c)).mirrors.map((m) => m.name),
        ['a'],
      );
      assert.deepEqual(
        (await sync(c)).mirrors.map((m) => m.mirror),
        ['a'],
      );
      // Removing a mirror never deletes its files.
      assert.equal(readFileSync(join(c.mirrors.b!, 'x.txt'), 'utf8'), F1);

      const missing = await runSatchel([
        '-C',
        c.path,
        'mirror',
        'add',
        'nowhere',
        join(c.path, '..', 'no-such-folder'),
      ]);
      assertExit(missing, 1);
      assert.match(missing.stderr, /^satchel: .+/m);
      assert.match(missing.stderr, /^hint: .+/m);
      const usage = await runSatchel(['-C', c.path, 'sync', '--no-such-option']);
      assertExit(usage, 2);
    });
  });
});
