import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { advanceNonce, BOX_BYTES, CHUNK_BYTES, openChunks, sealChunks, sealedLength } from './chunks.js';
import { loadSecretboxBinding, SEAL_TO_FIELDS, type SecretboxBinding } from './native-secretbox.js';
import { open, seal } from './secretbox.js';
import { makeTempDir, removeTempDir } from '../../../test/helpers/temp.js';

const SIZES = [
  0,
  1,
  2,
  15,
  16,
  17,
  31,
  32,
  33,
  63,
  64,
  65,
  127,
  128,
  129,
  255,
  256,
  257,
  1000,
  4095,
  16383,
  16384,
  65535,
  65536,
  65537,
  3 * 65536 + 5,
];

/** The JavaScript secretbox over consecutive chunks: the reference the addon must match. */
function jsSealChunks(input: Buffer, nonce: Buffer, key: Buffer): Buffer {
  const n = Buffer.from(nonce);
  const out: Buffer[] = [];
  for (let at = 0; at < input.length; at += CHUNK_BYTES) {
    out.push(seal(input.subarray(at, at + CHUNK_BYTES), n, key));
    advanceNonce(n, 1);
  }
  return Buffer.concat(out);
}

const load = loadSecretboxBinding();

describe('native secretbox addon', () => {
  it('is built and loads on Linux (npm run build builds it)', () => {
    if (process.platform !== 'linux') return;
    assert.ok(load.ok, load.ok ? '' : load.reason);
  });

  const native = (): SecretboxBinding => {
    assert.ok(load.ok, load.ok ? '' : load.reason);
    return load.binding;
  };

  it('seals exactly as the JavaScript secretbox, and opens what it seals, at every size', () => {
    const nb = native();
    for (const size of SIZES) {
      for (let round = 0; round < 3; round++) {
        const key = randomBytes(32);
        const nonce = randomBytes(24);
        const message = randomBytes(size);
        const box = nb.seal(key, nonce, message);
        assert.deepEqual(box, seal(message, nonce, key), `seal of ${size} bytes`);
        assert.deepEqual(nb.open(key, nonce, box), message, `open of ${size} bytes`);
        assert.deepEqual(open(box, nonce, key), message, `JavaScript open of ${size} bytes`);
      }
    }
  });

  it('matches the NaCl secretbox vector', () => {
    const key = Buffer.from('1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389', 'hex');
    const nonce = Buffer.from('69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37', 'hex');
    const m = Buffer.from(
      'be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705',
      'hex',
    );
    const box = native().seal(key, nonce, m);
    assert.equal(box.subarray(0, 16).toString('hex'), 'f3ffc7703f9400e52a7dfb4b3d3305d9');
    assert.equal(box.subarray(16, 24).toString('hex'), '8e993b9f48681273');
  });

  it('chains chunks as rclone does (nonce + i, with carry), sync and on the thread pool', async () => {
    const nb = native();
    for (const size of SIZES) {
      const key = randomBytes(32);
      // Low bytes near the wrap: the carry into the next byte is exercised.
      const nonce = randomBytes(24);
      nonce[0] = 0xfe;
      nonce[1] = 0xff;
      const input = randomBytes(size);
      const expected = jsSealChunks(input, nonce, key);
      const sync = Buffer.alloc(sealedLength(size));
      nb.sealChunks(key, nonce, input, sync);
      assert.deepEqual(sync, expected, `sealChunks of ${size} bytes`);
      const pooled = Buffer.alloc(sealedLength(size));
      await nb.sealChunksAsync(key, nonce, input, pooled);
      assert.deepEqual(pooled, expected, `sealChunksAsync of ${size} bytes`);
      const viaModule = Buffer.alloc(sealedLength(size));
      await sealChunks(input, nonce, key, viaModule);
      assert.deepEqual(viaModule, expected, `chunks.sealChunks of ${size} bytes`);

      const back = Buffer.alloc(size);
      assert.equal(nb.openChunks(key, nonce, expected, back), -1);
      assert.deepEqual(back, input);
      const back2 = Buffer.alloc(size);
      assert.equal(await nb.openChunksAsync(key, nonce, expected, back2), -1);
      assert.deepEqual(back2, input);
    }
  });

  it('refuses tampered boxes and names the first bad chunk', async () => {
    const nb = native();
    const key = randomBytes(32);
    const nonce = randomBytes(24);
    for (const size of [1, 63, 64, 65, 65535, 65536, 65537]) {
      const box = nb.seal(key, nonce, randomBytes(size));
      for (const at of [0, 15, 16, box.length - 1, Math.floor(box.length / 2)]) {
        const bad = Buffer.from(box);
        bad[at]! ^= 0x01;
        assert.equal(nb.open(key, nonce, bad), undefined, `flipped byte ${at} of a ${size}-byte box`);
      }
      const otherNonce = Buffer.from(nonce);
      otherNonce[23]! ^= 0x80;
      assert.equal(nb.open(key, otherNonce, box), undefined, 'another nonce');
      assert.equal(nb.open(randomBytes(32), nonce, box), undefined, 'another key');
      assert.equal(nb.open(key, nonce, box.subarray(0, box.length - 1)), undefined, 'one byte short');
    }
    assert.equal(nb.open(key, nonce, Buffer.alloc(15)), undefined, 'shorter than a tag');

    const input = randomBytes(3 * CHUNK_BYTES + 100);
    const stored = Buffer.alloc(sealedLength(input.length));
    nb.sealChunks(key, nonce, input, stored);
    const out = Buffer.alloc(input.length);
    for (const chunk of [0, 1, 3]) {
      const bad = Buffer.from(stored);
      bad[chunk * BOX_BYTES + 20]! ^= 0x40;
      assert.equal(nb.openChunks(key, nonce, bad, out), chunk);
      assert.equal(await nb.openChunksAsync(key, nonce, bad, out), chunk);
      assert.equal(await openChunks(bad, nonce, key, out), chunk);
    }
    const swapped = Buffer.concat([
      stored.subarray(BOX_BYTES, 2 * BOX_BYTES),
      stored.subarray(0, BOX_BYTES),
      stored.subarray(2 * BOX_BYTES),
    ]);
    assert.equal(nb.openChunks(key, nonce, swapped, out), 0, 'swapped chunks');
  });

  it('checks its arguments instead of reading or writing out of bounds', () => {
    const nb = native();
    const key = randomBytes(32);
    const nonce = randomBytes(24);
    assert.throws(() => nb.seal(randomBytes(31), nonce, Buffer.alloc(1)), RangeError);
    assert.throws(() => nb.seal(key, randomBytes(23), Buffer.alloc(1)), RangeError);
    assert.throws(() => nb.seal(key, nonce, 'text' as unknown as Uint8Array), TypeError);
    assert.throws(() => nb.sealChunks(key, nonce, Buffer.alloc(100), Buffer.alloc(115)), RangeError);
    assert.throws(() => nb.openChunks(key, nonce, Buffer.alloc(65552 + 10), Buffer.alloc(65536)), RangeError);
    assert.throws(() => nb.sealChunksAsync(key, nonce, Buffer.alloc(100), Buffer.alloc(117)), RangeError);
    assert.throws(() => nb.sealFile('not-read', 0, 100, key, nonce, Buffer.alloc(115)), RangeError);
    assert.throws(() => nb.sealFile('not\0read', 0, 10, key, nonce, Buffer.alloc(26)), TypeError);
    assert.throws(() => nb.sealFileAsync('not-read', -1, 10, key, nonce, Buffer.alloc(26)), TypeError);
  });

  it('SHA-256 matches node:crypto, fed in pieces, by the file sealers, with and without the SHA extensions', async () => {
    const nb = native();
    const digestOf = (d: Buffer): string => createHash('sha256').update(d).digest('hex');
    const inputs = [...Array.from({ length: 130 }, (_, n) => n), 1000, 65_552, 3 * 65_536 + 5].map((n) =>
      randomBytes(n),
    );
    for (const d of inputs) {
      const ctx = nb.sha256Start();
      const third = Math.floor(d.length / 3);
      nb.sha256Update(ctx, d.subarray(0, third));
      nb.sha256Update(ctx, d.subarray(third, 2 * third));
      nb.sha256Update(ctx, d.subarray(2 * third));
      assert.equal(nb.sha256Digest(ctx).toString('hex'), digestOf(d), `${d.length} bytes`);
      assert.throws(() => nb.sha256Digest(ctx), TypeError, 'a finished context is refused');
    }
    assert.throws(() => nb.sha256Update(Buffer.alloc(112), Buffer.alloc(1)), TypeError);

    const dir = makeTempDir('secretbox-sha');
    try {
      const file = join(dir, 'f');
      const content = randomBytes(CHUNK_BYTES + 999);
      writeFileSync(file, content);
      const key = randomBytes(32);
      const nonce = randomBytes(24);
      for (const seal of [nb.sealFile, nb.sealFileAsync]) {
        const ctx = nb.sha256Start();
        nb.sha256Update(ctx, Buffer.from('a header'));
        const out = Buffer.alloc(sealedLength(content.length + 1));
        const got = await seal(file, 0, content.length + 1, key, nonce, out, ctx);
        assert.equal(got, content.length);
        const stored = out.subarray(0, sealedLength(got));
        assert.deepEqual(stored, jsSealChunks(content, nonce, key));
        assert.equal(
          nb.sha256Digest(ctx).toString('hex'),
          digestOf(Buffer.concat([Buffer.from('a header'), stored])),
        );
      }
    } finally {
      removeTempDir(dir);
    }

    // The plain C, as on processors without the SHA extensions.
    const bindingModule = fileURLToPath(new URL('./native-secretbox.js', import.meta.url));
    const script = `
      const { loadSecretboxBinding } = await import(${JSON.stringify(bindingModule)});
      const nb = loadSecretboxBinding().binding;
      const out = [];
      for (const n of [0, 55, 56, 63, 64, 65, 119, 120, 1000, 100000]) {
        const ctx = nb.sha256Start();
        nb.sha256Update(ctx, Buffer.alloc(n, n % 251));
        out.push(nb.sha256Digest(ctx).toString('hex'));
      }
      process.stdout.write(JSON.stringify(out));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      env: { ...process.env, SATCHEL_SECRETBOX_NO_SHA_NI: '1' },
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      JSON.parse(r.stdout),
      [0, 55, 56, 63, 64, 65, 119, 120, 1000, 100000].map((n) => digestOf(Buffer.alloc(n, n % 251))),
    );
  });

  it('seals a whole file into a new file as rclone writes it, hashed and settled, sync and on the thread pool', async () => {
    const nb = native();
    const dir = makeTempDir('secretbox-seal-to');
    try {
      const key = randomBytes(32);
      const nonce = randomBytes(24);
      const mtimeMs = Date.UTC(2024, 4, 6, 7, 8, 9, 123);
      const sizes = [0, 1, 65_535, 65_536, 65_537, 16 * 65_536, 16 * 65_536 + 1, 33 * 65_536 + 7];
      let n = 0;
      for (const size of sizes) {
        const content = randomBytes(size);
        const src = join(dir, `src-${size}`);
        writeFileSync(src, content);
        for (const sealTo of [nb.sealFileTo, nb.sealFileToAsync]) {
          const temp = join(dir, `temp-${n++}`);
          const out = new Float64Array(SEAL_TO_FIELDS);
          const digest = Buffer.alloc(32);
          await sealTo(src, temp, key, nonce, size, 0o640, mtimeMs, n % 2 === 0, out, digest);
          const stored = readFileSync(temp);
          const expected = Buffer.concat([
            Buffer.from('RCLONE\0\0', 'latin1'),
            nonce,
            jsSealChunks(content, nonce, key),
          ]);
          assert.ok(stored.equals(expected), `${size} bytes: rclone's header and boxes`);
          assert.equal(digest.toString('hex'), createHash('sha256').update(stored).digest('hex'));
          const st = statSync(temp);
          assert.deepEqual(
            [...out],
            [size, size, statSync(src).mtimeMs, 0, stored.length, st.mtimeMs, st.mode, st.ino],
            `${size} bytes: what was read and the copy's fstat`,
          );
          assert.equal(st.mode & 0o7777, 0o640);
          assert.equal(st.mtimeMs, mtimeMs);
        }
      }

      const src = join(dir, 'grown');
      writeFileSync(src, randomBytes(3 * 65_536));
      const out = new Float64Array(SEAL_TO_FIELDS);
      const digest = Buffer.alloc(32);
      nb.sealFileTo(src, join(dir, 'grown-copy'), key, nonce, 65_536, -1, mtimeMs, false, out, digest);
      assert.equal(out[0], 65_537, 'a file longer than planned: one byte more is read, which tells');
      assert.equal(out[1], 3 * 65_536);

      // Never replaces a file; a failure names the file and leaves nothing behind.
      const taken = join(dir, 'taken');
      writeFileSync(taken, 'keep me');
      for (const sealTo of [nb.sealFileTo, nb.sealFileToAsync]) {
        await assert.rejects(
          async () => sealTo(src, taken, key, nonce, 3 * 65_536, -1, mtimeMs, false, out, digest),
          (e: NodeJS.ErrnoException) => e.code === 'EEXIST' && e.path === taken,
        );
        assert.equal(readFileSync(taken, 'utf8'), 'keep me');
        const missing = join(dir, 'missing');
        const temp = join(dir, 'never');
        await assert.rejects(
          async () => sealTo(missing, temp, key, nonce, 1, -1, mtimeMs, false, out, digest),
          (e: NodeJS.ErrnoException) => e.code === 'ENOENT' && e.path === missing,
        );
        // A named pipe is refused at once: opening it for reading would wait for a writer.
        const fifo = join(dir, 'fifo');
        if (!existsSync(fifo)) spawnSync('mkfifo', [fifo]);
        await assert.rejects(
          async () => sealTo(fifo, temp, key, nonce, 1, -1, mtimeMs, false, out, digest),
          (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && e.path === fifo,
        );
        // The batch sealers (streamed encryption) refuse it alike.
        for (const sealBatch of [nb.sealFile, nb.sealFileAsync])
          await assert.rejects(
            async () => sealBatch(fifo, 0, 1, key, nonce, Buffer.alloc(sealedLength(1))),
            (e: NodeJS.ErrnoException) => e.code === 'EINVAL' && e.path === fifo,
          );
        mkdirSync(join(dir, 'folder'), { recursive: true });
        await assert.rejects(
          async () => sealTo(join(dir, 'folder'), temp, key, nonce, 1, -1, mtimeMs, false, out, digest),
          (e: NodeJS.ErrnoException) => e.code === 'EINVAL',
        );
        assert.equal(existsSync(temp), false);
      }
      assert.throws(
        () =>
          nb.sealFileTo(src, join(dir, 'x'), key, nonce, 1, -1, mtimeMs, false, new Float64Array(2), digest),
        TypeError,
        'an outcome array too short is refused',
      );
      // An empty digest: the same copy, not hashed.
      const unhashed = join(dir, 'unhashed');
      nb.sealFileTo(src, unhashed, key, nonce, 3 * 65_536, -1, mtimeMs, false, out, Buffer.alloc(0));
      nb.sealFileTo(src, join(dir, 'hashed'), key, nonce, 3 * 65_536, -1, mtimeMs, false, out, digest);
      assert.ok(readFileSync(unhashed).equals(readFileSync(join(dir, 'hashed'))));
      assert.equal(out[0], 3 * 65_536);
      assert.throws(
        () => nb.sealFileTo(`${src}\0x`, join(dir, 'x'), key, nonce, 1, -1, mtimeMs, false, out, digest),
        /must not contain a NUL byte/,
      );
    } finally {
      removeTempDir(dir);
    }
  });

  it('advances nonces as repeated increments would', () => {
    for (const count of [0, 1, 255, 256, 257, 65535, 70000, 1 << 24]) {
      const start = randomBytes(24);
      start[0] = 0xf0;
      const viaAdd = Buffer.from(start);
      advanceNonce(viaAdd, count);
      // Reference: the nonce as a 192-bit little-endian number, plus count.
      const asBig = (b: Buffer): bigint => BigInt('0x' + Buffer.from(b).reverse().toString('hex'));
      const expected = (asBig(start) + BigInt(count)) % (1n << 192n);
      assert.equal(asBig(viaAdd), expected, `+${count}`);
    }
  });

  /** Seals and reopens `input` in a child process with `env` (another implementation or lane count). */
  function inChild(
    env: NodeJS.ProcessEnv,
    key: Buffer,
    nonce: Buffer,
    input: Buffer,
  ): { impl: string; lanes: number; sealed: Buffer; bad: number; same: boolean } {
    const chunksModule = fileURLToPath(new URL('./chunks.js', import.meta.url));
    const bindingModule = fileURLToPath(new URL('./native-secretbox.js', import.meta.url));
    const script = `
      const { sealChunks, openChunks, sealedLength, secretboxImplementation } = await import(${JSON.stringify(chunksModule)});
      const { loadSecretboxBinding } = await import(${JSON.stringify(bindingModule)});
      let text = '';
      for await (const piece of process.stdin) text += piece;
      const [key, nonce, input] = JSON.parse(text).map((h) => Buffer.from(h, 'hex'));
      const out = Buffer.alloc(sealedLength(input.length));
      await sealChunks(input, nonce, key, out);
      const back = Buffer.alloc(input.length);
      const bad = await openChunks(out, nonce, key, back);
      const load = loadSecretboxBinding();
      process.stdout.write(JSON.stringify({
        impl: secretboxImplementation, lanes: load.ok ? load.binding.lanes : 0,
        sealed: out.toString('hex'), bad, same: back.equals(input),
      }));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      input: JSON.stringify([key, nonce, input].map((b) => b.toString('hex'))),
      env: { ...process.env, ...env },
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    assert.equal(r.status, 0, r.stderr);
    const got = JSON.parse(r.stdout) as {
      impl: string;
      lanes: number;
      sealed: string;
      bad: number;
      same: boolean;
    };
    return { ...got, sealed: Buffer.from(got.sealed, 'hex') };
  }

  it('the JavaScript fallback (no addon) writes what the addon reads, and reads what it writes', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(24);
    const input = randomBytes(2 * CHUNK_BYTES + 777);
    const got = inChild({ SATCHEL_NO_NATIVE_SECRETBOX: '1' }, key, nonce, input);
    assert.equal(got.impl, 'javascript');
    assert.equal(got.bad, -1);
    assert.ok(got.same);
    const expected = Buffer.alloc(sealedLength(input.length));
    native().sealChunks(key, nonce, input, expected);
    assert.deepEqual(got.sealed, expected);
  });

  it('every vector width this processor runs gives the same bytes (4, 8 and 16 lanes)', () => {
    const key = randomBytes(32);
    const nonce = randomBytes(24);
    // Sizes that end in every loop of the key stream: wide blocks, 4-block groups, single blocks.
    for (const size of [CHUNK_BYTES + 1024 + 256 + 64 + 7, 2 * CHUNK_BYTES - 33]) {
      const input = randomBytes(size);
      const expected = jsSealChunks(input, nonce, key);
      const seen = new Set<number>();
      for (const lanes of ['4', '8', '16']) {
        const got = inChild({ SATCHEL_SECRETBOX_MAX_LANES: lanes }, key, nonce, input);
        assert.equal(got.impl, 'native');
        assert.ok(got.lanes <= Number(lanes));
        seen.add(got.lanes);
        assert.deepEqual(got.sealed, expected, `${got.lanes} lanes, ${size} bytes`);
        assert.equal(got.bad, -1);
        assert.ok(got.same);
      }
      assert.ok(seen.has(4), 'the 4-lane code ran');
    }
  });
});
