"""Run a generated training build on the host: compile it with firmware/host/tt_train_main.c
and talk to the process over pipes (the protocol is at the top of that file).

    with tinytrain.compile(graph, scheme="last:2", lr=0.05).host_trainer() as ht:
        loss, pred = ht.train_step(x, label)
        ht.params()          # {name: array}, the device's trainable parameters

Used by the tests (generated C == numpy simulation == TensorFlow) and the examples
(host simulation vs device).
"""
from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import numpy as np

from ..dtypes import BY_CODE
from ..errors import TinyTrainError
from ..hostbuild import compile_host
from ..ir import Graph, NP_DTYPES
from ..resources import firmware_dir

_CHUNK = 256     # samples written before their replies are read (keeps pipes from filling)


class HostTrainer:
    """A running host build of a compiled training model (tinytrain.compile(..., scheme=))."""

    def __init__(self, compiled, work_dir: Path | None = None):
        import tempfile
        from ..hostbuild import check_host_runnable
        check_host_runnable(compiled)
        self.compiled = compiled
        self.program = compiled.program
        self.graph = graph = compiled.graph
        self._tmp = None if work_dir else tempfile.TemporaryDirectory(prefix="tinytrain-train-")
        model_dir = Path(work_dir or self._tmp.name)
        compiled.write_c(model_dir)
        exe = compile_host(model_dir, firmware_dir() / "host" / "tt_train_main.c",
                           kernels=compiled.kernel_files())
        self.proc = subprocess.Popen([str(exe)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.input = graph.tensors[graph.inputs[0]]
        self.output = graph.tensors[graph.outputs[0]]
        self._info()

    @classmethod
    def build(cls, graph: Graph, scheme, out_dir: Path, **kwargs) -> "HostTrainer":
        """Compile the training step of `graph` under `scheme` (tinytrain.compile, no memory
        passes unless passes=True is given; kwargs go to compile) into out_dir and start it."""
        from ..compiler import compile as compile_model
        kwargs.setdefault("passes", False)
        return cls(compile_model(graph, scheme=scheme, **kwargs), Path(out_dir))

    # --- plumbing -----------------------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        self.proc.stdin.write(data)

    def _flush(self) -> None:
        self.proc.stdin.flush()

    def _recv(self, n: int) -> bytes:
        self._flush()
        data = self.proc.stdout.read(n)
        if len(data) != n:
            err = self.proc.stderr.read().decode(errors="replace") if self.proc.poll() is not None else ""
            raise TinyTrainError(f"host training build stopped answering ({len(data)} of {n} bytes): {err}")
        return data

    def _u32(self) -> int:
        return struct.unpack("<I", self._recv(4))[0]

    def _info(self) -> None:
        self._send(b"N")
        self.input_size, self.output_size, self.arena_bytes, self.trainable_bytes, n = (
            self._u32() for _ in range(5))
        self.param_specs: list[tuple[str, int, str]] = []
        for _ in range(n):
            name = self._recv(self._u32()).decode()
            nbytes = self._u32()
            dtype = BY_CODE[self._recv(1)[0]].name
            self.param_specs.append((name, nbytes, dtype))
        if self.input_size != self.input.size or self.output_size != self.output.size:
            raise TinyTrainError("host training build does not match the graph it was built from")

    def _input_bytes(self, x) -> bytes:
        return np.ascontiguousarray(np.asarray(x).reshape(-1), dtype=NP_DTYPES[self.input.dtype]).tobytes()

    # --- the API ---------------------------------------------------------------------------------
    def train_step(self, x, label: int) -> tuple[float, int]:
        """One tt_model_train_step: (loss, prediction of the forward)."""
        return self.train_many(np.asarray(x)[None], [label])[0]

    def train_many(self, xs, labels) -> list[tuple[float, int]]:
        out = []
        for i in range(0, len(labels), _CHUNK):
            batch = range(i, min(i + _CHUNK, len(labels)))
            for j in batch:
                self._send(b"T" + struct.pack("<i", int(labels[j])) + self._input_bytes(xs[j]))
            reply = self._recv(8 * len(batch))
            out += [struct.unpack_from("<fi", reply, 8 * k) for k in range(len(batch))]
        return [(float(l), int(p)) for l, p in out]

    def infer(self, xs) -> np.ndarray:
        """Outputs of tt_model_invoke for a batch of samples: (batch, output_size)."""
        dt = NP_DTYPES[self.output.dtype]
        outs = []
        for i in range(0, len(xs), _CHUNK):
            chunk = xs[i:i + _CHUNK]
            for x in chunk:
                self._send(b"I" + self._input_bytes(x))
            n = self.output_size * np.dtype(dt).itemsize
            data = self._recv(n * len(chunk))
            outs.append(np.frombuffer(data, dt).reshape(len(chunk), self.output_size))
        return np.concatenate(outs) if outs else np.zeros((0, self.output_size), dt)

    def params(self) -> dict[str, np.ndarray]:
        """The trainable parameters as the device holds them (graph shapes)."""
        self._send(b"G")
        out = {}
        for name, nbytes, dtype in self.param_specs:
            arr = np.frombuffer(self._recv(nbytes), NP_DTYPES[dtype])
            out[name] = arr.reshape(self.graph.tensors[name].shape).copy()
        return out

    def set_params(self, values: dict[str, np.ndarray]) -> None:
        """Write every trainable parameter (all must be given), then, as the device's link after
        a weights push: reset the optimizer and restart the PRNG at the compiled seed."""
        from ..paramcast import to_device
        data = b""
        for name, nbytes, dtype in self.param_specs:
            b = to_device(name, values[name], np.dtype(NP_DTYPES[dtype]).str)     # half: exact or refused
            if len(b) != nbytes:
                raise TinyTrainError(f"parameter {name!r}: {len(b)} bytes given, {nbytes} expected")
            data += b
        self._send(b"S" + data + b"R" + b"E" + struct.pack("<I", self.program.update_seed))
        self._flush()

    def set_hparams(self, lr: float, momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        self._send(b"H" + struct.pack("<fff", lr, momentum, weight_decay))
        self._flush()

    def reset_optimizer(self) -> None:
        """tt_model_reset_optimizer: re-derive the update state from the parameters."""
        self._send(b"R")
        self._flush()

    def set_update_seed(self, seed: int) -> None:
        """tt_model_set_update_seed: restart the stochastic-rounding PRNG at `seed`."""
        self._send(b"E" + struct.pack("<I", seed))
        self._flush()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._send(b"Q")
                self._flush()
            except BrokenPipeError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            f.close()
        if self._tmp is not None:
            self._tmp.cleanup()

    def __enter__(self) -> "HostTrainer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
