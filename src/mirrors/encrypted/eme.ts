/**
 * @module mirrors/encrypted/eme
 * EME (ECB-Mix-ECB, Halevi and Rogaway, "A Parallelizable Enciphering Mode", 2003) over
 * AES-256: the wide-block cipher rclone's `crypt` uses for file names (Go package
 * `github.com/rfjakob/eme`). Deterministic and length-preserving on whole 16-byte blocks, with
 * a 16-byte tweak; every output byte depends on every input byte.
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';

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

/** AES-256 on whole blocks, ECB (each block on its own). */
function aes(key: Uint8Array, data: Buffer, encrypt: boolean): Buffer {
  const c = encrypt ? createCipheriv('aes-256-ecb', key, null) : createDecipheriv('aes-256-ecb', key, null);
  c.setAutoPadding(false);
  return Buffer.concat([c.update(data), c.final()]);
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
  // L_j = 2^(j+1) · AES-enc(K; 0), always with the forward cipher.
  const table: Buffer[] = [];
  let l = aes(key, Buffer.alloc(BLOCK), true);
  for (let j = 0; j < m; j++) table.push((l = double(l)));
  const block = (buf: Uint8Array, j: number): Uint8Array => buf.subarray(j * BLOCK, (j + 1) * BLOCK);

  // PPP_j = AES(K; P_j xor L_j)
  const pp = Buffer.alloc(data.length);
  for (let j = 0; j < m; j++) pp.set(xor(block(data, j), table[j]!), j * BLOCK);
  const c = aes(key, pp, encrypt);
  // MP = (xor of every PPP_j) xor T; MC = AES(K; MP); M = MP xor MC.
  let mp = xor(block(c, 0), tweak);
  for (let j = 1; j < m; j++) mp = xor(mp, block(c, j));
  const mc = aes(key, mp, encrypt);
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
  const out = aes(key, c, encrypt);
  for (let j = 0; j < m; j++) out.set(xor(block(out, j), table[j]!), j * BLOCK);
  return out;
}
