"""tinytrain.compile, the one pipeline: its memory report (flash = the constants the C holds),
the C it emits (named arena views, designated initialisers, only the kernels it calls), and
its host builds against the numpy references."""
import re
import subprocess

import numpy as np
import pytest

import tinytrain
from tinytrain import cflags, refops
from tinytrain.boards import load_board
from tinytrain.cgen.kernels import _struct_fields, struct_bytes
from tinytrain.dtypes import DTYPES

from conftest import ROOT
from graphs import MODELS, int8_graph, int8_inputs

DIGITS = ROOT / "examples" / "digits" / "digits_cnn.tflite"
C_BYTES = {d.ctype: d.nbytes for d in DTYPES.values()}


def emitted_constant_bytes(files: dict) -> int:
    """Bytes of every array of model_data.c and every parameter struct of model.c."""
    arrays = re.findall(r"^(?:const )?(\w+) \w+\[(\d+)\] TT_ALIGNED", files["model_data.c"], re.M)
    structs = re.findall(r"^static const (tt_\w+) \w+ = \{", files["model.c"], re.M)
    return sum(C_BYTES[t] * int(n) for t, n in arrays) + sum(struct_bytes(s) for s in structs)


@pytest.mark.parametrize("scheme", [None, "last:2"])
def test_flash_figure_is_the_constants_the_c_holds(scheme):
    m = tinytrain.compile(DIGITS, scheme=scheme)
    files = m.emission.render()
    flash = emitted_constant_bytes(files)
    assert m.memory["flash_bytes"] == flash
    assert f"#define TT_FLASH_DATA_BYTES  {flash}u" in files["model.h"]
    assert next(r for r in m.fit().rows if r["memory"] == "flash")["bytes"] == flash
    # more than the weights alone: the requantization tables count too
    assert flash > sum(t.nbytes for t in m.graph.constants())


def sizes():
    names = sorted(_struct_fields(str(ROOT / "firmware" / "include")))
    assert {"tt_dims", "tt_requant", "tt_update", "tt_conv_shape", "tt_hard_swish_params"} <= set(names)
    return names


def test_struct_sizes_of_the_flash_figure_are_the_cortex_m_sizes(tmp_path):
    """struct_bytes, each parameter struct's share of the flash figure (read from the headers),
    is its sizeof on the Cortex-M, for every struct of firmware/include (a compile error
    names the struct that differs)."""
    src = tmp_path / "sizes.c"
    headers = sorted(p.name for p in (ROOT / "firmware" / "include").glob("*.h"))
    src.write_text("".join(f'#include "{h}"\n' for h in headers) + "".join(
        f"typedef char size_of_{t}_is_{n}[sizeof({t}) == {n} ? 1 : -1];\n" for t, n in ((t, struct_bytes(t)) for t in sizes())))
    cmd = ["arm-none-eabi-gcc", *cflags.cross(load_board("mps2-an386")), f"-I{ROOT / 'firmware' / 'include'}",
           "-c", str(src), "-o", str(tmp_path / "sizes.o")]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_generated_c_names_its_arena_views_and_uses_designated_initialisers():
    m = tinytrain.compile(DIGITS, scheme="last:2")
    src = m.emission.render()["model.c"]
    views = re.findall(r"^static (\w+) \*const (\w+) = \(\1 \*\)\(tt_arena \+ (\d+)\);$", src, re.M)
    assert views and all(int(off) < m.memory["arena_bytes"] for _, _, off in views)
    body = src[src.index("void tt_model_invoke"):]
    assert "tt_arena +" not in body                    # every access goes through a named view
    for line in re.findall(r"^static const tt_\w+ \w+ = (\{.*\});$", src, re.M):
        assert re.fullmatch(r"\{ (\.\w+ = [^,]+)(, \.\w+ = [^,]+)* \}", line), line


def test_a_model_gets_only_the_kernels_it_calls():
    inference = {p.name for p in tinytrain.compile(DIGITS).kernel_files()}
    assert "conv2d_s8.c" in inference and "softmax_s8.c" not in inference
    assert not any("backward" in n or "update" in n for n in inference)
    training = {p.name for p in tinytrain.compile(DIGITS, scheme="last:2").kernel_files()}
    assert inference < training and "softmax_cross_entropy_s8.c" in training


@pytest.mark.parametrize("model", sorted(MODELS))
def test_host_build_equals_the_numpy_reference(model):
    g = int8_graph(model)
    x = int8_inputs(g, 8, 1)
    got = tinytrain.compile(g).run(x)
    want = np.stack([refops.run_graph(g, {g.inputs[0]: xi})[g.outputs[0]].reshape(-1) for xi in x])
    np.testing.assert_array_equal(got, want)


def test_training_host_build_and_simulation_from_one_compile():
    m = tinytrain.compile(int8_graph("cnn"), scheme="last:2", lr=0.05)
    x = int8_inputs(m.graph, 4, 2)
    sim = m.simulator()
    with m.host_trainer() as ht:
        c_losses = [loss for loss, _ in ht.train_many(x, [0, 1, 2, 3])]
        params = ht.params()
    sim_losses = [sim.step(xi, y).loss for xi, y in zip(x, [0, 1, 2, 3])]
    np.testing.assert_allclose(c_losses, sim_losses, rtol=1e-5)
    for name, value in params.items():
        assert np.abs(value.astype(np.int64) - sim.params[name].astype(np.int64)).max() <= 1, name


def test_bad_scheme_fails_before_the_model_is_read(tmp_path):
    with pytest.raises(tinytrain.compiler.TinyTrainError, match="scheme"):
        tinytrain.compile(tmp_path / "missing.tflite", scheme="lastt:2")
