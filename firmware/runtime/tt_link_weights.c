/* The trainable parameters over the link: reads, the RAM copy of the trainable state,
 * weights transactions (staged in RAM or in the inactive NV slot, committed at once),
 * save and load (docs/protocol.md). */
#include "tt_link_internal.h"

#include "tt_crc.h"

#if TT_MODEL_TRAINABLE
#if TT_LINK_SPARE
/* The RAM copy: a snapshot of the parameters and optimizer state before each step, or
 * the staging of a push. */
static uint8_t spare[TT_TRAINABLE_BYTES > 0 ? TT_TRAINABLE_BYTES : 1];
#define SPARE_BYTES ((uint32_t)sizeof spare)
#else
#define SPARE_BYTES 0u
#endif

uint32_t tt_link_spare_bytes(void)
{
    return SPARE_BYTES;
}

void *tt_link_param_region(uint32_t i, uint32_t *bytes)
{
    const tt_param_info *p = tt_model_param(i);
    *bytes = p->bytes;
    return p->data;
}

uint32_t tt_link_params_total(void)
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
int32_t tt_link_nonfinite_param(int with_state)
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

/* New parameters are in place (a committed WEIGHTS_WRITE, a load from the store): nothing
 * the update kept for the old ones may act on them. Momentum and residuals are zeroed and
 * shadows re-read (tt_model_reset_optimizer), and the stochastic rounding's PRNG starts again
 * at its compiled seed, so the next steps equal the host simulation started from these
 * parameters (a fresh HostTrainer, or set_params) and do not depend on the steps before. */
void tt_link_params_replaced(void)
{
    tt_model_reset_optimizer();
    tt_model_set_update_seed(TT_UPDATE_SEED);
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
void tt_link_snapshot(int to_spare)
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

int tt_link_spare_holds_state(void)
{
    return tt_link_params_total() + state_total() <= SPARE_BYTES;
}
#endif

int tt_link_spare_holds_params(void)
{
#if TT_LINK_SPARE
    return tt_link_params_total() <= SPARE_BYTES;
#else
    return 0;
#endif
}

int tt_link_param_info(const uint8_t *q, size_t n, uint8_t *p, size_t cap)
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

int tt_link_weights_read(const uint8_t *q, size_t n, uint8_t *p, size_t cap)
{
    uint32_t off, len;
    int r = tt_link_read_range(q, n, tt_link_params_total(), cap, &off, &len);
    if (r < 0)
        return r;
    params_copy(off, p, len, 0);
    return (int)len;
}

int tt_link_weights_crc(uint8_t *p)
{
    tt_put_u32(p + TT_WEIGHTS_CRC_REPLY_OFF_TOTAL, tt_link_params_total());
    tt_put_u32(p + TT_WEIGHTS_CRC_REPLY_OFF_CRC, params_crc());
    return TT_WEIGHTS_CRC_REPLY_BYTES;
}

void tt_link_weights_abort(void)
{
    memset(&L.txn, 0, sizeof L.txn);
}

/* WEIGHTS_BEGIN: u32 total, u32 crc, model hash. The device checks the hash itself. */
int tt_link_weights_begin(const uint8_t *q, size_t n, uint8_t *p)
{
    uint8_t hash[TT_NV_HASH_BYTES];
    uint32_t total;
    if (n != TT_WEIGHTS_BEGIN_REQUEST_BYTES)
        return FAIL(TT_ERR_BAD_LENGTH);
    tt_link_weights_abort();                             /* a new transaction replaces an open one */
    model_hash16(hash);
    if (memcmp(q + TT_WEIGHTS_BEGIN_REQUEST_OFF_MODEL_HASH, hash, TT_NV_HASH_BYTES) != 0)
        return FAIL(TT_ERR_MODEL);
    total = tt_get_u32(q + TT_WEIGHTS_BEGIN_REQUEST_OFF_TOTAL);
    if (total != tt_link_params_total())
        return FAIL(TT_ERR_RANGE);
    if (tt_link_spare_holds_params()) {
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
int tt_link_weights_write(const uint8_t *q, size_t n, uint8_t *p)
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
        tt_link_weights_abort();
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
int tt_link_weights_commit(uint8_t *p, uint16_t *detail)
{
    uint8_t hash[TT_NV_HASH_BYTES];
    tt_ws_info info;
    uint32_t generation = 0;
    int32_t bad;
    if (!L.txn.open || L.txn.written != L.txn.total)
        return FAIL(TT_ERR_STATE);
    bad = staged_nonfinite();
    if (bad >= 0) {
        tt_link_weights_abort();
        *detail = (uint16_t)bad;
        return FAIL(TT_ERR_NONFINITE);
    }
    model_hash16(hash);
#if TT_LINK_SPARE
    if (L.txn.staging == TT_STAGING_RAM) {
        if (tt_crc32(spare, L.txn.total) != L.txn.crc) {
            tt_link_weights_abort();
            return FAIL(TT_ERR_WEIGHTS_CRC);
        }
        params_copy(0, spare, L.txn.total, 1);
    } else
#endif
    {
        int r = tt_weights_stage_commit(&L.txn.nv, (const char *)hash, L.txn.crc, L.steps, &info);
        if (r != TT_WS_OK) {
            tt_link_weights_abort();
            return FAIL(r == TT_WS_NONE ? TT_ERR_WEIGHTS_CRC : TT_ERR_NV);
        }
        /* The slot is now the newest valid one: load it (a power loss here boots with it). */
        if (tt_weights_load((const char *)hash, tt_model_num_params(), tt_link_param_region, &info) != TT_WS_OK) {
            tt_link_weights_abort();
            return FAIL(TT_ERR_NV);
        }
        L.loaded_generation = generation = info.generation;
    }
    tt_link_params_replaced();
    L.poisoned = 0;
    memset(p, 0, TT_WEIGHTS_COMMIT_REPLY_BYTES);
    tt_put_u32(p + TT_WEIGHTS_COMMIT_REPLY_OFF_TOTAL, L.txn.total);
    tt_put_u32(p + TT_WEIGHTS_COMMIT_REPLY_OFF_CRC, params_crc());
    p[TT_WEIGHTS_COMMIT_REPLY_OFF_STAGING] = L.txn.staging;
    tt_put_u32(p + TT_WEIGHTS_COMMIT_REPLY_OFF_GENERATION, generation);
    tt_link_weights_abort();
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

int tt_link_weights_save(uint8_t *p, uint16_t *detail)
{
    uint8_t hash[TT_NV_HASH_BYTES];
    tt_ws_info info;
    int32_t bad;
    if (L.txn.open)
        return FAIL(TT_ERR_STATE);
    bad = tt_link_nonfinite_param(0);
    if (bad >= 0) {                          /* never store weights that cannot be used */
        *detail = (uint16_t)bad;
        return FAIL(TT_ERR_NONFINITE);
    }
    model_hash16(hash);
    return put_store_info(tt_weights_save((const char *)hash, L.steps, tt_model_num_params(),
                                          tt_link_param_region, &info), &info, p);
}

int tt_link_weights_load(uint8_t *p)
{
    uint8_t hash[TT_NV_HASH_BYTES];
    tt_ws_info info;
    int r;
    if (L.txn.open)
        return FAIL(TT_ERR_STATE);
    model_hash16(hash);
    r = tt_weights_load((const char *)hash, tt_model_num_params(), tt_link_param_region, &info);
    if (r == TT_WS_OK) {
        L.steps = info.steps;
        L.loaded_generation = info.generation;
        L.poisoned = 0;
        tt_link_params_replaced();
    }
    return put_store_info(r, &info, p);
}
#endif /* TT_MODEL_TRAINABLE */
