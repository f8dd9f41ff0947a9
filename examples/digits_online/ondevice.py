"""The main job, end to end: a device learns new classes online.

1. Train a small CNN on the host on sklearn digits 0-4 (its head has 10 outputs; 5-9
   are never seen), and quantize it to int8 (TFLite's converter, calibrated).
2. Compile its training step with a sparse update scheme (the classifier and the last
   biases) and build firmware for the board (default: mps2-an386, a Cortex-M4F under QEMU).
3. Boot it, then over the serial link: measure held-out accuracy on all ten digits,
   stream the training digits 5-9 (with a replay of 0-4 so old classes are kept) for the
   device to learn from, and measure again. Report the memory the device used.

Run: python examples/digits_online/ondevice.py [--board mps2-an386] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SCHEME = HERE / "scheme.json"
NEW_CLASSES = (5, 6, 7, 8, 9)
LEARNING_RATE = 0.005
EPOCHS = 2
REPLAY = 300      # samples of the old classes mixed into the stream


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_data() -> Data:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[..., None]
    xtr, xte, ytr, yte = train_test_split(x, digits.target, test_size=0.3, random_state=0,
                                          stratify=digits.target)
    return Data(xtr, ytr.astype(np.int64), xte, yte.astype(np.int64))


def train_host_model(data: Data):
    """Float CNN trained on the old classes only (deterministic). TensorFlow's own output
    (C++ logs, notices) is kept off the terminal."""
    from tinytrain.frontends.tf_quiet import quiet_tensorflow
    with quiet_tensorflow():
        return _train_host_model(data)


def _train_host_model(data: Data):
    import keras
    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 1), name="image")
    h = keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1")(inp)
    h = keras.layers.DepthwiseConv2D(3, padding="same", activation="relu", name="dw2")(h)
    h = keras.layers.Conv2D(32, 1, activation="relu", name="pw3")(h)
    h = keras.layers.MaxPooling2D(2, name="pool")(h)
    h = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv4")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    out = keras.layers.Dense(10, name="classifier")(h)
    model = keras.Model(inp, out, name="digits_online")
    old = data.y_train < NEW_CLASSES[0]
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(data.x_train[old], data.y_train[old], epochs=30, batch_size=32, verbose=0)
    return model


def stream(data: Data, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The samples the device learns from: all new-class training digits plus a replay."""
    rng = np.random.default_rng(seed)
    new = np.flatnonzero(data.y_train >= NEW_CLASSES[0])
    old = rng.permutation(np.flatnonzero(data.y_train < NEW_CLASSES[0]))[:REPLAY]
    idx = rng.permutation(np.concatenate([new, old]))
    return data.x_train[idx], data.y_train[idx]


def compile_training(model, data: Data, out: Path, board: str, lr: float = LEARNING_RATE):
    """int8 model -> training step -> firmware project (built), exactly as `tinytrain build
    --train` does. Returns (the tinytrain.compile result, build info)."""
    import tinytrain
    from tinytrain.frontends import load_model
    from tinytrain.frontends.keras import keras_to_int8_tflite
    tflite = keras_to_int8_tflite(model, data.x_train[:200])
    graph = load_model(tflite)
    graph.name = model.name
    compiled = tinytrain.compile(graph, scheme=str(SCHEME), board=board, lr=lr)
    return compiled, compiled.build_project(out, force=True)["build"]


def accuracy_by_group(link, x_q: np.ndarray, y: np.ndarray) -> dict:
    from tinytrain.online import evaluate
    new = y >= NEW_CLASSES[0]
    return dict(all=evaluate(link, x_q, y), new=evaluate(link, x_q[new], y[new]),
                old=evaluate(link, x_q[~new], y[~new]))


@dataclass
class Prepared:
    data: Data
    model: object           # the float Keras model trained on the old classes


def prepare(verbose: bool = True) -> Prepared:
    data = load_data()
    if verbose:
        print(f"[1/4] training a CNN on the host on digits 0-4 ({int(np.sum(data.y_train < 5))} samples)")
    return Prepared(data, train_host_model(data))


def device_inputs(graph, data: Data):
    """Held-out and stream samples, quantized on the host with the model's input quantization."""
    from tinytrain.hostmodel import quantize_input
    inp = graph.tensors[graph.inputs[0]]
    q = lambda x: quantize_input(x, inp.scale, inp.zero_point).reshape(len(x), -1)  # noqa: E731
    xs, ys = stream(data)
    return q(data.x_test), q(xs), ys


def run(board: str = "mps2-an386", out: Path | None = None, epochs: int = EPOCHS, verbose: bool = True,
        prepared: Prepared | None = None) -> dict:
    from tinytrain.emulator import boot
    from tinytrain.link import Link, dropped_frames
    from tinytrain.online import train_stream

    say = print if verbose else (lambda *a, **k: None)
    t0 = time.perf_counter()
    prepared = prepared or prepare(verbose)
    data, model = prepared.data, prepared.model
    out = Path(out or tempfile.mkdtemp(prefix="tinytrain-digits-online-"))
    say(f"[2/4] int8 quantization, training compiler ({SCHEME.name}), firmware for {board} -> {out}")
    compiled, built = compile_training(model, data, out, board)
    graph, program = compiled.graph, compiled.program
    x_test, xs, ys = device_inputs(graph, data)
    say(f"[3/4] booting {board}")
    with boot(out) as running, Link.open(running.url) as link:
        desc = link.describe()
        say(f"      {desc.model_name} on {desc.board}: port {running.url}, model {desc.model_hash}")
        before = accuracy_by_group(link, x_test, data.y_test)
        say(f"      held-out accuracy before: all {before['all']:.3f}, new classes {before['new']:.3f}, "
            f"old classes {before['old']:.3f}")
        say(f"[4/4] streaming {len(xs)} samples x {epochs} epochs for on-device learning")
        report = train_stream(link, xs, ys, epochs=epochs, shuffle_seed=None,
                              eval_every=len(xs) * epochs)
        after = accuracy_by_group(link, x_test, data.y_test)
        counters = link.device_counters()
        params = link.read_params()
    result = dict(
        board=board, project=str(out), scheme=SCHEME.name,
        before=before, after=after,
        trained_samples=report.samples, device_steps=report.steps,
        samples_per_second=round(report.samples_per_second, 1),
        memory=dict(arena_bytes=desc.arena_bytes, trainable_bytes=desc.trainable_bytes,
                    elf_sram_bytes=built.get("sram_bytes"), elf_flash_bytes=built.get("flash_bytes"),
                    board_sram_bytes=built.get("sram_limit"), board_flash_bytes=built.get("flash_limit"),
                    planned={k: v for k, v in compiled.memory.items() if isinstance(v, int)}),
        link=dict(frames_ok=counters["frames_ok"], bad_frames=dropped_frames(counters)),
        seconds=round(time.perf_counter() - t0, 1),
        params=params, graph=graph, program=program, compiled=compiled, stream=(xs, ys), epochs=epochs,
    )
    say(f"      held-out accuracy after:  all {after['all']:.3f}, new classes {after['new']:.3f}, "
        f"old classes {after['old']:.3f}")
    say(f"      {report.samples} samples trained on the device at {report.samples_per_second:.1f} samples/s")
    m = result["memory"]
    say(f"memory used on the device: arena {m['arena_bytes']:,} B + trainable parameters {m['trainable_bytes']:,} B; "
        f"firmware SRAM {m['elf_sram_bytes']:,} of {m['board_sram_bytes']:,} B, "
        f"flash {m['elf_flash_bytes']:,} of {m['board_flash_bytes']:,} B")
    say(f"done in {result['seconds']} s")
    return result


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", default="mps2-an386")
    ap.add_argument("--out", type=Path, default=None, help="Firmware project folder (default: a temp folder).")
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--json", action="store_true", help="Print the result as JSON.")
    args = ap.parse_args(argv)
    result = run(args.board, args.out, args.epochs, verbose=not args.json)
    if args.json:
        for internal in ("params", "graph", "program", "compiled", "stream"):
            result.pop(internal)
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
