"""Thing Descriptions (W3C WoT TD 1.1, JSON-LD) of devices, from what DESCRIBE reports.

A device's TD: the device (`tt:Device`, also a td:Thing) with its board, port, firmware
and state, the model it runs as a node of its own (`tt:Model`: hash, scheme, precision,
memory figures), a link to its board's Thing Model, and its interaction affordances with
HTTP forms on the gateway (`tinytrain serve`): properties (model information, statistics,
hyper-parameters, weights), actions (infer, train, evaluate, save/load weights) and the
training-progress event. The security is a bearer token: the gateway refuses anything
that changes a device without it (reading is open).

The same affordances, without forms, make the board Thing Models (tm.py).
"""
from __future__ import annotations

import datetime as _dt
import re
from typing import Callable

from .. import protocol as P
from . import vocabulary as V
from .contexts import document_context
from .device import DeviceState, capabilities, device_iri

DEFAULT_GATEWAY = "http://127.0.0.1:8080"
JSON = "application/json"
SECURITY_DEFINITIONS = {
    "bearer_sc": {
        # (no description: the TD context types it xsd:string, the W3C shapes want a language)
        "scheme": "bearer", "in": "header", "name": "Authorization",
    },
}
SECURITY = ["bearer_sc"]
SECURITY_NOTE = ("Security: the gateway's bearer token (`tinytrain serve` says where it is) is required "
                 "for everything that changes the device, actions and property writes; reading "
                 "properties and subscribing to events are open.")


def thing_name(board: str, iri: str) -> str:
    """The device's name in the gateway's URLs: board and the end of its IRI."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", f"{board}-{iri.rsplit('-', 1)[-1][:12]}")


# No bounds: the W3C's SHACL shapes want minimum/maximum as xsd:double and minItems/maxItems
# as xsd:unsignedInt, which no JSON number becomes through the TD context (JSON-LD types a
# whole number xsd:integer, 0.0 included). Bounds and array sizes go into descriptions.
def _int(_minimum=None) -> dict:
    return {"type": "integer"}


def _samples_schema(input_size: int | None) -> dict:
    sample = {"type": "array", "items": {"type": "number"}}
    size = f" of {input_size} values" if input_size else ""
    return {"type": "array", "items": sample,
            "description": f"One or more samples, each flattened to an array{size} (the model input's size)."}


_ENCODING = {"type": "string", "enum": ["real", "raw"], "default": "real",
             "description": "real: real values, quantized for an int8 input as `tinytrain train` does; "
                            "raw: the device's input values (int8 integers for an int8 input)."}
_LABELS = {"type": "array", "items": {"type": "integer"},
           "description": "One class label per sample."}
_STORE_INFO = {"type": "object", "readOnly": True, "properties": {
    "generation": _int(0), "steps": _int(0), "bytes": _int(0), "crc32": _int(0), "slot": _int(0)}}


def _object_property(title: str, what: str, members: str, read_only: bool = True) -> dict:
    # Members are named in the description, not as schemas: inside a property affordance the
    # W3C context indexes member schemas by "name" (the affordance-name property) with a
    # nested context that says "propertyName", and JSON-LD processors disagree which wins
    # (pyoxigraph td:name, pyld jsonschema:propertyName). Without member schemas every
    # td:name in the RDF is an affordance name, whatever the processor.
    prop = {"title": title, "description": f"{what}. An object: {members}.", "type": "object"}
    if read_only:
        prop["readOnly"] = True
    return prop


def affordances(description=None, caps: list[str] | None = None) -> tuple[dict, dict, dict]:
    """(properties, actions, events) of a device, without forms. With a description the
    sample schemas have the model's input size; `caps` chooses what the firmware offers
    (every capability for a Thing Model)."""
    caps = caps if caps is not None else ["infer", "train", "nv-store", "hyperparameters"]
    input_size = int(description.input_size) if description is not None else None
    train = "train" in caps
    props: dict = {
        "model": _object_property(
            "Model", "The model the device runs and its memory plan",
            "name, hash (16 hex digits), inputShape and outputShape (integer arrays), precision "
            "(int8 or float32), arenaBytes, trainableBytes, flashDataBytes (integers)"),
        "statistics": _object_property(
            "Statistics", "Counters since the last reset",
            "steps, mode (train or eval), trainSamples, trainCorrect, trainLossSum, evalSamples, "
            "evalCorrect, inferences"),
        "linkCounters": _object_property(
            "Link counters", "Frames the device received, dropped and executed",
            "frames_ok, crc_errors, too_long, malformed, bad_version, seq_errors, duplicates, executed, unknown_type"),
    }
    actions: dict = {
        "infer": {"title": "Infer", "description": "Run the model on samples.", "safe": False, "idempotent": False,
                  "input": {"type": "object", "required": ["samples"],
                            "properties": {"samples": _samples_schema(input_size), "encoding": _ENCODING}},
                  "output": {"type": "object", "properties": {
                      "predicted": {"type": "array", "items": {"type": "integer"}},
                      "outputs": {"type": "array", "items": {"type": "array", "items": {"type": "number"}}},
                      "work": {"type": "array", "items": {"type": "integer"}}}}},
    }
    events: dict = {}
    if train:
        props["mode"] = {"title": "Mode", "description": "train: TRAIN requests learn; eval: they only count.",
                         "type": "string", "enum": ["train", "eval"]}
        props["weightsCrc"] = _object_property(
            "Weights CRC", "CRC-32 of the trainable parameters, and the saved generation loaded at boot",
            "bytes, crc32, generation (integers)")
        props["weights"] = _object_property(
            "Weights", "The trainable parameters by name; a write must be of the same model hash",
            "modelHash (string), crc32, bytes (integers), params (parameter name: array of numbers)",
            read_only=False)
        actions["train"] = {
            "title": "Train", "description": "One training step per sample, in order (as `tinytrain train` "
                                             "streams them); progress goes to the trainingProgress event.",
            "safe": False, "idempotent": False,
            "input": {"type": "object", "required": ["samples", "labels"], "properties": {
                "samples": _samples_schema(input_size), "labels": _LABELS, "encoding": _ENCODING}},
            "output": {"type": "object", "properties": {
                "samples": _int(0), "steps": _int(0), "loss": {"type": "array", "items": {"type": "number"}},
                "predicted": {"type": "array", "items": {"type": "integer"}},
                "correct": {"type": "array", "items": {"type": "boolean"}}}}}
        actions["evaluate"] = {
            "title": "Evaluate", "description": "Forward passes in eval mode: counts correct predictions, learns nothing.",
            "safe": False, "idempotent": False,
            "input": {"type": "object", "required": ["samples", "labels"], "properties": {
                "samples": _samples_schema(input_size), "labels": _LABELS, "encoding": _ENCODING}},
            "output": {"type": "object", "properties": {
                "samples": _int(0), "correct": _int(0), "accuracy": {"type": "number"}}}}
        actions["resetStatistics"] = {"title": "Reset statistics", "safe": False, "idempotent": True}
        events["trainingProgress"] = {
            "title": "Training progress", "description": "After every chunk of a train action.",
            "data": {"type": "object", "properties": {
                "samples": _int(0), "total": _int(0), "steps": _int(0), "loss": {"type": "number"}}}}
    if "hyperparameters" in caps:
        props["learningRate"] = {"title": "Learning rate", "type": "number", "description": "At least 0."}
        props["momentum"] = {"title": "SGD momentum", "type": "number",
                             "description": "From 0 (none) to below 1; a build without momentum state ignores it."}
        props["weightDecay"] = {"title": "Weight decay", "type": "number", "description": "At least 0."}
    if "nv-store" in caps and train:
        actions["saveWeights"] = {"title": "Save weights", "description": "To the older A/B slot of the device's store.",
                                  "safe": False, "idempotent": False, "output": dict(_STORE_INFO)}
        actions["loadWeights"] = {"title": "Load weights", "description": "The newest valid saved weights.",
                                  "safe": False, "idempotent": True, "output": dict(_STORE_INFO)}
    return props, actions, events


def add_forms(props: dict, actions: dict, events: dict, href: Callable[[str, str], str]) -> None:
    """HTTP forms of the gateway (href(kind, name) is the URL of one affordance)."""
    for name, p in props.items():
        ops = ["readproperty"] if p.get("readOnly") else ["readproperty", "writeproperty"]
        p["forms"] = [{"href": href("properties", name), "op": ops, "contentType": JSON}]
    for name, a in actions.items():
        a["forms"] = [{"href": href("actions", name), "op": ["invokeaction"], "contentType": JSON}]
    for name, e in events.items():
        url = href("events", name)
        e["forms"] = [{"href": url, "op": ["subscribeevent"], "subprotocol": "longpoll", "contentType": JSON},
                      {"href": url + "?stream=sse", "op": ["subscribeevent"], "subprotocol": "sse",
                       "contentType": JSON}]


def _shape(shape) -> str:
    return "x".join(str(int(n)) for n in shape)


def model_node(d, project: dict | None = None) -> dict:
    """The `tt:Model` node of the model a device runs."""
    # One node per compiled model, shared by the TDs of every device that runs it: the
    # registry reads its figures once per model, not once per device.
    node = {"@id": f"{V.MODEL_IRI}{d.model_hash}:{int(d.arena_bytes)}:{int(d.trainable_bytes)}",
            "@type": "tt:Model",
            "tt:modelHash": d.model_hash, "tt:modelName": d.model_name,
            "tt:trainable": bool(d.capabilities & P.CAP_TRAIN),
            "tt:precision": "int8" if d.input_dtype == P.DTYPE_S8 else "float32",
            "tt:arenaBytes": int(d.arena_bytes), "tt:trainableBytes": int(d.trainable_bytes),
            "tt:flashDataBytes": int(d.flash_data_bytes), "tt:trainableTensors": int(d.num_params),
            "tt:inputShape": _shape(d.input_shape), "tt:outputShape": _shape(d.output_shape)}
    if d.input_dtype == P.DTYPE_S8:
        node.update({"tt:inputScale": float(d.input_scale), "tt:inputZeroPoint": int(d.input_zero_point)})
    if d.output_dtype == P.DTYPE_S8:
        node.update({"tt:outputScale": float(d.output_scale), "tt:outputZeroPoint": int(d.output_zero_point)})
    scheme = getattr(d, "scheme", None) or (project or {}).get("scheme")
    if scheme:
        node["tt:scheme"] = str(scheme)
    if project and project.get("macs") is not None:
        node["tt:macs"] = int(project["macs"])
    return node


def thing_description(state: DeviceState, *, gateway: str = DEFAULT_GATEWAY, iri: str | None = None,
                      project: dict | None = None, modified: _dt.datetime | None = None) -> dict:
    """The TD of a device. `gateway` is the base URL of the `tinytrain serve` that exposes it
    (the forms point there); `project` is the build manifest (.tinytrain.json) of its firmware,
    when known: it adds the scheme and MACs if its model hash is the device's."""
    d = state.description
    iri = iri or device_iri(d, state.url, state.host)
    name = thing_name(d.board, iri)
    gateway = gateway.rstrip("/")
    if project and project.get("model_hash") != d.model_hash:
        project = None
    caps = capabilities(d)
    props, actions, events = affordances(d, caps)
    add_forms(props, actions, events, lambda kind, aff: f"{gateway}/things/{name}/{kind}/{aff}")
    modified = modified or _dt.datetime.now(_dt.timezone.utc)
    td: dict = {
        "@context": document_context(),
        "id": iri,
        "@type": ["Thing", "tt:Device"],
        "title": f"{d.model_name} on {d.board}",
        "description": f"tinytrain firmware {d.firmware_version} ({d.core}) at {state.url} on {state.host}. "
                       + SECURITY_NOTE,
        "version": {"instance": d.firmware_version},
        "modified": modified.astimezone(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "links": [{"rel": "type", "href": f"{gateway}/models/{d.board}.tm.jsonld",
                   "type": "application/tm+json"}],
        "securityDefinitions": SECURITY_DEFINITIONS,
        "security": SECURITY,
        "tt:board": {"@id": V.BOARD_IRI + d.board},
        "tt:runs": model_node(d, project),
        "tt:host": state.host,
        "tt:port": state.url,
        "tt:core": d.core,
        "tt:protocolVersion": int(d.protocol_version),
        "tt:maxPayloadBytes": int(d.max_payload),
        "tt:capability": caps,
        "tt:sramBytes": int(d.sram_bytes), "tt:flashBytes": int(d.flash_bytes), "tt:nvBytes": int(d.nv_bytes),
        "tt:linkRamBytes": int(d.link_ram_bytes),
        "tt:workUnit": d.work_unit,
        "tt:simd": bool(d.simd),
        "tt:mode": "train" if d.mode == P.MODE_TRAIN else "eval",
        "tt:stepsTrained": int(d.steps),
        "tt:weightsGeneration": int(d.loaded_generation),
        "properties": props, "actions": actions,
    }
    if events:
        td["events"] = events
    if state.weights_crc32 is not None:
        td["tt:weightsCrc32"] = int(state.weights_crc32)
        td["tt:weightsBytes"] = int(state.weights_bytes)
    return td


def model_value(d) -> dict:
    """The value of the `model` property."""
    return dict(name=d.model_name, hash=d.model_hash, inputShape=[int(n) for n in d.input_shape],
                outputShape=[int(n) for n in d.output_shape],
                precision="int8" if d.input_dtype == P.DTYPE_S8 else "float32",
                arenaBytes=int(d.arena_bytes), trainableBytes=int(d.trainable_bytes),
                flashDataBytes=int(d.flash_data_bytes))

