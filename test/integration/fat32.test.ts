/**
 * @module test/integration/fat32
 * A mirror on a real FAT32 file system served by the Linux kernel's `vfat` driver (through
 * guestmount, TCG): the stick scenarios shared with exFAT, plus FAT32's 4 GiB - 1 file size
 * limit. guestmount takes about 15 s to start, so the whole file uses ONE mount and runs the
 * scenarios in sequence; the image must be fsck-clean after unmounting.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { mirrorReport } from '../helpers/cli.js';
import { assertQuietSync, sync } from '../helpers/case.js';
import { FAT32 } from '../helpers/fat32.js';
import { runTool } from '../helpers/process.js';
import { assertStickMatches, describeStick, withStickCase } from '../helpers/stick.js';
import { satchelTempFiles, writeTree } from '../helpers/tree.js';

/** One byte over FAT32's largest file (4 GiB - 1). */
const OVER_FAT32_LIMIT = 4 * 1024 ** 3 + 1;

// FAT stores modification times in 2 s steps.
describeStick('mirror on a real FAT32 stick (kernel vfat through guestmount)', FAT32, 2000, (stick) => {
  test('a file over 4 GiB - 1 is a too-large problem; the rest syncs and nothing is copied', async () => {
    await withStickCase(stick(), 'large', async (c, stickDir) => {
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
      assertStickMatches(c, stick());
    });
  });
});
