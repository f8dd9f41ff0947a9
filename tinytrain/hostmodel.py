"""A compiled model on the host: generate C, compile with gcc, run batches of samples."""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from .errors import TinyTrainError
from .hostbuild import check_host_runnable, compile_host, run_batch
from .ir import NP_DTYPES, Graph


def quantize_input(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float samples -> int8 exactly like TFLite's QUANTIZE (float32 division, round half away)."""
    v = np.asarray(x, np.float32) / np.float32(scale)
    # np.round is half-to-even; TFLite rounds half away from zero.
    q = np.where(np.abs(v - np.trunc(v)) == 0.5, np.trunc(v) + np.sign(v), np.round(v))
    return np.clip(q + zero_point, -128, 127).astype(np.int8)


class HostModel:
    """The forward of a compiled model (tinytrain.compile), built with the host gcc. A Graph
    is compiled as it is (no memory passes)."""

    def __init__(self, compiled, work_dir: Path | None = None):
        if isinstance(compiled, Graph):
            from .compiler import compile as compile_model
            compiled = compile_model(compiled, passes=False)
        check_host_runnable(compiled)
        self.compiled = compiled
        self.graph = graph = compiled.graph
        self._tmp = None if work_dir else tempfile.TemporaryDirectory(prefix="tinytrain-host-")
        self.work_dir = Path(work_dir or self._tmp.name)
        compiled.write_c(self.work_dir)
        self.exe = compile_host(self.work_dir, kernels=compiled.kernel_files())
        self.input = graph.tensors[graph.inputs[0]]
        self.output = graph.tensors[graph.outputs[0]]

    def prepare(self, x: np.ndarray) -> np.ndarray:
        """Shape samples to (batch, *input.shape[1:]) and quantize float data for an int8 input."""
        x = np.asarray(x)
        per_sample = self.input.size
        if x.size % per_sample:
            raise TinyTrainError(f"samples of {x.shape[1:]} do not fit the model input {self.input.shape}")
        x = x.reshape(-1, per_sample)
        if self.input.dtype == "int8" and x.dtype != np.int8:
            x = quantize_input(x, self.input.scale, self.input.zero_point)
        return x.astype(NP_DTYPES[self.input.dtype])

    def run(self, x: np.ndarray) -> np.ndarray:
        x = self.prepare(x)
        return run_batch(self.exe, x, NP_DTYPES[self.input.dtype], NP_DTYPES[self.output.dtype], self.output.size)
