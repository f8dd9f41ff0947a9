"""The memory figures `fleet query --fits` compares with the boards: from the compiler,
through exactly the path `tinytrain build` and `inspect --train` take.

`memory_figures` is the one function the registry gets them from: tinytrain.compile, the
call `tinytrain build` makes, whose `memory` is what build's fit check (project.fit_check)
reads: `arena_bytes`, `trainable_param_bytes` and `flash_bytes` (the constants the C holds).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelFigures:
    model_name: str
    model_hash: str          # Graph.fingerprint() of the compiled graph (what the firmware reports)
    scheme: str | None
    arena_bytes: int
    trainable_param_bytes: int
    flash_bytes: int

    @property
    def memory(self) -> dict:
        """The figures as the `memory` dict project.fit_check reads."""
        return dict(arena_bytes=self.arena_bytes, trainable_param_bytes=self.trainable_param_bytes,
                    flash_bytes=self.flash_bytes)


def memory_figures(model: str, scheme: str | None = None, *, num_classes: int | None = None,
                   loss: str = "softmax_cross_entropy", momentum: bool = False, memory_passes: bool = True,
                   quantize: str | None = None, calibration: str | None = None,
                   board: str = "native", update: str | None = None, precision: str = "fp32",
                   loss_scale: str = "1") -> ModelFigures:
    """Memory figures of MODEL compiled as `tinytrain build MODEL [--train SCHEME] ...` would
    (for `board`: the kernel variants it runs decide some constants)."""
    from ..cli import _compile
    m = _compile(model, quantize, calibration, scheme, num_classes, loss, momentum, memory_passes=memory_passes,
                 board=board, update=update, precision=precision, loss_scale=loss_scale)
    memory = m.memory
    return ModelFigures(m.graph.name, m.model_hash, scheme, int(memory["arena_bytes"]),
                        int(memory["trainable_param_bytes"]), int(memory["flash_bytes"]))
