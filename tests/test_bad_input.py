"""Bad files through the command line: a truncated or corrupt .tflite, and sample files that
do not match the model. Each is refused with exit 2 and a message naming what was expected
and found; never a traceback, never a wrong answer computed from misread data."""
import json

import numpy as np
import pytest

pytest.importorskip("keras")
pytest.importorskip("ai_edge_litert")

import tflite_models as tm  # noqa: E402
from cli_run import tinytrain, tinytrain_in_process  # noqa: E402

INPUT = (6, 6, 2)
CLASSES = 3


def assert_refused(proc, *words):
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr and proc.stderr.startswith("error: "), proc.stderr
    for w in words:
        assert w in proc.stderr, (w, proc.stderr)


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A small int8 .tflite classifier: conv -> global average pooling -> dense (3 classes)."""
    import keras
    keras.utils.set_random_seed(8)
    inp = keras.Input(INPUT)
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(5, 3, activation="relu")(inp))
    out = keras.layers.Dense(CLASSES)(x)
    calib = np.random.default_rng(8).uniform(-1, 1, (32, *INPUT)).astype(np.float32)
    path = tmp_path_factory.mktemp("model") / "small.tflite"
    path.write_bytes(tm.int8_tflite(keras.Model(inp, out), [calib]))
    return path


# --- a damaged .tflite ----------------------------------------------------------------------------

@pytest.mark.parametrize("fraction", [0.02, 0.55, 0.97])
def test_truncated_tflite_exit_2(model, tmp_path, fraction):
    data = model.read_bytes()
    bad = tmp_path / "cut.tflite"
    bad.write_bytes(data[:int(len(data) * fraction)])
    assert_refused(tinytrain("inspect", bad), str(bad))


def test_damaged_tflite_never_a_traceback(model, tmp_path):
    """Every 7th truncation length, and random byte corruption, through the CLI (in process,
    for speed): exit 2 with a message, or exit 0 (a corrupted weight is still a model)."""
    data = model.read_bytes()
    rng = np.random.default_rng(20)
    cases = [data[:n] for n in range(0, len(data), 7)]
    for _ in range(400):
        b = bytearray(data)
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(len(b)))] = int(rng.integers(256))
        cases.append(bytes(b))
    path = tmp_path / "damaged.tflite"
    codes = {0: 0, 2: 0}
    for i, case in enumerate(cases):
        path.write_bytes(case)
        args = ["inspect", path] + (["--train", "last:1"] if i % 3 == 0 else [])
        proc = tinytrain_in_process(*args)
        assert proc.returncode in (0, 2), (i, proc.returncode, proc.stderr)
        codes[proc.returncode] += 1
    assert codes[2] > len(cases) // 2 and codes[0] > 0


# --- sample files that do not fit the model -------------------------------------------------------

def _npz(tmp_path, name="data.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def _x(n=5, shape=INPUT):
    return np.random.default_rng(n).uniform(-1, 1, (n, *shape)).astype(np.float32)


def _y(n=5):
    return np.arange(n) % CLASSES


BAD_DATA = {
    # name: (arrays, words the message must contain)
    "labels_2d_one_hot": (lambda: dict(x=_x(), y=np.eye(CLASSES)[_y()]), ["(5, 3)", "(5,)"]),
    "labels_column": (lambda: dict(x=_x(), y=_y()[:, None]), ["(5, 1)", "(5,)"]),
    "samples_of_another_shape": (lambda: dict(x=_x(5, (3, 3, 8)), y=_y()), ["(5, 3, 3, 8)", "(N, 6, 6, 2)"]),
    "one_sample_worth_of_values": (lambda: dict(x=_x(4, (3, 3, 2)), y=_y(4)), ["(4, 3, 3, 2)", "(N, 72)"]),
    "nan": (lambda: dict(x=np.where(np.arange(5)[:, None, None, None] == 3, np.nan, _x()), y=_y()),
            ["NaN", "sample 3"]),
    "inf": (lambda: dict(x=np.where(_x() > 0.9, np.inf, _x()), y=_y()), ["infinite"]),
    "strings": (lambda: dict(x=np.array([["a", "b"]] * 5), y=_y()), ["dtype <U1", "numbers"]),
    "string_labels": (lambda: dict(x=_x(), y=np.array(list("abcab"))), ["dtype <U1"]),
    "labels_out_of_range": (lambda: dict(x=_x(), y=np.array([0, 1, 2, 3, 1])), ["3", "0 to 2"]),
    "negative_labels": (lambda: dict(x=_x(), y=np.array([0, -1, 2, 1, 1])), ["-1", "0 to 2"]),
    "fractional_labels": (lambda: dict(x=_x(), y=np.array([0, 1.5, 2, 1, 1])), ["whole numbers"]),
    "length_mismatch": (lambda: dict(x=_x(), y=_y(4)), ["5 samples", "4 labels"]),
    "missing_x": (lambda: dict(samples=_x(), y=_y()), ["no array named 'x'", "samples"]),
    "no_samples": (lambda: dict(x=np.zeros((0, *INPUT), np.float32)), ["no samples"]),
}


@pytest.mark.parametrize("case", sorted(BAD_DATA))
def test_run_refuses_bad_samples(model, tmp_path, case):
    arrays, words = BAD_DATA[case]
    data = _npz(tmp_path, **arrays())
    assert_refused(tinytrain_in_process("run", model, "--data", data), str(data), *words)


@pytest.mark.parametrize("case", ["labels_2d_one_hot", "one_sample_worth_of_values"])
def test_run_refuses_bad_samples_in_a_real_process(model, tmp_path, case):
    arrays, words = BAD_DATA[case]
    data = _npz(tmp_path, **arrays())
    assert_refused(tinytrain("run", model, "--data", data), str(data), *words)


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_run_refuses_truncated_npz(model, tmp_path, fraction):
    good = _npz(tmp_path, "good.npz", x=_x(40), y=_y(40))
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:int(good.stat().st_size * fraction)])
    assert_refused(tinytrain_in_process("run", model, "--data", cut), str(cut), "npz")


def test_run_refuses_pickled_objects(model, tmp_path):
    data = _npz(tmp_path, x=np.array([{"a": 1}] * 5, dtype=object), y=_y())
    assert_refused(tinytrain_in_process("run", model, "--data", data), str(data))


@pytest.mark.parametrize("text,words", [("1,2,3\n4,5\n", ["not a numeric CSV"]),
                                        ("a,b\n", ["not a numeric CSV"]),
                                        ("", ["shape"]),
                                        ("1,2,0\n3,4,1\n", ["(2, 2)", "(N, 72)"])])
def test_run_refuses_bad_csv(model, tmp_path, text, words):
    path = tmp_path / "data.csv"
    path.write_text(text)
    assert_refused(tinytrain_in_process("run", model, "--data", path), *words)


def test_run_reads_flat_csv_rows_one_sample_each(model, tmp_path):
    """The right data still runs: CSV rows of 72 features (+ label) are one sample each."""
    x = _x(7)
    path = tmp_path / "data.csv"
    np.savetxt(path, np.column_stack([x.reshape(7, -1), _y(7)]), delimiter=",")
    proc = tinytrain("run", model, "--data", path, "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["samples"] == 7 and len(out["predictions"]) == 7 and 0 <= out["accuracy"] <= 1


def test_check_samples_is_the_one_place():
    """The validation is a library call (for train / evaluate too), not CLI code."""
    from tinytrain.datasets import check_samples
    from tinytrain.errors import TinyTrainError
    x, y = check_samples(_x(), _y().astype(np.float64), (1, *INPUT), CLASSES, "s")
    assert y.dtype == np.int64 and x.shape == (5, *INPUT)
    with pytest.raises(TinyTrainError, match="no labels"):
        check_samples(_x(), None, (1, *INPUT), CLASSES, "s", need_labels=True)


def test_one_sample_check_for_the_host_and_the_device():
    """train / evaluate --port check samples with the same function as run / evaluate MODEL,
    against what the device's DESCRIBE says (its int8 input's range too), flat rows out."""
    from tinytrain import datasets, protocol as P
    from tinytrain.errors import TinyTrainError
    from tinytrain.link import Description
    d = Description(input_dtype=P.DTYPE_S8, input_shape=(1, *INPUT), output_shape=(1, CLASSES))
    assert not hasattr(datasets, "read_samples") and datasets.check_samples_for_device.__module__ == datasets.__name__
    xq = np.arange(5 * 72).reshape(5, *INPUT) % 200 - 100
    x, y = datasets.check_samples_for_device(xq, _y(), d, "s")
    assert x.shape == (5, 72) and y.dtype == np.int64
    x, _ = datasets.check_samples_for_device(xq.reshape(5, 72), _y(), d, "s")     # flat rows
    assert x.shape == (5, 72)
    xq[3, 0, 0, 0] = 128
    with pytest.raises(TinyTrainError, match=r"s: sample 3 has values outside the int8 input's \[-128, 127\]"):
        datasets.check_samples_for_device(xq, _y(), d, "s")
    x_f = _x()
    datasets.check_samples_for_device(x_f, _y(), d, "s")          # floats are the caller's to quantize
    with pytest.raises(TinyTrainError, match="label 1 is 3: the model has 3 outputs, so 0 to 2"):
        datasets.check_samples(x_f, np.array([0, 3, 2, 1, 1]), (1, *INPUT), CLASSES, "s")
    with pytest.raises(TinyTrainError, match=r"s: no labels 'y'"):
        datasets.check_samples_for_device(x_f, None, d, "s")
    # shapes equal up to axes of size 1 fit (an (8, 8) image for an (8, 8, 1) input)
    img = Description(input_dtype=P.DTYPE_S8, input_shape=(1, 8, 8, 1), output_shape=(1, 10))
    assert datasets.check_samples_for_device(np.zeros((2, 8, 8), np.int8), [1, 2], img, "s")[0].shape == (2, 64)
    with pytest.raises(TinyTrainError, match=r"samples 'x' of shape \(2, 7, 7\)"):
        datasets.check_samples_for_device(np.zeros((2, 7, 7), np.int8), [1, 2], img, "s")


def test_an_unreadable_sample_file_is_named(tmp_path):
    from tinytrain.datasets import load_samples
    from tinytrain.errors import TinyTrainError
    bad = tmp_path / "d.npz"
    bad.write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(TinyTrainError, match="d.npz"):
        load_samples(bad)
