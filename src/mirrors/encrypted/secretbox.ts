/**
 * @module mirrors/encrypted/secretbox
 * NaCl `crypto_secretbox` (XSalsa20-Poly1305), the cipher of rclone's file contents. Node's
 * crypto has neither Salsa20 nor a stand-alone Poly1305, so both are written out here, after
 * the reference descriptions (Bernstein: "Salsa20 specification", "Extending the Salsa20 nonce",
 * "The Poly1305-AES message-authentication code"); the tests check them against published
 * vectors and, byte for byte, against files written by the real `rclone`.
 *
 * Layout of a box, as in NaCl and Go's `golang.org/x/crypto/nacl/secretbox`: a 16-byte
 * Poly1305 tag, then the ciphertext (as long as the message). The one-time Poly1305 key is the
 * first 32 bytes of the XSalsa20 key stream; the message is XORed with the stream from byte 32.
 */

/** Bytes of a secretbox key. */
export const KEY_BYTES = 32;
/** Bytes of a secretbox nonce. */
export const NONCE_BYTES = 24;
/** Bytes a box adds to its message (the Poly1305 tag). */
export const OVERHEAD_BYTES = 16;

const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574]; // "expand 32-byte k"

if (new Uint8Array(new Uint32Array([1]).buffer)[0] !== 1) {
  // The key stream is produced through a Uint32Array view of bytes.
  throw new Error('bug: secretbox needs a little-endian machine');
}

function rotl(x: number, n: number): number {
  return (x << n) | (x >>> (32 - n));
}

/** Reads a little-endian 32-bit word. */
function u32(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

/**
 * The Salsa20 double-round function over `s` (16 words), 20 rounds. With `feedForward` the
 * input is added to the result (Salsa20's block function); without, the raw state is left
 * (HSalsa20). Writes into `out`.
 */
function salsaCore(out: Uint32Array, s: Uint32Array, feedForward: boolean): void {
  let x0 = s[0]!,
    x1 = s[1]!,
    x2 = s[2]!,
    x3 = s[3]!,
    x4 = s[4]!,
    x5 = s[5]!,
    x6 = s[6]!,
    x7 = s[7]!,
    x8 = s[8]!,
    x9 = s[9]!,
    x10 = s[10]!,
    x11 = s[11]!,
    x12 = s[12]!,
    x13 = s[13]!,
    x14 = s[14]!,
    x15 = s[15]!;
  for (let i = 0; i < 20; i += 2) {
    // Column round.
    x4 ^= rotl((x0 + x12) | 0, 7);
    x8 ^= rotl((x4 + x0) | 0, 9);
    x12 ^= rotl((x8 + x4) | 0, 13);
    x0 ^= rotl((x12 + x8) | 0, 18);
    x9 ^= rotl((x5 + x1) | 0, 7);
    x13 ^= rotl((x9 + x5) | 0, 9);
    x1 ^= rotl((x13 + x9) | 0, 13);
    x5 ^= rotl((x1 + x13) | 0, 18);
    x14 ^= rotl((x10 + x6) | 0, 7);
    x2 ^= rotl((x14 + x10) | 0, 9);
    x6 ^= rotl((x2 + x14) | 0, 13);
    x10 ^= rotl((x6 + x2) | 0, 18);
    x3 ^= rotl((x15 + x11) | 0, 7);
    x7 ^= rotl((x3 + x15) | 0, 9);
    x11 ^= rotl((x7 + x3) | 0, 13);
    x15 ^= rotl((x11 + x7) | 0, 18);
    // Row round.
    x1 ^= rotl((x0 + x3) | 0, 7);
    x2 ^= rotl((x1 + x0) | 0, 9);
    x3 ^= rotl((x2 + x1) | 0, 13);
    x0 ^= rotl((x3 + x2) | 0, 18);
    x6 ^= rotl((x5 + x4) | 0, 7);
    x7 ^= rotl((x6 + x5) | 0, 9);
    x4 ^= rotl((x7 + x6) | 0, 13);
    x5 ^= rotl((x4 + x7) | 0, 18);
    x11 ^= rotl((x10 + x9) | 0, 7);
    x8 ^= rotl((x11 + x10) | 0, 9);
    x9 ^= rotl((x8 + x11) | 0, 13);
    x10 ^= rotl((x9 + x8) | 0, 18);
    x12 ^= rotl((x15 + x14) | 0, 7);
    x13 ^= rotl((x12 + x15) | 0, 9);
    x14 ^= rotl((x13 + x12) | 0, 13);
    x15 ^= rotl((x14 + x13) | 0, 18);
  }
  if (feedForward) {
    out[0] = x0 + s[0]!;
    out[1] = x1 + s[1]!;
    out[2] = x2 + s[2]!;
    out[3] = x3 + s[3]!;
    out[4] = x4 + s[4]!;
    out[5] = x5 + s[5]!;
    out[6] = x6 + s[6]!;
    out[7] = x7 + s[7]!;
    out[8] = x8 + s[8]!;
    out[9] = x9 + s[9]!;
    out[10] = x10 + s[10]!;
    out[11] = x11 + s[11]!;
    out[12] = x12 + s[12]!;
    out[13] = x13 + s[13]!;
    out[14] = x14 + s[14]!;
    out[15] = x15 + s[15]!;
  } else {
    out[0] = x0;
    out[1] = x5;
    out[2] = x10;
    out[3] = x15;
    out[4] = x6;
    out[5] = x7;
    out[6] = x8;
    out[7] = x9;
  }
}

/** The Salsa20 input state for `key` (32 bytes) and 16 bytes of nonce/counter material. */
function salsaState(key: Uint8Array, input: Uint8Array): Uint32Array {
  const s = new Uint32Array(16);
  s[0] = SIGMA[0]!;
  s[5] = SIGMA[1]!;
  s[10] = SIGMA[2]!;
  s[15] = SIGMA[3]!;
  for (let i = 0; i < 4; i++) {
    s[1 + i] = u32(key, 4 * i);
    s[11 + i] = u32(key, 16 + 4 * i);
    s[6 + i] = u32(input, 4 * i);
  }
  return s;
}

/** HSalsa20: derives XSalsa20's sub-key from the key and the first 16 nonce bytes. */
export function hsalsa20(key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  const out = new Uint32Array(8);
  salsaCore(out, salsaState(key, nonce16), false);
  return new Uint8Array(out.buffer);
}

/**
 * XORs `data` with the XSalsa20 key stream of (`key`, `nonce`), skipping the stream's first
 * `skip` bytes (a multiple of 64 or less than 64), into `out` (which may be `data`).
 */
export function xsalsa20Xor(
  key: Uint8Array,
  nonce: Uint8Array,
  data: Uint8Array,
  out: Uint8Array,
  skip = 0,
): void {
  const sub = hsalsa20(key, nonce.subarray(0, 16));
  const input = new Uint8Array(16);
  input.set(nonce.subarray(16, 24), 0);
  const s = salsaState(sub, input);
  const block = new Uint32Array(16);
  const bytes = new Uint8Array(block.buffer);
  let pos = -skip;
  while (pos < data.length) {
    salsaCore(block, s, true);
    // Next block: the 64-bit little-endian counter in words 8 and 9.
    s[8] = (s[8]! + 1) >>> 0;
    if (s[8] === 0) s[9] = (s[9]! + 1) >>> 0;
    const start = Math.max(0, -pos);
    const end = Math.min(64, data.length - pos);
    for (let i = start; i < end; i++) out[pos + i] = data[pos + i]! ^ bytes[i]!;
    pos += 64;
  }
}

/** The first 32 bytes of the XSalsa20 stream: the one-time Poly1305 key of a box. */
function polyKey(key: Uint8Array, nonce: Uint8Array): Uint8Array {
  const k = new Uint8Array(32);
  xsalsa20Xor(key, nonce, k, k);
  return k;
}

/**
 * Poly1305 of `msg` under the one-time `key` (32 bytes), in 13-bit limbs (10 × 13 = 130 bits)
 * so every product and sum stays an exact integer in a double.
 */
export function poly1305(key: Uint8Array, msg: Uint8Array): Uint8Array {
  const w = (b: Uint8Array, i: number): number => b[i]! | (b[i + 1]! << 8);
  // r, clamped: r &= 0x0ffffffc0ffffffc0ffffffc0fffffff.
  const rb = key.slice(0, 16);
  rb[3]! &= 15;
  rb[7]! &= 15;
  rb[11]! &= 15;
  rb[15]! &= 15;
  rb[4]! &= 252;
  rb[8]! &= 252;
  rb[12]! &= 252;
  const r = limbs(rb, 0, 0);
  const r0 = r[0]!,
    r1 = r[1]!,
    r2 = r[2]!,
    r3 = r[3]!,
    r4 = r[4]!,
    r5 = r[5]!,
    r6 = r[6]!,
    r7 = r[7]!,
    r8 = r[8]!,
    r9 = r[9]!;
  // s_i = 5·r_i: limb i+j >= 10 of a product wraps around times 5 (2^130 ≡ 5).
  const s1 = 5 * r1,
    s2 = 5 * r2,
    s3 = 5 * r3,
    s4 = 5 * r4,
    s5 = 5 * r5,
    s6 = 5 * r6,
    s7 = 5 * r7,
    s8 = 5 * r8,
    s9 = 5 * r9;
  let h0 = 0,
    h1 = 0,
    h2 = 0,
    h3 = 0,
    h4 = 0,
    h5 = 0,
    h6 = 0,
    h7 = 0,
    h8 = 0,
    h9 = 0;
  const last = new Uint8Array(16);
  for (let off = 0; off < msg.length; off += 16) {
    let src = msg;
    let o = off;
    let hibit = 1 << 11;
    if (off + 16 > msg.length) {
      // The last partial block: a 1 byte after the message, zeros after that, no high bit.
      last.set(msg.subarray(off));
      last[msg.length - off] = 1;
      src = last;
      o = 0;
      hibit = 0;
    }
    const t0 = src[o]! | (src[o + 1]! << 8),
      t1 = src[o + 2]! | (src[o + 3]! << 8),
      t2 = src[o + 4]! | (src[o + 5]! << 8),
      t3 = src[o + 6]! | (src[o + 7]! << 8),
      t4 = src[o + 8]! | (src[o + 9]! << 8),
      t5 = src[o + 10]! | (src[o + 11]! << 8),
      t6 = src[o + 12]! | (src[o + 13]! << 8),
      t7 = src[o + 14]! | (src[o + 15]! << 8);
    h0 += t0 & 0x1fff;
    h1 += ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
    h2 += ((t1 >>> 10) | (t2 << 6)) & 0x1fff;
    h3 += ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
    h4 += ((t3 >>> 4) | (t4 << 12)) & 0x1fff;
    h5 += (t4 >>> 1) & 0x1fff;
    h6 += ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
    h7 += ((t5 >>> 11) | (t6 << 5)) & 0x1fff;
    h8 += ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
    h9 += (t7 >>> 5) | hibit;
    // d = h·r, limb by limb. Every limb of h is below 2^14.2 and of s below 2^16: each sum of
    // ten products stays below 2^34, an exact integer in a double.
    let d0 =
      h0 * r0 + h1 * s9 + h2 * s8 + h3 * s7 + h4 * s6 + h5 * s5 + h6 * s4 + h7 * s3 + h8 * s2 + h9 * s1;
    let d1 =
      h0 * r1 + h1 * r0 + h2 * s9 + h3 * s8 + h4 * s7 + h5 * s6 + h6 * s5 + h7 * s4 + h8 * s3 + h9 * s2;
    let d2 =
      h0 * r2 + h1 * r1 + h2 * r0 + h3 * s9 + h4 * s8 + h5 * s7 + h6 * s6 + h7 * s5 + h8 * s4 + h9 * s3;
    let d3 =
      h0 * r3 + h1 * r2 + h2 * r1 + h3 * r0 + h4 * s9 + h5 * s8 + h6 * s7 + h7 * s6 + h8 * s5 + h9 * s4;
    let d4 =
      h0 * r4 + h1 * r3 + h2 * r2 + h3 * r1 + h4 * r0 + h5 * s9 + h6 * s8 + h7 * s7 + h8 * s6 + h9 * s5;
    let d5 =
      h0 * r5 + h1 * r4 + h2 * r3 + h3 * r2 + h4 * r1 + h5 * r0 + h6 * s9 + h7 * s8 + h8 * s7 + h9 * s6;
    let d6 =
      h0 * r6 + h1 * r5 + h2 * r4 + h3 * r3 + h4 * r2 + h5 * r1 + h6 * r0 + h7 * s9 + h8 * s8 + h9 * s7;
    let d7 =
      h0 * r7 + h1 * r6 + h2 * r5 + h3 * r4 + h4 * r3 + h5 * r2 + h6 * r1 + h7 * r0 + h8 * s9 + h9 * s8;
    let d8 =
      h0 * r8 + h1 * r7 + h2 * r6 + h3 * r5 + h4 * r4 + h5 * r3 + h6 * r2 + h7 * r1 + h8 * r0 + h9 * s9;
    let d9 =
      h0 * r9 + h1 * r8 + h2 * r7 + h3 * r6 + h4 * r5 + h5 * r4 + h6 * r3 + h7 * r2 + h8 * r1 + h9 * r0;
    // Carry (the low 13 bits of an integer below 2^53 survive `& 0x1fff`).
    let c = (d0 - (h0 = d0 & 0x1fff)) / 8192;
    d1 += c;
    c = (d1 - (h1 = d1 & 0x1fff)) / 8192;
    d2 += c;
    c = (d2 - (h2 = d2 & 0x1fff)) / 8192;
    d3 += c;
    c = (d3 - (h3 = d3 & 0x1fff)) / 8192;
    d4 += c;
    c = (d4 - (h4 = d4 & 0x1fff)) / 8192;
    d5 += c;
    c = (d5 - (h5 = d5 & 0x1fff)) / 8192;
    d6 += c;
    c = (d6 - (h6 = d6 & 0x1fff)) / 8192;
    d7 += c;
    c = (d7 - (h7 = d7 & 0x1fff)) / 8192;
    d8 += c;
    c = (d8 - (h8 = d8 & 0x1fff)) / 8192;
    d9 += c;
    c = (d9 - (h9 = d9 & 0x1fff)) / 8192;
    // At this point every limb is below 2^13 and the carry c stands for c·2^130 ≡ 5c.
    d0 = h0 + 5 * c;
    c = (d0 - (h0 = d0 & 0x1fff)) / 8192;
    h1 += c;
  }
  const h = new Float64Array([h0, h1, h2, h3, h4, h5, h6, h7, h8, h9]);
  // Full carry, twice, so every limb is below 2^13 and h < 2^130.
  for (let pass = 0; pass < 2; pass++) {
    let c = 0;
    for (let i = 0; i < 10; i++) {
      const v = h[i]! + c;
      h[i] = v % 8192;
      c = (v - h[i]!) / 8192;
    }
    h[0] = h[0]! + 5 * c;
  }
  {
    let c = 0;
    for (let i = 0; i < 10; i++) {
      const v = h[i]! + c;
      h[i] = v % 8192;
      c = (v - h[i]!) / 8192;
    }
  }
  // g = h + 5 - 2^130; take it when it does not go negative (h >= p).
  const g = new Float64Array(10);
  let c = 5;
  for (let i = 0; i < 10; i++) {
    const v = h[i]! + c;
    g[i] = v % 8192;
    c = (v - g[i]!) / 8192;
  }
  const final = c >= 1 ? g : h; // a carry out of bit 130 means h + 5 >= 2^130, i.e. h >= p
  const f = Array.from(final, (x) => x | 0);
  const words = [
    (f[0]! | (f[1]! << 13)) & 0xffff,
    ((f[1]! >>> 3) | (f[2]! << 10)) & 0xffff,
    ((f[2]! >>> 6) | (f[3]! << 7)) & 0xffff,
    ((f[3]! >>> 9) | (f[4]! << 4)) & 0xffff,
    ((f[4]! >>> 12) | (f[5]! << 1) | (f[6]! << 14)) & 0xffff,
    ((f[6]! >>> 2) | (f[7]! << 11)) & 0xffff,
    ((f[7]! >>> 5) | (f[8]! << 8)) & 0xffff,
    ((f[8]! >>> 8) | (f[9]! << 5)) & 0xffff,
  ];
  const tag = new Uint8Array(16);
  let carry = 0;
  for (let i = 0; i < 8; i++) {
    const v = words[i]! + w(key, 16 + 2 * i) + carry;
    tag[2 * i] = v & 0xff;
    tag[2 * i + 1] = (v >>> 8) & 0xff;
    carry = v >>> 16;
  }
  return tag;
}

/** 16 little-endian bytes at `off` as ten 13-bit limbs, plus `hibit` in the top limb. */
function limbs(b: Uint8Array, off: number, hibit: number): Float64Array {
  const t = (i: number): number => b[off + 2 * i]! | (b[off + 2 * i + 1]! << 8);
  const t0 = t(0),
    t1 = t(1),
    t2 = t(2),
    t3 = t(3),
    t4 = t(4),
    t5 = t(5),
    t6 = t(6),
    t7 = t(7);
  const out = new Float64Array(10);
  out[0] = t0 & 0x1fff;
  out[1] = ((t0 >>> 13) | (t1 << 3)) & 0x1fff;
  out[2] = ((t1 >>> 10) | (t2 << 6)) & 0x1fff;
  out[3] = ((t2 >>> 7) | (t3 << 9)) & 0x1fff;
  out[4] = ((t3 >>> 4) | (t4 << 12)) & 0x1fff;
  out[5] = (t4 >>> 1) & 0x1fff;
  out[6] = ((t4 >>> 14) | (t5 << 2)) & 0x1fff;
  out[7] = ((t5 >>> 11) | (t6 << 5)) & 0x1fff;
  out[8] = ((t6 >>> 8) | (t7 << 8)) & 0x1fff;
  out[9] = (t7 >>> 5) | hibit;
  return out;
}

/** Constant-time comparison of two 16-byte tags. */
function sameTag(a: Uint8Array, b: Uint8Array): boolean {
  let diff = 0;
  for (let i = 0; i < 16; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

/** Seals `message` into a box (tag + ciphertext, {@link OVERHEAD_BYTES} longer). */
export function seal(message: Uint8Array, nonce: Uint8Array, key: Uint8Array): Buffer {
  const box = Buffer.allocUnsafe(message.length + OVERHEAD_BYTES);
  const body = box.subarray(OVERHEAD_BYTES);
  xsalsa20Xor(key, nonce, message, body, 32);
  box.set(poly1305(polyKey(key, nonce), body), 0);
  return box;
}

/** Opens a box; `undefined` when it fails authentication (altered, or another key or nonce). */
export function open(box: Uint8Array, nonce: Uint8Array, key: Uint8Array): Buffer | undefined {
  if (box.length < OVERHEAD_BYTES) return undefined;
  const body = box.subarray(OVERHEAD_BYTES);
  if (!sameTag(poly1305(polyKey(key, nonce), body), box.subarray(0, OVERHEAD_BYTES))) return undefined;
  const message = Buffer.allocUnsafe(body.length);
  xsalsa20Xor(key, nonce, body, message, 32);
  return message;
}
