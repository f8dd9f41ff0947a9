"""Keep TensorFlow quiet: everything it prints while tinytrain imports or converts a Keras
model goes to a log instead of the terminal.

TensorFlow writes from C++ straight to file descriptors 1 and 2 (absl's "All log messages
before absl::InitializeLog()", oneDNN notices, the converter's "fully_quantize: ..." line),
from Python with print() ("Saved artifact at ...", on stdout, which broke `--json`) and
with warnings ("Statistics for quantized inputs were expected ..."). Only a redirect of
the descriptors themselves catches the first kind, so the context manager below swaps
fds 1 and 2 for a temporary file; sys.stdout too (for prints where stdout is not fd 1,
as under click's test runner) and warnings are ignored. sys.stderr is left alone: logging
handlers created inside keep a reference to it, and its writes reach fd 2 anyway.
What was captured is kept for an error message when a conversion fails.

    with quiet_tensorflow() as log:
        import tensorflow as tf
        ...
    log.tail()     # the last lines TensorFlow printed
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings


class TfLog:
    def __init__(self):
        self._file = tempfile.TemporaryFile(mode="w+b")
        self._text = ""

    def fileno(self) -> int:
        return self._file.fileno()

    def _close(self) -> None:
        self._file.seek(0)
        self._text = self._file.read().decode("utf-8", "replace")
        self._file.close()

    def text(self) -> str:
        return self._text

    def tail(self, lines: int = 12) -> str:
        return "\n".join(self._text.strip().splitlines()[-lines:])


def _set_quiet_environment() -> None:
    # What TensorFlow reads at import: C++ logging below ERROR off. (oneDNN stays on: turning
    # it off would change TensorFlow's float numerics, not just its output.)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _redirect_fd(fd: int, target: int):
    try:
        saved = os.dup(fd)
    except OSError:           # no such descriptor (a closed stdout): nothing to protect
        yield
        return
    try:
        os.dup2(target, fd)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


@contextlib.contextmanager
def quiet_tensorflow():
    _set_quiet_environment()
    log = TfLog()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    text = open(log.fileno(), "w", encoding="utf-8", errors="replace", closefd=False)
    try:
        with _redirect_fd(1, log.fileno()), _redirect_fd(2, log.fileno()), \
                contextlib.redirect_stdout(text), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                yield log
            finally:
                text.flush()
                with contextlib.suppress(Exception):
                    sys.stderr.flush()      # what Python wrote to fd 2 lands in the log
    finally:
        text.close()
        log._close()
