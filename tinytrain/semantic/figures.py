"""The memory figures `fleet query --fits` compares with the boards: from the compiler,
through exactly the path `tinytrain build` and `inspect --train` take.

`memory_figures` is the one function the registry gets them from. Today it runs the
build's own steps (cli._load, cli._training_program, then the training memory plan or the
inference plan); build's fit check then reads `arena_bytes`, `trainable_param_bytes` and
`flash_bytes` from the same dicts (codegen.generate_model overwrites the inference figures
with the training plan's; project.fit_check adds the board's reserves). When the compiler
gets its one entry point (tinytrain.compile), only the body of this function changes.
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
                   quantize: str | None = None, calibration: str | None = None) -> ModelFigures:
    """Memory figures of MODEL compiled as `tinytrain build MODEL [--train SCHEME] ...` would."""
    from ..cli import _load, _training_program
    graph = _load(model, quantize, calibration)
    graph, program = _training_program(graph, scheme, num_classes, loss, momentum, memory_passes)
    if program is not None:
        from ..training.memory import memory_report
        memory = memory_report(program)
        graph = program.graph
    else:
        from ..codegen import memory_report
        from ..planner import plan_graph
        memory = memory_report(graph, plan_graph(graph))
    return ModelFigures(graph.name, graph.fingerprint(), scheme, int(memory["arena_bytes"]),
                        int(memory["trainable_param_bytes"]), int(memory["flash_bytes"]))
