"""The fleet registry: Thing Descriptions, Thing Models and reference weights in a quad store.

Each registered document is one named graph, named by its id. The store is either
embedded (a pyoxigraph store in a folder, by default $TINYTRAIN_HOME/fleet) or any SPARQL
1.1 endpoint (`--store http://host:port/dataset`: queries go to URL/query, updates to
URL/update, as Oxigraph's server and Fuseki take them). Both answer the same ready-made
queries (queries.py), which name their graphs, so they need no union default graph.

Registering validates first (validate.py) and writes nothing of a document that fails.
The vocabulary and the Thing Models of every board are put in the first time a store is
opened by this version of tinytrain (and again when they changed).
"""
from __future__ import annotations

import hashlib
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import TinyTrainError
from . import vocabulary as V
from .contexts import to_triples

XSD = "http://www.w3.org/2001/XMLSchema#"
OWL_VERSION = "http://www.w3.org/2002/07/owl#versionInfo"
RDF_TYPE = "http://www.w3.org/1999/02/22-rdf-syntax-ns#type"
TD_THING = "https://www.w3.org/2019/wot/td#Thing"
TM_THING_MODEL = "https://www.w3.org/2019/wot/tm#ThingModel"


def default_location() -> str:
    env = os.environ.get("TINYTRAIN_FLEET_STORE")
    if env:
        return env
    return str(Path(os.environ.get("TINYTRAIN_HOME", Path.home() / ".cache" / "tinytrain")) / "fleet")


def is_remote(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def _value(kind: str, value: str, datatype: str | None):
    """A SPARQL result term as a Python value: numbers and booleans typed, IRIs as strings."""
    if kind == "bnode":
        return "_:" + value
    if kind != "literal" or not datatype:
        return value
    local = datatype[len(XSD):] if datatype.startswith(XSD) else ""
    if local in ("integer", "int", "long", "short", "unsignedInt", "unsignedLong", "nonNegativeInteger"):
        return int(value)
    if local in ("double", "float", "decimal"):
        return float(value)
    if local == "boolean":
        return value in ("true", "1")
    return value


# --- backends -----------------------------------------------------------------------------

class EmbeddedBackend:
    """A pyoxigraph store on disk (one process at a time)."""

    def __init__(self, path: str):
        import pyoxigraph as ox
        self.location = path
        Path(path).mkdir(parents=True, exist_ok=True)
        try:
            self.store = ox.Store(path)
        except OSError as e:
            raise TinyTrainError(f"cannot open the fleet store {path}: {e} (is another tinytrain process using it?)") \
                from None

    def close(self) -> None:
        self.store.flush()
        del self.store

    def select(self, sparql: str, union: bool = False) -> list[dict]:
        import pyoxigraph as ox
        try:
            result = self.store.query(sparql, use_default_graph_as_union=union)
        except SyntaxError as e:
            raise TinyTrainError(f"SPARQL: {e}") from None
        if isinstance(result, bool) or isinstance(result, ox.QueryBoolean):
            return [{"result": bool(result)}]
        if isinstance(result, ox.QueryTriples):
            return [{"subject": str(t.subject), "predicate": str(t.predicate), "object": str(t.object)}
                    for t in result]
        names = [v.value for v in result.variables]
        literal, blank = ox.Literal, ox.BlankNode
        rows = []
        for sol in result:
            row = {}
            for n, t in zip(names, sol):
                if t is None:
                    continue
                if isinstance(t, literal):
                    row[n] = _value("literal", t.value, None if t.language else t.datatype.value)
                elif isinstance(t, blank):
                    row[n] = "_:" + t.value
                else:
                    row[n] = t.value
            rows.append(row)
        return rows

    def has_graph(self, iri: str) -> bool:
        import pyoxigraph as ox
        return self.store.contains_named_graph(ox.NamedNode(iri))

    def replace_graph(self, iri: str, triples) -> None:
        import pyoxigraph as ox
        g = ox.NamedNode(iri)
        if self.store.contains_named_graph(g):
            self.store.remove_graph(g)
        self.store.extend([ox.Quad(t.subject, t.predicate, t.object, g) for t in triples])

    def drop_graph(self, iri: str) -> bool:
        import pyoxigraph as ox
        g = ox.NamedNode(iri)
        if not self.store.contains_named_graph(g):
            return False
        self.store.remove_graph(g)
        return True


class RemoteBackend:
    """A SPARQL 1.1 endpoint: queries to URL/query, updates to URL/update."""

    def __init__(self, url: str, timeout: float = 60.0):
        self.location = url.rstrip("/")
        self.query_url = self.location + "/query"
        self.update_url = self.location + "/update"
        self.timeout = timeout

    def close(self) -> None:
        pass

    def _post(self, url: str, body: str, content_type: str, accept: str = "*/*") -> tuple[str, bytes]:
        req = urllib.request.Request(url, data=body.encode(), method="POST",
                                     headers={"Content-Type": content_type, "Accept": accept})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return resp.headers.get("Content-Type", ""), resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:500]
            raise TinyTrainError(f"the SPARQL endpoint {url} answered {e.code}: {detail}") from None
        except (urllib.error.URLError, OSError) as e:
            raise TinyTrainError(f"cannot reach the SPARQL endpoint {url}: {getattr(e, 'reason', e)}") from None

    def select(self, sparql: str, union: bool = False) -> list[dict]:
        url = self.query_url + ("?union-default-graph" if union else "")
        ctype, data = self._post(url, sparql, "application/sparql-query",
                                 "application/sparql-results+json, application/n-triples;q=0.5")
        if "n-triples" in ctype:
            import pyoxigraph as ox
            return [{"subject": str(t.subject), "predicate": str(t.predicate), "object": str(t.object)}
                    for t in ox.parse(data, format=ox.RdfFormat.N_TRIPLES)]
        doc = json.loads(data)
        if "boolean" in doc:
            return [{"result": bool(doc["boolean"])}]
        rows = []
        for b in doc["results"]["bindings"]:
            rows.append({k: _value(v["type"], v["value"], v.get("datatype")) for k, v in b.items()})
        return rows

    def update(self, sparql: str) -> None:
        self._post(self.update_url, sparql, "application/sparql-update")

    def has_graph(self, iri: str) -> bool:
        return self.select(f"ASK {{ GRAPH <{iri}> {{ ?s ?p ?o }} }}")[0]["result"]

    def replace_graph(self, iri: str, triples) -> None:
        import pyoxigraph as ox
        data = ox.serialize(list(triples), format=ox.RdfFormat.N_TRIPLES).decode()
        self.update(f"DROP SILENT GRAPH <{iri}> ;\nINSERT DATA {{ GRAPH <{iri}> {{\n{data}}} }}")

    def drop_graph(self, iri: str) -> bool:
        if not self.has_graph(iri):
            return False
        self.update(f"DROP GRAPH <{iri}>")
        return True


# --- the registry ----------------------------------------------------------------------------

@dataclass
class Registered:
    kind: str        # "device", "thing-model" or "weights"
    iri: str
    title: str
    triples: list | None = None    # what will be stored (before commit)


def _kind(triples, iri: str) -> str:
    types = {t.object.value for t in triples if t.subject.value == iri and t.predicate.value == RDF_TYPE}
    if V.iri("Device") in types:
        return "device"
    if TM_THING_MODEL in types:
        return "thing-model"
    if TD_THING in types:
        return "thing"
    return ""


class Registry:
    """Register, remove and query devices; `location` is a folder or an http(s) URL."""

    def __init__(self, location: str | None = None, extra_shapes: Iterable[Path] = (), prepare: bool = True):
        self.location = location or default_location()
        self.backend = RemoteBackend(self.location) if is_remote(self.location) else EmbeddedBackend(self.location)
        self.extra_shapes = tuple(Path(p) for p in extra_shapes)
        self._validator = None
        if prepare:
            self.ensure_base()

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def validator(self):
        if self._validator is None:
            from .validate import Validator
            self._validator = Validator(self.extra_shapes)
        return self._validator

    # --- the vocabulary and the boards ------------------------------------------------------
    @staticmethod
    def base_documents() -> list[dict]:
        from .tm import thing_models
        return thing_models()

    @classmethod
    def base_version(cls) -> str:
        text = V.turtle() + json.dumps(cls.base_documents(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def ensure_base(self) -> None:
        version = self.base_version()
        ask = (f'ASK {{ GRAPH <{V.VOCABULARY_GRAPH}> {{ <{V.VOCABULARY_GRAPH}> <{OWL_VERSION}> "{version}" }} }}')
        if self.backend.select(ask)[0]["result"]:
            return
        import pyoxigraph as ox
        for doc in self.base_documents():
            self.add(doc)
        vocab = list(ox.parse(V.turtle(), format=ox.RdfFormat.TURTLE))
        vocab.append(ox.Triple(ox.NamedNode(V.VOCABULARY_GRAPH), ox.NamedNode(OWL_VERSION), ox.Literal(version)))
        self.backend.replace_graph(V.VOCABULARY_GRAPH, vocab)

    # --- registering --------------------------------------------------------------------------
    def add(self, doc: dict, name: str | None = None) -> Registered:
        """Validate a TD or TM and store it as the graph named by its id (replacing an older one)."""
        return self.commit(self.prepare(doc, name))

    def commit(self, prepared: Registered) -> Registered:
        if prepared.kind == "weights":
            # One reference per model: an older release of the same model is replaced.
            model_hash = prepared.iri[len(V.WEIGHTS_IRI):].split(":")[0]
            for row in self.backend.select(
                    f'SELECT DISTINCT ?g WHERE {{ GRAPH ?g {{ ?r <{V.iri("releasedFor")}> "{model_hash}" }} }}'):
                self.backend.drop_graph(row["g"])
        self.backend.replace_graph(prepared.iri, prepared.triples)
        return Registered(prepared.kind, prepared.iri, prepared.title)

    def prepare(self, doc: dict, name: str | None = None) -> Registered:
        """Turn a TD or TM into RDF and validate it; nothing is stored yet (see commit)."""
        if not isinstance(doc, dict):
            raise TinyTrainError(f"{name or 'document'}: a Thing Description is a JSON object")
        iri = doc.get("id")
        triples = to_triples(doc)
        kind = _kind(triples, iri)
        label = name or iri
        if kind == "thing":
            raise TinyTrainError(f"{label}: a Thing, but not a tt:Device: the registry keeps tinytrain devices")
        if not kind:
            raise TinyTrainError(f"{label}: neither a Thing Description (@type Thing, tt:Device) nor a Thing Model")
        self.validator.check(label, triples)
        return Registered(kind, iri, str(doc.get("title", "")), triples)

    def add_weights(self, path: Path) -> Registered:
        return self.commit(self.prepare_weights(path))

    def prepare_weights(self, path: Path) -> Registered:
        """A `tinytrain weights pull` file as its model's reference weights (validated, not stored)."""
        import numpy as np
        import pyoxigraph as ox
        try:
            with np.load(path) as z:
                model_hash, crc = str(z["model_hash"]), int(z["crc32"])
        except (OSError, KeyError, ValueError) as e:
            raise TinyTrainError(f"{path}: not a tinytrain weights file ({e})") from None
        iri = f"{V.WEIGHTS_IRI}{model_hash}:{crc:08x}"
        node, tt = ox.NamedNode(iri), lambda n: ox.NamedNode(V.iri(n))
        triples = [ox.Triple(node, ox.NamedNode(RDF_TYPE), tt("WeightsRelease")),
                   ox.Triple(node, tt("releasedFor"), ox.Literal(model_hash)),
                   ox.Triple(node, tt("releasedCrc32"), ox.Literal(str(crc), datatype=ox.NamedNode(XSD + "integer")))]
        self.validator.check(str(path), triples)
        return Registered("weights", iri, f"weights of {model_hash} (crc {crc:08x})", triples)

    def remove(self, iri: str) -> None:
        if iri.startswith(V.THING_MODEL_IRI) or iri == V.VOCABULARY_GRAPH:
            raise TinyTrainError(f"{iri} is part of the registry itself (board Thing Models, vocabulary)")
        if not self.backend.drop_graph(iri):
            raise TinyTrainError(f"nothing is registered as {iri} (see `tinytrain fleet list`)")

    def documents(self) -> list[str]:
        """IRIs of the registered graphs (vocabulary excluded)."""
        rows = self.backend.select("SELECT DISTINCT ?g WHERE { GRAPH ?g { ?s ?p ?o } } ORDER BY ?g")
        return [r["g"] for r in rows if r["g"] != V.VOCABULARY_GRAPH]

    def graph_triples(self, iri: str):
        """The triples of one registered graph (for re-validation)."""
        import pyoxigraph as ox
        rows = self.backend.select(f"CONSTRUCT {{ ?s ?p ?o }} WHERE {{ GRAPH <{iri}> {{ ?s ?p ?o }} }}")
        text = "".join(f"{r['subject']} {r['predicate']} {r['object']} .\n" for r in rows)
        return list(ox.parse(text, format=ox.RdfFormat.N_TRIPLES))

    def select(self, sparql: str, union: bool = False) -> list[dict]:
        return self.backend.select(sparql, union=union)
