/* Device side of the serial protocol (docs/protocol.md): COBS framing with CRC-32, in-order
 * execution by sequence number, the last replies kept for retransmission (exactly-once),
 * authenticated sessions (tt_auth.c), batched training, transactional weight pushes. */
#include "tt_link.h"

#include <string.h>

#include "model.h"
#include "tt_auth.h"
#include "tt_board.h"
#include "tt_cobs.h"
#include "tt_crc.h"
#include "tt_device_key.h"
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
#define TT_SIMD "none"        /* a string, as a board file's "simd": none, dsp, helium */
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
#ifndef TT_AUTH_READS
#define TT_AUTH_READS 0
#endif
#if TT_MODEL_TRAINABLE && !defined(TT_LINK_SPARE)
#define TT_LINK_SPARE 1
#endif
#ifndef TT_LINK_SPARE
#define TT_LINK_SPARE 0
#endif

#define INPUT_BYTES  ((uint32_t)(TT_INPUT_SIZE * sizeof(tt_input_t)))
#define MAYBE_UNUSED __attribute__((unused))   /* helpers some build variants do not call */
#define OUTPUT_BYTES ((uint32_t)(TT_OUTPUT_SIZE * sizeof(tt_output_t)))
#define TAG TT_PROTO_TAG_BYTES
#define FAIL(code) (-(int)(code))

/* Everything the link remembers, in one place. */
static struct {
    uint8_t rx[TT_PROTO_MAX_ENCODED];        /* encoded bytes of the frame being received */
    size_t rx_len;
    int rx_overflow;                         /* discarding up to the next delimiter */
    uint8_t tx_body[TT_PROTO_REPLY_BODY];    /* reply being built */
    struct {                                 /* the last replies, resent on a duplicate */
        uint8_t frame[TT_PROTO_ENCODED(TT_PROTO_REPLY_BODY) + 1];  /* encoded + delimiter */
        size_t len;                          /* 0: empty */
        uint16_t seq;
        uint32_t req_crc;                    /* CRC of the request: a duplicate matches both */
    } ring[TT_PROTO_REPLY_RING];
    uint32_t ring_next;
    int synced;                              /* a request has been executed since boot */
    uint16_t last_seq;
    uint32_t counter;                        /* tagged requests executed in this session */
    int nak_armed;                           /* send one TT_ERR_SEQ per gap, not one per frame */
    int input_tagged;                        /* the staged input came from tagged INPUT_WRITEs */
    uint8_t mode;
    uint32_t steps;
    uint32_t train_n, train_correct, eval_n, eval_correct, infer_n, rolled_back, refused_nonfinite;
    float train_loss_sum;
    uint32_t loaded_generation;              /* of the weights loaded from NV, 0 if none */
    int poisoned;                            /* no spare copy and no save to undo a bad step */
    struct {                                 /* the open weights transaction */
        int open;
        uint8_t staging;                     /* TT_STAGING_RAM / _NV */
        uint32_t total, crc, written;
        tt_ws_stage nv;
    } txn;
    tt_link_counters counters;
} L;

/* LINK_STATS sends the counters in their order: the struct is exactly the wire layout. */
typedef char tt_link_counters_match_the_protocol[
    sizeof(tt_link_counters) == TT_LINK_STATS_REPLY_BYTES ? 1 : -1];

#if TT_MODEL_TRAINABLE && TT_LINK_SPARE
/* The RAM copy: a step's snapshot of parameters and optimizer state, or a push's staging. */
static uint8_t spare[TT_TRAINABLE_BYTES > 0 ? TT_TRAINABLE_BYTES : 1];
#define SPARE_BYTES ((uint32_t)sizeof spare)
#else
#define SPARE_BYTES 0u
#endif

/* ---- frames out ------------------------------------------------------------------ */

static void send_encoded(const uint8_t *body, size_t n, uint8_t *enc, size_t cap, size_t *out_len)
{
    size_t len = tt_cobs_encode(body, n, enc, cap - 1);
    enc[len++] = 0;
    tt_hal_uart_write(enc, len);
    if (out_len)
        *out_len = len;
}

/* Header, optional tag (over header and payload), CRC; returns the body's length. */
static size_t finish_body(uint8_t *body, uint8_t type, uint16_t seq, size_t payload, uint32_t tag_counter)
{
    size_t n = payload + (tag_counter ? TAG : 0u);
    body[0] = (uint8_t)TT_PROTO_VERSION;
    body[1] = type;
    tt_put_u16(body + 2, seq);
    tt_put_u16(body + 4, (uint16_t)n);
    if (tag_counter)
        tt_auth_tag(TT_AUTH_TO_HOST, tag_counter, body, TT_PROTO_HEADER_BYTES + payload,
                    body + TT_PROTO_HEADER_BYTES + payload);
    tt_put_u32(body + TT_PROTO_HEADER_BYTES + n, tt_crc32(body, TT_PROTO_HEADER_BYTES + n));
    return TT_PROTO_HEADER_BYTES + n + TT_PROTO_CRC_BYTES;
}

/* A short frame that is not a stored reply: a dropped-frame error or BUSY. */
static void send_control(uint8_t type, uint16_t seq, const uint8_t *payload, size_t n)
{
    uint8_t body[TT_PROTO_HEADER_BYTES + TT_ERROR_BYTES + TT_PROTO_CRC_BYTES];
    uint8_t enc[TT_PROTO_ENCODED(sizeof body) + 1];
    if (n > 0)
        memcpy(body + TT_PROTO_HEADER_BYTES, payload, n);
    send_encoded(body, finish_body(body, type, seq, n, 0), enc, sizeof enc, NULL);
}

/* An error about a frame that was not executed: not stored, never resent. */
static void send_drop_error(uint8_t code, uint8_t req_type, uint16_t seq, uint16_t detail)
{
    uint8_t p[TT_ERROR_BYTES];
    p[TT_ERROR_OFF_CODE] = code;
    p[TT_ERROR_OFF_REQUEST_TYPE] = req_type;
    tt_put_u16(p + TT_ERROR_OFF_DETAIL, detail);
    send_control((uint8_t)TT_MSG_ERROR, seq, p, sizeof p);
}

/* ---- helpers --------------------------------------------------------------------- */

static uint32_t argmax_output(void)
{
    const tt_output_t *y = tt_model_output();
    uint32_t i, best = 0;
    for (i = 1; i < TT_OUTPUT_SIZE; i++)
        if (y[i] > y[best])
            best = i;
    return best;
}

static MAYBE_UNUSED int is_finite(float v)
{
    return v == v && (v - v) == 0.0f;
}

static void put_f32(uint8_t *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    tt_put_u32(p, u);
}

static MAYBE_UNUSED float get_f32(const uint8_t *p)
{
    uint32_t u = tt_get_u32(p);
    float v;
    memcpy(&v, &u, 4);
    return v;
}

/* Index of the first non-finite float32 among n bytes (n / 4 values), or -1. */
static MAYBE_UNUSED int32_t first_nonfinite(const uint8_t *p, uint32_t n)
{
    uint32_t i;
    for (i = 0; i + 4 <= n; i += 4)
        if (!is_finite(get_f32(p + i)))
            return (int32_t)(i / 4);
    return -1;
}

static MAYBE_UNUSED void model_hash16(uint8_t out[TT_NV_HASH_BYTES])
{
    size_t n = strlen(TT_MODEL_HASH);
    memset(out, 0, TT_NV_HASH_BYTES);
    memcpy(out, TT_MODEL_HASH, n < TT_NV_HASH_BYTES ? n : TT_NV_HASH_BYTES);
}

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

/* Index of the first parameter (or, past the parameters, optimizer state) holding a
 * non-finite float, or -1: what a training step must never leave behind. */
static int32_t nonfinite_param(int with_state)
{
    uint32_t i;
    for (i = 0; i < tt_model_num_params(); i++) {
        const tt_param_info *p = tt_model_param(i);
        if (p->dtype == TT_DTYPE_F32 && first_nonfinite((const uint8_t *)p->data, p->bytes) >= 0)
            return (int32_t)i;
    }
    for (i = 0; with_state && i < tt_model_num_states(); i++) {
        const tt_param_info *s = tt_model_state(i);
        if (s->dtype == TT_DTYPE_F32 && first_nonfinite((const uint8_t *)s->data, s->bytes) >= 0)
            return (int32_t)(tt_model_num_params() + i);
    }
    return -1;
}

#if TT_LINK_SPARE
static uint32_t state_total(void)
{
    uint32_t i, total = 0;
    for (i = 0; i < tt_model_num_states(); i++)
        total += tt_model_state(i)->bytes;
    return total;
}

/* Parameters then optimizer state <-> the spare copy (to_spare: direction). */
static void snapshot(int to_spare)
{
    uint32_t i, off = 0;
    for (i = 0; i < tt_model_num_params() + tt_model_num_states(); i++) {
        const tt_param_info *p = i < tt_model_num_params() ? tt_model_param(i)
                                                           : tt_model_state(i - tt_model_num_params());
        if (to_spare)
            memcpy(spare + off, p->data, p->bytes);
        else
            memcpy(p->data, spare + off, p->bytes);
        off += p->bytes;
    }
}

static int spare_holds_state(void)
{
    return params_total() + state_total() <= SPARE_BYTES;
}
#endif

static int spare_holds_params(void)
{
#if TT_LINK_SPARE
    return params_total() <= SPARE_BYTES;
#else
    return 0;
#endif
}
#endif /* TT_MODEL_TRAINABLE */

/* ---- request handlers: each fills the reply payload p (at most cap bytes) and returns
 * its length, or FAIL(TT_ERR_x); *detail may carry a value for the error reply. -------- */

static int do_hello(uint8_t *p)
{
    uint16_t flags = TT_HELLO_AUTH_WRITES | (TT_AUTH_READS ? TT_HELLO_AUTH_READS : 0u);
    memset(p, 0, TT_HELLO_REPLY_BYTES);
    if (tt_auth_challenge(p + TT_HELLO_REPLY_OFF_CHALLENGE) == 0)
        flags |= TT_HELLO_AUTH_READY;
    else
        memset(p + TT_HELLO_REPLY_OFF_CHALLENGE, 0, TT_PROTO_NONCE_BYTES);
    tt_put_u16(p + TT_HELLO_REPLY_OFF_VERSION, (uint16_t)TT_PROTO_VERSION);
    tt_put_u16(p + TT_HELLO_REPLY_OFF_MAX_PAYLOAD, (uint16_t)TT_PROTO_MAX_PAYLOAD);
    tt_put_u16(p + TT_HELLO_REPLY_OFF_MAX_REPLY, (uint16_t)TT_PROTO_MAX_REPLY);
    tt_put_u16(p + TT_HELLO_REPLY_OFF_REPLY_RING, (uint16_t)TT_PROTO_REPLY_RING);
    tt_put_u16(p + TT_HELLO_REPLY_OFF_FLAGS, flags);
    memcpy(p + TT_HELLO_REPLY_OFF_KEY_ID, tt_auth_key_id(), TT_PROTO_KEY_ID_BYTES);
    return TT_HELLO_REPLY_BYTES;
}

static int do_auth(const uint8_t *q, size_t n, uint8_t *p)
{
    if (n != TT_AUTH_REQUEST_BYTES)
        return FAIL(TT_ERR_BAD_LENGTH);
    if (tt_auth_in_session() || !tt_auth_answer(q + TT_AUTH_REQUEST_OFF_HOST_NONCE,
                                                q + TT_AUTH_REQUEST_OFF_PROOF, p)) {
        L.counters.auth_failures++;
        return FAIL(TT_ERR_AUTH);
    }
    L.counter = 0;
    return TT_AUTH_REPLY_BYTES;
}

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
    uint32_t trainable = 0, nparams = 0;
#if TT_MODEL_TRAINABLE
    caps |= TT_CAP_TRAIN | TT_CAP_HPARAMS;
    trainable = params_total();
    nparams = tt_model_num_params();
    if (spare_holds_params())
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
    tlv_u32(w, TT_DESC_LINK_RAM_BYTES, (uint32_t)sizeof L + SPARE_BYTES);
    tlv_u32(w, TT_DESC_TRAINABLE_BYTES, trainable);
    tlv_u32(w, TT_DESC_NUM_PARAMS, nparams);
    tlv_u32(w, TT_DESC_STEPS, L.steps);
    tlv_u32(w, TT_DESC_LOADED_GENERATION, L.loaded_generation);
    tlv_u8(w, TT_DESC_MODE, L.mode);
    tlv_str(w, TT_DESC_SIMD, TT_SIMD);
    tlv_u16(w, TT_DESC_REPLY_RING, (uint16_t)TT_PROTO_REPLY_RING);
    tlv_u16(w, TT_DESC_MAX_REPLY, (uint16_t)TT_PROTO_MAX_REPLY);
    tlv(w, TT_DESC_KEY_ID, tt_auth_key_id(), TT_PROTO_KEY_ID_BYTES);
    tlv_u32(w, TT_DESC_SPARE_BYTES, SPARE_BYTES);
}

static int do_describe(const uint8_t *q, size_t n, uint8_t *p, size_t cap)
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

/* A sample arriving in a request: the whole input, or nothing (use the staged input). */
static int take_sample(const uint8_t *s, size_t n)
{
    if (n == 0)
        return 0;
    if (n != INPUT_BYTES)
        return FAIL(TT_ERR_BAD_LENGTH);
#if !TT_INPUT_IS_INT8
    if (first_nonfinite(s, (uint32_t)n) >= 0) {
        L.refused_nonfinite++;
        return FAIL(TT_ERR_NONFINITE);
    }
#endif
    memcpy(tt_model_input(), s, n);
    L.input_tagged = 0;
    return 0;
}

static int do_infer(const uint8_t *q, size_t n, uint8_t *p, size_t cap)
{
    uint32_t t0, work, k;
    int r = take_sample(q, n);
    if (r < 0)
        return r;
    t0 = tt_hal_work_count();
    tt_model_invoke();
    work = tt_hal_work_count() - t0;
    L.infer_n++;
    L.input_tagged = 0;
    k = OUTPUT_BYTES < cap - TT_INFER_REPLY_BYTES ? OUTPUT_BYTES : (uint32_t)cap - TT_INFER_REPLY_BYTES;
    tt_put_u32(p + TT_INFER_REPLY_OFF_PREDICTED, argmax_output());
    tt_put_u32(p + TT_INFER_REPLY_OFF_WORK, work);
    tt_put_u32(p + TT_INFER_REPLY_OFF_OUTPUT_BYTES, OUTPUT_BYTES);
    memcpy(p + TT_INFER_REPLY_BYTES, tt_model_output(), k);
    return (int)(TT_INFER_REPLY_BYTES + k);
}

/* One sample (in the model's input): trained, or evaluated. Returns the result flags and
 * adds the model's own work (the forward, or the training step) to *work: the guard's copy
 * and checks are the link's, not the model's. */
static uint8_t step_one(int32_t label, int eval, float *loss, uint32_t *pred, uint32_t *work)
{
    uint8_t flags = 0;
    uint32_t t0;
    if (eval) {
        t0 = tt_hal_work_count();
        tt_model_invoke();
        *work += tt_hal_work_count() - t0;
        *pred = argmax_output();
        *loss = 0.0f / 0.0f;                 /* evaluation reports no loss (NaN) */
        L.eval_n++;
        L.eval_correct += *pred == (uint32_t)label;
        flags |= TT_RESULT_EVAL;
    } else {
#if TT_MODEL_TRAINABLE
        int bad;
#if TT_LINK_SPARE
        int exact = spare_holds_state();
        if (exact)
            snapshot(1);
#endif
        /* The backward reuses the arena, output included: the step itself remembers the
         * forward's prediction. A non-finite loss skips the backward (generated code). */
        t0 = tt_hal_work_count();
        *loss = tt_model_train_step(label);
        *work += tt_hal_work_count() - t0;
        *pred = (uint32_t)tt_model_last_prediction();
        bad = !is_finite(*loss) || nonfinite_param(1) >= 0;
        if (bad) {
            /* Roll back: the parameters and optimizer state as before the step. */
#if TT_LINK_SPARE
            if (exact) {
                snapshot(0);
            } else
#endif
            if (nonfinite_param(1) >= 0) {
                uint8_t hash[TT_NV_HASH_BYTES];
                tt_ws_info info;
                model_hash16(hash);
                if (tt_weights_load((const char *)hash, tt_model_num_params(), param_region, &info) == TT_WS_OK)
                    tt_model_reset_optimizer();     /* back to the newest save */
                else
                    L.poisoned = 1;                 /* nothing to go back to: stop training */
            }
            L.rolled_back++;
            flags |= TT_RESULT_ROLLED_BACK;
        } else {
            L.steps++;
            L.train_n++;
            L.train_correct += *pred == (uint32_t)label;
            L.train_loss_sum += *loss;
        }
#endif
    }
    if (*pred == (uint32_t)label)
        flags |= TT_RESULT_CORRECT;
    return flags;
}

/* TRAIN: u8 flags, u8 count, then count x (i32 label, sample); or count 1 and a label
 * alone (the sample staged by INPUT_WRITE). The whole request is checked before the first
 * sample is used: it runs completely or not at all. */
static int do_train(const uint8_t *q, size_t n, uint8_t *p, size_t cap, uint16_t *detail, int tagged)
{
    uint32_t work = 0, i, count, rec = TT_TRAIN_RECORD_BYTES + INPUT_BYTES;
    int eval, staged;
    if (n < TT_TRAIN_REQUEST_BYTES)
        return FAIL(TT_ERR_BAD_LENGTH);
    eval = (q[TT_TRAIN_REQUEST_OFF_FLAGS] & TT_TRAIN_EVAL) || L.mode == TT_MODE_EVAL;
    count = q[TT_TRAIN_REQUEST_OFF_COUNT];
    staged = count == 1 && n == TT_TRAIN_REQUEST_BYTES + TT_TRAIN_RECORD_BYTES;
    if (count == 0 || (!staged && (n - TT_TRAIN_REQUEST_BYTES) != (size_t)count * rec)
            || TT_TRAIN_REPLY_BYTES + count * TT_TRAIN_RESULT_BYTES > cap)
        return FAIL(TT_ERR_BAD_LENGTH);
    q += TT_TRAIN_REQUEST_BYTES;
    for (i = 0; i < count; i++) {
        const uint8_t *r = q + (staged ? 0 : i * rec);
        int32_t label = (int32_t)tt_get_u32(r + TT_TRAIN_RECORD_OFF_LABEL);
        *detail = (uint16_t)i;
        if (label < 0 || label >= (int32_t)TT_OUTPUT_SIZE)
            return FAIL(TT_ERR_RANGE);
#if !TT_INPUT_IS_INT8
        if (!staged && first_nonfinite(r + TT_TRAIN_RECORD_BYTES, INPUT_BYTES) >= 0) {
            L.refused_nonfinite++;
            return FAIL(TT_ERR_NONFINITE);
        }
#endif
    }
    *detail = 0;
    if (!eval) {
#if TT_MODEL_TRAINABLE
        if (L.txn.open)
            return FAIL(TT_ERR_STATE);       /* weights are being replaced */
        if (L.poisoned)
            return FAIL(TT_ERR_NONFINITE);   /* push or load weights first */
        if (staged && !(L.input_tagged && tagged))
            return FAIL(TT_ERR_AUTH);        /* the staged input is not the session's */
#else
        (void)tagged;
        return FAIL(TT_ERR_NOT_TRAINABLE);
#endif
    }
    for (i = 0; i < count; i++) {
        uint8_t *res = p + TT_TRAIN_REPLY_BYTES + i * TT_TRAIN_RESULT_BYTES;
        const uint8_t *r = q + i * rec;
        float loss;
        uint32_t pred;
        if (!staged)
            memcpy(tt_model_input(), r + TT_TRAIN_RECORD_BYTES, INPUT_BYTES);
        res[TT_TRAIN_RESULT_OFF_FLAGS] =
            step_one((int32_t)tt_get_u32(r + TT_TRAIN_RECORD_OFF_LABEL), eval, &loss, &pred, &work);
        put_f32(res + TT_TRAIN_RESULT_OFF_LOSS, loss);
        tt_put_u32(res + TT_TRAIN_RESULT_OFF_PREDICTED, pred);
    }
    L.input_tagged = 0;                      /* the step overwrote the input */
    tt_put_u32(p + TT_TRAIN_REPLY_OFF_STEPS, L.steps);
    tt_put_u32(p + TT_TRAIN_REPLY_OFF_WORK, work);
    p[TT_TRAIN_REPLY_OFF_COUNT] = (uint8_t)count;
    p[TT_TRAIN_REPLY_OFF_MODE] = L.mode;
    tt_put_u16(p + TT_TRAIN_REPLY_OFF_MODE + 1, 0);
    return (int)(TT_TRAIN_REPLY_BYTES + count * TT_TRAIN_RESULT_BYTES);
}

static int do_input_write(const uint8_t *q, size_t n, int tagged)
{
    uint32_t off;
    if (n < TT_OFFSET_BYTES)
        return FAIL(TT_ERR_BAD_LENGTH);
    off = tt_get_u32(q + TT_OFFSET_OFF_OFFSET);
    n -= TT_OFFSET_BYTES;
    if (off > INPUT_BYTES || n > INPUT_BYTES - off)
        return FAIL(TT_ERR_RANGE);
#if !TT_INPUT_IS_INT8
    /* Whole floats only, so every value can be checked. */
    if (off % 4u != 0 || n % 4u != 0)
        return FAIL(TT_ERR_RANGE);
    if (first_nonfinite(q + TT_OFFSET_BYTES, (uint32_t)n) >= 0) {
        L.refused_nonfinite++;
        return FAIL(TT_ERR_NONFINITE);
    }
#endif
    memcpy((uint8_t *)tt_model_input() + off, q + TT_OFFSET_BYTES, n);
    L.input_tagged = tagged && (off == 0 || L.input_tagged);
    return 0;
}

/* Shared by OUTPUT_READ and WEIGHTS_READ: u32 offset, u16 count within total bytes. */
static int read_range(const uint8_t *q, size_t n, uint32_t total, size_t cap, uint32_t *off, uint32_t *len)
{
    if (n != TT_RANGE_REQUEST_BYTES)
        return FAIL(TT_ERR_BAD_LENGTH);
    *off = tt_get_u32(q + TT_RANGE_REQUEST_OFF_OFFSET);
    *len = tt_get_u16(q + TT_RANGE_REQUEST_OFF_COUNT);
    if (*len > cap || *off > total || *len > total - *off)
        return FAIL(TT_ERR_RANGE);
    return 0;
}

static int do_output_read(const uint8_t *q, size_t n, uint8_t *p, size_t cap)
{
    uint32_t off, len;
    int r = read_range(q, n, OUTPUT_BYTES, cap, &off, &len);
    if (r < 0)
        return r;
    memcpy(p, (const uint8_t *)tt_model_output() + off, len);
    return (int)len;
}

static int do_set_mode(const uint8_t *q, size_t n, uint8_t *p)
{
    if (n != 1)
        return FAIL(TT_ERR_BAD_LENGTH);
    if (q[0] != TT_MODE_TRAIN && q[0] != TT_MODE_EVAL)
        return FAIL(TT_ERR_RANGE);
    L.mode = q[0];
    p[0] = L.mode;
    return 1;
}

static int do_get_stats(uint8_t *p)
{
    memset(p, 0, TT_GET_STATS_REPLY_BYTES);
    tt_put_u32(p + TT_GET_STATS_REPLY_OFF_STEPS, L.steps);
    p[TT_GET_STATS_REPLY_OFF_MODE] = L.mode;
    tt_put_u32(p + TT_GET_STATS_REPLY_OFF_TRAIN_SAMPLES, L.train_n);
    tt_put_u32(p + TT_GET_STATS_REPLY_OFF_TRAIN_CORRECT, L.train_correct);
    put_f32(p + TT_GET_STATS_REPLY_OFF_TRAIN_LOSS_SUM, L.train_loss_sum);
    tt_put_u32(p + TT_GET_STATS_REPLY_OFF_EVAL_SAMPLES, L.eval_n);
    tt_put_u32(p + TT_GET_STATS_REPLY_OFF_EVAL_CORRECT, L.eval_correct);
    tt_put_u32(p + TT_GET_STATS_REPLY_OFF_INFER_COUNT, L.infer_n);
    tt_put_u32(p + TT_GET_STATS_REPLY_OFF_ROLLED_BACK, L.rolled_back);
    tt_put_u32(p + TT_GET_STATS_REPLY_OFF_REFUSED_NONFINITE, L.refused_nonfinite);
    return TT_GET_STATS_REPLY_BYTES;
}

static void reset_stats(void)
{
    L.train_n = L.train_correct = L.eval_n = L.eval_correct = L.infer_n = 0;
    L.rolled_back = L.refused_nonfinite = 0;
    L.train_loss_sum = 0.0f;
}

static int do_link_stats(uint8_t *p)
{
    const uint32_t *c = (const uint32_t *)&L.counters;
    uint32_t i;
    for (i = 0; i < sizeof L.counters / 4u; i++)
        tt_put_u32(p + 4 * i, c[i]);
    return (int)sizeof L.counters;
}

#if TT_MODEL_TRAINABLE
static int do_set_hparams(const uint8_t *q, size_t n, uint8_t *p)
{
    float lr, mom, wd;
    if (n != TT_HPARAMS_BYTES)
        return FAIL(TT_ERR_BAD_LENGTH);
    lr = get_f32(q + TT_HPARAMS_OFF_LR);
    mom = get_f32(q + TT_HPARAMS_OFF_MOMENTUM);
    wd = get_f32(q + TT_HPARAMS_OFF_WEIGHT_DECAY);
    if (!is_finite(lr) || !is_finite(mom) || !is_finite(wd) || lr < 0.0f || mom < 0.0f
            || mom >= 1.0f || wd < 0.0f)
        return FAIL(TT_ERR_RANGE);
    tt_model_set_hparams(lr, mom, wd);
    tt_model_get_hparams(&lr, &mom, &wd);
    put_f32(p + TT_HPARAMS_OFF_LR, lr);
    put_f32(p + TT_HPARAMS_OFF_MOMENTUM, mom);
    put_f32(p + TT_HPARAMS_OFF_WEIGHT_DECAY, wd);
    return TT_HPARAMS_BYTES;
}

static int do_get_hparams(uint8_t *p)
{
    float lr, mom, wd;
    tt_model_get_hparams(&lr, &mom, &wd);
    put_f32(p + TT_HPARAMS_OFF_LR, lr);
    put_f32(p + TT_HPARAMS_OFF_MOMENTUM, mom);
    put_f32(p + TT_HPARAMS_OFF_WEIGHT_DECAY, wd);
    return TT_HPARAMS_BYTES;
}

static int do_param_info(const uint8_t *q, size_t n, uint8_t *p, size_t cap)
{
    uint32_t idx, i, off = 0;
    const tt_param_info *info;
    size_t name_len;
    if (n != 4)
        return FAIL(TT_ERR_BAD_LENGTH);
    idx = tt_get_u32(q);
    if (idx >= tt_model_num_params())
        return FAIL(TT_ERR_RANGE);
    for (i = 0; i < idx; i++)
        off += tt_model_param(i)->bytes;
    info = tt_model_param(idx);
    name_len = strlen(info->name);
    if (name_len > 255)
        name_len = 255;
    if (name_len > cap - TT_PARAM_INFO_REPLY_BYTES)
        name_len = cap - TT_PARAM_INFO_REPLY_BYTES;
    tt_put_u32(p + TT_PARAM_INFO_REPLY_OFF_BYTES, info->bytes);
    tt_put_u32(p + TT_PARAM_INFO_REPLY_OFF_OFFSET, off);
    p[TT_PARAM_INFO_REPLY_OFF_DTYPE] = info->dtype;
    p[TT_PARAM_INFO_REPLY_OFF_NAME_LENGTH] = (uint8_t)name_len;
    memcpy(p + TT_PARAM_INFO_REPLY_BYTES, info->name, name_len);
    return (int)(TT_PARAM_INFO_REPLY_BYTES + name_len);
}

static int do_weights_read(const uint8_t *q, size_t n, uint8_t *p, size_t cap)
{
    uint32_t off, len;
    int r = read_range(q, n, params_total(), cap, &off, &len);
    if (r < 0)
        return r;
    params_copy(off, p, len, 0);
    return (int)len;
}

static int do_weights_crc(uint8_t *p)
{
    tt_put_u32(p + TT_WEIGHTS_CRC_REPLY_OFF_TOTAL, params_total());
    tt_put_u32(p + TT_WEIGHTS_CRC_REPLY_OFF_CRC, params_crc());
    return TT_WEIGHTS_CRC_REPLY_BYTES;
}

static void txn_close(void)
{
    memset(&L.txn, 0, sizeof L.txn);
}

/* WEIGHTS_BEGIN: u32 total, u32 crc, model hash. The device checks the hash itself. */
static int do_weights_begin(const uint8_t *q, size_t n, uint8_t *p)
{
    uint8_t hash[TT_NV_HASH_BYTES];
    uint32_t total;
    if (n != TT_WEIGHTS_BEGIN_REQUEST_BYTES)
        return FAIL(TT_ERR_BAD_LENGTH);
    txn_close();                             /* a new transaction replaces an open one */
    model_hash16(hash);
    if (memcmp(q + TT_WEIGHTS_BEGIN_REQUEST_OFF_MODEL_HASH, hash, TT_NV_HASH_BYTES) != 0)
        return FAIL(TT_ERR_MODEL);
    total = tt_get_u32(q + TT_WEIGHTS_BEGIN_REQUEST_OFF_TOTAL);
    if (total != params_total())
        return FAIL(TT_ERR_RANGE);
    if (spare_holds_params()) {
        L.txn.staging = TT_STAGING_RAM;
    } else {
        /* No RAM to stage in: the inactive NV slot, committed by writing its header. */
        if (tt_weights_stage_begin((const char *)hash, total, &L.txn.nv) != TT_WS_OK)
            return FAIL(TT_ERR_NV);
        L.txn.staging = TT_STAGING_NV;
    }
    L.txn.open = 1;
    L.txn.total = total;
    L.txn.crc = tt_get_u32(q + TT_WEIGHTS_BEGIN_REQUEST_OFF_CRC);
    L.txn.written = 0;
    memset(p, 0, TT_WEIGHTS_BEGIN_REPLY_BYTES);
    p[TT_WEIGHTS_BEGIN_REPLY_OFF_STAGING] = L.txn.staging;
    return TT_WEIGHTS_BEGIN_REPLY_BYTES;
}

/* WEIGHTS_WRITE: u32 offset, bytes; in order (offset = bytes staged so far). */
static int do_weights_write(const uint8_t *q, size_t n, uint8_t *p)
{
    uint32_t off;
    if (n < TT_OFFSET_BYTES)
        return FAIL(TT_ERR_BAD_LENGTH);
    if (!L.txn.open)
        return FAIL(TT_ERR_STATE);
    off = tt_get_u32(q + TT_OFFSET_OFF_OFFSET);
    n -= TT_OFFSET_BYTES;
    if (off != L.txn.written)
        return FAIL(TT_ERR_STATE);
    if (n > L.txn.total - off)
        return FAIL(TT_ERR_RANGE);
#if TT_LINK_SPARE
    if (L.txn.staging == TT_STAGING_RAM)
        memcpy(spare + off, q + TT_OFFSET_BYTES, n);
    else
#endif
    if (tt_weights_stage_write(&L.txn.nv, off, q + TT_OFFSET_BYTES, (uint32_t)n) != TT_WS_OK) {
        txn_close();
        return FAIL(TT_ERR_NV);
    }
    L.txn.written += (uint32_t)n;
    tt_put_u32(p + TT_WEIGHTS_WRITE_REPLY_OFF_STAGED, L.txn.written);
    return TT_WEIGHTS_WRITE_REPLY_BYTES;
}

/* Index of the first parameter with a non-finite float among the staged bytes, or -1. */
static int32_t staged_nonfinite(void)
{
    uint32_t i, base = 0;
    for (i = 0; i < tt_model_num_params(); i++) {
        const tt_param_info *pi = tt_model_param(i);
        if (pi->dtype == TT_DTYPE_F32) {
#if TT_LINK_SPARE
            if (L.txn.staging == TT_STAGING_RAM) {
                if (first_nonfinite(spare + base, pi->bytes) >= 0)
                    return (int32_t)i;
            } else
#endif
            {
                uint8_t buf[64];
                uint32_t done = 0;
                while (done < pi->bytes) {
                    uint32_t k = pi->bytes - done < sizeof buf ? pi->bytes - done : (uint32_t)sizeof buf;
                    if (tt_weights_stage_read(&L.txn.nv, base + done, buf, k) != TT_WS_OK
                            || first_nonfinite(buf, k) >= 0)
                        return (int32_t)i;
                    done += k;
                }
            }
        }
        base += pi->bytes;
    }
    return -1;
}

/* WEIGHTS_COMMIT: all bytes staged, their CRC right, every float finite: then the device
 * switches to them in one step; otherwise nothing changes. */
static int do_weights_commit(uint8_t *p, uint16_t *detail)
{
    uint8_t hash[TT_NV_HASH_BYTES];
    tt_ws_info info;
    uint32_t generation = 0;
    int32_t bad;
    if (!L.txn.open || L.txn.written != L.txn.total)
        return FAIL(TT_ERR_STATE);
    bad = staged_nonfinite();
    if (bad >= 0) {
        txn_close();
        *detail = (uint16_t)bad;
        return FAIL(TT_ERR_NONFINITE);
    }
    model_hash16(hash);
#if TT_LINK_SPARE
    if (L.txn.staging == TT_STAGING_RAM) {
        if (tt_crc32(spare, L.txn.total) != L.txn.crc) {
            txn_close();
            return FAIL(TT_ERR_WEIGHTS_CRC);
        }
        params_copy(0, spare, L.txn.total, 1);
    } else
#endif
    {
        int r = tt_weights_stage_commit(&L.txn.nv, (const char *)hash, L.txn.crc, L.steps, &info);
        if (r != TT_WS_OK) {
            txn_close();
            return FAIL(r == TT_WS_NONE ? TT_ERR_WEIGHTS_CRC : TT_ERR_NV);
        }
        /* The slot is now the newest valid one: load it (a power loss here boots with it). */
        if (tt_weights_load((const char *)hash, tt_model_num_params(), param_region, &info) != TT_WS_OK) {
            txn_close();
            return FAIL(TT_ERR_NV);
        }
        L.loaded_generation = generation = info.generation;
    }
    tt_model_reset_optimizer();
    L.poisoned = 0;
    memset(p, 0, TT_WEIGHTS_COMMIT_REPLY_BYTES);
    tt_put_u32(p + TT_WEIGHTS_COMMIT_REPLY_OFF_TOTAL, L.txn.total);
    tt_put_u32(p + TT_WEIGHTS_COMMIT_REPLY_OFF_CRC, params_crc());
    p[TT_WEIGHTS_COMMIT_REPLY_OFF_STAGING] = L.txn.staging;
    tt_put_u32(p + TT_WEIGHTS_COMMIT_REPLY_OFF_GENERATION, generation);
    txn_close();
    return TT_WEIGHTS_COMMIT_REPLY_BYTES;
}

static int put_store_info(int r, const tt_ws_info *info, uint8_t *p)
{
    if (r == TT_WS_NONE)
        return FAIL(TT_ERR_NO_SAVED);
    if (r != TT_WS_OK)
        return FAIL(TT_ERR_NV);
    memset(p, 0, TT_STORE_INFO_BYTES);
    tt_put_u32(p + TT_STORE_INFO_OFF_GENERATION, info->generation);
    tt_put_u32(p + TT_STORE_INFO_OFF_STEPS, info->steps);
    tt_put_u32(p + TT_STORE_INFO_OFF_DATA_BYTES, info->data_bytes);
    tt_put_u32(p + TT_STORE_INFO_OFF_DATA_CRC, info->data_crc);
    p[TT_STORE_INFO_OFF_SLOT] = (uint8_t)info->slot;
    return TT_STORE_INFO_BYTES;
}

static int do_weights_save(uint8_t *p, uint16_t *detail)
{
    uint8_t hash[TT_NV_HASH_BYTES];
    tt_ws_info info;
    int32_t bad;
    if (L.txn.open)
        return FAIL(TT_ERR_STATE);
    bad = nonfinite_param(0);
    if (bad >= 0) {                          /* never store weights that cannot be used */
        *detail = (uint16_t)bad;
        return FAIL(TT_ERR_NONFINITE);
    }
    model_hash16(hash);
    return put_store_info(tt_weights_save((const char *)hash, L.steps, tt_model_num_params(),
                                          param_region, &info), &info, p);
}

static int do_weights_load(uint8_t *p)
{
    uint8_t hash[TT_NV_HASH_BYTES];
    tt_ws_info info;
    int r;
    if (L.txn.open)
        return FAIL(TT_ERR_STATE);
    model_hash16(hash);
    r = tt_weights_load((const char *)hash, tt_model_num_params(), param_region, &info);
    if (r == TT_WS_OK) {
        L.steps = info.steps;
        L.loaded_generation = info.generation;
        L.poisoned = 0;
        tt_model_reset_optimizer();
    }
    return put_store_info(r, &info, p);
}
#endif /* TT_MODEL_TRAINABLE */

static int execute(uint8_t type, const uint8_t *q, size_t n, uint8_t *p, size_t cap,
                   uint16_t *detail, int tagged)
{
    switch (type) {
    case TT_MSG_HELLO:       return do_hello(p);
    case TT_MSG_AUTH:        return do_auth(q, n, p);
    case TT_MSG_DESCRIBE:    return do_describe(q, n, p, cap);
    case TT_MSG_INFER:       return do_infer(q, n, p, cap);
    case TT_MSG_TRAIN:       return do_train(q, n, p, cap, detail, tagged);
    case TT_MSG_INPUT_WRITE: return do_input_write(q, n, tagged);
    case TT_MSG_OUTPUT_READ: return do_output_read(q, n, p, cap);
    case TT_MSG_SET_MODE:    return do_set_mode(q, n, p);
    case TT_MSG_GET_STATS:   return n ? FAIL(TT_ERR_BAD_LENGTH) : do_get_stats(p);
    case TT_MSG_RESET_STATS:
        if (n)
            return FAIL(TT_ERR_BAD_LENGTH);
        reset_stats();
        return 0;
    case TT_MSG_LINK_STATS:  return n ? FAIL(TT_ERR_BAD_LENGTH) : do_link_stats(p);
    case TT_MSG_ECHO:
        if (n > cap)
            return FAIL(TT_ERR_BAD_LENGTH);
        memcpy(p, q, n);
        return (int)n;
#if TT_MODEL_TRAINABLE
    case TT_MSG_SET_HPARAMS:     return do_set_hparams(q, n, p);
    case TT_MSG_GET_HPARAMS:     return n ? FAIL(TT_ERR_BAD_LENGTH) : do_get_hparams(p);
    case TT_MSG_PARAM_INFO:      return do_param_info(q, n, p, cap);
    case TT_MSG_WEIGHTS_READ:    return do_weights_read(q, n, p, cap);
    case TT_MSG_WEIGHTS_CRC:     return n ? FAIL(TT_ERR_BAD_LENGTH) : do_weights_crc(p);
    case TT_MSG_WEIGHTS_BEGIN:   return do_weights_begin(q, n, p);
    case TT_MSG_WEIGHTS_WRITE:   return do_weights_write(q, n, p);
    case TT_MSG_WEIGHTS_COMMIT:  return n ? FAIL(TT_ERR_BAD_LENGTH) : do_weights_commit(p, detail);
    case TT_MSG_WEIGHTS_ABORT:
        if (n)
            return FAIL(TT_ERR_BAD_LENGTH);
        txn_close();
        return 0;
    case TT_MSG_WEIGHTS_SAVE:    return n ? FAIL(TT_ERR_BAD_LENGTH) : do_weights_save(p, detail);
    case TT_MSG_WEIGHTS_LOAD:    return n ? FAIL(TT_ERR_BAD_LENGTH) : do_weights_load(p);
#else
    case TT_MSG_SET_HPARAMS: case TT_MSG_GET_HPARAMS: case TT_MSG_PARAM_INFO:
    case TT_MSG_WEIGHTS_READ: case TT_MSG_WEIGHTS_CRC: case TT_MSG_WEIGHTS_BEGIN:
    case TT_MSG_WEIGHTS_WRITE: case TT_MSG_WEIGHTS_COMMIT: case TT_MSG_WEIGHTS_ABORT:
    case TT_MSG_WEIGHTS_SAVE: case TT_MSG_WEIGHTS_LOAD:
        return FAIL(TT_ERR_NOT_TRAINABLE);
#endif
    default:
        L.counters.unknown_type++;
        return FAIL(TT_ERR_UNKNOWN_TYPE);
    }
}

/* Executes a valid in-sequence request, stores its encoded reply and sends it. A tagged
 * request (tag_counter != 0) gets a tagged reply. */
static void execute_and_reply(uint8_t type, uint16_t seq, uint32_t req_crc, const uint8_t *q, size_t n,
                              uint32_t tag_counter)
{
    uint8_t *p = L.tx_body + TT_PROTO_HEADER_BYTES;
    size_t cap = TT_PROTO_MAX_REPLY - (tag_counter ? TAG : 0u), body_len;
    uint16_t detail = 0;
    int r;
    int needs_session = TT_MSG_IS_WRITE(type) || (TT_AUTH_READS && !TT_MSG_IS_OPEN(type));
    /* Long requests: tell the host now, so it can tell a lost frame from a slow step. */
    if (type == TT_MSG_INFER || type == TT_MSG_TRAIN || type == TT_MSG_WEIGHTS_SAVE
            || type == TT_MSG_WEIGHTS_LOAD || type == TT_MSG_WEIGHTS_BEGIN
            || type == TT_MSG_WEIGHTS_COMMIT)
        send_control((uint8_t)TT_MSG_BUSY, seq, NULL, 0);
    if (needs_session && !tag_counter) {
        L.counters.auth_refused++;
        r = FAIL(TT_ERR_AUTH);
    } else {
        r = execute(type, q, n, p, cap, &detail, tag_counter != 0);
    }
    if (r >= 0) {
        body_len = finish_body(L.tx_body, (uint8_t)(type | TT_MSG_REPLY), seq, (size_t)r, tag_counter);
    } else {
        p[TT_ERROR_OFF_CODE] = (uint8_t)(-r);
        p[TT_ERROR_OFF_REQUEST_TYPE] = type;
        tt_put_u16(p + TT_ERROR_OFF_DETAIL, detail);
        body_len = finish_body(L.tx_body, (uint8_t)TT_MSG_ERROR, seq, TT_ERROR_BYTES, tag_counter);
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

/* A new session (HELLO): forget the old replies, end authentication, drop a transaction. */
static void new_session(void)
{
    memset(L.ring, 0, sizeof L.ring);
    L.counter = 0;
    L.input_tagged = 0;
    tt_auth_end_session();
#if TT_MODEL_TRAINABLE
    txn_close();
#endif
}

/* ---- frames in ------------------------------------------------------------------- */

static void handle_frame(uint8_t *frame, size_t enc_len)
{
    int n = tt_cobs_decode(frame, enc_len, frame, enc_len);
    uint16_t seq, len;
    uint32_t crc, tag_counter = 0;
    uint8_t type;

    if (n < (int)(TT_PROTO_HEADER_BYTES + TT_PROTO_CRC_BYTES)) {
        L.counters.malformed++;
        L.nak_armed = 1;
        send_drop_error(TT_ERR_MALFORMED, 0, TT_PROTO_SEQ_NONE, 0);
        return;
    }
    crc = tt_get_u32(frame + n - 4);
    if (crc != tt_crc32(frame, (size_t)n - 4)) {
        L.counters.crc_errors++;
        L.nak_armed = 1;
        send_drop_error(TT_ERR_CRC, 0, TT_PROTO_SEQ_NONE, 0);
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
    if (len > TT_PROTO_MAX_PAYLOAD) {        /* fits the receive buffer, not the limit */
        L.counters.too_long++;
        L.nak_armed = 1;
        send_drop_error(TT_ERR_TOO_LONG, type, seq, 0);
        return;
    }
    L.counters.frames_ok++;
    if (resend_duplicate(seq, crc)) {
        L.counters.duplicates++;
        return;
    }
    if (type != TT_MSG_HELLO && L.synced && seq != (uint16_t)(L.last_seq + 1u)) {
        L.counters.seq_errors++;
        if (L.nak_armed) {
            L.nak_armed = 0;
            send_drop_error(TT_ERR_SEQ, type, seq, (uint16_t)(L.last_seq + 1u));
        }
        return;
    }
    if (type == TT_MSG_HELLO) {
        new_session();
    } else if (type != TT_MSG_AUTH && tt_auth_in_session()) {
        /* In a session every request ends with its tag; a wrong one is not executed and
         * does not advance the sequence (an injected frame cannot take a seq). */
        if (len < TAG || !tt_auth_check(TT_AUTH_TO_DEVICE, L.counter + 1u, frame,
                                        TT_PROTO_HEADER_BYTES + len - TAG,
                                        frame + TT_PROTO_HEADER_BYTES + len - TAG)) {
            L.counters.bad_tags++;
            L.nak_armed = 1;
            send_drop_error(TT_ERR_BAD_TAG, type, seq, 0);
            return;
        }
        len = (uint16_t)(len - TAG);
        tag_counter = ++L.counter;
    }
    L.synced = 1;
    L.last_seq = seq;
    L.nak_armed = 1;
    execute_and_reply(type, seq, crc, frame + TT_PROTO_HEADER_BYTES, len, tag_counter);
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
            send_drop_error(TT_ERR_TOO_LONG, 0, TT_PROTO_SEQ_NONE, 0);
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
    tt_auth_init();
#if TT_MODEL_TRAINABLE
    if (tt_hal_nv_size() > 0) {
        uint8_t hash[TT_NV_HASH_BYTES];
        tt_ws_info info;
        model_hash16(hash);
        if (tt_weights_load((const char *)hash, tt_model_num_params(), param_region, &info) == TT_WS_OK) {
            L.steps = info.steps;
            L.loaded_generation = info.generation;
        }
    }
#endif
}
