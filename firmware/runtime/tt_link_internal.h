/* tt_link_internal.h - what the parts of the device's link share (not an API): the link's
 * state, build defaults, small helpers, and the request handlers of each part:
 *   tt_link.c           frames, sequencing, the reply ring, sessions, dispatch
 *   tt_link_describe.c  DESCRIBE's TLV records
 *   tt_link_train.c     INFER, TRAIN (batches, the guard that rolls back non-finite steps),
 *                       INPUT_WRITE, hyper-parameters
 *   tt_link_weights.c   parameters, the RAM copy, weights transactions, save and load
 * Handlers fill the reply payload p (at most cap bytes) and return its length, or
 * FAIL(TT_ERR_x); *detail may carry a value for the error reply. */
#ifndef TT_LINK_INTERNAL_H
#define TT_LINK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "model.h"
#include "tt_board.h"
#include "tt_device_key.h"
#include "tt_link.h"
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
#define OUTPUT_BYTES ((uint32_t)(TT_OUTPUT_SIZE * sizeof(tt_output_t)))
#define TAG TT_PROTO_TAG_BYTES
#define FAIL(code) (-(int)(code))

/* Everything the link remembers, in one place (defined in tt_link.c). */
typedef struct {
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
} tt_link_state;


extern tt_link_state tt_link_st;
#define L tt_link_st

static inline int is_finite(float v)
{
    return v == v && (v - v) == 0.0f;
}
static inline void put_f32(uint8_t *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    tt_put_u32(p, u);
}
static inline float get_f32(const uint8_t *p)
{
    uint32_t u = tt_get_u32(p);
    float v;
    memcpy(&v, &u, 4);
    return v;
}
/* Index of the first non-finite float32 among n bytes (n / 4 values), or -1. */
static inline int32_t first_nonfinite(const uint8_t *p, uint32_t n)
{
    uint32_t i;
    for (i = 0; i + 4 <= n; i += 4)
        if (!is_finite(get_f32(p + i)))
            return (int32_t)(i / 4);
    return -1;
}
static inline void model_hash16(uint8_t out[TT_NV_HASH_BYTES])
{
    size_t n = strlen(TT_MODEL_HASH);
    memset(out, 0, TT_NV_HASH_BYTES);
    memcpy(out, TT_MODEL_HASH, n < TT_NV_HASH_BYTES ? n : TT_NV_HASH_BYTES);
}

uint32_t tt_link_argmax_output(void);
int tt_link_read_range(const uint8_t *q, size_t n, uint32_t total, size_t cap, uint32_t *off, uint32_t *len);

/* tt_link_describe.c */
int tt_link_describe(const uint8_t *q, size_t n, uint8_t *p, size_t cap);

/* tt_link_train.c */
int tt_link_infer(const uint8_t *q, size_t n, uint8_t *p, size_t cap);
int tt_link_train(const uint8_t *q, size_t n, uint8_t *p, size_t cap, uint16_t *detail, int tagged);
int tt_link_input_write(const uint8_t *q, size_t n, int tagged);
#if TT_MODEL_TRAINABLE
int tt_link_set_hparams(const uint8_t *q, size_t n, uint8_t *p);
int tt_link_get_hparams(uint8_t *p);

/* tt_link_weights.c */
void *tt_link_param_region(uint32_t i, uint32_t *bytes);
uint32_t tt_link_params_total(void);
int32_t tt_link_nonfinite_param(int with_state);
void tt_link_params_replaced(void);     /* update state and PRNG of the new parameters */
uint32_t tt_link_spare_bytes(void);
int tt_link_spare_holds_params(void);
int tt_link_spare_holds_state(void);
void tt_link_snapshot(int to_spare);
int tt_link_param_info(const uint8_t *q, size_t n, uint8_t *p, size_t cap);
int tt_link_weights_read(const uint8_t *q, size_t n, uint8_t *p, size_t cap);
int tt_link_weights_crc(uint8_t *p);
int tt_link_weights_begin(const uint8_t *q, size_t n, uint8_t *p);
int tt_link_weights_write(const uint8_t *q, size_t n, uint8_t *p);
int tt_link_weights_commit(uint8_t *p, uint16_t *detail);
void tt_link_weights_abort(void);
int tt_link_weights_save(uint8_t *p, uint16_t *detail);
int tt_link_weights_load(uint8_t *p);
#endif

#endif /* TT_LINK_INTERNAL_H */
