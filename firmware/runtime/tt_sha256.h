/* tt_sha256.h - SHA-256 (FIPS 180-4) and HMAC-SHA-256 (RFC 2104) for the link's
 * authentication. Plain C99, no malloc, no tables in RAM; tested against Python's hashlib
 * and hmac on the FIPS 180 and RFC 4231 test vectors (tests/test_link_auth.py). */
#ifndef TT_SHA256_H
#define TT_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define TT_SHA256_BYTES 32u
#define TT_SHA256_BLOCK 64u

typedef struct {
    uint32_t h[8];
    uint64_t length;                 /* bytes hashed so far */
    uint8_t block[TT_SHA256_BLOCK];
    uint32_t used;                   /* bytes in block */
} tt_sha256_ctx;

void tt_sha256_init(tt_sha256_ctx *c);
void tt_sha256_update(tt_sha256_ctx *c, const void *data, size_t n);
void tt_sha256_final(tt_sha256_ctx *c, uint8_t out[TT_SHA256_BYTES]);

typedef struct {
    tt_sha256_ctx inner;                  /* has absorbed key XOR ipad */
    tt_sha256_ctx outer;                  /* has absorbed key XOR opad */
} tt_hmac_ctx;

/* HMAC-SHA-256 with a key of any length (longer than a block: hashed first). A context
 * right after tt_hmac_init can be copied and reused for many messages with one key (the
 * session's tags): that saves the two key blocks per message. */
void tt_hmac_init(tt_hmac_ctx *c, const uint8_t *key, size_t key_len);
void tt_hmac_update(tt_hmac_ctx *c, const void *data, size_t n);
void tt_hmac_final(tt_hmac_ctx *c, uint8_t out[TT_SHA256_BYTES]);

/* 1 when a and b hold the same n bytes; the time taken does not depend on where they
 * differ (a tag compared this way leaks nothing about how much of it was right). */
int tt_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

/* Overwrites n bytes so the compiler cannot drop the store (keys on the stack). */
void tt_wipe(void *p, size_t n);

#endif /* TT_SHA256_H */
