/**
 * Tests of the batching of scan hashes: batches close at their file or byte limit or when the
 * caller waits, every caller gets its own file's result, and a failed batch fails its callers.
 * The hashing itself is the addon's (tested in fastfs-binding.test.ts); here it is a recorder.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { FileHash } from './fastfs-binding.js';
import { hashInBatches } from './hash-batches.js';

const hashOf = (file: string): FileHash => ({
  hash: `h(${file})`,
  size: 1,
  mtimeMs: 2,
  ino: 3,
  moved: false,
});

describe('hashInBatches', () => {
  it('sends full batches at once and the rest when the caller waits', async () => {
    const batches: string[][] = [];
    const hash = hashInBatches(async (files) => {
      batches.push([...files]);
      return files.map(hashOf);
    });
    const files = Array.from({ length: 150 }, (_, i) => `f${i}`);
    const results = await Promise.all(files.map((f) => hash(f, 100)));
    assert.deepEqual(
      batches.map((b) => b.length),
      [64, 64, 22],
    );
    assert.deepEqual(batches.flat(), files);
    assert.deepEqual(results, files.map(hashOf));
  });

  it('closes a batch at 8 MiB, and passes errno results through', async () => {
    const batches: string[][] = [];
    const hash = hashInBatches(async (files) => {
      batches.push([...files]);
      return files.map((f) => (f === 'gone' ? 2 : hashOf(f)));
    });
    const results = await Promise.all([hash('big', 5 << 20), hash('bigger', 4 << 20), hash('gone', 0)]);
    assert.deepEqual(batches, [['big', 'bigger'], ['gone']]);
    assert.deepEqual(results, [hashOf('big'), hashOf('bigger'), 2]);
  });

  it('fails every caller of a batch that failed, and goes on with the next', async () => {
    let calls = 0;
    const hash = hashInBatches(async (files) => {
      calls++;
      if (calls === 1) throw new Error('thread pool gone');
      return files.map(hashOf);
    });
    const first = await Promise.allSettled([hash('a', 1), hash('b', 1)]);
    assert.deepEqual(
      first.map((r) => r.status),
      ['rejected', 'rejected'],
    );
    assert.deepEqual(await hash('c', 1), hashOf('c'));
  });
});
