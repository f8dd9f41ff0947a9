/* tt_proto.h - the tinytrain serial protocol: wire constants shared by the device
 * (tt_link.c) and documented byte by byte in docs/protocol.md (host: tinytrain/link.py).
 *
 * A frame on the wire is COBS(body) followed by one 0x00 delimiter. body is:
 *   off 0  u8   version      TT_PROTO_VERSION
 *   off 1  u8   type         request type; a reply is type | TT_MSG_REPLY, an error TT_MSG_ERROR
 *   off 2  u16  seq          request sequence number, echoed by its reply
 *   off 4  u16  length       payload bytes (<= TT_PROTO_MAX_PAYLOAD)
 *   off 6  ...  payload
 *   off 6+length  u32 crc    CRC-32 (IEEE, zlib) over bytes 0 .. 6+length-1
 * All multi-byte fields are little-endian. */
#ifndef TT_PROTO_H
#define TT_PROTO_H

#define TT_PROTO_VERSION     1u

#ifndef TT_PROTO_MAX_PAYLOAD
#define TT_PROTO_MAX_PAYLOAD 256u    /* a board with SRAM to spare may build with more */
#endif
#if TT_PROTO_MAX_PAYLOAD < 240 || TT_PROTO_MAX_PAYLOAD > 65535
#error "TT_PROTO_MAX_PAYLOAD must be in [240, 65535] (DESCRIBE needs 240 bytes)"
#endif
/* The device keeps its last TT_PROTO_REPLY_RING replies for retransmission, so the host
 * may have that many requests in flight and still recover every lost reply. */
#ifndef TT_PROTO_REPLY_RING
#define TT_PROTO_REPLY_RING 4u
#endif
#define TT_PROTO_HEADER_BYTES 6u
#define TT_PROTO_CRC_BYTES    4u
#define TT_PROTO_MAX_BODY   (TT_PROTO_HEADER_BYTES + TT_PROTO_MAX_PAYLOAD + TT_PROTO_CRC_BYTES)
/* COBS adds one byte per 254 and one leading code byte. */
#define TT_PROTO_MAX_ENCODED (TT_PROTO_MAX_BODY + TT_PROTO_MAX_BODY / 254u + 1u)

/* Request types (a reply is the same value | TT_MSG_REPLY). */
#define TT_MSG_HELLO          0x01u  /* (re)synchronise the sequence number */
#define TT_MSG_DESCRIBE       0x02u
#define TT_MSG_INFER          0x03u
#define TT_MSG_TRAIN          0x04u
#define TT_MSG_INPUT_WRITE    0x05u
#define TT_MSG_OUTPUT_READ    0x06u
#define TT_MSG_SET_MODE       0x07u
#define TT_MSG_GET_STATS      0x08u
#define TT_MSG_RESET_STATS    0x09u
#define TT_MSG_SET_HPARAMS    0x0Au
#define TT_MSG_GET_HPARAMS    0x0Bu
#define TT_MSG_PARAM_INFO     0x0Cu
#define TT_MSG_WEIGHTS_READ   0x0Du
#define TT_MSG_WEIGHTS_CRC    0x0Eu
#define TT_MSG_WEIGHTS_WRITE  0x0Fu
#define TT_MSG_WEIGHTS_SAVE   0x10u
#define TT_MSG_WEIGHTS_LOAD   0x11u
#define TT_MSG_LINK_STATS     0x12u
#define TT_MSG_ECHO           0x13u

#define TT_MSG_REPLY          0x80u
#define TT_MSG_BUSY           0xFEu  /* device -> host: request seq accepted, computing */
#define TT_MSG_ERROR          0xFFu

/* Error codes (first payload byte of a TT_MSG_ERROR frame). */
#define TT_ERR_CRC            1u   /* frame CRC mismatch (frame dropped) */
#define TT_ERR_TOO_LONG       2u   /* frame longer than TT_PROTO_MAX_ENCODED (dropped) */
#define TT_ERR_MALFORMED      3u   /* bad COBS, truncated, length field disagrees (dropped) */
#define TT_ERR_VERSION        4u   /* unsupported protocol version (dropped) */
#define TT_ERR_UNKNOWN_TYPE   5u   /* no such request type */
#define TT_ERR_BAD_LENGTH     6u   /* payload length wrong for this request */
#define TT_ERR_SEQ            7u   /* out-of-sequence request (not executed); detail = expected seq */
#define TT_ERR_RANGE          8u   /* offset / index / value out of range */
#define TT_ERR_NOT_TRAINABLE  9u   /* inference-only firmware */
#define TT_ERR_NV            10u   /* non-volatile store missing, too small or I/O error */
#define TT_ERR_NO_SAVED      11u   /* no valid saved weights for this model */
#define TT_ERR_WEIGHTS_CRC   12u   /* written weights do not match the announced CRC */

/* DESCRIBE capability bits. */
#define TT_CAP_INFER          0x01u
#define TT_CAP_TRAIN          0x02u
#define TT_CAP_NV_STORE       0x04u
#define TT_CAP_HPARAMS        0x08u

/* SET_MODE values. */
#define TT_MODE_TRAIN         0u
#define TT_MODE_EVAL          1u


/* Little-endian field access, independent of the CPU's byte order and alignment. */
#include <stdint.h>
static inline void tt_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void tt_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline uint16_t tt_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static inline uint32_t tt_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

#endif /* TT_PROTO_H */
