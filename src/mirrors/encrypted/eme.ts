/**
 * @module mirrors/encrypted/eme
 * EME (ECB-Mix-ECB, Halevi and Rogaway, "A Parallelizable Enciphering Mode", 2003) over
 * AES-256: the wide-block cipher rclone's `crypt` uses for file names (Go package
 * `github.com/rfjakob/eme`). Deterministic and length-preserving on whole 16-byte blocks, with
 * a 16-byte tweak; every output byte depends on every input byte.
 */
import { type Cipher, createCipheriv, createDecipheriv, type Decipher } from 'node:crypto';

const BLOCK = 16;

/** Doubling in GF(2^128) as EME defines it (little-endian bit order, reduction by 0x87). */
function double(input: Uint8Array): Buffer {
  const out = Buffer.alloc(BLOCK);
  out[0] = (input[0]! << 1) & 0xff;
  if (input[15]! >= 128) out[0] = out[0]! ^ 135;
  for (let j = 1; j < BLOCK; j++) out[j] = ((input[j]! << 1) & 0xff) | (input[j - 1]! >= 128 ? 1 : 0);
  return out;
}

function xor(a: Uint8Array, b: Uint8Array): Buffer {
  const out = Buffer.alloc(BLOCK);
  for (let i = 0; i < BLOCK; i++) out[i] = a[i]! ^ b[i]!;
  return out;
}

/** A key's long-lived AES-256-ECB objects and its table of L_j, made once per key. */
interface KeyState {
  readonly encipher: Cipher;
  readonly decipher: Decipher;
  readonly table: Buffer[];
}

const states = new WeakMap<Uint8Array, KeyState>();

/**
 * The AES objects of `key`. ECB without padding keeps no state between blocks, so one object
 * serves every call (`update` returns exactly the blocks it was given): creating one per call
 * cost more than the names it enciphered.
 */
function stateOf(key: Uint8Array): KeyState {
  let state = states.get(key);
  if (state === undefined) {
    const encipher = createCipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    const decipher = createDecipheriv('aes-256-ecb', key, null).setAutoPadding(false);
    state = { encipher, decipher, table: [] };
    states.set(key, state);
  }
  return state;
}

/** AES-256 on whole blocks, ECB (each block on its own). */
function aes(state: KeyState, data: Buffer, encrypt: boolean): Buffer {
  const out = (encrypt ? state.encipher : state.decipher).update(data);
  if (out.length !== data.length) throw new Error('bug: AES-ECB held back a block');
  return out;
}

/** L_j = 2^(j+1) · AES-enc(K; 0) for j < m, always with the forward cipher. */
function tableOf(state: KeyState, m: number): Buffer[] {
  const table = state.table;
  if (table.length < m) {
    let l = table.length === 0 ? aes(state, Buffer.alloc(BLOCK), true) : table[table.length - 1]!;
    while (table.length < m) table.push((l = double(l)));
  }
  return table;
}

/**
 * Enciphers (`encrypt`) or deciphers `data` (a whole number of 16-byte blocks, 1 to 128 of them)
 * under the AES-256 `key` and the 16-byte `tweak`.
 */
export function emeTransform(key: Uint8Array, tweak: Uint8Array, data: Uint8Array, encrypt: boolean): Buffer {
  const m = data.length / BLOCK;
  if (!Number.isInteger(m) || m < 1 || m > 128) {
    throw new Error(`bug: EME needs 1 to 128 whole blocks, got ${data.length} bytes`);
  }
  const state = stateOf(key);
  const table = tableOf(state, m);
  const block = (buf: Uint8Array, j: number): Uint8Array => buf.subarray(j * BLOCK, (j + 1) * BLOCK);

  // PPP_j = AES(K; P_j xor L_j)
  const pp = Buffer.alloc(data.length);
  for (let j = 0; j < m; j++) pp.set(xor(block(data, j), table[j]!), j * BLOCK);
  const c = aes(state, pp, encrypt);
  // MP = (xor of every PPP_j) xor T; MC = AES(K; MP); M = MP xor MC.
  let mp = xor(block(c, 0), tweak);
  for (let j = 1; j < m; j++) mp = xor(mp, block(c, j));
  const mc = aes(state, mp, encrypt);
  let mm = xor(mp, mc);
  // CCC_j = PPP_j xor 2^(j-1)·M for j >= 1.
  for (let j = 1; j < m; j++) {
    mm = double(mm);
    c.set(xor(block(c, j), mm), j * BLOCK);
  }
  // CCC_1 = (xor of CCC_j, j >= 1) xor T xor MC.
  let ccc1 = xor(mc, tweak);
  for (let j = 1; j < m; j++) ccc1 = xor(ccc1, block(c, j));
  c.set(ccc1, 0);
  // C_j = AES(K; CCC_j) xor L_j.
  const out = aes(state, c, encrypt);
  for (let j = 0; j < m; j++) out.set(xor(block(out, j), table[j]!), j * BLOCK);
  return out;
}
