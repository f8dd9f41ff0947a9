/* tt_weights_store.h - A/B slots of trainable parameters on the HAL's non-volatile store.
 *
 * The store (tt_hal_nv_*) is split into two equal slots. A slot is a 48-byte header
 * followed by the parameter bytes (the concatenation of every region, in order):
 *   off  0 u32 magic       TT_WS_MAGIC ("TTW1")
 *   off  4 u32 generation  1, 2, 3 ... the newest valid slot wins
 *   off  8 u8  model_hash[16]  TT_MODEL_HASH (ASCII, not NUL-terminated)
 *   off 24 u32 data_bytes
 *   off 28 u32 data_crc    CRC-32 of the parameter bytes
 *   off 32 u32 steps       training steps done when saved
 *   off 36 u32 reserved[2] zero
 *   off 44 u32 header_crc  CRC-32 of header bytes 0..43
 * A save overwrites the older slot: it first invalidates that slot's header, then
 * writes the data, then the header. An interrupted save therefore leaves the other
 * slot, the previous weights, as the newest valid one. */
#ifndef TT_WEIGHTS_STORE_H
#define TT_WEIGHTS_STORE_H

#include <stddef.h>
#include <stdint.h>

#define TT_WS_MAGIC        0x31575454u   /* "TTW1" little-endian */
#define TT_WS_HEADER_BYTES 48u
#define TT_WS_HASH_BYTES   16u

/* The parameters as regions of memory: region(i, &bytes) returns the i-th region. */
typedef void *(*tt_ws_region_fn)(uint32_t i, uint32_t *bytes);

typedef struct {
    uint32_t generation;
    uint32_t steps;
    uint32_t data_bytes;
    uint32_t data_crc;
    int32_t slot;            /* 0 or 1 */
} tt_ws_info;

/* Return codes. */
#define TT_WS_OK        0
#define TT_WS_ERR_NV   (-1)   /* no store, too small, or an I/O error */
#define TT_WS_NONE     (-2)   /* no valid slot for this model hash and size */

/* Writes the regions to the older slot with generation newest + 1. */
int tt_weights_save(const char *model_hash, uint32_t steps,
                    uint32_t n_regions, tt_ws_region_fn region, tt_ws_info *out);

/* Finds the newest valid slot (magic, header CRC, model hash, size and data CRC all
 * match) and copies it into the regions. The regions are untouched unless it succeeds. */
int tt_weights_load(const char *model_hash,
                    uint32_t n_regions, tt_ws_region_fn region, tt_ws_info *out);

/* Like tt_weights_load without copying: which slot would be loaded. */
int tt_weights_newest(const char *model_hash,
                      uint32_t n_regions, tt_ws_region_fn region, tt_ws_info *out);

#endif /* TT_WEIGHTS_STORE_H */
