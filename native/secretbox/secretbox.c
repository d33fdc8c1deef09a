/*
 * Satchel's XSalsa20-Poly1305 addon (NaCl crypto_secretbox; Node-API only, no dependency).
 *
 * Why it exists: rclone's crypt format seals file contents in 64 KiB XSalsa20-Poly1305 boxes.
 * Node's crypto has neither Salsa20 nor a stand-alone Poly1305, and the pure-JavaScript
 * version (src/mirrors/encrypted/secretbox.ts) runs at ~36 MB/s on the main thread. This addon
 * does the same arithmetic in C, several 64 KiB chunks per call, on libuv's thread pool, so
 * several files are sealed at once on several cores while the main thread does the I/O.
 *
 * Written from the algorithm definitions (D. J. Bernstein: "Salsa20 specification",
 * "Extending the Salsa20 nonce" (HSalsa20/XSalsa20), "The Poly1305-AES message-authentication
 * code"; box layout as in NaCl: a 16-byte tag, then the ciphertext; the one-time Poly1305 key
 * is the first 32 bytes of the key stream and the message is XORed with the stream from byte
 * 32). Salsa20 runs 4, 8 or 16 blocks at once in generic vector lanes (SSE2 / NEON, AVX2 or
 * AVX-512 where the processor has them, picked at load; no intrinsics); Poly1305 uses five
 * 26-bit limbs and 64-bit products. The JavaScript tests compare it byte for byte with the
 * JavaScript implementation, with published vectors and with rclone.
 *
 * JavaScript API (see src/mirrors/encrypted/native-secretbox.ts for the typed wrapper). `key`
 * is 32 bytes, `nonce` 24; boxes are chained as in rclone: chunk i uses nonce + i (little
 * endian, with carry), every chunk but the last holds exactly 65536 message bytes.
 *   seal(key, nonce, message)                 -> Buffer (tag + ciphertext), one box
 *   open(key, nonce, box)                     -> Buffer, or undefined when it does not authenticate
 *   sealChunks(key, nonce, input, output)     -> undefined; output.length must be
 *                                                input.length + 16 * ceil(input.length / 65536)
 *   openChunks(key, nonce, input, output)     -> -1, or the index of the first chunk that does not
 *                                                authenticate (output then holds no plaintext of it)
 *   sealFileAsync(path, offset, max, key, nonce, output)
 *                                             -> a Promise of the plaintext bytes read: reads up to
 *                                                `max` bytes of the file from `offset` and seals them
 *                                                into `output` (which holds at least max bytes
 *                                                sealed), on the thread pool; rejects with a
 *                                                Node-style system error (`code`, `syscall`, `path`)
 *   sealFile (same arguments)                 -> the same, on the calling thread (small files: less
 *                                                than a hand-off to the thread pool costs)
 *   sealFile/sealFileAsync(..., hash)         -> also feed the sealed bytes to `hash`, a SHA-256
 *                                                context from sha256Start (untouched until settled)
 *   sha256Start() / sha256Update(ctx, data) / sha256Digest(ctx) -> SHA-256 (FIPS 180-4; the x86
 *                                                SHA extensions where present), digest a Buffer
 *   lanes                                     -> how many Salsa20 blocks run at once here (4, 8, 16)
 *   sealChunksAsync / openChunksAsync (same arguments) -> a Promise of the same result, computed
 *                                                on the thread pool; input and output must not be
 *                                                touched until it settles.
 *   sealFileTo(src, temp, key, nonce, expectedSize, mode, mtimeMs, flush, out, digest)
 *                                             -> undefined: a whole encrypted copy. Creates `temp`
 *                                                (O_EXCL), writes rclone's header and the boxes of
 *                                                `src` (up to expectedSize + 1 bytes: one more tells
 *                                                a file that grew), sets mode (unless negative; +2^20:
 *                                                group and other bits capped by the source's) and
 *                                                mtime, fsyncs when `flush`; fills `digest` (32
 *                                                bytes; an empty one: no hash) with the SHA-256 of
 *                                                the copy and `out` (8 doubles): plaintext bytes
 *                                                read, the source's size and mtimeMs after, 1 when
 *                                                its fstat changed while it was read, the copy's
 *                                                size, mtimeMs, mode, inode.
 *                                                On failure `temp` is removed and a Node-style
 *                                                system error names `src` or `temp`
 *   sealFileToAsync (same arguments)          -> a Promise of the same, on the thread pool
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <node_api.h>

#include "node-args.h"
#include "node-errors.h"
#include "staged-file.h"

#define KEY_BYTES 32
#define NONCE_BYTES 24
#define TAG_BYTES 16
#define CHUNK_BYTES 65536u

/* ---- byte order helpers ------------------------------------------------------------------- */

static inline uint32_t load32_le(const uint8_t *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void store32_le(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
  p[2] = (uint8_t)(v >> 16);
  p[3] = (uint8_t)(v >> 24);
}

/* Overwrites secrets in a way the compiler may not drop as a dead store. */
static inline void wipe(void *p, size_t n) {
#if defined(__GNUC__)
  memset(p, 0, n);
  __asm__ __volatile__("" : : "r"(p) : "memory");
#else
  volatile uint8_t *v = (volatile uint8_t *)p;
  while (n--) *v++ = 0;
#endif
}

/* ---- Salsa20 ------------------------------------------------------------------------------ */

#define ROTL32(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

/*
 * The 20-round Salsa20 permutation on x[0..15] (ten double rounds: a column round, then a row
 * round), as in the specification's quarterround/rowround/columnround. Written as a macro so
 * the same text serves scalar words and vector lanes.
 */
#define SALSA20_ROUNDS(x)                                                                       \
  do {                                                                                          \
    for (int round_ = 0; round_ < 20; round_ += 2) {                                            \
      x[4] ^= ROTL32(x[0] + x[12], 7);                                                          \
      x[8] ^= ROTL32(x[4] + x[0], 9);                                                           \
      x[12] ^= ROTL32(x[8] + x[4], 13);                                                         \
      x[0] ^= ROTL32(x[12] + x[8], 18);                                                         \
      x[9] ^= ROTL32(x[5] + x[1], 7);                                                           \
      x[13] ^= ROTL32(x[9] + x[5], 9);                                                          \
      x[1] ^= ROTL32(x[13] + x[9], 13);                                                         \
      x[5] ^= ROTL32(x[1] + x[13], 18);                                                         \
      x[14] ^= ROTL32(x[10] + x[6], 7);                                                         \
      x[2] ^= ROTL32(x[14] + x[10], 9);                                                         \
      x[6] ^= ROTL32(x[2] + x[14], 13);                                                         \
      x[10] ^= ROTL32(x[6] + x[2], 18);                                                         \
      x[3] ^= ROTL32(x[15] + x[11], 7);                                                         \
      x[7] ^= ROTL32(x[3] + x[15], 9);                                                          \
      x[11] ^= ROTL32(x[7] + x[3], 13);                                                         \
      x[15] ^= ROTL32(x[11] + x[7], 18);                                                        \
      x[1] ^= ROTL32(x[0] + x[3], 7);                                                           \
      x[2] ^= ROTL32(x[1] + x[0], 9);                                                           \
      x[3] ^= ROTL32(x[2] + x[1], 13);                                                          \
      x[0] ^= ROTL32(x[3] + x[2], 18);                                                          \
      x[6] ^= ROTL32(x[5] + x[4], 7);                                                           \
      x[7] ^= ROTL32(x[6] + x[5], 9);                                                           \
      x[4] ^= ROTL32(x[7] + x[6], 13);                                                          \
      x[5] ^= ROTL32(x[4] + x[7], 18);                                                          \
      x[11] ^= ROTL32(x[10] + x[9], 7);                                                         \
      x[8] ^= ROTL32(x[11] + x[10], 9);                                                         \
      x[9] ^= ROTL32(x[8] + x[11], 13);                                                         \
      x[10] ^= ROTL32(x[9] + x[8], 18);                                                         \
      x[12] ^= ROTL32(x[15] + x[14], 7);                                                        \
      x[13] ^= ROTL32(x[12] + x[15], 9);                                                        \
      x[14] ^= ROTL32(x[13] + x[12], 13);                                                       \
      x[15] ^= ROTL32(x[14] + x[13], 18);                                                       \
    }                                                                                           \
  } while (0)

/* The input matrix for a 32-byte key and 16 bytes of nonce/counter material. */
static void salsa20_state(uint32_t s[16], const uint8_t key[32], const uint8_t in[16]) {
  s[0] = 0x61707865; /* "expand 32-byte k" */
  s[5] = 0x3320646e;
  s[10] = 0x79622d32;
  s[15] = 0x6b206574;
  for (int i = 0; i < 4; i++) {
    s[1 + i] = load32_le(key + 4 * i);
    s[11 + i] = load32_le(key + 16 + 4 * i);
    s[6 + i] = load32_le(in + 4 * i);
  }
}

/* HSalsa20: XSalsa20's sub-key from the key and the first 16 nonce bytes. */
static void hsalsa20(uint8_t out[32], const uint8_t key[32], const uint8_t nonce16[16]) {
  uint32_t x[16];
  salsa20_state(x, key, nonce16);
  SALSA20_ROUNDS(x);
  static const int pick[8] = {0, 5, 10, 15, 6, 7, 8, 9};
  for (int i = 0; i < 8; i++) store32_le(out + 4 * i, x[pick[i]]);
  wipe(x, sizeof x);
}

/* One 64-byte key-stream block of state `s` (the counter is in words 8 and 9). */
static void salsa20_block(uint8_t out[64], const uint32_t s[16]) {
  uint32_t x[16];
  memcpy(x, s, sizeof x);
  SALSA20_ROUNDS(x);
  for (int i = 0; i < 16; i++) store32_le(out + 4 * i, x[i] + s[i]);
  wipe(x, sizeof x);
}

/*
 * out = in XOR `LANES` consecutive key-stream blocks of state `s` (counters c .. c+LANES-1), one
 * block per vector lane, so the rounds run on all of them at once. Defined for 4 lanes
 * (128-bit vectors: SSE2, NEON, or plain code) and, on x86-64, for 8 (AVX2) and 16 (AVX-512)
 * lanes, compiled for those instruction sets and used only where the processor has them.
 */
#define DEFINE_SALSA20_XOR_LANES(NAME, LANES, ATTR)                                            \
  typedef uint32_t NAME##_vec __attribute__((vector_size(4 * (LANES))));                      \
  ATTR static void NAME(uint8_t *out, const uint8_t *in, const uint32_t s[16]) {               \
    NAME##_vec x[16], st[16];                                                                  \
    for (int i = 0; i < 16; i++)                                                               \
      for (int l = 0; l < (LANES); l++) st[i][l] = s[i];                                       \
    uint64_t c = (uint64_t)s[8] | ((uint64_t)s[9] << 32);                                      \
    for (int l = 0; l < (LANES); l++) {                                                        \
      uint64_t cl = c + (uint64_t)l;                                                           \
      st[8][l] = (uint32_t)cl;                                                                 \
      st[9][l] = (uint32_t)(cl >> 32);                                                         \
    }                                                                                          \
    memcpy(x, st, sizeof x);                                                                   \
    SALSA20_ROUNDS(x);                                                                         \
    for (int i = 0; i < 16; i++) x[i] += st[i];                                                \
    for (int l = 0; l < (LANES); l++)                                                          \
      for (int i = 0; i < 16; i++) {                                                           \
        size_t o = 64 * (size_t)l + 4 * (size_t)i;                                             \
        store32_le(out + o, load32_le(in + o) ^ x[i][l]);                                      \
      }                                                                                        \
    wipe(x, sizeof x);                                                                         \
    wipe(st, sizeof st);                                                                       \
  }

DEFINE_SALSA20_XOR_LANES(salsa20_xor4, 4, )
#if defined(__x86_64__) && defined(__GNUC__)
#define HAVE_WIDE_LANES 1
DEFINE_SALSA20_XOR_LANES(salsa20_xor8, 8, __attribute__((target("avx2"))))
DEFINE_SALSA20_XOR_LANES(salsa20_xor16, 16, __attribute__((target("avx512f"))))
#endif

typedef void (*salsa20_xor_lanes_fn)(uint8_t *, const uint8_t *, const uint32_t *);

/* The widest lane count this processor runs, picked once at load (see init). */
static salsa20_xor_lanes_fn wide_xor = salsa20_xor4;
static unsigned wide_lanes = 4;

/* SATCHEL_SECRETBOX_MAX_LANES=4 or 8 caps the choice (the tests run every variant this way). */
static void pick_wide_lanes(void) {
#ifdef HAVE_WIDE_LANES
  const char *cap_text = getenv("SATCHEL_SECRETBOX_MAX_LANES");
  long cap = cap_text != NULL ? strtol(cap_text, NULL, 10) : 16;
  __builtin_cpu_init();
  if (cap >= 16 && __builtin_cpu_supports("avx512f")) {
    wide_xor = salsa20_xor16;
    wide_lanes = 16;
  } else if (cap >= 8 && __builtin_cpu_supports("avx2")) {
    wide_xor = salsa20_xor8;
    wide_lanes = 8;
  }
#endif
}

/* Advances the 64-bit block counter in words 8 and 9 by `n`. */
static inline void salsa20_advance(uint32_t s[16], uint64_t n) {
  uint64_t c = ((uint64_t)s[8] | ((uint64_t)s[9] << 32)) + n;
  s[8] = (uint32_t)c;
  s[9] = (uint32_t)(c >> 32);
}

/* out = in XOR key stream of state `s` from its current counter (block-aligned); advances it. */
static void salsa20_xor(uint8_t *out, const uint8_t *in, size_t len, uint32_t s[16]) {
  const size_t wide = 64 * (size_t)wide_lanes;
  while (len >= wide) {
    wide_xor(out, in, s);
    salsa20_advance(s, wide_lanes);
    out += wide;
    in += wide;
    len -= wide;
  }
  while (len >= 256) {
    salsa20_xor4(out, in, s);
    salsa20_advance(s, 4);
    out += 256;
    in += 256;
    len -= 256;
  }
  uint8_t ks[64];
  while (len > 0) {
    salsa20_block(ks, s);
    salsa20_advance(s, 1);
    size_t n = len < 64 ? len : 64;
    for (size_t i = 0; i < n; i++) out[i] = in[i] ^ ks[i];
    out += n;
    in += n;
    len -= n;
  }
  wipe(ks, sizeof ks);
}

/*
 * XSalsa20 for one box: sets up `s` at block 0 of (key, nonce) and writes the first 64 stream
 * bytes to `block0` (the Poly1305 key is its first 32 bytes); `s` is left at block 1.
 */
static void xsalsa20_start(uint32_t s[16], uint8_t block0[64], const uint8_t key[32],
                           const uint8_t nonce[24]) {
  uint8_t sub[32], in[16];
  hsalsa20(sub, key, nonce);
  memcpy(in, nonce + 16, 8);
  memset(in + 8, 0, 8);
  salsa20_state(s, sub, in);
  salsa20_block(block0, s);
  salsa20_advance(s, 1);
  wipe(sub, sizeof sub);
}

/* ---- Poly1305 ----------------------------------------------------------------------------- */

/*
 * Poly1305 of `msg` under the one-time key `key` (r: bytes 0-15, clamped; s: bytes 16-31).
 * h and r are kept as five 26-bit limbs (2^130 - 5 fits in 130 bits); a product's limbs above
 * 2^130 wrap around multiplied by 5, since 2^130 = 5 (mod p).
 */
static void poly1305(uint8_t tag[16], const uint8_t *msg, size_t len, const uint8_t key[32]) {
  const uint32_t mask = 0x3ffffff;
  uint8_t rb[16];
  memcpy(rb, key, 16);
  rb[3] &= 15;
  rb[7] &= 15;
  rb[11] &= 15;
  rb[15] &= 15;
  rb[4] &= 252;
  rb[8] &= 252;
  rb[12] &= 252;
  const uint32_t r0 = load32_le(rb) & mask;
  const uint32_t r1 = (load32_le(rb + 3) >> 2) & mask;
  const uint32_t r2 = (load32_le(rb + 6) >> 4) & mask;
  const uint32_t r3 = (load32_le(rb + 9) >> 6) & mask;
  const uint32_t r4 = load32_le(rb + 12) >> 8;
  const uint32_t s1 = r1 * 5, s2 = r2 * 5, s3 = r3 * 5, s4 = r4 * 5;
  uint32_t h0 = 0, h1 = 0, h2 = 0, h3 = 0, h4 = 0;
  uint8_t last[16];

  while (len > 0) {
    const uint8_t *m = msg;
    uint32_t hibit = 1u << 24; /* the 2^128 bit of a full 16-byte block */
    size_t n = 16;
    if (len < 16) {
      /* The last partial block: its bytes, then a 1 byte, then zeros; no 2^128 bit. */
      memset(last, 0, sizeof last);
      memcpy(last, msg, len);
      last[len] = 1;
      m = last;
      hibit = 0;
      n = len;
    }
    h0 += load32_le(m) & mask;
    h1 += (load32_le(m + 3) >> 2) & mask;
    h2 += (load32_le(m + 6) >> 4) & mask;
    h3 += (load32_le(m + 9) >> 6) & mask;
    h4 += (load32_le(m + 12) >> 8) | hibit;

    /* h *= r (mod p). Limbs below 2^27 and s below 2^29: each sum of five products < 2^59. */
    uint64_t d0 = (uint64_t)h0 * r0 + (uint64_t)h1 * s4 + (uint64_t)h2 * s3 + (uint64_t)h3 * s2 +
                  (uint64_t)h4 * s1;
    uint64_t d1 = (uint64_t)h0 * r1 + (uint64_t)h1 * r0 + (uint64_t)h2 * s4 + (uint64_t)h3 * s3 +
                  (uint64_t)h4 * s2;
    uint64_t d2 = (uint64_t)h0 * r2 + (uint64_t)h1 * r1 + (uint64_t)h2 * r0 + (uint64_t)h3 * s4 +
                  (uint64_t)h4 * s3;
    uint64_t d3 = (uint64_t)h0 * r3 + (uint64_t)h1 * r2 + (uint64_t)h2 * r1 + (uint64_t)h3 * r0 +
                  (uint64_t)h4 * s4;
    uint64_t d4 = (uint64_t)h0 * r4 + (uint64_t)h1 * r3 + (uint64_t)h2 * r2 + (uint64_t)h3 * r1 +
                  (uint64_t)h4 * r0;

    /* Partial carry: every limb back below 2^26 (h1 may keep a bit more, fine for the next round). */
    uint64_t c;
    c = d0 >> 26;
    h0 = (uint32_t)d0 & mask;
    d1 += c;
    c = d1 >> 26;
    h1 = (uint32_t)d1 & mask;
    d2 += c;
    c = d2 >> 26;
    h2 = (uint32_t)d2 & mask;
    d3 += c;
    c = d3 >> 26;
    h3 = (uint32_t)d3 & mask;
    d4 += c;
    c = d4 >> 26;
    h4 = (uint32_t)d4 & mask;
    c = (uint64_t)h0 + c * 5; /* 2^130 = 5 (mod p) */
    h0 = (uint32_t)c & mask;
    h1 += (uint32_t)(c >> 26);

    msg += n;
    len -= n;
  }

  /* Full carry, so that every limb is below 2^26 and h < 2^130. */
  uint32_t c;
  c = h1 >> 26;
  h1 &= mask;
  h2 += c;
  c = h2 >> 26;
  h2 &= mask;
  h3 += c;
  c = h3 >> 26;
  h3 &= mask;
  h4 += c;
  c = h4 >> 26;
  h4 &= mask;
  h0 += c * 5;
  c = h0 >> 26;
  h0 &= mask;
  h1 += c;

  /* g = h + 5 - 2^130: when it does not go negative, h >= p and g is h mod p. */
  uint32_t g0, g1, g2, g3, g4;
  g0 = h0 + 5;
  c = g0 >> 26;
  g0 &= mask;
  g1 = h1 + c;
  c = g1 >> 26;
  g1 &= mask;
  g2 = h2 + c;
  c = g2 >> 26;
  g2 &= mask;
  g3 = h3 + c;
  c = g3 >> 26;
  g3 &= mask;
  g4 = h4 + c - (1u << 26);
  /* Select without a branch: all ones when g4 did not underflow (top bit clear). */
  uint32_t use_g = (g4 >> 31) - 1;
  h0 = (h0 & ~use_g) | (g0 & use_g);
  h1 = (h1 & ~use_g) | (g1 & use_g);
  h2 = (h2 & ~use_g) | (g2 & use_g);
  h3 = (h3 & ~use_g) | (g3 & use_g);
  h4 = (h4 & ~use_g) | (g4 & use_g);

  /* h mod 2^128 as four 32-bit words, plus s, mod 2^128. */
  uint32_t w0 = h0 | (h1 << 26);
  uint32_t w1 = (h1 >> 6) | (h2 << 20);
  uint32_t w2 = (h2 >> 12) | (h3 << 14);
  uint32_t w3 = (h3 >> 18) | (h4 << 8);
  uint64_t f;
  f = (uint64_t)w0 + load32_le(key + 16);
  store32_le(tag, (uint32_t)f);
  f = (uint64_t)w1 + load32_le(key + 20) + (f >> 32);
  store32_le(tag + 4, (uint32_t)f);
  f = (uint64_t)w2 + load32_le(key + 24) + (f >> 32);
  store32_le(tag + 8, (uint32_t)f);
  f = (uint64_t)w3 + load32_le(key + 28) + (f >> 32);
  store32_le(tag + 12, (uint32_t)f);
  wipe(rb, sizeof rb);
}

/* ---- secretbox ---------------------------------------------------------------------------- */

/* out = key stream XOR in, for a box: bytes 32.. of block 0, then blocks 1, 2, ... */
static void box_xor(uint8_t *out, const uint8_t *in, size_t len, uint32_t s[16],
                    const uint8_t block0[64]) {
  size_t head = len < 32 ? len : 32;
  for (size_t i = 0; i < head; i++) out[i] = in[i] ^ block0[32 + i];
  salsa20_xor(out + head, in + head, len - head, s);
}

/* Seals `len` bytes of `msg` into `box` (len + 16 bytes): tag, then ciphertext. */
static void seal_one(uint8_t *box, const uint8_t *msg, size_t len, const uint8_t key[32],
                     const uint8_t nonce[24]) {
  uint32_t s[16];
  uint8_t block0[64];
  xsalsa20_start(s, block0, key, nonce);
  box_xor(box + TAG_BYTES, msg, len, s, block0);
  poly1305(box, box + TAG_BYTES, len, block0);
  wipe(s, sizeof s);
  wipe(block0, sizeof block0);
}

/* Opens a box of `box_len` (>= 16) bytes into `msg`; 0 when it does not authenticate. */
static int open_one(uint8_t *msg, const uint8_t *box, size_t box_len, const uint8_t key[32],
                    const uint8_t nonce[24]) {
  uint32_t s[16];
  uint8_t block0[64], tag[16];
  size_t len = box_len - TAG_BYTES;
  xsalsa20_start(s, block0, key, nonce);
  poly1305(tag, box + TAG_BYTES, len, block0);
  uint8_t diff = 0;
  for (int i = 0; i < 16; i++) diff |= (uint8_t)(tag[i] ^ box[i]);
  int ok = diff == 0;
  if (ok) box_xor(msg, box + TAG_BYTES, len, s, block0);
  wipe(s, sizeof s);
  wipe(block0, sizeof block0);
  return ok;
}

/* Adds one to a nonce, little-endian with carry (rclone's nonce.increment). */
static void nonce_increment(uint8_t nonce[24]) {
  for (int i = 0; i < NONCE_BYTES; i++)
    if (++nonce[i] != 0) return;
}

/* The stored length of `plain_len` bytes cut into chunks. */
static size_t sealed_length(size_t plain_len) {
  return plain_len + TAG_BYTES * ((plain_len + CHUNK_BYTES - 1) / CHUNK_BYTES);
}

/*
 * The plaintext length of `stored_len` stored bytes, or (size_t)-1 when no input has that
 * length (a last chunk of 16 bytes or fewer).
 */
static size_t opened_length(size_t stored_len) {
  size_t box = CHUNK_BYTES + TAG_BYTES;
  size_t full = stored_len / box, rest = stored_len % box;
  if (rest == 0) return full * CHUNK_BYTES;
  if (rest <= TAG_BYTES) return (size_t)-1;
  return full * CHUNK_BYTES + rest - TAG_BYTES;
}

static void seal_chunks(uint8_t *out, const uint8_t *in, size_t len, const uint8_t key[32],
                        const uint8_t first_nonce[24]) {
  uint8_t nonce[24];
  memcpy(nonce, first_nonce, sizeof nonce);
  while (len > 0) {
    size_t n = len < CHUNK_BYTES ? len : CHUNK_BYTES;
    seal_one(out, in, n, key, nonce);
    nonce_increment(nonce);
    out += n + TAG_BYTES;
    in += n;
    len -= n;
  }
}

/* -1 when every chunk authenticated, else the index of the first that did not. */
static int64_t open_chunks(uint8_t *out, const uint8_t *in, size_t len, const uint8_t key[32],
                           const uint8_t first_nonce[24]) {
  uint8_t nonce[24];
  memcpy(nonce, first_nonce, sizeof nonce);
  int64_t index = 0;
  while (len > 0) {
    size_t n = len < CHUNK_BYTES + TAG_BYTES ? len : CHUNK_BYTES + TAG_BYTES;
    if (n <= TAG_BYTES || !open_one(out, in, n, key, nonce)) return index;
    nonce_increment(nonce);
    out += n - TAG_BYTES;
    in += n;
    len -= n;
    index++;
  }
  return -1;
}

/* ---- SHA-256 ------------------------------------------------------------------------------ */

/*
 * The stored file's SHA-256, computed where it is sealed (on the thread pool for large batches)
 * instead of on the main thread: the path replica checks what it wrote against it.
 */
#include "sha256.h"

/* ---- Node-API glue ------------------------------------------------------------------------ */

#define NAPI_CALL(env, call)                                                                   \
  do {                                                                                         \
    if ((call) != napi_ok) {                                                                   \
      const napi_extended_error_info *info_ = NULL;                                            \
      napi_get_last_error_info((env), &info_);                                                 \
      bool pending_ = false;                                                                   \
      napi_is_exception_pending((env), &pending_);                                             \
      if (!pending_)                                                                           \
        napi_throw_error((env), NULL,                                                          \
                         info_ && info_->error_message ? info_->error_message                  \
                                                       : "secretbox: Node-API call failed");   \
      return NULL;                                                                             \
    }                                                                                          \
  } while (0)

/* The bytes of a Uint8Array (or Buffer) argument; throws a TypeError otherwise. */
static int get_bytes(napi_env env, napi_value value, const char *what, uint8_t **data,
                     size_t *len) {
  bool is_typed = false;
  if (napi_is_typedarray(env, value, &is_typed) != napi_ok || !is_typed) {
    napi_throw_type_error(env, NULL, what);
    return 0;
  }
  napi_typedarray_type type;
  void *ptr = NULL;
  if (napi_get_typedarray_info(env, value, &type, len, &ptr, NULL, NULL) != napi_ok ||
      type != napi_uint8_array) {
    napi_throw_type_error(env, NULL, what);
    return 0;
  }
  *data = (uint8_t *)ptr;
  return 1;
}

/* Reads and checks (key, nonce) from the first two arguments. */
static int get_key_nonce(napi_env env, napi_value *argv, uint8_t **key, uint8_t **nonce) {
  size_t klen = 0, nlen = 0;
  if (!get_bytes(env, argv[0], "secretbox: the key must be a Uint8Array", key, &klen)) return 0;
  if (!get_bytes(env, argv[1], "secretbox: the nonce must be a Uint8Array", nonce, &nlen)) return 0;
  if (klen != KEY_BYTES) {
    napi_throw_range_error(env, NULL, "secretbox: the key must be 32 bytes");
    return 0;
  }
  if (nlen != NONCE_BYTES) {
    napi_throw_range_error(env, NULL, "secretbox: the nonce must be 24 bytes");
    return 0;
  }
  return 1;
}

/* The bytes of a SHA-256 context made by sha256Start; throws a TypeError for anything else. */
static int get_hash_ctx(napi_env env, napi_value value, uint8_t **ctx) {
  size_t len = 0;
  if (!get_bytes(env, value, "secretbox: the hash must come from sha256Start", ctx, &len)) return 0;
  uint32_t magic = 0;
  if (len == sizeof(sha256_ctx_t))
    memcpy(&magic, *ctx + offsetof(sha256_ctx_t, magic), sizeof magic);
  if (magic != SHA256_MAGIC) {
    napi_throw_type_error(env, NULL, "secretbox: the hash must come from sha256Start (and not be finished)");
    return 0;
  }
  return 1;
}

/* sha256Start() -> a context (a Buffer) for sha256Update, sealFile and sha256Digest */
static napi_value js_sha256_start(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value result;
  void *data;
  sha256_ctx_t ctx;
  memset(&ctx, 0, sizeof ctx);
  sha256_init(&ctx);
  NAPI_CALL(env, napi_create_buffer(env, sizeof ctx, &data, &result));
  memcpy(data, &ctx, sizeof ctx);
  return result;
}

/* sha256Update(ctx, data) -> undefined; sha256Digest(ctx) -> Buffer (32 bytes), ending ctx */
static napi_value sha256_call(napi_env env, napi_callback_info info, int digest) {
  size_t argc = 2;
  napi_value argv[2], result;
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  uint8_t *raw, *data = NULL;
  size_t len = 0;
  if (argc < (digest ? 1u : 2u)) {
    napi_throw_type_error(env, NULL, "secretbox.sha256Update(ctx, data) / sha256Digest(ctx)");
    return NULL;
  }
  if (!get_hash_ctx(env, argv[0], &raw)) return NULL;
  if (!digest && !get_bytes(env, argv[1], "secretbox: the data must be a Uint8Array", &data, &len))
    return NULL;
  sha256_ctx_t ctx;
  memcpy(&ctx, raw, sizeof ctx);
  if (digest) {
    void *out;
    NAPI_CALL(env, napi_create_buffer(env, 32, &out, &result));
    sha256_final(&ctx, out);
  } else {
    sha256_update(&ctx, data, len);
    NAPI_CALL(env, napi_get_undefined(env, &result));
  }
  memcpy(raw, &ctx, sizeof ctx);
  return result;
}

static napi_value js_sha256_update(napi_env env, napi_callback_info info) {
  return sha256_call(env, info, 0);
}

static napi_value js_sha256_digest(napi_env env, napi_callback_info info) {
  return sha256_call(env, info, 1);
}

/* Reads (key, nonce, data) for seal/open; 0 with an exception pending when they are wrong. */
static int get_box_args(napi_env env, napi_callback_info info, const char *usage, uint8_t **key,
                        uint8_t **nonce, uint8_t **data, size_t *len) {
  size_t argc = 3;
  napi_value argv[3];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3) {
    napi_throw_type_error(env, NULL, usage);
    return 0;
  }
  return get_key_nonce(env, argv, key, nonce) &&
         get_bytes(env, argv[2], "secretbox: the message or box must be a Uint8Array", data, len);
}

/* seal(key, nonce, message) -> Buffer */
static napi_value js_seal(napi_env env, napi_callback_info info) {
  uint8_t *key, *nonce, *msg, *box;
  size_t len;
  if (!get_box_args(env, info, "secretbox.seal(key, nonce, message)", &key, &nonce, &msg, &len))
    return NULL;
  napi_value result;
  NAPI_CALL(env, napi_create_buffer(env, len + TAG_BYTES, (void **)&box, &result));
  seal_one(box, msg, len, key, nonce);
  return result;
}

/* open(key, nonce, box) -> Buffer | undefined */
static napi_value js_open(napi_env env, napi_callback_info info) {
  uint8_t *key, *nonce, *box, *msg;
  size_t len;
  if (!get_box_args(env, info, "secretbox.open(key, nonce, box)", &key, &nonce, &box, &len))
    return NULL;
  napi_value result;
  if (len < TAG_BYTES) {
    NAPI_CALL(env, napi_get_undefined(env, &result));
    return result;
  }
  NAPI_CALL(env, napi_create_buffer(env, len - TAG_BYTES, (void **)&msg, &result));
  if (!open_one(msg, box, len, key, nonce)) {
    wipe(msg, len - TAG_BYTES);
    NAPI_CALL(env, napi_get_undefined(env, &result));
  }
  return result;
}

/* Rejects `deferred` with a plain Error carrying `text`. */
static void reject_with(napi_env env, napi_deferred deferred, const char *text) {
  napi_value message, error;
  napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
  napi_create_error(env, NULL, message, &error);
  napi_reject_deferred(env, deferred, error);
}

/*
 * Creates and queues the thread-pool work `*work` for `data`; 0 when it could not be queued
 * (`deferred` is then rejected and the caller frees its job).
 */
static int queue_work(napi_env env, const char *name, napi_async_execute_callback execute,
                      napi_async_complete_callback complete, void *data, napi_async_work *work,
                      napi_deferred deferred) {
  napi_value resource_name;
  if (napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &resource_name) != napi_ok ||
      napi_create_async_work(env, NULL, resource_name, execute, complete, data, work) != napi_ok ||
      napi_queue_async_work(env, *work) != napi_ok) {
    reject_with(env, deferred, "secretbox: cannot queue the job");
    return 0;
  }
  return 1;
}

/* One multi-chunk job: its own copies of key and nonce, references to input and output. */
typedef struct job {
  int sealing;
  uint8_t key[KEY_BYTES];
  uint8_t nonce[NONCE_BYTES];
  uint8_t *in;
  size_t in_len;
  uint8_t *out;
  int64_t result;
  napi_ref in_ref;
  napi_ref out_ref;
  napi_deferred deferred;
  napi_async_work work;
} job_t;

static void job_run(job_t *job) {
  if (job->sealing) {
    seal_chunks(job->out, job->in, job->in_len, job->key, job->nonce);
    job->result = -1;
  } else {
    job->result = open_chunks(job->out, job->in, job->in_len, job->key, job->nonce);
  }
}

/*
 * Reads the arguments of sealChunks/openChunks into `job` (sizes checked); 0 with an
 * exception pending when they are wrong.
 */
static int job_args(napi_env env, napi_callback_info info, int sealing, job_t *job,
                    napi_value *in_value, napi_value *out_value) {
  size_t argc = 4;
  napi_value argv[4];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) return 0;
  if (argc < 4) {
    napi_throw_type_error(env, NULL, "secretbox: (key, nonce, input, output) expected");
    return 0;
  }
  uint8_t *key, *nonce;
  size_t out_len;
  if (!get_key_nonce(env, argv, &key, &nonce)) return 0;
  if (!get_bytes(env, argv[2], "secretbox: the input must be a Uint8Array", &job->in, &job->in_len))
    return 0;
  if (!get_bytes(env, argv[3], "secretbox: the output must be a Uint8Array", &job->out, &out_len))
    return 0;
  size_t want = sealing ? sealed_length(job->in_len) : opened_length(job->in_len);
  if (want != out_len) {
    napi_throw_range_error(env, NULL,
                           sealing ? "secretbox: the output must be input.length + 16 per 64 KiB chunk"
                                   : "secretbox: the output must be input.length - 16 per chunk "
                                     "(and no chunk may be 16 bytes or shorter)");
    return 0;
  }
  job->sealing = sealing;
  memcpy(job->key, key, KEY_BYTES);
  memcpy(job->nonce, nonce, NONCE_BYTES);
  *in_value = argv[2];
  *out_value = argv[3];
  return 1;
}

static napi_value chunks_sync(napi_env env, napi_callback_info info, int sealing) {
  job_t job;
  memset(&job, 0, sizeof job);
  napi_value in_value, out_value, result;
  if (!job_args(env, info, sealing, &job, &in_value, &out_value)) return NULL;
  job_run(&job);
  wipe(job.key, sizeof job.key);
  if (sealing) {
    NAPI_CALL(env, napi_get_undefined(env, &result));
  } else {
    NAPI_CALL(env, napi_create_int64(env, job.result, &result));
  }
  return result;
}

static napi_value js_seal_chunks(napi_env env, napi_callback_info info) {
  return chunks_sync(env, info, 1);
}

static napi_value js_open_chunks(napi_env env, napi_callback_info info) {
  return chunks_sync(env, info, 0);
}

static void job_execute(napi_env env, void *data) {
  (void)env;
  job_run((job_t *)data);
}

static void job_free(napi_env env, job_t *job) {
  wipe(job->key, sizeof job->key);
  if (job->in_ref != NULL) napi_delete_reference(env, job->in_ref);
  if (job->out_ref != NULL) napi_delete_reference(env, job->out_ref);
  if (job->work != NULL) napi_delete_async_work(env, job->work);
  free(job);
}

static void job_complete(napi_env env, napi_status status, void *data) {
  job_t *job = (job_t *)data;
  napi_value value;
  if (status != napi_ok) {
    reject_with(env, job->deferred, "secretbox: the job was cancelled");
  } else {
    if (job->sealing) napi_get_undefined(env, &value);
    else napi_create_int64(env, job->result, &value);
    napi_resolve_deferred(env, job->deferred, value);
  }
  job_free(env, job);
}

static napi_value chunks_async(napi_env env, napi_callback_info info, int sealing) {
  job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, NULL, "secretbox: out of memory");
    return NULL;
  }
  napi_value in_value, out_value, promise;
  if (!job_args(env, info, sealing, job, &in_value, &out_value)) {
    job_free(env, job);
    return NULL;
  }
  /* Hold both arrays so the collector keeps their memory while the thread pool uses it. */
  if (napi_create_reference(env, in_value, 1, &job->in_ref) != napi_ok ||
      napi_create_reference(env, out_value, 1, &job->out_ref) != napi_ok ||
      napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    job_free(env, job);
    napi_throw_error(env, NULL, "secretbox: cannot start the job");
    return NULL;
  }
  if (!queue_work(env, "satchel:secretbox", job_execute, job_complete, job, &job->work,
                  job->deferred))
    job_free(env, job);
  return promise;
}

static napi_value js_seal_chunks_async(napi_env env, napi_callback_info info) {
  return chunks_async(env, info, 1);
}

static napi_value js_open_chunks_async(napi_env env, napi_callback_info info) {
  return chunks_async(env, info, 0);
}

/*
 * sealFileAsync: reads up to `max` bytes of a file from `offset` and seals them, all on the
 * thread pool, so the main thread neither reads nor encrypts. One job per batch of a file. Each
 * chunk is read straight into its place in the output and sealed there.
 */
typedef struct file_job {
  char *path;
  int64_t offset;
  size_t max;
  uint8_t key[KEY_BYTES];
  uint8_t nonce[NONCE_BYTES];
  uint8_t *out;
  napi_ref out_ref;
  uint8_t *hash; /* a SHA-256 context (sha256Start) to feed the sealed bytes to, or NULL */
  napi_ref hash_ref;
  size_t plain_len;
  int err;             /* errno of a failed call, or 0 */
  const char *syscall; /* the call that failed */
  napi_deferred deferred;
  napi_async_work work;
} file_job_t;

/* Reads up to `len` bytes at `offset` (fewer only at the end of the file); -1 with errno set. */
static ssize_t read_full(int fd, uint8_t *buf, size_t len, int64_t offset) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = pread(fd, buf + got, len - got, (off_t)(offset + (int64_t)got));
    if (n < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (n == 0) break;
    got += (size_t)n;
  }
  return (ssize_t)got;
}

static void file_job_execute(napi_env env, void *data) {
  (void)env;
  file_job_t *job = (file_job_t *)data;
  struct stat st;
  int fd = open_regular_file(job->path, &st, &job->syscall);
  if (fd < 0) {
    job->err = errno;
    return;
  }
  /* Chunk i's plaintext goes where its ciphertext will be: after its 16-byte tag. */
  size_t total = 0;
  for (size_t i = 0; total < job->max; i++) {
    size_t want = job->max - total < CHUNK_BYTES ? job->max - total : CHUNK_BYTES;
    ssize_t got = read_full(fd, job->out + i * (CHUNK_BYTES + TAG_BYTES) + TAG_BYTES, want,
                            job->offset + (int64_t)total);
    if (got < 0) {
      job->err = errno;
      job->syscall = "read";
      break;
    }
    total += (size_t)got;
    if ((size_t)got < want) break;
  }
  close(fd);
  if (job->err != 0) return;
  uint8_t nonce[NONCE_BYTES];
  memcpy(nonce, job->nonce, sizeof nonce);
  for (size_t at = 0, i = 0; at < total; at += CHUNK_BYTES, i++) {
    size_t n = total - at < CHUNK_BYTES ? total - at : CHUNK_BYTES;
    uint8_t *box = job->out + i * (CHUNK_BYTES + TAG_BYTES);
    seal_one(box, box + TAG_BYTES, n, job->key, nonce);
    nonce_increment(nonce);
  }
  job->plain_len = total;
  if (job->hash != NULL) {
    sha256_ctx_t ctx; /* the array may not be aligned for the struct: work on a copy */
    memcpy(&ctx, job->hash, sizeof ctx);
    sha256_update(&ctx, job->out, sealed_length(total));
    memcpy(job->hash, &ctx, sizeof ctx);
  }
}

static void file_job_free(napi_env env, file_job_t *job) {
  wipe(job->key, sizeof job->key);
  free(job->path);
  if (job->out_ref != NULL) napi_delete_reference(env, job->out_ref);
  if (job->hash_ref != NULL) napi_delete_reference(env, job->hash_ref);
  if (job->work != NULL) napi_delete_async_work(env, job->work);
  free(job);
}

static void file_job_complete(napi_env env, napi_status status, void *data) {
  file_job_t *job = (file_job_t *)data;
  napi_value result;
  if (status != napi_ok) {
    reject_with(env, job->deferred, "secretbox: the job was cancelled");
  } else if (job->err != 0) {
    napi_reject_deferred(env, job->deferred, make_errno_error(env, job->err, job->syscall, job->path));
  } else {
    napi_create_double(env, (double)job->plain_len, &result);
    napi_resolve_deferred(env, job->deferred, result);
  }
  file_job_free(env, job);
}

/*
 * Reads the arguments of sealFile/sealFileAsync into a new job (NULL with an exception pending
 * when they are wrong); `output_value` receives the output array.
 */
static file_job_t *file_job_args(napi_env env, napi_callback_info info, napi_value *output_value,
                                  napi_value *hash_value) {
  size_t argc = 7;
  napi_value argv[7];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc < 6) {
    napi_throw_type_error(env, NULL, "secretbox.sealFile(path, offset, max, key, nonce, output)");
    return NULL;
  }
  file_job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, NULL, "secretbox: out of memory");
    return NULL;
  }
  size_t out_len = 0;
  double offset = 0, max = 0;
  uint8_t *key, *nonce;
  napi_value key_nonce[2] = {argv[3], argv[4]};
  if ((job->path = string_arg_copy(env, argv[0], "secretbox: sealFile needs a path")) == NULL) {
    file_job_free(env, job);
    return NULL;
  }
  if (napi_get_value_double(env, argv[1], &offset) != napi_ok ||
      napi_get_value_double(env, argv[2], &max) != napi_ok || !(offset >= 0) || !(max >= 0) ||
      max > 1024.0 * 1024 * 1024) {
    file_job_free(env, job);
    napi_throw_type_error(env, NULL, "secretbox: sealFile needs a path, an offset and a size");
    return NULL;
  }
  if (!get_key_nonce(env, key_nonce, &key, &nonce) ||
      !get_bytes(env, argv[5], "secretbox: the output must be a Uint8Array", &job->out, &out_len)) {
    file_job_free(env, job);
    return NULL;
  }
  job->offset = (int64_t)offset;
  job->max = (size_t)max;
  if (out_len < sealed_length(job->max)) {
    file_job_free(env, job);
    napi_throw_range_error(env, NULL, "secretbox: the output must hold max bytes sealed");
    return NULL;
  }
  memcpy(job->key, key, KEY_BYTES);
  memcpy(job->nonce, nonce, NONCE_BYTES);
  *output_value = argv[5];
  *hash_value = NULL;
  napi_valuetype hash_type = napi_undefined;
  if (argc >= 7) napi_typeof(env, argv[6], &hash_type);
  if (hash_type != napi_undefined) {
    if (!get_hash_ctx(env, argv[6], &job->hash)) {
      file_job_free(env, job);
      return NULL;
    }
    *hash_value = argv[6];
  }
  return job;
}

/* sealFile(path, offset, max, key, nonce, output) -> plainBytes, on the calling thread */
static napi_value js_seal_file(napi_env env, napi_callback_info info) {
  napi_value output, hash, result;
  file_job_t *job = file_job_args(env, info, &output, &hash);
  if (job == NULL) return NULL;
  file_job_execute(env, job);
  if (job->err != 0) {
    napi_throw(env, make_errno_error(env, job->err, job->syscall, job->path));
    file_job_free(env, job);
    return NULL;
  }
  double plain_len = (double)job->plain_len;
  file_job_free(env, job);
  NAPI_CALL(env, napi_create_double(env, plain_len, &result));
  return result;
}

/* sealFileAsync(path, offset, max, key, nonce, output) -> Promise<plainBytes> */
static napi_value js_seal_file_async(napi_env env, napi_callback_info info) {
  napi_value output, hash;
  file_job_t *job = file_job_args(env, info, &output, &hash);
  if (job == NULL) return NULL;
  napi_value promise;
  if (napi_create_reference(env, output, 1, &job->out_ref) != napi_ok ||
      (hash != NULL && napi_create_reference(env, hash, 1, &job->hash_ref) != napi_ok) ||
      napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    file_job_free(env, job);
    napi_throw_error(env, NULL, "secretbox: cannot start the job");
    return NULL;
  }
  if (!queue_work(env, "satchel:secretbox-file", file_job_execute, file_job_complete, job,
                  &job->work, job->deferred))
    file_job_free(env, job);
  return promise;
}


/*
 * sealFileTo / sealFileToAsync: a whole encrypted copy in one job. Reads a local file, seals it
 * in rclone's format (header: magic and nonce, then one box per 64 KiB) into a new temporary file
 * (O_EXCL: never replacing anything), hashing what it writes, then settles the copy (mode, mtime,
 * optional fsync) and compares the source's fstat before and after. On the thread pool the main
 * thread neither reads, seals, hashes nor writes, and several files are sealed on several cores.
 */
#define SEAL_TO_BATCH_CHUNKS 16
#define SEAL_TO_FIELDS 8

static const uint8_t RCLONE_MAGIC[8] = {'R', 'C', 'L', 'O', 'N', 'E', 0, 0};

typedef struct seal_to_job {
  char *src;
  char *temp;
  uint8_t key[KEY_BYTES];
  uint8_t nonce[NONCE_BYTES];
  double expected; /* the plaintext size planned: one byte more is read to tell a file that grew */
  double mode;     /* < 0: the umask's default stays */
  double mtime_ms;
  int flush;
  double *out; /* SEAL_TO_FIELDS numbers, see js_seal_file_to */
  uint8_t *digest;
  napi_ref out_ref;
  napi_ref digest_ref;
  int err;
  const char *syscall;
  int failed_on_src;
  napi_deferred deferred;
  napi_async_work work;
} seal_to_job_t;

/* Writes all `len` bytes of `buf`; 0 or an errno. */
static int write_full(int fd, const uint8_t *buf, size_t len) {
  for (size_t done = 0; done < len;) {
    ssize_t n = write(fd, buf + done, len - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    done += (size_t)n;
  }
  return 0;
}

/* This thread's batch buffer (header room plus SEAL_TO_BATCH_CHUNKS boxes), NULL without memory. */
static uint8_t *seal_to_buffer(void) {
  static __thread uint8_t *buffer = NULL;
  if (buffer == NULL) buffer = malloc(8 + NONCE_BYTES + SEAL_TO_BATCH_CHUNKS * (CHUNK_BYTES + TAG_BYTES));
  return buffer;
}

/*
 * Reads, seals and writes the content of open `in` into open `out`, feeding what it writes to
 * `ctx` unless NULL; 0 or an errno (`*syscall`).
 */
static int seal_to_content(seal_to_job_t *job, int in, int out, sha256_ctx_t *ctx, uint64_t *plain,
                           const char **syscall) {
  uint8_t *buf = seal_to_buffer();
  if (buf == NULL) return (*syscall = "malloc", ENOMEM);
  uint8_t nonce[NONCE_BYTES];
  memcpy(nonce, job->nonce, sizeof nonce);
  memcpy(buf, RCLONE_MAGIC, sizeof RCLONE_MAGIC);
  memcpy(buf + sizeof RCLONE_MAGIC, nonce, NONCE_BYTES);
  size_t head = sizeof RCLONE_MAGIC + NONCE_BYTES;
  uint64_t limit = (uint64_t)job->expected + 1;
  int end = 0;
  *plain = 0;
  while (!end) {
    size_t batch = 0; /* plaintext bytes in this batch */
    uint8_t *boxes = buf + head;
    for (size_t i = 0; i < SEAL_TO_BATCH_CHUNKS && *plain + batch < limit; i++) {
      uint64_t left = limit - *plain - batch;
      size_t want = left < CHUNK_BYTES ? (size_t)left : CHUNK_BYTES;
      ssize_t got = read_full(in, boxes + i * (CHUNK_BYTES + TAG_BYTES) + TAG_BYTES, want,
                              (int64_t)(*plain + batch));
      if (got < 0) {
        job->failed_on_src = 1;
        return (*syscall = "read", errno);
      }
      batch += (size_t)got;
      if ((size_t)got < want) {
        end = 1;
        break;
      }
    }
    if (*plain + batch >= limit || batch < SEAL_TO_BATCH_CHUNKS * (size_t)CHUNK_BYTES) end = 1;
    for (size_t at = 0, i = 0; at < batch; at += CHUNK_BYTES, i++) {
      size_t n = batch - at < CHUNK_BYTES ? batch - at : CHUNK_BYTES;
      uint8_t *box = boxes + i * (CHUNK_BYTES + TAG_BYTES);
      seal_one(box, box + TAG_BYTES, n, job->key, nonce);
      nonce_increment(nonce);
    }
    size_t len = head + sealed_length(batch);
    if (ctx != NULL) sha256_update(ctx, buf, len);
    int err = write_full(out, buf, len);
    if (err != 0) return (*syscall = "write", err);
    *plain += batch;
    head = 0; /* only the first batch carries the header */
  }
  return 0;
}

static void seal_to_execute(napi_env env, void *data) {
  (void)env;
  seal_to_job_t *job = (seal_to_job_t *)data;
  const char *syscall = "open";
  struct stat before, after, copy;
  int in = open_regular_file(job->src, &before, &job->syscall);
  if (in < 0) {
    job->err = errno;
    job->failed_on_src = 1;
    return;
  }
  job->mode = capped_mode(job->mode, before.st_mode);
  int out = open(job->temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (out < 0) {
    job->err = errno;
    job->syscall = "open";
    close(in);
    return;
  }
  sha256_ctx_t ctx;
  sha256_init(&ctx);
  uint64_t plain = 0;
  int err = seal_to_content(job, in, out, job->digest != NULL ? &ctx : NULL, &plain, &syscall);
  struct timespec mtime;
  timespec_of_ms(&mtime, job->mtime_ms);
  if (err == 0) start_writeback(out, (off_t)plain, job->flush);
  if (err == 0) err = settle_staged(out, job->mode, &mtime, job->flush, &copy, &syscall);
  if (err == 0 && fstat(in, &after) != 0) {
    err = errno;
    syscall = "fstat";
    job->failed_on_src = 1;
  }
  close(in);
  if (close(out) != 0 && err == 0) {
    err = errno;
    syscall = "close";
  }
  if (err != 0) {
    unlink(job->temp);
    job->err = err;
    job->syscall = syscall;
    return;
  }
  if (job->digest != NULL) sha256_final(&ctx, job->digest);
  job->out[0] = (double)plain;
  job->out[1] = (double)after.st_size;
  job->out[2] = ms_of_timespec(&after.st_mtim);
  job->out[3] = same_file_state(&before, &after) ? 0 : 1;
  job->out[4] = (double)copy.st_size;
  job->out[5] = ms_of_timespec(&copy.st_mtim);
  job->out[6] = (double)copy.st_mode;
  job->out[7] = (double)copy.st_ino;
}

static void seal_to_free(napi_env env, seal_to_job_t *job) {
  wipe(job->key, sizeof job->key);
  free(job->src);
  free(job->temp);
  if (job->out_ref != NULL) napi_delete_reference(env, job->out_ref);
  if (job->digest_ref != NULL) napi_delete_reference(env, job->digest_ref);
  if (job->work != NULL) napi_delete_async_work(env, job->work);
  free(job);
}

/*
 * Reads (src, temp, key, nonce, expectedSize, mode, mtimeMs, flush, out, digest) into a new job
 * (NULL with an exception pending when they are wrong).
 */
static seal_to_job_t *seal_to_args(napi_env env, napi_callback_info info, napi_value *out_value,
                                   napi_value *digest_value) {
  size_t argc = 10;
  napi_value argv[10];
  NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  static const char *usage =
      "secretbox.sealFileTo(src, temp, key, nonce, expectedSize, mode, mtimeMs, flush, out, digest)";
  if (argc < 10) {
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  seal_to_job_t *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, NULL, "secretbox: out of memory");
    return NULL;
  }
  uint8_t *key, *nonce, *out, *digest;
  size_t out_len = 0, digest_len = 0;
  bool flush = false;
  napi_value key_nonce[2] = {argv[2], argv[3]};
  if ((job->src = string_arg_copy(env, argv[0], usage)) == NULL ||
      (job->temp = string_arg_copy(env, argv[1], usage)) == NULL || !get_key_nonce(env, key_nonce, &key, &nonce) ||
      !get_bytes(env, argv[9], "secretbox: the digest must be a Uint8Array", &digest, &digest_len)) {
    seal_to_free(env, job);
    return NULL;
  }
  napi_typedarray_type type;
  void *out_data = NULL;
  if (napi_get_value_double(env, argv[4], &job->expected) != napi_ok || !(job->expected >= 0) ||
      napi_get_value_double(env, argv[5], &job->mode) != napi_ok ||
      napi_get_value_double(env, argv[6], &job->mtime_ms) != napi_ok ||
      napi_get_value_bool(env, argv[7], &flush) != napi_ok ||
      napi_get_typedarray_info(env, argv[8], &type, &out_len, &out_data, NULL, NULL) != napi_ok ||
      type != napi_float64_array || out_len < SEAL_TO_FIELDS || (digest_len != 0 && digest_len < 32)) {
    seal_to_free(env, job);
    napi_throw_type_error(env, NULL, usage);
    return NULL;
  }
  out = out_data;
  job->out = (double *)out;
  job->digest = digest_len == 0 ? NULL : digest;
  job->flush = flush;
  memcpy(job->key, key, KEY_BYTES);
  memcpy(job->nonce, nonce, NONCE_BYTES);
  *out_value = argv[8];
  *digest_value = argv[9];
  return job;
}

static napi_value seal_to_error(napi_env env, const seal_to_job_t *job) {
  return make_copy_error(env, job->err, job->syscall, job->src, job->temp, job->failed_on_src);
}

/* sealFileTo(...) -> undefined, on the calling thread; fills `out` and `digest` (see the header). */
static napi_value js_seal_file_to(napi_env env, napi_callback_info info) {
  napi_value out, digest, result;
  seal_to_job_t *job = seal_to_args(env, info, &out, &digest);
  if (job == NULL) return NULL;
  seal_to_execute(env, job);
  if (job->err != 0) {
    napi_throw(env, seal_to_error(env, job));
    seal_to_free(env, job);
    return NULL;
  }
  seal_to_free(env, job);
  NAPI_CALL(env, napi_get_undefined(env, &result));
  return result;
}

static void seal_to_complete(napi_env env, napi_status status, void *data) {
  seal_to_job_t *job = (seal_to_job_t *)data;
  napi_value result;
  if (status != napi_ok) {
    reject_with(env, job->deferred, "secretbox: the job was cancelled");
  } else if (job->err != 0) {
    napi_reject_deferred(env, job->deferred, seal_to_error(env, job));
  } else {
    napi_get_undefined(env, &result);
    napi_resolve_deferred(env, job->deferred, result);
  }
  seal_to_free(env, job);
}

/* sealFileToAsync(...) -> Promise<undefined>, the same on the thread pool. */
static napi_value js_seal_file_to_async(napi_env env, napi_callback_info info) {
  napi_value out, digest, promise;
  seal_to_job_t *job = seal_to_args(env, info, &out, &digest);
  if (job == NULL) return NULL;
  if (napi_create_reference(env, out, 1, &job->out_ref) != napi_ok ||
      napi_create_reference(env, digest, 1, &job->digest_ref) != napi_ok ||
      napi_create_promise(env, &job->deferred, &promise) != napi_ok) {
    seal_to_free(env, job);
    napi_throw_error(env, NULL, "secretbox: cannot start the job");
    return NULL;
  }
  if (!queue_work(env, "satchel:secretbox-seal-to", seal_to_execute, seal_to_complete, job, &job->work,
                  job->deferred))
    seal_to_free(env, job);
  return promise;
}

static napi_value init(napi_env env, napi_value exports) {
  pick_wide_lanes();
  pick_sha256("SATCHEL_SECRETBOX_NO_SHA_NI");
  napi_value lanes;
  NAPI_CALL(env, napi_create_uint32(env, wide_lanes, &lanes));
  NAPI_CALL(env, napi_set_named_property(env, exports, "lanes", lanes));
  static const struct {
    const char *name;
    napi_callback fn;
  } fns[] = {
      {"seal", js_seal},
      {"open", js_open},
      {"sealChunks", js_seal_chunks},
      {"openChunks", js_open_chunks},
      {"sealChunksAsync", js_seal_chunks_async},
      {"openChunksAsync", js_open_chunks_async},
      {"sealFile", js_seal_file},
      {"sha256Start", js_sha256_start},
      {"sha256Update", js_sha256_update},
      {"sha256Digest", js_sha256_digest},
      {"sealFileAsync", js_seal_file_async},
      {"sealFileTo", js_seal_file_to},
      {"sealFileToAsync", js_seal_file_to_async},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    NAPI_CALL(env, napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &fn));
    NAPI_CALL(env, napi_set_named_property(env, exports, fns[i].name, fn));
  }
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
