"""The board's optimised kernel variants in compiled models (tinytrain.passes.select_kernels):
which variant each op gets on each board, that every variant the kernels define is tested
against the reference (tests/kernel_variants.py lists them, tests/test_kernels_simd.py tests
them), that the memory plan holds the variants' scratch (the in-place depthwise ring instead of the reference's plane), that the
flash figure counts their requantisation tables, that the model hash does not depend on the
board, and that whole models run on the host through the `_dsp` variants (tt_simd.h's
portable C) with the reference's outputs and training step, bit for bit. (The QEMU boards
run them in tests/test_reference_inference_device.py, test_reference_training_device.py
and test_firmware_emulated.py.)"""
import re
import subprocess

import numpy as np
import pytest

import tinytrain
from tinytrain import kernel_prep
from tinytrain.boards import load_board
from tinytrain.cgen.kernels import VARIANTS_BY_SIMD, kernel_index
from tinytrain.frontends import load_model
from tinytrain.hostmodel import HostModel
from tinytrain.passes import kernel_scratch, kernel_scratch_name
from tinytrain.planner import check_plan, graph_buffers
from tinytrain.refops import run_graph

import ckernels as ck
from kernel_variants import VARIANTS
from conftest import ROOT
from graphs import MODELS, int8_graph, int8_inputs, scheme_file

DIGITS = ROOT / "examples" / "digits" / "digits_cnn.tflite"
BOARD_VARIANT = {"native": None, "mps2-an386": "dsp", "mps3-an547": "mve"}
VARIANT_OPS = ("conv2d", "depthwise_conv2d", "pointwise_depthwise_conv2d", "fully_connected")


def variant_functions() -> set[str]:
    """Every optimised variant the kernel folders define: tt_X_dsp / tt_X_mve beside tt_X."""
    index = kernel_index()
    return {f for f in index.defined_in
            if re.fullmatch(r"tt_\w+_(dsp|mve)", f) and index.has(f.rsplit("_", 1)[0])}


def test_every_variant_kernel_is_tested_against_the_reference():
    tested = {f"tt_{kind}_s8_{v}" for kind, vs in VARIANTS.items() if kind != "requantize"
              for v in vs}
    # the float Helium variants: the cases of tests/f16_cases*.py (run by tests/test_fp16_mve.py,
    # test_fp16_ops.py and the test_fp16_<group>.py files)
    for cases in sorted((ROOT / "tests").glob("f16_cases*.py")):
        tested |= set(re.findall(r"\b(tt_\w+_f(?:16|32)_mve)\(", cases.read_text()))
    assert variant_functions() == tested


@pytest.mark.parametrize("board", sorted(BOARD_VARIANT))
def test_each_int8_op_calls_the_boards_variant(board, tte_models):
    graph = load_model(tte_models / "mcunet-5fps.json")
    m = tinytrain.compile(graph, board=board)
    variant = BOARD_VARIANT[board]
    types = {op.type for op in m.graph.ops}
    assert {"conv2d", "depthwise_conv2d", "pointwise_depthwise_conv2d", "fully_connected"} <= types
    for op, step in zip(m.graph.ops, m.emission.forward):
        fn = step["lines"][0].split("(")[0]
        if op.type in VARIANT_OPS:
            assert op.attrs.get("variant") == variant, op.name
            assert fn == (f"{fn.rsplit('_', 1)[0]}_{variant}" if variant else fn) and fn.endswith(
                f"_{variant}" if variant else "_s8"), (op.name, fn)
        else:
            assert "variant" not in op.attrs
    # one model, one hash, whichever board runs it
    base = tinytrain.compile(graph, board="native")
    assert m.model_hash == base.model_hash
    # the prepared requantisation tables are flash arrays: 12 bytes a channel of every _dsp op
    files = m.emission.render()
    rq = re.findall(r"^const int32_t rqd_\w+\[(\d+)\]", files["model_data.c"], re.M)
    if variant == "dsp":
        channels = sum(m.graph.tensors[op.outputs[0]].shape[-1]
                       + (m.graph.tensors[op.attrs["intermediate"]].shape[-1] if "intermediate" in op.attrs else 0)
                       for op in m.graph.ops if op.type in VARIANT_OPS and op.type != "fully_connected")
        assert sum(map(int, rq)) == 3 * channels
        assert m.memory["flash_bytes"] - base.memory["flash_bytes"] == 4 * sum(map(int, rq))
    else:
        assert not rq


@pytest.mark.parametrize("board", ["mps2-an386", "mps3-an547"])
def test_plan_holds_the_variants_scratch_and_the_ring_replaces_the_plane(board, tte_models):
    graph = load_model(tte_models / "mcunet-5fps.json")
    ref, m = tinytrain.compile(graph, board="native"), tinytrain.compile(graph, board=board)
    variant = BOARD_VARIANT[board]
    buffers, _ = graph_buffers(m.graph)
    check_plan(buffers, m.plan)
    size = {b.name: b.size for b in buffers}
    ref_size = {b.name: b.size for b in graph_buffers(ref.graph)[0]}
    rings = planes = 0
    for op in m.graph.ops:
        if op.type == "conv2d":
            kh, kw = m.graph.tensors[op.inputs[1]].shape[1:3]
            cin, cout = m.graph.tensors[op.inputs[0]].shape[3], m.graph.tensors[op.outputs[0]].shape[3]
            assert size[kernel_scratch_name(op)] == kernel_prep.conv2d_scratch_bytes(variant, kh, kw, cin, cout)
        if op.attrs.get("inplace"):
            _, h, w, _ = m.graph.tensors[op.inputs[0]].shape
            kh, kw, _ = m.graph.tensors[op.inputs[1]].shape
            assert ref_size[op.attrs["scratch"]] == h * w     # the reference's plane
            ring = ((kh - 1) * op.attrs["dilation"][0] + 1) * w * {"dsp": 4, "mve": 8}[variant]
            assert size[op.attrs["scratch"]] == ring
            rings, planes = rings + ring, planes + h * w
    assert 0 < rings < planes
    assert set(kernel_scratch(m.graph)) <= set(size) and not kernel_scratch(ref.graph)
    # the largest in-place plane no longer counts; the arena grows at most by one variant's
    # scratch (the first layer's im2col buffer sits at the peak: input + output + 256 bytes)
    assert m.plan.arena_bytes <= ref.plan.arena_bytes + max(kernel_scratch(m.graph).values())[1]


def test_scratch_sizes_agree_with_the_c_header(tmp_path):
    """kernel_prep's sizes are the ones tt_kernels_simd.h's *_scratch_bytes functions give."""
    shapes = [(3, 3, 3, 16, 128, 128, 1), (1, 1, 48, 16, 16, 16, 1), (5, 5, 7, 9, 9, 5, 2), (7, 7, 16, 4, 3, 4, 1),
              (9, 9, 4, 4, 20, 20, 1), (3, 1, 5, 2, 6, 7, 3)]
    lines = []
    for kh, kw, cin, cout, h, w, dil in shapes:
        lines.append(f'printf("%d %d %d %d\\n", (int)tt_conv2d_s8_dsp_scratch_bytes({kh}, {kw}, {cin}), '
                     f'(int)tt_conv2d_s8_mve_scratch_bytes({kh}, {kw}, {cin}, {cout}), '
                     f'(int)tt_depthwise_conv2d_inplace_s8_dsp_scratch_bytes(&d{len(lines)}, {kh}, {kw}, {dil}), '
                     f'(int)tt_depthwise_conv2d_inplace_s8_mve_scratch_bytes(&d{len(lines)}, {kh}, {kw}, {dil}));')
    dims = "".join(f"static const tt_dims d{i} = {{ {s[4]}, {s[5]}, {s[2]} }};\n" for i, s in enumerate(shapes))
    src = tmp_path / "sizes.c"
    # the _mve size function is declared for every target (only the kernels need Helium)
    src.write_text('#include <stdio.h>\n#include "tt_kernels_simd.h"\n' + dims
                   + "int main(void) {\n" + "\n".join(lines) + "\nreturn 0; }\n")
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", f"-I{ck.INCLUDE}", str(src), "-o", str(tmp_path / "sizes")],
                   check=True)
    got = subprocess.run([str(tmp_path / "sizes")], capture_output=True, text=True, check=True).stdout.split("\n")
    for (kh, kw, cin, cout, h, w, dil), line in zip(shapes, got):
        want = [kernel_prep.conv2d_scratch_bytes("dsp", kh, kw, cin, cout),
                kernel_prep.conv2d_scratch_bytes("mve", kh, kw, cin, cout),
                kernel_prep.dw_inplace_scratch_bytes("dsp", h, w, kh, kw, dil),
                kernel_prep.dw_inplace_scratch_bytes("mve", h, w, kh, kw, dil)]
        assert list(map(int, line.split())) == want, (kh, kw, cin, cout, h, w, dil)


def test_select_kernels_follows_the_simd_field():
    assert VARIANTS_BY_SIMD == {"none": (), "dsp": ("dsp",), "helium": ("mve", "dsp")}
    assert load_board("mps2-an386").simd == "dsp" and load_board("mps3-an547").simd == "helium"
    g = int8_graph("residual")
    m = tinytrain.compile(g, board="mps2-an386")
    again = tinytrain.compile(m.graph, board="native")       # a re-targeted graph drops the choice
    assert not any("variant" in op.attrs for op in again.graph.ops)
    fl = tinytrain.compile(MODELS["mlp"](), board="mps2-an386")
    assert not any("variant" in op.attrs for op in fl.graph.ops)     # float graphs: reference kernels


@pytest.mark.parametrize("name", ["residual", "dwsep", "cnn"])
def test_dsp_variants_in_whole_models_on_the_host_equal_the_reference(name):
    """A model compiled for the Cortex-M4 (its _dsp kernels, fused and in-place ops included)
    built for the host runs tt_simd.h's portable C: outputs equal the numpy reference."""
    g = int8_graph(name)
    m = tinytrain.compile(g, board="mps2-an386")
    assert any(f.endswith("_dsp") for f in m.emission.em.functions)
    x = int8_inputs(g, 6, seed=3)
    got = HostModel(m).run(x)
    for i in range(len(x)):
        want = run_graph(g, {g.inputs[0]: x[i:i + 1]})[g.outputs[0]].reshape(-1)
        np.testing.assert_array_equal(got[i], want, err_msg=f"{name} sample {i}")


def test_dsp_variants_in_a_training_step_on_the_host_equal_the_reference_build(tmp_path):
    """A sparse int8 training step compiled for the Cortex-M4 (its forward through the _dsp
    kernels, in-place and fused ops in the frozen part) built for the host: losses,
    predictions and trained parameters equal the reference kernels' build bit for bit."""
    g = int8_graph("residual")
    scheme = scheme_file(tmp_path)
    xs, labels = int8_inputs(g, 3, 5), [1, 4, 2]
    out = {}
    for board in ("native", "mps2-an386"):
        m = tinytrain.compile(g, scheme=scheme, board=board, lr=0.05)
        assert any(f.endswith("_dsp") for f in m.emission.em.functions) == (board != "native")
        with m.host_trainer(tmp_path / board) as host:
            out[board] = (host.train_many(xs, labels), host.params())
    (steps, params), (want_steps, want) = out["mps2-an386"], out["native"]
    assert steps == want_steps
    for name, value in want.items():
        np.testing.assert_array_equal(params[name], value, err_msg=name)


@pytest.mark.parametrize("board,gi,update", [("native", "", ""), ("mps2-an386", "_dsp", "_dsp"),
                                             ("mps3-an547", "_mve", "_mve")])
def test_training_steps_call_the_boards_fully_connected_backward_variants(tmp_path, board, gi, update):
    """The fully connected input gradient and fused update of an int8 training step: the
    board's variant."""
    m = tinytrain.compile(int8_graph("residual"), scheme=scheme_file(tmp_path), board=board)
    fns = m.emission.em.functions
    assert f"tt_fully_connected_grad_input_s8{gi}" in fns and f"tt_fully_connected_update_weight_s8{update}" in fns
    assert sum(f.startswith("tt_fully_connected_grad_input_s8") for f in fns) == 1      # that one alone
    assert sum(f.startswith("tt_fully_connected_update_weight_s8") for f in fns) == 1


def test_the_host_refuses_helium_kernels_with_a_clear_error():
    """A model compiled for the Cortex-M55 calls _mve kernels, which only exist there."""
    from tinytrain.errors import TinyTrainError
    m = tinytrain.compile(int8_graph("cnn"), board="mps3-an547")
    with pytest.raises(TinyTrainError, match="Helium kernels .*board='native'"):
        HostModel(m)


def test_no_kernel_uses_soft_double_precision_on_the_m4(tmp_path):
    """Every kernel file, built for the Cortex-M4F (single-precision FPU), calls no libgcc
    double-precision helper (a float -> int64 conversion used to: __aeabi_f2lz goes through
    __aeabi_f2d / __aeabi_dmul, ~100 instructions per QAS-updated weight)."""
    import shutil
    from tinytrain import cflags
    from tinytrain.resources import firmware_dir
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    board = load_board("mps2-an386")
    sources = sorted((firmware_dir() / "kernels").glob("*/*.c"))
    subprocess.run(["arm-none-eabi-gcc", *cflags.cross(board), f"-I{firmware_dir() / 'include'}", "-c",
                    *map(str, sources)], cwd=tmp_path, check=True, capture_output=True)
    nm = subprocess.run(["arm-none-eabi-nm", "-u", *sorted(map(str, tmp_path.glob("*.o")))], capture_output=True,
                        text=True, check=True).stdout
    soft = sorted(set(re.findall(r"\b(__aeabi_(?:d\w+|f2d|f2lz|f2ulz|l2d|ul2d|i2d|ui2d)|__\w+df\w*)\b", nm)))
    assert not soft, soft
