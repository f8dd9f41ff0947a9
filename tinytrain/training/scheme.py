"""Update schemes: which parameters a training step updates.

A scheme is given on the command line as `--train SCHEME`:
  full            every weight and bias
  last:K          weights and biases of the last K weighted layers (classifier included)
  bias-only:N     biases of the last N weighted layers (classifier included)
  layers:A,B.bias,C.weight
                  the named layers (weight and bias, or the one named part); a name is the
                  IR op's or the source model's layer name (Keras "conv2" for the converter's
                  "conv2_1_Relu": Graph.layer_names)
  PATH.json       the format of the reference schemes (../shared/reference/tte-models/schemes):
                  {"bias_update_last_n": n, "weight_update": [{"conv_index": i,
                   "input_channel_ratio": r}, ...], "classifier": "full"}
                  plus, optionally, "layers": ["conv4.bias", ...] (as layers:...; then
                  "classifier" defaults to "none") and {"layer": NAME, ...} for "conv_index";
                  "head": "float" trains an int8 model's head (the layers from the first
                  trained one on) in float: FP32, or FP16 with precision fp16 / mixed (which
                  an int8 model implies), the frozen part staying int8 (tinytrain.precision)

Weighted layers are the ops whose unit is `weighted` (conv2d, depthwise_conv2d,
fully_connected), in schedule order.
The classifier is the last weighted layer when it is a fully_connected op; `conv_index`
numbers the other weighted layers from the input, exactly as the reference JSON does.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import TinyTrainError
from ..ir import Graph, Op
from ..ops import unit


@dataclass
class LayerUpdate:
    """What one weighted layer trains."""
    op: str                          # op name
    weight: bool = False
    bias: bool = False
    in_channels: int | None = None   # weight trained on input channels [0, in_channels) (None: all)
    channel_index: list[int] | None = None   # explicit trained input channels, when reordering failed

    @property
    def partial(self) -> bool:
        return self.weight and (self.in_channels is not None or self.channel_index is not None)


@dataclass
class SchemeSpec:
    """A parsed, not yet graph-bound scheme."""
    name: str
    kind: str                                   # full | last | bias-only | layers | json
    count: int = 0                              # K or N
    bias_last_n: int = 0                        # json
    # (conv_index or layer name, ratio)
    weight_update: list[tuple[int | str, float]] = field(default_factory=list)
    classifier: bool = True
    layers: list[tuple[str, str]] = field(default_factory=list)   # (layer name, "all" | "weight" | "bias")
    head: str = "int8"                          # json "head": "int8" (QAS) | "float" (an int8 model's head)

    def layer_names(self) -> list[str]:
        """Every layer the spec names (checked against the model before it is converted)."""
        return [n for n, _ in self.layers] + [w for w, _ in self.weight_update if isinstance(w, str)]


@dataclass
class Scheme:
    """A scheme bound to a graph: the trained parameters, by op name (schedule order)."""
    name: str
    layers: dict[str, LayerUpdate]

    def update(self, op_name: str) -> LayerUpdate | None:
        return self.layers.get(op_name)

    def trains(self, op_name: str) -> bool:
        u = self.layers.get(op_name)
        return u is not None and (u.weight or u.bias)

    def describe(self) -> list[str]:
        out = []
        for u in self.layers.values():
            what = []
            if u.weight:
                part = f"[:{u.in_channels}]" if u.in_channels is not None else ""
                if u.channel_index is not None:
                    part = f"[{len(u.channel_index)} listed channels]"
                what.append("weight" + part)
            if u.bias:
                what.append("bias")
            out.append(f"{u.op}: {' + '.join(what)}")
        return out


def parse_scheme(text: str | Path) -> SchemeSpec:
    """Parse `full`, `last:K`, `bias-only:N` or the path of a JSON scheme file."""
    s = str(text).strip()
    if s == "full":
        return SchemeSpec(name="full", kind="full")
    for prefix, kind in (("last:", "last"), ("bias-only:", "bias-only")):
        if s.startswith(prefix):
            arg = s[len(prefix):]
            if not arg.isdigit() or int(arg) < 1:
                raise TinyTrainError(f"training scheme {s!r}: {prefix}N needs a positive integer N")
            return SchemeSpec(name=s, kind=kind, count=int(arg))
    if s.startswith("layers:"):
        return SchemeSpec(name=s, kind="layers", layers=_parse_layer_list(s[len("layers:"):].split(","), s),
                          classifier=False)
    path = Path(s)
    if path.suffix.lower() == ".json" or path.is_file():
        if not path.is_file():
            raise TinyTrainError(f"training scheme file {s!r} does not exist")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise TinyTrainError(f"training scheme file {s!r}: not valid JSON ({e})") from None
        return scheme_from_dict(data, default_name=path.stem)
    raise TinyTrainError(f"training scheme {s!r}: expected full, last:K, bias-only:N, layers:NAME,... "
                         "or a .json file")


def _parse_layer_list(items, where: str) -> list[tuple[str, str]]:
    """["conv4.bias", "classifier"] -> [("conv4", "bias"), ("classifier", "all")]."""
    out = []
    for item in items:
        item = str(item).strip()
        name, part = item, "all"
        for suffix in (".weight", ".bias"):
            if item.endswith(suffix):
                name, part = item[:-len(suffix)], suffix[1:]
        if not name:
            raise TinyTrainError(f"training scheme {where!r}: empty layer name in {item!r}")
        out.append((name, part))
    if not out:
        raise TinyTrainError(f"training scheme {where!r}: names no layer")
    return out


def scheme_from_dict(data: dict, default_name: str = "scheme") -> SchemeSpec:
    """The JSON scheme format; keys checked so a typo is an error, not a silent no-op."""
    if not isinstance(data, dict):
        raise TinyTrainError("training scheme: the JSON must be an object")
    known = {"name", "bias_update_last_n", "n_bias_update", "weight_update", "classifier", "layers", "head"}
    unknown = set(data) - known
    if unknown:
        raise TinyTrainError(f"training scheme: unknown field(s) {sorted(unknown)}")
    n = data.get("bias_update_last_n", data.get("n_bias_update", 0))
    if not isinstance(n, int) or n < 0:
        raise TinyTrainError("training scheme field 'bias_update_last_n': expected an integer >= 0")
    updates = []
    for i, w in enumerate(data.get("weight_update", [])):
        try:
            idx = str(w["layer"]) if "layer" in w else int(w["conv_index"])
            ratio = float(w["input_channel_ratio"])
        except (KeyError, TypeError, ValueError):
            raise TinyTrainError(f"training scheme field 'weight_update[{i}]': needs conv_index (or layer) "
                                 "and input_channel_ratio") from None
        if not 0.0 <= ratio <= 1.0:
            raise TinyTrainError(f"training scheme field 'weight_update[{i}].input_channel_ratio': "
                                 f"{ratio} is not in [0, 1]")
        if ratio > 0:
            updates.append((idx, ratio))
    layers = data.get("layers", [])
    if not isinstance(layers, list):
        raise TinyTrainError("training scheme field 'layers': expected a list of layer names")
    layers = _parse_layer_list(layers, "layers") if layers else []
    cls = data.get("classifier", "none" if layers else "full")
    if cls not in ("full", "none"):
        raise TinyTrainError(f"training scheme field 'classifier': expected 'full' or 'none', got {cls!r}")
    head = data.get("head", "int8")
    if head not in ("int8", "float"):
        raise TinyTrainError(f"training scheme field 'head': expected 'int8' or 'float', got {head!r}")
    return SchemeSpec(name=str(data.get("name", default_name)), kind="json", bias_last_n=n,
                      weight_update=updates, classifier=(cls == "full"), layers=layers, head=head)


def resolve_layer(graph: Graph, name: str, where: str = "training scheme") -> Op:
    """The weighted op a scheme names: by IR op name or by the source model's layer name."""
    ops = {op.name: op for op in graph.ops if unit(op.type).weighted}
    op = ops.get(name) or ops.get(graph.layer_names.get(name, ""))
    if op is None:
        raise TinyTrainError(f"{where}: no layer with weights named {name!r}; the model's are "
                             + ", ".join(_known_names(graph)))
    return op


def _known_names(graph: Graph) -> list[str]:
    source = {v: k for k, v in graph.layer_names.items()}
    return [f"{source[op.name]} ({op.name})" if op.name in source else op.name
            for op in graph.ops if unit(op.type).weighted]


def check_spec_against_layers(spec: SchemeSpec, weighted: list[str]) -> None:
    """Check a scheme against the names of the source model's weighted layers (in order, the
    classifier last if it is one), before the model is converted: names that do not exist,
    more layers than there are."""
    def known(name: str) -> bool:     # a source name, or an IR name derived from one
        return any(name == w or name.startswith(w + "_") for w in weighted) or name == "output"
    for name in spec.layer_names():
        if not known(name):
            raise TinyTrainError(f"training scheme {spec.name!r}: no layer with weights named {name!r}; "
                                 f"the model's are {', '.join(weighted)}")
    if spec.kind in ("last", "bias-only") and spec.count > len(weighted):
        raise TinyTrainError(f"training scheme {spec.name!r}: the model has only {len(weighted)} layers "
                             "with weights")


def weighted_layers(graph: Graph) -> tuple[list[Op], Op | None]:
    """(the convolutions in schedule order, the classifier or None)."""
    ops = [op for op in graph.ops if unit(op.type).weighted]
    if not ops:
        raise TinyTrainError(f"model {graph.name!r} has no layer with weights to train")
    if unit(ops[-1].type).classifier:
        return ops[:-1], ops[-1]
    return ops, None


def bind_scheme(spec: SchemeSpec | str | Path, graph: Graph) -> Scheme:
    """Resolve a scheme against a graph: the LayerUpdate of every trained layer."""
    if not isinstance(spec, SchemeSpec):
        spec = parse_scheme(spec)
    convs, classifier = weighted_layers(graph)
    all_layers = convs + ([classifier] if classifier is not None else [])
    layers: dict[str, LayerUpdate] = {}

    def get(op: Op) -> LayerUpdate:
        return layers.setdefault(op.name, LayerUpdate(op.name))

    if spec.kind in ("layers", "json"):
        for name, part in spec.layers:
            u = get(resolve_layer(graph, name, f"training scheme {spec.name!r}"))
            u.weight = u.weight or part in ("all", "weight")
            u.bias = u.bias or part in ("all", "bias")
    if spec.kind == "full":
        for op in all_layers:
            u = get(op)
            u.weight = u.bias = True
    elif spec.kind in ("last", "bias-only"):
        if spec.count > len(all_layers):
            raise TinyTrainError(f"training scheme {spec.name!r}: the model has only "
                                 f"{len(all_layers)} layers with weights")
        for op in all_layers[-spec.count:]:
            u = get(op)
            u.bias = True
            u.weight = spec.kind == "last"
    elif spec.kind == "json":
        if spec.bias_last_n > len(convs):
            raise TinyTrainError(f"training scheme {spec.name!r}: bias_update_last_n={spec.bias_last_n} "
                                 f"but the model has {len(convs)} convolutions")
        for op in convs[len(convs) - spec.bias_last_n:]:
            get(op).bias = True
        for idx, ratio in spec.weight_update:
            if isinstance(idx, str):
                op = resolve_layer(graph, idx, f"training scheme {spec.name!r}")
                if op not in convs:
                    raise TinyTrainError(f"training scheme {spec.name!r}: weight_update names the "
                                         f"classifier {idx!r} (use \"classifier\": \"full\")")
                idx = convs.index(op)
            if not 0 <= idx < len(convs):
                raise TinyTrainError(f"training scheme {spec.name!r}: conv_index {idx} does not exist "
                                     f"(the model has {len(convs)} convolutions)")
            op = convs[idx]
            u = get(op)
            u.weight = True
            cin = _in_channels(graph, op)
            k = max(1, int(math.floor(ratio * cin + 1e-9)))
            u.in_channels = None if k >= cin else k   # depthwise: its channels [0, k)
        if spec.classifier and classifier is not None:
            u = get(classifier)
            u.weight = u.bias = True
    order = {op.name: i for i, op in enumerate(graph.ops)}
    ordered = dict(sorted(layers.items(), key=lambda kv: order[kv[0]]))
    return Scheme(name=spec.name, layers={k: v for k, v in ordered.items() if v.weight or v.bias})


def _in_channels(graph: Graph, op: Op) -> int:
    return unit(op.type).in_channels(graph, op)
