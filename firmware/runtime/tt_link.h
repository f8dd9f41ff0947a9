/* tt_link.h - the device side of the tinytrain serial protocol (docs/protocol.md).
 *
 * main.c: tt_hal_init(); tt_link_init(); for (;;) tt_link_service();
 * The link is tt_link.c (frames, sequencing, sessions, dispatch) with tt_link_describe.c,
 * tt_link_train.c and tt_link_weights.c (tt_link_internal.h), tt_auth.c and tt_sha256.c
 * (authentication), tt_weights_store.c (the NV store).
 * Compiles for inference-only models (model.h: TT_MODEL_TRAINABLE 0) and for training
 * builds (TT_MODEL_TRAINABLE 1: train step, hyperparameters, parameter access, A/B save,
 * weights transactions). Needs src/tt_device_key.h (TT_DEVICE_KEY, TT_AUTH_READS).
 *
 * Build options (-D or tt_board.h):
 *   TT_LINK_SPARE  1 (default for training builds): a RAM copy of the trainable state
 *                  (TT_TRAINABLE_BYTES) that stages weight pushes and snapshots each
 *                  training step, so a step whose loss or update is not finite is rolled
 *                  back exactly. 0 (small boards): pushes stage in the inactive NV slot, and
 *                  a non-finite step is undone by reloading the newest saved weights. */
#ifndef TT_LINK_H
#define TT_LINK_H

#include <stddef.h>
#include <stdint.h>

/* Resets the link state; a training build loads the newest valid saved weights of this
 * model from the non-volatile store, if any. Call once after tt_hal_init(). */
void tt_link_init(void);

/* Reads the pending UART bytes and handles every complete frame (one reply per request).
 * Calls tt_hal_idle() when no byte was pending. */
void tt_link_service(void);

/* Feeds received bytes to the frame parser directly (tt_link_service uses it). */
void tt_link_receive(const uint8_t *buf, size_t n);

/* Link counters, also sent by the LINK_STATS request (same order on the wire). */
typedef struct {
    uint32_t frames_ok;        /* valid frames received */
    uint32_t crc_errors;       /* dropped: CRC mismatch */
    uint32_t too_long;         /* dropped: longer than the maximum frame or payload */
    uint32_t malformed;        /* dropped: bad COBS, truncated, length field mismatch */
    uint32_t bad_version;      /* dropped: unknown protocol version */
    uint32_t seq_errors;       /* not executed: out of sequence */
    uint32_t duplicates;       /* not executed: repeat of a recent request, reply resent */
    uint32_t executed;         /* requests executed (replies stored) */
    uint32_t unknown_type;     /* executed with TT_ERR_UNKNOWN_TYPE */
    uint32_t auth_refused;     /* executed with TT_ERR_AUTH: a write (or closed read) outside a session */
    uint32_t bad_tags;         /* dropped: a request in a session whose tag was wrong */
    uint32_t auth_failures;    /* AUTH requests with a wrong proof (or no challenge) */
} tt_link_counters;

const tt_link_counters *tt_link_get_counters(void);

#endif /* TT_LINK_H */
