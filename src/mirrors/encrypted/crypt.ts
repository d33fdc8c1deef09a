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
import { emeTransform } from './eme.js';
import { NONCE_BYTES, OVERHEAD_BYTES, open, seal } from './secretbox.js';

/** The first 8 bytes of every encrypted file. */
export const FILE_MAGIC = Buffer.from('RCLONE\0\0', 'latin1');
/** Bytes before the first chunk: magic and nonce. */
export const HEADER_BYTES = FILE_MAGIC.length + NONCE_BYTES;
/** Plaintext bytes per chunk. */
export const CHUNK_BYTES = 64 * 1024;
/** Stored bytes of a full chunk. */
const BOX_BYTES = CHUNK_BYTES + OVERHEAD_BYTES;
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
  return HEADER_BYTES + plainSize + OVERHEAD_BYTES * Math.ceil(plainSize / CHUNK_BYTES);
}

/** The plaintext size of a stored file of `size` bytes; `undefined` when no file has that size. */
export function decryptedSize(size: number): number | undefined {
  if (size < HEADER_BYTES) return undefined;
  const body = size - HEADER_BYTES;
  const full = Math.floor(body / BOX_BYTES);
  const last = body % BOX_BYTES;
  if (last === 0) return full * CHUNK_BYTES;
  if (last <= OVERHEAD_BYTES) return undefined;
  return full * CHUNK_BYTES + last - OVERHEAD_BYTES;
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

/** Adds one to a nonce, little-endian with carry (rclone's `nonce.increment`). */
function increment(nonce: Buffer): void {
  for (let i = 0; i < nonce.length; i++) {
    nonce[i] = (nonce[i]! + 1) & 0xff;
    if (nonce[i] !== 0) return;
  }
}

/** Yields `input` cut into pieces of exactly `size` bytes (the last one may be shorter). */
async function* rechunk(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  size: number,
): AsyncGenerator<Buffer> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  for await (const piece of input) {
    let buf = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
    while (pendingBytes + buf.length >= size) {
      const take = size - pendingBytes;
      pending.push(buf.subarray(0, take));
      yield pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      buf = buf.subarray(take);
      pending = [];
      pendingBytes = 0;
    }
    if (buf.length > 0) {
      pending.push(buf);
      pendingBytes += buf.length;
    }
  }
  if (pendingBytes > 0) yield Buffer.concat(pending);
}

/**
 * Encrypts a plaintext stream into rclone's format: header, then one box per 64 KiB. `nonce`
 * is for tests only (known-answer vectors); real files always get a fresh random one.
 */
export async function* encryptStream(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  keys: CryptKeys,
  nonce: Buffer = randomBytes(NONCE_BYTES),
): AsyncGenerator<Buffer> {
  const n = Buffer.from(nonce);
  yield Buffer.concat([FILE_MAGIC, n]);
  for await (const chunk of rechunk(input, CHUNK_BYTES)) {
    yield seal(chunk, n, keys.dataKey);
    increment(n);
  }
}

/**
 * Decrypts a stored stream, authenticating every chunk before yielding it. Throws
 * {@link CryptError} (naming `what`) on a missing or wrong header, an altered, reordered or
 * truncated chunk, or — with `expectedSize` — a plaintext of another length (a file cut at a
 * chunk boundary). Nothing of a chunk is yielded unless it authenticated.
 */
export async function* decryptStream(
  input: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  keys: CryptKeys,
  what: string,
  expectedSize?: number,
): AsyncGenerator<Buffer> {
  let nonce: Buffer | undefined;
  let index = 0;
  let total = 0;
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const openBox = (box: Buffer): Buffer => {
    if (box.length <= OVERHEAD_BYTES) {
      throw new CryptError(`${what} is truncated: its last chunk (${index + 1}) is cut short`);
    }
    const plain = open(box, nonce!, keys.dataKey);
    if (plain === undefined) {
      throw new CryptError(
        `${what} failed authentication in chunk ${index + 1}: it was altered, truncated or reordered, or encrypted with another passphrase`,
      );
    }
    increment(nonce!);
    index++;
    total += plain.length;
    return plain;
  };
  const take = (size: number): Buffer => {
    const all = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    const out = all.subarray(0, size);
    const rest = all.subarray(size);
    pending = rest.length > 0 ? [rest] : [];
    pendingBytes = rest.length;
    return out;
  };
  for await (const piece of input) {
    const buf = Buffer.isBuffer(piece) ? piece : Buffer.from(piece);
    if (buf.length === 0) continue;
    pending.push(buf);
    pendingBytes += buf.length;
    if (nonce === undefined) {
      if (pendingBytes < HEADER_BYTES) continue;
      const header = take(HEADER_BYTES);
      if (!header.subarray(0, FILE_MAGIC.length).equals(FILE_MAGIC)) {
        throw new CryptError(`${what} is not an encrypted file: its header is not rclone's (RCLONE\\0\\0)`);
      }
      nonce = Buffer.from(header.subarray(FILE_MAGIC.length));
    }
    while (pendingBytes >= BOX_BYTES) yield openBox(take(BOX_BYTES));
  }
  if (nonce === undefined) {
    throw new CryptError(
      `${what} is not an encrypted file: it is shorter than the ${HEADER_BYTES}-byte header`,
    );
  }
  if (pendingBytes > 0) yield openBox(take(pendingBytes));
  if (expectedSize !== undefined && total !== expectedSize) {
    throw new CryptError(
      `${what} decrypts to ${total} bytes, not the ${expectedSize} expected: it was truncated or altered`,
    );
  }
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
