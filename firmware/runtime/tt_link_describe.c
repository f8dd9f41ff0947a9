/* DESCRIBE: the device's description as TLV records, served in pages (docs/protocol.md). */
#include "tt_link_internal.h"

#include "tt_auth.h"
#include "tt_hal.h"

/* DESCRIBE: TLV records written through a window [from, from + cap), so a page of any
 * offset is produced without building the whole description in RAM. */
typedef struct {
    uint8_t *out;
    uint32_t pos, from, cap;
} tlv_writer;

static void tlv_bytes(tlv_writer *w, const void *src, uint32_t n)
{
    const uint8_t *b = (const uint8_t *)src;
    uint32_t i;
    for (i = 0; i < n; i++, w->pos++)
        if (w->pos >= w->from && w->pos - w->from < w->cap)
            w->out[w->pos - w->from] = b[i];
}

static void tlv(tlv_writer *w, uint8_t tag, const void *value, uint32_t n)
{
    uint8_t head[2];
    head[0] = tag;
    head[1] = (uint8_t)n;
    tlv_bytes(w, head, 2);
    tlv_bytes(w, value, n);
}

static void tlv_u32(tlv_writer *w, uint8_t tag, uint32_t v)
{
    uint8_t b[4];
    tt_put_u32(b, v);
    tlv(w, tag, b, 4);
}

static void tlv_u16(tlv_writer *w, uint8_t tag, uint16_t v)
{
    uint8_t b[2];
    tt_put_u16(b, v);
    tlv(w, tag, b, 2);
}

static void tlv_u8(tlv_writer *w, uint8_t tag, uint8_t v)
{
    tlv(w, tag, &v, 1);
}

static void tlv_str(tlv_writer *w, uint8_t tag, const char *s)
{
    size_t n = strlen(s);
    tlv(w, tag, s, n < 255 ? (uint32_t)n : 255u);
}

static void tlv_f32(tlv_writer *w, uint8_t tag, float v)
{
    uint8_t b[4];
    put_f32(b, v);
    tlv(w, tag, b, 4);
}

static void tlv_shape(tlv_writer *w, uint8_t tag, const uint32_t *shape, uint32_t rank)
{
    uint8_t b[4 * 8];
    uint32_t i;
    if (rank > 8)
        rank = 8;
    for (i = 0; i < rank; i++)
        tt_put_u32(b + 4 * i, shape[i]);
    tlv(w, tag, b, 4 * rank);
}

static void describe_records(tlv_writer *w)
{
    static const uint32_t in_shape[] = TT_INPUT_SHAPE, out_shape[] = TT_OUTPUT_SHAPE;
    uint32_t caps = TT_CAP_INFER | TT_CAP_AUTH | (TT_AUTH_READS ? TT_CAP_AUTH_READS : 0u);
    uint32_t trainable = 0, nparams = 0, spare = 0;
#if TT_MODEL_TRAINABLE
    caps |= TT_CAP_TRAIN | TT_CAP_HPARAMS;
    trainable = TT_TRAINABLE_BYTES;           /* parameters + everything their update keeps */
    nparams = tt_model_num_params();
    spare = tt_link_spare_bytes();
    if (tt_link_spare_holds_params())
        caps |= TT_CAP_SPARE_RAM;
#endif
    if (tt_hal_nv_size() > 0)
        caps |= TT_CAP_NV_STORE;
    tlv_u16(w, TT_DESC_PROTOCOL_VERSION, (uint16_t)TT_PROTO_VERSION);
    tlv_u16(w, TT_DESC_MAX_PAYLOAD, (uint16_t)TT_PROTO_MAX_PAYLOAD);
    tlv_u32(w, TT_DESC_CAPABILITIES, caps);
    tlv_str(w, TT_DESC_MODEL_HASH, TT_MODEL_HASH);
    tlv_str(w, TT_DESC_MODEL_NAME, TT_MODEL_NAME);
    tlv_str(w, TT_DESC_BOARD, TT_BOARD_NAME);
    tlv_str(w, TT_DESC_FIRMWARE_VERSION, TT_FIRMWARE_VERSION);
    tlv_str(w, TT_DESC_CORE, TT_CORE);
    tlv_str(w, TT_DESC_WORK_UNIT, tt_hal_work_unit());
    tlv_u8(w, TT_DESC_INPUT_DTYPE, TT_INPUT_IS_INT8 ? TT_DTYPE_S8 : TT_DTYPE_F32);
    tlv_u8(w, TT_DESC_OUTPUT_DTYPE, TT_OUTPUT_IS_INT8 ? TT_DTYPE_S8 : TT_DTYPE_F32);
    tlv_shape(w, TT_DESC_INPUT_SHAPE, in_shape, TT_INPUT_RANK);
    tlv_shape(w, TT_DESC_OUTPUT_SHAPE, out_shape, TT_OUTPUT_RANK);
    tlv_f32(w, TT_DESC_INPUT_SCALE, (float)TT_INPUT_SCALE);
    tlv_u32(w, TT_DESC_INPUT_ZERO_POINT, (uint32_t)(int32_t)TT_INPUT_ZERO_POINT);
    tlv_f32(w, TT_DESC_OUTPUT_SCALE, (float)TT_OUTPUT_SCALE);
    tlv_u32(w, TT_DESC_OUTPUT_ZERO_POINT, (uint32_t)(int32_t)TT_OUTPUT_ZERO_POINT);
    tlv_u32(w, TT_DESC_ARENA_BYTES, (uint32_t)TT_ARENA_BYTES);
    tlv_u32(w, TT_DESC_FLASH_DATA_BYTES, (uint32_t)TT_FLASH_DATA_BYTES);
    tlv_u32(w, TT_DESC_SRAM_BYTES, (uint32_t)TT_SRAM_BYTES);
    tlv_u32(w, TT_DESC_FLASH_BYTES, (uint32_t)TT_FLASH_BYTES);
    tlv_u32(w, TT_DESC_NV_BYTES, (uint32_t)tt_hal_nv_size());
    tlv_u32(w, TT_DESC_LINK_RAM_BYTES, (uint32_t)sizeof L + spare);
    tlv_u32(w, TT_DESC_TRAINABLE_BYTES, trainable);
    tlv_u32(w, TT_DESC_NUM_PARAMS, nparams);
    tlv_u32(w, TT_DESC_STEPS, L.steps);
    tlv_u32(w, TT_DESC_LOADED_GENERATION, L.loaded_generation);
    tlv_u8(w, TT_DESC_MODE, L.mode);
    tlv_str(w, TT_DESC_SIMD, TT_SIMD);
    tlv_u16(w, TT_DESC_REPLY_RING, (uint16_t)TT_PROTO_REPLY_RING);
    tlv_u16(w, TT_DESC_MAX_REPLY, (uint16_t)TT_PROTO_MAX_REPLY);
    tlv(w, TT_DESC_KEY_ID, tt_auth_key_id(), TT_PROTO_KEY_ID_BYTES);
    tlv_u32(w, TT_DESC_SPARE_BYTES, spare);
#if TT_MODEL_TRAINABLE
    {
        float lr, momentum, weight_decay;
        tt_model_get_hparams(&lr, &momentum, &weight_decay);
        tlv_f32(w, TT_DESC_LR, lr);
        tlv_f32(w, TT_DESC_MOMENTUM, momentum);
        tlv_f32(w, TT_DESC_WEIGHT_DECAY, weight_decay);
        tlv_str(w, TT_DESC_UPDATE_MODE, TT_UPDATE_MODE_NAME);
        tlv_u32(w, TT_DESC_UPDATE_EXTRA_BYTES, (uint32_t)TT_UPDATE_EXTRA_BYTES);
        tlv_u32(w, TT_DESC_MOMENTUM_BYTES, (uint32_t)TT_MOMENTUM_BYTES);
        tlv_u32(w, TT_DESC_PARAM_BYTES, tt_link_params_total());
    }
#endif
}

int tt_link_describe(const uint8_t *q, size_t n, uint8_t *p, size_t cap)
{
    tlv_writer w;
    uint32_t offset, page;
    if (n != TT_DESCRIBE_REQUEST_BYTES)
        return FAIL(TT_ERR_BAD_LENGTH);
    offset = tt_get_u16(q + TT_DESCRIBE_REQUEST_OFF_OFFSET);
    w.out = p + TT_DESCRIBE_REPLY_BYTES;
    w.pos = 0;
    w.from = offset;
    w.cap = (uint32_t)cap - TT_DESCRIBE_REPLY_BYTES;
    describe_records(&w);
    if (offset > w.pos)
        return FAIL(TT_ERR_RANGE);
    page = w.pos - offset < w.cap ? w.pos - offset : w.cap;
    tt_put_u16(p + TT_DESCRIBE_REPLY_OFF_TOTAL, (uint16_t)w.pos);
    tt_put_u16(p + TT_DESCRIBE_REPLY_OFF_OFFSET, (uint16_t)offset);
    return (int)(TT_DESCRIBE_REPLY_BYTES + page);
}

