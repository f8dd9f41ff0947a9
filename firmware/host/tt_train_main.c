/* Host training harness: drives a generated training build through stdin/stdout (raw,
 * native endianness), for tinytrain.training.host.HostTrainer and the tests.
 *
 * Commands (one byte, then its arguments) and replies:
 *   'N'                      -> u32 input size, u32 output size, u32 arena bytes,
 *                               u32 trainable bytes, u32 number of params, then per param:
 *                               u32 name length, name, u32 bytes, u8 dtype
 *   'T' i32 label, input     -> f32 loss, i32 prediction (argmax of the forward's output)
 *   'I' input                -> output (TT_OUTPUT_SIZE tt_output_t)
 *   'G'                      -> the bytes of every trainable parameter, in order
 *   'S' bytes of every param -> nothing (written through tt_model_param, as the link's
 *                               WEIGHTS_WRITE does; then 'R' re-derives the update state)
 *   'H' f32 lr, momentum, wd -> nothing
 *   'R'                      -> nothing (tt_model_reset_optimizer)
 *   'E' u32 seed             -> nothing (tt_model_set_update_seed)
 *   'Q' or end of input      -> exit 0
 * Output is flushed after every reply. Errors go to stderr with exit code 1. */
#include <stdio.h>
#include <string.h>
#include "model.h"

static int read_exact(void *dst, size_t n)
{
    return fread(dst, 1, n, stdin) == n;
}

static int write_exact(const void *src, size_t n)
{
    return fwrite(src, 1, n, stdout) == n;
}

static int write_u32(uint32_t v) { return write_exact(&v, sizeof v); }

static int cmd_info(void)
{
    uint32_t i;
    int ok = write_u32(TT_INPUT_SIZE) && write_u32(TT_OUTPUT_SIZE) && write_u32(TT_ARENA_BYTES)
             && write_u32(TT_TRAINABLE_BYTES) && write_u32(tt_model_num_params());
    for (i = 0; ok && i < tt_model_num_params(); ++i) {
        const tt_param_info *p = tt_model_param(i);
        uint32_t len = (uint32_t)strlen(p->name);
        ok = write_u32(len) && write_exact(p->name, len) && write_u32(p->bytes)
             && write_exact(&p->dtype, 1);
    }
    return ok;
}

static int cmd_train(void)
{
    int32_t label, prediction;
    float loss;
    if (!read_exact(&label, sizeof label)
        || !read_exact(tt_model_input(), sizeof(tt_input_t) * TT_INPUT_SIZE)) {
        return 0;
    }
    loss = tt_model_train_step(label);
    prediction = tt_model_last_prediction();
    return write_exact(&loss, sizeof loss) && write_exact(&prediction, sizeof prediction);
}

static int cmd_infer(void)
{
    if (!read_exact(tt_model_input(), sizeof(tt_input_t) * TT_INPUT_SIZE)) {
        return 0;
    }
    tt_model_invoke();
    return write_exact(tt_model_output(), sizeof(tt_output_t) * TT_OUTPUT_SIZE);
}

static int cmd_params(int write)
{
    uint32_t i;
    for (i = 0; i < tt_model_num_params(); ++i) {
        const tt_param_info *p = tt_model_param(i);
        if (!(write ? read_exact(p->data, p->bytes) : write_exact(p->data, p->bytes))) {
            return 0;
        }
    }
    return 1;
}

static int cmd_seed(void)
{
    uint32_t seed;
    if (!read_exact(&seed, sizeof seed)) {
        return 0;
    }
    tt_model_set_update_seed(seed);
    return 1;
}

static int cmd_hparams(void)
{
    float h[3];
    if (!read_exact(h, sizeof h)) {
        return 0;
    }
    tt_model_set_hparams(h[0], h[1], h[2]);
    return 1;
}

int main(void)
{
    int c;
    while ((c = getchar()) != EOF && c != 'Q') {
        int ok;
        switch (c) {
        case 'N': ok = cmd_info(); break;
        case 'T': ok = cmd_train(); break;
        case 'I': ok = cmd_infer(); break;
        case 'G': ok = cmd_params(0); break;
        case 'S': ok = cmd_params(1); break;
        case 'H': ok = cmd_hparams(); break;
        case 'R': tt_model_reset_optimizer(); ok = 1; break;
        case 'E': ok = cmd_seed(); break;
        default:
            fprintf(stderr, "tt_train: unknown command 0x%02x\n", (unsigned)c);
            return 1;
        }
        if (!ok) {
            fprintf(stderr, "tt_train: truncated command or failed write ('%c')\n", c);
            return 1;
        }
        fflush(stdout);
    }
    return 0;
}
