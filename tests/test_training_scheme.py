"""Update schemes: parsing, binding to a graph, and the pruning of the training program."""
import json
from pathlib import Path

import numpy as np
import pytest

from tinytrain.errors import TinyTrainError
from tinytrain.training.head import replace_classifier
from tinytrain.training.memory import memory_report
from tinytrain.training.program import build_program
from tinytrain.training.scheme import bind_scheme, parse_scheme

from graphs import MODELS

REF = Path(__file__).resolve().parents[1] / ".." / "shared" / "reference" / "tte-models"
needs_ref = pytest.mark.skipif(not REF.is_dir(), reason=f"reference models not found at {REF}")


def test_parse_text_schemes():
    assert parse_scheme("full").kind == "full"
    s = parse_scheme("last:2")
    assert (s.kind, s.count) == ("last", 2)
    s = parse_scheme("bias-only:3")
    assert (s.kind, s.count) == ("bias-only", 3)


@pytest.mark.parametrize("bad", ["last:0", "last:x", "bias-only:", "nonsense", "missing.json"])
def test_bad_schemes_are_user_errors(bad):
    with pytest.raises(TinyTrainError):
        parse_scheme(bad)


def test_bad_json_fields_are_named(tmp_path):
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"bias_update_last_n": 1, "weight_updates": []}))
    with pytest.raises(TinyTrainError, match="weight_updates"):
        parse_scheme(p)
    p.write_text(json.dumps({"weight_update": [{"conv_index": 0, "input_channel_ratio": 2}]}))
    with pytest.raises(TinyTrainError, match="input_channel_ratio"):
        parse_scheme(p)
    p.write_text(json.dumps({"weight_update": [{"conv_index": 9, "input_channel_ratio": 1}]}))
    with pytest.raises(TinyTrainError, match="conv_index 9"):
        bind_scheme(p, MODELS["cnn"]())


def test_bind_last_and_bias_only():
    g = MODELS["cnn"]()
    s = bind_scheme("last:2", g)
    assert list(s.layers) == ["conv2", "fc"]
    assert all(u.weight and u.bias for u in s.layers.values())
    s = bind_scheme("bias-only:3", g)
    assert list(s.layers) == ["conv1", "conv2", "fc"]
    assert all(u.bias and not u.weight for u in s.layers.values())
    with pytest.raises(TinyTrainError):
        bind_scheme("last:4", g)


def test_pruning_last_layer_only_computes_no_input_gradient():
    g = MODELS["cnn"]()
    prog = build_program(g, "last:1")
    assert [b.op for b in prog.backward] == ["fc"]
    assert prog.backward[0].grad_inputs == {}
    # nothing is saved but the classifier's input; no masks
    assert not [b for b in prog.buffers.values() if b.kind == "mask"]


def test_pruning_bias_only_keeps_masks_not_activations():
    g = MODELS["cnn"]()
    prog = build_program(g, "bias-only:2")
    ops = [b.op for b in prog.backward]
    assert ops == ["fc", "flatten", "gap", "pool2", "conv2"]
    conv2 = prog.backward_step("conv2")
    assert conv2.grad_inputs == {} and conv2.saved == {} and conv2.mask == "conv2.mask"
    assert not conv2.computes_weight_grad and conv2.computes_bias_grad
    assert prog.buffers["conv2.mask"].nbytes == (2 * 2 * 8 + 7) // 8   # 1 bit per output element
    assert "input.grad" not in prog.buffers and "conv1.grad" not in prog.buffers


def test_residual_gradient_accumulates_and_updates_in_reverse_order():
    g = MODELS["residual"]()
    prog = build_program(g, "full")
    order = [b.op for b in prog.backward]
    assert order == ["fc", "flatten", "gap", "add", "project", "dw", "expand", "stem"]
    # stem's output feeds add and expand: written by add's backward, accumulated by expand's
    assert prog.backward_step("add").accumulate["stem"] is False
    assert prog.backward_step("expand").accumulate["stem"] is True
    assert "input" not in prog.backward_step("stem").grad_inputs


def test_partial_channel_weight_update_saves_only_trained_channels(tmp_path):
    g = MODELS["residual"]()
    p = tmp_path / "s.json"
    p.write_text(json.dumps({"bias_update_last_n": 0,
                             "weight_update": [{"conv_index": 1, "input_channel_ratio": 0.25}]}))
    prog = build_program(g, p)
    saved = prog.backward_step("expand").saved["x"]
    assert prog.buffers[saved].shape == (1, 6, 6, 2)
    assert prog.backward_step("expand").update.in_channels == 2
    assert prog.buffers[saved].kind == "saved"


def test_memory_report_fields():
    prog = build_program(MODELS["dwsep"](), "last:2", momentum=True)
    m = memory_report(prog)
    for k in ("arena_bytes", "trainable_param_bytes", "frozen_param_bytes", "total_sram_bytes",
              "flash_bytes", "breakdown"):
        assert k in m
    assert m["total_sram_bytes"] == m["arena_bytes"] + m["trainable_param_bytes"]
    # momentum state: fp32 per trained element of pw1 weights+bias... of dw2 and fc
    g = prog.graph
    n = sum(g.tensors[t].size for t in ("dw2.weight", "dw2.bias", "fc.weight", "fc.bias"))
    assert m["optimizer_state_bytes"] == 4 * n


@needs_ref
def test_reference_49kb_scheme_binding_and_memory():
    from tinytrain.frontends.reference import load_reference
    g = replace_classifier(load_reference(REF / "mcunet-5fps.json"), 10)
    s = bind_scheme(REF / "schemes" / "mcunet-5fps-49kb.json", g)
    assert s.layers["conv24"].weight and s.layers["conv24"].in_channels == 12
    assert s.layers["conv27"].in_channels == 24
    assert not s.layers["conv23"].weight          # ratio 0 = not trained
    assert [n for n, u in s.layers.items() if u.bias][0] == "conv22"
    prog = build_program(g, s)
    # no gradient below the earliest trained layer (conv22)
    assert prog.backward[-1].op == "conv22" and prog.backward[-1].grad_inputs == {}
    m = memory_report(prog)
    # the authors' generator: 47,656 B of trainable weights in SRAM for this scheme (10-class head)
    assert m["trainable_weight_bytes"] == 47656
    assert m["trainable_param_bytes"] == 47656 + m["update_state_bytes"]    # + the update mode's state
    assert abs(prog.macs()["total"] - 32.7e6) / 32.7e6 < 0.02
