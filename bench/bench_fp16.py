"""FP16 training against FP32 (issue 13's targets): instructions counted under QEMU on the
emulated Cortex-M55 (mps3-an547, -icount shift=10 + SysTick), memory from the plans, learning
from the digits on-device transfer task.

1. One Conv2D training step (forward + grad input + grad weight + update), 16x16x32 -> 3x3 ->
   32, SAME: the Helium FP16 kernels (_f16_mve) against the Helium FP32 kernels (the same loop
   structure with 4 float lanes, conv2d_f32_mve.c) and the scalar FP32 reference kernels; the
   portable FP16 kernels (FP16 storage computed in FP32) beside them. The Helium FP16 outputs
   are checked against their numpy model byte for byte in the same run.
2. A whole training step on the device (firmware over the serial link): the float digits CNN and
   a DS-CNN-style keyword-spotting net of our own (49x10 MFCC-like input), FP32 and FP16, each
   with the kernels its build selects.
3. Training memory (arena + trainable + optimizer state), FP16 / mixed against FP32.
4. Learning: the digits transfer (examples/digits_online: pretrained on 0-4, learns 5-9 with a
   replay), `last:2`, held-out accuracy in FP32, FP16 and mixed precision on the same streams
   (the host build of each step: the portable kernels, bit for bit the Cortex-M4F's), and FP16
   with the Helium kernels (the numpy model of the Cortex-M55's step, one stream).

With --breakdown: the instructions of one training step per kernel and phase, FP32 against
FP16, from QEMU's execution log (bench/qemu_profile.py).

    python bench/bench_fp16.py [--skip-device] [--skip-learning] [--streams 3] [--breakdown]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from tinytrain.report import format_table  # noqa: E402
from tinytrain.predict import predicted_class  # noqa: E402

BOARD = "mps3-an547"


def kernel_table() -> str:
    import f16_cases
    from kernel_harness import run_cases
    cases = f16_cases.conv_cases(16, 16, 32, 32, k=3, stride=1, pad=1, seed=0, f32=True)
    res = {r.name: r for r in run_cases(BOARD, cases, kernels=f16_cases.kernels())}
    name = "conv 16x16x32->3x3->32 s1 p1 d1"
    parts = [("forward", "forward"), ("grad input", "grad input"), ("grad weight + update", "grad weight + update")]
    rows, tot = [], np.zeros(4, np.int64)
    for label, key in parts:
        h, f = res[f"{name} {key}"], res[f"{name} {key} f32"]
        assert h.ref_expected, f"{key}: the Helium FP16 output differs from its numpy model"
        v = np.array([f.ref_instr, f.var_instr or 0, h.var_instr, h.ref_instr])
        tot += v
        rows.append([label, *[f"{int(n):,}" for n in v], f"{v[1] / v[3]:.2f}x", f"{v[0] / v[3]:.2f}x"])
    rows.append(["training step", *[f"{int(n):,}" for n in tot], f"**{tot[1] / tot[3]:.2f}x**",
                 f"**{tot[0] / tot[3]:.2f}x**"])
    rows.append(["target", "", "", "", "", ">= 1.8x", ">= 5x"])
    macs = 16 * 16 * 32 * 9 * 32
    head = ["Conv2D 16x16x32 -> 3x3 -> 32", "FP32 scalar", "FP32 Helium", "FP16 portable", "FP16 Helium",
            "FP16 Helium vs FP32 Helium", "vs FP32 scalar"]
    return (f"One Conv2D training step on {BOARD} (instructions; {macs:,} MACs per part)\n"
            + format_table(head, rows))


def ds_cnn(seed=0):
    """A DS-CNN-style keyword spotter (float): conv 3x3 stride 2, two depthwise-separable
    blocks, max pool, classifier; input 49 frames x 10 coefficients."""
    from graphs import GraphBuilder
    b = GraphBuilder("ds_cnn", (1, 49, 10, 1), seed)
    b.conv("conv1", 32, k=3, stride=2, act="relu")
    b.conv("dw1", 0, depthwise=True, act="relu")
    b.conv("pw1", 32, k=1, pad=0, act="relu")
    b.conv("dw2", 0, depthwise=True, act="relu")
    b.conv("pw2", 32, k=1, pad=0, act="relu")
    b.pool("pool", "max", k=5, stride=5)
    t = b.tensors[b.last]
    b.unary("flatten", "reshape", (1, t.size))
    b.dense("fc", 10)
    return b.build("ds_cnn")


def models():
    from tinytrain.frontends import load_model
    return {"digits (float)": load_model(ROOT / "examples" / "digits" / "digits_cnn.keras"), "DS-CNN (ours)": ds_cnn()}


def device_step_work(graph, precision: str, tmp: Path, n: int = 4) -> int:
    """Median device work units (instructions) of one training step, over n samples."""
    import tinytrain
    from tinytrain import emulator
    from tinytrain.link import Link
    c = tinytrain.compile(graph, scheme="full", board=BOARD, precision=precision, lr=0.01)
    c.build_project(tmp)
    shape = graph.tensors[graph.inputs[0]].shape
    x = np.random.default_rng(0).random((n,) + shape[1:], dtype=np.float32).reshape(n, -1)
    with emulator.boot(tmp) as running, Link.open(running.url, timeout=30.0) as link:
        res = link.train_many(x, [i % 10 for i in range(n)])
    return int(np.median([r.work for r in res]))


def step_table(tmp: Path) -> str:
    rows = []
    for label, g in models().items():
        w32 = device_step_work(g, "fp32", tmp / f"{label[:6]}-fp32")
        w16 = device_step_work(g, "fp16", tmp / f"{label[:6]}-fp16")
        rows.append([label, f"{w32:,}", f"{w16:,}", f"**{w32 / w16:.2f}x**", ">= 1.7x"])
    return (f"A whole training step (scheme full) on {BOARD}, instructions per step (firmware over the link)\n"
            + format_table(["model", "FP32", "FP16", "FP32 / FP16", "target"], rows))


PHASES = (("grad weight + update", ("update_weight", "gw_block", "grad_weight")),
          ("grad input", ("grad_input", "gi_pixel")),
          ("relu masks (forward) and their use", ("mask_",)),
          ("bias update", ("bias_update",)),
          ("max pool", ("max_pool",)),
          ("loss, casts", ("softmax", "cast_")),
          ("memset / memcpy", ("memset", "memcpy")),
          ("forward (conv2d, depthwise, fully connected)", ("conv2d", "fully_connected")))


def phase_of(symbol: str) -> str | None:
    for label, keys in PHASES:
        if any(k in symbol for k in keys):
            return label
    return None


def step_profile(graph, precision: str, tmp: Path, n: int = 2) -> dict[str, int]:
    """{function: instructions per training step} of the firmware's kernels (QEMU's log)."""
    import qemu_profile
    import tinytrain
    from tinytrain import emulator
    from tinytrain.link import Link
    c = tinytrain.compile(graph, scheme="full", board=BOARD, precision=precision, lr=0.01)
    c.build_project(tmp)
    shape = graph.tensors[graph.inputs[0]].shape
    x = np.random.default_rng(0).random((n,) + shape[1:], dtype=np.float32).reshape(n, -1)
    log = tmp / "qemu-exec.log"
    with qemu_profile.logging_qemu(log):
        with emulator.boot(tmp, timeout=60.0) as running, Link.open(running.url, timeout=120.0) as link:
            link.train_many(x, [i % 10 for i in range(n)])
    prof = qemu_profile.per_function(log)
    log.unlink()
    return {k: v // n for k, v in prof.items() if phase_of(k)}


def breakdown_tables(tmp: Path) -> str:
    out = []
    for label, g in models().items():
        p32 = step_profile(g, "fp32", tmp / f"{label[:6]}-prof32")
        p16 = step_profile(g, "fp16", tmp / f"{label[:6]}-prof16")
        rows, t32, t16 = [], 0, 0
        for phase, _ in PHASES:
            a = sum(v for k, v in p32.items() if phase_of(k) == phase)
            b = sum(v for k, v in p16.items() if phase_of(k) == phase)
            t32, t16 = t32 + a, t16 + b
            rows.append([phase, f"{a:,}", f"{b:,}", f"{a / b:.2f}x" if b else ""])
        rows.append(["kernels in all", f"{t32:,}", f"{t16:,}", f"**{t32 / t16:.2f}x**"])
        out.append(f"{label}: one training step by phase on {BOARD} (instructions, QEMU's execution log)\n"
                   + format_table(["phase", "FP32", "FP16", "FP32 / FP16"], rows))
        funcs = sorted(set(p32) | set(p16), key=lambda k: -(p32.get(k, 0) + p16.get(k, 0)))
        out.append(f"{label}: by function\n" + format_table(
            ["function", "phase", "FP32", "FP16"],
            [[k, phase_of(k), f"{p32[k]:,}" if k in p32 else "", f"{p16[k]:,}" if k in p16 else ""] for k in funcs]))
    return "\n\n".join(out)


def memory_table() -> str:
    import tinytrain
    rows = []
    for label, g in models().items():
        for scheme in ("full", "last:2"):
            mem = {p: tinytrain.compile(g, scheme=scheme, precision=p, board=BOARD).memory
                   for p in ("fp32", "fp16", "mixed")}
            tot = {p: m["arena_bytes"] + m["trainable_param_bytes"] for p, m in mem.items()}
            rows.append([label, scheme, f"{tot['fp32']:,}", f"{tot['fp16']:,}", f"**{tot['fp16'] / tot['fp32']:.2f}**",
                         f"{tot['mixed']:,}", f"{tot['mixed'] / tot['fp32']:.2f}", "<= 0.55"])
    head = ["model", "scheme", "FP32 bytes", "FP16 bytes", "FP16 / FP32", "mixed bytes", "mixed / FP32", "target"]
    return "Training memory: arena + trainable parameters + optimizer state\n" + format_table(head, rows)


def learning_table(tmp: Path, streams: int) -> str:
    import bench_learning as bl
    from tinytrain.frontends.keras import keras_to_float_graph
    import tinytrain
    task = bl.Task("digits")
    fgraph = keras_to_float_graph(task.model)
    g = task.groups(task.data.y_test)
    ss = [task.mod.stream(task.data, seed) for seed in range(streams)]
    rows = []
    first = None
    for label, prec in (("FP32", "fp32"), ("FP16 (portable kernels)", "fp16"), ("mixed (portable kernels)", "mixed")):
        pred, mem, _ = bl.train_host(fgraph, "last:2", ss, task.data.x_test, task.lr, task.epochs,
                                     tmp / f"learn-{prec}", precision=prec)
        acc = bl.accuracies(pred, task.data.y_test, g)
        rows.append([label, streams, f"{acc['all']:.3f}", f"{acc['new']:.3f}", f"{acc['old']:.3f}", acc])
        if first is None:
            first = bl.accuracies(pred[:1], task.data.y_test, g)      # FP32 on the first stream
    # the Cortex-M55's FP16 step (Helium kernels), in its numpy model: one stream
    c = tinytrain.compile(fgraph, scheme="last:2", board=BOARD, precision="fp16", lr=task.lr)
    sim = c.simulator()
    shape = fgraph.tensors[fgraph.inputs[0]].shape
    xs, ys = ss[0]
    for _ in range(task.epochs):
        for x, y in zip(xs, ys):
            sim.step(x.reshape(shape), int(y))
    preds = predicted_class(np.array([sim.infer(x.reshape(shape)).reshape(-1) for x in task.data.x_test]))
    acc = bl.accuracies([preds], task.data.y_test, g)
    rows.append(["FP32, first stream only", 1, f"{first['all']:.3f}", f"{first['new']:.3f}", f"{first['old']:.3f}",
                 first])
    rows.append(["FP16 (Helium kernels, M55 model)", 1, f"{acc['all']:.3f}", f"{acc['new']:.3f}", f"{acc['old']:.3f}", acc])
    ref = rows[0][-1]
    out = []
    for r in rows:
        a, base = r[-1], (first if r[1] == 1 else ref)        # one stream against FP32 on that stream
        out.append(r[:-1] + [f"{100 * (a['all'] - base['all']):+.1f}"])
    head = ["precision", "streams", "all", "new", "old", "all - FP32 on the same streams (points)"]
    return ("Learning: digits transfer (new classes 5-9), `last:2`, held-out accuracy (mean over streams; "
            f"FP32's spread over its streams: {100 * ref['all_spread']:.1f} points; target: within 1 point)\n"
            + format_table(head, out))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--skip-device", action="store_true", help="skip the whole-step firmware runs")
    ap.add_argument("--skip-learning", action="store_true")
    ap.add_argument("--streams", type=int, default=3)
    ap.add_argument("--breakdown", action="store_true", help="only the per-kernel breakdown of a training step")
    args = ap.parse_args(argv)
    t0 = time.time()
    if args.breakdown:
        with tempfile.TemporaryDirectory(prefix="bench-fp16-") as tmp:
            print(breakdown_tables(Path(tmp)))
        return 0
    print(kernel_table(), "\n")
    print(memory_table(), "\n")
    with tempfile.TemporaryDirectory(prefix="bench-fp16-") as tmp:
        if not args.skip_device:
            print(step_table(Path(tmp)), "\n")
        if not args.skip_learning:
            print(learning_table(Path(tmp), args.streams), "\n")
    print(f"({time.time() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
