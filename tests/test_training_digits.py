"""End to end on sklearn's digits: the host-built C trains a small int8 CNN with a sparse
scheme (a fresh classifier, the biases of the last conv, half the input channels of the
last conv), and the loss goes down and the held-out accuracy up.

Recipe: a float CNN is trained by the generated float C ("full", 8 epochs), quantized
(per-tensor activations from a calibration batch, per-channel weights), its classifier is
replaced by a fresh random one (accuracy back to chance), then the int8 C training build
of the sparse scheme is trained for two epochs, one sample at a time.
"""
import json

import numpy as np
import pytest

from tinytrain.training.head import replace_classifier

from keras_models import digits_data
from tinytrain.training.host import HostTrainer
from tinytrain.predict import predicted_class
from graphs import GraphBuilder, quantize_graph

SCHEME = {"bias_update_last_n": 1, "weight_update": [{"conv_index": 1, "input_channel_ratio": 0.5}],
          "classifier": "full"}


def digits_cnn_graph():
    b = GraphBuilder("digits_cnn", (1, 8, 8, 1), seed=0)
    b.conv("conv1", 8, act="relu")
    b.pool("pool1", "max")
    b.conv("conv2", 16, act="relu")
    b.gap_flatten()
    b.dense("fc", 10)
    return b.build("digits_cnn")


def quantize_input(g, x):
    t = g.tensors["input"]
    return np.clip(np.round(x / t.scale) + t.zero_point, -128, 127).astype(np.int8)


@pytest.fixture(scope="module")
def pretrained_int8(tmp_path_factory):
    x_train, y_train, _, _ = digits_data()
    g = digits_cnn_graph()
    with HostTrainer.build(g, "full", tmp_path_factory.mktemp("float"), lr=0.1, reorder=False) as ht:
        for epoch in range(8):          # about 94% held-out accuracy in float
            order = np.random.default_rng(epoch).permutation(len(y_train))
            ht.train_many(x_train[order], y_train[order])
        for name, v in ht.params().items():
            g.tensors[name].data = v
    gq = quantize_graph(g, x_train[:128])
    return replace_classifier(gq, 10, seed=1)


def accuracy(ht, g, x, y):
    out = ht.infer(quantize_input(g, x))
    return float((predicted_class(out) == y).mean())


def test_sparse_int8_c_training_on_digits_lowers_the_loss_and_raises_accuracy(tmp_path, pretrained_int8):
    x_train, y_train, x_test, y_test = digits_data()
    scheme = tmp_path / "scheme.json"
    scheme.write_text(json.dumps(SCHEME))
    with HostTrainer.build(pretrained_int8, str(scheme), tmp_path / "c", lr=0.05) as ht:
        g = ht.program.graph
        trained = {p.name for p in ht.compiled.emission.train.params}
        assert trained == {"conv2.weight", "conv2.bias", "fc.weight", "fc.bias"}
        acc_before = accuracy(ht, g, x_test, y_test)
        rng = np.random.default_rng(1)
        losses = []
        for _ in range(2):
            order = rng.permutation(len(y_train))
            losses += [l for l, _ in ht.train_many(quantize_input(g, x_train[order]), y_train[order])]
        acc_after = accuracy(ht, g, x_test, y_test)
    first, last = float(np.mean(losses[:200])), float(np.mean(losses[-200:]))
    print(f"digits int8 sparse C training: loss {first:.3f} -> {last:.3f}, "
          f"held-out accuracy {acc_before:.3f} -> {acc_after:.3f}")
    # measured: loss 1.38 -> 0.55, accuracy 0.12 -> 0.93
    assert acc_before < 0.3                 # a fresh classifier: about chance
    assert acc_after > 0.85
    assert last < 0.5 * first
