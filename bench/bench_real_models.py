"""Whole models through the compiler (issue 9's acceptance models), one row each: operators
of the int8 .tflite (converter default, dynamic batch), IR ops after import (shape arithmetic
folded, activations fused) and the planned arena, int8 outputs that
differ from LiteRT's reference kernels over N inputs, the float32 compile's largest
difference from TensorFlow, and for the trained models the largest relative error of a
float32 training step's gradients against GradientTape (max |ours - tape| / max |tape| over
each trained parameter, worst parameter) under `last:2` and `bias-only:6`.

The models are those of the tests (tests/real_models.py, tests/test_sequences.py); converted
models are cached under $TINYTRAIN_CACHE. Run: python bench/bench_real_models.py [--quick]
(--quick: 10 inputs, no training columns).
"""
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import tinytrain  # noqa: E402
from tinytrain.frontends.tf_quiet import quiet_tensorflow  # noqa: E402
from tinytrain.report import format_table  # noqa: E402

import real_models as rm  # noqa: E402
import tflite_models as tm  # noqa: E402


def _sequence_models():
    import test_sequences as ts
    return {"kws_conv1d": ts._kws_model, "dense_on_sequence": ts._dense_on_sequence_model}


def measure(name, build, n_inputs: int, train: bool) -> dict:
    with quiet_tensorflow():
        model = build()
    calib = rm.calibration(model)
    data = tm.reference_runnable(rm.cached_int8_tflite(model, calib))
    compiled = tinytrain.compile(data)
    shape = tuple(model.inputs[0].shape[1:])
    x = np.random.default_rng(1).integers(-128, 128, (n_inputs, 1) + shape).astype(np.int8)
    interp = tm.reference_interpreter(data)
    want = np.stack([tm.invoke(interp, [xi]).reshape(-1) for xi in x])
    got = compiled.run(x)
    xf = rm.calibration(model, n=4, seed=2)
    with quiet_tensorflow():
        ref = model.predict(xf, verbose=0)
    row = dict(model=name, tflite_ops=len(tm.op_types(interp)), ir_ops=len(compiled.graph.ops), arena=compiled.memory["arena_bytes"],
               int8_mismatches=f"{int((got != want).sum())}/{want.size} ({n_inputs} inputs)",
               float_max_abs=f"{np.abs(tinytrain.compile(model).run(xf).reshape(ref.shape) - ref).max():.1e}")
    for scheme in ("last:2", "bias-only:6"):
        err = "-"
        if train:
            with tempfile.TemporaryDirectory() as tmp, quiet_tensorflow():
                steps = rm.float_step_gradients(model, scheme, xf[:1], 3, tmp)
            err = f"{max(np.abs(g - w).max() / np.abs(w).max() for g, w in steps.values()):.1e}"
        row[f"grad_rel_err {scheme}"] = err
    return row


def main():
    quick = "--quick" in sys.argv
    models = {"mobilenet_v2": rm.mobilenet_v2, "mobilenet_v3_small": rm.mobilenet_v3_small,
              "resnet_style": rm.resnet_style, "unet_style": rm.unet_style, **_sequence_models()}
    trained = {"mobilenet_v3_small", "unet_style"}
    rows = [measure(name, build, 10 if quick else 50, not quick and name in trained)
            for name, build in models.items()]
    print(format_table(list(rows[0]), [list(r.values()) for r in rows]))


if __name__ == "__main__":
    main()
