/* tt_crc.h - CRC-32 (IEEE 802.3, reflected, poly 0xEDB88320, init and final xor 0xFFFFFFFF),
 * the same value as zlib.crc32 / binascii.crc32. */
#ifndef TT_CRC_H
#define TT_CRC_H

#include <stddef.h>
#include <stdint.h>

/* One-shot CRC of buf. */
uint32_t tt_crc32(const void *buf, size_t n);

/* Incremental form: crc = tt_crc32_update(0, a, na); crc = tt_crc32_update(crc, b, nb);
 * gives tt_crc32 of a followed by b (zlib's chaining convention). */
uint32_t tt_crc32_update(uint32_t crc, const void *buf, size_t n);

#endif /* TT_CRC_H */
