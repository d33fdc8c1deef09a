/**
 * @module mirrors/encrypted/native-secretbox
 * Loads Satchel's XSalsa20-Poly1305 addon (`native/secretbox`, built by
 * `node scripts/build-native.mjs`) and gives it types. The addon is optional: when it is missing
 * (not built, not Linux) or does not load, `chunks.ts` falls back to the JavaScript
 * implementation in `secretbox.ts`, which produces the same bytes, more slowly and on the main
 * thread. `SATCHEL_NO_NATIVE_SECRETBOX=1` forces the fallback (tests compare the two).
 */
import { type AddonLoad, loadAddon } from '../../native/addon.js';

/**
 * The arguments of the file sealers: what to read (`max` bytes of `path` from `offset`), the key
 * and first nonce, where to seal it, and optionally a SHA-256 context ({@link
 * SecretboxBinding.sha256Start}) to feed the sealed bytes to.
 */
export type SealFileArgs = [
  path: string,
  offset: number,
  max: number,
  key: Uint8Array,
  nonce: Uint8Array,
  output: Uint8Array,
  hash?: Uint8Array,
];

/**
 * The arguments of the whole-file sealers: the local file to read, the new temporary file to
 * create (never replacing one), key and first nonce, the plaintext size planned (one byte more
 * is read, to tell a file that grew), the copy's mode (negative: the umask's default), mtime and
 * whether to fsync it, and where to put the outcome: `out` ({@link SEAL_TO_FIELDS} numbers:
 * plaintext bytes read, the source's size and mtimeMs after, 1 when the source changed while it
 * was read, the copy's size, mtimeMs, mode and inode) and `digest` (the SHA-256 of the copy).
 */
export type SealFileToArgs = [
  src: string,
  temp: string,
  key: Uint8Array,
  nonce: Uint8Array,
  expectedSize: number,
  mode: number,
  mtimeMs: number,
  flush: boolean,
  out: Float64Array,
  digest: Uint8Array,
];

/** Numbers in the `out` array of the whole-file sealers. */
export const SEAL_TO_FIELDS = 8;

/**
 * The addon's functions (see `native/secretbox/secretbox.c`). `key` is 32 bytes, `nonce` 24;
 * chunk `i` of a multi-chunk call is sealed under `nonce + i` (little-endian, with carry), and
 * every chunk but the last holds exactly 64 KiB of plaintext, as in rclone's format.
 */
export interface SecretboxBinding {
  /** One box: the 16-byte tag, then the ciphertext. */
  seal(key: Uint8Array, nonce: Uint8Array, message: Uint8Array): Buffer;
  /** The message of one box, or `undefined` when it does not authenticate. */
  open(key: Uint8Array, nonce: Uint8Array, box: Uint8Array): Buffer | undefined;
  /** Seals `input` chunk by chunk into `output` (`input.length` + 16 per chunk). */
  sealChunks(key: Uint8Array, nonce: Uint8Array, input: Uint8Array, output: Uint8Array): void;
  /**
   * Opens consecutive boxes of `input` into `output` (16 bytes fewer per box): -1 when all
   * authenticated, else the index of the first that did not (`output` is then incomplete).
   */
  openChunks(key: Uint8Array, nonce: Uint8Array, input: Uint8Array, output: Uint8Array): number;
  /**
   * Reads up to `max` bytes of the file at `path` from `offset` and seals them (chunk `i` under
   * `nonce + i`) into `output` (at least `max` bytes sealed), all on the thread pool; resolves
   * to the plaintext bytes read (fewer than `max` only at the end of the file). Rejects with a
   * Node-style system error (`code`, `syscall`, `path`) when the file cannot be read.
   */
  sealFileAsync(...args: SealFileArgs): Promise<number>;
  /** {@link sealFileAsync} on the calling thread: for small files, cheaper than a hand-off. */
  sealFile(...args: SealFileArgs): number;
  /**
   * A whole encrypted copy in one call on the thread pool: reads `src`, writes rclone's header
   * and boxes into the new file `temp`, hashing them, settles it (mode, mtime, optional fsync).
   * On failure `temp` is removed; rejects with a Node-style system error naming `src` or `temp`.
   */
  sealFileToAsync(...args: SealFileToArgs): Promise<void>;
  /** {@link sealFileToAsync} on the calling thread. */
  sealFileTo(...args: SealFileToArgs): void;
  /** A new SHA-256 context (FIPS 180-4; the x86 SHA extensions where the processor has them). */
  sha256Start(): Buffer;
  /** Feeds `data` to a context. */
  sha256Update(ctx: Uint8Array, data: Uint8Array): void;
  /** The digest (32 bytes); the context cannot be used afterwards. */
  sha256Digest(ctx: Uint8Array): Buffer;
  /** How many Salsa20 blocks run at once on this processor (4; 8 with AVX2; 16 with AVX-512). */
  readonly lanes: number;
  /** {@link sealChunks} on the thread pool; the arrays must not be touched until it settles. */
  sealChunksAsync(key: Uint8Array, nonce: Uint8Array, input: Uint8Array, output: Uint8Array): Promise<void>;
  /** {@link openChunks} on the thread pool; the arrays must not be touched until it settles. */
  openChunksAsync(key: Uint8Array, nonce: Uint8Array, input: Uint8Array, output: Uint8Array): Promise<number>;
}

/**
 * Loads the addon once per process. Never throws: a missing or broken addon is reported as
 * `{ ok: false, reason }`, and the callers use the JavaScript implementation.
 */
export function loadSecretboxBinding(): AddonLoad<SecretboxBinding> {
  if (process.env.SATCHEL_NO_NATIVE_SECRETBOX === '1') {
    return { ok: false, reason: 'SATCHEL_NO_NATIVE_SECRETBOX=1 asks for the JavaScript implementation' };
  }
  return loadAddon<SecretboxBinding>('secretbox');
}
