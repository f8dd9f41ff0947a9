/* Test scaffolding for the link tests: a hand-written model following the generated
 * model.h API (docs/architecture.md). A linear classifier on 16 inputs -> 4 float logits,
 * trained with softmax cross-entropy and SGD with momentum. It really computes, so the
 * tests can compare weights of a clean run and a run through a faulty link.
 * Build with -DTT_TEST_INFER_ONLY for an inference-only model.h, with -DTT_TEST_FLOAT_INPUT
 * for float32 inputs (int8 otherwise), with -DTT_TEST_OUTPUTS=N for N logits (an output
 * larger than one reply frame). */
#ifndef TT_MODEL_H
#define TT_MODEL_H

#include <stdint.h>

#define TT_MODEL_NAME        "link_test_linear"
#define TT_MODEL_HASH        "1122334455667788"
#define TT_INPUT_SIZE        16
#ifndef TT_TEST_OUTPUTS
#define TT_TEST_OUTPUTS      4
#endif
#define TT_OUTPUT_SIZE       TT_TEST_OUTPUTS
#define TT_INPUT_SHAPE       { 1, 4, 4, 1 }
#define TT_INPUT_RANK        4
#define TT_OUTPUT_SHAPE      { 1, TT_TEST_OUTPUTS }
#define TT_OUTPUT_RANK       2
#define TT_ARENA_BYTES       32u
#define TT_FLASH_DATA_BYTES  0u
#define TT_MACS              64u
#ifdef TT_TEST_FLOAT_INPUT
#define TT_INPUT_IS_INT8     0
#define TT_INPUT_SCALE       1.0f
#define TT_INPUT_ZERO_POINT  0
typedef float tt_input_t;
#else
#define TT_INPUT_IS_INT8     1
#define TT_INPUT_SCALE       0.03125f
#define TT_INPUT_ZERO_POINT  -3
typedef int8_t tt_input_t;
#endif
#define TT_OUTPUT_IS_INT8    0
#define TT_OUTPUT_SCALE      1.0f
#define TT_OUTPUT_ZERO_POINT 0

typedef float tt_output_t;

tt_input_t *tt_model_input(void);
const tt_output_t *tt_model_output(void);
void tt_model_invoke(void);

#ifdef TT_TEST_INFER_ONLY
#define TT_MODEL_TRAINABLE   0
#else
#define TT_MODEL_TRAINABLE   1
float tt_model_train_step(int32_t label);
int32_t tt_model_last_prediction(void);   /* argmax of the last train step's forward */
typedef struct {
    const char *name;
    void *data;
    uint32_t bytes;
    uint8_t dtype;
} tt_param_info;
uint32_t tt_model_num_params(void);
const tt_param_info *tt_model_param(uint32_t i);
uint32_t tt_model_num_states(void);                /* optimizer state: the momentum */
const tt_param_info *tt_model_state(uint32_t i);
void tt_model_set_hparams(float lr, float momentum, float weight_decay);
void tt_model_get_hparams(float *lr, float *momentum, float *weight_decay);
void tt_model_reset_optimizer(void);
/* A float32 model has no stochastic rounding: the seed is accepted and unused (the link
 * restarts it after a weights push, tt_link_params_replaced). */
#define TT_UPDATE_SEED 0u
void tt_model_set_update_seed(uint32_t seed);
#define TT_MOMENTUM_BYTES  (4u * (16u * TT_TEST_OUTPUTS + TT_TEST_OUTPUTS))
#define TT_UPDATE_MODE_NAME "float"      /* float32 parameters: plain SGD */
#define TT_UPDATE_EXTRA_BYTES 0u
#define TT_TRAINABLE_BYTES (4u * (16u * TT_TEST_OUTPUTS + TT_TEST_OUTPUTS) + TT_MOMENTUM_BYTES)
#endif

#endif
