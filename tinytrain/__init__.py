"""tinytrain: compile neural networks, forward and backward, to C for on-device training."""

__version__ = "0.1.0"
