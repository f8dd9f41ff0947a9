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


train_options = [
    click.option("--train", "scheme", default=None, metavar="SCHEME",
                 help="Compile a training step: full, last:K, bias-only:N, or a scheme JSON file."),
    click.option("--num-classes", type=int, default=None,
                 help="Replace the classifier by a fresh head with N classes (transfer learning)."),
    click.option("--loss", type=click.Choice(["softmax_cross_entropy", "mse"]), default="softmax_cross_entropy",
                 show_default=True, help="Training loss."),
    click.option("--momentum/--no-momentum", default=False, show_default=True,
                 help="Keep SGD momentum state (counts in the memory plan)."),
]


def with_train_options(fn):
    for opt in reversed(train_options):
        fn = opt(fn)
    return fn


def _training_program(graph, scheme, num_classes, loss, momentum):
    """(graph, program) for a --train build; program is None without --train."""
    if num_classes is not None:
        from .training.head import replace_classifier
        graph = replace_classifier(graph, num_classes)
    if scheme is None:
        return graph, None
    from .training.program import build_program
    return graph, build_program(graph, scheme, loss=loss, momentum=momentum)


@main.command()
@with_model_options
@with_train_options
@click.option("--board", default="native", show_default=True, help="Target board (see `tinytrain boards`).")
@click.option("-o", "--output", "output", required=True, type=click.Path(file_okay=False),
              help="Output folder (created whole, or not at all).")
@click.option("--compile/--no-compile", "compile_", default=None,
              help="Also build the firmware with PlatformIO (default: yes for boards that run here).")
@click.option("--force", is_flag=True, help="Replace an existing output folder not made by tinytrain.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@user_errors
def build(model, quantize, calibration, scheme, num_classes, loss, momentum, board, output, compile_, force,
          as_json):
    """Compile MODEL into a PlatformIO project for BOARD (with a training step if --train)."""
    from .boards import load_board
    from .project import build_project, emit_project, size_report
    board_info = load_board(board)
    graph = _load(model, quantize, calibration)
    graph, program = _training_program(graph, scheme, num_classes, loss, momentum)
    train = None
    if program is not None:
        from .training.codegen import TrainingCode
        train = TrainingCode(program)
    result = emit_project(graph, board, Path(output), train=train, force=force)
    lines = [f"emitted {graph.name} for {board} in {result['output']}"
             + (f" (training: {scheme})" if scheme else ""), result["fit_table"]]
    if compile_ is None:
        compile_ = board_info.emulated
    if compile_:
        built = build_project(Path(output))
        result["build"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in built.items()}
        lines.append(size_report(built))
    result.pop("fit_table", None) if as_json else None
    _emit(result, as_json, "\n".join(lines))


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the boards as JSON.")
@user_errors
def boards(as_json):
    """List the boards tinytrain can build for."""
    from .boards import boards_table, list_boards
    if as_json:
        fields = ("name", "title", "core", "clock_hz", "sram_bytes", "sram_usable_bytes", "flash_bytes",
                  "flash_usable_bytes", "fpu", "simd", "platform", "pio_board", "emulated")
        _emit([{f: getattr(b, f) for f in fields} for b in list_boards()], True, "")
    else:
        click.echo(boards_table())


@main.command()
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@click.option("--detach", is_flag=True, help="Leave an emulated board running; stop it with `tinytrain stop`.")
@user_errors
def flash(project, detach):
    """Build (if needed) and flash PROJECT; emulated boards boot and print their port URL."""
    from .emulator import flash as flash_project
    result = flash_project(Path(project), detach=detach)
    running = result.get("running")
    if running is None:
        click.echo(result.get("message", "flashed"))
        return
    click.echo(f"{result['board']} running; port: {running.url}")
    if detach:
        click.echo(f"stop it with: tinytrain stop {project}")
        return
    click.echo("press Ctrl-C to stop it")
    try:
        while running.alive():
            import time
            time.sleep(0.5)
        click.echo("the emulated board exited", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


@main.command()
@click.argument("project", type=click.Path(exists=True, file_okay=False))
@user_errors
def stop(project):
    """Stop an emulated board started with `tinytrain flash --detach`."""
    from .emulator import stop as stop_board
    click.echo("stopped" if stop_board(Path(project)) else "nothing was running")


@main.command()
@with_model_options
@click.option("--json", "as_json", is_flag=True, help="Print the layer table and memory plan as JSON.")
@click.option("--tensors", is_flag=True, help="Also print the per-tensor arena table.")
@with_train_options
@user_errors
def inspect(model, quantize, calibration, as_json, tensors, scheme, num_classes, loss, momentum):
    """Print MODEL's layer table (op, shapes, parameters, MACs) and its memory plan
    (the training step's memory plan with --train)."""
    from . import report
    from .codegen import memory_report
    from .ir import graph_macs
    from .planner import plan_graph
    graph = _load(model, quantize, calibration)
    graph, program = _training_program(graph, scheme, num_classes, loss, momentum)
    plan = plan_graph(graph)
    layers = report.layer_rows(graph)
    memory = memory_report(graph, plan)
    data = dict(model=graph.name, model_hash=graph.fingerprint(), layers=layers, macs=graph_macs(graph),
                memory=memory, plan=dict(algorithm=plan.algorithm, tensors=report.plan_rows(plan)))
    if program is not None:
        from .training.memory import memory_report as training_memory
        tmem = training_memory(program)
        tmem.pop("offsets", None)
        data["inference_memory"] = memory
        data["memory"] = memory = tmem
        data["training"] = dict(scheme=scheme, loss=loss, macs_per_step=program.macs(),
                                trained=program.scheme.describe())
    text = "\n\n".join(filter(None, [
        f"model {graph.name}  ({len(layers)} layers, {data['macs']:,} MACs, hash {data['model_hash']})",
        report.format_layers(layers),
        ("training step: " + scheme + "\n  " + "\n  ".join(data["training"]["trained"])) if program else "",
        report.format_memory(memory) + ("" if program else f"\n(planner: {plan.algorithm})"),
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
