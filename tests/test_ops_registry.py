"""The op registry: every unit is complete enough to document, docs/ops.md is generated from
it and current, and no generic module asks for an op type by name."""
import re

from tinytrain.ops import catalog, op_types, unit, units

from conftest import ROOT


def test_docs_ops_md_is_generated_from_the_registry():
    assert (ROOT / "docs" / "ops.md").read_text() == catalog.markdown(), \
        "docs/ops.md is stale: python -m tinytrain.ops.catalog > docs/ops.md"


def test_every_unit_says_what_it_is_and_is_found_by_its_type():
    for u in units():
        assert u.type and u.summary, type(u).__name__
        assert unit(u.type) is u
    assert len(set(op_types())) == len(op_types())


def test_generic_modules_do_not_dispatch_on_op_types():
    """What an op is lives in its unit: outside tinytrain/ops/ no module compares op.type with
    a literal op name (the frontends' non-op layers and passes' own patterns aside)."""
    names = "|".join(re.escape(t) for t in op_types())
    pattern = re.compile(rf"\.type\s*(==|!=|in)\s*[\(\[]?\s*\"({names})\"")
    offenders = []
    for path in (ROOT / "tinytrain").rglob("*.py"):
        rel = path.relative_to(ROOT / "tinytrain")
        if rel.parts[0] in ("ops", "passes"):
            continue
        for i, line in enumerate(path.read_text().splitlines(), 1):
            if pattern.search(line):
                offenders.append(f"{rel}:{i}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
