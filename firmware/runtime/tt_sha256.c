/* SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104): see tt_sha256.h. */
#include "tt_sha256.h"

#include <string.h>

static const uint32_t K[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

static uint32_t ror(uint32_t x, unsigned n) { return (x >> n) | (x << (32u - n)); }

static void compress(uint32_t h[8], const uint8_t b[64])
{
    uint32_t w[64], a, bb, c, d, e, f, g, hh, t1, t2;
    unsigned i;
    for (i = 0; i < 16; i++)
        w[i] = ((uint32_t)b[4 * i] << 24) | ((uint32_t)b[4 * i + 1] << 16)
             | ((uint32_t)b[4 * i + 2] << 8) | (uint32_t)b[4 * i + 3];
    for (i = 16; i < 64; i++) {
        uint32_t s0 = ror(w[i - 15], 7) ^ ror(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror(w[i - 2], 17) ^ ror(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    a = h[0]; bb = h[1]; c = h[2]; d = h[3]; e = h[4]; f = h[5]; g = h[6]; hh = h[7];
    for (i = 0; i < 64; i++) {
        t1 = hh + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i];
        t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & bb) ^ (a & c) ^ (bb & c));
        hh = g; g = f; f = e; e = d + t1; d = c; c = bb; bb = a; a = t1 + t2;
    }
    h[0] += a; h[1] += bb; h[2] += c; h[3] += d; h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
}

void tt_sha256_init(tt_sha256_ctx *c)
{
    static const uint32_t iv[8] = {0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
                                   0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u};
    memcpy(c->h, iv, sizeof iv);
    c->length = 0;
    c->used = 0;
}

void tt_sha256_update(tt_sha256_ctx *c, const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    c->length += n;
    while (n > 0) {
        size_t k = TT_SHA256_BLOCK - c->used;
        if (k > n)
            k = n;
        memcpy(c->block + c->used, p, k);
        c->used += (uint32_t)k;
        p += k;
        n -= k;
        if (c->used == TT_SHA256_BLOCK) {
            compress(c->h, c->block);
            c->used = 0;
        }
    }
}

void tt_sha256_final(tt_sha256_ctx *c, uint8_t out[TT_SHA256_BYTES])
{
    uint64_t bits = c->length * 8u;
    unsigned i;
    c->block[c->used++] = 0x80;
    if (c->used > 56) {
        memset(c->block + c->used, 0, TT_SHA256_BLOCK - c->used);
        compress(c->h, c->block);
        c->used = 0;
    }
    memset(c->block + c->used, 0, 56 - c->used);
    for (i = 0; i < 8; i++)
        c->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
    compress(c->h, c->block);
    for (i = 0; i < 8; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
    tt_wipe(c, sizeof *c);
}

void tt_hmac_init(tt_hmac_ctx *c, const uint8_t *key, size_t key_len)
{
    uint8_t k[TT_SHA256_BLOCK], pad[TT_SHA256_BLOCK];
    unsigned i;
    memset(k, 0, sizeof k);
    if (key_len > TT_SHA256_BLOCK) {
        tt_sha256_init(&c->inner);
        tt_sha256_update(&c->inner, key, key_len);
        tt_sha256_final(&c->inner, k);
    } else if (key_len > 0) {
        memcpy(k, key, key_len);
    }
    for (i = 0; i < TT_SHA256_BLOCK; i++)
        pad[i] = (uint8_t)(k[i] ^ 0x36u);
    tt_sha256_init(&c->inner);
    tt_sha256_update(&c->inner, pad, sizeof pad);
    for (i = 0; i < TT_SHA256_BLOCK; i++)
        pad[i] = (uint8_t)(k[i] ^ 0x5cu);
    tt_sha256_init(&c->outer);
    tt_sha256_update(&c->outer, pad, sizeof pad);
    tt_wipe(k, sizeof k);
    tt_wipe(pad, sizeof pad);
}

void tt_hmac_update(tt_hmac_ctx *c, const void *data, size_t n)
{
    tt_sha256_update(&c->inner, data, n);
}

void tt_hmac_final(tt_hmac_ctx *c, uint8_t out[TT_SHA256_BYTES])
{
    uint8_t inner[TT_SHA256_BYTES];
    tt_sha256_final(&c->inner, inner);
    tt_sha256_update(&c->outer, inner, sizeof inner);
    tt_sha256_final(&c->outer, out);
    tt_wipe(inner, sizeof inner);
}

int tt_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t diff = 0;
    size_t i;
    for (i = 0; i < n; i++)
        diff |= (uint8_t)(a[i] ^ b[i]);
    /* 1 iff diff == 0, without a data-dependent branch. */
    return (int)(1u & ((uint32_t)((uint32_t)diff - 1u) >> 8));
}

void tt_wipe(void *p, size_t n)
{
    memset(p, 0, n);
    /* The compiler must assume the zeroed bytes are read: the memset stays. */
    __asm__ volatile("" : : "r"(p) : "memory");
}
