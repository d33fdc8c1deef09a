/**
 * @module test/integration/fat32
 * A mirror on a real FAT32 file system served by the Linux kernel's `vfat` driver (through
 * guestmount, TCG): the stick scenarios shared with exFAT, plus FAT32's 4 GiB - 1 file size
 * limit. guestmount takes about 15 s to start, so the whole file uses ONE mount and runs the
 * scenarios in sequence; the image must be fsck-clean after unmounting.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mirrorReport } from '../helpers/cli.js';
import { assertQuietSync, sync } from '../helpers/case.js';
import { FAT32, createFat32Image, mountFat32, type Fat32Mount } from '../helpers/fat32.js';
import { fsckImage } from '../helpers/image.js';
import { runTool } from '../helpers/process.js';
import {
  assertStickMatches,
  caseClashScenario,
  namesScenario,
  probeScenario,
  repeatSyncScenario,
  symlinkScenario,
  withStickCase,
  type StickInfo,
} from '../helpers/stick.js';
import { makeTempDir, removeTempDir } from '../helpers/temp.js';
import { satchelTempFiles, writeTree } from '../helpers/tree.js';

/** FAT stores modification times in 2 s steps. */
const FAT_GRANULARITY_MS = 2000;
/** One byte over FAT32's largest file (4 GiB - 1). */
const OVER_FAT32_LIMIT = 4 * 1024 ** 3 + 1;

describe('mirror on a real FAT32 stick (kernel vfat through guestmount)', { timeout: 600_000 }, () => {
  const dir = makeTempDir('fat32-suite');
  const image = join(dir, 'stick.img');
  let mount: Fat32Mount | undefined;
  let stick: StickInfo;

  before(async () => {
    createFat32Image(image, 128);
    mount = await mountFat32(image, join(dir, 'mnt'), dir);
    stick = { mnt: mount.mnt, granularityMs: FAT_GRANULARITY_MS };
  });
  after(async () => {
    await mount?.stop();
    removeTempDir(dir);
  });

  test('the probe finds 2 s mtimes, no case sensitivity, no links', () => probeScenario(stick));
  test('names FAT cannot hold are stored encoded and come back exactly', () => namesScenario(stick));
  test('README beside readme is a case-clash problem; nothing is overwritten', () =>
    caseClashScenario(stick));
  test('a symbolic link is a symlink-unsupported problem; the case keeps it', () => symlinkScenario(stick));
  test('repeated syncs copy nothing again and rewrite nothing', () => repeatSyncScenario(stick));

  test('a file over 4 GiB - 1 is a too-large problem; the rest syncs and nothing is copied', async () => {
    await withStickCase(stick, 'large', async (c, stickDir) => {
      writeTree(c.path, { 'small.txt': 'small\n' });
      // Sparse: 4 GiB + 1 of apparent size, no data blocks, so nothing big is written here.
      runTool('truncate', ['-s', String(OVER_FAT32_LIMIT), join(c.path, 'huge.img')]);
      const started = Date.now();
      const report = mirrorReport(await sync(c), 'stick');
      const took = Date.now() - started;
      assert.deepEqual(
        report.problems.map((p) => [p.path, p.code]),
        [['huge.img', 'too-large']],
      );
      assert.ok(existsSync(join(stickDir, 'small.txt')));
      assert.equal(existsSync(join(stickDir, 'huge.img')), false);
      assert.deepEqual(satchelTempFiles(stickDir), [], 'a partial copy of the large file was left');
      assert.equal(statSync(join(c.path, 'huge.img')).size, OVER_FAT32_LIMIT, 'the case file changed');
      assert.ok(took < 120_000, `syncing took ${took} ms: was the large file copied?`);
      rmSync(join(c.path, 'huge.img'));
      await assertQuietSync(c);
      assertStickMatches(c, stick);
    });
  });

  test('the image is fsck-clean after unmounting', async () => {
    const names = readdirSync(mount!.mnt).sort();
    assert.deepEqual(names, ['clash', 'large', 'links', 'names', 'probe', 'repeat']);
    await mount!.stop();
    const fsck = fsckImage(FAT32, image);
    assert.ok(fsck.clean, fsck.output);
  });
});
