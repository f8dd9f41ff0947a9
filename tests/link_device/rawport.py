"""Frames by hand over a device's socket, to send what a correct host never would: damaged,
oversized, replayed, forged or unauthenticated frames. `auth(key)` starts an authenticated
session the way tinytrain.link does (HELLO, AUTH), after which `frame()` tags requests."""
from __future__ import annotations

import hashlib
import hmac
import os
import socket
import struct

from tinytrain import protocol as P


def _hmac(key: bytes, *parts: bytes) -> bytes:
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


class RawPort:
    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.settimeout(2.0)
        self.splitter = P.FrameSplitter(1 << 17)
        self.pending = []
        self.busy = []          # seqs of BUSY notices seen (skipped by reply())
        self.sent = []          # every frame sent, as bytes (to replay them)
        self.session_key = None
        self.counter = 0

    def send(self, raw: bytes):
        self.sent.append(raw)
        self.sock.sendall(raw)

    def tagger(self, direction: int, counter: int):
        key = self.session_key
        return lambda head: _hmac(key, bytes([direction]), struct.pack("<I", counter), head)[:P.TAG_BYTES]

    def encode(self, type_, seq, payload=b"", tagged=None, counter=None) -> bytes:
        """A frame; in a session tagged (with the next counter) unless tagged=False."""
        tagged = self.session_key is not None if tagged is None else tagged
        tagger = None
        if tagged and type_ not in (P.HELLO, P.AUTH):
            if counter is None:
                self.counter += 1
                counter = self.counter
            tagger = self.tagger(0, counter)
        return P.encode_frame(type_, seq, payload, tagger=tagger)

    def frame(self, type_, seq, payload=b"", **kw):
        self.send(self.encode(type_, seq, payload, **kw))

    def reply(self) -> P.Frame:
        return P.parse_frame(self.raw_reply())

    def payload(self, f: P.Frame) -> bytes:
        """A reply's payload without its tag (checked) in a session."""
        if self.session_key is None or f.type == P.BUSY or (f.type == P.ERROR and len(f.payload) == 4):
            return f.payload
        return f.payload[:-P.TAG_BYTES]

    def raw_reply(self) -> bytes:
        while True:
            while not self.pending:
                self.pending += self.splitter.feed(self.sock.recv(65536))
            raw = self.pending.pop(0)
            f = P.parse_frame(raw)
            if f.type != P.BUSY:
                return raw
            self.busy.append(f.seq)

    def error(self, f: P.Frame):
        assert f.type == P.ERROR, f
        return P.LAYOUT["ERROR"].unpack_from(f.payload)

    def hello(self, seq: int) -> tuple:
        self.session_key = None
        self.counter = 0
        self.frame(P.HELLO, seq)
        f = self.reply()
        assert f.type == P.HELLO | P.REPLY, f
        self.hello_reply = P.LAYOUT["HELLO_REPLY"].unpack_from(f.payload)
        return self.hello_reply

    def auth(self, key: bytes, seq: int) -> None:
        """HELLO at seq, AUTH at seq + 1: an authenticated session."""
        challenge = self.hello(seq)[5]
        nonce = os.urandom(P.NONCE_BYTES)
        proof = _hmac(key, b"tinytrain v2 host", challenge, nonce)[:P.TAG_BYTES]
        self.frame(P.AUTH, seq + 1, nonce + proof)
        f = self.reply()
        assert f.type == P.AUTH | P.REPLY, f
        assert f.payload == _hmac(key, b"tinytrain v2 device", challenge, nonce)[:P.TAG_BYTES]
        self.session_key = _hmac(key, b"tinytrain v2 session", challenge, nonce)
        self.counter = 0

    def close(self):
        self.sock.close()


def train_payload(samples, labels, flags: int = 0) -> bytes:
    """TRAIN's payload: flags, count, then (label, sample bytes) per sample."""
    return struct.pack("<BB", flags, len(labels)) + b"".join(
        struct.pack("<i", int(y)) + bytes(x) for x, y in zip(samples, labels))


def counters(raw: RawPort, seq: int) -> dict:
    raw.frame(P.LINK_STATS, seq)
    p = raw.payload(raw.reply())
    return dict(zip(P.LINK_STAT_NAMES, struct.unpack(f"<{len(P.LINK_STAT_NAMES)}I", p)))
