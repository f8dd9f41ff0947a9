"""Instructions of one float32 training step on the host (gcc -O2, x86-64), counted with
valgrind's callgrind, beside issue 12's figures before and its targets.

Two models, full update (SGD), batch 1, softmax cross-entropy: an MLP 64-32(ReLU)-10, and a
CNN 28x28x1 -> conv 8 3x3 valid + ReLU -> max pool 2 -> dense 10. Each is compiled as the
library does (tinytrain.compile(..., scheme="full")), built for the host with the training
main (firmware/host/tt_train_main.c) and run for STEPS steps under
`valgrind --tool=callgrind --toggle-collect=tt_model_train_step`: the instructions inside
the step function (everything it calls included), divided by STEPS.
Run: python bench/bench_host_float.py
"""
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import tinytrain  # noqa: E402
from tinytrain.hostbuild import compile_host  # noqa: E402
from tinytrain.ir import Graph, Op, Tensor  # noqa: E402
from tinytrain.report import format_table  # noqa: E402
from tinytrain.resources import firmware_dir  # noqa: E402

STEPS = 10
BEFORE = {"MLP 64-32-10": 65_858, "CNN 28x28, conv 8 3x3": 3_297_524}
TARGET = {"MLP 64-32-10": 32_000, "CNN 28x28, conv 8 3x3": 1_250_000}
F32 = np.float32


def _param(rng, tensors, name, shape, fan_in):
    tensors[name] = Tensor(name, shape, "float32", data=(rng.standard_normal(shape) / np.sqrt(fan_in)).astype(F32))
    return name


def mlp() -> Graph:
    rng, t = np.random.default_rng(0), {"x": Tensor("x", (1, 64), "float32")}
    t["h"], t["y"] = Tensor("h", (1, 32), "float32"), Tensor("y", (1, 10), "float32")
    ops = [Op("fc1", "fully_connected", ["x", _param(rng, t, "w1", (32, 64), 64), _param(rng, t, "b1", (32,), 64)],
              ["h"], {"activation": "relu"}),
           Op("fc2", "fully_connected", ["h", _param(rng, t, "w2", (10, 32), 32), _param(rng, t, "b2", (10,), 32)],
              ["y"], {"activation": "none"})]
    return Graph("mlp", t, ops, ["x"], ["y"]).validate()


def cnn() -> Graph:
    rng, t = np.random.default_rng(0), {"x": Tensor("x", (1, 28, 28, 1), "float32")}
    for name, shape in (("c", (1, 26, 26, 8)), ("p", (1, 13, 13, 8)), ("f", (1, 1352)), ("y", (1, 10))):
        t[name] = Tensor(name, shape, "float32")
    ops = [Op("conv", "conv2d", ["x", _param(rng, t, "wc", (8, 3, 3, 1), 9), _param(rng, t, "bc", (8,), 9)], ["c"],
              {"stride": (1, 1), "pad": (0, 0, 0, 0), "dilation": (1, 1), "activation": "relu"}),
           Op("pool", "max_pool2d", ["c"], ["p"], {"kernel": (2, 2), "stride": (2, 2), "pad": (0, 0, 0, 0),
                                                     "activation": "none"}),
           Op("flat", "reshape", ["p"], ["f"], {}),
           Op("fc", "fully_connected", ["f", _param(rng, t, "wf", (10, 1352), 1352), _param(rng, t, "bf", (10,), 1352)],
              ["y"], {"activation": "none"})]
    return Graph("cnn", t, ops, ["x"], ["y"]).validate()


def step_instructions(graph: Graph, steps: int = STEPS) -> float:
    m = tinytrain.compile(graph, scheme="full", board="native", reorder=False, lr=0.01)
    rng = np.random.default_rng(1)
    size = graph.tensors[graph.inputs[0]].size
    stdin = b"".join(b"T" + struct.pack("<i", i % 10) + rng.standard_normal(size).astype(F32).tobytes()
                     for i in range(steps)) + b"Q"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        m.write_c(tmp / "model")
        exe = compile_host(tmp / "model", firmware_dir() / "host" / "tt_train_main.c", kernels=m.kernel_files())
        out = tmp / "callgrind.out"
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                        "--toggle-collect=tt_model_train_step", str(exe)],
                       input=stdin, capture_output=True, check=True)
        total = next(line for line in out.read_text().splitlines() if line.startswith("totals:"))
    return int(total.split()[1]) / steps


def main():
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed (apt-get install valgrind)")
    rows = []
    for name, graph in (("MLP 64-32-10", mlp()), ("CNN 28x28, conv 8 3x3", cnn())):
        instr = step_instructions(graph)
        rows.append([name, f"{instr:,.0f}", f"{BEFORE[name]:,}", f"<= {TARGET[name]:,}"])
    print(f"float32 training step, full update, batch 1, gcc -O2 x86-64; callgrind, tt_model_train_step "
          f"inclusive, mean of {STEPS} steps")
    print(format_table(["model", "instructions / step", "before (issue 12)", "target"], rows))


if __name__ == "__main__":
    main()
