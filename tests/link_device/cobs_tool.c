/* Test helper: "enc" / "dec" stdin -> stdout with tt_cobs, "crc" prints tt_crc32 of stdin,
 * "frame TYPE SEQ" wraps stdin as a protocol body (header, payload, CRC) and COBS-encodes it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tt_cobs.h"
#include "tt_crc.h"
#include "tt_proto.h"

static uint8_t in[70000], out[80000];

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
    fprintf(stderr, "usage: cobs_tool enc|dec|crc|frame TYPE SEQ\n");
    return 2;
}
