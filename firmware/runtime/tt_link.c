/* Device side of the serial protocol: COBS framing with CRC-32, in-order execution by
 * sequence number, the last reply kept for retransmission (docs/protocol.md). */
#include "tt_link.h"

#include <string.h>

#include "model.h"
#include "tt_board.h"
#include "tt_cobs.h"
#include "tt_crc.h"
#include "tt_hal.h"
#include "tt_proto.h"
#include "tt_types.h"
#include "tt_weights_store.h"

#ifndef TT_MODEL_TRAINABLE
#define TT_MODEL_TRAINABLE 0
#endif
#ifndef TT_BOARD_NAME
#define TT_BOARD_NAME "unknown"
#endif
#ifndef TT_FIRMWARE_VERSION
#define TT_FIRMWARE_VERSION "0"
#endif
#ifndef TT_CORE
#define TT_CORE ""
#endif
#ifndef TT_SIMD
#define TT_SIMD 0
#endif
#ifndef TT_SRAM_BYTES
#define TT_SRAM_BYTES 0
#endif
#ifndef TT_FLASH_BYTES
#define TT_FLASH_BYTES 0
#endif
#ifndef TT_FLASH_DATA_BYTES
#define TT_FLASH_DATA_BYTES 0
#endif
#ifndef TT_INPUT_IS_INT8
#define TT_INPUT_IS_INT8 1
#endif
#ifndef TT_OUTPUT_IS_INT8
#define TT_OUTPUT_IS_INT8 1
#endif

#define TT_INPUT_BYTES  ((uint32_t)(TT_INPUT_SIZE * sizeof(tt_input_t)))
/* The same for the preprocessor (sizeof is not available there). */
#if TT_INPUT_IS_INT8
#define TT_INPUT_BYTES_CONST (TT_INPUT_SIZE)
#else
#define TT_INPUT_BYTES_CONST (TT_INPUT_SIZE * 4)
#endif
#define TT_OUTPUT_BYTES ((uint32_t)(TT_OUTPUT_SIZE * sizeof(tt_output_t)))
#define SEQ_NONE 0xFFFFu

/* Everything the link remembers, in one place. */
static struct {
    uint8_t rx[TT_PROTO_MAX_ENCODED];        /* encoded bytes of the frame being received */
    size_t rx_len;
    int rx_overflow;                         /* discarding up to the next delimiter */
    uint8_t tx_body[TT_PROTO_MAX_BODY];      /* reply being built */
    struct {                                 /* the last replies, resent on a duplicate */
        uint8_t frame[TT_PROTO_MAX_ENCODED + 1];  /* encoded + delimiter */
        size_t len;                          /* 0: empty */
        uint16_t seq;
        uint32_t req_crc;                    /* CRC of the request: a duplicate matches both */
    } ring[TT_PROTO_REPLY_RING];
    uint32_t ring_next;
    int synced;                              /* a request has been executed since boot */
    uint16_t last_seq;
    int nak_armed;                           /* send one TT_ERR_SEQ per gap, not one per frame */
    uint8_t mode;
    uint32_t steps;
    uint32_t train_n, train_correct, eval_n, eval_correct, infer_n;
    float train_loss_sum;
    uint32_t loaded_generation;              /* of the weights loaded from NV, 0 if none */
    tt_link_counters counters;
} L;

/* ---- frames out ------------------------------------------------------------------ */

static void send_encoded(const uint8_t *body, size_t n, uint8_t *enc, size_t cap, size_t *out_len)
{
    size_t len = tt_cobs_encode(body, n, enc, cap - 1);
    enc[len++] = 0;
    tt_hal_uart_write(enc, len);
    if (out_len)
        *out_len = len;
}

static size_t finish_body(uint8_t *body, uint8_t type, uint16_t seq, size_t payload)
{
    body[0] = (uint8_t)TT_PROTO_VERSION;
    body[1] = type;
    tt_put_u16(body + 2, seq);
    tt_put_u16(body + 4, (uint16_t)payload);
    tt_put_u32(body + 6 + payload, tt_crc32(body, 6 + payload));
    return 6 + payload + 4;
}

/* A short frame that is not a stored reply: a dropped-frame error or BUSY. */
static void send_control(uint8_t type, uint16_t seq, const uint8_t *payload, size_t n)
{
    uint8_t body[6 + 4 + 4], enc[TT_COBS_MAX_ENCODED(sizeof body) + 1];
    if (n > 0)
        memcpy(body + 6, payload, n);
    send_encoded(body, finish_body(body, type, seq, n), enc, sizeof enc, NULL);
}

/* An error about a frame that was not executed: not stored, never resent. */
static void send_drop_error(uint8_t code, uint8_t req_type, uint16_t seq, uint16_t detail)
{
    uint8_t p[4];
    p[0] = code;
    p[1] = req_type;
    tt_put_u16(p + 2, detail);
    send_control((uint8_t)TT_MSG_ERROR, seq, p, 4);
}

/* ---- request handlers: each fills the reply payload p and returns its length, or
 * (negative) -TT_ERR_x; *detail may carry a value for the error reply. ------------ */

#define PAYLOAD_CAP TT_PROTO_MAX_PAYLOAD

static uint32_t argmax_output(void)
{
    const tt_output_t *y = tt_model_output();
    uint32_t i, best = 0;
    for (i = 1; i < TT_OUTPUT_SIZE; i++)
        if (y[i] > y[best])
            best = i;
    return best;
}

#if TT_MODEL_TRAINABLE
static int is_finite(float v)
{
    return v == v && (v - v) == 0.0f;
}
#endif

static void copy_str(uint8_t *dst, const char *s, size_t cap)
{
    size_t n = strlen(s);
    memset(dst, 0, cap);
    memcpy(dst, s, n < cap ? n : cap);
}

static void put_f32(uint8_t *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    tt_put_u32(p, u);
}

#if TT_MODEL_TRAINABLE
static float get_f32(const uint8_t *p)
{
    uint32_t u = tt_get_u32(p);
    float v;
    memcpy(&v, &u, 4);
    return v;
}
#endif

#if TT_MODEL_TRAINABLE
static void model_hash16(uint8_t out[TT_WS_HASH_BYTES])
{
    copy_str(out, TT_MODEL_HASH, TT_WS_HASH_BYTES);
}
#endif

#if TT_MODEL_TRAINABLE
static void *param_region(uint32_t i, uint32_t *bytes)
{
    const tt_param_info *p = tt_model_param(i);
    *bytes = p->bytes;
    return p->data;
}

static uint32_t params_total(void)
{
    uint32_t i, total = 0;
    for (i = 0; i < tt_model_num_params(); i++)
        total += tt_model_param(i)->bytes;
    return total;
}

/* Copies between the concatenated parameters [off, off+n) and buf (to_params: direction). */
static void params_copy(uint32_t off, uint8_t *buf, uint32_t n, int to_params)
{
    uint32_t i, base = 0;
    for (i = 0; i < tt_model_num_params() && n > 0; i++) {
        const tt_param_info *p = tt_model_param(i);
        if (off < base + p->bytes) {
            uint32_t at = off - base, k = p->bytes - at < n ? p->bytes - at : n;
            if (to_params)
                memcpy((uint8_t *)p->data + at, buf, k);
            else
                memcpy(buf, (const uint8_t *)p->data + at, k);
            buf += k; off += k; n -= k;
        }
        base += p->bytes;
    }
}

static uint32_t params_crc(void)
{
    uint32_t i, crc = 0;
    for (i = 0; i < tt_model_num_params(); i++)
        crc = tt_crc32_update(crc, tt_model_param(i)->data, tt_model_param(i)->bytes);
    return crc;
}
#endif

static int do_hello(const uint8_t *q, size_t n, uint8_t *p)
{
    (void)q; (void)n;
    tt_put_u16(p, (uint16_t)TT_PROTO_VERSION);
    tt_put_u16(p + 2, (uint16_t)TT_PROTO_MAX_PAYLOAD);
    tt_put_u16(p + 4, (uint16_t)TT_PROTO_REPLY_RING);
    tt_put_u16(p + 6, 0);
    return 8;
}

static int do_describe(uint8_t *p)
{
    static const uint32_t in_shape[] = TT_INPUT_SHAPE, out_shape[] = TT_OUTPUT_SHAPE;
    uint32_t caps = TT_CAP_INFER, trainable = 0, nparams = 0, i;
    memset(p, 0, 240);
#if TT_MODEL_TRAINABLE
    caps |= TT_CAP_TRAIN | TT_CAP_HPARAMS;
    trainable = TT_TRAINABLE_BYTES;      /* parameters + everything their update keeps */
    nparams = tt_model_num_params();
#endif
    if (tt_hal_nv_size() > 0)
        caps |= TT_CAP_NV_STORE;
    tt_put_u16(p, (uint16_t)TT_PROTO_VERSION);
    tt_put_u16(p + 2, (uint16_t)TT_PROTO_MAX_PAYLOAD);
    tt_put_u32(p + 4, caps);
    copy_str(p + 8, TT_MODEL_HASH, 16);
    copy_str(p + 24, TT_MODEL_NAME, 32);
    copy_str(p + 56, TT_BOARD_NAME, 32);
    copy_str(p + 88, TT_FIRMWARE_VERSION, 16);
    copy_str(p + 104, TT_CORE, 16);
    copy_str(p + 120, tt_hal_work_unit(), 24);
    p[144] = TT_INPUT_IS_INT8 ? TT_DTYPE_S8 : TT_DTYPE_F32;
    p[145] = TT_OUTPUT_IS_INT8 ? TT_DTYPE_S8 : TT_DTYPE_F32;
    p[146] = (uint8_t)TT_INPUT_RANK;
    p[147] = (uint8_t)TT_OUTPUT_RANK;
    for (i = 0; i < TT_INPUT_RANK && i < 4; i++)
        tt_put_u32(p + 148 + 4 * i, in_shape[i]);
    for (i = 0; i < TT_OUTPUT_RANK && i < 4; i++)
        tt_put_u32(p + 164 + 4 * i, out_shape[i]);
    put_f32(p + 180, (float)TT_INPUT_SCALE);
    tt_put_u32(p + 184, (uint32_t)(int32_t)TT_INPUT_ZERO_POINT);
    put_f32(p + 188, (float)TT_OUTPUT_SCALE);
    tt_put_u32(p + 192, (uint32_t)(int32_t)TT_OUTPUT_ZERO_POINT);
    tt_put_u32(p + 196, (uint32_t)TT_ARENA_BYTES);
    tt_put_u32(p + 200, (uint32_t)TT_FLASH_DATA_BYTES);
    tt_put_u32(p + 204, (uint32_t)TT_SRAM_BYTES);
    tt_put_u32(p + 208, (uint32_t)TT_FLASH_BYTES);
    tt_put_u32(p + 212, (uint32_t)tt_hal_nv_size());
    tt_put_u32(p + 216, (uint32_t)sizeof L);
    tt_put_u32(p + 220, trainable);
    tt_put_u32(p + 224, nparams);
    tt_put_u32(p + 228, L.steps);
    tt_put_u32(p + 232, L.loaded_generation);
    p[236] = L.mode;
    p[237] = (uint8_t)(TT_SIMD ? 1 : 0);
    tt_put_u16(p + 238, (uint16_t)TT_PROTO_REPLY_RING);
    return 240;
}

/* A request's sample: none (use what INPUT_WRITE left in the input) or the whole input. */
static int take_sample(const uint8_t *s, size_t n)
{
    if (n == 0)
        return 0;
#if TT_INPUT_BYTES_CONST > TT_PROTO_MAX_PAYLOAD
    /* A sample larger than a frame only arrives through INPUT_WRITE. */
    (void)s;
    return -(int)TT_ERR_BAD_LENGTH;
#else
    if (n != TT_INPUT_BYTES)
        return -(int)TT_ERR_BAD_LENGTH;
    memcpy(tt_model_input(), s, n);
    return 0;
#endif
}

static int do_infer(const uint8_t *q, size_t n, uint8_t *p)
{
    uint32_t t0, work, k;
    int r = take_sample(q, n);
    if (r < 0)
        return r;
    t0 = tt_hal_work_count();
    tt_model_invoke();
    work = tt_hal_work_count() - t0;
    L.infer_n++;
    k = TT_OUTPUT_BYTES < PAYLOAD_CAP - 12 ? TT_OUTPUT_BYTES : PAYLOAD_CAP - 12;
    tt_put_u32(p, argmax_output());
    tt_put_u32(p + 4, work);
    tt_put_u32(p + 8, TT_OUTPUT_BYTES);
    memcpy(p + 12, tt_model_output(), k);
    return (int)(12 + k);
}

static int do_train(const uint8_t *q, size_t n, uint8_t *p, uint16_t *detail)
{
    int32_t label;
    uint32_t t0, pred;
    float loss;
    int r;
    if (n < 4)
        return -(int)TT_ERR_BAD_LENGTH;
    label = (int32_t)tt_get_u32(q);
    if (label < 0 || label >= (int32_t)TT_OUTPUT_SIZE)
        return -(int)TT_ERR_RANGE;
    r = take_sample(q + 4, n - 4);
    if (r < 0)
        return r;
    t0 = tt_hal_work_count();
    if (L.mode == TT_MODE_EVAL) {
        tt_model_invoke();
        pred = argmax_output();
        loss = 0.0f / 0.0f;                 /* eval mode reports no loss (NaN) */
        L.eval_n++;
        L.eval_correct += pred == (uint32_t)label;
    } else {
#if TT_MODEL_TRAINABLE
        /* The backward reuses the arena, output included: the step itself remembers the
         * forward's prediction. */
        loss = tt_model_train_step(label);
        pred = (uint32_t)tt_model_last_prediction();
        L.steps++;
        L.train_n++;
        L.train_correct += pred == (uint32_t)label;
        L.train_loss_sum += loss;
#else
        (void)detail;
        return -(int)TT_ERR_NOT_TRAINABLE;
#endif
    }
    (void)detail;
    put_f32(p, loss);
    tt_put_u32(p + 4, pred);
    p[8] = (uint8_t)(pred == (uint32_t)label);
    p[9] = L.mode;
    p[10] = 0;
    p[11] = 0;
    tt_put_u32(p + 12, L.steps);
    tt_put_u32(p + 16, tt_hal_work_count() - t0);
    return 20;
}

static int do_input_write(const uint8_t *q, size_t n)
{
    uint32_t off;
    if (n < 4)
        return -(int)TT_ERR_BAD_LENGTH;
    off = tt_get_u32(q);
    if (off > TT_INPUT_BYTES || n - 4 > TT_INPUT_BYTES - off)
        return -(int)TT_ERR_RANGE;
    memcpy((uint8_t *)tt_model_input() + off, q + 4, n - 4);
    return 0;
}

/* Shared by OUTPUT_READ and WEIGHTS_READ: u32 offset, u16 length within total bytes. */
static int read_range(const uint8_t *q, size_t n, uint32_t total, uint32_t *off, uint32_t *len)
{
    if (n != 6)
        return -(int)TT_ERR_BAD_LENGTH;
    *off = tt_get_u32(q);
    *len = tt_get_u16(q + 4);
    if (*len > PAYLOAD_CAP || *off > total || *len > total - *off)
        return -(int)TT_ERR_RANGE;
    return 0;
}

static int do_output_read(const uint8_t *q, size_t n, uint8_t *p)
{
    uint32_t off, len;
    int r = read_range(q, n, TT_OUTPUT_BYTES, &off, &len);
    if (r < 0)
        return r;
    memcpy(p, (const uint8_t *)tt_model_output() + off, len);
    return (int)len;
}

static int do_set_mode(const uint8_t *q, size_t n, uint8_t *p)
{
    if (n != 1)
        return -(int)TT_ERR_BAD_LENGTH;
    if (q[0] != TT_MODE_TRAIN && q[0] != TT_MODE_EVAL)
        return -(int)TT_ERR_RANGE;
    L.mode = q[0];
    p[0] = L.mode;
    return 1;
}

static int do_get_stats(uint8_t *p)
{
    tt_put_u32(p, L.steps);
    p[4] = L.mode;
    p[5] = p[6] = p[7] = 0;
    tt_put_u32(p + 8, L.train_n);
    tt_put_u32(p + 12, L.train_correct);
    put_f32(p + 16, L.train_loss_sum);
    tt_put_u32(p + 20, L.eval_n);
    tt_put_u32(p + 24, L.eval_correct);
    tt_put_u32(p + 28, L.infer_n);
    return 32;
}

static void reset_stats(void)
{
    L.train_n = L.train_correct = L.eval_n = L.eval_correct = L.infer_n = 0;
    L.train_loss_sum = 0.0f;
}

static int do_link_stats(uint8_t *p)
{
    tt_put_u32(p + 0, L.counters.frames_ok);
    tt_put_u32(p + 4, L.counters.crc_errors);
    tt_put_u32(p + 8, L.counters.too_long);
    tt_put_u32(p + 12, L.counters.malformed);
    tt_put_u32(p + 16, L.counters.bad_version);
    tt_put_u32(p + 20, L.counters.seq_errors);
    tt_put_u32(p + 24, L.counters.duplicates);
    tt_put_u32(p + 28, L.counters.executed);
    tt_put_u32(p + 32, L.counters.unknown_type);
    return 36;
}

#if TT_MODEL_TRAINABLE
static int do_set_hparams(const uint8_t *q, size_t n, uint8_t *p)
{
    float lr, mom, wd;
    if (n != 12)
        return -(int)TT_ERR_BAD_LENGTH;
    lr = get_f32(q);
    mom = get_f32(q + 4);
    wd = get_f32(q + 8);
    if (!is_finite(lr) || !is_finite(mom) || !is_finite(wd) || lr < 0.0f || mom < 0.0f
            || mom >= 1.0f || wd < 0.0f)
        return -(int)TT_ERR_RANGE;
    tt_model_set_hparams(lr, mom, wd);
    tt_model_get_hparams(&lr, &mom, &wd);
    put_f32(p, lr);
    put_f32(p + 4, mom);
    put_f32(p + 8, wd);
    return 12;
}

static int do_get_hparams(uint8_t *p)
{
    float lr, mom, wd;
    tt_model_get_hparams(&lr, &mom, &wd);
    put_f32(p, lr);
    put_f32(p + 4, mom);
    put_f32(p + 8, wd);
    return 12;
}

static int do_param_info(const uint8_t *q, size_t n, uint8_t *p)
{
    uint32_t idx, i, off = 0;
    const tt_param_info *info;
    size_t name_len;
    if (n != 4)
        return -(int)TT_ERR_BAD_LENGTH;
    idx = tt_get_u32(q);
    if (idx >= tt_model_num_params())
        return -(int)TT_ERR_RANGE;
    for (i = 0; i < idx; i++)
        off += tt_model_param(i)->bytes;
    info = tt_model_param(idx);
    name_len = strlen(info->name);
    if (name_len > 64)
        name_len = 64;
    tt_put_u32(p, info->bytes);
    tt_put_u32(p + 4, off);
    p[8] = info->dtype;
    p[9] = (uint8_t)name_len;
    memcpy(p + 10, info->name, name_len);
    return (int)(10 + name_len);
}

static int do_weights_read(const uint8_t *q, size_t n, uint8_t *p)
{
    uint32_t off, len;
    int r = read_range(q, n, params_total(), &off, &len);
    if (r < 0)
        return r;
    params_copy(off, p, len, 0);
    return (int)len;
}

static int do_weights_write(const uint8_t *q, size_t n, uint8_t *p)
{
    uint32_t off, total = params_total();
    if (n < 4)
        return -(int)TT_ERR_BAD_LENGTH;
    off = tt_get_u32(q);
    if (off > total || n - 4 > total - off)
        return -(int)TT_ERR_RANGE;
    params_copy(off, (uint8_t *)q + 4, (uint32_t)(n - 4), 1);
    tt_put_u32(p, (uint32_t)(n - 4));
    return 4;
}

static int do_weights_crc(uint8_t *p)
{
    tt_put_u32(p, params_total());
    tt_put_u32(p + 4, params_crc());
    return 8;
}

static int put_store_info(int r, const tt_ws_info *info, uint8_t *p)
{
    if (r == TT_WS_NONE)
        return -(int)TT_ERR_NO_SAVED;
    if (r != TT_WS_OK)
        return -(int)TT_ERR_NV;
    tt_put_u32(p, info->generation);
    tt_put_u32(p + 4, info->steps);
    tt_put_u32(p + 8, info->data_bytes);
    tt_put_u32(p + 12, info->data_crc);
    p[16] = (uint8_t)info->slot;
    p[17] = p[18] = p[19] = 0;
    return 20;
}

static int do_weights_save(uint8_t *p)
{
    uint8_t hash[TT_WS_HASH_BYTES];
    tt_ws_info info;
    int r;
    model_hash16(hash);
    r = tt_weights_save((const char *)hash, L.steps, tt_model_num_params(), param_region, &info);
    return put_store_info(r, &info, p);
}

static int do_weights_load(uint8_t *p)
{
    uint8_t hash[TT_WS_HASH_BYTES];
    tt_ws_info info;
    int r;
    model_hash16(hash);
    r = tt_weights_load((const char *)hash, tt_model_num_params(), param_region, &info);
    if (r == TT_WS_OK) {
        L.steps = info.steps;
        L.loaded_generation = info.generation;
    }
    return put_store_info(r, &info, p);
}
#endif /* TT_MODEL_TRAINABLE */

static int execute(uint8_t type, const uint8_t *q, size_t n, uint8_t *p, uint16_t *detail)
{
    switch (type) {
    case TT_MSG_HELLO:       return do_hello(q, n, p);
    case TT_MSG_DESCRIBE:    return n ? -(int)TT_ERR_BAD_LENGTH : do_describe(p);
    case TT_MSG_INFER:       return do_infer(q, n, p);
    case TT_MSG_TRAIN:       return do_train(q, n, p, detail);
    case TT_MSG_INPUT_WRITE: return do_input_write(q, n);
    case TT_MSG_OUTPUT_READ: return do_output_read(q, n, p);
    case TT_MSG_SET_MODE:    return do_set_mode(q, n, p);
    case TT_MSG_GET_STATS:   return n ? -(int)TT_ERR_BAD_LENGTH : do_get_stats(p);
    case TT_MSG_RESET_STATS:
        if (n)
            return -(int)TT_ERR_BAD_LENGTH;
        reset_stats();
        return 0;
    case TT_MSG_LINK_STATS:  return n ? -(int)TT_ERR_BAD_LENGTH : do_link_stats(p);
    case TT_MSG_ECHO:
        memcpy(p, q, n);
        return (int)n;
#if TT_MODEL_TRAINABLE
    case TT_MSG_SET_HPARAMS:   return do_set_hparams(q, n, p);
    case TT_MSG_GET_HPARAMS:   return n ? -(int)TT_ERR_BAD_LENGTH : do_get_hparams(p);
    case TT_MSG_PARAM_INFO:    return do_param_info(q, n, p);
    case TT_MSG_WEIGHTS_READ:  return do_weights_read(q, n, p);
    case TT_MSG_WEIGHTS_WRITE: return do_weights_write(q, n, p);
    case TT_MSG_WEIGHTS_CRC:   return n ? -(int)TT_ERR_BAD_LENGTH : do_weights_crc(p);
    case TT_MSG_WEIGHTS_SAVE:  return n ? -(int)TT_ERR_BAD_LENGTH : do_weights_save(p);
    case TT_MSG_WEIGHTS_LOAD:  return n ? -(int)TT_ERR_BAD_LENGTH : do_weights_load(p);
#else
    case TT_MSG_SET_HPARAMS: case TT_MSG_GET_HPARAMS: case TT_MSG_PARAM_INFO:
    case TT_MSG_WEIGHTS_READ: case TT_MSG_WEIGHTS_WRITE: case TT_MSG_WEIGHTS_CRC:
    case TT_MSG_WEIGHTS_SAVE: case TT_MSG_WEIGHTS_LOAD:
        return -(int)TT_ERR_NOT_TRAINABLE;
#endif
    default:
        L.counters.unknown_type++;
        return -(int)TT_ERR_UNKNOWN_TYPE;
    }
}

/* Executes a valid in-sequence request, stores its encoded reply and sends it. */
static void execute_and_reply(uint8_t type, uint16_t seq, uint32_t req_crc, const uint8_t *q, size_t n)
{
    uint8_t *p = L.tx_body + TT_PROTO_HEADER_BYTES;
    uint16_t detail = 0;
    int r;
    /* Long requests: tell the host now, so it can tell a lost frame from a slow step. */
    if (type == TT_MSG_INFER || type == TT_MSG_TRAIN || type == TT_MSG_WEIGHTS_SAVE
            || type == TT_MSG_WEIGHTS_LOAD)
        send_control((uint8_t)TT_MSG_BUSY, seq, NULL, 0);
    r = execute(type, q, n, p, &detail);
    size_t body_len;
    if (r >= 0) {
        body_len = finish_body(L.tx_body, (uint8_t)(type | TT_MSG_REPLY), seq, (size_t)r);
    } else {
        p[0] = (uint8_t)(-r);
        p[1] = type;
        tt_put_u16(p + 2, detail);
        body_len = finish_body(L.tx_body, (uint8_t)TT_MSG_ERROR, seq, 4);
    }
    L.counters.executed++;
    {
        uint32_t slot = L.ring_next++ % TT_PROTO_REPLY_RING;
        L.ring[slot].seq = seq;
        L.ring[slot].req_crc = req_crc;
        send_encoded(L.tx_body, body_len, L.ring[slot].frame, sizeof L.ring[slot].frame,
                     &L.ring[slot].len);
    }
}

/* A repeat of one of the last requests: resend its stored reply. */
static int resend_duplicate(uint16_t seq, uint32_t req_crc)
{
    uint32_t i;
    for (i = 0; i < TT_PROTO_REPLY_RING; i++) {
        if (L.ring[i].len > 0 && L.ring[i].seq == seq && L.ring[i].req_crc == req_crc) {
            tt_hal_uart_write(L.ring[i].frame, L.ring[i].len);
            return 1;
        }
    }
    return 0;
}

/* ---- frames in ------------------------------------------------------------------- */

static void handle_frame(uint8_t *frame, size_t enc_len)
{
    int n = tt_cobs_decode(frame, enc_len, frame, enc_len);
    uint16_t seq, len;
    uint32_t crc;
    uint8_t type;

    if (n < (int)(TT_PROTO_HEADER_BYTES + TT_PROTO_CRC_BYTES)) {
        L.counters.malformed++;
        L.nak_armed = 1;
        send_drop_error(TT_ERR_MALFORMED, 0, SEQ_NONE, 0);
        return;
    }
    crc = tt_get_u32(frame + n - 4);
    if (crc != tt_crc32(frame, (size_t)n - 4)) {
        L.counters.crc_errors++;
        L.nak_armed = 1;
        send_drop_error(TT_ERR_CRC, 0, SEQ_NONE, 0);
        return;
    }
    type = frame[1];
    seq = tt_get_u16(frame + 2);
    len = tt_get_u16(frame + 4);
    if (frame[0] != TT_PROTO_VERSION) {
        L.counters.bad_version++;
        send_drop_error(TT_ERR_VERSION, type, seq, (uint16_t)TT_PROTO_VERSION);
        return;
    }
    if ((size_t)len + TT_PROTO_HEADER_BYTES + TT_PROTO_CRC_BYTES != (size_t)n) {
        L.counters.malformed++;
        L.nak_armed = 1;
        send_drop_error(TT_ERR_MALFORMED, type, seq, 0);
        return;
    }
    L.counters.frames_ok++;
    if (resend_duplicate(seq, crc)) {
        L.counters.duplicates++;
        return;
    }
    if (type == TT_MSG_HELLO || !L.synced || seq == (uint16_t)(L.last_seq + 1u)) {
        if (type == TT_MSG_HELLO)        /* a new session: forget the old replies */
            memset(L.ring, 0, sizeof L.ring);
        L.synced = 1;
        L.last_seq = seq;
        L.nak_armed = 1;
        execute_and_reply(type, seq, crc, frame + TT_PROTO_HEADER_BYTES, len);
        return;
    }
    L.counters.seq_errors++;
    if (L.nak_armed) {
        L.nak_armed = 0;
        send_drop_error(TT_ERR_SEQ, type, seq, (uint16_t)(L.last_seq + 1u));
    }
}

void tt_link_receive(const uint8_t *buf, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        uint8_t b = buf[i];
        if (b != 0) {
            if (L.rx_len < sizeof L.rx)
                L.rx[L.rx_len++] = b;
            else
                L.rx_overflow = 1;
            continue;
        }
        if (L.rx_overflow) {
            L.counters.too_long++;
            L.nak_armed = 1;
            send_drop_error(TT_ERR_TOO_LONG, 0, SEQ_NONE, 0);
        } else if (L.rx_len > 0) {
            handle_frame(L.rx, L.rx_len);
        }
        L.rx_len = 0;                 /* empty frames (0x00 0x00) are line idle: ignored */
        L.rx_overflow = 0;
    }
}

void tt_link_service(void)
{
    uint8_t buf[64];
    int n = tt_hal_uart_read(buf, sizeof buf);
    if (n <= 0) {
        tt_hal_idle();
        return;
    }
    tt_link_receive(buf, (size_t)n);
}

const tt_link_counters *tt_link_get_counters(void)
{
    return &L.counters;
}

void tt_link_init(void)
{
    memset(&L, 0, sizeof L);
    L.mode = TT_MODE_TRAIN;
    L.nak_armed = 1;
#if TT_MODEL_TRAINABLE
    if (tt_hal_nv_size() > 0) {
        uint8_t hash[TT_WS_HASH_BYTES];
        tt_ws_info info;
        model_hash16(hash);
        if (tt_weights_load((const char *)hash, tt_model_num_params(), param_region, &info) == TT_WS_OK) {
            L.steps = info.steps;
            L.loaded_generation = info.generation;
        }
    }
#endif
}
