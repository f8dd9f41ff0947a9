/* Test helper: "enc" / "dec" stdin -> stdout with tt_cobs, "crc" prints tt_crc32 of stdin,
 * "frame TYPE SEQ" wraps stdin as a protocol body (header, payload, CRC) and COBS-encodes it,
 * "sha256" / "hmac KEYHEX" print the digest of stdin (tt_sha256.c), fed in pieces of
 * CHUNK bytes (argv[3] for hmac, argv[2] for sha256; default all at once), "eq N" compares the
 * two halves of stdin's first 2N bytes with tt_ct_equal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tt_cobs.h"
#include "tt_crc.h"
#include "tt_proto.h"
#include "tt_sha256.h"

static void hex(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        printf("%02x", p[i]);
    printf("\n");
}

static uint8_t in[1100000], out[1200000];

int main(int argc, char **argv)
{
    size_t n = fread(in, 1, sizeof in, stdin);
    if (argc >= 2 && strcmp(argv[1], "enc") == 0) {
        size_t k = tt_cobs_encode(in, n, out, sizeof out);
        fwrite(out, 1, k, stdout);
        return k == 0 && n > 0 ? 1 : 0;
    }
    if (argc >= 2 && strcmp(argv[1], "dec") == 0) {
        int k = tt_cobs_decode(in, n, out, sizeof out);
        if (k < 0)
            return 1;
        fwrite(out, 1, (size_t)k, stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "crc") == 0) {
        printf("%08lx\n", (unsigned long)tt_crc32(in, n));
        return 0;
    }
    if (argc >= 4 && strcmp(argv[1], "frame") == 0) {
        static uint8_t body[70000 + 10];
        size_t k;
        body[0] = TT_PROTO_VERSION;
        body[1] = (uint8_t)atoi(argv[2]);
        tt_put_u16(body + 2, (uint16_t)atoi(argv[3]));
        tt_put_u16(body + 4, (uint16_t)n);
        memcpy(body + 6, in, n);
        tt_put_u32(body + 6 + n, tt_crc32(body, 6 + n));
        k = tt_cobs_encode(body, n + 10, out, sizeof out);
        fwrite(out, 1, k, stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "sha256") == 0) {
        tt_sha256_ctx c;
        uint8_t d[TT_SHA256_BYTES];
        size_t chunk = argc >= 3 ? (size_t)atoi(argv[2]) : n, off = 0;
        tt_sha256_init(&c);
        while (off < n) {
            size_t k = n - off < chunk ? n - off : chunk;
            tt_sha256_update(&c, in + off, k);
            off += k;
        }
        tt_sha256_final(&c, d);
        hex(d, sizeof d);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "hmac") == 0) {
        static uint8_t key[512];
        tt_hmac_ctx c;
        uint8_t d[TT_SHA256_BYTES];
        size_t klen = strlen(argv[2]) / 2, i, chunk = argc >= 4 ? (size_t)atoi(argv[3]) : n, off = 0;
        for (i = 0; i < klen && i < sizeof key; i++) {
            unsigned v;
            sscanf(argv[2] + 2 * i, "%2x", &v);
            key[i] = (uint8_t)v;
        }
        tt_hmac_init(&c, key, klen);
        while (off < n) {
            size_t k = n - off < chunk ? n - off : chunk;
            tt_hmac_update(&c, in + off, k);
            off += k;
        }
        tt_hmac_final(&c, d);
        hex(d, sizeof d);
        return 0;
    }
    if (argc >= 3 && strcmp(argv[1], "eq") == 0) {
        size_t k = (size_t)atoi(argv[2]);
        printf("%d\n", 2 * k <= n ? tt_ct_equal(in, in + k, k) : -1);
        return 0;
    }
    fprintf(stderr, "usage: cobs_tool enc|dec|crc|frame TYPE SEQ|sha256 [CHUNK]|hmac KEYHEX [CHUNK]|eq N\n");
    return 2;
}
