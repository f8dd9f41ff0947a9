"""Training compiler: update schemes, autodiff on the IR with sparse-update pruning,
quantization-aware scaling, in-place updates, the training memory plan, a numpy
simulation of one training step, and the C code of the step."""
from .scheme import Scheme, SchemeSpec, LayerUpdate, parse_scheme, bind_scheme

__all__ = ["Scheme", "SchemeSpec", "LayerUpdate", "parse_scheme", "bind_scheme"]
