import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cryptRemote, rclone, type CryptRemote } from '../../../test/helpers/rclone.js';
import { makeTempDir, removeTempDir } from '../../../test/helpers/temp.js';
import {
  base32hexDecode,
  base32hexEncode,
  CHUNK_BYTES,
  CryptError,
  decryptedSize,
  decryptStream,
  deriveKeys,
  encryptedNameLength,
  encryptedSize,
  encryptFile,
  encryptStream,
  maxPlainNameBytes,
  NameCipher,
  passphraseCheck,
  checkPassphrase,
  type CryptKeys,
} from './crypt.js';
import { open, poly1305, seal } from './secretbox.js';

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of stream) out.push(c);
  return Buffer.concat(out);
}

const encrypt = (plain: Buffer, keys: CryptKeys): Promise<Buffer> => collect(encryptStream([plain], keys));
const decrypt = (stored: Buffer, keys: CryptKeys, size?: number): Promise<Buffer> =>
  collect(decryptStream([stored], keys, 'f.bin', size));

describe('crypt format: primitives', () => {
  it('base32hex matches RFC 4648 (lower case, no padding)', () => {
    const vectors: [string, string][] = [
      ['', ''],
      ['f', 'co'],
      ['fo', 'cpng'],
      ['foo', 'cpnmu'],
      ['foob', 'cpnmuog'],
      ['fooba', 'cpnmuoj1'],
      ['foobar', 'cpnmuoj1e8'],
    ];
    for (const [plain, enc] of vectors) {
      assert.equal(base32hexEncode(Buffer.from(plain)), enc);
      assert.equal(base32hexDecode(enc)?.toString(), plain);
      assert.equal(base32hexDecode(enc.toUpperCase())?.toString(), plain);
    }
    assert.equal(base32hexDecode('w0'), undefined, 'w is not in the alphabet');
    assert.equal(base32hexDecode('c'), undefined, 'no byte encodes to one character');
  });

  it('Poly1305 matches RFC 8439 §2.5.2', () => {
    const key = Buffer.from('85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b', 'hex');
    const tag = poly1305(key, Buffer.from('Cryptographic Forum Research Group'));
    assert.equal(Buffer.from(tag).toString('hex'), 'a8061dc1305136c6c22b8baf0c0127a9');
  });

  it('secretbox matches the NaCl test vector (box7/secretbox of the NaCl distribution)', () => {
    // From NaCl's tests/secretbox.c (firstkey, nonce, m) and its expected tag.
    const key = Buffer.from('1b27556473e985d462cd51197a9a46c76009549eac6474f206c4ee0844f68389', 'hex');
    const nonce = Buffer.from('69696ee955b62b73cd62bda875fc73d68219e0036b7a0b37', 'hex');
    const m = Buffer.from(
      'be075fc53c81f2d5cf141316ebeb0c7b5228c52a4c62cbd44b66849b64244ffce5ecbaaf33bd751a1ac728d45e6c61296cdc3c01233561f41db66cce314adb310e3be8250c46f06dceea3a7fa1348057e2f6556ad6b1318a024a838f21af1fde048977eb48f59ffd4924ca1c60902e52f0a089bc76897040e082f937763848645e0705',
      'hex',
    );
    const box = seal(m, nonce, key);
    assert.equal(box.subarray(0, 16).toString('hex'), 'f3ffc7703f9400e52a7dfb4b3d3305d9');
    assert.equal(box.subarray(16, 24).toString('hex'), '8e993b9f48681273');
    assert.deepEqual(open(box, nonce, key), m);
    box[40]! ^= 1;
    assert.equal(open(box, nonce, key), undefined);
  });

  it('sizes follow 32 + n + 16 per started 64 KiB chunk', () => {
    const cases: [number, number][] = [
      [0, 32],
      [19, 67],
      [65536, 65584],
      [65537, 65601],
      [1_000_000, 1_000_288],
    ];
    for (const [plain, stored] of cases) {
      assert.equal(encryptedSize(plain), stored);
      assert.equal(decryptedSize(stored), plain);
    }
    assert.equal(decryptedSize(31), undefined);
    assert.equal(decryptedSize(32 + 16), undefined, 'a chunk holds at least one byte');
  });

  it('name lengths: 143 bytes is the longest name that fits in 255 stored characters', () => {
    assert.equal(maxPlainNameBytes(255), 143);
    assert.ok(encryptedNameLength(143) <= 255);
    assert.ok(encryptedNameLength(144) > 255);
  });
});

describe('crypt format: round trips and tampering', () => {
  let keys: CryptKeys;
  before(async () => {
    keys = await deriveKeys('pass one');
  });

  it('the same name always encrypts the same way, and decrypts back', () => {
    const names = new NameCipher(keys);
    for (const n of ['a', 'hello.txt', 'ünïcödé 名前.txt', 'x'.repeat(143), 'exactly16bytes!!']) {
      assert.equal(names.encryptSegment(n), new NameCipher(keys).encryptSegment(n));
      assert.match(names.encryptSegment(n), /^[0-9a-v]+$/);
      assert.equal(names.decryptSegment(names.encryptSegment(n)), n);
      assert.equal(names.decryptSegment(names.encryptSegment(n).toUpperCase()), n);
    }
    assert.equal(names.decryptSegment('hello.txt'), undefined);
    assert.equal(names.decryptSegment('.satchel-mirror'), undefined);
  });

  it('contents round-trip at every chunk boundary; the same plaintext encrypts differently', async () => {
    for (const n of [0, 1, CHUNK_BYTES - 1, CHUNK_BYTES, CHUNK_BYTES + 1, 3 * CHUNK_BYTES + 7]) {
      const plain = randomBytes(n);
      const stored = await encrypt(plain, keys);
      assert.equal(stored.length, encryptedSize(n));
      assert.deepEqual(await decrypt(stored, keys, n), plain);
      if (n > 0) assert.notDeepEqual(await encrypt(plain, keys), stored);
    }
  });

  it('a local file encrypts as its stream does, across the 16-chunk batches', async () => {
    const dir = makeTempDir('crypt-file');
    try {
      for (const n of [
        0,
        1,
        CHUNK_BYTES,
        16 * CHUNK_BYTES - 1,
        16 * CHUNK_BYTES,
        16 * CHUNK_BYTES + 1,
        33 * CHUNK_BYTES + 7,
      ]) {
        const plain = randomBytes(n);
        const file = join(dir, `f${n}`);
        writeFileSync(file, plain);
        const nonce = randomBytes(24);
        const viaStream = await collect(encryptStream([plain], keys, nonce));
        let stored = Buffer.alloc(0);
        for (const addon of [true, false]) {
          const parts: Buffer[] = [];
          const sealed = encryptFile(file, keys, n, nonce, addon);
          let step = await sealed.next();
          while (step.done !== true) {
            parts.push(step.value);
            step = await sealed.next();
          }
          stored = Buffer.concat(parts);
          assert.deepEqual(stored, viaStream, `${n} bytes, addon: ${addon}`);
          assert.deepEqual(step.value, {
            plainBytes: n,
            hash: createHash('sha256').update(stored).digest('hex'),
          });
        }
        assert.deepEqual(await decrypt(stored, keys, n), plain);
        // A stream in odd-sized pieces decrypts the same.
        const pieces = [];
        for (let at = 0; at < stored.length; at += 10_007) pieces.push(stored.subarray(at, at + 10_007));
        assert.deepEqual(await collect(decryptStream(pieces, keys, 'f', n)), plain);
      }
      // A small file is read on the main thread, a large one on the thread pool: both fail alike.
      for (const [addon, size] of [
        [true, 10],
        [true, 100_000],
        [false, 10],
      ] as const) {
        await assert.rejects(
          collect(encryptFile(join(dir, 'missing'), keys, size, randomBytes(24), addon)),
          (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
        );
      }
    } finally {
      removeTempDir(dir);
    }
  });

  const threeChunks = async (): Promise<Buffer> => encrypt(randomBytes(2 * CHUNK_BYTES + 100), keys);
  const box = 16 + CHUNK_BYTES;
  const tampered: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['a flipped byte in the first chunk', (b) => ((b[40]! ^= 1), b), /failed authentication in chunk 1/],
    ['a flipped byte in the last chunk', (b) => ((b[b.length - 1]! ^= 0x80), b), /chunk 3/],
    ['a flipped tag byte', (b) => ((b[32 + box]! ^= 1), b), /chunk 2/],
    [
      'two swapped chunks',
      (b) =>
        Buffer.concat([
          b.subarray(0, 32),
          b.subarray(32 + box, 32 + 2 * box),
          b.subarray(32, 32 + box),
          b.subarray(32 + 2 * box),
        ]),
      /chunk 1/,
    ],
    ['a file truncated inside a chunk', (b) => b.subarray(0, b.length - 50), /chunk 3/],
    [
      'a file truncated to a few bytes of its last chunk',
      (b) => b.subarray(0, 32 + 2 * box + 10),
      /truncated/,
    ],
    [
      'a file truncated at a chunk boundary',
      (b) => b.subarray(0, 32 + 2 * box),
      /decrypts to 131072 bytes, not the 131172 expected/,
    ],
    ['a wrong header', (b) => ((b[0] = 0x51), b), /header is not rclone's/],
    ['a file shorter than the header', (b) => b.subarray(0, 20), /shorter than the 32-byte header/],
    ['another passphrase', (b) => b, /failed authentication in chunk 1/],
  ];
  for (const [what, change, message] of tampered) {
    it(`${what} fails the read, naming the file, before any of its bytes pass`, async () => {
      const stored = change(await threeChunks());
      const k = what === 'another passphrase' ? await deriveKeys('pass two') : keys;
      const passed: Buffer[] = [];
      await assert.rejects(
        (async () => {
          for await (const c of decryptStream([stored], k, 'notes/f.bin on stick', 2 * CHUNK_BYTES + 100))
            passed.push(c);
        })(),
        (err: Error) =>
          err instanceof CryptError &&
          message.test(err.message) &&
          /notes\/f\.bin on stick/.test(err.message),
      );
      // Runs of chunks before the bad one may pass (they authenticated); never a byte of a bad one.
      for (const c of passed) assert.equal(c.length % CHUNK_BYTES, 0);
    });
  }

  it('a passphrase check accepts the same keys and refuses others', async () => {
    const check = passphraseCheck(keys);
    assert.match(check, /^[0-9a-f]{32}$/);
    assert.ok(checkPassphrase(await deriveKeys('pass one'), check));
    assert.ok(!checkPassphrase(await deriveKeys('pass One'), check));
    assert.ok(!checkPassphrase(await deriveKeys('pass one', 'a salt'), check));
  });
});

describe('crypt format: interop with the real rclone', () => {
  let dir = '';
  before(() => {
    dir = makeTempDir('crypt-interop');
  });
  after(() => removeTempDir(dir));

  const tree = (): Map<string, Buffer> =>
    new Map([
      ['hello.txt', Buffer.from('hello, world\n')],
      ['empty', Buffer.alloc(0)],
      ['sub dir/big.bin', randomBytes(3 * CHUNK_BYTES + 1234)],
      ['sub dir/exact.bin', randomBytes(CHUNK_BYTES)],
      ['ünïcödé 名前/' + 'n'.repeat(100) + '.txt', Buffer.from('long name')],
    ]);

  for (const salt of ['', 'salt two']) {
    const suffix = salt === '' ? 'the default salt' : 'a second passphrase as salt';
    it(`decrypts names and contents rclone wrote (${suffix})`, async () => {
      const src = join(dir, `src-${salt.length}`);
      const store = join(dir, `store-${salt.length}`);
      const files = tree();
      for (const [p, c] of files) {
        mkdirSync(join(src, p, '..'), { recursive: true });
        writeFileSync(join(src, p), c);
      }
      const remote = cryptRemote(dir, store, 'pass one', salt);
      rclone(['copy', src, remote.remote], remote.env);
      const keys = await deriveKeys('pass one', salt);
      const names = new NameCipher(keys);
      for (const [p, c] of files) {
        const stored = join(store, names.encryptPath(p));
        assert.equal(decryptedSize(statSync(stored).size), c.length);
        assert.deepEqual(await collect(decryptStream(createReadStream(stored), keys, p, c.length)), c, p);
      }
      // Name vectors straight from rclone's own encoder.
      const reverse = rclone(['cryptdecode', '--reverse', remote.remote, 'hello.txt'], remote.env).toString();
      assert.equal(reverse.split('\t')[1]?.trim(), names.encryptSegment('hello.txt'));
      assert.deepEqual(
        readdirSync(store)
          .map((n) => names.decryptSegment(n))
          .sort(),
        ['empty', 'hello.txt', 'sub dir', 'ünïcödé 名前'],
      );
    });

    it(`writes files rclone decrypts byte for byte (${suffix})`, async () => {
      const store = join(dir, `mine-${salt.length}`);
      const keys = await deriveKeys('pass one', salt);
      const names = new NameCipher(keys);
      const files = tree();
      for (const [p, c] of files) {
        const stored = join(store, names.encryptPath(p));
        mkdirSync(join(stored, '..'), { recursive: true });
        writeFileSync(stored, await encrypt(c, keys));
      }
      const remote: CryptRemote = cryptRemote(dir, store, 'pass one', salt);
      for (const [p, c] of files) assert.deepEqual(rclone(['cat', `${remote.remote}${p}`], remote.env), c, p);
      const out = join(dir, `out-${salt.length}`);
      rclone(['copy', remote.remote, out], remote.env);
      for (const [p, c] of files) assert.deepEqual(readFileSync(join(out, p)), c, p);
      rclone(['cryptcheck', join(out), remote.remote], remote.env);
    });
  }
});
