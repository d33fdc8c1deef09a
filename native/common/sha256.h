/*
 * SHA-256 (FIPS 180-4) for Satchel's addons, header-only: plain C, or the x86 SHA extensions
 * where the processor has them (pick_sha256, once at load). secretbox hashes the stored file
 * where it seals it; fastfs hashes case files on the thread pool during a scan.
 */
#ifndef SATCHEL_SHA256_H
#define SATCHEL_SHA256_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define SATCHEL_SHA256_SHANI 1
#endif

typedef struct sha256_ctx {
  uint32_t h[8];
  uint64_t bytes;
  uint8_t buf[64];
  uint32_t buf_len;
  uint32_t magic;
} sha256_ctx_t;

#define SHA256_MAGIC 0x53484132u /* "SHA2": the array passed in holds a started context */

static const uint32_t SHA256_K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static inline uint32_t load32_be(const uint8_t *p) {
  return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

#define ROTR32(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

/* Compresses `n` 64-byte blocks into h (FIPS 180-4, 6.2.2). */
static void sha256_blocks_plain(uint32_t h[8], const uint8_t *p, size_t n) {
  uint32_t w[64];
  while (n--) {
    for (int t = 0; t < 16; t++) w[t] = load32_be(p + 4 * t);
    for (int t = 16; t < 64; t++) {
      uint32_t s0 = ROTR32(w[t - 15], 7) ^ ROTR32(w[t - 15], 18) ^ (w[t - 15] >> 3);
      uint32_t s1 = ROTR32(w[t - 2], 17) ^ ROTR32(w[t - 2], 19) ^ (w[t - 2] >> 10);
      w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int t = 0; t < 64; t++) {
      uint32_t t1 = hh + (ROTR32(e, 6) ^ ROTR32(e, 11) ^ ROTR32(e, 25)) + ((e & f) ^ (~e & g)) +
                    SHA256_K[t] + w[t];
      uint32_t t2 = (ROTR32(a, 2) ^ ROTR32(a, 13) ^ ROTR32(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
      hh = g;
      g = f;
      f = e;
      e = d + t1;
      d = c;
      c = b;
      b = a;
      a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
    p += 64;
  }
}

#ifdef SATCHEL_SHA256_SHANI
#include <immintrin.h>

/*
 * The same with the SHA extensions: the state is kept as (A, B, E, F) and (C, D, G, H), and each
 * sha256rnds2 does two rounds; sha256msg1/msg2 extend the message schedule four words at a time.
 */
__attribute__((target("sha,sse4.1,ssse3"))) static void sha256_blocks_shani(uint32_t h[8],
                                                                            const uint8_t *p,
                                                                            size_t n) {
  const __m128i byteswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  __m128i tmp = _mm_loadu_si128((const __m128i *)&h[0]);    /* D C B A */
  __m128i state1 = _mm_loadu_si128((const __m128i *)&h[4]); /* H G F E */
  tmp = _mm_shuffle_epi32(tmp, 0xB1);                       /* C D A B */
  state1 = _mm_shuffle_epi32(state1, 0x1B);                 /* E F G H */
  __m128i state0 = _mm_alignr_epi8(tmp, state1, 8);         /* A B E F */
  state1 = _mm_blend_epi16(state1, tmp, 0xF0);              /* C D G H */
  while (n--) {
    const __m128i abef = state0, cdgh = state1;
    __m128i m[4];
    for (int g = 0; g < 16; g++) {
      if (g < 4) m[g] = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * g)), byteswap);
      __m128i cur = m[g & 3];
      __m128i msg = _mm_add_epi32(cur, _mm_loadu_si128((const __m128i *)&SHA256_K[4 * g]));
      state1 = _mm_sha256rnds2_epu32(state1, state0, msg);
      if (g >= 3 && g <= 14) {
        /* The next group's words: W[t-16] + sigma0 part (msg1, done earlier) + W[t-7] + sigma1. */
        __m128i next = _mm_add_epi32(m[(g + 1) & 3], _mm_alignr_epi8(cur, m[(g + 3) & 3], 4));
        m[(g + 1) & 3] = _mm_sha256msg2_epu32(next, cur);
      }
      msg = _mm_shuffle_epi32(msg, 0x0E);
      state0 = _mm_sha256rnds2_epu32(state0, state1, msg);
      if (g >= 1 && g <= 12) m[(g + 3) & 3] = _mm_sha256msg1_epu32(m[(g + 3) & 3], cur);
    }
    state0 = _mm_add_epi32(state0, abef);
    state1 = _mm_add_epi32(state1, cdgh);
    p += 64;
  }
  tmp = _mm_shuffle_epi32(state0, 0x1B);    /* F E B A */
  state1 = _mm_shuffle_epi32(state1, 0xB1); /* D C H G */
  state0 = _mm_blend_epi16(tmp, state1, 0xF0); /* D C B A */
  state1 = _mm_alignr_epi8(state1, tmp, 8);    /* H G F E */
  _mm_storeu_si128((__m128i *)&h[0], state0);
  _mm_storeu_si128((__m128i *)&h[4], state1);
}
#endif

static void (*sha256_blocks)(uint32_t h[8], const uint8_t *p, size_t n) = sha256_blocks_plain;

/* Picks the SHA extensions where the processor has them, unless environment variable `off_env`
 * is "1" (the tests run both). */
static void pick_sha256(const char *off_env) {
#ifdef SATCHEL_SHA256_SHANI
  const char *off = getenv(off_env);
  if ((off == NULL || strcmp(off, "1") != 0) && __builtin_cpu_supports("sha") &&
      __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("ssse3"))
    sha256_blocks = sha256_blocks_shani;
#endif
}

static void sha256_init(sha256_ctx_t *c) {
  static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(c->h, iv, sizeof iv);
  c->bytes = 0;
  c->buf_len = 0;
  c->magic = SHA256_MAGIC;
}

static void sha256_update(sha256_ctx_t *c, const uint8_t *p, size_t len) {
  c->bytes += len;
  if (c->buf_len > 0) {
    size_t take = 64 - c->buf_len < len ? 64 - c->buf_len : len;
    memcpy(c->buf + c->buf_len, p, take);
    c->buf_len += (uint32_t)take;
    p += take;
    len -= take;
    if (c->buf_len < 64) return;
    sha256_blocks(c->h, c->buf, 1);
    c->buf_len = 0;
  }
  if (len >= 64) {
    sha256_blocks(c->h, p, len / 64);
    p += len - len % 64;
    len %= 64;
  }
  memcpy(c->buf, p, len);
  c->buf_len = (uint32_t)len;
}

static void sha256_final(sha256_ctx_t *c, uint8_t out[32]) {
  uint64_t bits = c->bytes * 8;
  uint8_t pad[72];
  size_t pad_len = (c->buf_len < 56 ? 56 : 120) - c->buf_len;
  memset(pad, 0, sizeof pad);
  pad[0] = 0x80;
  for (int i = 0; i < 8; i++) pad[pad_len + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
  sha256_update(c, pad, pad_len + 8);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (uint8_t)(c->h[i] >> 24);
    out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
    out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
    out[4 * i + 3] = (uint8_t)c->h[i];
  }
  c->magic = 0;
}

#endif /* SATCHEL_SHA256_H */
