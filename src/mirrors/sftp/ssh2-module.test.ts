/**
 * Tests of the pooled `randomFillSync` ssh2 is loaded with: it fills exactly the bytes asked
 * for, never hands out the same pool bytes twice, refills from the real function, passes every
 * other call through (with the real function's errors), and Node's crypto module keeps its own
 * function.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto, { randomFillSync } from 'node:crypto';
import { pooledRandomFill, ssh2 } from './ssh2-module.js';

/** A real randomFillSync that counts its calls. */
function counting(): { fill: typeof randomFillSync; calls: () => number } {
  let calls = 0;
  const fill = (<T extends NodeJS.ArrayBufferView>(b: T, offset?: number, size?: number): T => {
    calls++;
    return size === undefined ? randomFillSync(b, offset) : randomFillSync(b, offset, size);
  }) as typeof randomFillSync;
  return { fill, calls: () => calls };
}

describe('pooledRandomFill', () => {
  it('fills exactly the range asked for and returns the buffer', () => {
    const fill = pooledRandomFill(randomFillSync);
    for (let trial = 0; trial < 50; trial++) {
      const b = Buffer.alloc(64);
      assert.equal(fill(b, 10, 16), b);
      assert.ok(b.subarray(0, 10).every((x) => x === 0));
      assert.ok(b.subarray(26).every((x) => x === 0));
      // 16 random bytes are all zero with probability 2^-128.
      assert.ok(b.subarray(10, 26).some((x) => x !== 0));
    }
    const whole = new Uint8Array(32);
    fill(whole);
    assert.ok(whole.some((x) => x !== 0));
    const tail = Buffer.alloc(32);
    fill(tail, 24);
    assert.ok(tail.subarray(0, 24).every((x) => x === 0));
  });

  it('never hands out the same bytes twice and refills in bulk', () => {
    const real = counting();
    const fill = pooledRandomFill(real.fill);
    const seen = new Set<string>();
    const requests = 20_000; // 320,000 bytes: several refills of the 64 KiB pool
    for (let i = 0; i < requests; i++) {
      const b = Buffer.alloc(16);
      fill(b, 0, 16);
      seen.add(b.toString('hex'));
    }
    assert.equal(seen.size, requests);
    assert.equal(real.calls(), Math.ceil((requests * 16) / (64 * 1024)));
  });

  it('passes large requests, other views and bad arguments to the real function', () => {
    const real = counting();
    const fill = pooledRandomFill(real.fill);
    fill(Buffer.alloc(4096));
    fill(new Uint32Array(4));
    fill(new DataView(new ArrayBuffer(8)));
    assert.equal(real.calls(), 3);
    const expected = (f: () => unknown): string => {
      try {
        f();
      } catch (e) {
        return (e as NodeJS.ErrnoException).code ?? String(e);
      }
      return 'no error';
    };
    for (const [offset, size] of [
      [-1, 4],
      [4, 100],
      [1.5, 2],
      [0, -3],
    ] as const) {
      const b = Buffer.alloc(16);
      const code = expected(() => randomFillSync(b, offset, size));
      if (offset < 0 || offset + size > b.length) assert.notEqual(code, 'no error');
      assert.equal(
        expected(() => fill(b, offset, size)),
        code,
      );
    }
  });

  it('leaves Node crypto with its own function once ssh2 is loaded', () => {
    assert.equal(typeof ssh2.Client, 'function');
    assert.equal(crypto.randomFillSync, randomFillSync);
    assert.equal(crypto.randomFillSync.name, 'randomFillSync');
    assert.ok(!String(crypto.randomFillSync).includes('POOL_BYTES'));
  });
});
