/**
 * @module test/helpers/stick
 * Scenarios for a mirror on a removable stick's file system (exFAT, FAT32), shared by the
 * exFAT and FAT32 integration tests. Each scenario gets a mounted stick, uses its own folder on
 * it and its own temporary cases, and drives only the real CLI.
 *
 * What a FAT-family stick changes, and what the scenarios check:
 * - the capability probe finds coarse mtimes (exFAT through exfat-fuse: 1 s, FAT: 2 s), no case
 *   sensitivity and no symbolic links;
 * - names FAT cannot hold are stored encoded (`a:b` → `a：b`, `what?` → `what？`, trailing dot →
 *   `．`, trailing space → `␠`) and decoded exactly on the way back, also into another case;
 * - `README` beside `readme` is a `case-clash` problem, never an overwrite;
 * - a symbolic link is a `symlink-unsupported` problem, and the case keeps its link;
 * - mtimes are compared within the granularity, so a second sync copies nothing again;
 * - a rename that only changes letter case crosses the stick in both directions.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { join } from 'node:path';
import { mirrorReport, type MirrorSyncReport } from './cli.js';
import { assertQuietSync, createCase, mirrorList, sync, type TestCase } from './case.js';
import { fsckImage, type ImageKind, type MountedImage } from './image.js';
import { makeTempDir, removeTempDir, withTempDir } from './temp.js';
import { assertTreesEqual, readTree, satchelTempFiles, writeTree, type CompareOptions } from './tree.js';
import { readEvents, startWatch, stopWatch, waitUntil } from './watch.js';

/** What a scenario needs to know about the stick. */
export interface StickInfo {
  /** The mount point of the stick's file system. */
  readonly mnt: string;
  /** The mtime granularity the probe must find, in ms. */
  readonly granularityMs: number;
}

/** How a FAT-family mirror is compared with the case: mtimes within its granularity, no exec bit. */
export function stickCompare(stick: StickInfo): CompareOptions {
  return { mtimeToleranceMs: stick.granularityMs, execBit: false };
}

/**
 * Runs `fn` with a new case (in a temporary folder) whose one mirror `stick` is the folder
 * `<mnt>/<folder>` (created), so that scenarios sharing one mount do not meet.
 */
export function withStickCase(
  stick: StickInfo,
  folder: string,
  fn: (c: TestCase, stickDir: string, root: string) => Promise<void>,
): Promise<void> {
  return withTempDir(`stick-${folder}`, async (root) => {
    const stickDir = join(stick.mnt, folder);
    mkdirSync(stickDir, { recursive: true });
    await fn(await createCase(root, { stick: stickDir }), stickDir, root);
  });
}

/** Asserts the stick holds the case (within its granularity) and no temporary file. */
export function assertStickMatches(c: TestCase, stick: StickInfo): void {
  assertTreesEqual(c.path, c.mirrors.stick!, stickCompare(stick));
  assert.deepEqual(satchelTempFiles(c.mirrors.stick!), [], 'temporary files left on the stick');
}

/** `[path, code]` of every problem of a mirror report, sorted. */
function problemsOf(m: MirrorSyncReport): string[][] {
  return m.problems.map((p) => [p.path, p.code]).sort();
}

/** The probe finds the stick's mtime granularity, case insensitivity and lack of links. */
export async function probeScenario(stick: StickInfo): Promise<void> {
  await withStickCase(stick, 'probe', async (c) => {
    const listed = await mirrorList(c);
    const m = listed.mirrors.find((x) => x.name === 'stick');
    assert.ok(m?.capabilities, `mirror list has no capabilities: ${JSON.stringify(listed)}`);
    assert.equal(m.present, true);
    assert.equal(m.capabilities.mtimeGranularityMs, stick.granularityMs);
    assert.equal(m.capabilities.caseSensitive, false);
    assert.equal(m.capabilities.symlinks, false);
    for (const ch of ':?*<>|"\\')
      assert.ok(m.capabilities.forbiddenChars?.includes(ch), `'${ch}' is forbidden`);
  });
}

/** The case's names, and how they must appear on the stick. */
const AWKWARD_NAMES: readonly (readonly [string, string])[] = [
  ['a:b', 'a：b'],
  ['what?', 'what？'],
  ['trail.', 'trail．'],
  ['trail ', 'trail␠'],
  ['dir:x', 'dir：x'],
];

/**
 * Names FAT cannot hold are stored encoded on the stick, decoded exactly in a second case that
 * adopts the same stick, and an edit made to the encoded name on the stick comes back.
 */
export async function namesScenario(stick: StickInfo): Promise<void> {
  await withStickCase(stick, 'names', async (c, stickDir) => {
    writeTree(c.path, {
      'a:b': 'colon\n',
      'what?': 'question\n',
      'trail.': 'dot\n',
      'trail ': 'space\n',
      'dir:x/in*side<>.txt': 'nested\n',
      'plain.txt': 'plain\n',
    });
    const first = mirrorReport(await sync(c), 'stick');
    assert.deepEqual(first.problems, [], 'encodable names must not be problems');
    const onStick = readdirSync(stickDir).filter((n) => n !== '.satchel-mirror');
    assert.deepEqual(onStick.sort(), [...AWKWARD_NAMES.map(([, e]) => e), 'plain.txt'].sort());
    assert.deepEqual(readdirSync(join(stickDir, 'dir：x')), ['in＊side＜＞.txt']);
    assertTreesEqual(readTree(c.path), decodedTree(stickDir), stickCompare(stick));
    await assertQuietSync(c);

    // Another computer: its own case, the same stick.
    await withTempDir('stick-home', async (home) => {
      const other = await createCase(home, { stick: stickDir });
      const back = mirrorReport(await sync(other), 'stick');
      assert.deepEqual(back.problems, []);
      assertTreesEqual(c.path, other.path, stickCompare(stick));
      assert.equal(readFileSync(join(other.path, 'a:b'), 'utf8'), 'colon\n');
      assert.equal(readFileSync(join(other.path, 'trail '), 'utf8'), 'space\n');
    });

    // Edited on the stick under its encoded name (as Windows shows it): reaches `a:b`.
    writeFileSync(join(stickDir, 'a：b'), 'colon, edited on the stick\n');
    const edited = mirrorReport(await sync(c), 'stick');
    assert.equal(edited.in, 1, JSON.stringify(edited));
    assert.equal(readFileSync(join(c.path, 'a:b'), 'utf8'), 'colon, edited on the stick\n');
    await assertQuietSync(c);
  });
}

/** The stick's tree with the documented encodings undone, to compare with the case. */
function decodedTree(stickDir: string): ReturnType<typeof readTree> {
  const decode = (p: string): string =>
    p
      .split('/')
      .map(
        (seg) =>
          AWKWARD_NAMES.find(([, e]) => e === seg)?.[0] ?? seg.replace(/[＊＜＞]/g, (x) => decodeChar(x)),
      )
      .join('/');
  return new Map([...readTree(stickDir)].map(([p, n]) => [decode(p), n]));
}

function decodeChar(x: string): string {
  return String.fromCodePoint(x.codePointAt(0)! - 0xfee0);
}

/**
 * Under `satchel watch` (the per-save path): `Readme.md` saved beside a synced `README.md` is a
 * case-clash problem too; the stick keeps README.md, no conflict copy appears, and later saves
 * of either name neither flip the stick's file nor reach the case through the other name.
 */
export async function watchCaseClashScenario(stick: StickInfo): Promise<void> {
  await withStickCase(stick, 'watch-clash', async (c, stickDir) => {
    writeTree(c.path, { 'README.md': 'upper\n', 'docs/Guide.txt': 'guide\n' });
    await sync(c);
    const w = await startWatch(c, { args: ['--settle', '50'] });
    try {
      const problemFor = (path: string): boolean =>
        readEvents(c.path).some(
          (e) => e.event === 'problem' && e.paths?.includes(path) && /case-clash/.test(e.message ?? ''),
        );
      writeFileSync(join(c.path, 'Readme.md'), 'mixed\n');
      writeFileSync(join(c.path, 'docs', 'guide.txt'), 'other guide\n');
      await waitUntil(
        'case-clash problems for Readme.md and docs/guide.txt',
        () => problemFor('Readme.md') && problemFor('docs/guide.txt'),
      );
      // A save of the replicated name still goes out, to the name the stick holds.
      writeFileSync(join(c.path, 'README.md'), 'upper, edited\n');
      await waitUntil(
        'the edit of README.md on the stick',
        () => readFileSync(join(stickDir, 'README.md'), 'utf8') === 'upper, edited\n',
      );
      writeFileSync(join(c.path, 'Readme.md'), 'mixed, edited\n');
      // Another save of the replicated name after it: once that is on the stick, the daemon has
      // handled the clashing save before it (each problem is logged once, not again).
      writeFileSync(join(c.path, 'README.md'), 'upper, edited twice\n');
      await waitUntil(
        'the second edit of README.md on the stick',
        () => readFileSync(join(stickDir, 'README.md'), 'utf8') === 'upper, edited twice\n',
      );
    } finally {
      await stopWatch(w);
    }
    assert.deepEqual(
      readdirSync(stickDir).filter((n) => n.toLowerCase() === 'readme.md'),
      ['README.md'],
    );
    assert.equal(readFileSync(join(stickDir, 'README.md'), 'utf8'), 'upper, edited twice\n');
    assert.equal(readFileSync(join(stickDir, 'docs', 'Guide.txt'), 'utf8'), 'guide\n');
    assert.equal(readFileSync(join(c.path, 'README.md'), 'utf8'), 'upper, edited twice\n');
    assert.equal(readFileSync(join(c.path, 'Readme.md'), 'utf8'), 'mixed, edited\n');
    assert.equal(readFileSync(join(c.path, 'docs', 'guide.txt'), 'utf8'), 'other guide\n');
    const conflictCopies = [...readTree(c.path).keys(), ...readTree(stickDir).keys()].filter((p) =>
      p.includes('.conflict-'),
    );
    assert.deepEqual(conflictCopies, [], 'no conflict copy may appear');
  });
}

/** `README` and `readme` in the case: a case-clash problem, nothing overwritten, stable. */
export async function caseClashScenario(stick: StickInfo): Promise<void> {
  await withStickCase(stick, 'clash', async (c, stickDir) => {
    writeTree(c.path, { README: 'upper case\n', readme: 'lower case, longer\n', 'other.txt': 'fine\n' });
    const report = mirrorReport(await sync(c), 'stick');
    const clashes = report.problems.filter((p) => p.code === 'case-clash');
    assert.equal(clashes.length, 1, `one case-clash problem expected: ${JSON.stringify(report.problems)}`);
    assert.match(clashes[0]!.path, /^(README|readme)$/);
    const stored = readdirSync(stickDir).filter((n) => n.toLowerCase() === 'readme');
    assert.equal(stored.length, 1);
    const name = stored[0]!;
    assert.notEqual(name, clashes[0]!.path, 'the stick holds the one that is not the problem');
    const expected = name === 'README' ? 'upper case\n' : 'lower case, longer\n';
    assert.equal(readFileSync(join(stickDir, name), 'utf8'), expected, 'the stored one was overwritten');
    assert.equal(readFileSync(join(c.path, 'README'), 'utf8'), 'upper case\n');
    assert.equal(readFileSync(join(c.path, 'readme'), 'utf8'), 'lower case, longer\n');
    assert.equal(readFileSync(join(stickDir, 'other.txt'), 'utf8'), 'fine\n');

    // Again: the same problem, nothing flips, nothing comes back into the case.
    const again = mirrorReport(await sync(c), 'stick');
    assert.deepEqual(problemsOf(again), problemsOf(report));
    assert.equal(readFileSync(join(stickDir, name), 'utf8'), expected);
    assert.deepEqual(
      readdirSync(c.path)
        .filter((n) => n.toLowerCase() === 'readme')
        .sort(),
      ['README', 'readme'],
    );
  });
}

/** A symbolic link in the case: a symlink-unsupported problem; the case keeps its link. */
export async function symlinkScenario(stick: StickInfo): Promise<void> {
  await withStickCase(stick, 'links', async (c, stickDir) => {
    writeTree(c.path, { 'target.txt': 'target\n', link: { symlink: 'target.txt' } });
    const report = mirrorReport(await sync(c), 'stick');
    assert.deepEqual(problemsOf(report), [['link', 'symlink-unsupported']]);
    assert.deepEqual(readdirSync(stickDir).sort(), ['.satchel-mirror', 'target.txt']);
    const again = mirrorReport(await sync(c), 'stick');
    assert.deepEqual(problemsOf(again), [['link', 'symlink-unsupported']]);
    assert.equal(readTree(c.path).get('link')?.kind, 'symlink', 'the case lost its link');
  });
}

/**
 * Files with mtimes at odd seconds and odd milliseconds: after one sync, a second sync moves
 * nothing, and neither the stick's nor the case's files are rewritten (mtimes and inodes kept).
 */
export async function repeatSyncScenario(stick: StickInfo): Promise<void> {
  await withStickCase(stick, 'repeat', async (c, stickDir) => {
    const base = Date.UTC(2022, 5, 7, 8, 9, 11, 0);
    writeTree(c.path, {
      'odd-second.txt': { content: 'odd\n', mtime: base },
      'odd-ms.txt': { content: 'odd ms\n', mtime: base + 1_337 },
      'even.txt': { content: 'even\n', mtime: base + 1_000 },
      'now.txt': 'written now\n',
      'sub/deeper/file.txt': { content: 'deep\n', mtime: base + 59_999 },
      'sub/big.bin': Buffer.alloc(300_000, 3),
    });
    const first = mirrorReport(await sync(c), 'stick');
    assert.ok(first.out >= 6, JSON.stringify(first));
    assertStickMatches(c, stick);
    const stickBefore = readTree(stickDir);
    const caseBefore = readTree(c.path);
    await assertQuietSync(c);
    await assertQuietSync(c);
    assert.deepEqual(readTree(stickDir), stickBefore, 'a repeated sync rewrote files on the stick');
    assert.deepEqual(readTree(c.path), caseBefore, 'a repeated sync rewrote files in the case');

    // An edit within the same granularity step as the old mtime, with another length.
    writeTree(c.path, { 'odd-second.txt': { content: 'odd, edited\n', mtime: base + 1 } });
    assert.equal(mirrorReport(await sync(c), 'stick').out, 1);
    assert.equal(readFileSync(join(stickDir, 'odd-second.txt'), 'utf8'), 'odd, edited\n');
    await assertQuietSync(c);
  });
}

/** Renames `from` to `to` (names that differ in letter case) through another name, as any driver takes it. */
function renameCaseOnly(from: string, to: string): void {
  renameSync(from, `${to}.renaming`);
  renameSync(`${to}.renaming`, to);
}

/** Every path under `dir`, spelled as stored, sorted (the marker left out). */
function spellings(dir: string): string[] {
  return (readdirSync(dir, { recursive: true }) as string[]).filter((p) => p !== '.satchel-mirror').sort();
}

/**
 * A rename that only changes letter case (`readme.md` → `README.md`, a folder too) crosses the
 * stick both ways: the stick's names follow the case's, and a rename made on the stick reaches
 * the case; then both stay quiet.
 */
export async function caseOnlyRenameScenario(stick: StickInfo): Promise<void> {
  await withStickCase(stick, 'respell', async (c, stickDir) => {
    writeTree(c.path, { 'readme.md': 'read me\n', 'docs/a.txt': 'a\n', 'docs/sub/b.txt': 'b\n' });
    await sync(c);
    renameCaseOnly(join(c.path, 'readme.md'), join(c.path, 'README.md'));
    renameCaseOnly(join(c.path, 'docs'), join(c.path, 'Docs'));
    renameCaseOnly(join(c.path, 'Docs', 'a.txt'), join(c.path, 'Docs', 'A.txt'));
    const out = mirrorReport(await sync(c), 'stick');
    assert.deepEqual(out.problems, []);
    const expected = ['Docs', 'Docs/A.txt', 'Docs/sub', 'Docs/sub/b.txt', 'README.md'];
    assert.deepEqual(spellings(stickDir), expected, 'the stick kept the old spelling');
    assertStickMatches(c, stick);
    await assertQuietSync(c);

    // Renamed on the stick (at home, on another computer): the case follows.
    renameCaseOnly(join(stickDir, 'README.md'), join(stickDir, 'ReadMe.md'));
    renameCaseOnly(join(stickDir, 'Docs', 'sub'), join(stickDir, 'Docs', 'SUB'));
    const back = mirrorReport(await sync(c), 'stick');
    assert.deepEqual(back.problems, []);
    const renamed = ['Docs', 'Docs/A.txt', 'Docs/SUB', 'Docs/SUB/b.txt', 'ReadMe.md'];
    assert.deepEqual(
      spellings(c.path).filter((p) => !p.startsWith('.satchel')),
      renamed,
    );
    assert.deepEqual(spellings(stickDir), renamed);
    assert.equal(readFileSync(join(c.path, 'ReadMe.md'), 'utf8'), 'read me\n');
    await assertQuietSync(c);
  });
}

/**
 * Declares a test suite on ONE mounted image of `kind` (mounting can be slow): every scenario
 * above in sequence, then `extra` tests, then a last test that unmounts and requires fsck to
 * find the image clean.
 */
export function describeStick<M extends MountedImage>(
  name: string,
  kind: ImageKind<M>,
  granularityMs: number,
  extra: (stick: () => StickInfo) => void = () => undefined,
): void {
  describe(name, { timeout: 600_000 }, () => {
    const dir = makeTempDir(`${kind.label}-suite`);
    const image = `${dir}/stick.img`;
    let mount: M | undefined;
    let info: StickInfo | undefined;
    const stick = (): StickInfo => info ?? assert.fail('the image is not mounted');

    before(async () => {
      kind.create(image);
      mount = await kind.mount(image, `${dir}/mnt`, dir);
      info = { mnt: mount.mnt, granularityMs };
    });
    after(async () => {
      await mount?.stop();
      removeTempDir(dir);
    });

    const seconds = granularityMs / 1000;
    test(`the probe finds ${seconds} s mtimes, no case sensitivity, no links`, () => probeScenario(stick()));
    test('names FAT cannot hold are stored encoded and come back exactly', () => namesScenario(stick()));
    test('README beside readme is a case-clash problem; nothing is overwritten', () =>
      caseClashScenario(stick()));
    test('under watch, Readme.md saved beside README.md is a case-clash problem; nothing flips', () =>
      watchCaseClashScenario(stick()));
    test('a symbolic link is a symlink-unsupported problem; the case keeps it', () =>
      symlinkScenario(stick()));
    test('repeated syncs copy nothing again and rewrite nothing', () => repeatSyncScenario(stick()));
    test('a rename that only changes letter case crosses the stick both ways', () =>
      caseOnlyRenameScenario(stick()));
    extra(stick);
    test('the image is fsck-clean after unmounting', async () => {
      await mount!.stop();
      const fsck = fsckImage(kind, image);
      assert.ok(fsck.clean, fsck.output);
    });
  });
}
