/* libFuzzer harness of the device's link (tt_link.c and everything it calls: COBS, CRC, the
 * frame decoder, the request handlers, authentication, the NV store), built with ASan and
 * UBSan by tests/test_link_fuzz.py:
 *   clang -fsanitize=fuzzer,address,undefined ... fuzz_link.c tt_*.c model.c
 *
 * The first input byte picks how the rest reaches the device:
 *   0  raw      the bytes as they are, as a line would deliver them (finds decoder bugs,
 *               but a random frame rarely passes the CRC)
 *   1  framed   records [u8 type][u8 seq step][u16 length][payload]: the harness builds each
 *               frame (header, CRC, COBS, delimiter), so the handlers see the payloads
 *   2  session  framed, after a real HELLO + AUTH with the test key, every frame tagged:
 *               the fuzzer reaches the write handlers (train, weights transactions, save...)
 * Every frame the device sends is checked: it decodes, its CRC holds, its length agrees,
 * and its payload fits the reply limit; anything else aborts (a finding). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tt_auth.h"
#include "tt_cobs.h"
#include "tt_crc.h"
#include "tt_device_key.h"
#include "tt_hal.h"
#include "tt_link.h"
#include "tt_proto.h"
#include "tt_sha256.h"

/* ---- a HAL in memory ----------------------------------------------------------------- */
#define NV_BYTES 4096u
static uint8_t nv[NV_BYTES];
static uint8_t out[1 << 16];             /* the frames the device sent since the last reset */
static size_t out_len;
static uint32_t work;

void tt_hal_init(void) {}
int tt_hal_uart_read(uint8_t *buf, size_t max) { (void)buf; (void)max; return 0; }
uint32_t tt_hal_work_count(void) { return work += 7; }
const char *tt_hal_work_unit(void) { return "fuzz"; }
size_t tt_hal_nv_size(void) { return NV_BYTES; }
void tt_hal_idle(void) {}
int tt_hal_entropy(uint8_t *buf, size_t n) { (void)buf; (void)n; return 0; }

int tt_hal_nv_read(uint32_t off, void *dst, size_t n)
{
    if (off > NV_BYTES || n > NV_BYTES - off)
        return TT_HAL_ERR_RANGE;
    memcpy(dst, nv + off, n);
    return 0;
}

int tt_hal_nv_write(uint32_t off, const void *src, size_t n)
{
    if (off > NV_BYTES || n > NV_BYTES - off)
        return TT_HAL_ERR_RANGE;
    memcpy(nv + off, src, n);
    return 0;
}

/* Every frame out must be a well-formed frame within the limits. */
static void check_frame(const uint8_t *enc, size_t n)
{
    static uint8_t body[TT_PROTO_ENCODED(TT_PROTO_REPLY_BODY) + 16];
    int k;
    if (n > sizeof body)
        abort();
    k = tt_cobs_decode(enc, n, body, sizeof body);
    if (k < (int)(TT_PROTO_HEADER_BYTES + TT_PROTO_CRC_BYTES) || k > (int)TT_PROTO_REPLY_BODY)
        abort();
    if (body[0] != TT_PROTO_VERSION || tt_get_u16(body + 4) + 10u != (unsigned)k)
        abort();
    if (tt_get_u32(body + k - 4) != tt_crc32(body, (size_t)k - 4))
        abort();
}

void tt_hal_uart_write(const uint8_t *buf, size_t n)
{
    size_t i, start = 0;
    for (i = 0; i < n; i++) {
        if (buf[i] == 0) {
            check_frame(buf + start, i - start);
            start = i + 1;
        }
    }
    if (start != n)
        abort();                         /* the device writes whole frames */
    if (n > sizeof out - out_len)
        out_len = 0;
    memcpy(out + out_len, buf, n);
    out_len += n;
}

/* ---- the host side of the harness -------------------------------------------------------- */
static const uint8_t key[TT_PROTO_KEY_BYTES] = TT_DEVICE_KEY;
static uint8_t session[TT_SHA256_BYTES];
static int in_session;
static uint32_t counter;
static uint16_t next_seq;

static void hmac3(const uint8_t *k, size_t kn, const char *label, const uint8_t *a, size_t an,
                  const uint8_t *b, size_t bn, uint8_t mac[TT_SHA256_BYTES])
{
    tt_hmac_ctx c;
    tt_hmac_init(&c, k, kn);
    tt_hmac_update(&c, label, strlen(label));
    tt_hmac_update(&c, a, an);
    tt_hmac_update(&c, b, bn);
    tt_hmac_final(&c, mac);
}

/* Sends one frame; returns 1 when the device executed it (it advanced its sequence). */
static int send(uint8_t type, uint16_t seq, const uint8_t *payload, size_t n, int tag)
{
    static uint8_t body[TT_PROTO_MAX_BODY + TT_PROTO_TAG_BYTES + 8];
    static uint8_t enc[TT_PROTO_ENCODED(sizeof body) + 1];
    static uint8_t dec[TT_PROTO_ENCODED(TT_PROTO_REPLY_BODY) + 16];
    size_t len = n + (tag ? TT_PROTO_TAG_BYTES : 0u), k, i, start, last = 0, last_len = 0;
    if (len > TT_PROTO_MAX_PAYLOAD + 8)
        return 0;
    body[0] = TT_PROTO_VERSION;
    body[1] = type;
    tt_put_u16(body + 2, seq);
    tt_put_u16(body + 4, (uint16_t)len);
    if (n > 0)
        memcpy(body + 6, payload, n);
    if (tag) {
        uint8_t head[5], mac[TT_SHA256_BYTES];
        tt_hmac_ctx c;
        head[0] = TT_AUTH_TO_DEVICE;
        tt_put_u32(head + 1, counter + 1u);
        tt_hmac_init(&c, session, sizeof session);
        tt_hmac_update(&c, head, sizeof head);
        tt_hmac_update(&c, body, 6 + n);
        tt_hmac_final(&c, mac);
        memcpy(body + 6 + n, mac, TT_PROTO_TAG_BYTES);
    }
    tt_put_u32(body + 6 + len, tt_crc32(body, 6 + len));
    k = tt_cobs_encode(body, 10 + len, enc, sizeof enc - 1);
    enc[k++] = 0;
    out_len = 0;
    tt_link_receive(enc, k);
    /* The last frame out that is not BUSY: its reply, or an error about it. */
    for (i = 0, start = 0; i < out_len; i++) {
        if (out[i] == 0) {
            int m = tt_cobs_decode(out + start, i - start, dec, sizeof dec);
            if (m >= 10 && dec[1] != TT_MSG_BUSY) {
                last = start;
                last_len = (size_t)m;
                memmove(body, dec, (size_t)m);
            }
            start = i + 1;
        }
    }
    (void)last;
    if (last_len < 10 || tt_get_u16(body + 2) != seq)
        return 0;
    if (body[1] == (uint8_t)(type | TT_MSG_REPLY))
        return 1;
    if (body[1] == TT_MSG_ERROR) {
        uint8_t code = body[6];
        return !(code == TT_ERR_CRC || code == TT_ERR_TOO_LONG || code == TT_ERR_MALFORMED
                 || code == TT_ERR_VERSION || code == TT_ERR_SEQ || code == TT_ERR_BAD_TAG);
    }
    return 0;
}

static int authenticate(void)
{
    uint8_t nonce[TT_PROTO_NONCE_BYTES], challenge[TT_PROTO_NONCE_BYTES], req[32], mac[TT_SHA256_BYTES];
    static uint8_t dec[TT_PROTO_ENCODED(TT_PROTO_REPLY_BODY) + 16];
    int m;
    size_t i;
    memset(nonce, 0x5A, sizeof nonce);
    if (!send(TT_MSG_HELLO, next_seq, NULL, 0, 0))
        return 0;
    for (i = 0; i < out_len && out[i] != 0; i++) {
    }
    m = tt_cobs_decode(out, i, dec, sizeof dec);
    if (m < 10 + (int)TT_HELLO_REPLY_BYTES)
        return 0;
    memcpy(challenge, dec + 6 + TT_HELLO_REPLY_OFF_CHALLENGE, sizeof challenge);
    next_seq++;
    hmac3(key, sizeof key, "tinytrain v2 host", challenge, sizeof challenge, nonce, sizeof nonce, mac);
    memcpy(req, nonce, 16);
    memcpy(req + 16, mac, 16);
    if (!send(TT_MSG_AUTH, next_seq++, req, sizeof req, 0))
        return 0;
    hmac3(key, sizeof key, "tinytrain v2 session", challenge, sizeof challenge, nonce, sizeof nonce, session);
    in_session = 1;
    counter = 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t i;
    uint8_t mode;
    if (size == 0)
        return 0;
    memset(nv, 0xFF, sizeof nv);
    tt_link_init();
    in_session = 0;
    counter = 0;
    next_seq = 1;
    mode = data[0] % 3u;
    data++;
    size--;
    if (mode == 0) {
        tt_link_receive(data, size);
        tt_link_receive((const uint8_t *)"", 1);
        return 0;
    }
    if (mode == 2 && !authenticate())
        abort();                         /* the harness's own session must work */
    for (i = 0; i + 4 <= size;) {
        uint8_t type = data[i], step = data[i + 1];
        size_t n = tt_get_u16(data + i + 2);
        i += 4;
        if (n > size - i)
            n = size - i;
        if (type == TT_MSG_HELLO || type == TT_MSG_AUTH)
            in_session = 0;              /* the device ends the session: follow it */
        /* step 0: the next seq (in order); otherwise a jump, to reach the out-of-order paths */
        if (send(type, (uint16_t)(next_seq + step), data + i, n, in_session && type != TT_MSG_HELLO
                 && type != TT_MSG_AUTH)) {
            next_seq = (uint16_t)(next_seq + step + 1u);
            if (in_session && type != TT_MSG_HELLO && type != TT_MSG_AUTH)
                counter++;
        }
        i += n;
    }
    return 0;
}
