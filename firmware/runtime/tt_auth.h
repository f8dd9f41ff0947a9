/* tt_auth.h - the device side of the link's authentication (docs/protocol.md, "Sessions").
 *
 * The device holds a 32-byte secret K (src/tt_device_key.h, written by `tinytrain build`
 * with owner-only permissions; the host keeps the same key in its key store).
 *   challenge D   = HMAC(K, "tinytrain v2 nonce" | u32 boot | u32 n | entropy)[:16], where
 *                   boot is a counter persisted in the NV store (bumped once per boot, before
 *                   the first challenge) and n counts challenges since boot: never repeats
 *   host proof    = HMAC(K, "tinytrain v2 host"   | D | H)[:16]   (H: the host's nonce)
 *   device proof  = HMAC(K, "tinytrain v2 device" | D | H)[:16]
 *   session key S = HMAC(K, "tinytrain v2 session" | D | H)
 *   frame tag     = HMAC(S, u8 direction | u32 counter | header and payload before the tag)[:16]
 * direction: 0 host to device, 1 device to host; counter: the request's number in the
 * session (1 for the first request after AUTH), the same for its reply. */
#ifndef TT_AUTH_H
#define TT_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "tt_proto.h"

#define TT_AUTH_TO_DEVICE 0u
#define TT_AUTH_TO_HOST   1u

void tt_auth_init(void);
const uint8_t *tt_auth_key_id(void);   /* TT_PROTO_KEY_ID_BYTES: names the key, reveals nothing */

/* A fresh challenge (and the end of any session). 0, or -1 when the device has no nonce
 * source (no NV store to persist the boot counter and no entropy): then AUTH is refused. */
int tt_auth_challenge(uint8_t out[TT_PROTO_NONCE_BYTES]);

/* Checks AUTH's proof against the last challenge (used once, right or wrong). On success
 * starts the session and writes the device's proof; returns 1, else 0. */
int tt_auth_answer(const uint8_t host_nonce[TT_PROTO_NONCE_BYTES],
                   const uint8_t proof[TT_PROTO_TAG_BYTES], uint8_t device_proof[TT_PROTO_TAG_BYTES]);

void tt_auth_end_session(void);
int tt_auth_in_session(void);

/* The tag of a frame body (header and payload up to the tag). */
void tt_auth_tag(uint8_t direction, uint32_t counter, const uint8_t *body, size_t n,
                 uint8_t tag[TT_PROTO_TAG_BYTES]);
/* 1 when tag is right (compared in constant time). */
int tt_auth_check(uint8_t direction, uint32_t counter, const uint8_t *body, size_t n,
                  const uint8_t tag[TT_PROTO_TAG_BYTES]);

#endif /* TT_AUTH_H */
