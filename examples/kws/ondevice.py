"""Keyword spotting, learned on the device: a DS-CNN pretrained on six spoken keywords learns
four new ones online.

1. Make the data set (examples/kws/kws_dataset.py: espeak-ng voices + noise -> log-mel, cached).
2. Train a small depthwise-separable CNN (DS-CNN, as in "Hello Edge") on the host on
   yes/no/up/down/left/right; its head has 10 outputs, on/off/stop/go are never seen.
3. Quantize to int8, compile its training step (default: the classifier and the last
   pointwise conv, `last:2`), build firmware, boot it, measure held-out accuracy, stream the
   new keywords (with a replay of the old ones) for the device to learn from, measure again.

Run: python examples/kws/ondevice.py [--board mps2-an386] [--scheme last:2] [--out DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import kws_dataset as dataset  # noqa: E402

OLD_CLASSES = (0, 1, 2, 3, 4, 5)          # yes no up down left right
NEW_CLASSES = (6, 7, 8, 9)                # on off stop go
LEARNING_RATE = 0.005
EPOCHS = 2
REPLAY = 600
SCHEME = "last:2"


@dataclass
class Data:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_data(cfg: dataset.Config = dataset.Config()) -> Data:
    z = dataset.load(cfg)
    return Data(z["x_train"], z["y_train"], z["x_test"], z["y_test"])


def build_model():
    """DS-CNN: a strided conv, two depthwise-separable blocks, global pooling, a classifier
    (about 430 k multiply-accumulates per inference)."""
    import keras
    L = keras.layers
    inp = keras.Input((dataset.FRAMES, dataset.MELS, 1), name="logmel")
    h = L.Conv2D(24, (5, 3), strides=(2, 1), padding="same", use_bias=False, name="conv1")(inp)
    h = L.BatchNormalization(momentum=0.9, name="bn1")(h)
    h = L.ReLU(name="relu1")(h)
    for i, (stride, ch) in enumerate(((1, 32), (2, 32)), start=1):
        h = L.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"dw{i}")(h)
        h = L.BatchNormalization(momentum=0.9, name=f"dw{i}_bn")(h)
        h = L.ReLU(name=f"dw{i}_relu")(h)
        h = L.Conv2D(ch, 1, use_bias=False, name=f"pw{i}")(h)
        h = L.BatchNormalization(momentum=0.9, name=f"pw{i}_bn")(h)
        h = L.ReLU(name=f"pw{i}_relu")(h)
    # global average pooling as a full-size AveragePooling2D + Flatten (the model the
    # learning benchmark's figures in docs/training.md were measured on; GlobalAveragePooling2D
    # imports and trains as well since the MEAN fixes of issue 8)
    h = L.AveragePooling2D(pool_size=tuple(h.shape[1:3]), name="pool")(h)
    h = L.Flatten(name="flatten")(h)
    out = L.Dense(10, name="classifier")(h)
    return keras.Model(inp, out, name="kws_dscnn")


def train_host_model(data: Data, epochs: int = 40):
    """The float DS-CNN trained on the old keywords only (deterministic)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras
    keras.utils.set_random_seed(0)
    model = build_model()
    old = np.isin(data.y_train, OLD_CLASSES)
    model.compile(keras.optimizers.Adam(3e-3),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    model.fit(data.x_train[old], data.y_train[old], epochs=epochs, batch_size=32, verbose=0)
    return model


def stream(data: Data, seed: int = 0, replay: int = REPLAY) -> tuple[np.ndarray, np.ndarray]:
    """The samples the device learns from: every new-keyword training sample plus a replay."""
    rng = np.random.default_rng(seed)
    new = np.flatnonzero(np.isin(data.y_train, NEW_CLASSES))
    old = rng.permutation(np.flatnonzero(np.isin(data.y_train, OLD_CLASSES)))[:replay]
    idx = rng.permutation(np.concatenate([new, old]))
    return data.x_train[idx], data.y_train[idx]


@dataclass
class Prepared:
    data: Data
    model: object


def prepare(cfg: dataset.Config = dataset.Config(), epochs: int = 40, verbose: bool = True) -> Prepared:
    t0 = time.perf_counter()
    data = load_data(cfg)
    if verbose:
        print(f"[1/4] keyword data set: {len(data.y_train)} training and {len(data.y_test)} held-out "
              f"utterances ({time.perf_counter() - t0:.1f} s; cached in {dataset.cache_dir()})")
        print(f"      training a DS-CNN on the host on {', '.join(dataset.WORDS[c] for c in OLD_CLASSES)}")
    return Prepared(data, train_host_model(data, epochs))


def int8_graph(model, data: Data):
    from tinytrain.frontends import load_model
    return load_model(model, quantize="int8", calibration=data.x_train[:200])


def device_inputs(graph, data: Data, seed: int = 0):
    from tinytrain.hostmodel import quantize_input
    inp = graph.tensors[graph.inputs[0]]
    q = lambda x: quantize_input(x, inp.scale, inp.zero_point).reshape(len(x), -1)  # noqa: E731
    xs, ys = stream(data, seed)
    return q(data.x_test), q(xs), ys


def groups(y: np.ndarray) -> dict[str, np.ndarray]:
    return {"all": np.ones(len(y), bool), "new": np.isin(y, NEW_CLASSES), "old": np.isin(y, OLD_CLASSES)}


def run(board: str = "mps2-an386", scheme: str = SCHEME, out: Path | None = None, epochs: int = EPOCHS,
        verbose: bool = True, prepared: Prepared | None = None, update: str | None = None) -> dict:
    from tinytrain.emulator import boot
    from tinytrain.link import Link
    from tinytrain.online import evaluate, train_stream
    import tinytrain

    say = print if verbose else (lambda *a, **k: None)
    t0 = time.perf_counter()
    prepared = prepared or prepare(verbose=verbose)
    data = prepared.data
    out = Path(out or tempfile.mkdtemp(prefix="tinytrain-kws-"))
    say(f"[2/4] int8 quantization, training compiler ({scheme}), firmware for {board} -> {out}")
    graph = int8_graph(prepared.model, data)
    compiled = tinytrain.compile(graph, scheme=scheme, board=board, update=update, lr=LEARNING_RATE)
    program = compiled.program
    built = compiled.build_project(out, force=True)["build"]
    x_test, xs, ys = device_inputs(program.graph, data)
    say(f"[3/4] booting {board}")
    with boot(out) as running, Link.open(running.url) as link:
        g = groups(data.y_test)
        before = {k: evaluate(link, x_test[m], data.y_test[m]) for k, m in g.items()}
        say("      held-out accuracy before: " + ", ".join(f"{k} {v:.3f}" for k, v in before.items()))
        say(f"[4/4] streaming {len(xs)} utterances x {epochs} epochs for on-device learning")
        report = train_stream(link, xs, ys, epochs=epochs, chunk=16, shuffle_seed=None,
                              eval_every=len(xs) * epochs)
        after = {k: evaluate(link, x_test[m], data.y_test[m]) for k, m in g.items()}
        desc = link.describe()
        params = link.read_params()
    say("      held-out accuracy after:  " + ", ".join(f"{k} {v:.3f}" for k, v in after.items()))
    say(f"      {report.samples} samples at {report.samples_per_second:.1f} samples/s; arena "
        f"{desc.arena_bytes:,} B + trainable {desc.trainable_bytes:,} B; update mode {program.update}")
    return dict(board=board, scheme=scheme, update=program.update, before=before, after=after,
                trained_samples=report.samples, device_steps=report.steps, project=str(out),
                elf_sram_bytes=built.get("sram_bytes"), seconds=round(time.perf_counter() - t0, 1),
                params=params, graph=program.graph, program=program, stream=(xs, ys), epochs=epochs)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--board", default="mps2-an386")
    ap.add_argument("--scheme", default=SCHEME)
    ap.add_argument("--update", default=None, help="update mode (default: the compiler's)")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    result = run(args.board, args.scheme, args.out, args.epochs, verbose=not args.json, update=args.update)
    if args.json:
        for internal in ("params", "graph", "program", "stream"):
            result.pop(internal)
        print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
