/* Host batch runner: reads samples (TT_INPUT_SIZE tt_input_t each, raw, native endianness)
 * from stdin until EOF, runs the model on each, writes the outputs (TT_OUTPUT_SIZE
 * tt_output_t each) to stdout. Used by `tinytrain run` and the tests to compare the
 * generated C against reference interpreters. */
#include <stdio.h>
#include <string.h>
#include "model.h"

int main(void)
{
    for (;;) {
        size_t got = fread(tt_model_input(), sizeof(tt_input_t), TT_INPUT_SIZE, stdin);
        if (got == 0) {
            break;
        }
        if (got != TT_INPUT_SIZE) {
            fprintf(stderr, "tt_batch: truncated sample (%lu of %lu values)\n",
                    (unsigned long)got, (unsigned long)TT_INPUT_SIZE);
            return 1;
        }
        tt_model_invoke();
        if (fwrite(tt_model_output(), sizeof(tt_output_t), TT_OUTPUT_SIZE, stdout) != TT_OUTPUT_SIZE) {
            return 1;
        }
    }
    return 0;
}
