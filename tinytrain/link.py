"""Host side of the tinytrain serial protocol (docs/protocol.md).

    with Link.open("socket://127.0.0.1:5000") as link:      # or "/dev/ttyACM0", a pty...
        print(link.description)
        results = link.train_many(samples, labels)           # pipelined
        link.save_weights()

The link is pipelined: up to `window` requests are in flight, so the line is not idle
while the device computes. The device executes requests strictly in sequence order and
keeps its last few replies, so recovery is go-back-N: after a timeout or an out-of-
sequence notice (ERR_SEQ) the host resends every request still unanswered, and the
device answers a repeat of an executed request with its stored reply instead of running
it again (a retried TRAIN never trains twice).
"""
from __future__ import annotations

import random
import struct
import time
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from . import cobs
from . import protocol as P
from .errors import TinyTrainError


class LinkError(TinyTrainError):
    """The link failed: no valid reply after every retry, or an incompatible device."""


class DeviceError(TinyTrainError):
    """The device executed a request and answered with an error code."""

    def __init__(self, request: str, code: int, detail: int = 0):
        self.request, self.code, self.detail = request, code, detail
        self.name = P.ERROR_NAMES.get(code, f"error {code}")
        super().__init__(f"device refused {request}: {self.name} (code {code}, detail {detail})")


def _serial_error() -> type:
    import serial
    return serial.SerialException




# ---- replies --------------------------------------------------------------------------

@dataclass(frozen=True)
class Description:
    protocol_version: int
    max_payload: int
    capabilities: int
    model_hash: str
    model_name: str
    board: str
    firmware_version: str
    core: str
    work_unit: str
    input_dtype: int
    output_dtype: int
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int
    arena_bytes: int
    flash_data_bytes: int
    sram_bytes: int
    flash_bytes: int
    nv_bytes: int
    link_ram_bytes: int
    trainable_bytes: int
    num_params: int
    steps: int
    loaded_generation: int
    mode: int
    simd: bool
    reply_ring: int

    @property
    def trainable(self) -> bool:
        return bool(self.capabilities & P.CAP_TRAIN)

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output_size(self) -> int:
        return int(np.prod(self.output_shape))

    @classmethod
    def parse(cls, p: bytes) -> "Description":
        if len(p) < 240:
            raise LinkError(f"DESCRIBE reply has {len(p)} bytes, expected 240")

        def s(off: int, n: int) -> str:
            return p[off:off + n].split(b"\x00", 1)[0].decode("ascii", "replace")

        ver, maxp, caps = struct.unpack_from("<HHI", p, 0)
        in_rank, out_rank = p[146], p[147]
        in_shape = struct.unpack_from("<4I", p, 148)[:min(in_rank, 4)]
        out_shape = struct.unpack_from("<4I", p, 164)[:min(out_rank, 4)]
        in_scale, in_zp, out_scale, out_zp = struct.unpack_from("<fifi", p, 180)
        (arena, flash_data, sram, flash, nv, link_ram, trainable, nparams, steps,
         generation) = struct.unpack_from("<10I", p, 196)
        return cls(ver, maxp, caps, s(8, 16), s(24, 32), s(56, 32), s(88, 16), s(104, 16),
                   s(120, 24), p[144], p[145], tuple(in_shape), tuple(out_shape),
                   in_scale, in_zp, out_scale, out_zp, arena, flash_data, sram, flash, nv,
                   link_ram, trainable, nparams, steps, generation, p[236], bool(p[237]),
                   struct.unpack_from("<H", p, 238)[0])


@dataclass(frozen=True)
class InferResult:
    predicted: int
    outputs: np.ndarray
    work: int              # device work units spent (Description.work_unit)


@dataclass(frozen=True)
class TrainResult:
    loss: float            # NaN in eval mode
    predicted: int
    correct: bool
    mode: int
    steps: int
    work: int

    @classmethod
    def parse(cls, p: bytes) -> "TrainResult":
        loss, pred, correct, mode, steps, work = struct.unpack("<fIBBxxII", p)
        return cls(loss, pred, bool(correct), mode, steps, work)


@dataclass(frozen=True)
class Stats:
    steps: int
    mode: int
    train_samples: int
    train_correct: int
    train_loss_sum: float
    eval_samples: int
    eval_correct: int
    infer_count: int

    @classmethod
    def parse(cls, p: bytes) -> "Stats":
        steps, mode, tn, tc, tl, en, ec, inf = struct.unpack("<IBxxxIIfIII", p)
        return cls(steps, mode, tn, tc, tl, en, ec, inf)


@dataclass(frozen=True)
class StoreInfo:
    generation: int
    steps: int
    data_bytes: int
    data_crc: int
    slot: int

    @classmethod
    def parse(cls, p: bytes) -> "StoreInfo":
        return cls(*struct.unpack("<IIIIBxxx", p))


@dataclass(frozen=True)
class ParamInfo:
    name: str
    bytes: int
    offset: int
    dtype: int


@dataclass(frozen=True)
class EvalResult:
    samples: int
    correct: int
    results: list

    @property
    def accuracy(self) -> float:
        return self.correct / self.samples if self.samples else float("nan")


LINK_STAT_NAMES = ("frames_ok", "crc_errors", "too_long", "malformed", "bad_version",
                   "seq_errors", "duplicates", "executed", "unknown_type")
DROPPED_FRAME_STATS = ("crc_errors", "too_long", "malformed", "bad_version")


def dropped_frames(device_counters: dict[str, int]) -> int:
    """Frames the device received damaged and dropped (from Link.device_counters())."""
    return sum(device_counters[k] for k in DROPPED_FRAME_STATS)


# ---- the request engine ------------------------------------------------------------------

@dataclass(eq=False)
class Request:
    """One request; `reply` is set once its reply (or executed-error reply) arrived."""
    type: int
    seq: int
    payload: bytes
    frame: bytes
    timeout: float         # first wait for the reply; doubled on every retry
    deadline: float = 0.0
    tries: int = 0
    busy: bool = False
    reply: P.Frame | None = None

    @property
    def done(self) -> bool:
        return self.reply is not None

    @property
    def name(self) -> str:
        return P.REQUEST_NAMES.get(self.type, f"type 0x{self.type:02x}")


@dataclass
class LinkCounters:
    """What the host saw on the line (the device's own are in Link.device_counters())."""
    frames_ok: int = 0
    crc_errors: int = 0
    malformed: int = 0
    too_long: int = 0
    device_dropped: int = 0       # the device reported a bad frame it received
    naks: int = 0                 # out-of-sequence notices from the device
    timeouts: int = 0
    busy: int = 0                 # BUSY notices (a long request started)
    retransmissions: int = 0      # request frames sent again
    duplicate_replies: int = 0    # replies to requests already answered
    unexpected: int = 0           # valid frames that match no request

    @property
    def bad_frames(self) -> int:
        return self.crc_errors + self.malformed + self.too_long


class Link:
    """A session with one device over a pyserial port (see Link.open)."""

    def __init__(self, port, *, timeout: float = 0.5, max_backoff: float = 30.0,
                 retries: int = 10, window: int = 4, poll_interval: float = 0.01,
                 first_seq: int | None = None):
        self.port = port
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.retries = retries
        self.poll_interval = poll_interval
        self.counters = LinkCounters()
        self.window = max(1, window)
        self.max_payload = 240                       # until HELLO tells the device's limit
        self._splitter = P.FrameSplitter(cobs.max_encoded_size(P.HEADER_BYTES + P.MAX_PAYLOAD_LIMIT + 4))
        self._queue: deque[Request] = deque()        # submitted, not yet sent
        self._inflight: deque[Request] = deque()     # sent, in sequence order
        self._next_seq = random.randrange(0x10000) if first_seq is None else first_seq & 0xFFFF
        self._last_go_back = -1e9
        self._description: Description | None = None
        self.hello()

    @classmethod
    def open(cls, url: str, baudrate: int = 115200, **kwargs) -> "Link":
        """Opens a serial URL: a device path, "socket://host:port", "rfc2217://"..."""
        import serial
        try:
            port = serial.serial_for_url(url, baudrate=baudrate, timeout=0)
        except (serial.SerialException, ValueError) as e:
            raise LinkError(f"cannot open {url}: {e}") from None
        try:
            return cls(port, **kwargs)
        except BaseException:
            port.close()
            raise

    def close(self) -> None:
        self.port.close()

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- low level -------------------------------------------------------------------------

    def submit(self, type_: int, payload: bytes = b"") -> Request:
        """Queues a request; it is sent as soon as the window allows."""
        if len(payload) > self.max_payload:
            raise TinyTrainError(f"payload of {len(payload)} bytes exceeds the device's "
                                 f"maximum of {self.max_payload}")
        seq = self._next_seq
        self._next_seq = (seq + 1) & 0xFFFF
        req = Request(type_, seq, payload, P.encode_frame(type_, seq, payload), self.timeout)
        self._queue.append(req)
        self._pump(block=False)
        return req

    def wait(self, req: Request) -> bytes:
        """Waits for req's reply; returns its payload or raises DeviceError / LinkError."""
        while not req.done:
            self._pump(block=True)
        f = req.reply
        if f.type == P.ERROR:
            code, _, detail = struct.unpack_from("<BBH", f.payload)
            raise DeviceError(req.name, code, detail)
        return f.payload

    def request(self, type_: int, payload: bytes = b"") -> bytes:
        return self.wait(self.submit(type_, payload))

    def drain(self) -> None:
        """Waits until every submitted request has its reply."""
        while self._queue or self._inflight:
            self._pump(block=True)

    def _pump(self, block: bool) -> None:
        self._send_ready()
        data = self._read(block)
        if data:
            for item in self._splitter.feed(data):
                self._on_received(item)
        self._check_timeout()
        self._retire()

    def _send_ready(self) -> None:
        while self._queue and len(self._inflight) < self.window:
            req = self._queue.popleft()
            self._transmit(req)
            self._inflight.append(req)

    def _transmit(self, req: Request, keep_busy: bool = False) -> None:
        req.tries += 1
        if req.tries > self.retries + 1:
            raise LinkError(f"no valid reply to {req.name} (seq {req.seq}) after "
                            f"{self.retries} retries")
        # Exponential backoff: a device busy with a long step is probed, not flooded.
        backoff = min(req.timeout * 2 ** (req.tries - 1), max(req.timeout, self.max_backoff))
        req.deadline = time.monotonic() + backoff
        req.busy = req.busy and keep_busy
        try:
            self.port.write(req.frame)
        except (OSError, _serial_error()) as e:
            raise LinkError(f"serial port write failed: {e}") from None

    def _read(self, block: bool) -> bytes:
        # Block for the first byte only, then take whatever else is already there.
        try:
            self.port.timeout = self.poll_interval if block else 0
            first = self.port.read(1)
            if not first:
                return b""
            self.port.timeout = 0
            return first + self.port.read(1 << 16)
        except (OSError, _serial_error()) as e:
            raise LinkError(f"serial port read failed: {e}") from None

    def _on_received(self, item) -> None:
        if isinstance(item, P.FrameError):
            self._count_bad(item.kind)
            return
        try:
            f = P.parse_frame(item)
        except P.FrameError as e:
            self._count_bad(e.kind)
            return
        self.counters.frames_ok += 1
        if f.version != P.VERSION:
            self.counters.unexpected += 1
            return
        if f.type == P.BUSY:
            self.counters.busy += 1
            req = next((r for r in self._inflight if r.seq == f.seq and not r.done), None)
            if req is not None and not req.busy:
                req.busy = True
                self._expedite_before(req)
            return
        if f.type == P.ERROR:
            if len(f.payload) != 4:
                self.counters.unexpected += 1
                return
            code, rtype, detail = struct.unpack("<BBH", f.payload)
            if code in (P.ERR_CRC, P.ERR_MALFORMED, P.ERR_TOO_LONG):
                self.counters.device_dropped += 1
                return
            if code == P.ERR_VERSION:
                raise LinkError(f"the device speaks protocol version {detail}, "
                                f"this host {P.VERSION}")
            if code == P.ERR_SEQ:
                self.counters.naks += 1
                self._on_nak(detail)
                return
        self._match_reply(f)

    def _count_bad(self, kind: str) -> None:
        name = {"crc": "crc_errors", "malformed": "malformed", "too_long": "too_long"}[kind]
        setattr(self.counters, name, getattr(self.counters, name) + 1)

    def _match_reply(self, f: P.Frame) -> None:
        req = next((r for r in self._inflight if r.seq == f.seq), None)
        if req is None or req.done:
            self.counters.duplicate_replies += 1
            return
        ok_type = f.type == (req.type | P.REPLY) or (f.type == P.ERROR and f.payload[1] == req.type)
        if not ok_type:
            self.counters.unexpected += 1
            return
        req.reply = f
        self._expedite_before(req)

    def _expedite_before(self, req: Request) -> None:
        """The device executes in order: news of req means the replies of earlier requests
        it already started (BUSY) were lost. Ask again now, not after their compute timeout."""
        now = time.monotonic()
        for r in self._inflight:
            if r is req:
                return
            if r.busy and not r.done:
                r.deadline = min(r.deadline, now)

    def _on_nak(self, expected: int) -> None:
        pending = [r for r in self._inflight if not r.done]
        if not pending or time.monotonic() - self._last_go_back < self.timeout / 4:
            return
        # The device wants `expected`; act if that lies within what is in flight
        # (a stale notice about requests already answered is ignored).
        if (expected - pending[0].seq) & 0xFFFF <= len(self._inflight):
            self._go_back()

    def _check_timeout(self) -> None:
        pending = next((r for r in self._inflight if not r.done), None)
        if pending is not None and time.monotonic() > pending.deadline:
            self.counters.timeouts += 1
            if pending.busy:
                # The device started it (BUSY): it is computing, or its reply was lost.
                # Resend it alone; a repeat is answered from the reply ring when done.
                self.counters.retransmissions += 1
                self._transmit(pending, keep_busy=True)
            else:
                self._go_back()

    def _go_back(self) -> None:
        """Resends every unanswered request in flight, in order."""
        self._last_go_back = time.monotonic()
        for r in self._inflight:
            if not r.done:
                self.counters.retransmissions += 1
                self._transmit(r)

    def _retire(self) -> None:
        retired = False
        while self._inflight and self._inflight[0].done:
            self._inflight.popleft()
            retired = True
        if retired:
            # The next request starts computing only now: its deadline counts from here.
            nxt = next((r for r in self._inflight if not r.done), None)
            if nxt is not None:
                nxt.deadline = max(nxt.deadline, time.monotonic() + nxt.timeout)
            self._send_ready()

    # -- session -----------------------------------------------------------------------------

    def hello(self) -> None:
        """(Re)synchronises the sequence number and learns the device's frame limits."""
        self.drain()
        p = self.request(P.HELLO)
        version, max_payload, ring = struct.unpack_from("<HHH", p)
        if version != P.VERSION:
            raise LinkError(f"the device speaks protocol version {version}, this host {P.VERSION}")
        self.max_payload = max_payload
        self._splitter.max_encoded = cobs.max_encoded_size(P.HEADER_BYTES + max_payload + P.CRC_BYTES)
        self.window = max(1, min(self.window, ring))

    @property
    def description(self) -> Description:
        if self._description is None:
            self._description = self.describe()
        return self._description

    def describe(self) -> Description:
        self._description = Description.parse(self.request(P.DESCRIBE))
        return self._description

    def echo(self, data: bytes) -> bytes:
        return self.request(P.ECHO, bytes(data))

    def device_counters(self) -> dict[str, int]:
        p = self.request(P.LINK_STATS)
        return dict(zip(LINK_STAT_NAMES, struct.unpack(f"<{len(LINK_STAT_NAMES)}I", p)))

    # -- samples -----------------------------------------------------------------------------

    def sample_bytes(self, sample) -> bytes:
        """A sample as the device's input bytes; float samples are quantized for int8 inputs."""
        d = self.description
        x = np.asarray(sample)
        if x.size != d.input_size:
            raise TinyTrainError(f"sample has {x.size} elements, the model input "
                                 f"{d.input_shape} has {d.input_size}")
        if d.input_dtype == P.DTYPE_S8:
            if np.issubdtype(x.dtype, np.floating):
                # TFLite's QUANTIZE rounding (half away from zero), as the host build does.
                from .hostmodel import quantize_input
                return quantize_input(x, d.input_scale, d.input_zero_point).astype("<i1").tobytes()
            elif x.dtype != np.int8 and (x.min() < -128 or x.max() > 127):
                raise TinyTrainError("int8 model input: sample values outside [-128, 127]")
            return np.clip(x, -128, 127).astype("<i1").tobytes()
        return x.astype("<f4").tobytes()

    def _submit_with_sample(self, type_: int, head: bytes, sample) -> Request:
        data = self.sample_bytes(sample)
        if len(head) + len(data) <= self.max_payload:
            return self.submit(type_, head + data)
        step = self.max_payload - 4
        for off in range(0, len(data), step):
            self.submit(P.INPUT_WRITE, struct.pack("<I", off) + data[off:off + step])
        return self.submit(type_, head)

    def _throttle(self) -> None:
        # Keep the host-side queue bounded when many samples are submitted at once.
        while len(self._queue) > 4 * self.window:
            self._pump(block=True)

    def infer(self, sample) -> InferResult:
        return self.infer_many([sample])[0]

    def infer_many(self, samples: Iterable) -> list[InferResult]:
        reqs = []
        for s in samples:
            reqs.append(self._submit_with_sample(P.INFER, b"", s))
            self._throttle()
        return [self._infer_result(r) for r in reqs]

    def _infer_result(self, req: Request) -> InferResult:
        p = self.wait(req)
        pred, work, total = struct.unpack_from("<III", p)
        out = bytearray(p[12:])
        while len(out) < total:
            n = min(self.max_payload, total - len(out))
            out += self.request(P.OUTPUT_READ, struct.pack("<IH", len(out), n))
        dt = "<i1" if self.description.output_dtype == P.DTYPE_S8 else "<f4"
        outputs = np.frombuffer(bytes(out), dtype=dt).reshape(self.description.output_shape)
        return InferResult(pred, outputs, work)

    def train(self, sample, label: int) -> TrainResult:
        return self.train_many([sample], [label])[0]

    def train_many(self, samples: Iterable, labels: Sequence[int]) -> list[TrainResult]:
        """One TRAIN request per sample, pipelined; in eval mode no weight changes."""
        reqs = []
        for s, y in zip(samples, labels):
            reqs.append(self._submit_with_sample(P.TRAIN, struct.pack("<i", int(y)), s))
            self._throttle()
        return [TrainResult.parse(self.wait(r)) for r in reqs]

    def evaluate(self, samples: Iterable, labels: Sequence[int]) -> EvalResult:
        """Forward passes in eval mode (no training), then back to the previous mode."""
        previous = self.stats().mode
        self.set_mode(P.MODE_EVAL)
        try:
            results = self.train_many(samples, labels)
        finally:
            self.set_mode(previous)
        return EvalResult(len(results), sum(r.correct for r in results), results)

    # -- modes, statistics, hyperparameters -----------------------------------------------

    def set_mode(self, mode: int | str) -> int:
        m = {"train": P.MODE_TRAIN, "eval": P.MODE_EVAL}.get(mode, mode)
        return self.request(P.SET_MODE, bytes([int(m)]))[0]

    def stats(self) -> Stats:
        return Stats.parse(self.request(P.GET_STATS))

    def reset_stats(self) -> None:
        self.request(P.RESET_STATS)

    def set_hparams(self, lr: float, momentum: float = 0.0,
                    weight_decay: float = 0.0) -> tuple[float, float, float]:
        """Sets and returns the values the device applies (float32)."""
        return struct.unpack("<fff", self.request(P.SET_HPARAMS,
                                                  struct.pack("<fff", lr, momentum, weight_decay)))

    def get_hparams(self) -> tuple[float, float, float]:
        return struct.unpack("<fff", self.request(P.GET_HPARAMS))

    # -- trainable parameters ---------------------------------------------------------------

    def param_info(self) -> list[ParamInfo]:
        reqs = [self.submit(P.PARAM_INFO, struct.pack("<I", i))
                for i in range(self.description.num_params)]
        out = []
        for r in reqs:
            p = self.wait(r)
            nbytes, offset, dtype, name_len = struct.unpack_from("<IIBB", p)
            out.append(ParamInfo(p[10:10 + name_len].decode("ascii", "replace"),
                                 nbytes, offset, dtype))
        return out

    def weights_crc(self) -> tuple[int, int]:
        """(total bytes, CRC-32) of the concatenated trainable parameters on the device."""
        return struct.unpack("<II", self.request(P.WEIGHTS_CRC))

    def read_weights(self) -> bytes:
        """All trainable parameters, concatenated in order, checked against the device's CRC."""
        crc_req = self.submit(P.WEIGHTS_CRC)
        total, crc = struct.unpack("<II", self.wait(crc_req))
        reqs = [self.submit(P.WEIGHTS_READ, struct.pack("<IH", off, min(self.max_payload, total - off)))
                for off in range(0, total, self.max_payload)]
        blob = b"".join(self.wait(r) for r in reqs)
        if len(blob) != total or zlib.crc32(blob) != crc:
            raise LinkError("weights read back do not match the device's CRC")
        return blob

    def write_weights(self, blob: bytes) -> None:
        """Replaces all trainable parameters; verified by the CRC over the whole."""
        total, _ = self.weights_crc()
        if len(blob) != total:
            raise TinyTrainError(f"weights blob has {len(blob)} bytes, the device's "
                                 f"trainable parameters {total}")
        step = self.max_payload - 4
        for off in range(0, total, step):
            self.submit(P.WEIGHTS_WRITE, struct.pack("<I", off) + blob[off:off + step])
            self._throttle()
        total, crc = self.weights_crc()
        if crc != zlib.crc32(blob):
            raise LinkError("weights written do not match their CRC on the device")

    def read_params(self, as_float32: bool = False) -> dict[str, np.ndarray]:
        """The trainable parameters by name (flat arrays in the device's dtype; half ones
        widened to float32, exactly, with as_float32)."""
        from .paramcast import from_device
        infos = self.param_info()
        blob = self.read_weights()
        return {i.name: from_device(blob[i.offset:i.offset + i.bytes], P.DTYPE_NUMPY.get(i.dtype, "u1"), as_float32)
                for i in infos}

    def write_params(self, params: dict[str, np.ndarray]) -> None:
        from .paramcast import to_device
        infos = self.param_info()
        missing = [i.name for i in infos if i.name not in params]
        if missing:
            raise TinyTrainError(f"write_params: missing parameters {missing}")
        parts = []
        for i in infos:
            b = to_device(i.name, params[i.name], P.DTYPE_NUMPY.get(i.dtype, "u1"))   # half: exact or refused
            if len(b) != i.bytes:
                raise TinyTrainError(f"parameter {i.name!r}: {len(b)} bytes, expected {i.bytes}")
            parts.append(b)
        self.write_weights(b"".join(parts))

    def save_weights(self) -> StoreInfo:
        """Saves the parameters to the device's non-volatile store (the older A/B slot)."""
        return StoreInfo.parse(self.request(P.WEIGHTS_SAVE))

    def load_weights(self) -> StoreInfo:
        """Loads the newest valid saved parameters of this model (DeviceError no_saved if none)."""
        return StoreInfo.parse(self.request(P.WEIGHTS_LOAD))
