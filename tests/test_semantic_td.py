"""Every Thing Description and Thing Model tinytrain emits is valid W3C WoT TD 1.1: the TD
(or TM) JSON Schema and the W3C's SHACL shapes, over all boards and the example and
reference models; their RDF is the same with the project's own context as with the W3C's
(and with a second JSON-LD processor); the two known traps are handled (affordance names,
relative IRIs); nothing is fetched; the vocabulary is one namespace, aligned, documented."""
import copy
import json
import re

import pyoxigraph as ox
import pytest

from conftest import ROOT
from semantic_helpers import MODELS, WOT, device_td, w3c_documents
from tinytrain.boards import board_names
from tinytrain.errors import TinyTrainError
from tinytrain.semantic import vocabulary as V
from tinytrain.semantic.contexts import TD_CONTEXT, resolve_contexts, to_triples
from tinytrain.semantic.tm import thing_models
from tinytrain.semantic.validate import Validator, rdflib_graph

pytestmark = pytest.mark.skipif(not (WOT / "td-validation.ttl").is_file(), reason="../shared/wot not found")


@pytest.fixture(scope="module")
def w3c():
    import jsonschema
    import rdflib
    td_schema = json.loads((WOT / "td-json-schema-validation.json").read_text())
    tm_schema = json.loads((WOT / "tm-json-schema-validation.json").read_text())
    return dict(td=jsonschema.Draft7Validator(td_schema, format_checker=jsonschema.FormatChecker()),
                tm=jsonschema.Draft7Validator(tm_schema, format_checker=jsonschema.FormatChecker()),
                shapes=rdflib.Graph().parse(str(WOT / "td-validation.ttl"), format="turtle"),
                contexts=w3c_documents())


def emitted():
    """(name, document): the TM of every board, the TD of every model on every board."""
    docs = [(f"tm:{tm['id']}", tm) for tm in thing_models()]
    docs += [(f"td:{model}@{board}", (model, board)) for model in MODELS for board in board_names()]
    docs.append(("td:digits_cnn-inference-only@native", ("digits_cnn", "native", False)))
    return docs


def _doc(item):
    if not isinstance(item, tuple):
        return item
    model, board, *trainable = item
    return device_td(model, board, trainable=trainable[0] if trainable else True)


XSD_DOUBLE = ox.NamedNode("http://www.w3.org/2001/XMLSchema#double")


def _double(term):
    # JSON-LD writes doubles as %1.15E (pyld does, losing the 17th digit); compare at that precision
    if isinstance(term, ox.Literal) and term.datatype == XSD_DOUBLE:
        return ox.Literal(f"{float(term.value):1.15E}", datatype=XSD_DOUBLE)
    return term


def canonical(triples) -> list[str]:
    """The graph with canonical blank node labels (RDF canonicalization, pyoxigraph): two
    graphs are the same iff these are equal."""
    ds = ox.Dataset([ox.Quad(t.subject, t.predicate, _double(t.object)) for t in triples])
    ds.canonicalize(ox.CanonicalizationAlgorithm.UNSTABLE)
    return sorted(str(q) for q in ds)


@pytest.mark.parametrize("name,item", emitted(), ids=[n for n, _ in emitted()])
def test_emitted_document_is_valid_td_1_1(name, item, w3c, tte_models):
    import pyshacl
    doc = _doc(item)
    schema = w3c["tm"] if doc["@type"] == "tm:ThingModel" else w3c["td"]
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in schema.iter_errors(doc)]
    assert not errors, errors[:5]
    theirs = to_triples(doc, w3c["contexts"])
    conforms, _, text = pyshacl.validate(rdflib_graph(theirs), shacl_graph=w3c["shapes"])
    assert conforms, text[:3000]
    ours = to_triples(doc)
    assert canonical(ours) == canonical(theirs), "the project's context and the W3C's give different RDF"
    assert Validator().violations(ours) == []


def test_the_registry_shapes_accept_what_the_w3c_shapes_accept_and_more(w3c):
    """`fleet add --shapes td-validation.ttl` validates with both sets at once."""
    v = Validator([WOT / "td-validation.ttl"])
    assert v.violations(to_triples(device_td("digits_cnn", "pico"))) == []
    broken = device_td("digits_cnn", "pico")
    broken["properties"]["statistics"]["forms"][0]["security"] = "bearer_sc"   # IRI in RDF
    names = {x.shape for x in v.violations(to_triples(broken))}
    assert "tts:FormSecurity" in names                                     # ours
    assert any("InteractionAffordanceShape" in n or "FormShape" in n for n in names), names   # the W3C's


def test_a_second_json_ld_processor_gives_the_same_graph(w3c):
    """pyld (the JSON-LD 1.1 reference algorithms in Python) agrees with pyoxigraph."""
    from pyld import jsonld
    docs = w3c["contexts"]

    def loader(url, options=None):
        if url not in docs:
            raise RuntimeError(f"no network: {url}")
        return {"contentType": "application/ld+json", "contextUrl": None, "documentUrl": url, "document": docs[url]}
    for doc in (device_td("mcunet-5fps", "disco_f746ng"), thing_models()[0]):
        nquads = jsonld.to_rdf(doc, {"documentLoader": loader, "base": doc["id"], "format": "application/n-quads"})
        theirs = [q.triple for q in ox.parse(nquads, format=ox.RdfFormat.N_QUADS)]
        assert canonical(theirs) == canonical(to_triples(doc))


TD_NS = "https://www.w3.org/2019/wot/td#"


def _objects(triples, predicate):
    return [t.object for t in triples if t.predicate.value == predicate]


def _affordance_names(triples) -> set:
    affordances = {t.object for t in triples
                   if t.predicate.value in (TD_NS + "hasPropertyAffordance", TD_NS + "hasActionAffordance",
                                            TD_NS + "hasEventAffordance")}
    return {t.object.value for t in triples if t.subject in affordances and t.predicate.value == TD_NS + "name"}


def test_affordance_names_survive_in_rdf():
    doc = device_td("digits_cnn", "mps2-an386")
    triples = to_triples(doc)
    assert _affordance_names(triples) == set(doc["properties"]) | set(doc["actions"]) | set(doc["events"])
    # and td:name names nothing else (no member schema of a property affordance)
    assert len(_objects(triples, TD_NS + "name")) == len(doc["properties"]) + len(doc["actions"]) + len(doc["events"])


def test_a_context_without_the_name_index_loses_names_and_is_refused():
    """The trap: a 1.0-style index map (no "@index": "name") drops every affordance name."""
    doc = device_td("digits_cnn", "mps2-an386")
    ctx = copy.deepcopy(w3c_documents()[TD_CONTEXT])
    for key in ("properties", "actions", "events"):
        ctx["@context"][key].pop("@index")
    lossy = {iri: ctx for iri in w3c_documents()}
    triples = to_triples(doc, lossy)
    assert not _affordance_names(triples)
    assert "tts:AffordanceName" in {v.shape for v in Validator().violations(triples)}


def test_security_names_resolve_against_the_td_id_and_are_lost_without_a_base():
    doc = device_td("digits_cnn", "mps2-an386")
    triples = to_triples(doc)
    names = [o for o in _objects(triples, "https://www.w3.org/2019/wot/td#hasInstanceConfiguration")]
    assert names and all(isinstance(o, ox.NamedNode) and ":" in o.value for o in names)
    # Without the TD's id as base the relative name has nowhere to go: the triple is dropped
    # (silently); the registry's shape catches that.
    text = json.dumps(resolve_contexts(doc))
    no_base = [q.triple for q in ox.parse(text, format=ox.RdfFormat.JSON_LD)]
    assert _affordance_names(no_base) and not _objects(no_base, TD_NS + "hasInstanceConfiguration")
    assert "tts:SecuritySchemeName" in {v.shape for v in Validator().violations(no_base)}


def test_nothing_is_fetched_an_unknown_context_is_refused():
    doc = device_td("digits_cnn", "pico")
    doc["@context"] = doc["@context"] + ["https://example.org/some/context.jsonld"]
    with pytest.raises(TinyTrainError, match="not available offline"):
        to_triples(doc)


def test_an_inference_only_device_offers_only_what_it_can_do():
    doc = device_td("digits_cnn", "native", trainable=False)
    assert set(doc["actions"]) == {"infer"} and "events" not in doc
    assert set(doc["properties"]) == {"model", "statistics", "linkCounters"}
    assert doc["tt:capability"] == ["infer"] and "tt:weightsCrc32" not in doc


def test_the_model_is_a_node_of_its_own_and_the_td_links_its_board_model():
    doc = device_td("mcunet-5fps", "disco_f746ng")
    model = doc["tt:runs"]
    assert model["@type"] == "tt:Model" and model["@id"] != doc["id"]
    for key in ("tt:modelHash", "tt:precision", "tt:arenaBytes", "tt:trainableBytes"):
        assert key in model
    assert doc["links"][0]["rel"] == "type" and doc["links"][0]["href"].endswith("/models/disco_f746ng.tm.jsonld")
    assert doc["tt:board"] == {"@id": V.BOARD_IRI + "disco_f746ng"}
    tm = next(t for t in thing_models() if t["id"].endswith("disco_f746ng"))
    assert tm["tt:forBoard"]["@id"] == doc["tt:board"]["@id"]


# --- the vocabulary ----------------------------------------------------------------------

def test_vocabulary_is_one_namespace_and_every_term_used_exists():
    graph = ox.parse(V.turtle(), format=ox.RdfFormat.TURTLE)
    defined = {t.subject.value for t in graph if t.subject.value.startswith(V.NS)}
    assert {t.iri for t in V.TERMS} <= defined
    used = set()
    for doc in [device_td("digits_cnn", "native"), *thing_models()]:
        for t in to_triples(doc):
            for term in (t.predicate, t.object):
                if isinstance(term, ox.NamedNode) and term.value.startswith(V.NS):
                    used.add(term.value)
    texts = [(ROOT / "tinytrain" / "semantic" / n).read_text() for n in ("shapes.ttl", "queries.py", "td.py", "tm.py")]
    used |= {V.NS + m for text in texts for m in re.findall(r"\btt:([A-Za-z]\w*)", text)}
    unknown = sorted(u for u in used if u not in defined)
    assert not unknown, unknown
    # no other namespace of ours: every IRI tinytrain mints is a urn:tinytrain: one
    for doc in [device_td("digits_cnn", "native"), *thing_models()]:
        for t in to_triples(doc):
            for term in (t.subject, t.predicate, t.object):
                if isinstance(term, ox.NamedNode) and "tinytrain" in term.value:
                    assert term.value.startswith("urn:tinytrain:"), term.value


def test_vocabulary_is_aligned_with_sosa_ssn_s3n_and_the_tinyml_schema():
    aligned = V.aligned_iris()
    device, model = aligned[V.iri("Device")], aligned[V.iri("Model")]
    assert "http://w3id.org/s3n/MicroController" in device and "http://www.w3.org/ns/ssn/System" in device
    assert "http://tinyml-schema.org/networkschema/NeuralNetwork" in model
    assert "http://www.w3.org/ns/sosa/Procedure" in model
    assert "http://www.w3.org/ns/ssn/implements" in aligned[V.iri("runs")]


def test_every_term_is_documented_in_docs_semantic_md():
    doc = (ROOT / "docs" / "semantic.md").read_text()
    assert V.markdown() in doc, "docs/semantic.md lost the vocabulary table: paste vocabulary.markdown() there"
    for t in V.TERMS:
        assert f"`tt:{t.name}`" in doc and t.comment
