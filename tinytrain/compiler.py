"""One compile pipeline, as a library call:

    import tinytrain
    m = tinytrain.compile("digits_cnn.tflite", scheme="last:2", board="mps2-an386")
    m.memory                     # the memory plan (arena, trainable, flash) the fit check uses
    m.fit().fits                 # against the board
    m.write_project("out/fw")    # a PlatformIO project (atomic); m.build_project(...) compiles it
    y = m.run(x)                 # the host build of the same C, inference
    with m.host_trainer() as ht: # the host build of the training step (bit-identical to the device)
        ht.train_step(x0, label)

The CLI (`build`, `inspect`, `run`), the benchmarks, the examples and the tests all go
through `compile`. Steps: import (tinytrain.frontends) -> optional fresh classifier head
(transfer learning) -> scheme binding and channel reordering (training) -> memory passes
on the frozen part -> the board's kernel variants (passes.select_kernels: their scratch is
planned) -> memory plan (tinytrain.planner / training.memory) -> C emission
(tinytrain.cgen) whose emitted constants give the flash figure.
"""
from __future__ import annotations

import functools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .boards import Board, load_board
from .errors import TinyTrainError
from .ir import Graph, graph_macs


@dataclass
class Compiled:
    """A compiled model: graph, training program, memory plan and generated C."""
    graph: Graph
    board: Board
    program: Any = None                  # tinytrain.training.program.TrainingProgram
    lr: float = 0.01
    momentum_value: float = 0.0
    weight_decay: float = 0.0
    scheme_text: str | None = None
    precision: str = "fp32"              # fp32 | fp16 | mixed (tinytrain.precision)
    _plan: Any = field(default=None, repr=False)

    # --- figures ----------------------------------------------------------------------------
    @property
    def trainable(self) -> bool:
        return self.program is not None

    @property
    def macs(self) -> int:
        return graph_macs(self.graph)

    @property
    def model_hash(self) -> str:
        return self.graph.fingerprint()

    @functools.cached_property
    def plan(self):
        """The arena plan: a planner.Plan for inference; for training the offsets of the
        training step's buffers (training.memory)."""
        if self.program is None:
            from .planner import plan_graph
            return plan_graph(self.graph)
        return None

    @functools.cached_property
    def _training_memory(self) -> dict:
        from .training.memory import memory_report
        return memory_report(self.program)

    @functools.cached_property
    def emission(self):
        """The generated C (tinytrain.cgen.generate.Emission), not yet written."""
        from .cgen.generate import emit_model, inference_arena
        if self.program is None:
            arena = inference_arena(self.graph, self.plan.offsets)
            memory = _inference_memory(self.graph, self.plan)
            return emit_model(self.graph, arena, memory, simd=self.board.simd)
        from .training.emit import training_arena
        tm = self._training_memory
        arena = training_arena(self.program, tm["offsets"])
        memory = {k: v for k, v in tm.items() if k != "offsets"}
        return emit_model(self.graph, arena, memory, simd=self.board.simd, program=self.program,
                          lr=self.lr, momentum=self.momentum_value, weight_decay=self.weight_decay)

    @property
    def memory(self) -> dict:
        """arena_bytes, trainable_param_bytes, total_sram_bytes, flash_bytes (the constants the
        C holds), frozen_param_bytes, and for training the breakdown of the arena; precision
        and, for half precision, a note on how the board computes it."""
        mem = dict(self.emission.memory)
        mem["precision"] = self.precision
        if self.precision != "fp32":
            from .precision import storage_note
            mem["notes"] = [storage_note(self.board)]
        return mem

    def fit(self, board: str | Board | None = None):
        """The fit check against a board (default: the one compiled for)."""
        from .project import fit_check
        b = self.board if board is None else (board if isinstance(board, Board) else load_board(board))
        return fit_check(self.memory, b)

    # --- outputs ------------------------------------------------------------------------------
    def write_c(self, out_dir) -> list[Path]:
        """model.h, model.c, model_data.h, model_data.c into out_dir."""
        return self.emission.write(Path(out_dir))

    def kernel_files(self) -> list[Path]:
        """The C kernel files (firmware/kernels/) this model calls."""
        return self.emission.kernel_files()

    def write_project(self, out_dir, *, force: bool = False, reads: str = "open") -> dict:
        """A PlatformIO project for the board (fit-checked first; atomic). It gets its device
        key (tinytrain.keystore); reads="closed": reads only in an authenticated session."""
        from .project import emit_project
        return emit_project(self, Path(out_dir), force=force, reads=reads)

    def build_project(self, out_dir, *, force: bool = False, reads: str = "open") -> dict:
        """write_project, then `pio run`: returns the build figures read from the ELF."""
        from .project import build_project
        result = self.write_project(out_dir, force=force, reads=reads)
        result["build"] = build_project(Path(out_dir))
        return result

    # --- the host build ---------------------------------------------------------------------------
    def host_model(self, work_dir=None):
        """The host build of the forward (tinytrain.hostmodel.HostModel)."""
        from .hostmodel import HostModel
        return HostModel(self, work_dir)

    def run(self, x: np.ndarray) -> np.ndarray:
        """Outputs of the generated C, compiled for the host, on a batch of samples."""
        return self.host_model().run(x)

    def host_trainer(self, work_dir=None):
        """The host build of the training step (tinytrain.training.host.HostTrainer)."""
        if self.program is None:
            raise TinyTrainError(f"model {self.graph.name!r} was compiled without a training scheme")
        from .training.host import HostTrainer
        return HostTrainer(self, work_dir)

    def simulator(self):
        """The numpy simulation of the training step (tinytrain.training.simulate.Trainer)."""
        from .training.simulate import Trainer
        if self.program is None:
            raise TinyTrainError(f"model {self.graph.name!r} was compiled without a training scheme")
        return Trainer(self.program, lr=self.lr, momentum=self.momentum_value, weight_decay=self.weight_decay)


def _inference_memory(graph: Graph, plan) -> dict:
    params = sum(t.nbytes for t in graph.constants())
    return dict(arena_bytes=int(plan.arena_bytes), trainable_param_bytes=0, frozen_param_bytes=params,
                total_sram_bytes=int(plan.arena_bytes),
                naive_bytes=sum(t.nbytes for t in graph.activations()))


def _check_scheme_early(model, scheme) -> None:
    """A scheme checked before the model is loaded (a Keras model's int8 conversion takes
    tens of seconds): its syntax and JSON, and for a .keras (or .h5) file the layer names and
    counts against the file's config (read without TensorFlow)."""
    from .training.scheme import check_spec_against_layers, parse_scheme
    spec = parse_scheme(scheme)
    if isinstance(model, (str, Path)) and str(model).lower().endswith((".keras", ".h5")):
        from .frontends.keras import keras_file_weighted_layers
        names = keras_file_weighted_layers(model)
        if names:
            check_spec_against_layers(spec, names)


def _asks_float_head(scheme) -> bool:
    """The scheme (a JSON scheme's "head": "float") trains an int8 model's head in float."""
    if hasattr(scheme, "layers"):
        return False
    from .training.scheme import parse_scheme
    return parse_scheme(scheme).head == "float"


def load(model, *, quantize: str | None = None, calibration=None) -> Graph:
    """A model (Graph, path, Keras model, .tflite bytes) as a validated Graph."""
    if isinstance(model, Graph):
        return model.validate()
    from .frontends import load_model
    if isinstance(calibration, (str, Path)):
        from .datasets import load_samples
        calibration = load_samples(calibration)[0]
    if quantize and calibration is None:
        raise TinyTrainError("--quantize int8 needs --calibration FILE (.npz with x)")
    return load_model(model, quantize=quantize, calibration=calibration)


def compile(model, *, scheme=None, board: str | Board = "native", passes: bool = True,
            quantize: str | None = None, calibration=None, num_classes: int | None = None,
            loss: str = "softmax_cross_entropy", momentum: bool = False, shadow: bool = False,
            update: str | None = None, update_seed: int | None = None,
            lr: float = 0.01, momentum_value: float = 0.0, weight_decay: float = 0.0,
            reorder: bool = True, precision: str = "fp32", loss_scale: float | str = 1.0) -> Compiled:
    """Compile `model` (a Graph, a path to .keras/.h5/.tflite/.json, a Keras model, or
    .tflite bytes) for `board`; with `scheme` (full, last:K, bias-only:N, a scheme JSON, or a
    bound Scheme) also its training step.

    passes: the memory passes (fused pointwise+depthwise, in-place depthwise) on the part of
    the graph no gradient reaches. num_classes: replace the classifier by a fresh head.
    momentum: keep SGD momentum state (counted in the memory plan); update: how int8
    parameters keep sub-step progress ("nearest", "shadow", "residual", "stochastic";
    default: training.qas.DEFAULT_UPDATE; shadow=True means "shadow"), update_seed: the
    stochastic rounding PRNG's seed;
    lr, momentum_value, weight_decay: the hyper-parameters compiled in (changeable at run
    time). reorder: move a partial update's trained channels to the front.
    precision: "fp32" (as imported), "fp16" (half activations, gradients and trained
    weights) or "mixed" (fp16 plus an fp32 master copy of the trained weights) for a float
    model; for an int8 model with a scheme, fp16 / mixed train its head (the layers from the
    first trained one on) in FP16 while the frozen part stays int8, and a JSON scheme's
    "head": "float" asks for that head in FP32 with precision fp32 (tinytrain.precision);
    loss_scale: a power of two or "dynamic" (half precision)."""
    from .passes import frozen_prefix, optimize_for_memory, select_kernels
    board = board if isinstance(board, Board) else load_board(board)
    scheme_text = None if scheme is None else str(getattr(scheme, "name", scheme))
    if scheme is not None and not hasattr(scheme, "layers"):
        _check_scheme_early(model, scheme)
    from .precision import check_precision, half_variants, to_float16
    check_precision(precision)
    graph = load(model, quantize=quantize, calibration=calibration)
    if num_classes is not None:
        from .training.head import replace_classifier
        graph = replace_classifier(graph, num_classes)
    if graph.is_quantized and scheme is not None and (precision != "fp32" or _asks_float_head(scheme)):
        from .precision import float_head
        from .training.scheme import bind_scheme
        graph = float_head(graph, scheme if hasattr(scheme, "layers") else bind_scheme(scheme, graph),
                           half=precision != "fp32")
        if precision != "fp32":
            graph = half_variants(graph, board)
    elif precision != "fp32":
        graph = half_variants(to_float16(graph), board)
    if scheme is None:
        graph = optimize_for_memory(graph) if passes else graph
        return Compiled(select_kernels(graph, board.simd), board, None, lr, momentum_value, weight_decay,
                        precision=precision)
    from .training.program import build_program
    from .training.scheme import bind_scheme
    if reorder:
        from .training.reorder import reorder_for_scheme
        graph, bound = reorder_for_scheme(graph, scheme)   # trained channels first
    else:
        bound = scheme if hasattr(scheme, "layers") else bind_scheme(scheme, graph)
    if passes:
        graph = optimize_for_memory(graph, frozen_prefix(graph, bound))
    graph = select_kernels(graph, board.simd)     # before the plan: variants size their scratch
    program = build_program(graph, bound, loss=loss, momentum=momentum, shadow=shadow, update=update,
                            update_seed=update_seed, precision=precision, loss_scale=loss_scale)
    return Compiled(program.graph, board, program, lr, momentum_value, weight_decay, scheme_text, precision)
