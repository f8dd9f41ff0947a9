"""The one place the semantic layer talks to a device (TD generation, fleet scan, gateway).

Everything goes through `Device`, a thin adapter over tinytrain.link: when the link gains
authenticated sessions, only `Device.open` changes. The description is the `Description`
dataclass the link returns; fields it does not know yet are ignored, so DESCRIBE can grow.
"""
from __future__ import annotations

import socket
import uuid
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .. import protocol as P
from ..errors import TinyTrainError
from . import vocabulary as V

ENCODINGS = ("real", "raw")   # samples as real values (quantized here) or as the device's input values


@dataclass
class DeviceState:
    """What a Thing Description says about a device at one moment."""
    description: object                  # tinytrain.link.Description (or a newer one)
    url: str                             # the port URL on this host
    host: str
    weights_bytes: int | None = None     # trainable parameters: bytes and CRC-32 (training builds)
    weights_crc32: int | None = None


def host_name() -> str:
    return socket.gethostname()


def device_iri(description, url: str, host: str | None = None) -> str:
    """A stable IRI for the device: from an identity the firmware reports, when it reports
    one, else from this host's name and the port URL."""
    for field in ("device_id", "serial", "uid"):
        value = getattr(description, field, None)
        if value:
            return V.DEVICE_IRI + str(uuid.uuid5(uuid.NAMESPACE_URL, f"tinytrain:{field}:{value}"))
    return V.DEVICE_IRI + str(uuid.uuid5(uuid.NAMESPACE_URL, f"tinytrain:{host or host_name()}:{url}"))


def capabilities(description) -> list[str]:
    caps = int(description.capabilities)
    names = ((P.CAP_INFER, "infer"), (P.CAP_TRAIN, "train"), (P.CAP_NV_STORE, "nv-store"),
             (P.CAP_HPARAMS, "hyperparameters"))
    return [name for bit, name in names if caps & bit]


class Device:
    """A device on its port. Use as a context manager; not thread-safe (the gateway locks)."""

    def __init__(self, url: str, link):
        self.url = url
        self.link = link

    @classmethod
    def open(cls, url: str, **kwargs) -> "Device":
        from ..link import Link
        return cls(url, Link.open(url, **kwargs))

    def close(self) -> None:
        self.link.close()

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- reading --------------------------------------------------------------------------
    def describe(self):
        return self.link.describe()

    @property
    def trainable(self) -> bool:
        return bool(self.link.description.capabilities & P.CAP_TRAIN)

    def state(self) -> DeviceState:
        d = self.describe()
        st = DeviceState(d, self.url, host_name())
        if d.capabilities & P.CAP_TRAIN:
            st.weights_bytes, st.weights_crc32 = self.link.weights_crc()
        return st

    def statistics(self) -> dict:
        s = self.link.stats()
        return dict(steps=s.steps, mode="train" if s.mode == P.MODE_TRAIN else "eval",
                    trainSamples=s.train_samples, trainCorrect=s.train_correct,
                    trainLossSum=float(s.train_loss_sum), evalSamples=s.eval_samples,
                    evalCorrect=s.eval_correct, inferences=s.infer_count)

    def hyperparameters(self) -> dict:
        lr, momentum, decay = self.link.get_hparams()
        return dict(learningRate=float(lr), momentum=float(momentum), weightDecay=float(decay))

    def weights_crc(self) -> dict:
        total, crc = self.link.weights_crc()
        return dict(bytes=total, crc32=crc, generation=int(self.describe().loaded_generation))

    def weights(self) -> dict:
        params = self.link.read_params()
        total, crc = self.link.weights_crc()
        return dict(modelHash=self.link.description.model_hash, crc32=crc, bytes=total,
                    params={k: v.reshape(-1).tolist() for k, v in params.items()})

    def link_counters(self) -> dict:
        return self.link.device_counters()

    # --- changing -------------------------------------------------------------------------
    def set_hyperparameters(self, **values) -> dict:
        cur = self.hyperparameters()
        cur.update({k: float(v) for k, v in values.items()})
        lr, momentum, decay = self.link.set_hparams(cur["learningRate"], cur["momentum"], cur["weightDecay"])
        return dict(learningRate=float(lr), momentum=float(momentum), weightDecay=float(decay))

    def set_mode(self, mode: str) -> str:
        if mode not in ("train", "eval"):
            raise TinyTrainError(f"mode must be train or eval, not {mode!r}")
        return "train" if self.link.set_mode(mode) == P.MODE_TRAIN else "eval"

    def write_weights(self, value: dict) -> dict:
        """Replace the trainable parameters (a `weights` property value of the same model)."""
        d = self.describe()
        if value.get("modelHash") != d.model_hash:
            raise TinyTrainError(f"weights of model {value.get('modelHash')!r}; the device runs {d.model_hash}")
        params = value.get("params")
        if not isinstance(params, dict):
            raise TinyTrainError("weights: `params` must be an object of parameter arrays")
        self.link.write_params({k: np.asarray(v) for k, v in params.items()})
        return self.weights_crc()

    def save_weights(self) -> dict:
        return _store_info(self.link.save_weights())

    def load_weights(self) -> dict:
        return _store_info(self.link.load_weights())

    def reset_statistics(self) -> None:
        self.link.reset_stats()

    # --- samples ---------------------------------------------------------------------------
    def _samples(self, samples, encoding: str) -> np.ndarray:
        if encoding not in ENCODINGS:
            raise TinyTrainError(f"encoding must be one of {ENCODINGS}, not {encoding!r}")
        d = self.describe()
        try:
            x = np.asarray(samples, dtype=np.float64)
        except (TypeError, ValueError):
            raise TinyTrainError("samples must be an array of numeric arrays") from None
        if x.ndim < 1 or len(x) == 0:
            raise TinyTrainError("samples: give at least one sample")
        x = x.reshape(len(x), -1)
        if x.shape[1] != d.input_size:
            raise TinyTrainError(f"a sample has {x.shape[1]} values, the model input {tuple(d.input_shape)} "
                                 f"has {d.input_size}")
        if encoding == "real":
            return x.astype(np.float32)            # the link quantizes as `tinytrain train` does
        if d.input_dtype == P.DTYPE_S8:
            if np.any(x != np.round(x)) or x.min() < -128 or x.max() > 127:
                raise TinyTrainError("raw samples of an int8 input must be integers in [-128, 127]")
            return x.astype(np.int8)
        return x.astype(np.float32)

    def infer(self, samples, encoding: str = "real") -> dict:
        results = self.link.infer_many(self._samples(samples, encoding))
        return dict(predicted=[r.predicted for r in results],
                    outputs=[r.outputs.reshape(-1).tolist() for r in results],
                    work=[r.work for r in results])

    def train(self, samples, labels: Sequence[int], encoding: str = "real", chunk: int = 16,
              on_chunk: Callable[[dict], None] | None = None) -> dict:
        """One TRAIN request per sample, in the given order (pipelined in chunks); `on_chunk`
        hears the progress after every chunk."""
        x = self._samples(samples, encoding)
        y = _labels(labels, len(x))
        out = dict(samples=0, steps=None, loss=[], predicted=[], correct=[])
        for i in range(0, len(x), chunk):
            results = self.link.train_many(x[i:i + chunk], y[i:i + chunk])
            out["samples"] += len(results)
            out["steps"] = results[-1].steps
            out["loss"] += [None if np.isnan(r.loss) else float(r.loss) for r in results]
            out["predicted"] += [r.predicted for r in results]
            out["correct"] += [bool(r.correct) for r in results]
            if on_chunk:
                losses = [r.loss for r in results if not np.isnan(r.loss)]
                on_chunk(dict(samples=out["samples"], total=len(x), steps=out["steps"],
                              loss=float(np.mean(losses)) if losses else None))
        return out

    def evaluate(self, samples, labels: Sequence[int], encoding: str = "real") -> dict:
        x = self._samples(samples, encoding)
        res = self.link.evaluate(x, _labels(labels, len(x)))
        return dict(samples=res.samples, correct=res.correct, accuracy=res.accuracy)


def _labels(labels, n: int) -> np.ndarray:
    try:
        y = np.asarray(labels, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TinyTrainError("labels must be an array of integers") from None
    if len(y) != n or np.any(y != np.round(y)):
        raise TinyTrainError(f"labels: give one integer label per sample ({n})")
    return y.astype(np.int64)


def _store_info(info) -> dict:
    return dict(generation=info.generation, steps=info.steps, bytes=info.data_bytes,
                crc32=info.data_crc, slot=info.slot)
