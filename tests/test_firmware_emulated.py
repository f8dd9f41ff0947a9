"""The emulated boards end to end: emit -> `pio run` -> boot -> talk over the port.

The shipped digits example model (examples/digits/digits_cnn.tflite, int8) is built through
PlatformIO for mps2-an386, mps3-an547 (QEMU) and native (a host process); each answers
describe, and the int8 outputs for 50 held-out digits equal the host build's
(tinytrain.hostmodel) exactly. Every emulator started here is killed
by the fixtures, also when a test fails."""
import os
import shutil
import time

import numpy as np
import pytest

from conftest import ROOT
import tinytrain
from tinytrain import emulator, project
from tinytrain.boards import load_board
from tinytrain.errors import TinyTrainError
from tinytrain.predict import predicted_class

link = pytest.importorskip("tinytrain.link", reason="the host side of the serial protocol is missing")

QEMU_BOARDS = ("mps2-an386", "mps3-an547")
BOARDS = QEMU_BOARDS + ("native",)
N_SAMPLES = 50


def _have_qemu_tools() -> bool:
    return shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None


def _skip_unless_runnable(board):
    if board in QEMU_BOARDS and not _have_qemu_tools():
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed")


EXAMPLE = ROOT / "examples" / "digits"


@pytest.fixture(scope="module")
def graph():
    from tinytrain.frontends import load_model
    return load_model(EXAMPLE / "digits_cnn.tflite")


@pytest.fixture(scope="module")
def samples(graph):
    from tinytrain.hostmodel import quantize_input
    x = np.load(EXAMPLE / "digits_test.npz")["x"][:N_SAMPLES]
    t = graph.tensors[graph.inputs[0]]
    return quantize_input(x, t.scale, t.zero_point)


@pytest.fixture(scope="module")
def host_outputs(graph, samples):
    from tinytrain.hostmodel import HostModel
    return HostModel(graph).run(samples).reshape(N_SAMPLES, -1)


@pytest.fixture(scope="module")
def built(graph, tmp_path_factory):
    """board -> (project folder, build result); built once per test module."""
    cache = {}

    def get(board):
        _skip_unless_runnable(board)
        if board not in cache:
            out = tmp_path_factory.mktemp("fw") / board
            tinytrain.compile(graph, board=board).write_project(out)
            cache[board] = (out, project.build_project(out))
        return cache[board]
    return get


@pytest.fixture
def booted(built):
    """Boot a built board; whatever happens, the emulator is gone afterwards."""
    started = []

    def start(board, **kwargs):
        out, _ = built(board)
        running = emulator.boot(out, **kwargs)
        started.append(running)
        return out, running
    yield start
    for running in started:
        running.stop()
        assert not running.alive()


@pytest.mark.parametrize("board", BOARDS)
def test_build_reports_real_memory_use_within_the_board(built, board):
    out, result = built(board)
    assert os.path.isfile(result["elf"])
    assert 0 < result["flash_bytes"] <= result["flash_limit"]
    assert 0 < result["sram_bytes"] <= result["sram_limit"]
    if board in QEMU_BOARDS:   # the stack reserve is a section of the ELF
        assert result["sections"][".stack"] >= project.STACK_RESERVE_BYTES
        assert result["sram_bytes"] >= project.STACK_RESERVE_BYTES
    assert "SRAM" in project.size_report(result)


@pytest.mark.parametrize("board", BOARDS)
def test_board_boots_and_describes_itself(booted, graph, board):
    _, running = booted(board)
    expected_url = "socket://127.0.0.1:" if board in QEMU_BOARDS else "/dev/pts/"
    assert running.url.startswith(expected_url)
    with link.Link.open(running.url) as conn:
        d = conn.describe()
    assert d.board == board
    assert d.model_hash == tinytrain.compile(graph, board=board).model_hash   # the graph it runs
    assert d.firmware_version == project.__version__
    assert d.input_size == 64 and d.output_size == 10
    assert d.sram_bytes > 0 and d.nv_bytes > 0
    assert d.work_unit == load_board(board).work_counter


def test_qemu_predictions_equal_the_host_build(booted, samples, host_outputs):
    for board in QEMU_BOARDS:
        _, running = booted(board)
        with link.Link.open(running.url) as conn:
            conn.describe()
            results = conn.infer_many(list(samples))
        running.stop()
        outputs = np.stack([r.outputs.reshape(-1) for r in results]).astype(np.int8)
        np.testing.assert_array_equal(outputs, host_outputs, err_msg=board)
        assert [r.predicted for r in results] == predicted_class(host_outputs).tolist()
        assert all(r.work > 0 for r in results)


def test_qemu_work_counts_repeat(booted, samples):
    """Under -icount the work counter counts instructions: the same input costs the same
    count, except for the SysTick wrap handler (a few instructions every 2^24 ticks, i.e.
    every ~655k instructions), which runs inside a measurement or not depending on where
    the wrap falls."""
    _, running = booted("mps2-an386")
    with link.Link.open(running.url) as conn:
        conn.describe()
        works = [r.work for r in conn.infer_many([samples[0]] * 6)]
    assert min(works) > 100_000
    handler_budget = 16 * (max(works) // 655_360 + 1)
    assert max(works) - min(works) <= handler_budget, works


def test_detached_board_is_stopped_by_stop(built):
    out, _ = built("native")
    running = emulator.boot(out, detach=True)
    try:
        assert emulator.running_url(out) == running.url
        assert emulator.stop(out) is True
        deadline = time.monotonic() + 5
        while running.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not running.alive()
        assert emulator.running_url(out) is None and emulator.stop(out) is False
    finally:
        running.stop()


def test_failed_boot_leaves_no_process(built):
    """A firmware that never becomes ready: boot times out, raises, and kills it."""
    out, _ = built("native")
    program = project.firmware_path(out)
    saved = program.read_bytes()
    try:
        program.write_text("#!/bin/sh\necho $$ > hung.pid\nexec sleep 60\n")
        with pytest.raises(TinyTrainError, match="not ready"):
            emulator.boot(out, timeout=1.5)
        pid = int((out / "hung.pid").read_text())
        assert not emulator._pid_alive(pid)
    finally:
        program.write_bytes(saved)
