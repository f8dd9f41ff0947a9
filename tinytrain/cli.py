"""The `tinytrain` command line."""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

import click
import numpy as np

from . import __version__
from .errors import TinyTrainError


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(2)


def user_errors(fn):
    """Turn TinyTrainError into a clear message and exit code 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TinyTrainError as exc:
            _fail(str(exc))
    return wrapper


def _emit(data, as_json: bool, text: str) -> None:
    click.echo(json.dumps(data, indent=1) if as_json else text)


def _load(model: str, quantize: str | None, calibration: str | None):
    from .datasets import load_samples
    from .frontends import load_model
    calib = load_samples(calibration)[0] if calibration else None
    if quantize and calib is None:
        raise TinyTrainError("--quantize int8 needs --calibration FILE (.npz with x)")
    return load_model(model, quantize=quantize, calibration=calib)


model_options = [
    click.argument("model"),
    click.option("--quantize", type=click.Choice(["int8"]), default=None,
                 help="Quantize a float Keras model to int8 (post-training, TFLite's converter)."),
    click.option("--calibration", type=click.Path(exists=True, dir_okay=False), default=None,
                 help="Calibration samples for --quantize (.npz with x, or .csv)."),
]


def with_model_options(fn):
    for opt in reversed(model_options):
        fn = opt(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="tinytrain")
def main():
    """Compile neural networks, forward and backward, to C for training on microcontrollers."""


@main.command()
@with_model_options
@click.option("--board", default="native", show_default=True, help="Target board (see `tinytrain boards`).")
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Output folder (created whole, or not at all).")
@click.option("--force", is_flag=True, help="Replace an existing output folder not made by tinytrain.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@user_errors
def build(model, quantize, calibration, board, output, force, as_json):
    """Compile MODEL to a C project for BOARD."""
    from .build import build_project
    graph = _load(model, quantize, calibration)
    result = build_project(graph, board, Path(output), force=force)
    text = (f"built {graph.name} for {board} in {output}\n"
            f"  arena {result['memory']['arena_bytes']:,} B, constants {result['memory']['flash_bytes']:,} B, "
            f"{result['macs']:,} MACs, model hash {result['model_hash']}")
    _emit(result, as_json, text)


@main.command()
@with_model_options
@click.option("--json", "as_json", is_flag=True, help="Print the layer table and memory plan as JSON.")
@click.option("--tensors", is_flag=True, help="Also print the per-tensor arena table.")
@user_errors
def inspect(model, quantize, calibration, as_json, tensors):
    """Print MODEL's layer table (op, shapes, parameters, MACs) and its memory plan."""
    from . import report
    from .codegen import memory_report
    from .ir import graph_macs
    from .planner import plan_graph
    graph = _load(model, quantize, calibration)
    plan = plan_graph(graph)
    layers = report.layer_rows(graph)
    memory = memory_report(graph, plan)
    data = dict(model=graph.name, model_hash=graph.fingerprint(), layers=layers, macs=graph_macs(graph),
                memory=memory, plan=dict(algorithm=plan.algorithm, tensors=report.plan_rows(plan)))
    text = "\n\n".join(filter(None, [
        f"model {graph.name}  ({len(layers)} layers, {data['macs']:,} MACs, hash {data['model_hash']})",
        report.format_layers(layers),
        report.format_memory(memory) + f"\n(planner: {plan.algorithm})",
        report.format_plan(data["plan"]["tensors"]) if tensors else ""]))
    _emit(data, as_json, text)


@main.command()
@with_model_options
@click.option("--data", "data_file", required=True, type=click.Path(exists=True, dir_okay=False),
              help="Samples to run (.npz with x and optional y, or .csv).")
@click.option("--limit", type=int, default=None, help="Run only the first N samples.")
@click.option("--json", "as_json", is_flag=True, help="Print predictions and accuracy as JSON.")
@user_errors
def run(model, quantize, calibration, data_file, limit, as_json):
    """Compile MODEL for the host, run it on samples and print its predictions."""
    from .datasets import load_samples
    from .hostmodel import HostModel
    graph = _load(model, quantize, calibration)
    x, y = load_samples(data_file)
    if limit:
        x, y = x[:limit], (y[:limit] if y is not None else None)
    host = HostModel(graph)
    outputs = host.run(x)
    pred = outputs.argmax(axis=1)
    data = dict(model=graph.name, samples=len(x), predictions=pred.tolist())
    lines = [f"model {graph.name}: {len(x)} samples on the host build"]
    lines.append("predictions: " + " ".join(map(str, pred[:50].tolist())) + (" ..." if len(pred) > 50 else ""))
    if y is not None:
        acc = float(np.mean(pred == y))
        data["accuracy"] = acc
        lines.append(f"accuracy: {acc:.4f} ({int(np.sum(pred == y))}/{len(y)})")
    _emit(data, as_json, "\n".join(lines))


if __name__ == "__main__":  # pragma: no cover
    main()
