"""tinytrain: compile neural networks, forward and backward, to C for on-device training.

    import tinytrain
    m = tinytrain.compile("model.tflite", scheme="last:2", board="mps2-an386")
"""

__version__ = "0.1.0"


def compile(model, **options):
    """Compile a model for a board (and its training step with scheme=...); see
    tinytrain.compiler.compile for the options. Returns a tinytrain.compiler.Compiled."""
    from .compiler import compile as _compile
    return _compile(model, **options)


__all__ = ["compile", "__version__"]
