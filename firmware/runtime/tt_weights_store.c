#include "tt_weights_store.h"

#include <string.h>

#include "tt_crc.h"
#include "tt_hal.h"
#include "tt_proto.h"

static uint32_t total_bytes(uint32_t n_regions, tt_ws_region_fn region)
{
    uint32_t i, total = 0, bytes;
    for (i = 0; i < n_regions; i++) {
        (void)region(i, &bytes);
        total += bytes;
    }
    return total;
}

static uint32_t slot_bytes(void)
{
    return (uint32_t)(tt_hal_nv_size() / 2u);
}

/* Reads and checks slot s's header (everything but the data CRC). 1 valid, 0 not, <0 I/O. */
static int read_header(int32_t s, const char *model_hash, uint32_t data_bytes, tt_ws_info *info)
{
    uint8_t h[TT_WS_HEADER_BYTES];
    if (tt_hal_nv_read((uint32_t)s * slot_bytes(), h, sizeof h) != 0)
        return -1;
    if (tt_get_u32(h) != TT_WS_MAGIC || tt_get_u32(h + 44) != tt_crc32(h, 44))
        return 0;
    if (memcmp(h + 8, model_hash, TT_WS_HASH_BYTES) != 0 || tt_get_u32(h + 24) != data_bytes)
        return 0;
    info->generation = tt_get_u32(h + 4);
    info->data_bytes = data_bytes;
    info->data_crc = tt_get_u32(h + 28);
    info->steps = tt_get_u32(h + 32);
    info->slot = s;
    return 1;
}

/* CRC of a slot's data, streamed through a small stack buffer. */
static int data_crc(int32_t s, uint32_t bytes, uint32_t *crc)
{
    uint8_t buf[64];
    uint32_t off = (uint32_t)s * slot_bytes() + TT_WS_HEADER_BYTES, done = 0;
    uint32_t c = 0;
    while (done < bytes) {
        uint32_t n = bytes - done < sizeof buf ? bytes - done : (uint32_t)sizeof buf;
        if (tt_hal_nv_read(off + done, buf, n) != 0)
            return -1;
        c = tt_crc32_update(c, buf, n);
        done += n;
    }
    *crc = c;
    return 0;
}

int tt_weights_newest(const char *model_hash,
                      uint32_t n_regions, tt_ws_region_fn region, tt_ws_info *out)
{
    uint32_t bytes = total_bytes(n_regions, region);
    int found = 0;
    int32_t s;
    if (slot_bytes() < TT_WS_HEADER_BYTES + bytes)
        return TT_WS_ERR_NV;
    for (s = 0; s < 2; s++) {
        tt_ws_info info;
        uint32_t crc;
        int r = read_header(s, model_hash, bytes, &info);
        if (r < 0)
            return TT_WS_ERR_NV;
        if (r == 0 || data_crc(s, bytes, &crc) != 0 || crc != info.data_crc)
            continue;
        if (!found || info.generation > out->generation) {
            *out = info;
            found = 1;
        }
    }
    return found ? TT_WS_OK : TT_WS_NONE;
}

int tt_weights_load(const char *model_hash,
                    uint32_t n_regions, tt_ws_region_fn region, tt_ws_info *out)
{
    tt_ws_info info;
    uint32_t i, off;
    int r = tt_weights_newest(model_hash, n_regions, region, &info);
    if (r != TT_WS_OK)
        return r;
    off = (uint32_t)info.slot * slot_bytes() + TT_WS_HEADER_BYTES;
    for (i = 0; i < n_regions; i++) {
        uint32_t bytes;
        void *data = region(i, &bytes);
        if (tt_hal_nv_read(off, data, bytes) != 0)
            return TT_WS_ERR_NV;
        off += bytes;
    }
    *out = info;
    return TT_WS_OK;
}

int tt_weights_save(const char *model_hash, uint32_t steps,
                    uint32_t n_regions, tt_ws_region_fn region, tt_ws_info *out)
{
    uint8_t h[TT_WS_HEADER_BYTES];
    uint32_t bytes = total_bytes(n_regions, region);
    uint32_t generation = 1, crc = 0, i, base, off;
    int32_t s, target = 0, newest = -1;

    if (slot_bytes() < TT_WS_HEADER_BYTES + bytes)
        return TT_WS_ERR_NV;
    /* Any slot with a well-formed header counts for the generation, whatever its model,
     * so generations keep increasing across firmware updates. */
    for (s = 0; s < 2; s++) {
        if (tt_hal_nv_read((uint32_t)s * slot_bytes(), h, sizeof h) != 0)
            return TT_WS_ERR_NV;
        if (tt_get_u32(h) == TT_WS_MAGIC && tt_get_u32(h + 44) == tt_crc32(h, 44)
                && tt_get_u32(h + 4) >= generation) {
            generation = tt_get_u32(h + 4) + 1u;
            newest = s;
        }
    }
    {
        /* Overwrite the slot that does not hold the newest valid weights of this model. */
        tt_ws_info cur;
        if (tt_weights_newest(model_hash, n_regions, region, &cur) == TT_WS_OK)
            target = 1 - cur.slot;
        else
            target = newest < 0 ? 0 : 1 - newest;
    }
    base = (uint32_t)target * slot_bytes();

    memset(h, 0, sizeof h);
    if (tt_hal_nv_write(base, h, sizeof h) != 0)        /* invalidate first */
        return TT_WS_ERR_NV;
    off = base + TT_WS_HEADER_BYTES;
    for (i = 0; i < n_regions; i++) {
        uint32_t n;
        const void *data = region(i, &n);
        if (tt_hal_nv_write(off, data, n) != 0)
            return TT_WS_ERR_NV;
        crc = tt_crc32_update(crc, data, n);
        off += n;
    }
    tt_put_u32(h, TT_WS_MAGIC);
    tt_put_u32(h + 4, generation);
    memcpy(h + 8, model_hash, TT_WS_HASH_BYTES);
    tt_put_u32(h + 24, bytes);
    tt_put_u32(h + 28, crc);
    tt_put_u32(h + 32, steps);
    tt_put_u32(h + 44, tt_crc32(h, 44));
    if (tt_hal_nv_write(base, h, sizeof h) != 0)
        return TT_WS_ERR_NV;
    out->generation = generation;
    out->steps = steps;
    out->data_bytes = bytes;
    out->data_crc = crc;
    out->slot = target;
    return TT_WS_OK;
}
