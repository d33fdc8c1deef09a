/**
 * @module mirrors/encrypted/chunks
 * Seals and opens runs of consecutive 64 KiB secretbox chunks, as rclone's format chains them
 * (chunk `i` under the file's nonce + `i`). With the native addon (`native-secretbox.ts`) a run
 * of more than a few KiB is processed on libuv's thread pool, so several files are encrypted at
 * once on several cores while the main thread reads and writes; without it, the JavaScript
 * secretbox (`secretbox.ts`) does the same, box by box, on the main thread. Both give the same
 * bytes (the tests check that).
 */
import {
  loadSecretboxBinding,
  type SealFileArgs,
  type SealFileToArgs,
  type SecretboxBinding,
} from './native-secretbox.js';
import { OVERHEAD_BYTES, open, seal } from './secretbox.js';

/** Plaintext bytes per chunk. */
export const CHUNK_BYTES = 64 * 1024;
/** Stored bytes of a full chunk. */
export const BOX_BYTES = CHUNK_BYTES + OVERHEAD_BYTES;

/**
 * Runs shorter than this (chunks, a batch of a file, a whole small file's copy) are sealed or
 * opened on the main thread even with the addon: below it, handing the work to the thread pool
 * and back costs more than the work (measured on 2 cores: ~0.1 s more CPU for 10,000 small files
 * when all go to the pool).
 */
const THREAD_POOL_FROM_BYTES = 16 * 1024;

const load = loadSecretboxBinding();
const native: SecretboxBinding | undefined = load.ok ? load.binding : undefined;

/** Which implementation seals and opens chunks in this process (for diagnostics and tests). */
export const secretboxImplementation: 'native' | 'javascript' =
  native === undefined ? 'javascript' : 'native';

/** `onThread` for arguments whose byte count (at `bytesAt`) is under the threshold, else `onPool`. */
function bySize<A extends unknown[], R>(
  bytesAt: number,
  onThread: (...args: A) => R,
  onPool: (...args: A) => Promise<R>,
): (...args: A) => R | Promise<R> {
  return (...args) =>
    (args[bytesAt] as number) < THREAD_POOL_FROM_BYTES ? onThread(...args) : onPool(...args);
}

/**
 * Reads up to `max` bytes of the file at `path` from `offset` and seals them into `output`
 * (see {@link SecretboxBinding.sealFileAsync}): on the thread pool for large batches, on the
 * calling thread for small ones. `undefined` without the addon.
 */
export const sealFileBatch: ((...args: SealFileArgs) => Promise<number> | number) | undefined =
  native === undefined
    ? undefined
    : bySize(2, native.sealFile.bind(native), native.sealFileAsync.bind(native));

/**
 * Seals a whole local file into a new temporary file in one native call (see {@link
 * SecretboxBinding.sealFileToAsync}): on the thread pool for larger files, on the calling
 * thread for small ones. `undefined` without the addon.
 */
export const sealFileTo: ((...args: SealFileToArgs) => Promise<void> | void) | undefined =
  native === undefined
    ? undefined
    : bySize(4, native.sealFileTo.bind(native), native.sealFileToAsync.bind(native));

/**
 * The addon's SHA-256 contexts, which the file sealers feed where they seal (on the thread pool
 * for large batches), so the stored bytes are hashed off the main thread; `undefined` without
 * the addon.
 */
export const sealedSha256:
  | {
      readonly start: () => Uint8Array;
      readonly update: (ctx: Uint8Array, data: Uint8Array) => void;
      readonly digest: (ctx: Uint8Array) => string;
    }
  | undefined =
  native === undefined
    ? undefined
    : {
        start: () => native.sha256Start(),
        update: (ctx, data) => native.sha256Update(ctx, data),
        digest: (ctx) => native.sha256Digest(ctx).toString('hex'),
      };

/** How many chunks `plainBytes` bytes of plaintext make. */
export function chunkCount(plainBytes: number): number {
  return Math.ceil(plainBytes / CHUNK_BYTES);
}

/** The stored length of `plainBytes` bytes of plaintext in chunks (without the file header). */
export function sealedLength(plainBytes: number): number {
  return plainBytes + OVERHEAD_BYTES * chunkCount(plainBytes);
}

/** The plaintext length of `storedBytes` bytes of chunks; `undefined` when no run has that length. */
export function openedLength(storedBytes: number): number | undefined {
  const full = Math.floor(storedBytes / BOX_BYTES);
  const rest = storedBytes % BOX_BYTES;
  if (rest === 0) return full * CHUNK_BYTES;
  if (rest <= OVERHEAD_BYTES) return undefined;
  return full * CHUNK_BYTES + rest - OVERHEAD_BYTES;
}

/** Adds `count` to a nonce, little-endian with carry (rclone's `nonce.increment`, `count` times). */
export function advanceNonce(nonce: Uint8Array, count: number): void {
  let carry = count;
  for (let i = 0; i < nonce.length && carry > 0; i++) {
    const v = nonce[i]! + (carry % 256);
    nonce[i] = v & 0xff;
    carry = Math.floor(carry / 256) + (v >> 8);
  }
}

/**
 * Seals `input` chunk by chunk into `output` (exactly {@link sealedLength} bytes), the first
 * chunk under `nonce`. `nonce` is not changed; neither array may be touched until this settles.
 */
export async function sealChunks(
  input: Uint8Array,
  nonce: Uint8Array,
  key: Uint8Array,
  output: Uint8Array,
): Promise<void> {
  if (output.length !== sealedLength(input.length)) {
    throw new Error(`bug: sealChunks needs ${sealedLength(input.length)} output bytes, not ${output.length}`);
  }
  if (native !== undefined) {
    if (input.length < THREAD_POOL_FROM_BYTES) native.sealChunks(key, nonce, input, output);
    else await native.sealChunksAsync(key, nonce, input, output);
    return;
  }
  const n = Uint8Array.from(nonce);
  for (let at = 0, out = 0; at < input.length; at += CHUNK_BYTES, out += BOX_BYTES) {
    output.set(seal(input.subarray(at, at + CHUNK_BYTES), n, key), out);
    advanceNonce(n, 1);
  }
}

/**
 * Opens consecutive boxes of `input` into `output` (exactly {@link openedLength} bytes), the
 * first under `nonce`: -1 when every box authenticated, else the index of the first that did
 * not (`output` then holds no plaintext of it or of any later box).
 */
export async function openChunks(
  input: Uint8Array,
  nonce: Uint8Array,
  key: Uint8Array,
  output: Uint8Array,
): Promise<number> {
  if (output.length !== openedLength(input.length)) {
    throw new Error(`bug: openChunks got ${input.length} stored bytes and ${output.length} output bytes`);
  }
  if (native !== undefined) {
    return input.length < THREAD_POOL_FROM_BYTES
      ? native.openChunks(key, nonce, input, output)
      : native.openChunksAsync(key, nonce, input, output);
  }
  const n = Uint8Array.from(nonce);
  for (let at = 0, out = 0, i = 0; at < input.length; at += BOX_BYTES, out += CHUNK_BYTES, i++) {
    const plain = open(input.subarray(at, at + BOX_BYTES), n, key);
    if (plain === undefined) return i;
    output.set(plain, out);
    advanceNonce(n, 1);
  }
  return -1;
}
