"""Generated training C: structure (what is and is not emitted), compile checks, memory,
and the channel-reordering graph transform. Running the C is in test_training_codegen_run.py."""
import json
import re
import subprocess

import numpy as np
import pytest

from tinytrain.errors import TinyTrainError
from tinytrain.ir import QuantParams
import tinytrain
from tinytrain import cflags
from tinytrain.boards import load_board
from tinytrain.training.memory import memory_report
from tinytrain.training.program import build_program
from tinytrain.training.reorder import channel_closure, input_channel_importance, reorder_for_scheme
from tinytrain.training.scheme import bind_scheme
from tinytrain.training.simulate import Trainer

from conftest import ROOT
from graphs import MODELS, SPARSE, int8_graph, quantize_graph, scheme_file

INCLUDE = ROOT / "firmware" / "include"
GCC = ["gcc", *cflags.host()]
ARM = ["arm-none-eabi-gcc", *cflags.cross(load_board("mps2-an386"))]


def write_training(graph, scheme, out_dir, **kw):
    """tinytrain.compile of the training step (no memory passes), its C written to out_dir."""
    compiled = tinytrain.compile(graph, scheme=scheme, passes=False, **kw)
    compiled.write_c(out_dir)
    return compiled


def calls(src: str, function: str) -> list[list[str]]:
    """The arguments (C text) of every call of `function` (a regex) in src."""
    return [m.split(", ") for m in re.findall(rf"\b{function}\(([^;]*)\);", src)]


def call_args(src: str, function: str) -> list[str]:
    """The arguments (C text) of the first call of `function` in src."""
    return calls(src, function)[0]


def struct_fields(src: str, ref: str) -> dict[str, str]:
    """{field: initializer} of the static const struct `ref` (or `&ref`) of a generated model.c."""
    body = re.search(rf"^static const tt_\w+ {ref.lstrip('&')} = \{{ (.*) \}};$", src, re.M).group(1)
    return dict(item.lstrip(".").split(" = ", 1) for item in body.split(", "))


def compile_objects(cc, out_dir):
    for src in ("model.c", "model_data.c"):
        proc = subprocess.run([*cc, "-c", f"-I{out_dir}", f"-I{INCLUDE}", str(out_dir / src),
                               "-o", str(out_dir / (src + ".o"))], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("model", sorted(MODELS))
@pytest.mark.parametrize("int8", [False, True], ids=["f32", "int8"])
def test_generated_training_c_compiles_warning_free_host_and_arm(tmp_path, model, int8):
    g = int8_graph(model) if int8 else MODELS[model]()
    art = write_training(g, "full", tmp_path, momentum=True, shadow=int8)
    header = (tmp_path / "model.h").read_text()
    for decl in ("float tt_model_train_step(int32_t label);", "uint32_t tt_model_num_params(void);",
                 "const tt_param_info *tt_model_param(uint32_t i);",
                 "void tt_model_set_hparams(float lr, float momentum, float weight_decay);",
                 "#define TT_MODEL_TRAINABLE   1", "#define TT_TRAINABLE_BYTES"):
        assert decl in header
    assert f"#define TT_ARENA_BYTES       {art.memory['arena_bytes']}u" in header
    compile_objects(GCC, tmp_path)
    compile_objects(ARM, tmp_path)


def test_memory_is_the_training_plan_and_one_arena(tmp_path):
    g = MODELS["residual"]()
    art = write_training(g, scheme_file(tmp_path), tmp_path / "c", reorder=False)
    prog = art.program
    expect = {k: v for k, v in memory_report(prog).items() if k not in ("offsets", "flash_bytes")}
    for k, v in expect.items():
        assert art.memory[k] == v
    src = (tmp_path / "c" / "model.c").read_text()
    arena = expect["arena_bytes"]
    # every arena access (forward, masks, saves, gradients, scratch) lies inside the one arena
    offsets = [int(m) for m in re.findall(r"tt_arena \+ (\d+)\)", src)]
    assert offsets and max(offsets) < arena
    assert src.count("static uint8_t tt_arena[") == 1
    # gradients sit at the plan's offsets
    plan = memory_report(prog)["offsets"]
    for name, buf in prog.buffers.items():
        if buf.kind == "gradient" and buf.alias_of is None and name in plan:
            assert f"(float *)(tt_arena + {plan[name]})" in src, name


def test_sparse_scheme_emits_no_gradient_of_untrained_parameters(tmp_path):
    g = MODELS["residual"]()
    art = write_training(g, scheme_file(tmp_path), tmp_path / "c", reorder=False)
    src = (tmp_path / "c" / "model.c").read_text()
    data = (tmp_path / "c" / "model_data.c").read_text()
    body = src[src.index("float tt_model_train_step"):]
    # trained: expand.weight[..., :2] (conv_index 1 of 4 input channels... ratio 0.5), dw/project bias, fc
    prog = art.program
    assert set(prog.scheme.layers) == {"expand", "dw", "project", "fc"}
    # the weight updates: expand's 16 output channels x the first 4 of its 8 input channels (read
    # from a compact saved copy, no index), and fc's
    updates = {args[2]: args for args in calls(body, r"tt_\w+_update_weight_f32")}
    assert set(updates) == {"expand_weight", "fc_weight"}
    shape, ch = updates["expand_weight"][:2]
    assert struct_fields(src, ch) == {"in_channels": "8", "k": "4", "x_channels": "4"}
    assert struct_fields(src, struct_fields(src, shape)["out"][1:])["c"] == "16"
    code = re.sub(r"/\*.*?\*/", "", body)
    for part in ("stem_grad", "stem_weight", "stem_bias", "stem_mask"):   # nothing of the stem's backward
        assert part not in code
    biases = {args[1] for args in calls(body, "tt_bias_update_f32")}
    assert {"dw_bias", "project_bias"} <= biases and not {"expand_bias", "stem_bias"} & biases
    # only the trained parameters are in SRAM (non-const); frozen ones stay in flash
    for name in ("stem_weight", "stem_bias", "dw_weight", "project_weight", "expand_bias"):
        assert re.search(rf"^const float {name}\[", data, re.M), name
    for name in ("expand_weight", "dw_bias", "project_bias", "fc_weight", "fc_bias"):
        assert re.search(rf"^float {name}\[", data, re.M), name
    # the partially trained layer reads a compact saved copy of its 4 trained input channels
    save_ch, pixels, x, saved = call_args(src, "tt_save_channels_f32")
    assert (save_ch, pixels, saved) == (ch, "36", updates["expand_weight"][3])
    assert [p.name for p in art.emission.train.params] == ["expand.weight", "dw.bias", "project.bias",
                                                     "fc.weight", "fc.bias"]


def test_bad_scheme_is_a_tinytrain_error(tmp_path):
    with pytest.raises(TinyTrainError, match="conv_index 9"):
        write_training(MODELS["cnn"](), scheme_file(tmp_path, {"weight_update": [
            {"conv_index": 9, "input_channel_ratio": 0.5}]}), tmp_path / "c")


def test_momentum_without_its_state_is_a_tinytrain_error():
    prog = build_program(MODELS["mlp"](), "full", momentum=False)
    with pytest.raises(TinyTrainError, match="momentum=True"):
        Trainer(prog, momentum=0.9)
    Trainer(prog, momentum=0.0)        # plain SGD needs no state
    with pytest.raises(TinyTrainError, match="momentum=True"):
        tinytrain.compile(MODELS["mlp"](), scheme="full", momentum=False, momentum_value=0.9).emission
    tinytrain.compile(MODELS["mlp"](), scheme="full", momentum=False).emission


# --- channel reordering ------------------------------------------------------------------------

def _outputs(graph, xs):
    tr = Trainer(build_program(graph, "full"))
    return np.stack([tr.infer(x) for x in xs])


@pytest.mark.parametrize("int8", [False, True], ids=["f32", "int8"])
def test_reorder_keeps_the_function_and_puts_the_largest_channels_first(tmp_path, int8):
    g = int8_graph("residual") if int8 else MODELS["residual"]()
    scheme = bind_scheme(scheme_file(tmp_path, {"bias_update_last_n": 0, "weight_update": [
        {"conv_index": 1, "input_channel_ratio": 0.5}, {"conv_index": 3, "input_channel_ratio": 0.25}]}), g)
    g2, s2 = reorder_for_scheme(g, scheme)
    # expand reads the residual stream (stem output): stem, expand, the add's other input (project)
    # and the add's output all move together; project reads dw's output, which dw and expand share
    for name in ("expand", "project"):
        op = next(o for o in g2.ops if o.name == name)
        imp = input_channel_importance(g2, op)
        k = s2.layers[name].in_channels
        assert s2.layers[name].channel_index is None
        assert imp[:k].min() >= imp[k:].max(), name
    assert not np.array_equal(g2.tensors["stem.weight"].data, g.tensors["stem.weight"].data)
    rng = np.random.default_rng(5)
    inp = g.tensors["input"]
    xs = rng.standard_normal((6,) + inp.shape).astype(np.float32)
    if int8:
        xs = np.clip(np.round(xs / inp.scale) + inp.zero_point, -128, 127).astype(np.int8)
        np.testing.assert_array_equal(_outputs(g2, xs), _outputs(g, xs))
    else:
        np.testing.assert_allclose(_outputs(g2, xs), _outputs(g, xs), rtol=1e-5, atol=1e-6)


def test_reorder_falls_back_to_a_channel_index_at_the_graph_input(tmp_path):
    g = MODELS["cnn"]()
    g.tensors["conv1.weight"].data[..., 2] *= 10      # input channel 2 is the largest
    scheme = bind_scheme(scheme_file(tmp_path, {"weight_update": [{"conv_index": 0, "input_channel_ratio": 0.34}]}), g)
    assert channel_closure(g, "input") is None
    g2, s2 = reorder_for_scheme(g, scheme)
    u = s2.layers["conv1"]
    imp = input_channel_importance(g, next(o for o in g.ops if o.name == "conv1"))
    assert u.in_channels is None and u.channel_index == [int(np.argmax(imp))] == [2]
    assert g2 is g
    art = write_training(g, s2, tmp_path / "c", reorder=False)
    src = (tmp_path / "c" / "model.c").read_text()
    ch, pixels = call_args(src, "tt_save_channels_f32")[:2]
    assert pixels == "64" and call_args(src, "tt_conv2d_update_weight_f32")[1:3] == [ch, "conv1_weight"]
    assert struct_fields(src, ch) == {"in_channels": "3", "k": "1", "index": "chidx_conv1", "x_channels": "1"}
    assert art.program.scheme.layers["conv1"].channel_index == u.channel_index


def test_reorder_through_a_flatten_of_a_spatial_map_falls_back(tmp_path):
    from graphs import GraphBuilder
    b = GraphBuilder("flat", (1, 4, 4, 2))
    b.conv("conv1", 4)
    b.unary("flatten", "reshape", (1, 64))
    b.dense("fc", 3)
    g = b.build("flat")
    assert channel_closure(g, "conv1") is None
    s = bind_scheme("last:1", g)
    s.layers["fc"].in_channels = 16
    g2, s2 = reorder_for_scheme(g, s)
    assert g2 is g and len(s2.layers["fc"].channel_index) == 16
