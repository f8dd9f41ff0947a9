"""Device equals host build bit for bit after a whole run, with every update mode, on the
emulated Cortex-M4F (newlib) and the native board: the digits CNN, `last:2` with momentum,
200 samples streamed over the serial link. The losses of every step are compared too: they
go through tt_expf / tt_logf, which replaced the C libraries' expf / logf (their newlib and
glibc versions differ, which made an fp32 shadow drift)."""
import shutil

import numpy as np
import pytest

from conftest import ROOT
import tinytrain
from tinytrain import emulator, project
from tinytrain.frontends import load_model
from tinytrain.hostmodel import quantize_input
from tinytrain.link import Link
from tinytrain.training import qas

DIGITS = ROOT / "examples" / "digits"
LR, MU, N = 0.01, 0.5, 120


def _skip_unless_runnable(board):
    if board != "native" and (shutil.which("qemu-system-arm") is None or shutil.which("arm-none-eabi-gcc") is None):
        pytest.skip("qemu-system-arm / arm-none-eabi-gcc not installed")


@pytest.fixture(scope="module")
def digits():
    graph = load_model(DIGITS / "digits_cnn.tflite")
    z = np.load(DIGITS / "digits_test.npz")
    t = graph.tensors[graph.inputs[0]]
    x = quantize_input(z["x"][:N], t.scale, t.zero_point).reshape(N, -1)
    return graph, x, z["y"][:N]


def build_device(graph, mode, board, out):
    compiled = tinytrain.compile(graph, scheme="last:2", board=board, update=mode, momentum=True, lr=LR,
                                 momentum_value=MU)
    compiled.build_project(out)
    return compiled


@pytest.mark.parametrize("board", ["mps2-an386", "native"])
@pytest.mark.parametrize("mode", list(qas.UPDATE_MODES))
def test_device_equals_host_after_a_run(digits, board, mode, tmp_path):
    _skip_unless_runnable(board)
    graph, x, y = digits
    compiled = build_device(graph, mode, board, tmp_path / "fw")
    with emulator.boot(tmp_path / "fw") as running, Link.open(running.url, timeout=10.0) as link:
        d = link.describe()
        results = link.train_many(x, y)
        device = link.read_params()
    # DESCRIBE reports the update and everything it keeps, as the compiler counted it
    m = compiled.memory
    assert (d.update_mode, d.lr, d.momentum) == (mode, np.float32(LR), np.float32(MU))
    assert (d.update_extra_bytes, d.momentum_bytes, d.trainable_bytes) == (
        m["update_state_bytes"], m["momentum_bytes"], m["trainable_param_bytes"])
    assert d.param_bytes + d.momentum_bytes + d.update_extra_bytes == d.trainable_bytes
    with compiled.host_trainer(tmp_path / "host") as host:      # the same compiled C, on the host
        host_results = host.train_many(x.reshape((N,) + graph.tensors[graph.inputs[0]].shape[1:]), y)
        want = host.params()
    dev_loss = np.array([r.loss for r in results], np.float32)
    host_loss = np.array([l for l, _ in host_results], np.float32)
    np.testing.assert_array_equal(dev_loss.view(np.uint32), host_loss.view(np.uint32))
    assert [r.predicted for r in results] == [p for _, p in host_results]
    for name, value in want.items():
        np.testing.assert_array_equal(device[name].reshape(value.shape), value, err_msg=name)
    initial = {t.name: t.data for t in compiled.graph.constants()}
    assert all(not np.array_equal(initial[n], v) for n, v in want.items()), "every trained tensor moved"


def _host_after(compiled, graph, start, x, y, tmp_path):
    """The host build's parameters after training x, y from the parameters `start` with a
    fresh optimizer (no momentum, no residual)."""
    with compiled.host_trainer(tmp_path / "host") as host:
        host.set_params({n: v.reshape(graph.tensors[n].shape) for n, v in start.items()})
        host.train_many(x.reshape((len(x),) + graph.tensors[graph.inputs[0]].shape[1:]), y)
        return host.params()


@pytest.mark.parametrize("how", ["push", "load"])
@pytest.mark.parametrize("mode", ["residual", "stochastic"])
def test_native_new_weights_leave_no_update_state_of_the_old_weights(digits, tmp_path, how, mode):
    """After a committed WEIGHTS_WRITE transaction, and after WEIGHTS_LOAD, the next steps
    equal the host build started from exactly the new weights with the compiled seed: the
    momentum and residuals the old weights built up are gone (residual mode with momentum
    keeps both), and the stochastic rounding's PRNG starts again at its seed (a fresh host
    build's)."""
    graph, x, y = digits
    compiled = build_device(graph, mode, "native", tmp_path / "fw")
    with emulator.boot(tmp_path / "fw") as running, Link.open(running.url, timeout=10.0) as link:
        new = link.read_params()
        if how == "load":
            link.save_weights()
        link.train_many(x[:100], y[:100])
        if how == "push":
            link.write_params(new)
        else:
            link.load_weights()
        link.train_many(x[100:110], y[100:110])
        device = link.read_params()
    want = _host_after(compiled, graph, new, x[100:110], y[100:110], tmp_path)
    for name, value in want.items():
        np.testing.assert_array_equal(device[name].reshape(value.shape), value, err_msg=name)
