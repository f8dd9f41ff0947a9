"""The tinytrain vocabulary: one namespace, every term with its meaning, and its alignment
with SOSA/SSN, S3N and the TinyML neural-network schema of Ren et al.

The alignment is stated with rdfs:subClassOf / rdfs:subPropertyOf to those vocabularies'
IRIs; their files are neither needed nor fetched. The namespace is a URN: it names terms,
nothing is ever looked up there. This module is the one source of the vocabulary: the
Turtle the registry loads (`turtle()`), the table in docs/semantic.md (`markdown()`, a test
checks the document agrees) and the SHACL shapes' IRIs all come from here.
"""
from __future__ import annotations

from dataclasses import dataclass

NS = "urn:tinytrain:ns#"
PREFIX = "tt"

# Vocabularies we align with (IRIs only).
ALIGNED = {
    "sosa": "http://www.w3.org/ns/sosa/",
    "ssn": "http://www.w3.org/ns/ssn/",
    "s3n": "http://w3id.org/s3n/",                      # S3N, as Ren et al. use it
    "nnet": "http://tinyml-schema.org/networkschema/",  # Ren et al.'s TinyML NN schema (v2)
}
STANDARD = {
    "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "td": "https://www.w3.org/2019/wot/td#",
    "tm": "https://www.w3.org/2019/wot/tm#",
}

# IRIs of the individuals the registry names.
DEVICE_IRI = "urn:tinytrain:device:"      # + a UUID
BOARD_IRI = "urn:tinytrain:board:"        # + the board name (boards/<name>.json)
MODEL_IRI = "urn:tinytrain:model:"        # + model hash : arena bytes : trainable bytes
THING_MODEL_IRI = "urn:tinytrain:thing-model:"   # + the board name
WEIGHTS_IRI = "urn:tinytrain:weights:"    # + model hash + ":" + CRC-32 (a fleet's reference weights)
VOCABULARY_GRAPH = "urn:tinytrain:vocabulary"


@dataclass(frozen=True)
class Term:
    name: str
    kind: str            # "class", "object" (property to a node), "data" (property to a literal)
    comment: str
    domain: str = ""     # our class(es) the property describes, local names joined by ","
    range: str = ""      # xsd:... for data, local class name for object properties
    aligned: tuple[str, ...] = ()   # prefixed IRIs of superclasses / superproperties

    @property
    def iri(self) -> str:
        return NS + self.name


TERMS: tuple[Term, ...] = (
    # --- classes ---------------------------------------------------------------------
    Term("Device", "class",
         "A microcontroller board, or its emulation, running tinytrain firmware and attached "
         "to a host: one Thing of the fleet. Its Thing Description is made from the DESCRIBE "
         "reply of the firmware.",
         aligned=("s3n:MicroController", "ssn:System", "sosa:Platform")),
    Term("Model", "class",
         "The neural network a device runs, as tinytrain compiled it: graph hash, training "
         "scheme, precision and memory plan. A node of its own, linked from the device by tt:runs.",
         aligned=("nnet:NeuralNetwork", "s3n:Algorithm", "sosa:Procedure")),
    Term("Board", "class",
         "A kind of board tinytrain builds for (boards/NAME.json): its memory limits and the "
         "reserves the fit check of `tinytrain build` adds to a model's memory plan.",
         aligned=("ssn:System",)),
    Term("WeightsRelease", "class",
         "The reference trainable parameters of a fleet for one model hash (registered from a "
         "`tinytrain weights pull` file): devices whose weights differ have diverged."),
    # --- device --------------------------------------------------------------------------
    Term("board", "object", "The kind of board the device is.", "Device", "Board"),
    Term("runs", "object", "The model the device runs.", "Device", "Model",
         aligned=("ssn:implements",)),
    Term("host", "data", "Name of the host the device is attached to.", "Device", "xsd:string"),
    Term("port", "data", "Serial port URL of the device on its host (socket://..., /dev/ttyACM0...).",
         "Device", "xsd:string"),
    Term("core", "data", "Processor core of the device or board (cortex-m4f, cortex-m55, host...).",
         "Device,Board", "xsd:string"),
    Term("protocolVersion", "data", "Version of the tinytrain serial protocol the firmware speaks.",
         "Device", "xsd:integer"),
    Term("maxPayloadBytes", "data", "Largest frame payload the device accepts.", "Device", "xsd:integer"),
    Term("capability", "data",
         "What the firmware can do: infer, train, nv-store (saves weights), hyperparameters "
         "(learning rate and momentum changeable). One value per capability.",
         "Device", "xsd:string"),
    Term("sramBytes", "data",
         "SRAM: on a device what the firmware may use (the board's usable SRAM), on a board all of it.",
         "Device,Board", "xsd:integer"),
    Term("flashBytes", "data",
         "Flash: on a device what the firmware may use (the board's usable flash), on a board all of it.",
         "Device,Board", "xsd:integer"),
    Term("nvBytes", "data", "Size of the non-volatile store that keeps saved weights (A/B slots).",
         "Device,Board", "xsd:integer"),
    Term("linkRamBytes", "data", "RAM the serial link's buffers take on the device.", "Device", "xsd:integer"),
    Term("workUnit", "data",
         "Unit of the device's work counter: instructions (QEMU -icount), us, cycles.",
         "Device", "xsd:string"),
    Term("simd", "data", "Whether the firmware uses the core's SIMD instructions.", "Device", "xsd:boolean"),
    Term("mode", "data", "What a TRAIN request does when described: train (learn) or eval (only count).",
         "Device", "xsd:string"),
    Term("stepsTrained", "data", "Training steps the device has done (restored with saved weights).",
         "Device", "xsd:integer"),
    Term("weightsGeneration", "data",
         "Generation of the saved weights the device loaded at boot (0: the compiled-in ones).",
         "Device", "xsd:integer"),
    Term("weightsCrc32", "data",
         "CRC-32 of the device's trainable parameters, concatenated in PARAM_INFO order, when "
         "described (the same CRC a `tinytrain weights pull` file records).",
         "Device", "xsd:integer"),
    Term("weightsBytes", "data", "Bytes of trainable parameters the CRC covers.", "Device", "xsd:integer"),
    Term("forBoard", "object",
         "The board a Thing Model is the template of (the devices on it name it with tt:board).",
         "tm:ThingModel", "Board"),
    # --- model -----------------------------------------------------------------------------
    Term("modelHash", "data",
         "Graph.fingerprint() of the compiled graph: 16 hex digits, the hash `inspect --json` "
         "prints and the firmware reports.",
         "Model", "xsd:string"),
    Term("modelName", "data", "Name of the model graph.", "Model", "xsd:string"),
    Term("scheme", "data",
         "Training scheme compiled into the firmware (full, last:K, bias-only:N or a scheme "
         "file's name); absent when unknown.",
         "Model", "xsd:string"),
    Term("trainable", "data", "Whether the firmware contains a training step.", "Model", "xsd:boolean",
         aligned=("nnet:isTrainable",)),
    Term("precision", "data", "Number format of the model's tensors: int8 or float32.", "Model", "xsd:string"),
    Term("arenaBytes", "data",
         "Bytes of the one static arena (activations; with training also saved tensors, masks, "
         "gradients and scratch), as `inspect --json` reports memory.arena_bytes.",
         "Model", "xsd:integer"),
    Term("trainableBytes", "data",
         "Bytes of trainable parameters and optimizer state kept in SRAM (`inspect --json` "
         "memory.trainable_param_bytes).",
         "Model", "xsd:integer"),
    Term("flashDataBytes", "data", "Bytes of constants (weights, tables) in flash.", "Model", "xsd:integer"),
    Term("trainableTensors", "data", "Number of trainable parameter tensors (PARAM_INFO indices).",
         "Model", "xsd:integer"),
    Term("macs", "data", "Multiply-accumulate operations of one forward pass.", "Model", "xsd:integer",
         aligned=("nnet:hasMultiplyAccumulateOps",)),
    Term("inputShape", "data", "Shape of the model input, dimensions joined by x (1x8x8x1).",
         "Model", "xsd:string"),
    Term("outputShape", "data", "Shape of the model output, dimensions joined by x.", "Model", "xsd:string"),
    Term("inputScale", "data", "Quantization scale of an int8 input (real = scale * (q - zero point)).",
         "Model", "xsd:double"),
    Term("inputZeroPoint", "data", "Quantization zero point of an int8 input.", "Model", "xsd:integer"),
    Term("outputScale", "data", "Quantization scale of an int8 output.", "Model", "xsd:double"),
    Term("outputZeroPoint", "data", "Quantization zero point of an int8 output.", "Model", "xsd:integer"),
    # --- board -----------------------------------------------------------------------------
    Term("boardName", "data", "Name of the board (the file boards/NAME.json, `--board NAME`).",
         "Board", "xsd:string"),
    Term("clockHz", "data", "Core clock in Hz (0 for the host).", "Board", "xsd:integer"),
    Term("sramUsableBytes", "data", "SRAM an application may use: the fit check's SRAM limit.",
         "Board", "xsd:integer"),
    Term("flashUsableBytes", "data", "Flash an application may use: the fit check's flash limit.",
         "Board", "xsd:integer"),
    Term("stackReserveBytes", "data", "Stack the fit check reserves in SRAM.", "Board", "xsd:integer"),
    Term("runtimeSramBytes", "data",
         "SRAM the fit check reserves for the runtime (link buffers, HAL state) on this board.",
         "Board", "xsd:integer"),
    Term("codeFlashBytes", "data",
         "Flash the fit check reserves for code (runtime, kernels, framework) on this board.",
         "Board", "xsd:integer"),
    Term("fpu", "data", "Floating-point unit of the core (fpv4-sp, fpv5-dp, none, host...).",
         "Board", "xsd:string"),
    Term("simdKind", "data", "SIMD extension of the core: none, dsp or helium.", "Board", "xsd:string"),
    Term("emulated", "data", "Whether the board runs on this host (QEMU or a host process).",
         "Board", "xsd:boolean"),
    # --- weights release ---------------------------------------------------------------
    Term("releasedFor", "data", "Model hash the reference weights belong to.", "WeightsRelease",
         "xsd:string"),
    Term("releasedCrc32", "data", "CRC-32 of the reference weights (as tt:weightsCrc32).",
         "WeightsRelease", "xsd:integer"),
)

BY_NAME = {t.name: t for t in TERMS}


def iri(name: str) -> str:
    """The IRI of a vocabulary term (KeyError for a term that does not exist)."""
    return BY_NAME[name].iri


def _expand(prefixed: str) -> str:
    prefix, local = prefixed.split(":", 1)
    return {**ALIGNED, **STANDARD}[prefix] + local


def turtle() -> str:
    """The vocabulary as Turtle: classes, properties, domains, ranges, alignment."""
    prefixes = {PREFIX: NS, **STANDARD, **ALIGNED}
    lines = [f"@prefix {p}: <{u}> ." for p, u in prefixes.items()]
    lines += ["", f"<{NS}> a owl:Ontology ;",
              '    rdfs:label "tinytrain vocabulary"@en ;',
              '    rdfs:comment "Devices, models and boards of tinytrain fleets (docs/semantic.md)."@en .', ""]
    for t in TERMS:
        kind = {"class": "rdfs:Class", "object": "owl:ObjectProperty", "data": "owl:DatatypeProperty"}[t.kind]
        rel = "rdfs:subClassOf" if t.kind == "class" else "rdfs:subPropertyOf"
        body = [f"a {kind}", f'rdfs:label "{t.name}"@en', f"rdfs:comment {_quote(t.comment)}@en"]
        if t.domain and "," not in t.domain:     # RDFS infers a domain: only one class may be named
            body.append(f"rdfs:domain {t.domain if ':' in t.domain else PREFIX + ':' + t.domain}")
        if t.range:
            body.append(f"rdfs:range {t.range if ':' in t.range else PREFIX + ':' + t.range}")
        body += [f"{rel} {a}" for a in t.aligned]
        lines.append(f"{PREFIX}:{t.name} " + " ;\n    ".join(body) + " .")
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def markdown() -> str:
    """The vocabulary table of docs/semantic.md."""
    rows = ["| term | kind | of | value | meaning | aligned with |", "|---|---|---|---|---|---|"]
    for t in TERMS:
        kind = {"class": "class", "object": "property (node)", "data": "property (value)"}[t.kind]
        value = (f"`{PREFIX}:{t.range}`" if t.range and ":" not in t.range else f"`{t.range}`") if t.range else ""
        of = ", ".join(f"`{c if ':' in c else PREFIX + ':' + c}`" for c in t.domain.split(",")) if t.domain else ""
        rows.append(f"| `{PREFIX}:{t.name}` | {kind} | {of} | {value} | {t.comment} | "
                    + ", ".join(f"`{a}`" for a in t.aligned) + " |")
    return "\n".join(rows)


def aligned_iris() -> dict[str, tuple[str, ...]]:
    """term IRI -> the full IRIs it is aligned with (for tests and queries)."""
    return {t.iri: tuple(_expand(a) for a in t.aligned) for t in TERMS}
