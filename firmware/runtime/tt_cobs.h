/* tt_cobs.h - Consistent Overhead Byte Stuffing: the encoded form holds no 0x00 byte,
 * so 0x00 delimits frames and a receiver resynchronises at the next delimiter. */
#ifndef TT_COBS_H
#define TT_COBS_H

#include <stddef.h>
#include <stdint.h>

/* Worst-case encoded size of n bytes (without the 0x00 delimiter). */
#define TT_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 1u)

/* Encodes src[0..n) into dst (capacity cap), without a delimiter.
 * Returns the encoded length, or 0 when dst is too small. */
size_t tt_cobs_encode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap);

/* Decodes src[0..n) (no delimiter) into dst (capacity cap); dst may equal src (in place).
 * Returns the decoded length, or -1 when the input is not valid COBS (a 0x00 byte,
 * a code running past the end) or does not fit. */
int tt_cobs_decode(const uint8_t *src, size_t n, uint8_t *dst, size_t cap);

#endif /* TT_COBS_H */
