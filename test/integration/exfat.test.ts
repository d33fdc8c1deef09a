/**
 * @module test/integration/exfat
 * A mirror on a real exFAT file system (an image on a loop device, mounted through exfat-fuse),
 * driven through the real CLI: capability probe, name encoding round trip, case clash, links,
 * repeated syncs, and the stick pulled out (FUSE driver killed) before and during a sync.
 * The image must be fsck-clean after unmounting.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { runSatchel, spawnSatchel, type SyncReport } from '../helpers/cli.js';
import { createCase, sync } from '../helpers/case.js';
import { EXFAT, createExfatImage, mountExfat, type ExfatMount } from '../helpers/exfat.js';
import { withImage } from '../helpers/image.js';
import { waitFor } from '../helpers/process.js';
import { assertStickMatches, describeStick } from '../helpers/stick.js';
import { makeTempDir, removeTempDir, withTempDir } from '../helpers/temp.js';
import { readTree, writeTree } from '../helpers/tree.js';

/** exfat-fuse stores whole seconds (exFAT itself could hold 10 ms). */
const EXFAT_GRANULARITY_MS = 1000;

describeStick('mirror on a real exFAT stick', EXFAT, EXFAT_GRANULARITY_MS);

/** How many entries are under `dir` (0 while it does not exist or cannot be read). */
function countFiles(dir: string): number {
  try {
    return readdirSync(dir, { recursive: true }).length;
  } catch {
    return 0;
  }
}

describe('exFAT stick pulled out', () => {
  test('yanked before a sync: the mirror is not synced and the case is untouched; replugged, it catches up', async () => {
    await withImage(EXFAT, async (m) => {
      await withTempDir('yank', async (root) => {
        const c = await createCase(root, { stick: join(m.mnt, 'work') });
        writeTree(c.path, { 'one.txt': 'one\n', 'dir/two.txt': 'two\n' });
        await sync(c);
        const stickInfo = { mnt: m.mnt, granularityMs: EXFAT_GRANULARITY_MS };
        assertStickMatches(c, stickInfo);

        await m.yank();
        writeTree(c.path, { 'three.txt': 'three\n' });
        const caseBefore = readTree(c.path);
        const r = await runSatchel(['-C', c.path, 'sync', '--json']);
        const state = r.json<SyncReport>().mirrors[0]?.state;
        assert.ok(state === 'absent' || state === 'failed', `state ${state} for a yanked stick: ${r.stdout}`);
        assert.equal(r.code, state === 'failed' ? 1 : 0, r.stderr);
        assert.deepEqual(readTree(c.path), caseBefore, 'a yanked stick changed the case');

        await m.stop();
        const again = await mountExfat(m.image, m.mnt);
        try {
          await sync(c);
          assertStickMatches(c, stickInfo);
        } finally {
          await again.stop();
        }
      });
    });
  });

  test('yanked during a sync: nothing in the case is lost; replugged, the next sync completes', async () => {
    const dir = makeTempDir('yank-during');
    const image = join(dir, 'stick.img');
    const mnt = join(dir, 'mnt');
    createExfatImage(image, 64);
    let m: ExfatMount | undefined = await mountExfat(image, mnt);
    try {
      const root = join(dir, 'cases');
      const c = await createCase(root, { stick: join(mnt, 'work') });
      const spec: Record<string, string> = {};
      for (let i = 0; i < 400; i++) spec[`d${i % 20}/f${i}.txt`] = `file ${i} `.repeat(1 + (i % 50));
      writeTree(c.path, spec);
      const caseBefore = readTree(c.path);
      const stickDir = join(mnt, 'work');
      const running = spawnSatchel(['-C', c.path, 'sync', '--json']);
      // Pull it once the copy is under way: some files are on the stick, most are not.
      await waitFor('the sync to start writing to the stick', () => countFiles(stickDir) >= 20, {
        timeoutMs: 30_000,
        intervalMs: 5,
        abortIf: () => (running.hasExited() ? 'sync finished first' : undefined),
      });
      await m.yank();
      const r = await running.done;
      assert.notEqual(
        r.json<SyncReport>().mirrors[0]?.state,
        'synced',
        `a yanked sync reported success: ${r.stdout}`,
      );
      assert.notEqual(r.signal, 'SIGKILL', 'satchel hung on the dead stick');
      assert.deepEqual(readTree(c.path), caseBefore, 'the case changed when the stick was pulled');
      await m.stop();
      m = await mountExfat(image, mnt);
      await sync(c);
      assertStickMatches(c, { mnt, granularityMs: EXFAT_GRANULARITY_MS });
      // No fsck verdict here: the driver was killed mid-write, as a pulled stick would be.
    } finally {
      await m?.stop();
      removeTempDir(dir);
    }
  });
});
