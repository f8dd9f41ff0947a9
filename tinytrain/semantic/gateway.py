"""`tinytrain serve`: the devices attached to this host as Web of Things Things over HTTP.

    GET  /things                           the TDs of every device (a JSON array)
    GET  /things/NAME                      one device's TD (application/td+json)
    GET  /things/NAME/properties/P         read a property            (open)
    PUT  /things/NAME/properties/P         write a property           (bearer token)
    POST /things/NAME/actions/A            invoke an action           (bearer token)
    GET  /things/NAME/events/E             subscribe: long polling    (open)
    GET  /things/NAME/events/E?stream=sse  subscribe: server-sent events (open)
    GET  /models/BOARD.tm.jsonld           a board's Thing Model
    GET  /vocabulary.ttl                   the tinytrain vocabulary

The forms of the TDs are these URLs (td.py). Security is the TDs' `bearer_sc`: every
request that changes a device needs `Authorization: Bearer TOKEN` and is refused with 401
otherwise; reading is open. One lock per device: a port has one owner, requests to one
device run one after the other (a long `train` holds it until done).
"""
from __future__ import annotations

import hmac
import json
import queue
import secrets
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..errors import TinyTrainError
from ..link import LinkError
from . import vocabulary as V
from .device import Device
from .td import thing_description, thing_name, model_value
from .tm import thing_model

TD_MEDIA = "application/td+json"
LONGPOLL_SECONDS = 300          # a long poll with no event ends with 204 after this long
SSE_KEEPALIVE_SECONDS = 15
MAX_BODY = 64 * 1024 * 1024


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Subscribers:
    """Event listeners of one device: one queue per waiting client."""
    queues: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self) -> queue.Queue:
        q: queue.Queue = queue.Queue()
        with self.lock:
            self.queues.append(q)
        return q

    def remove(self, q: queue.Queue) -> None:
        with self.lock:
            if q in self.queues:
                self.queues.remove(q)

    def publish(self, event: str, data: dict) -> None:
        with self.lock:
            for q in self.queues:
                q.put((event, data))


class Thing:
    """One device the gateway serves: its port, its open link, its TD, its lock."""

    def __init__(self, url: str, gateway_url: str, project: dict | None = None):
        self.url = url
        self.project = project
        self.lock = threading.Lock()
        self.events = Subscribers()
        self.device = Device.open(url)
        self.gateway_url = gateway_url
        try:
            self.td = self.describe()
        except BaseException:
            self.device.close()
            raise
        self.name = thing_name(self.device.describe().board, self.td["id"])

    def describe(self) -> dict:
        self.td = thing_description(self.device.state(), gateway=self.gateway_url, project=self.project)
        return self.td

    def close(self) -> None:
        self.device.close()

    # what reading a property does, by name
    def read(self, prop: str):
        dev = self.device
        readers = {
            "model": lambda: model_value(dev.describe()),
            "statistics": dev.statistics,
            "linkCounters": dev.link_counters,
            "mode": lambda: dev.statistics()["mode"],
            "weightsCrc": dev.weights_crc,
            "weights": dev.weights,
            "learningRate": lambda: dev.hyperparameters()["learningRate"],
            "momentum": lambda: dev.hyperparameters()["momentum"],
            "weightDecay": lambda: dev.hyperparameters()["weightDecay"],
        }
        return readers[prop]()

    def write(self, prop: str, value) -> None:
        dev = self.device
        if prop == "mode":
            dev.set_mode(_expect(value, str, prop))
        elif prop in ("learningRate", "momentum", "weightDecay"):
            number = _expect(value, (int, float), prop)
            if number < 0 or (prop == "momentum" and number >= 1):
                raise HttpError(400, f"{prop}: {number} is out of range")
            dev.set_hyperparameters(**{prop: number})
        elif prop == "weights":
            dev.write_weights(_expect(value, dict, prop))
        else:
            raise HttpError(405, f"property {prop!r} is read-only")

    def invoke(self, action: str, args) -> object:
        dev = self.device
        args = args if args is not None else {}
        if not isinstance(args, dict):
            raise HttpError(400, f"the input of {action} is a JSON object")
        encoding = args.get("encoding", "real")
        if action == "infer":
            return dev.infer(_required(args, "samples", action), encoding)
        if action == "train":
            return dev.train(_required(args, "samples", action), _required(args, "labels", action), encoding,
                             on_chunk=lambda p: self.events.publish("trainingProgress", p))
        if action == "evaluate":
            return dev.evaluate(_required(args, "samples", action), _required(args, "labels", action), encoding)
        if action == "saveWeights":
            return dev.save_weights()
        if action == "loadWeights":
            return dev.load_weights()
        if action == "resetStatistics":
            dev.reset_statistics()
            return None
        raise HttpError(404, f"no action {action!r}")


def _expect(value, kind, name):
    if isinstance(value, bool) or not isinstance(value, kind):
        raise HttpError(400, f"{name}: wrong type of value {value!r}")
    return value


def _required(args: dict, key: str, action: str):
    if key not in args:
        raise HttpError(400, f"{action}: input needs {key!r}")
    return args[key]


class Gateway:
    """The HTTP server. `serve_forever()` blocks; `start()` serves from a thread (tests)."""

    def __init__(self, ports: list[str], *, host: str = "127.0.0.1", port: int = 8080, token: str,
                 projects: dict[str, dict] | None = None, public_url: str | None = None):
        if not token:
            raise TinyTrainError("the gateway needs a token")
        self.token = token
        self.server = ThreadingHTTPServer((host, port), _Handler)
        self.server.daemon_threads = True
        self.server.gateway = self
        bound_host, bound_port = self.server.server_address[:2]
        self.url = (public_url or f"http://{bound_host}:{bound_port}").rstrip("/")
        self.things: dict[str, Thing] = {}
        try:
            for url in ports:
                thing = Thing(url, self.url, (projects or {}).get(url))
                if thing.name in self.things:
                    raise TinyTrainError(f"{url} and {self.things[thing.name].url} are the same device")
                self.things[thing.name] = thing
        except BaseException:
            self.close()
            raise
        self._thread: threading.Thread | None = None
        self._closing = threading.Event()

    def authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer "):].strip().encode(), self.token.encode())

    def serve_forever(self) -> None:
        self.server.serve_forever(poll_interval=0.2)

    def start(self) -> "Gateway":
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=10)
        self.server.server_close()
        for thing in self.things.values():
            thing.close()

    def __enter__(self) -> "Gateway":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "tinytrain-gateway"

    def log_message(self, fmt, *args) -> None:   # quiet: the caller decides what to print
        pass

    @property
    def gw(self) -> Gateway:
        return self.server.gateway

    # --- plumbing --------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", ctype: str = "application/json", headers: dict | None = None):
        self.send_response(status)
        if body or status not in (204, 304):
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value, ctype: str = "application/json") -> None:
        self._send(status, json.dumps(value).encode(), ctype)

    def _raw_body(self) -> bytes:
        """The request body, sent with a Content-Length or chunked (node-wot streams it)."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(1024)
                try:
                    size = int(line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    raise HttpError(400, "malformed chunked body") from None
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass       # trailers
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise HttpError(413, "request too large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline(8)   # CRLF after the chunk
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_BODY:
            raise HttpError(413, "request too large")
        return self.rfile.read(n) if n else b""

    def _body(self):
        raw = self._raw_body()
        if not raw:
            return None
        try:
            return json.loads(raw)
        except json.JSONDecodeError as e:
            raise HttpError(400, f"the body is not JSON: {e}") from None

    def _route(self):
        path = urllib.parse.urlsplit(self.path)
        parts = [urllib.parse.unquote(p) for p in path.path.strip("/").split("/") if p]
        return parts, urllib.parse.parse_qs(path.query)

    def _thing(self, name: str) -> Thing:
        thing = self.gw.things.get(name)
        if thing is None:
            raise HttpError(404, f"no thing {name!r} here")
        return thing

    def _authorize(self) -> None:
        if not self.gw.authorized(self.headers.get("Authorization")):
            try:
                self._raw_body()       # read it anyway, so the connection stays usable
            except HttpError:
                self.close_connection = True
            raise HttpError(401, "this changes a device: it needs the gateway's bearer token")

    def _handle(self, method: str) -> None:
        try:
            parts, query = self._route()
            self._dispatch(method, parts, query)
        except HttpError as e:
            headers = {"WWW-Authenticate": 'Bearer realm="tinytrain"'} if e.status == 401 else None
            self._send(e.status, json.dumps({"error": str(e)}).encode(), headers=headers)
        except LinkError as e:       # the device stopped answering: not the client's fault
            self._send(502, json.dumps({"error": str(e)}).encode())
        except TinyTrainError as e:
            self._send(400, json.dumps({"error": str(e)}).encode())
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_POST(self) -> None:
        self._handle("POST")

    # --- routes ----------------------------------------------------------------------------
    def _dispatch(self, method: str, parts: list[str], query: dict) -> None:
        reading = method in ("GET", "HEAD")
        if parts == ["things"] and reading:
            return self._json(200, [t.td for t in self.gw.things.values()])
        if parts == ["vocabulary.ttl"] and reading:
            return self._send(200, V.turtle().encode(), "text/turtle")
        if len(parts) == 2 and parts[0] == "models" and parts[1].endswith(".tm.jsonld") and reading:
            board = parts[1][:-len(".tm.jsonld")]
            try:
                return self._json(200, thing_model(board), "application/tm+json")
            except TinyTrainError as e:
                raise HttpError(404, str(e)) from None
        if len(parts) >= 2 and parts[0] == "things":
            thing = self._thing(parts[1])
            if len(parts) == 2 and reading:
                with thing.lock:
                    td = thing.describe()
                return self._json(200, td, TD_MEDIA)
            if len(parts) == 4:
                kind, name = parts[2], parts[3]
                affordances = thing.td.get(kind, {})
                if name not in affordances:
                    raise HttpError(404, f"{thing.name} has no {kind[:-1]} {name!r}")
                if kind == "properties":
                    return self._property(thing, name, method)
                if kind == "actions" and method == "POST":
                    return self._action(thing, name)
                if kind == "events" and reading:
                    return self._event(thing, name, query, method)
        raise HttpError(404 if reading or method in ("PUT", "POST") else 405, f"no route {method} {self.path}")

    def _property(self, thing: Thing, name: str, method: str) -> None:
        if method in ("GET", "HEAD"):
            with thing.lock:
                value = thing.read(name)
            return self._json(200, value)
        if method == "PUT":
            self._authorize()
            if thing.td["properties"][name].get("readOnly"):
                raise HttpError(405, f"property {name!r} is read-only")
            value = self._body()
            with thing.lock:
                thing.write(name, value)
            return self._send(204)
        raise HttpError(405, f"{method} on a property")

    def _action(self, thing: Thing, name: str) -> None:
        self._authorize()
        args = self._body()
        with thing.lock:
            result = thing.invoke(name, args)
        if result is None:
            return self._send(204)
        return self._json(200, result)

    def _event(self, thing: Thing, name: str, query: dict, method: str) -> None:
        if method == "HEAD":      # node-wot's long-poll handshake
            return self._send(200, b"", "application/json")
        q = thing.events.add()
        try:
            if query.get("stream") == ["sse"]:
                return self._sse(q, name)
            deadline = time.monotonic() + LONGPOLL_SECONDS
            while not self.gw._closing.is_set():
                try:
                    event, data = q.get(timeout=min(1.0, max(0.0, deadline - time.monotonic())))
                except queue.Empty:
                    if time.monotonic() >= deadline:
                        return self._send(204)
                    continue
                if event == name:
                    return self._json(200, data)
            return self._send(503, b"")
        finally:
            thing.events.remove(q)

    def _sse(self, q: queue.Queue, name: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        self.wfile.write(b": tinytrain events\n\n")
        self.wfile.flush()
        last = time.monotonic()
        while not self.gw._closing.is_set():
            try:
                event, data = q.get(timeout=1.0)
            except queue.Empty:
                if time.monotonic() - last > SSE_KEEPALIVE_SECONDS:
                    self.wfile.write(b": keep-alive\n\n")
                    self.wfile.flush()
                    last = time.monotonic()
                continue
            if event == name:
                self.wfile.write(f"data: {json.dumps(data)}\n\n".encode())
                self.wfile.flush()
                last = time.monotonic()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def token_file_default() -> Path:
    import os
    return Path(os.environ.get("TINYTRAIN_HOME", Path.home() / ".cache" / "tinytrain")) / "gateway-token"


def read_or_create_token(path: Path) -> str:
    """The token in `path`; a new random one (file mode 0600) if there is none."""
    import os
    if path.is_file():
        token = path.read_text().strip()
        if token:
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = new_token()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token
