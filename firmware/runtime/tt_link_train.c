/* INFER, TRAIN (batches; the guard that rolls back a step whose loss or update is not
 * finite), INPUT_WRITE and the hyper-parameters (docs/protocol.md). */
#include "tt_link_internal.h"

#include "tt_hal.h"

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

int tt_link_infer(const uint8_t *q, size_t n, uint8_t *p, size_t cap)
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
    tt_put_u32(p + TT_INFER_REPLY_OFF_PREDICTED, tt_link_argmax_output());
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
        *pred = tt_link_argmax_output();
        *loss = 0.0f / 0.0f;                 /* evaluation reports no loss (NaN) */
        L.eval_n++;
        L.eval_correct += *pred == (uint32_t)label;
        flags |= TT_RESULT_EVAL;
    } else {
#if TT_MODEL_TRAINABLE
        int bad;
#if TT_LINK_SPARE
        int exact = tt_link_spare_holds_state();
        if (exact)
            tt_link_snapshot(1);
#endif
        /* The backward reuses the arena, output included: the step itself remembers the
         * forward's prediction. A non-finite loss skips the backward (generated code). */
        t0 = tt_hal_work_count();
        *loss = tt_model_train_step(label);
        *work += tt_hal_work_count() - t0;
        *pred = (uint32_t)tt_model_last_prediction();
        bad = !is_finite(*loss) || tt_link_nonfinite_param(1) >= 0;
        if (bad) {
            /* Roll back: the parameters and optimizer state as before the step. */
#if TT_LINK_SPARE
            if (exact) {
                tt_link_snapshot(0);
            } else
#endif
            if (tt_link_nonfinite_param(1) >= 0) {
                uint8_t hash[TT_NV_HASH_BYTES];
                tt_ws_info info;
                model_hash16(hash);
                if (tt_weights_load((const char *)hash, tt_model_num_params(), tt_link_param_region, &info) == TT_WS_OK)
                    tt_link_params_replaced();      /* back to the newest save */
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
int tt_link_train(const uint8_t *q, size_t n, uint8_t *p, size_t cap, uint16_t *detail, int tagged)
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

int tt_link_input_write(const uint8_t *q, size_t n, int tagged)
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

#if TT_MODEL_TRAINABLE
int tt_link_set_hparams(const uint8_t *q, size_t n, uint8_t *p)
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

int tt_link_get_hparams(uint8_t *p)
{
    float lr, mom, wd;
    tt_model_get_hparams(&lr, &mom, &wd);
    put_f32(p + TT_HPARAMS_OFF_LR, lr);
    put_f32(p + TT_HPARAMS_OFF_MOMENTUM, mom);
    put_f32(p + TT_HPARAMS_OFF_WEIGHT_DECAY, wd);
    return TT_HPARAMS_BYTES;
}
#endif /* TT_MODEL_TRAINABLE */
