/* tt_weights_store.h - A/B slots of trainable parameters on the HAL's non-volatile store,
 * and the device record (a counter that never repeats across reboots, for auth nonces).
 *
 * Layout (constants in tt_proto.h, generated from tinytrain/protocol_spec.py):
 *   [slot 0][slot 1][record area: TT_NV_RECORD_AREA bytes at the end]
 * each slot (nv_size - TT_NV_RECORD_AREA) / 2 bytes: a 48-byte header, then the parameter
 * bytes (the concatenation of every region, in order):
 *   off  0 u32 magic       TT_NV_SLOT_MAGIC ("TTW2")
 *   off  4 u32 generation  1, 2, 3 ... the newest valid slot wins
 *   off  8 u8  model_hash[16]  TT_MODEL_HASH (ASCII, not NUL-terminated)
 *   off 24 u32 data_bytes
 *   off 28 u32 data_crc    CRC-32 of the parameter bytes
 *   off 32 u32 steps       training steps done when saved
 *   off 36 u32 reserved[2] zero
 *   off 44 u32 header_crc  CRC-32 of header bytes 0..43
 * Writing a slot (a save, or a staged weights transaction) overwrites the slot that does
 * not hold the newest valid weights of this model: first its header is invalidated, then
 * the data written, and only then the header: writing the header is the atomic switch. An
 * interrupted write leaves the other slot, the previous weights, as the newest valid one. */
#ifndef TT_WEIGHTS_STORE_H
#define TT_WEIGHTS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "tt_proto.h"

#define TT_WS_HEADER_BYTES TT_NV_SLOT_HEADER_BYTES
#define TT_WS_HASH_BYTES   TT_NV_HASH_BYTES

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

/* Bytes of one slot (0 without a store). */
uint32_t tt_weights_slot_bytes(void);

/* Writes the regions to the older slot with generation newest + 1. */
int tt_weights_save(const char *model_hash, uint32_t steps,
                    uint32_t n_regions, tt_ws_region_fn region, tt_ws_info *out);

/* Finds the newest valid slot (magic, header CRC, model hash, size and data CRC all
 * match) and copies it into the regions. The regions are untouched unless it succeeds. */
int tt_weights_load(const char *model_hash,
                    uint32_t n_regions, tt_ws_region_fn region, tt_ws_info *out);

/* Like tt_weights_load without copying: which slot would be loaded. */
int tt_weights_newest(const char *model_hash, uint32_t data_bytes, tt_ws_info *out);

/* A slot being written: tt_weights_stage_begin picks and invalidates it, _write puts data
 * bytes at an offset, _read reads them back, _commit checks their CRC and writes the header
 * (the switch). Nothing is visible to a load before _commit returns TT_WS_OK. */
typedef struct {
    int32_t slot;
    uint32_t generation;
    uint32_t data_bytes;
} tt_ws_stage;

int tt_weights_stage_begin(const char *model_hash, uint32_t data_bytes, tt_ws_stage *st);
int tt_weights_stage_write(const tt_ws_stage *st, uint32_t off, const void *src, uint32_t n);
int tt_weights_stage_read(const tt_ws_stage *st, uint32_t off, void *dst, uint32_t n);
int tt_weights_stage_crc(const tt_ws_stage *st, uint32_t *crc);
/* TT_WS_NONE when the data's CRC is not expect_crc (nothing switched). */
int tt_weights_stage_commit(const tt_ws_stage *st, const char *model_hash, uint32_t expect_crc,
                            uint32_t steps, tt_ws_info *out);

/* The device record: returns (in *value) a counter value never returned before, persisted
 * before it is returned (two CRC-checked copies, written alternately, so a power loss while
 * writing one leaves the other). 0 on success, TT_WS_ERR_NV without a working store. */
int tt_nv_counter_next(uint32_t *value);

#endif /* TT_WEIGHTS_STORE_H */
