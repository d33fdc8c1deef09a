/**
 * @module mirrors/sftp/ssh2-module
 * Loads the `ssh2` package with a pooled `randomFillSync`.
 *
 * ssh2 fills every outgoing packet's padding (4 to 19 bytes) with `crypto.randomFillSync`: one
 * call into OpenSSL, with its argument checks and job object, per SSH packet. A first sync of
 * 10,000 files sends about 80,000 packets, and those calls cost 0.1 to 0.3 s of the main
 * thread. ssh2 takes the function from Node's crypto module once, when it loads; so while it
 * loads (synchronously, nothing else runs meanwhile) the module holds {@link pooledRandomFill},
 * which serves small requests from a 64 KiB block filled by the real function: the same CSPRNG
 * bytes, each handed out once, fetched in bulk (as Node's own `randomUUID` does with its
 * entropy cache). The crypto module gets its own function back before this module returns.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** Node's `crypto.randomFillSync`, as ssh2 calls it. */
type RandomFill = <T extends NodeJS.ArrayBufferView>(buffer: T, offset?: number, size?: number) => T;

/** Bytes fetched from the CSPRNG at once. */
const POOL_BYTES = 64 * 1024;
/** Larger requests go to the real function directly. */
const SMALL_REQUEST = 256;

/**
 * A `randomFillSync` that serves requests of up to {@link SMALL_REQUEST} bytes into a
 * `Uint8Array` from a pool refilled by `real`; every other call (other views, bad arguments,
 * which `real` rejects with its usual errors) goes to `real` unchanged.
 */
export function pooledRandomFill(real: RandomFill): RandomFill {
  const pool = Buffer.allocUnsafeSlow(POOL_BYTES);
  let used = POOL_BYTES;
  return function randomFillSync<T extends NodeJS.ArrayBufferView>(buffer: T, offset = 0, size?: number): T {
    const length = buffer instanceof Uint8Array ? buffer.length : -1;
    const n = size ?? length - offset;
    if (
      length < 0 ||
      !Number.isSafeInteger(offset) ||
      !Number.isSafeInteger(n) ||
      offset < 0 ||
      n < 0 ||
      n > SMALL_REQUEST ||
      offset + n > length
    ) {
      return size === undefined ? real(buffer, offset) : real(buffer, offset, size);
    }
    if (used + n > POOL_BYTES) {
      real(pool);
      used = 0;
    }
    (buffer as unknown as Uint8Array).set(pool.subarray(used, used + n), offset);
    used += n;
    return buffer;
  };
}

/** Node's crypto module object, whose `randomFillSync` ssh2 reads when it loads. */
const cryptoModule = require('node:crypto') as { randomFillSync: RandomFill };

function loadSsh2(): typeof import('ssh2') {
  const real = cryptoModule.randomFillSync;
  cryptoModule.randomFillSync = pooledRandomFill(real);
  try {
    return require('ssh2') as typeof import('ssh2');
  } finally {
    cryptoModule.randomFillSync = real;
  }
}

/** The `ssh2` package (CommonJS: its exports as one object). */
export const ssh2 = loadSsh2();
