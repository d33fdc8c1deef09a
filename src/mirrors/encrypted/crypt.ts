/**
 * @module mirrors/encrypted/crypt
 * rclone's `crypt` format (version 1.60, `backend/crypt/cipher.go`), so a mirror written by
 * Satchel can be read by a stock `rclone` with the passphrase, and the other way round:
 *
 * - Keys: `scrypt(passphrase, salt, N=16384, r=8, p=1)` → 80 bytes: the content key (0–31), the
 *   name key (32–63, AES-256) and the name tweak (64–79). The salt is the optional second
 *   passphrase ("password2"), or rclone's built-in salt when there is none.
 * - Contents: `RCLONE\0\0`, a random 24-byte nonce, then the plaintext in 64 KiB chunks, each a
 *   NaCl secretbox (16-byte tag + ciphertext) under the nonce, which grows by one per chunk
 *   (little-endian, with carry). An empty file is the 32-byte header alone.
 * - Names (`standard`): each path segment PKCS#7-padded to 16 bytes, enciphered with
 *   AES-256-EME under the name tweak, written in lower-case base32hex without padding.
 *   Deterministic: the same name always encrypts the same way.
 *
 * What the format does not protect (rclone's design, documented in its `crypt.md`): the length
 * of a file (a file cut at a chunk boundary still authenticates, chunk by chunk — Satchel
 * checks lengths against what it expects where it knows them), which name a content belongs
 * to, and modification times.
 */
import { createHash, createHmac, randomBytes, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { closeSync, openSync, readSync } from 'node:fs';
import {
  advanceNonce,
  BOX_BYTES,
  CHUNK_BYTES,
  openChunks,
  openedLength,
  sealChunks,
  sealedLength,
  sealedSha256,
  sealFileBatch,
  sealFileTo,
} from './chunks.js';
import { emeTransform } from './eme.js';
import { SEAL_TO_FIELDS } from './native-secretbox.js';
import { NONCE_BYTES } from './secretbox.js';

/** The first 8 bytes of every encrypted file. */
export const FILE_MAGIC = Buffer.from('RCLONE\0\0', 'latin1');
/** Bytes before the first chunk: magic and nonce. */
export const HEADER_BYTES = FILE_MAGIC.length + NONCE_BYTES;
/** Plaintext bytes per chunk (defined with the chunk code in `chunks.ts`). */
export { CHUNK_BYTES };
/** rclone's salt when no second passphrase is given. */
export const DEFAULT_SALT = Buffer.from('a80df43a8fbd0308a7cab83e581f86b1', 'hex');
/** rclone refuses decoded names longer than this. */
const MAX_DECODED_NAME_BYTES = 2048;

/** The keys derived from a passphrase. Never logged, never stored. */
export interface CryptKeys {
  /** XSalsa20-Poly1305 key of file contents. */
  readonly dataKey: Buffer;
  /** AES-256 key of file names. */
  readonly nameKey: Buffer;
  /** EME tweak of file names. */
  readonly nameTweak: Buffer;
}

/**
 * Derives the keys as rclone does from `passphrase` and the optional second passphrase
 * `salt` (rclone's "password2"). An empty passphrase gives all-zero keys, as in rclone.
 */
export async function deriveKeys(passphrase: string, salt = ''): Promise<CryptKeys> {
  let key: Buffer;
  if (passphrase === '') {
    key = Buffer.alloc(80);
  } else {
    const s = salt === '' ? DEFAULT_SALT : Buffer.from(salt, 'utf8');
    key = await new Promise<Buffer>((resolve, reject) =>
      scryptCb(passphrase, s, 80, { N: 16384, r: 8, p: 1, maxmem: 64 * 1024 * 1024 }, (err, k) =>
        err ? reject(err) : resolve(k),
      ),
    );
  }
  return { dataKey: key.subarray(0, 32), nameKey: key.subarray(32, 64), nameTweak: key.subarray(64, 80) };
}

/** Label of the passphrase check (changing it invalidates every stored check). */
const CHECK_LABEL = 'satchel passphrase check v1';

/**
 * A value that tells whether keys come from the right passphrase, safe to store beside the
 * mirror: an HMAC of a fixed label under the content key (it reveals nothing a stored encrypted
 * file would not; guessing passphrases against it costs an scrypt each, as against a file).
 */
export function passphraseCheck(keys: CryptKeys): string {
  return createHmac('sha256', keys.dataKey).update(CHECK_LABEL).digest('hex').slice(0, 32);
}

/** Whether `keys` match a stored {@link passphraseCheck}. */
export function checkPassphrase(keys: CryptKeys, stored: string): boolean {
  const mine = Buffer.from(passphraseCheck(keys), 'utf8');
  const theirs = Buffer.from(stored, 'utf8');
  return mine.length === theirs.length && timingSafeEqual(mine, theirs);
}

// ---------------------------------------------------------------- sizes

/** The stored size of a file of `plainSize` bytes. */
export function encryptedSize(plainSize: number): number {
  return HEADER_BYTES + sealedLength(plainSize);
}

/** The plaintext size of a stored file of `size` bytes; `undefined` when no file has that size. */
export function decryptedSize(size: number): number | undefined {
  return size < HEADER_BYTES ? undefined : openedLength(size - HEADER_BYTES);
}

// ---------------------------------------------------------------- names

const BASE32HEX = '0123456789abcdefghijklmnopqrstuv';

/** RFC 4648 base32 with the "extended hex" alphabet, lower case, without padding. */
export function base32hexEncode(data: Uint8Array): string {
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of data) {
    value = ((value << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5) {
      out += BASE32HEX[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32HEX[(value << (5 - bits)) & 31];
  return out;
}

/** The inverse of {@link base32hexEncode} (either case); `undefined` for anything else. */
export function base32hexDecode(text: string): Buffer | undefined {
  // Lengths that no whole number of bytes encodes to.
  if ([1, 3, 6].includes(text.length % 8)) return undefined;
  const out = Buffer.alloc(Math.floor((text.length * 5) / 8));
  let bits = 0;
  let value = 0;
  let n = 0;
  for (const ch of text.toLowerCase()) {
    const v = BASE32HEX.indexOf(ch);
    if (v < 0) return undefined;
    value = ((value << 5) | v) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      out[n++] = (value >>> (bits - 8)) & 0xff;
      bits -= 8;
    }
  }
  return out;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Encrypts and decrypts path segments, remembering recent answers. */
export class NameCipher {
  readonly #keys: CryptKeys;
  readonly #encrypted = new Map<string, string>();
  readonly #decrypted = new Map<string, string | undefined>();

  constructor(keys: CryptKeys) {
    this.#keys = keys;
  }

  /** The stored form of one name. */
  encryptSegment(name: string): string {
    let out = this.#encrypted.get(name);
    if (out === undefined) {
      const plain = Buffer.from(name, 'utf8');
      const pad = 16 - (plain.length % 16);
      const padded = Buffer.concat([plain, Buffer.alloc(pad, pad)]);
      out = base32hexEncode(emeTransform(this.#keys.nameKey, this.#keys.nameTweak, padded, true));
      this.remember(this.#encrypted, name, out);
    }
    return out;
  }

  /** The real name of a stored one; `undefined` when it does not decrypt with these keys. */
  decryptSegment(stored: string): string | undefined {
    if (this.#decrypted.has(stored)) return this.#decrypted.get(stored);
    let out: string | undefined;
    const raw = base32hexDecode(stored);
    if (
      raw !== undefined &&
      raw.length > 0 &&
      raw.length % 16 === 0 &&
      raw.length <= MAX_DECODED_NAME_BYTES
    ) {
      const padded = emeTransform(this.#keys.nameKey, this.#keys.nameTweak, raw, false);
      const pad = padded[padded.length - 1]!;
      if (pad >= 1 && pad <= 16 && padded.subarray(padded.length - pad).every((b) => b === pad)) {
        try {
          out = UTF8.decode(padded.subarray(0, padded.length - pad));
        } catch {
          out = undefined;
        }
        if (out === '' || out?.includes('/') === true) out = undefined;
      }
    }
    this.remember(this.#decrypted, stored, out);
    return out;
  }

  /** The stored form of a path, segment by segment. */
  encryptPath(path: string): string {
    return path
      .split('/')
      .map((s) => this.encryptSegment(s))
      .join('/');
  }

  /** The real path of a stored one; `undefined` when a segment does not decrypt. */
  decryptPath(stored: string): string | undefined {
    const out: string[] = [];
    for (const s of stored.split('/')) {
      const d = this.decryptSegment(s);
      if (d === undefined) return undefined;
      out.push(d);
    }
    return out.join('/');
  }

  /** Bounded memo: a huge tree must not keep every name twice forever. */
  private remember<V>(map: Map<string, V>, key: string, value: V): void {
    if (map.size >= 200_000) map.clear();
    map.set(key, value);
  }
}

/** The length of the stored form of a name of `bytes` UTF-8 bytes. */
export function encryptedNameLength(bytes: number): number {
  return Math.ceil(((Math.floor(bytes / 16) + 1) * 16 * 8) / 5);
}

/** The longest name (in UTF-8 bytes) whose stored form fits in `maxStored` characters. */
export function maxPlainNameBytes(maxStored: number): number {
  const blocks = Math.floor((maxStored * 5) / 8 / 16);
  return Math.max(0, blocks * 16 - 1);
}

// ---------------------------------------------------------------- contents

/** Why an encrypted file could not be read; the message names what is wrong, never a key. */
export class CryptError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CryptError';
  }
}

/** Plaintext bytes sealed per call (16 chunks): enough to make a hand-off to the thread pool pay. */
const BATCH_PLAIN_BYTES = 16 * CHUNK_BYTES;
/** Stored bytes opened per call (16 boxes). */
const BATCH_STORED_BYTES = 16 * BOX_BYTES;
const NO_ROOM = Buffer.alloc(0);

/**
 * Bytes waiting to be sealed or opened, handed over in runs of whole chunks (`unit` bytes) or
 * at the end of the file. Its first capacity comes from the expected size, so a small file
 * gets a small buffer; a file longer than expected grows it to `max`.
 */
class Batch {
  /** Bytes filled so far. */
  filled = 0;
  #buf: Buffer;
  readonly #unit: number;
  readonly #max: number;

  constructor(capacity: number, unit: number, max: number) {
    this.#buf = Buffer.allocUnsafe(capacity);
    this.#unit = unit;
    this.#max = max;
  }

  /** Free space to fill; empty when the batch is full at a chunk boundary and must be taken first. */
  room(): Buffer {
    if (this.filled === this.#buf.length) {
      if (this.filled > 0 && this.filled % this.#unit === 0) return NO_ROOM;
      const bigger = Buffer.allocUnsafe(this.#max);
      this.#buf.copy(bigger, 0, 0, this.filled);
      this.#buf = bigger;
    }
    return this.#buf.subarray(this.filled);
  }

  /** Copies as much of `piece` as fits; returns the rest. */
  fill(piece: Buffer): Buffer {
    const room = this.room();
    const n = Math.min(room.length, piece.length);
    piece.copy(room, 0, 0, n);
    this.filled += n;
    return piece.subarray(n);
  }

  /** The filled bytes, emptying the batch (the view is valid until the batch is filled again). */
  take(): Buffer {
    const out = this.#buf.subarray(0, this.filled);
    this.filled = 0;
    return out;
  }
}

/** A Buffer over the same memory as `piece`. */
function asBuffer(piece: Uint8Array): Buffer {
  return Buffer.isBuffer(piece) ? piece : Buffer.from(piece.buffer, piece.byteOffset, piece.length);
}

/** Seals a file's plaintext batch by batch; the first output starts with the header. */
class Sealer {
  readonly batch: Batch;
  /** Plaintext bytes sealed so far. */
  plainBytes = 0;
  readonly #key: Uint8Array;
  readonly #nonce: Buffer;
  #header: Buffer | undefined;

  constructor(keys: CryptKeys, nonce: Uint8Array, expectedSize: number | undefined) {
    this.#key = keys.dataKey;
    this.#nonce = Buffer.from(nonce);
    this.#header = Buffer.concat([FILE_MAGIC, this.#nonce]);
    // One byte more than expected: reading the expected size then finds the end without growing.
    const capacity =
      expectedSize === undefined ? BATCH_PLAIN_BYTES : Math.min(expectedSize + 1, BATCH_PLAIN_BYTES);
    this.batch = new Batch(capacity, CHUNK_BYTES, BATCH_PLAIN_BYTES);
  }

  /** Seals what the batch holds (whole chunks, or the end of the file). */
  async seal(): Promise<Buffer> {
    const plain = this.batch.take();
    const head = this.#header?.length ?? 0;
    const out = Buffer.allocUnsafe(head + sealedLength(plain.length));
    if (this.#header !== undefined) this.#header.copy(out);
    this.#header = undefined;
    await sealChunks(plain, this.#nonce, this.#key, out.subarray(head));
    advanceNonce(this.#nonce, Math.ceil(plain.length / CHUNK_BYTES));
    this.plainBytes += plain.length;
    return out;
  }
}

/**
 * Encrypts a plaintext stream into rclone's format: header, then one box per 64 KiB, yielded
 * in runs of up to 16 boxes. `expectedSize` (when known) only sizes the buffers. `nonce` is
 * for tests only (known-answer vectors); real files always get a fresh random one.
 */
export async function* encryptStream(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  keys: CryptKeys,
  nonce: Buffer = randomBytes(NONCE_BYTES),
  expectedSize?: number,
): AsyncGenerator<Buffer> {
  const sealer = new Sealer(keys, nonce, expectedSize);
  for await (const piece of input) {
    let rest = asBuffer(piece);
    while (rest.length > 0) {
      if (sealer.batch.room().length === 0) yield await sealer.seal();
      rest = sealer.batch.fill(rest);
    }
  }
  const last = await sealer.seal();
  if (last.length > 0) yield last;
}

/** Batch buffers of {@link encryptFile} not in use (one per file being encrypted, reused). */
const spareBatches: Buffer[] = [];
/** Random bytes for nonces, drawn in batches (one call per file cost more than the nonce). */
let noncePool = Buffer.alloc(0);
let nonceAt = 0;

/** A fresh random nonce (from the pool). */
function freshNonce(): Buffer {
  if (nonceAt + NONCE_BYTES > noncePool.length) {
    noncePool = randomBytes(NONCE_BYTES * 256);
    nonceAt = 0;
  }
  const nonce = Buffer.from(noncePool.subarray(nonceAt, nonceAt + NONCE_BYTES));
  noncePool.fill(0, nonceAt, nonceAt + NONCE_BYTES);
  nonceAt += NONCE_BYTES;
  return nonce;
}

/** What {@link encryptFile} read and wrote. */
export interface EncryptedFile {
  /** Plaintext bytes read. */
  readonly plainBytes: number;
  /** Lower-case hex SHA-256 of everything yielded (the stored file). */
  readonly hash: string;
}

/**
 * Encrypts the local file at `path` like {@link encryptStream}, in batches of up to 16 chunks,
 * and returns how many plaintext bytes it read and the SHA-256 of what it yielded: the caller
 * compares the count with `expectedSize`, the size it planned for (which also sizes the
 * buffers; a file found longer stops at one byte more). With the addon, each batch is read,
 * sealed and hashed in one native call, on the thread pool for large batches (the main thread
 * neither reads, encrypts nor hashes them); without it, the file is read with blocking calls
 * into a reused buffer, as the path replica reads a local disk. A short read is taken as the
 * end of the file, as it is for a regular file; should it not be, the count tells. `nonce` and
 * `addon` (false: the JavaScript path even where the addon loads) are for tests.
 */
export async function* encryptFile(
  path: string,
  keys: CryptKeys,
  expectedSize: number,
  nonce: Buffer = freshNonce(),
  addon = true,
): AsyncGenerator<Buffer, EncryptedFile> {
  const n = Buffer.from(nonce);
  let header: Buffer | undefined = Buffer.concat([FILE_MAGIC, n]);
  let plainBytes = 0;
  if (addon && sealFileBatch !== undefined && sealedSha256 !== undefined) {
    const ctx = sealedSha256.start();
    for (;;) {
      // Up to one byte past the expected end: reading it tells a file that grew.
      const max = Math.min(BATCH_PLAIN_BYTES, Math.max(0, expectedSize - plainBytes) + 1);
      const head = header?.length ?? 0;
      const out = Buffer.allocUnsafe(head + sealedLength(max));
      if (header !== undefined) {
        header.copy(out);
        sealedSha256.update(ctx, header);
      }
      header = undefined;
      const got = await sealFileBatch(path, plainBytes, max, keys.dataKey, n, out.subarray(head), ctx);
      advanceNonce(n, Math.ceil(got / CHUNK_BYTES));
      plainBytes += got;
      const stored = out.subarray(0, head + sealedLength(got));
      if (stored.length > 0) yield stored;
      // The end, or a file longer than planned whose batch ended inside a chunk: the count tells.
      if (got < max || max % CHUNK_BYTES !== 0) return { plainBytes, hash: sealedSha256.digest(ctx) };
    }
  }
  const hash = createHash('sha256');
  const fd = openSync(path, 'r');
  const batch = spareBatches.pop() ?? Buffer.allocUnsafeSlow(BATCH_PLAIN_BYTES);
  try {
    for (;;) {
      let filled = 0;
      let end = false;
      while (filled < batch.length) {
        const got = readSync(fd, batch, filled, batch.length - filled, null);
        filled += got;
        if (got === 0 || filled < batch.length) {
          end = true;
          break;
        }
      }
      if (filled > 0 || header !== undefined) {
        const head = header?.length ?? 0;
        const out = Buffer.allocUnsafe(head + sealedLength(filled));
        if (header !== undefined) header.copy(out);
        header = undefined;
        await sealChunks(batch.subarray(0, filled), n, keys.dataKey, out.subarray(head));
        advanceNonce(n, Math.ceil(filled / CHUNK_BYTES));
        plainBytes += filled;
        hash.update(out);
        yield out;
      }
      if (end) break;
    }
  } finally {
    closeSync(fd);
    if (spareBatches.length < 16) spareBatches.push(batch);
  }
  return { plainBytes, hash: hash.digest('hex') };
}

/** What {@link encryptFileTo} read and wrote. */
export interface EncryptedCopy {
  /** Plaintext bytes read. */
  readonly plainBytes: number;
  /** The source changed (size, mtime or inode) while it was read. */
  readonly sourceMoved: boolean;
  /** The source's size and mtime after it was read. */
  readonly sourceSize: number;
  readonly sourceMtimeMs: number;
  /** The copy as fstat saw it once settled. */
  readonly stat: {
    readonly size: number;
    readonly mtimeMs: number;
    readonly mode: number;
    readonly ino: number;
  };
}

/**
 * Encrypts the local file at `path` into the new file `temp` (never replacing one) in one
 * native call, as {@link encryptFile} would yield it, and settles the copy: `mode` (unless
 * negative), mtime `mtimeMs`, an fsync when `flush`. The copy is not hashed: the caller checks
 * it by the source's fstat, which the result carries. `expectedSize` is the plaintext size
 * planned (a file found longer stops at one byte more: the count tells). `undefined` without the
 * addon: the caller then streams {@link encryptFile}. On failure nothing is left at `temp`.
 */
export function encryptFileTo(
  path: string,
  temp: string,
  keys: CryptKeys,
  expectedSize: number,
  settle: {
    readonly mode: number;
    readonly mtimeMs: number;
    readonly flush: boolean;
  },
): Promise<EncryptedCopy> | undefined {
  if (sealFileTo === undefined) return undefined;
  const out = new Float64Array(SEAL_TO_FIELDS);
  const noDigest = Buffer.alloc(0);
  const args = [
    path,
    temp,
    keys.dataKey,
    freshNonce(),
    expectedSize,
    settle.mode,
    settle.mtimeMs,
    settle.flush,
    out,
    noDigest,
  ] as const;
  const result = (): EncryptedCopy => ({
    plainBytes: out[0]!,
    sourceMoved: out[3] === 1,
    sourceSize: out[1]!,
    sourceMtimeMs: out[2]!,
    stat: { size: out[4]!, mtimeMs: out[5]!, mode: out[6]!, ino: out[7]! },
  });
  try {
    const job = sealFileTo(...args);
    return job === undefined ? Promise.resolve(result()) : job.then(result);
  } catch (err) {
    return Promise.reject(err as Error);
  }
}

/**
 * Decrypts a stored stream, authenticating every chunk before yielding it (in runs of up to 16
 * chunks). Throws {@link CryptError} (naming `what`) on a missing or wrong header, an altered,
 * reordered or truncated chunk, or — with `expectedSize` — a plaintext of another length (a file
 * cut at a chunk boundary). Nothing of a run is yielded unless all of it authenticated, and the
 * last run not unless the length is right.
 */
export async function* decryptStream(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  keys: CryptKeys,
  what: string,
  expectedSize?: number,
): AsyncGenerator<Buffer> {
  const header = Buffer.alloc(HEADER_BYTES);
  let headerBytes = 0;
  let nonce: Buffer | undefined;
  let index = 0;
  let total = 0;
  const capacity =
    expectedSize === undefined
      ? BATCH_STORED_BYTES
      : Math.min(sealedLength(expectedSize) + 1, BATCH_STORED_BYTES);
  const batch = new Batch(capacity, BOX_BYTES, BATCH_STORED_BYTES);
  const openBatch = async (last: boolean): Promise<Buffer> => {
    const stored = batch.take();
    const size = openedLength(stored.length);
    if (size === undefined) {
      const chunk = index + Math.floor(stored.length / BOX_BYTES) + 1;
      throw new CryptError(`${what} is truncated: its last chunk (${chunk}) is cut short`);
    }
    const plain = Buffer.allocUnsafe(size);
    const bad = await openChunks(stored, nonce!, keys.dataKey, plain);
    if (bad >= 0) {
      throw new CryptError(
        `${what} failed authentication in chunk ${index + bad + 1}: it was altered, truncated or reordered, or encrypted with another passphrase`,
      );
    }
    const boxes = Math.ceil(stored.length / BOX_BYTES);
    advanceNonce(nonce!, boxes);
    index += boxes;
    total += size;
    if (expectedSize !== undefined && (total > expectedSize || (last && total !== expectedSize))) {
      throw new CryptError(
        `${what} decrypts to ${last ? '' : 'more than '}${total} bytes, not the ${expectedSize} expected: it was truncated or altered`,
      );
    }
    return plain;
  };
  for await (const piece of input) {
    let rest = asBuffer(piece);
    if (nonce === undefined) {
      const n = Math.min(HEADER_BYTES - headerBytes, rest.length);
      rest.copy(header, headerBytes, 0, n);
      headerBytes += n;
      rest = rest.subarray(n);
      if (headerBytes < HEADER_BYTES) continue;
      if (!header.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC)) {
        throw new CryptError(`${what} is not an encrypted file: its header is not rclone's (RCLONE\\0\\0)`);
      }
      nonce = Buffer.from(header.subarray(FILE_MAGIC.length));
    }
    while (rest.length > 0) {
      if (batch.room().length === 0) yield await openBatch(false);
      rest = batch.fill(rest);
    }
  }
  if (nonce === undefined) {
    throw new CryptError(
      `${what} is not an encrypted file: it is shorter than the ${HEADER_BYTES}-byte header`,
    );
  }
  const last = await openBatch(true);
  if (last.length > 0) yield last;
}

/** The lower-case hex SHA-256 of the plaintext of a stored stream (authenticating it). */
export async function hashDecrypted(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  keys: CryptKeys,
  what: string,
  expectedSize?: number,
): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of decryptStream(input, keys, what, expectedSize)) hash.update(chunk);
  return hash.digest('hex');
}
