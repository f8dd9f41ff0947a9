"""tinytrain.evaluate: groups of classes, per-class accuracy, the confusion matrix (text,
PNG), and `tinytrain evaluate MODEL` on the host build."""
import json

import numpy as np
import pytest

from cli_run import tinytrain_in_process
from conftest import ROOT
from tinytrain.errors import TinyTrainError
from tinytrain.evaluate import format_summary, group_line, parse_groups, summarize, write_confusion_png

DIGITS = ROOT / "examples" / "digits"


def test_groups_are_ranges_and_lists_of_classes():
    assert parse_groups("old=0-4,new=5-9", 10) == {"old": [0, 1, 2, 3, 4], "new": [5, 6, 7, 8, 9]}
    assert parse_groups(" odd = 1+3+5-7 , two=2", 10) == {"odd": [1, 3, 5, 6, 7], "two": [2]}
    assert parse_groups(None, 10) == {} and parse_groups("", 10) == {}


@pytest.mark.parametrize("spec, message", [
    ("old=0-4,new=5-10", "class 10 is outside the model's 10 classes"),
    ("old", "expected NAME=CLASSES"),
    ("old=", "expected NAME=CLASSES"),
    ("a=1,a=2", "named twice"),
    ("a=x-3", "'x-3' is not a class"),
    ("a=5-2", "empty range"),
])
def test_bad_groups_are_named(spec, message):
    with pytest.raises(TinyTrainError, match=message):
        parse_groups(spec, 10)


def test_summary_counts_every_sample_once():
    y = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3])
    p = np.array([0, 0, 1, 1, 0, 2, 2, 2, 3, 3])
    s = summarize(y, p, num_classes=5, groups=parse_groups("a=0-1,b=2+3,empty=4", 5))
    assert (s["samples"], s["correct"], s["accuracy"]) == (10, 7, 0.7)
    assert s["confusion"][0] == [2, 1, 0, 0, 0] and s["confusion"][2] == [0, 0, 3, 1, 0]
    assert np.sum(s["confusion"]) == 10 and np.trace(s["confusion"]) == 7
    assert [(r["cls"], r["samples"], r["correct"]) for r in s["per_class"]] == \
        [(0, 3, 2), (1, 2, 1), (2, 4, 3), (3, 1, 1), (4, 0, 0)]
    assert s["per_class"][4]["accuracy"] is None
    assert s["groups"]["a"] == dict(classes=[0, 1], samples=5, correct=3, accuracy=0.6)
    assert s["groups"]["b"]["accuracy"] == 0.8 and s["groups"]["empty"]["accuracy"] is None
    assert group_line(s) == "all 0.700, a 0.600, b 0.800, empty   -  "
    text = format_summary(s)
    assert "accuracy 0.700  (7/10 samples)" in text and "a      0.600  (3/5, classes 0-1)" in text
    assert "b      0.800  (4/5, classes 2-3)" in text
    rows = text.split("confusion matrix (rows: true class, columns: predicted):\n")[1].splitlines()
    assert rows[0].split() == ["0", "1", "2", "3", "4"]
    assert rows[3].split() == ["2", "0", "0", "3", "1", "0"]


def test_confusion_png(tmp_path):
    s = summarize([0, 1, 1, 2], [0, 1, 2, 2], 3)
    write_confusion_png(s, tmp_path / "c.png", title="t")
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(tmp_path.glob("*.tmp*"))


def test_evaluate_a_model_on_the_host_build(tmp_path):
    data = DIGITS / "digits_test.npz"
    proc = tinytrain_in_process("evaluate", DIGITS / "digits_cnn.tflite", "--data", data,
                                "--groups", "old=0-4,new=5-9", "--json", "--plot", tmp_path / "cm.png")
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    run = json.loads(tinytrain_in_process("run", DIGITS / "digits_cnn.tflite", "--data", data, "--json").stdout)
    y = np.load(data)["y"]
    pred = np.array(run["predictions"])
    assert r["board"] == "host" and r["samples"] == len(y) and r["accuracy"] == run["accuracy"]
    assert r["confusion"] == summarize(y, pred, 10)["confusion"]
    old = y < 5
    assert r["groups"]["old"]["accuracy"] == pytest.approx(np.mean(pred[old] == y[old]))
    assert r["groups"]["new"]["samples"] == int(np.sum(~old))
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
    text = tinytrain_in_process("evaluate", DIGITS / "digits_cnn.tflite", "--data", data).stdout
    assert "per class:" in text and "confusion matrix" in text


@pytest.mark.parametrize("args, message", [
    ((), "either --port URL"),
    (("MODEL", "--port", "socket://127.0.0.1:9"), "not both"),
    (("MODEL", "--groups", "new=5-12"), "class 10 is outside"),
    (("MODEL", "--weights", DIGITS / "digits_test.npz"), "--weights FILE and --train SCHEME go together"),
    (("--port", "socket://127.0.0.1:9", "--train", "last:1"), "go with MODEL, not --port"),
    (("MODEL", "--train", "last:2", "--weights", DIGITS / "digits_test.npz"), "not a tinytrain weights file"),
])
def test_evaluate_errors(args, message):
    args = [DIGITS / "digits_cnn.tflite" if a == "MODEL" else a for a in args]
    proc = tinytrain_in_process("evaluate", *args, "--data", DIGITS / "digits_test.npz")
    assert proc.returncode == 2 and message in proc.stderr
