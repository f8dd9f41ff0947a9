"""SHACL validation (pyshacl) of what the fleet registry is asked to register.

The shapes are the registry's own (shapes.ttl, beside this file); more shape files (e.g.
the W3C's td-validation.ttl) can be added. A document that violates a shape is refused
with the shape named: `Violation.shape` is the shape's prefixed name (tts:ModelHash) or,
for an anonymous property shape of another file, its node shape and path.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import TinyTrainError

SHAPES_FILE = Path(__file__).with_name("shapes.ttl")
_XSD_STRING = "http://www.w3.org/2001/XMLSchema#string"


@dataclass(frozen=True)
class Violation:
    shape: str           # the violated shape, by name
    focus: str           # the node that violates it
    path: str            # the property path, if any
    message: str

    def __str__(self) -> str:
        where = f" ({self.path})" if self.path else ""
        return f"{self.shape}: {self.message} [at {self.focus}{where}]"


class InvalidDocument(TinyTrainError):
    """A TD or TM that violates the registry's shapes; nothing of it was registered."""

    def __init__(self, name: str, violations: list[Violation]):
        self.violations = violations
        lines = "\n".join(f"  {v}" for v in violations[:20])
        more = f"\n  ... and {len(violations) - 20} more" if len(violations) > 20 else ""
        super().__init__(f"{name} violates {len({v.shape for v in violations})} shape(s) and was not "
                         f"registered:\n{lines}{more}")


def rdflib_graph(triples):
    """An rdflib Graph of pyoxigraph triples (pyshacl validates rdflib graphs)."""
    import pyoxigraph as ox
    import rdflib
    g = rdflib.Graph()
    cache: dict = {}

    def term(t):
        if isinstance(t, ox.NamedNode):
            u = cache.get(t.value)
            if u is None:
                u = cache[t.value] = rdflib.URIRef(t.value)
            return u
        if isinstance(t, ox.BlankNode):
            return rdflib.BNode(t.value)
        if t.language:
            return rdflib.Literal(t.value, lang=t.language)
        dt = t.datatype.value
        # rdflib tells "x" from "x"^^xsd:string; Turtle's "x" (in sh:in lists) is the former
        return rdflib.Literal(t.value) if dt == _XSD_STRING else rdflib.Literal(t.value, datatype=term(t.datatype))
    add = g.add
    for t in triples:
        add((term(t.subject), term(t.predicate), term(t.object)))
    return g


class Validator:
    """The registry's shapes (plus `extra` shape files), loaded once."""

    def __init__(self, extra: tuple[Path, ...] | list[Path] = ()):
        import rdflib
        self.shapes = rdflib.Graph()
        for path in (SHAPES_FILE, *extra):
            try:
                self.shapes.parse(str(path), format="turtle")
            except (OSError, SyntaxError, Exception) as e:   # rdflib raises assorted parser errors
                raise TinyTrainError(f"shapes file {path}: {e}") from None

    def _qname(self, node) -> str:
        import rdflib
        if isinstance(node, rdflib.URIRef):
            try:
                return self.shapes.namespace_manager.normalizeUri(node)
            except Exception:
                return str(node)
        return "[]"

    def _shape_name(self, report, shape) -> str:
        """Named shapes by their prefixed name; an anonymous property shape (the report holds
        a copy of it) by the named shapes that hold a property shape with its path."""
        import rdflib
        from rdflib.namespace import SH
        if isinstance(shape, rdflib.URIRef):
            return self._qname(shape)
        path = report.value(shape, SH.path)
        parents = sorted({self._qname(parent) for parent, ps in self.shapes.subject_objects(SH.property)
                          if isinstance(ps, rdflib.BNode) and path is not None
                          and self.shapes.value(ps, SH.path) == path})
        return f"{'|'.join(parents) or '[]'} (property {self._qname(path) if path is not None else '?'})"

    def violations(self, triples) -> list[Violation]:
        import pyshacl
        from rdflib.namespace import SH
        conforms, report, _ = pyshacl.validate(rdflib_graph(triples), shacl_graph=self.shapes,
                                               inference="none", advanced=False)
        if conforms:
            return []
        out = []
        for result in report.subjects(SH.resultSeverity, SH.Violation):
            name = self._shape_name(report, report.value(result, SH.sourceShape))
            path = report.value(result, SH.resultPath)
            message = report.value(result, SH.resultMessage)
            out.append(Violation(name, str(report.value(result, SH.focusNode)),
                                 self._qname(path) if path is not None else "", str(message or "")))
        return sorted(set(out), key=lambda v: (v.shape, v.focus))

    def check(self, name: str, triples) -> None:
        """Raise InvalidDocument naming every violated shape."""
        found = self.violations(triples)
        if found:
            raise InvalidDocument(name, found)
