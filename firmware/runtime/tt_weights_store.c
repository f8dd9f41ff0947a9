/* A/B weight slots and the device record on the non-volatile store (tt_weights_store.h). */
#include "tt_weights_store.h"

#include <string.h>

#include "tt_crc.h"
#include "tt_hal.h"

static uint32_t total_bytes(uint32_t n_regions, tt_ws_region_fn region)
{
    uint32_t i, total = 0, bytes;
    for (i = 0; i < n_regions; i++) {
        (void)region(i, &bytes);
        total += bytes;
    }
    return total;
}

uint32_t tt_weights_slot_bytes(void)
{
    size_t nv = tt_hal_nv_size();
    return nv > TT_NV_RECORD_AREA ? (uint32_t)((nv - TT_NV_RECORD_AREA) / 2u) : 0u;
}

static uint32_t slot_base(int32_t s)
{
    return (uint32_t)s * tt_weights_slot_bytes();
}

static int fits(uint32_t data_bytes)
{
    return tt_weights_slot_bytes() >= TT_WS_HEADER_BYTES
        && data_bytes <= tt_weights_slot_bytes() - TT_WS_HEADER_BYTES;
}

/* Reads slot s's header: 1 well formed (magic and header CRC), 0 not, <0 I/O. */
static int read_raw_header(int32_t s, uint8_t h[TT_WS_HEADER_BYTES])
{
    if (tt_hal_nv_read(slot_base(s), h, TT_WS_HEADER_BYTES) != 0)
        return -1;
    return tt_get_u32(h) == TT_NV_SLOT_MAGIC && tt_get_u32(h + 44) == tt_crc32(h, 44);
}

/* Checks slot s's header for this model and size (not the data CRC). 1 valid, 0 not, <0 I/O. */
static int read_header(int32_t s, const char *model_hash, uint32_t data_bytes, tt_ws_info *info)
{
    uint8_t h[TT_WS_HEADER_BYTES];
    int r = read_raw_header(s, h);
    if (r <= 0)
        return r;
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
    uint32_t off = slot_base(s) + TT_WS_HEADER_BYTES, done = 0;
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

int tt_weights_newest(const char *model_hash, uint32_t bytes, tt_ws_info *out)
{
    int found = 0;
    int32_t s;
    if (!fits(bytes))
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
    int r = tt_weights_newest(model_hash, total_bytes(n_regions, region), &info);
    if (r != TT_WS_OK)
        return r;
    off = slot_base(info.slot) + TT_WS_HEADER_BYTES;
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

int tt_weights_stage_begin(const char *model_hash, uint32_t data_bytes, tt_ws_stage *st)
{
    uint8_t h[TT_WS_HEADER_BYTES];
    uint32_t generation = 1;
    int32_t s, newest = -1;
    tt_ws_info cur;
    if (!fits(data_bytes))
        return TT_WS_ERR_NV;
    /* Any slot with a well-formed header counts for the generation, whatever its model,
     * so generations keep increasing across firmware updates. */
    for (s = 0; s < 2; s++) {
        int r = read_raw_header(s, h);
        if (r < 0)
            return TT_WS_ERR_NV;
        if (r == 1 && tt_get_u32(h + 4) >= generation) {
            generation = tt_get_u32(h + 4) + 1u;
            newest = s;
        }
    }
    /* Overwrite the slot that does not hold the newest valid weights of this model. */
    if (tt_weights_newest(model_hash, data_bytes, &cur) == TT_WS_OK)
        st->slot = 1 - cur.slot;
    else
        st->slot = newest < 0 ? 0 : 1 - newest;
    st->generation = generation;
    st->data_bytes = data_bytes;
    memset(h, 0, sizeof h);
    return tt_hal_nv_write(slot_base(st->slot), h, sizeof h) == 0 ? TT_WS_OK : TT_WS_ERR_NV;
}

int tt_weights_stage_write(const tt_ws_stage *st, uint32_t off, const void *src, uint32_t n)
{
    if (off > st->data_bytes || n > st->data_bytes - off)
        return TT_WS_ERR_NV;
    return tt_hal_nv_write(slot_base(st->slot) + TT_WS_HEADER_BYTES + off, src, n) == 0
        ? TT_WS_OK : TT_WS_ERR_NV;
}

int tt_weights_stage_read(const tt_ws_stage *st, uint32_t off, void *dst, uint32_t n)
{
    if (off > st->data_bytes || n > st->data_bytes - off)
        return TT_WS_ERR_NV;
    return tt_hal_nv_read(slot_base(st->slot) + TT_WS_HEADER_BYTES + off, dst, n) == 0
        ? TT_WS_OK : TT_WS_ERR_NV;
}

int tt_weights_stage_crc(const tt_ws_stage *st, uint32_t *crc)
{
    return data_crc(st->slot, st->data_bytes, crc) == 0 ? TT_WS_OK : TT_WS_ERR_NV;
}

int tt_weights_stage_commit(const tt_ws_stage *st, const char *model_hash, uint32_t expect_crc,
                            uint32_t steps, tt_ws_info *out)
{
    uint8_t h[TT_WS_HEADER_BYTES];
    uint32_t crc;
    if (tt_weights_stage_crc(st, &crc) != TT_WS_OK)
        return TT_WS_ERR_NV;
    if (crc != expect_crc)
        return TT_WS_NONE;
    memset(h, 0, sizeof h);
    tt_put_u32(h, TT_NV_SLOT_MAGIC);
    tt_put_u32(h + 4, st->generation);
    memcpy(h + 8, model_hash, TT_WS_HASH_BYTES);
    tt_put_u32(h + 24, st->data_bytes);
    tt_put_u32(h + 28, crc);
    tt_put_u32(h + 32, steps);
    tt_put_u32(h + 44, tt_crc32(h, 44));
    if (tt_hal_nv_write(slot_base(st->slot), h, sizeof h) != 0)
        return TT_WS_ERR_NV;
    out->generation = st->generation;
    out->steps = steps;
    out->data_bytes = st->data_bytes;
    out->data_crc = crc;
    out->slot = st->slot;
    return TT_WS_OK;
}

int tt_weights_save(const char *model_hash, uint32_t steps,
                    uint32_t n_regions, tt_ws_region_fn region, tt_ws_info *out)
{
    tt_ws_stage st;
    uint32_t i, off = 0, crc = 0;
    int r = tt_weights_stage_begin(model_hash, total_bytes(n_regions, region), &st);
    if (r != TT_WS_OK)
        return r;
    for (i = 0; i < n_regions; i++) {
        uint32_t n;
        const void *data = region(i, &n);
        if (tt_weights_stage_write(&st, off, data, n) != TT_WS_OK)
            return TT_WS_ERR_NV;
        crc = tt_crc32_update(crc, data, n);
        off += n;
    }
    r = tt_weights_stage_commit(&st, model_hash, crc, steps, out);
    return r == TT_WS_OK ? TT_WS_OK : TT_WS_ERR_NV;
}

/* ---- the device record --------------------------------------------------------------- */

static uint32_t record_base(int copy)
{
    return (uint32_t)(tt_hal_nv_size() - TT_NV_RECORD_AREA) + (uint32_t)copy * TT_NV_RECORD_BYTES;
}

int tt_nv_counter_next(uint32_t *value)
{
    uint8_t r[TT_NV_RECORD_BYTES];
    uint32_t best = 0;
    int copy, newest = -1;
    if (tt_hal_nv_size() < TT_NV_RECORD_AREA)
        return TT_WS_ERR_NV;
    for (copy = 0; copy < 2; copy++) {
        if (tt_hal_nv_read(record_base(copy), r, sizeof r) != 0)
            return TT_WS_ERR_NV;
        if (tt_get_u32(r) == TT_NV_RECORD_MAGIC && tt_get_u32(r + 12) == tt_crc32(r, 12)
                && (newest < 0 || tt_get_u32(r + 4) > best)) {
            best = tt_get_u32(r + 4);
            newest = copy;
        }
    }
    if (best == 0xFFFFFFFFu)
        return TT_WS_ERR_NV;             /* exhausted: never wrap to a used value */
    memset(r, 0, sizeof r);
    tt_put_u32(r, TT_NV_RECORD_MAGIC);
    tt_put_u32(r + 4, best + 1u);
    tt_put_u32(r + 12, tt_crc32(r, 12));
    /* Overwrite the older copy: a torn write leaves the newer one (value best) intact, and
     * the value returned is only used once this write is durable. */
    if (tt_hal_nv_write(record_base(newest == 0 ? 1 : 0), r, sizeof r) != 0)
        return TT_WS_ERR_NV;
    *value = best + 1u;
    return TT_WS_OK;
}
