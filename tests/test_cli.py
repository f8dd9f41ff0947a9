"""The command line: help everywhere, JSON figures, exit codes, atomic output folders."""
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT


def tinytrain(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tinytrain", *map(str, args)],
                          capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize("command", [[], ["build"], ["inspect"], ["run"]])
def test_help(command):
    proc = tinytrain(*command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout


def test_inspect_json_reference_model(tte_models):
    proc = tinytrain("inspect", tte_models / "mcunet-5fps.json", "--json", "--no-memory-passes")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert len(data["layers"]) == 51
    fused = json.loads(tinytrain("inspect", tte_models / "mcunet-5fps.json", "--json").stdout)
    assert any(layer["op"] == "pointwise_depthwise_conv2d" for layer in fused["layers"])
    assert fused["macs"] == data["macs"]
    assert fused["memory"]["arena_bytes"] < data["memory"]["arena_bytes"]
    assert data["macs"] == sum(layer["macs"] for layer in data["layers"]) > 10_000_000
    assert data["memory"]["arena_bytes"] > 0
    assert data["memory"]["flash_bytes"] > 600_000
    first = data["layers"][0]
    assert first["op"] == "conv2d" and first["output"] == [1, 64, 64, 16]


def test_inspect_text(tte_models):
    proc = tinytrain("inspect", tte_models / "mbv2-w0.35.json")
    assert proc.returncode == 0, proc.stderr
    assert "depthwise_conv2d" in proc.stdout and "arena_bytes" in proc.stdout


def test_build_emits_platformio_project_without_compiling(tte_models, tmp_path):
    out = tmp_path / "proxyless"
    proc = tinytrain("build", tte_models / "proxyless-w0.3.json", "--board", "native", "-o", out,
                     "--no-compile", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["memory"]["arena_bytes"] > 0 and data["board"] == "native"
    for f in ("platformio.ini", "src/model.c", "src/model.h", "src/model_data.c", "src/tt_board.h"):
        assert (out / f).is_file(), f


def test_boards_lists_the_emulated_boards():
    proc = tinytrain("boards")
    assert proc.returncode == 0, proc.stderr
    for name in ("mps2-an386", "mps3-an547", "native", "disco_f746ng"):
        assert name in proc.stdout
    data = json.loads(tinytrain("boards", "--json").stdout)
    assert {b["name"] for b in data} >= {"mps2-an386", "pico", "esp32-s3-devkitc-1"}


def test_inspect_training_memory_report(tte_models):
    proc = tinytrain("inspect", tte_models / "mcunet-5fps.json", "--train",
                     tte_models / "schemes" / "mcunet-5fps-49kb.json", "--num-classes", "10", "--json")
    assert proc.returncode == 0, proc.stderr
    mem = json.loads(proc.stdout)["memory"]
    for key in ("arena_bytes", "trainable_param_bytes", "frozen_param_bytes", "total_sram_bytes", "flash_bytes"):
        assert mem[key] > 0, key
    assert mem["total_sram_bytes"] == mem["arena_bytes"] + mem["trainable_param_bytes"]
    assert set(mem["breakdown"]) >= {"saved", "mask", "gradient"}
    # The target: MCUNet-5FPS with its 49kb scheme in at most 180 KB of SRAM.
    assert mem["total_sram_bytes"] <= 180 * 1024
    assert mem["trainable_weight_bytes"] == 47_656     # the authors' own figure for this scheme
    assert mem["trainable_param_bytes"] == 47_656 + mem["update_state_bytes"]
    off = json.loads(tinytrain("inspect", tte_models / "mcunet-5fps.json", "--train",
                               tte_models / "schemes" / "mcunet-5fps-49kb.json", "--num-classes", "10",
                               "--no-memory-passes", "--json").stdout)["memory"]
    assert off["total_sram_bytes"] > mem["total_sram_bytes"]


def test_bad_scheme_exit_2(tte_models):
    proc = tinytrain("inspect", tte_models / "mcunet-5fps.json", "--train", "last:zero")
    assert proc.returncode == 2
    assert "last:zero" in proc.stderr or "last" in proc.stderr


def _bad_reference_model(tte_models, tmp_path, mutate):
    graph = json.loads((tte_models / "mcunet-5fps.json").read_text())
    mutate(graph)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(graph))
    shutil.copy(tte_models / "mcunet-5fps.npz", tmp_path / "bad.npz")
    return path


def test_unsupported_op_exit_2_names_layer_and_leaves_nothing(tte_models, tmp_path):
    def mutate(g):
        g["layers"][5]["op"] = "lstm"
    model = _bad_reference_model(tte_models, tmp_path, mutate)
    out = tmp_path / "out"
    proc = tinytrain("build", model, "--board", "native", "-o", out)
    assert proc.returncode == 2
    assert "conv5" in proc.stderr and "lstm" in proc.stderr
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_unknown_board_exit_2(tte_models, tmp_path):
    proc = tinytrain("build", tte_models / "mcunet-5fps.json", "--board", "no-such-board", "-o", tmp_path / "o")
    assert proc.returncode == 2
    assert "native" in proc.stderr and "mps2-an386" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_missing_model_exit_2(tmp_path):
    proc = tinytrain("inspect", tmp_path / "nope.tflite")
    assert proc.returncode == 2
    assert "nope.tflite" in proc.stderr
