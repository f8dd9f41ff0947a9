"""The oracle's trap (issue 9): LiteRT's reference int8 SOFTMAX (and TFLM's, the same
reference_ops::Softmax) aborts the process with SIGABRT when a row's exponentials sum to 512
or more: GetReciprocal then reports num_bits_over_unit >= 9 and the final shift
`num_bits_over_unit + 31 - 8` exceeds 31, which TFLITE_CHECK(0 <= exponent && exponent <= 31)
turns into abort(). Each exponential is at most 1, so only a row of at least 512 values lying
within a few input steps of the row's maximum gets there: MobileNetV2's default head (1000
classes) with random weights gives exactly such near-uniform logits. tinytrain writes such a
row as -128 everywhere (each probability is below 1/512, half an output step, so it rounds to
0) instead of shifting an int32 by 32 bits or more (undefined in C), and matches LiteRT on
every row LiteRT computes."""
import signal
import subprocess
import sys

import numpy as np
import pytest

import tinytrain

import tflite_models as tm

IN_Q = (0.05, 0)


def _softmax_tflite(depth: int) -> bytes:
    return tm.op_tflite("SOFTMAX", [dict(shape=(1, depth), type="INT8", q=IN_Q)],
                        dict(shape=(1, depth), type="INT8", q=(1 / 256, -128)),
                        options={"beta": 1.0})


def _litert_in_subprocess(tmp_path, data: bytes, x: np.ndarray) -> subprocess.CompletedProcess:
    """Run LiteRT's BUILTIN_REF interpreter on one input in a child process (it may abort)."""
    model, inp = tmp_path / "m.tflite", tmp_path / "x.npy"
    model.write_bytes(data)
    np.save(inp, x)
    code = ("import sys, numpy as np; sys.path.insert(0, sys.argv[3]); import tflite_models as tm; "
            "i = tm.reference_interpreter(open(sys.argv[1], 'rb').read()); "
            "sys.stdout.buffer.write(tm.invoke(i, [np.load(sys.argv[2])]).tobytes())")
    return subprocess.run([sys.executable, "-c", code, str(model), str(inp), str(tm.__file__.rsplit("/", 1)[0])],
                          capture_output=True, timeout=300)


@pytest.mark.parametrize("depth,aborts", [(511, False), (512, True), (1000, True)])
def test_litert_aborts_exactly_when_a_row_sums_to_512_and_tinytrain_writes_zeros(tmp_path, depth, aborts):
    data = _softmax_tflite(depth)
    x = np.full((1, depth), 5, np.int8)              # equal logits: each exponential is 1
    got = tinytrain.compile(data).run(x[None])[0]
    proc = _litert_in_subprocess(tmp_path, data, x)
    if aborts:
        assert proc.returncode == -signal.SIGABRT, proc.stderr.decode(errors="replace")[-2000:]
        assert np.all(got == -128)
    else:
        assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
        want = np.frombuffer(proc.stdout, np.int8)
        np.testing.assert_array_equal(got, want)
        assert np.all(want == -128 + 1)              # 1/511 of 256 steps rounds to 1 step


def test_a_peaked_row_of_1000_runs_in_litert_and_matches():
    """The same 1000-class softmax runs when the logits are spread (a trained head)."""
    data = _softmax_tflite(1000)
    rng = np.random.default_rng(5)
    x = rng.integers(-128, 128, (20, 1, 1000)).astype(np.int8)
    x[:, 0, :10] = 127
    interp = tm.reference_interpreter(data)
    want = np.stack([tm.invoke(interp, [xi]).reshape(-1) for xi in x])
    np.testing.assert_array_equal(tinytrain.compile(data).run(x), want)
