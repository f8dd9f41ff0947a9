/* Device side of the link's authentication: challenges, proofs, session tags (tt_auth.h). */
#include "tt_auth.h"

#include <string.h>

#include "tt_device_key.h"
#include "tt_hal.h"
#include "tt_sha256.h"
#include "tt_weights_store.h"

static const uint8_t device_key[TT_PROTO_KEY_BYTES] = TT_DEVICE_KEY;

static struct {
    uint8_t key_id[TT_PROTO_KEY_ID_BYTES];
    uint8_t challenge[TT_PROTO_NONCE_BYTES];
    int challenge_live;                  /* issued and not yet answered */
    uint32_t boot;                       /* this boot's persisted counter value */
    int boot_known;
    uint32_t issued;                     /* challenges since boot */
    tt_hmac_ctx session;                 /* HMAC keyed with the session key, ready to copy */
    int in_session;
} A;

static void keyed(const uint8_t *key, size_t key_len, const char *label, const uint8_t *a, size_t na,
                  const uint8_t *b, size_t nb, uint8_t out[TT_SHA256_BYTES])
{
    tt_hmac_ctx c;
    tt_hmac_init(&c, key, key_len);
    tt_hmac_update(&c, label, strlen(label));
    if (na)
        tt_hmac_update(&c, a, na);
    if (nb)
        tt_hmac_update(&c, b, nb);
    tt_hmac_final(&c, out);
}

void tt_auth_init(void)
{
    uint8_t mac[TT_SHA256_BYTES];
    memset(&A, 0, sizeof A);
    keyed(device_key, sizeof device_key, "tinytrain v2 key id", NULL, 0, NULL, 0, mac);
    memcpy(A.key_id, mac, sizeof A.key_id);
    tt_wipe(mac, sizeof mac);
}

const uint8_t *tt_auth_key_id(void)
{
    return A.key_id;
}

int tt_auth_challenge(uint8_t out[TT_PROTO_NONCE_BYTES])
{
    uint8_t seed[8 + 16], mac[TT_SHA256_BYTES];
    int entropy;
    tt_auth_end_session();
    A.challenge_live = 0;
    if (!A.boot_known && tt_nv_counter_next(&A.boot) == 0)
        A.boot_known = 1;
    memset(seed, 0, sizeof seed);
    entropy = tt_hal_entropy(seed + 8, 16);
    if (!A.boot_known && entropy != 16)
        return -1;                       /* nothing guarantees a nonce never seen before */
    tt_put_u32(seed, A.boot);
    tt_put_u32(seed + 4, ++A.issued);
    keyed(device_key, sizeof device_key, "tinytrain v2 nonce", seed, sizeof seed, NULL, 0, mac);
    memcpy(A.challenge, mac, sizeof A.challenge);
    memcpy(out, A.challenge, sizeof A.challenge);
    A.challenge_live = 1;
    tt_wipe(mac, sizeof mac);
    return 0;
}

int tt_auth_answer(const uint8_t host_nonce[TT_PROTO_NONCE_BYTES],
                   const uint8_t proof[TT_PROTO_TAG_BYTES], uint8_t device_proof[TT_PROTO_TAG_BYTES])
{
    uint8_t mac[TT_SHA256_BYTES];
    int ok;
    if (!A.challenge_live)
        return 0;
    A.challenge_live = 0;                /* one answer per challenge, right or wrong */
    keyed(device_key, sizeof device_key, "tinytrain v2 host", A.challenge, sizeof A.challenge,
          host_nonce, TT_PROTO_NONCE_BYTES, mac);
    ok = tt_ct_equal(mac, proof, TT_PROTO_TAG_BYTES);
    if (ok) {
        keyed(device_key, sizeof device_key, "tinytrain v2 device", A.challenge, sizeof A.challenge,
              host_nonce, TT_PROTO_NONCE_BYTES, mac);
        memcpy(device_proof, mac, TT_PROTO_TAG_BYTES);
        keyed(device_key, sizeof device_key, "tinytrain v2 session", A.challenge, sizeof A.challenge,
              host_nonce, TT_PROTO_NONCE_BYTES, mac);
        tt_hmac_init(&A.session, mac, sizeof mac);
        A.in_session = 1;
    }
    tt_wipe(mac, sizeof mac);
    return ok;
}

void tt_auth_end_session(void)
{
    tt_wipe(&A.session, sizeof A.session);
    A.in_session = 0;
}

int tt_auth_in_session(void)
{
    return A.in_session;
}

void tt_auth_tag(uint8_t direction, uint32_t counter, const uint8_t *body, size_t n,
                 uint8_t tag[TT_PROTO_TAG_BYTES])
{
    uint8_t head[5], mac[TT_SHA256_BYTES];
    tt_hmac_ctx c;
    head[0] = direction;
    tt_put_u32(head + 1, counter);
    c = A.session;
    tt_hmac_update(&c, head, sizeof head);
    tt_hmac_update(&c, body, n);
    tt_hmac_final(&c, mac);
    memcpy(tag, mac, TT_PROTO_TAG_BYTES);
    tt_wipe(mac, sizeof mac);
}

int tt_auth_check(uint8_t direction, uint32_t counter, const uint8_t *body, size_t n,
                  const uint8_t tag[TT_PROTO_TAG_BYTES])
{
    uint8_t want[TT_PROTO_TAG_BYTES];
    int ok;
    if (!A.in_session)
        return 0;
    tt_auth_tag(direction, counter, body, n, want);
    ok = tt_ct_equal(want, tag, TT_PROTO_TAG_BYTES);
    tt_wipe(want, sizeof want);
    return ok;
}
