#include "tt_cobs.h"

size_t tt_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    size_t out = 1;        /* next write position; dst[code_at] holds the pending code */
    size_t code_at = 0;
    uint8_t code = 1;
    size_t i;

    if (cap < 1)
        return 0;
    for (i = 0; i < n; i++) {
        if (src[i] == 0) {
            dst[code_at] = code;
            code_at = out++;
            code = 1;
        } else {
            if (out >= cap)
                return 0;
            dst[out++] = src[i];
            code++;
            if (code == 0xFF) {
                dst[code_at] = code;
                code_at = out++;
                code = 1;
            }
        }
        if (out > cap)
            return 0;
    }
    dst[code_at] = code;
    return out;
}

int tt_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap)
{
    size_t in = 0, out = 0;

    while (in < n) {
        uint8_t code = src[in++];
        uint8_t k;
        if (code == 0)
            return -1;
        for (k = 1; k < code; k++) {
            if (in >= n || src[in] == 0 || out >= cap)
                return -1;
            dst[out++] = src[in++];
        }
        /* A code below 0xFF stands for a zero, except at the very end of the frame. */
        if (code != 0xFF && in < n) {
            if (out >= cap)
                return -1;
            dst[out++] = 0;
        }
    }
    return (int)out;
}
