"""The table of supported ops, generated from the registry (docs/ops.md is this, checked by
a test): python -m tinytrain.ops.catalog > docs/ops.md"""
from __future__ import annotations

from . import units
from .base import OpUnit


def trains(u: OpUnit) -> bool:
    """The op may sit in a trained part of a graph: it has its own VJP and C backward."""
    return (not u.frozen_only and type(u).vjp is not OpUnit.vjp
            and type(u).emit_backward is not OpUnit.emit_backward)


def markdown() -> str:
    rows = ["# Supported ops",
            "",
            "Generated from the op registry (`tinytrain/ops/`, `python -m tinytrain.ops.catalog`); a test",
            "checks this file is current. *int8*: bit-exact with LiteRT's reference kernels. *train*: the",
            "op has a VJP and a C backward, so it may sit in the trained part of a graph (weighted ops",
            "also train their parameters). Imported from TFLite operators and Keras layers/activations",
            "as listed; an op that is not here is refused with the layer's name (exit 2). *float16*:",
            "the op compiles in a half-precision build (`--precision fp16|mixed`, docs/training.md).",
            "",
            "| op | what | int8 | float32 | float16 | train | TFLite | Keras |",
            "|---|---|---|---|---|---|---|---|"]
    yes = {True: "yes", False: "-"}
    for u in sorted(units(), key=lambda u: u.type):
        train = "weights + input" if u.weighted and trains(u) else yes[trains(u)]
        keras = ", ".join(list(u.keras_layers) + [f"activation {a}" for a in u.keras_activations]) or "-"
        rows.append(f"| `{u.type}` | {u.summary} | {yes[u.int8]} | {yes[u.float32]} | {yes[u.float16]} | {train} | "
                    f"{', '.join(u.tflite_ops) or '-'} | {keras} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
