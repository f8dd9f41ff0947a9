/* Device side of the serial protocol (docs/protocol.md): COBS framing with CRC-32, in-order
 * execution by sequence number, the last replies kept for retransmission (exactly-once),
 * authenticated sessions (tt_auth.c), and the dispatch of requests to the parts of the
 * link (tt_link_internal.h). */
#include "tt_link_internal.h"

#include "tt_argmax.h"
#include "tt_auth.h"
#include "tt_cobs.h"
#include "tt_crc.h"
#include "tt_hal.h"

tt_link_state tt_link_st;

/* LINK_STATS sends the counters in their order: the struct is exactly the wire layout. */
typedef char tt_link_counters_match_the_protocol[
    sizeof(tt_link_counters) == TT_LINK_STATS_REPLY_BYTES ? 1 : -1];

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

uint32_t tt_link_argmax_output(void)
{
#if TT_OUTPUT_IS_INT8
    return tt_argmax_s8(tt_model_output(), TT_OUTPUT_SIZE);
#else
    return tt_argmax_f32(tt_model_output(), TT_OUTPUT_SIZE);
#endif
}

/* ---- the requests handled here ------------------------------------------------- */

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

/* Shared by OUTPUT_READ and WEIGHTS_READ: u32 offset, u16 count within total bytes. */
int tt_link_read_range(const uint8_t *q, size_t n, uint32_t total, size_t cap, uint32_t *off, uint32_t *len)
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
    int r = tt_link_read_range(q, n, OUTPUT_BYTES, cap, &off, &len);
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

static int execute(uint8_t type, const uint8_t *q, size_t n, uint8_t *p, size_t cap,
                   uint16_t *detail, int tagged)
{
    switch (type) {
    case TT_MSG_HELLO:       return do_hello(p);
    case TT_MSG_AUTH:        return do_auth(q, n, p);
    case TT_MSG_DESCRIBE:    return tt_link_describe(q, n, p, cap);
    case TT_MSG_INFER:       return tt_link_infer(q, n, p, cap);
    case TT_MSG_TRAIN:       return tt_link_train(q, n, p, cap, detail, tagged);
    case TT_MSG_INPUT_WRITE: return tt_link_input_write(q, n, tagged);
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
    case TT_MSG_SET_HPARAMS:     return tt_link_set_hparams(q, n, p);
    case TT_MSG_GET_HPARAMS:     return n ? FAIL(TT_ERR_BAD_LENGTH) : tt_link_get_hparams(p);
    case TT_MSG_PARAM_INFO:      return tt_link_param_info(q, n, p, cap);
    case TT_MSG_WEIGHTS_READ:    return tt_link_weights_read(q, n, p, cap);
    case TT_MSG_WEIGHTS_CRC:     return n ? FAIL(TT_ERR_BAD_LENGTH) : tt_link_weights_crc(p);
    case TT_MSG_WEIGHTS_BEGIN:   return tt_link_weights_begin(q, n, p);
    case TT_MSG_WEIGHTS_WRITE:   return tt_link_weights_write(q, n, p);
    case TT_MSG_WEIGHTS_COMMIT:  return n ? FAIL(TT_ERR_BAD_LENGTH) : tt_link_weights_commit(p, detail);
    case TT_MSG_WEIGHTS_ABORT:
        if (n)
            return FAIL(TT_ERR_BAD_LENGTH);
        tt_link_weights_abort();
        return 0;
    case TT_MSG_WEIGHTS_SAVE:    return n ? FAIL(TT_ERR_BAD_LENGTH) : tt_link_weights_save(p, detail);
    case TT_MSG_WEIGHTS_LOAD:    return n ? FAIL(TT_ERR_BAD_LENGTH) : tt_link_weights_load(p);
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
    tt_link_weights_abort();
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
        if (tt_weights_load((const char *)hash, tt_model_num_params(), tt_link_param_region, &info) == TT_WS_OK) {
            L.steps = info.steps;
            L.loaded_generation = info.generation;
        }
    }
#endif
}
