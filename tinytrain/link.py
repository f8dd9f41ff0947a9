"""Host side of the tinytrain serial protocol (docs/protocol.md).

    with Link.open("socket://127.0.0.1:5000") as link:      # or "/dev/ttyACM0", a pty...
        print(link.description)
        results = link.train_many(samples, labels)           # batched and pipelined
        link.save_weights()

Sessions: HELLO brings a challenge; with the device's key (from this host's key store,
tinytrain.keystore, found by the key id HELLO reports) the link answers it (AUTH) and from
then on every request and reply carries an HMAC tag. State-changing requests need such a
session; reads are open or closed per build.

The link is pipelined: up to `window` requests are in flight, so the line is not idle
while the device computes, and TRAIN carries as many samples as fit in a frame. The device
executes requests strictly in sequence order and keeps its last few replies, so recovery
is go-back-N: after a timeout or an out-of-sequence notice (ERR_SEQ) the host resends every
request still unanswered, and the device answers a repeat of an executed request with its
stored reply instead of running it again (a retried TRAIN never trains twice).
"""
from __future__ import annotations

import dataclasses
import hashlib
import hmac
import math
import os
import random
import struct
import time
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from . import cobs
from . import protocol as P
from .errors import TinyTrainError


class LinkError(TinyTrainError):
    """The link failed: no valid reply after every retry, or an incompatible device."""


class DeviceError(TinyTrainError):
    """The device executed a request and answered with an error code."""

    def __init__(self, request: str, code: int, detail: int = 0, hint: str = ""):
        self.request, self.code, self.detail = request, code, detail
        self.name = P.ERROR_NAMES.get(code, f"error {code}")
        super().__init__(f"device refused {request}: {self.name} (code {code}, detail {detail})"
                         + (f"; {hint}" if hint else ""))


def _serial_error() -> type:
    import serial
    return serial.SerialException


# ---- replies --------------------------------------------------------------------------

@dataclass(frozen=True)
class Description:
    """What DESCRIBE reports (docs/protocol.md, "DESCRIBE"). Fields a device does not send
    keep their defaults; records this host does not know are skipped."""
    protocol_version: int = 0
    max_payload: int = 0
    capabilities: int = 0
    model_hash: str = ""
    model_name: str = ""
    board: str = ""
    firmware_version: str = ""
    core: str = ""
    work_unit: str = ""
    input_dtype: int = 0
    output_dtype: int = 0
    input_shape: tuple[int, ...] = ()
    output_shape: tuple[int, ...] = ()
    input_scale: float = 0.0
    input_zero_point: int = 0
    output_scale: float = 0.0
    output_zero_point: int = 0
    arena_bytes: int = 0
    flash_data_bytes: int = 0
    sram_bytes: int = 0
    flash_bytes: int = 0
    nv_bytes: int = 0
    link_ram_bytes: int = 0
    trainable_bytes: int = 0
    num_params: int = 0
    steps: int = 0
    loaded_generation: int = 0
    mode: int = 0
    simd_kind: str = "none"        # the board's SIMD: none, dsp, helium
    reply_ring: int = 0
    max_reply: int = 0
    key_id: str = ""
    spare_bytes: int = 0
    # training builds: the optimizer now, and what the update keeps
    # (trainable_bytes = param_bytes + momentum_bytes + update_extra_bytes)
    lr: float = 0.0
    momentum: float = 0.0
    weight_decay: float = 0.0
    update_mode: str = ""
    update_extra_bytes: int = 0
    momentum_bytes: int = 0
    param_bytes: int = 0

    @property
    def simd(self) -> bool:
        return self.simd_kind not in ("", "none")

    @property
    def trainable(self) -> bool:
        return bool(self.capabilities & P.CAP_TRAIN)

    @property
    def input_size(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output_size(self) -> int:
        return int(np.prod(self.output_shape))

    @property
    def input_bytes(self) -> int:
        return self.input_size * (1 if self.input_dtype == P.DTYPE_S8 else 4)

    def report(self) -> dict:
        """The description for people (describe, JSON): codes as names (dtypes, mode,
        capabilities); an inference-only device has no optimizer fields."""
        data = dataclasses.asdict(self)
        data.update(input_dtype=_dtype_name(self.input_dtype), output_dtype=_dtype_name(self.output_dtype),
                    mode=P.MODE_NAMES.get(self.mode, f"mode {self.mode}"),
                    capabilities=[n for bit, n in P.CAPABILITY_NAMES.items() if self.capabilities & bit],
                    trainable=self.trainable, simd=self.simd)
        if not self.trainable:
            for k in TRAINING_FIELDS:
                data.pop(k)
        return data

    @classmethod
    def parse(cls, blob: bytes) -> "Description":
        rec = P.parse_tlv(blob)
        if "simd" in rec:
            rec["simd_kind"] = rec.pop("simd")
        if "key_id" in rec:
            rec["key_id"] = rec["key_id"].hex()
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in rec.items() if k in names})


TRAINING_FIELDS = ("lr", "momentum", "weight_decay", "update_mode", "update_extra_bytes",
                   "momentum_bytes", "param_bytes", "trainable_bytes", "num_params", "spare_bytes")


@dataclass(frozen=True)
class InferResult:
    predicted: int
    outputs: np.ndarray
    work: int              # device work units spent (Description.work_unit)


@dataclass(frozen=True)
class TrainResult:
    loss: float            # NaN when only evaluated (or rolled back on a non-finite loss)
    predicted: int
    correct: bool
    mode: int              # the device's mode when it ran
    steps: int             # the device's step count after this sample
    work: int              # this sample's share of its request's work
    evaluated: bool = False
    rolled_back: bool = False


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
    rolled_back: int = 0
    refused_nonfinite: int = 0

    @classmethod
    def parse(cls, p: bytes) -> "Stats":
        return cls(*P.LAYOUT["GET_STATS_REPLY"].unpack(p))


@dataclass(frozen=True)
class StoreInfo:
    generation: int
    steps: int
    data_bytes: int
    data_crc: int
    slot: int

    @classmethod
    def parse(cls, p: bytes) -> "StoreInfo":
        return cls(*P.LAYOUT["STORE_INFO"].unpack(p))


@dataclass(frozen=True)
class CommitInfo:
    total: int
    crc: int
    staging: int           # P.STAGING_RAM or P.STAGING_NV
    generation: int        # NV staging: the generation the commit saved (0 for RAM)


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


LINK_STAT_NAMES = P.LINK_STAT_NAMES
DROPPED_FRAME_STATS = ("crc_errors", "too_long", "malformed", "bad_version")


def dropped_frames(device_counters: dict[str, int]) -> int:
    """Frames the device received damaged and dropped (from Link.device_counters())."""
    return sum(device_counters[k] for k in DROPPED_FRAME_STATS)


# ---- samples and parameter values -------------------------------------------------------

DTYPE_LIMITS = {P.DTYPE_S8: (-128, 127), P.DTYPE_S32: (-2**31, 2**31 - 1)}
F32_MAX = float(np.finfo(np.float32).max)


def param_bytes(name: str, values, dtype: int, nbytes: int) -> bytes:
    """A parameter's values as the device's bytes; refuses values its type cannot hold
    (out of range, non-integral for an integer type, non-finite), naming the parameter."""
    a = np.asarray(values)
    if a.dtype.kind not in "biuf":
        raise TinyTrainError(f"parameter {name!r}: values of type {a.dtype} are not numbers")
    if a.dtype.kind == "f" and not np.all(np.isfinite(a)):
        raise TinyTrainError(f"parameter {name!r}: {int(np.sum(~np.isfinite(a)))} values are NaN or infinite")
    if dtype in DTYPE_LIMITS:
        lo, hi = DTYPE_LIMITS[dtype]
        if a.dtype.kind == "f" and np.any(a != np.round(a)):
            raise TinyTrainError(f"parameter {name!r} is {_dtype_name(dtype)}: "
                                 f"{int(np.sum(a != np.round(a)))} values are not whole numbers")
        if a.size and (a.min() < lo or a.max() > hi):
            bad = a[(a < lo) | (a > hi)]
            raise TinyTrainError(f"parameter {name!r} is {_dtype_name(dtype)}: {bad.size} values are outside "
                                 f"[{lo}, {hi}] (e.g. {bad.flat[0]})")
    elif dtype == P.DTYPE_F32:
        if a.size and a.dtype.kind in "iu" and np.any(np.abs(a.astype(np.float64)) > 2**24):
            raise TinyTrainError(f"parameter {name!r} is float32: integers beyond 2**24 lose digits")
        if a.size and np.max(np.abs(a.astype(np.float64))) > F32_MAX:
            raise TinyTrainError(f"parameter {name!r} is float32: values beyond {F32_MAX:.3g}")
    out = np.ascontiguousarray(a, dtype=P.DTYPE_NUMPY.get(dtype, "u1")).tobytes()
    if len(out) != nbytes:
        raise TinyTrainError(f"parameter {name!r}: {len(out)} bytes, expected {nbytes}")
    return out


def _dtype_name(dtype: int) -> str:
    return P.DTYPE_NAMES.get(dtype, f"dtype {dtype}")


# ---- the request engine ------------------------------------------------------------------

@dataclass(eq=False)
class Request:
    """One request; `reply` is set once its reply (or executed-error reply) arrived."""
    type: int
    seq: int
    payload: bytes
    frame: bytes
    timeout: float         # first wait for the reply; doubled on every retry
    counter: int = 0       # its number in the authenticated session (0: untagged)
    units: int = 1         # samples it carries (TRAIN): the device's compute time scales with it
    deadline: float = 0.0
    tries: int = 0
    busy: bool = False
    busy_since: float = 0.0        # when its BUSY notice arrived
    reply: P.Frame | None = None
    reply_payload: bytes = b""     # the reply's payload without its tag

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
    device_bad_tags: int = 0      # the device reported a request whose tag was wrong
    bad_tags: int = 0             # replies whose tag was wrong (forged or for another session)
    naks: int = 0                 # out-of-sequence notices from the device
    timeouts: int = 0
    busy: int = 0                 # BUSY notices (a long request started)
    retransmissions: int = 0      # request frames sent again
    duplicate_replies: int = 0    # replies to requests already answered
    unexpected: int = 0           # valid frames that match no request

    @property
    def bad_frames(self) -> int:
        return self.crc_errors + self.malformed + self.too_long


def _hmac(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


class Link:
    """A session with one device over a pyserial port (see Link.open).

    key: the device's 32-byte key; None looks it up in this host's key store by the key id
    HELLO reports (tinytrain.keystore). Without a key the session stays unauthenticated:
    reads work on an open build, writes are refused (DeviceError "auth")."""

    def __init__(self, port, *, timeout: float = 0.5, max_backoff: float = 30.0,
                 retries: int = 10, window: int = 4, poll_interval: float = 0.01,
                 first_seq: int | None = None, key: bytes | None = None, authenticate: bool = True,
                 batch: int | None = None):
        self.port = port
        self.timeout = timeout
        self.max_backoff = max_backoff
        self.retries = retries
        self.poll_interval = poll_interval
        self.counters = LinkCounters()
        self.window = max(1, window)
        self.max_payload = 256                       # until HELLO tells the device's limits
        self.max_reply = 128
        self.key = key
        self.key_id = b""
        self.hello_flags = 0
        self.authenticated = False
        self._authenticate = authenticate
        self.max_batch = batch                       # samples per TRAIN request (None: all that fit)
        self._session_key: bytes | None = None
        self._counter = 0
        self._lock = None
        self._splitter = P.FrameSplitter(cobs.max_encoded_size(P.HEADER_BYTES + P.MAX_PAYLOAD_LIMIT + 4))
        self._queue: deque[Request] = deque()        # submitted, not yet sent
        self._inflight: deque[Request] = deque()     # sent, in sequence order
        self._next_seq = random.randrange(0x10000) if first_seq is None else first_seq & 0xFFFF
        self._last_go_back = -1e9
        self._compute_time: dict[int, float] = {}    # per request type: BUSY-to-reply, averaged
        self._description: Description | None = None
        self.hello()

    @classmethod
    def open(cls, url: str, baudrate: int = 115200, *, exclusive: bool = True, **kwargs) -> "Link":
        """Opens a serial URL: a device path, "socket://host:port", "rfc2217://"...
        exclusive: take the port's lock first (tinytrain.portlock); a port another process
        holds raises PortBusyError naming that process."""
        import serial
        from .portlock import PortLock
        lock = PortLock(url).acquire() if exclusive else None
        try:
            # A device path (not a URL like socket://): also an exclusive open of the tty.
            extra = {"exclusive": True} if exclusive and "://" not in url else {}
            try:
                port = serial.serial_for_url(url, baudrate=baudrate, timeout=0, **extra)
            except (serial.SerialException, ValueError) as e:
                raise LinkError(f"cannot open {url}: {e}") from None
            try:
                link = cls(port, **kwargs)
            except BaseException:
                port.close()
                raise
        except BaseException:
            if lock:
                lock.release()
            raise
        link._lock = lock
        return link

    def close(self) -> None:
        try:
            self.port.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- low level -------------------------------------------------------------------------

    @property
    def payload_room(self) -> int:
        """Request payload bytes available to a message (the tag takes its share)."""
        return self.max_payload - (P.TAG_BYTES if self._session_key else 0)

    @property
    def reply_room(self) -> int:
        return self.max_reply - (P.TAG_BYTES if self._session_key else 0)

    def submit(self, type_: int, payload: bytes = b"", units: int = 1) -> Request:
        """Queues a request; it is sent as soon as the window allows. In a session it is
        tagged (HELLO and AUTH never are)."""
        tagged = self._session_key is not None and type_ not in (P.HELLO, P.AUTH)
        if len(payload) > (self.payload_room if tagged else self.max_payload):
            raise TinyTrainError(f"payload of {len(payload)} bytes exceeds the device's "
                                 f"maximum of {self.payload_room if tagged else self.max_payload}")
        seq = self._next_seq
        self._next_seq = (seq + 1) & 0xFFFF
        counter = 0
        tagger = None
        if tagged:
            self._counter += 1
            counter = self._counter
            tagger = self._tagger(0, counter)
        req = Request(type_, seq, payload, P.encode_frame(type_, seq, payload, tagger=tagger),
                      self.timeout, counter, units)
        self._queue.append(req)
        self._pump(block=False)
        return req

    def _tagger(self, direction: int, counter: int):
        key = self._session_key
        return lambda head: _hmac(key, bytes([direction]), struct.pack("<I", counter), head)[:P.TAG_BYTES]

    def wait(self, req: Request) -> bytes:
        """Waits for req's reply; returns its payload or raises DeviceError / LinkError."""
        while not req.done:
            self._pump(block=True)
        f = req.reply
        if f.type == P.ERROR:
            code, _, detail = P.LAYOUT["ERROR"].unpack_from(req.reply_payload)
            hint = ""
            if code == P.ERR_AUTH and req.type != P.AUTH:
                hint = self._auth_hint()
            raise DeviceError(req.name, code, detail, hint)
        return req.reply_payload

    def _auth_hint(self) -> str:
        kid = self.key_id.hex()
        if self.key is None:
            return (f"this request needs an authenticated session, and this host has no key for "
                    f"device {kid} (tinytrain key add PROJECT)")
        return f"this request needs an authenticated session with device {kid}"

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
        self._retire()              # first: a request that just became the oldest gets its time
        self._check_timeout()

    def _send_ready(self) -> None:
        while self._queue and len(self._inflight) < self.window:
            req = self._queue.popleft()
            self._transmit(req)
            self._inflight.append(req)

    def _transmit(self, req: Request, keep_busy: bool = False) -> None:
        req.tries += 1
        if req.tries > self.retries + 1:
            extra = ""
            if self.counters.device_bad_tags:
                extra = f" (the device rejected {self.counters.device_bad_tags} tags: a wrong key?)"
            raise LinkError(f"no valid reply to {req.name} (seq {req.seq}) after "
                            f"{self.retries} retries{extra}")
        # Exponential backoff: a device busy with a long step is probed, not flooded; and not
        # before the time such a request took so far (a batch of slow steps).
        base = max(req.timeout, self._expected_compute(req)) if keep_busy else req.timeout
        backoff = min(base * 2 ** (req.tries - 1), max(base, self.max_backoff))
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
                req.busy_since = time.monotonic()
                req.deadline = max(req.deadline, req.busy_since + self._expected_compute(req))
                self._expedite_before(req)
            return
        if f.type == P.ERROR and len(f.payload) == P.LAYOUT["ERROR"].size:
            code, rtype, detail = P.LAYOUT["ERROR"].unpack(f.payload)
            if code in (P.ERR_CRC, P.ERR_MALFORMED, P.ERR_TOO_LONG):
                self.counters.device_dropped += 1
                return
            if code == P.ERR_BAD_TAG:
                # Advisory, like a CRC notice (it may be about an injected frame): the
                # request is resent on its timeout and answered if it was ours.
                self.counters.device_bad_tags += 1
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
        payload = f.payload
        if req.counter:
            # A tagged request gets a tagged reply: anything else is not the device's.
            tag = payload[-P.TAG_BYTES:]
            want = self._tagger(1, req.counter)(f.body[:len(f.body) - P.CRC_BYTES - P.TAG_BYTES])
            if len(payload) < P.TAG_BYTES or not hmac.compare_digest(tag, want):
                self.counters.bad_tags += 1
                return
            payload = payload[:-P.TAG_BYTES]
        if f.type == P.ERROR:
            ok_type = len(payload) == P.LAYOUT["ERROR"].size and payload[1] == req.type
        else:
            ok_type = f.type == (req.type | P.REPLY)
        if not ok_type:
            self.counters.unexpected += 1
            return
        req.reply = f
        req.reply_payload = payload
        if req.busy:
            took = (time.monotonic() - req.busy_since) / req.units
            prev = self._compute_time.get(req.type)
            self._compute_time[req.type] = took if prev is None else 0.8 * prev + 0.2 * took
        self._expedite_before(req)

    def _expected_compute(self, req: Request) -> float:
        """How long a request the device started should take: 2.5 times what such requests
        took so far per sample (0 before the first), so slow steps are not probed early."""
        return 2.5 * self._compute_time.get(req.type, 0.0) * req.units

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
        """(Re)starts the session: learns the device's limits and, with its key, authenticates."""
        self.drain()
        self._session_key = None
        self.authenticated = False
        self._counter = 0
        h = P.LAYOUT["HELLO_REPLY"]
        p = self.request(P.HELLO)
        if len(p) < h.size:
            version = struct.unpack_from("<H", p)[0] if len(p) >= 2 else 0
            raise LinkError(f"the device speaks protocol version {version}, this host {P.VERSION}")
        version, max_payload, max_reply, ring, flags, challenge, kid = h.unpack_from(p)
        if version != P.VERSION:
            raise LinkError(f"the device speaks protocol version {version}, this host {P.VERSION}")
        self.max_payload, self.max_reply, self.hello_flags, self.key_id = max_payload, max_reply, flags, kid
        self._splitter.max_encoded = cobs.max_encoded_size(P.HEADER_BYTES + max_payload + P.CRC_BYTES)
        self.window = max(1, min(self.window, ring))
        if self.key is None:
            from . import keystore
            self.key = keystore.lookup(kid)
        if self.key is not None and self._authenticate and flags & P.HELLO_AUTH_READY:
            self._auth(challenge)

    def _auth(self, challenge: bytes) -> None:
        from .keystore import key_id
        if key_id(self.key) != self.key_id:
            raise LinkError(f"the key given is not device {self.key_id.hex()}'s (it is {key_id(self.key).hex()})")
        host_nonce = os.urandom(P.NONCE_BYTES)
        mix = challenge + host_nonce
        proof = _hmac(self.key, b"tinytrain v2 host", mix)[:P.TAG_BYTES]
        try:
            reply = self.request(P.AUTH, host_nonce + proof)
        except DeviceError as e:
            raise LinkError(f"device {self.key_id.hex()} refused this host's key ({e.name})") from None
        if not hmac.compare_digest(reply[:P.TAG_BYTES], _hmac(self.key, b"tinytrain v2 device", mix)[:P.TAG_BYTES]):
            raise LinkError("the device's answer to AUTH is wrong: it does not hold the key")
        self._session_key = _hmac(self.key, b"tinytrain v2 session", mix)
        self._counter = 0
        self.authenticated = True

    @property
    def description(self) -> Description:
        if self._description is None:
            self._description = self.describe()
        return self._description

    def describe(self) -> Description:
        blob, total = b"", None
        while total is None or len(blob) < total:
            p = self.request(P.DESCRIBE, struct.pack("<H", len(blob)))
            total, offset = P.LAYOUT["DESCRIBE_REPLY"].unpack_from(p)
            page = p[P.LAYOUT["DESCRIBE_REPLY"].size:]
            if offset != len(blob) or (not page and len(blob) < total):
                raise LinkError("DESCRIBE pages do not fit together")
            blob += page
        self._description = Description.parse(blob)
        return self._description

    def echo(self, data: bytes) -> bytes:
        return self.request(P.ECHO, bytes(data))

    def device_counters(self) -> dict[str, int]:
        p = self.request(P.LINK_STATS)
        n = len(p) // 4
        return dict(zip(LINK_STAT_NAMES, struct.unpack(f"<{n}I", p[:4 * n])))

    # -- samples -----------------------------------------------------------------------------

    def sample_bytes(self, sample) -> bytes:
        """A sample as the device's input bytes; float samples are quantized for int8 inputs.
        NaN or infinite values, and values the input type cannot hold, are refused."""
        d = self.description
        x = np.asarray(sample)
        if x.size != d.input_size:
            raise TinyTrainError(f"sample has {x.size} elements, the model input "
                                 f"{d.input_shape} has {d.input_size}")
        if x.dtype.kind not in "biuf":
            raise TinyTrainError(f"sample of type {x.dtype} is not numbers")
        if x.dtype.kind == "f" and not np.all(np.isfinite(x)):
            raise TinyTrainError(f"sample holds {int(np.sum(~np.isfinite(x)))} NaN or infinite values")
        if d.input_dtype == P.DTYPE_S8:
            if x.dtype.kind == "f":
                # TFLite's QUANTIZE rounding (half away from zero), as the host build does.
                from .hostmodel import quantize_input
                return quantize_input(x, d.input_scale, d.input_zero_point).astype("<i1").tobytes()
            if x.dtype != np.int8 and x.size and (x.min() < -128 or x.max() > 127):
                raise TinyTrainError("int8 model input: sample values outside [-128, 127]")
            return x.astype("<i1").tobytes()
        if x.size and np.max(np.abs(x.astype(np.float64))) > F32_MAX:
            raise TinyTrainError(f"float32 model input: sample values beyond {F32_MAX:.3g}")
        return x.astype("<f4").tobytes()

    def _stage_input(self, data: bytes) -> None:
        step = self.payload_room - 4
        if self.description.input_dtype != P.DTYPE_S8:
            step -= step % 4                 # whole floats per chunk: the device checks each
        for off in range(0, len(data), step):
            self.submit(P.INPUT_WRITE, struct.pack("<I", off) + data[off:off + step])
            self._throttle()

    def _throttle(self) -> None:
        # Keep the host-side queue bounded when many samples are submitted at once.
        while len(self._queue) > 4 * self.window:
            self._pump(block=True)

    def infer(self, sample) -> InferResult:
        return self.infer_many([sample])[0]

    def infer_many(self, samples: Iterable) -> list[InferResult]:
        """Pipelined: every sample's INFER is queued without waiting. An output larger than
        one reply is read with OUTPUT_READs queued right behind its INFER, so the device
        answers them before the next sample (or its INPUT_WRITEs, which may share the arena
        with the output) runs."""
        d = self.description
        total = d.output_size * (1 if d.output_dtype == P.DTYPE_S8 else 4)
        head = P.LAYOUT["INFER_REPLY"].size
        first = min(total, self.reply_room - head)     # what INFER's own reply carries
        pending = []
        for s in samples:
            data = self.sample_bytes(s)
            if len(data) <= self.payload_room:
                req = self.submit(P.INFER, data)
            else:
                self._stage_input(data)
                req = self.submit(P.INFER)
            reads = [self.submit(P.OUTPUT_READ, struct.pack("<IH", off, min(self.reply_room, total - off)))
                     for off in range(first, total, self.reply_room)]
            pending.append((req, reads, first))
            self._throttle()
        return [self._infer_result(*p) for p in pending]

    def _infer_result(self, req: Request, reads: list[Request], first: int) -> InferResult:
        p = self.wait(req)
        head = P.LAYOUT["INFER_REPLY"]
        pred, work, total = head.unpack_from(p)
        out = bytes(p[head.size:])
        if len(out) != first:
            raise LinkError(f"INFER reply carries {len(out)} output bytes, {first} expected")
        out += b"".join(self.wait(r) for r in reads)
        if len(out) != total:
            raise LinkError(f"the device's output has {total} bytes, {len(out)} were read")
        dt = "<i1" if self.description.output_dtype == P.DTYPE_S8 else "<f4"
        outputs = np.frombuffer(out, dtype=dt).reshape(self.description.output_shape)
        return InferResult(pred, outputs, work)

    def batch_size(self) -> int:
        """Samples per TRAIN request: as many as fit the device's request and reply limits
        (0: a sample larger than a frame goes through INPUT_WRITE, one per request)."""
        rec = P.LAYOUT["TRAIN_RECORD"].size + self.description.input_bytes
        by_request = (self.payload_room - P.LAYOUT["TRAIN_REQUEST"].size) // rec
        by_reply = (self.reply_room - P.LAYOUT["TRAIN_REPLY"].size) // P.LAYOUT["TRAIN_RESULT"].size
        return max(0, min(by_request, by_reply, 255, self.max_batch or 255))

    def _check_labels(self, labels) -> list[int]:
        n = self.description.output_size
        out = []
        for i, y in enumerate(labels):
            if isinstance(y, (bool, np.bool_)) or not isinstance(y, (int, np.integer, float, np.floating)) \
                    or (isinstance(y, (float, np.floating)) and not float(y).is_integer()):
                raise TinyTrainError(f"label {i} ({y!r}) is not an integer")
            v = int(y)
            if not 0 <= v < n:
                raise TinyTrainError(f"label {i} is {v}: the model has {n} classes (0..{n - 1})")
            out.append(v)
        return out

    def train(self, sample, label: int) -> TrainResult:
        return self.train_many([sample], [label])[0]

    def train_many(self, samples: Iterable, labels: Sequence[int], *, evaluate: bool = False) -> list[TrainResult]:
        """Trains on the samples in order (evaluate=True: forward passes only, nothing
        learned), batched into TRAIN requests and pipelined. Every sample and label is
        checked before the first is sent."""
        samples = list(samples)
        labels = self._check_labels(labels)
        if len(samples) != len(labels):
            raise TinyTrainError(f"{len(samples)} samples but {len(labels)} labels")
        data = [self.sample_bytes(s) for s in samples]
        flags = P.TRAIN_EVAL if evaluate else 0
        batch = self.batch_size()
        reqs = []
        if batch == 0:
            for blob, y in zip(data, labels):
                self._stage_input(blob)
                reqs.append((self.submit(P.TRAIN, struct.pack("<BBi", flags, 1, y)), 1))
                self._throttle()
        else:
            for i in range(0, len(data), batch):
                chunk = range(i, min(i + batch, len(data)))
                payload = struct.pack("<BB", flags, len(chunk)) + b"".join(
                    struct.pack("<i", labels[j]) + data[j] for j in chunk)
                reqs.append((self.submit(P.TRAIN, payload, units=len(chunk)), len(chunk)))
                self._throttle()
        out: list[TrainResult] = []
        for req, n in reqs:
            out += self._train_results(self.wait(req), n)
        return out

    @staticmethod
    def _train_results(p: bytes, n: int) -> list[TrainResult]:
        head, res = P.LAYOUT["TRAIN_REPLY"], P.LAYOUT["TRAIN_RESULT"]
        steps, work, count, mode = head.unpack_from(p)
        if count != n or len(p) != head.size + count * res.size:
            raise LinkError(f"TRAIN reply holds {count} results for {n} samples")
        rows = [res.unpack_from(p, head.size + i * res.size) for i in range(count)]
        # The reply has the step count after its last sample: count back to each sample's.
        after, out = steps, []
        for i in range(count - 1, -1, -1):
            loss, pred, fl = rows[i]
            share = work // count + (1 if i < work % count else 0)
            out.append(TrainResult(loss, pred, bool(fl & P.RESULT_CORRECT), mode, after, share,
                                   bool(fl & P.RESULT_EVAL), bool(fl & P.RESULT_ROLLED_BACK)))
            if not fl & (P.RESULT_EVAL | P.RESULT_ROLLED_BACK):
                after -= 1
        return out[::-1]

    def evaluate(self, samples: Iterable, labels: Sequence[int]) -> EvalResult:
        """Forward passes on the device (nothing learned); the device's mode is untouched."""
        results = self.train_many(samples, labels, evaluate=True)
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
        for name, v in (("learning rate", lr), ("momentum", momentum), ("weight decay", weight_decay)):
            if not math.isfinite(v) or abs(v) > F32_MAX:
                raise TinyTrainError(f"{name} {v} is not a finite float32")
        return P.LAYOUT["HPARAMS"].unpack(self.request(P.SET_HPARAMS,
                                                       P.LAYOUT["HPARAMS"].pack(lr, momentum, weight_decay)))

    def get_hparams(self) -> tuple[float, float, float]:
        return P.LAYOUT["HPARAMS"].unpack(self.request(P.GET_HPARAMS))

    # -- trainable parameters ---------------------------------------------------------------

    def param_info(self) -> list[ParamInfo]:
        reqs = [self.submit(P.PARAM_INFO, struct.pack("<I", i))
                for i in range(self.description.num_params)]
        head = P.LAYOUT["PARAM_INFO_REPLY"]
        out = []
        for r in reqs:
            p = self.wait(r)
            nbytes, offset, dtype, name_len = head.unpack_from(p)
            out.append(ParamInfo(p[head.size:head.size + name_len].decode("ascii", "replace"),
                                 nbytes, offset, dtype))
        return out

    def weights_crc(self) -> tuple[int, int]:
        """(total bytes, CRC-32) of the concatenated trainable parameters on the device."""
        return P.LAYOUT["WEIGHTS_CRC_REPLY"].unpack(self.request(P.WEIGHTS_CRC))

    def read_weights(self) -> bytes:
        """All trainable parameters, concatenated in order, checked against the device's CRC."""
        crc_req = self.submit(P.WEIGHTS_CRC)
        total, crc = P.LAYOUT["WEIGHTS_CRC_REPLY"].unpack(self.wait(crc_req))
        room = self.reply_room
        reqs = [self.submit(P.WEIGHTS_READ, struct.pack("<IH", off, min(room, total - off)))
                for off in range(0, total, room)]
        blob = b"".join(self.wait(r) for r in reqs)
        if len(blob) != total or zlib.crc32(blob) != crc:
            raise LinkError("weights read back do not match the device's CRC")
        return blob

    def write_weights(self, blob: bytes, *, chunk: int | None = None) -> CommitInfo:
        """Replaces all trainable parameters as one transaction: staged on the device,
        checked (size, CRC, model hash, finite floats) and committed at once, or not at all.
        chunk: bytes per WEIGHTS_WRITE (default: as many as fit a frame)."""
        d = self.description
        total, _ = self.weights_crc()
        if len(blob) != total:
            raise TinyTrainError(f"weights blob has {len(blob)} bytes, the device's "
                                 f"trainable parameters {total}")
        hash16 = d.model_hash.encode("ascii")[:16].ljust(16, b"\x00")
        self.request(P.WEIGHTS_BEGIN, P.LAYOUT["WEIGHTS_BEGIN_REQUEST"].pack(total, zlib.crc32(blob), hash16))
        step = min(chunk or self.payload_room, self.payload_room - 4)
        reqs = []
        for off in range(0, total, step):
            reqs.append(self.submit(P.WEIGHTS_WRITE, struct.pack("<I", off) + blob[off:off + step]))
            self._throttle()
        for r in reqs:
            self.wait(r)
        total, crc, staging, generation = P.LAYOUT["WEIGHTS_COMMIT_REPLY"].unpack(self.request(P.WEIGHTS_COMMIT))
        if crc != zlib.crc32(blob):
            raise LinkError("the device committed weights whose CRC is not the blob's")
        return CommitInfo(total, crc, staging, generation)

    def abort_weights(self) -> None:
        self.request(P.WEIGHTS_ABORT)

    def read_params(self, as_float32: bool = False) -> dict[str, np.ndarray]:
        """The trainable parameters by name (flat arrays in the device's dtype; half ones
        widened to float32, exactly, with as_float32)."""
        from .paramcast import from_device
        infos = self.param_info()
        blob = self.read_weights()
        return {i.name: from_device(blob[i.offset:i.offset + i.bytes], P.DTYPE_NUMPY.get(i.dtype, "u1"), as_float32)
                for i in infos}

    def params_blob(self, params: dict[str, np.ndarray]) -> bytes:
        """The device's bytes of params (by name), every value checked against its type (half
        parameters: float16, or float arrays whose values are all exactly halves)."""
        from .paramcast import to_device
        infos = self.param_info()
        missing = [i.name for i in infos if i.name not in params]
        if missing:
            raise TinyTrainError(f"write_params: missing parameters {missing}")
        parts = []
        for i in infos:
            np_dtype = P.DTYPE_NUMPY.get(i.dtype, "u1")
            if np.dtype(np_dtype) == np.dtype("<f2"):
                b = to_device(i.name, params[i.name], np_dtype)      # exact or refused
                if len(b) != i.bytes:
                    raise TinyTrainError(f"parameter {i.name!r}: {len(b)} bytes, expected {i.bytes}")
            else:
                b = param_bytes(i.name, params[i.name], i.dtype, i.bytes)
            parts.append(b)
        return b"".join(parts)

    def write_params(self, params: dict[str, np.ndarray]) -> CommitInfo:
        return self.write_weights(self.params_blob(params))

    def save_weights(self) -> StoreInfo:
        """Saves the parameters to the device's non-volatile store (the older A/B slot)."""
        return StoreInfo.parse(self.request(P.WEIGHTS_SAVE))

    def load_weights(self) -> StoreInfo:
        """Loads the newest valid saved parameters of this model (DeviceError no_saved if none)."""
        return StoreInfo.parse(self.request(P.WEIGHTS_LOAD))
