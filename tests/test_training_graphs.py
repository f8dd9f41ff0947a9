"""The test graph builders of tests/graphs.py make valid float graphs."""
from graphs import MODELS


def test_builders_make_valid_graphs():
    for f in MODELS.values():
        g = f()
        assert g.validate() is g and not g.is_quantized
