"""JSON-LD contexts, served offline, and JSON-LD -> RDF.

A TD names its context by IRI ("https://www.w3.org/2022/wot/td/v1.1"). Nothing is fetched
at run time: `resolve_contexts` is the document loader, it replaces every context IRI it
knows by a local document and refuses any other. The document for the TD 1.1 IRI is
written here: the TD 1.1 term definitions of every term tinytrain's TDs and Thing Models
use, with the same meaning as the W3C's context (a test turns each TD into RDF with both
and compares the graphs). Our own terms need no context document: TDs carry the prefix
`tt` inline.

Two traps of TD JSON-LD are handled here:
- affordance names are map keys; they survive in RDF only because `properties`, `actions`
  and `events` are index maps whose index is the property td:name (JSON-LD 1.1);
- names like "bearer_sc" (the keys of securityDefinitions) become IRIs relative to the
  document: they are resolved against the TD's own `id`, which is the base IRI.
"""
from __future__ import annotations

import json
from typing import Any

from ..errors import TinyTrainError
from . import vocabulary as V

TD_CONTEXT = "https://www.w3.org/2022/wot/td/v1.1"
TD_CONTEXT_V1 = "https://www.w3.org/2019/wot/td/v1"
# What a TD's @context starts with: TD 1.1 allows the 1.0 IRI first, followed by the 1.1 one,
# and consumers that only know TD 1.0 (node-wot 0.9 validates TDs with a 2021 schema that
# requires the 1.0 IRI first) accept that form. The 1.1 context, applied last, defines every
# term tinytrain uses, so both IRIs resolve to the same local document.
TD_CONTEXTS = (TD_CONTEXT_V1, TD_CONTEXT)

TD = "https://www.w3.org/2019/wot/td#"
JSONSCHEMA = "https://www.w3.org/2019/wot/json-schema#"
WOTSEC = "https://www.w3.org/2019/wot/security#"
HCTL = "https://www.w3.org/2019/wot/hypermedia#"
TM = "https://www.w3.org/2019/wot/tm#"
DCT = "http://purl.org/dc/terms/"
XSD = "http://www.w3.org/2001/XMLSchema#"

_PREFIXES = {"td": TD, "jsonschema": JSONSCHEMA, "wotsec": WOTSEC, "hctl": HCTL, "dct": DCT}
_LANGUAGE_TEXT = {
    "title": {"@id": "td:title", "@language": "en"},
    "description": {"@id": "td:description", "@language": "en"},
}


def _data_schema_context(object_properties: dict) -> dict:
    """The scoped context of a data schema (a property affordance, an action's input or
    output, an event's data): the JSON Schema terms tinytrain's TDs use, in the jsonschema
    namespace. Prefixes are inherited from the TD context; fewer terms, faster parsing."""
    ctx: dict[str, Any] = {"@vocab": JSONSCHEMA}
    for term in ("readOnly", "writeOnly", "default", "const", "format"):
        ctx[term] = {"@id": "jsonschema:" + term}
    ctx["items"] = {"@id": "jsonschema:items", "@type": "@id"}
    for term in ("required", "enum"):
        ctx[term] = {"@id": "jsonschema:" + term, "@container": "@set"}
    ctx["type"] = {"@id": "@type"}
    for json_type in ("object", "array", "boolean", "string", "number", "integer", "null"):
        ctx[json_type] = f"jsonschema:{json_type.capitalize()}Schema"
    ctx.update(_LANGUAGE_TEXT)
    ctx["properties"] = object_properties
    ctx["propertyName"] = {"@id": "jsonschema:propertyName"}
    return ctx


_SCHEMA_PROPERTIES = {"@id": "jsonschema:properties", "@container": "@index", "@index": "propertyName"}
# In a property affordance, the member schemas of an object-typed property are indexed by
# td:name like the affordance itself; one level further down by jsonschema:propertyName.
_AFFORDANCE_SCHEMA = _data_schema_context({
    "@id": "jsonschema:properties", "@container": "@index", "@index": "name",
    "@context": {"properties": _SCHEMA_PROPERTIES}})
_NESTED_SCHEMA = _data_schema_context(_SCHEMA_PROPERTIES)

_OPERATIONS = ("readproperty", "writeproperty", "observeproperty", "unobserveproperty", "invokeaction",
               "queryaction", "cancelaction", "subscribeevent", "unsubscribeevent", "readallproperties",
               "writeallproperties", "readmultipleproperties", "writemultipleproperties",
               "observeallproperties", "unobserveallproperties", "queryallactions",
               "subscribeallevents", "unsubscribeallevents")
_CAMEL = {"property": "Property", "action": "Action", "event": "Event", "properties": "Properties",
          "actions": "Actions", "events": "Events", "all": "All", "multiple": "Multiple"}


def _operation_iri(op: str) -> str:
    # readproperty -> td:readProperty, subscribeallevents -> td:subscribeAllEvents
    for verb in ("unobserve", "unsubscribe", "observe", "subscribe", "read", "write", "invoke", "query",
                 "cancel"):
        if op.startswith(verb):
            rest = op[len(verb):]
            words = [w for w in ("all", "multiple") if rest.startswith(w)]
            tail = rest[len(words[0]):] if words else rest
            return "td:" + verb + "".join(_CAMEL[w] for w in words) + _CAMEL[tail]
    raise ValueError(op)


_FORM_CONTEXT = {
    "@vocab": HCTL,
    "op": {"@id": "hctl:hasOperationType", "@type": "@vocab"},
    **{op: _operation_iri(op) for op in _OPERATIONS},
    "href": {"@id": "hctl:hasTarget", "@type": "xsd:anyURI"},
    "contentType": {"@id": "hctl:forContentType"},
    "subprotocol": {"@id": "hctl:forSubProtocol"},
    "security": {"@id": "td:hasSecurityConfiguration", "@type": "@id"},
    "scopes": {"@id": "wotsec:scopes"},
    "rel": {"@id": "hctl:hasRelationType"},
    "type": {"@id": "hctl:hintsAtMediaType"},
}

_SECURITY_CONTEXT = {
    "@vocab": WOTSEC,
    "scheme": {"@id": "@type"},
    "in": {"@id": "wotsec:in"},
    "name": {"@id": "wotsec:name"},
    "format": {"@id": "wotsec:format"},
    "alg": {"@id": "wotsec:alg"},
    "description": {"@id": "td:description"},
    "nosec": "wotsec:NoSecurityScheme",
    "basic": "wotsec:BasicSecurityScheme",
    "bearer": "wotsec:BearerSecurityScheme",
}


def _td_context() -> dict:
    ctx: dict[str, Any] = {**_PREFIXES, "xsd": XSD, "tm": TM, "@vocab": TD, "id": "@id"}
    ctx.update({
        "Thing": {"@id": "td:Thing"},
        "name": {"@id": "td:name"},
        **_LANGUAGE_TEXT,
        "created": {"@id": "dct:created", "@type": "xsd:dateTime"},
        "modified": {"@id": "dct:modified", "@type": "xsd:dateTime"},
        "version": {"@id": "td:versionInfo", "@type": "@id"},
        "instance": {"@id": "td:instance", "@type": "xsd:string"},
        "model": {"@id": "td:model"},
        "observable": {"@id": "td:isObservable"},
        "safe": {"@id": "td:isSafe"},
        "idempotent": {"@id": "td:isIdempotent"},
        "synchronous": {"@id": "td:isSynchronous"},
        "forms": {"@id": "td:hasForm", "@type": "@id", "@container": "@set", "@context": _FORM_CONTEXT},
        "links": {"@id": "td:hasLink", "@type": "@id", "@container": "@set", "@context": _FORM_CONTEXT},
        "security": {"@id": "td:hasSecurityConfiguration", "@type": "xsd:string",
                     "@context": _SECURITY_CONTEXT},
        "securityDefinitions": {"@id": "td:definesSecurityScheme", "@type": "@id", "@container": "@index",
                                "@index": "hasInstanceConfiguration", "@context": _SECURITY_CONTEXT},
        "hasInstanceConfiguration": {"@id": "td:hasInstanceConfiguration", "@type": "@id"},
        "properties": {"@id": "td:hasPropertyAffordance", "@type": "@id", "@container": "@index",
                       "@index": "name", "@context": _AFFORDANCE_SCHEMA},
        "actions": {"@id": "td:hasActionAffordance", "@type": "@id", "@container": "@index", "@index": "name"},
        "events": {"@id": "td:hasEventAffordance", "@type": "@id", "@container": "@index", "@index": "name"},
        "input": {"@id": "td:hasInputSchema", "@type": "@id", "@context": _NESTED_SCHEMA},
        "output": {"@id": "td:hasOutputSchema", "@type": "@id", "@context": _NESTED_SCHEMA},
        "data": {"@id": "td:hasNotificationSchema", "@type": "@id", "@context": _NESTED_SCHEMA},
        "@version": 1.1,
    })
    return ctx


def td_context_document() -> dict:
    """The context document tinytrain serves for the TD 1.1 context IRI."""
    return {"@context": _td_context()}


def tinytrain_context() -> dict:
    """The inline context entry every tinytrain TD and TM carries after the TD IRI."""
    return {V.PREFIX: V.NS}


def document_context() -> list:
    """The @context of every tinytrain TD and TM."""
    return [*TD_CONTEXTS, tinytrain_context()]


# The documents the loader knows, by IRI.
LOCAL_DOCUMENTS = {TD_CONTEXT: td_context_document, TD_CONTEXT_V1: td_context_document}


def resolve_contexts(doc: Any, documents: dict | None = None) -> Any:
    """A copy of doc where every context IRI is replaced by its local document.

    `documents` (IRI -> document dict) replaces the built-in ones (the tests use the W3C's
    file). An IRI that is not known is refused: nothing is fetched."""
    known = documents or {iri: make() for iri, make in LOCAL_DOCUMENTS.items()}

    def load(iri: str):
        if iri not in known:
            raise TinyTrainError(f"JSON-LD context {iri!r} is not available offline "
                                 f"(tinytrain knows {', '.join(sorted(known))})")
        return known[iri]["@context"]

    def walk(node):
        if isinstance(node, list):
            return [walk(n) for n in node]
        if not isinstance(node, dict):
            return node
        out = {}
        for key, value in node.items():
            if key == "@context":
                items = value if isinstance(value, list) else [value]
                value = [load(v) if isinstance(v, str) else v for v in items]
                out[key] = value if len(value) > 1 else value[0]
            else:
                out[key] = walk(value)
        return out
    return walk(doc)


def to_triples(doc: dict, documents: dict | None = None) -> list:
    """The RDF triples of a TD or TM (pyoxigraph Triples), the document's `id` as base IRI."""
    import pyoxigraph as ox
    base = doc.get("id") if isinstance(doc, dict) else None
    if not isinstance(base, str) or ":" not in base:
        raise TinyTrainError("the document has no absolute `id`: relative IRIs in it could not be "
                             "resolved (and the registry names each TD by its id)")
    text = json.dumps(resolve_contexts(doc, documents))
    try:
        quads = ox.parse(text, format=ox.RdfFormat.JSON_LD, base_iri=base)
        return [q.triple for q in quads]
    except (SyntaxError, ValueError) as e:
        raise TinyTrainError(f"{base}: not valid JSON-LD: {e}") from None
