"""Errors a user can cause. The CLI turns them into a clear message and exit code 2."""


class TinyTrainError(Exception):
    """Bad input: an unsupported op, a malformed model, a model that does not fit..."""


class UnsupportedError(TinyTrainError):
    """The model uses an op, attribute or data type the compiler does not support."""

    def __init__(self, layer: str, what: str):
        super().__init__(f"layer {layer!r}: unsupported {what}")
        self.layer = layer
        self.what = what
